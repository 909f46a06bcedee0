"""Placeholder: the HAProxy stand-in (being written)."""

import asyncio

from .context import SimContext


class HAProxyStandIn:
    def __init__(self, ctx: SimContext, port: int = 0, stats_port: int = 0) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        self.ctx.urls["haproxy"] = "http://127.0.0.1:1"
        self.ctx.urls["haproxy_stats"] = "http://127.0.0.1:1"

    async def trickle(self) -> None:
        await asyncio.Event().wait()
