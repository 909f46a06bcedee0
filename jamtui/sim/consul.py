"""Placeholder: the simulated consul API (being written)."""

from aiohttp import web

from .context import SimContext


def build_app(ctx: SimContext) -> web.Application:
    return web.Application()
