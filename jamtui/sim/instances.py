"""Real HTTP servers for the lab's allocations, so traffic through HAProxy and Fabio is real.

Every port an allocation asks for is a listening socket on loopback. A web task answers any
path with a line naming its allocation; `/health` answers as the allocation's Consul checks
say. The Fabio system job's ports run Fabio itself (its UI/API and its proxy).
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from .context import SimContext
from .http import BackendServer
from .model import Alloc, GroupSpec, Job

FABIO_ROLE = "fabio"


class LabRuntime:
    """Starts and stops the servers behind each allocation's ports."""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self._servers: dict[str, list[BackendServer]] = {}
        # a Fabio instance keeps its ports across restarts on the same node, as a real one
        # with static ports would; HAProxy's server lines point at them
        self._fabio_ports: dict[tuple[str, str], int] = {}

    async def start(self, alloc: Alloc, job: Job, group: GroupSpec) -> dict[str, int]:
        world = self.ctx.world
        node = world.nodes.get(alloc.node_id)
        node_name = node.name if node else "unknown"
        ports: dict[str, int] = {}
        servers: list[BackendServer] = []
        fabio = job.meta.get("jamlab.role") == FABIO_ROLE
        for label in group.ports:
            if fabio:
                name, app = self._fabio_app(node_name, label)
                port = self._fabio_ports.get((node_name, label), 0)
            else:
                name, app, port = f"alloc:{alloc.id}:{label}", instance_app(self.ctx, alloc), 0
            server = BackendServer(name, app, self.ctx.host, port)
            try:
                await server.start()
            except OSError:  # the old port was taken meanwhile: take any
                server = BackendServer(name, app, self.ctx.host, 0)
                await server.start()
            servers.append(server)
            ports[label] = server.port
            if fabio:
                self._fabio_ports[(node_name, label)] = server.port
                self.ctx.servers[name] = server
                self.ctx.urls[name] = server.url
        self._servers[alloc.id] = servers
        return ports

    def _fabio_app(self, node_name: str, label: str) -> tuple[str, web.Application]:
        from . import fabio

        if label == "ui":
            return f"fabio:{node_name}", fabio.api_app(self.ctx, node_name)
        return f"fabio:{node_name}:lb", fabio.proxy_app(self.ctx, node_name)

    async def stop(self, alloc: Alloc) -> None:
        for server in self._servers.pop(alloc.id, []):
            if self.ctx.servers.get(server.name) is server:
                del self.ctx.servers[server.name]
                self.ctx.urls.pop(server.name, None)
            with contextlib.suppress(Exception):
                await server.stop()


def instance_app(ctx: SimContext, alloc: Alloc) -> web.Application:
    """What a web task serves: its identity on every path, its health on /health."""
    world = ctx.world
    alloc_id = alloc.id

    async def handle(request: web.Request) -> web.Response:
        live = world.allocs.get(alloc_id)
        name = live.name if live else alloc_id
        node = world.nodes.get(live.node_id) if live else None
        healthy = live is not None and not any(
            c.status == "critical" for c in world.checks.values()
            if (svc := world.services.get((c.node, c.service_id))) is not None
            and svc.alloc_id == alloc_id
        )
        headers = {"X-Jamlab-Alloc": alloc_id, "X-Jamlab-Instance": name}
        if request.path == "/health":
            return web.Response(status=200 if healthy else 503,
                                text="ok\n" if healthy else "unhealthy\n", headers=headers)
        await asyncio.sleep(0)
        body = (f"Hello from {name} (alloc {alloc_id[:8]}) on {node.name if node else '?'}: "
                f"{request.method} {request.host}{request.path_qs}\n")
        return web.Response(text=body, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
