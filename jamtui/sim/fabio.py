"""The lab's Fabio: a routing table from `urlprefix-` tags and a real proxy that follows it.

Follows fabio's admin API (`/api/routes`, `/health`) and its documented routing: only
instances whose checks all pass become routes, a route is `host/path`, the longest path prefix
on the request's host wins, and targets share a route's weight equally (fabio.io/docs).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from .context import SimContext
from .http import fault_middleware, text_error
from .world import World

TAG_PREFIX = "urlprefix-"
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session", aiohttp.ClientSession)
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "content-length", "host"}


@dataclass(frozen=True)
class Target:
    service: str
    host: str
    path: str
    dst: str
    opts: str
    tags: tuple[str, ...]


def parse_urlprefix(tag: str) -> tuple[str, str, str] | None:
    """`urlprefix-example.jamfox.dev/ strip=/x` -> (host, path, opts); None if not a route."""
    if not tag.startswith(TAG_PREFIX):
        return None
    spec, _, opts = tag[len(TAG_PREFIX):].partition(" ")
    if "/" not in spec:
        return None
    host, slash, rest = spec.partition("/")
    return host, slash + rest, opts.strip()


def targets(world: World) -> list[Target]:
    """Every (route, instance) pair of passing instances, as fabio's Consul watcher sees it.

    Built once per change of Consul's services or checks (fabio rebuilds its table on each
    watch result, not per request), from one pass over the checks rather than one per
    service: at 100 clients the scan per request was most of the lab's CPU."""
    key = (id(world), world.consul.of("services", "checks"), len(world.services),
           len(world.checks))
    cached = _CACHE.get("targets")
    if cached is not None and cached[0] == key:
        return cached[1]
    failing_node: set[str] = set()  # a node check not passing fails every service on it
    failing_service: set[tuple[str, str]] = set()
    for c in world.checks.values():
        if c.status != "passing":
            if c.service_id == "":
                failing_node.add(c.node)
            else:
                failing_service.add((c.node, c.service_id))
    out = []
    for svc in world.services.values():
        node = world.consul_nodes.get(svc.node)
        if node is None:
            continue
        if svc.node in failing_node or (svc.node, svc.id) in failing_service:
            continue
        other_tags = tuple(t for t in svc.tags if not t.startswith(TAG_PREFIX))
        for tag in svc.tags:
            parsed = parse_urlprefix(tag)
            if parsed is None:
                continue
            host, path, opts = parsed
            out.append(Target(svc.name, host, path, f"http://{svc.address}:{svc.port}/", opts,
                              other_tags))
    result = sorted(out, key=lambda t: (t.host, -len(t.path), t.path, t.dst))
    _CACHE["targets"] = (key, result)
    return result


_CACHE: dict[str, tuple[Any, list[Target]]] = {}


def api_routes(world: World) -> list[dict[str, Any]] | None:
    """`GET /api/routes`: one entry per target; `null` when the table is empty."""
    ts = targets(world)
    if not ts:
        return None
    per_route: dict[tuple[str, str, str], int] = {}
    for t in ts:
        per_route[(t.service, t.host, t.path)] = per_route.get((t.service, t.host, t.path), 0) + 1
    out = []
    for t in ts:
        route: dict[str, Any] = {
            "service": t.service,
            "host": t.host,
            "path": t.path,
            "src": t.host + t.path,
            "dst": t.dst,
            "opts": t.opts,
            "weight": 1 / per_route[(t.service, t.host, t.path)],
        }
        if t.tags:  # admin/api/routes.go: `json:"tags,omitempty"`
            route["tags"] = list(t.tags)
        route.update({"cmd": "route add", "rate1": 0, "pct99": 0})
        out.append(route)
    return out


def routes_body(world: World) -> bytes:
    """`/api/routes` as bytes, encoded once per routing table (100 instances asked every few
    seconds for 5,000 routes each was most of a big lab's CPU)."""
    ts = targets(world)
    cached = _BODY.get("routes")
    if cached is not None and cached[0] is ts:
        return cached[1]
    body = json.dumps(api_routes(world)).encode()
    _BODY["routes"] = (ts, body)
    return body


_BODY: dict[str, tuple[list[Target], bytes]] = {}


def match(world: World, host: str, path: str) -> list[Target]:
    """The targets of the best route for a request: exact host first, then host-less routes;
    within a host the longest matching path prefix."""
    host = host.split(":", 1)[0].lower()
    ts = targets(world)
    for want in (host, ""):
        candidates = [t for t in ts if t.host.lower() == want and path.startswith(t.path)]
        if candidates:
            best = max(len(t.path) for t in candidates)
            return [t for t in candidates if len(t.path) == best]
    return []


def api_app(ctx: SimContext, node: str) -> web.Application:
    """Fabio's UI/API port (9998 in a real lab)."""
    backend = f"fabio:{node}"

    async def routes(_: web.Request) -> web.Response:
        ctx.fabio_routes[node] += 1
        body = ctx.fabio_frozen.get(node) or routes_body(ctx.world)  # a lagging watch: old
        return web.Response(body=body, content_type="application/json")

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def version(_: web.Request) -> web.Response:
        return web.json_response("1.6.3")

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=f"fabio on {node}: see /api/routes\n")

    app = web.Application(middlewares=[fault_middleware(backend, ctx.faults, text_error)])
    app.router.add_get("/api/routes", routes)
    app.router.add_get("/health", health)
    app.router.add_get("/api/version", version)
    app.router.add_get("/", index)
    return app


def proxy_app(ctx: SimContext, node: str) -> web.Application:
    """Fabio's proxy port (9999): routes by Host and path to a passing instance."""
    backend = f"fabio:{node}"
    rng = random.Random(node)

    async def proxy(request: web.Request) -> web.StreamResponse:
        chosen = match(ctx.world, request.host, request.path)
        if not chosen:
            return web.Response(status=404)  # fabio's default: no route, no body
        target = rng.choice(chosen)
        url = target.dst.rstrip("/") + request.path_qs
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        headers["Host"] = request.host
        headers["X-Forwarded-For"] = request.remote or ""
        headers["X-Forwarded-Host"] = request.host
        try:
            async with request.app[SESSION].request(
                request.method, url, headers=headers, data=await request.read(),
                allow_redirects=False,
            ) as upstream:
                body = await upstream.read()
                out = {k: v for k, v in upstream.headers.items()
                       if k.lower() not in HOP_HEADERS}
                return web.Response(status=upstream.status, body=body, headers=out)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return text_error(502, f"fabio: upstream {target.dst} failed: {exc}")

    async def open_session(app: web.Application) -> None:
        app[SESSION] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def close_session(app: web.Application) -> None:
        await app[SESSION].close()

    app = web.Application(middlewares=[fault_middleware(f"{backend}:lb", ctx.faults,
                                                        text_error)])
    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app
