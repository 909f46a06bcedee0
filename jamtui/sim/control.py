"""The lab's control endpoint, for the lab's stand-in tools only (`sim/tools.py`): what the
real Ansible does to hosts over SSH, done to the world directly. Loopback, bearer token."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..inventory import InventoryError, load_inventory
from .context import SimContext


def build_app(ctx: SimContext, token: str) -> web.Application:
    @web.middleware
    async def auth(request: web.Request, handler: Any) -> Any:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return web.json_response({"error": "unauthorised"}, status=401)
        return await handler(request)

    async def provision(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"error": ctx.world.provision(str(body.get("host", "")))})

    async def dns(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            ctx.world.set_dns_inventory(load_inventory(str(body.get("inventory", ""))))
        except InventoryError as exc:
            return web.json_response({"error": str(exc)})
        return web.json_response({"error": ""})

    app = web.Application(middlewares=[auth])
    app.router.add_post("/v1/provision", provision)
    app.router.add_post("/v1/dns", dns)
    return app
