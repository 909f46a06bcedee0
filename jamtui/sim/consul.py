"""The lab's Consul HTTP API, as documented at developer.hashicorp.com/consul/api-docs.

Pages followed: catalog (list-services, list-nodes-for-service, list-nodes), health
(list-service-instances-for-service, list-checks-in-state, list-checks-for-node), agent
(list-members, read-configuration), connect/intentions (list, exact), kv, status,
operator/raft, and the blocking-queries and features/consistency pages. Every answer carries
`X-Consul-Index` (never 0, also on a 404 from the KV store), `X-Consul-KnownLeader` and
`X-Consul-LastContact`; errors are plain text.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import consul_agent, consul_filter, consul_kv
from .acl import consul_rule
from .context import SimContext
from .http import (
    KeptBodies,
    block_until,
    blocking_params,
    fault_middleware,
    go_bool,
    text_error,
)
from .model import Check, ConsulNode, Intention, ServiceInstance
from .world import SimError, World

DEFAULT_WAIT = 300.0
MAX_WAIT = 600.0
VERSION = "1.19.2"

CTX: web.AppKey[SimContext] = web.AppKey("consul_ctx", SimContext)


def build_app(ctx: SimContext) -> web.Application:
    app = web.Application(middlewares=[
        fault_middleware("consul", ctx.faults, text_error),
        _count_middleware(ctx),
        _acl_middleware(ctx),
    ])
    app[CTX] = ctx
    r = app.router
    r.add_get("/v1/catalog/services", catalog_services)
    r.add_get("/v1/catalog/service/{name}", catalog_service)
    r.add_get("/v1/catalog/nodes", catalog_nodes)
    r.add_get("/v1/catalog/node/{node}", catalog_node)
    r.add_get("/v1/health/service/{name}", health_service)
    r.add_get("/v1/health/state/{state:[^/]*}", health_state)
    r.add_get("/v1/health/node/{node}", health_node)
    r.add_get("/v1/health/checks/{name}", health_checks)
    r.add_get("/v1/agent/members", agent_members)
    r.add_get("/v1/agent/self", agent_self)
    r.add_route("PUT", "/v1/agent/force-leave/{node}", agent_force_leave)
    r.add_get("/v1/connect/intentions", intentions_list)
    r.add_route("*", "/v1/connect/intentions/exact", intention_exact)
    r.add_route("*", "/v1/kv/{key:.*}", kv)
    r.add_get("/v1/status/leader", status_leader)
    r.add_get("/v1/status/peers", status_peers)
    r.add_get("/v1/operator/raft/configuration", raft_configuration)
    r.add_get("/v1/operator/autopilot/health", autopilot_health)
    r.add_get("/v1/health/connect/{name}", health_connect)
    for method, path, handler in consul_kv.routes(_world, _headers, _agent_node):
        r.add_route(method, path, handler)
    for method, path, handler in consul_agent.routes(
            _world, _headers, _agent_node, service_json, check_json, node_json):
        r.add_route(method, path, handler)
    return app


def _agent_node(w: World) -> str:
    """The node whose agent the main Consul address is (the first server, as agent/self)."""
    return w.server_names[0] if w.server_names else "vb0"


def _world(request: web.Request) -> World:
    return request.app[CTX].world


def _headers(world: World, index: int) -> dict[str, str]:
    return {
        "X-Consul-Index": str(max(1, index)),
        "X-Consul-KnownLeader": "true" if world.consul_leader() else "false",
        "X-Consul-LastContact": "0",
    }


def _count_middleware(ctx: SimContext) -> Any:
    """What Consul was asked, for tests that measure what a client costs the server: by
    method, path and the names of the query parameters (`GET /v1/health/state/any?index&wait`)."""
    @web.middleware
    async def middleware(request: web.Request, handler: Callable[..., Awaitable[Any]]) -> Any:
        names = "&".join(sorted(set(request.query)))
        ctx.consul_requests[f"{request.method} {request.path}{'?' + names if names else ''}"] \
            += 1
        return await handler(request)

    return middleware


def _acl_middleware(ctx: SimContext) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Callable[..., Awaitable[Any]]) -> Any:
        token = request.headers.get("X-Consul-Token") or request.query.get("token", "")
        auth = request.headers.get("Authorization", "")
        if not token and auth.startswith("Bearer "):
            token = auth[len("Bearer "):]
        world = ctx.world
        headers = _headers(world, world.consul.index)
        capability, empty = consul_rule(request.method, request.path)
        kv_list = (request.method == "GET" and request.path.startswith("/v1/kv/")
                   and (_flag(request, "keys") or _flag(request, "recurse")))
        if kv_list:  # a KV listing filters (api-docs/kv, ACLs): what the token may not read
            empty = "[]"
        filtered = False
        if capability is not None:
            grant = ctx.secrets.consul_grant(token)
            if grant is None:
                return web.Response(status=403, text="ACL not found", headers=headers)
            if not grant.allows(capability):
                if empty is None:
                    return web.Response(status=403, headers=headers, text=(
                        f"Permission denied: token with AccessorID '{grant.accessor}' lacks "
                        f"permission '{capability}'"))
                filtered = True  # a list: run (and block) as usual, then filter it
        dc = request.query.get("dc")
        if dc and dc != world.datacenter:
            return web.Response(status=500, text="No path to datacenter", headers=headers)
        try:
            resp = await handler(request)
        except SimError as exc:
            return web.Response(status=exc.status, text=exc.message,
                                headers=_headers(world, world.consul.index))
        except web.HTTPClientError as exc:  # a bad `index` or `wait`: still with the index
            return web.Response(status=exc.status, text=exc.text or exc.reason,
                                headers=_headers(world, world.consul.index))
        if filtered and kv_list and resp.status in (200, 404):
            # keys at the root answer an empty list; any other empty listing is a 404
            root = request.path == "/v1/kv/" and _flag(request, "keys")
            return web.Response(status=200 if root else 404, text="[]" if root else "",
                                content_type="application/json" if root else "text/plain",
                                headers={**_headers(world, world.consul.of("kvs")),
                                         "X-Consul-Results-Filtered-By-ACLs": "true"})
        if filtered and resp.status == 200:
            return web.Response(text=empty, content_type="application/json", headers={
                "X-Consul-Index": resp.headers.get("X-Consul-Index", "1"),
                "X-Consul-KnownLeader": resp.headers.get("X-Consul-KnownLeader", "true"),
                "X-Consul-LastContact": "0", "X-Consul-Results-Filtered-By-ACLs": "true"})
        return resp

    return middleware


# the health reads' bodies (`_read`'s `keep`): at 5,000 instances a snapshot's 55
# `/v1/health/service/:name` reads are 8.6 MB of JSON, ~0.35 s of the lab's one core each time
_BODIES = KeptBodies(128)  # a body per service read, and a few more


async def _read(request: web.Request, tables: tuple[str, ...],
                render: Callable[[World], Any], need_leader: bool = True,
                keep: bool = False) -> web.Response:
    """A blocking read: hold until the tables' index passes `index` or `wait` runs out.
    `keep`: the body is kept (`_BODIES`) while the tables and the catalog's sizes stay."""
    world = _world(request)
    params = blocking_params(request, DEFAULT_WAIT, MAX_WAIT)
    if need_leader and world.consul_leader() is None:
        raise SimError(500, "No cluster leader")
    expression = request.query.get("filter")
    if expression:
        _check_filter(expression)
    await block_until(params, lambda: world.consul.of(*tables), world.wait_change)
    if need_leader and world.consul_leader() is None:
        raise SimError(500, "No cluster leader")
    index = world.consul.of(*tables)
    headers = _headers(world, index)
    if not keep:
        return web.json_response(_body(world, render, expression), headers=headers)
    made_at = (index, len(world.services), len(world.checks), len(world.consul_nodes))
    body = _BODIES.body(world, request, made_at,
                        lambda: json.dumps(_body(world, render, expression)).encode())
    return web.Response(body=body, content_type="application/json", headers=headers)


def _body(world: World, render: Callable[[World], Any], expression: str | None) -> Any:
    body = render(world)
    if expression and isinstance(body, list):
        body = _filtered(expression, body)
    return body


def _check_filter(expression: str) -> None:
    """A `filter=` that does not parse is a 400 before anything blocks (features/filtering)."""
    try:
        consul_filter.parse(expression)
    except consul_filter.FilterError as exc:
        raise SimError(400, consul_filter.PREFIX + str(exc)) from None


def _filtered(expression: str, items: list[Any]) -> list[Any]:
    try:
        return consul_filter.apply(expression, items)
    except consul_filter.FilterError as exc:
        raise SimError(400, str(exc)) from None


# -- renderers ------------------------------------------------------------------------------


def _tagged(address: str) -> dict[str, str]:
    return {"lan": address, "lan_ipv4": address, "wan": address, "wan_ipv4": address}


def node_json(n: ConsulNode) -> dict[str, Any]:
    return {"ID": n.id, "Node": n.name, "Address": n.address, "Datacenter": n.datacenter,
            "TaggedAddresses": _tagged(n.address), "Meta": dict(n.meta),
            "CreateIndex": n.create_index, "ModifyIndex": n.modify_index}


def service_json(s: ServiceInstance) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ID": s.id, "Service": s.name, "Tags": list(s.tags), "Address": s.address,
        "TaggedAddresses": {"lan_ipv4": {"Address": s.address, "Port": s.port},
                            "wan_ipv4": {"Address": s.address, "Port": s.port}},
        "Meta": dict(s.meta), "Port": s.port, "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": False, "Proxy": dict(s.proxy) if s.proxy else {},
        "Connect": {}, "PeerName": "", "Datacenter": "",
        "CreateIndex": s.create_index, "ModifyIndex": s.modify_index,
    }
    if s.kind:
        out["Kind"] = s.kind
    return out


def check_json(c: Check) -> dict[str, Any]:
    # structs.HealthCheckDefinition marshals its durations as strings, empty ones omitted
    definition = {"Interval": c.interval} if c.interval else {}
    return {
        "Node": c.node, "CheckID": c.check_id, "Name": c.name, "Status": c.status,
        "Notes": c.notes, "Output": c.output, "ServiceID": c.service_id,
        "ServiceName": c.service_name, "ServiceTags": list(c.service_tags), "Type": c.type,
        "Interval": c.interval, "Timeout": "", "ExposedPort": 0, "Definition": definition,
        "CreateIndex": c.create_index, "ModifyIndex": c.modify_index,
    }


def intention_json(i: Intention) -> dict[str, Any]:
    return {
        "ID": i.id, "Description": i.description, "SourceNS": "default",
        "SourceName": i.source, "DestinationNS": "default", "DestinationName": i.destination,
        "SourceType": "consul", "Action": i.action, "Precedence": i.precedence, "Meta": {},
        "CreatedAt": i.created_at, "UpdatedAt": i.updated_at,
        "CreateIndex": i.create_index, "ModifyIndex": i.modify_index,
    }


def _flag(request: web.Request, name: str) -> bool:
    """Consul's presence flags (`?passing`, `?recurse`, `?keys`, `?raw`): any value but false."""
    return name in request.query and request.query[name] not in ("0", "false")


# -- catalog and health ---------------------------------------------------------------------


async def catalog_services(request: web.Request) -> web.Response:
    expression = request.query.get("filter")

    def render(w: World) -> dict[str, list[str]]:
        if not expression:
            return w.service_names()
        # api-docs/catalog#filtering-1: the filter sees each instance (ServiceName,
        # ServiceTags, ServiceMeta, ...); the answer is still the name -> tags map
        out: dict[str, set[str]] = {}
        for svc in w.services.values():
            doc = {"ServiceName": svc.name, "ServiceID": svc.id, "ServiceTags": list(svc.tags),
                   "ServiceMeta": dict(svc.meta), "ServiceKind": svc.kind,
                   "ServicePort": svc.port, "ServiceAddress": svc.address, "Node": svc.node}
            if _filtered(expression, [doc]):
                out.setdefault(svc.name, set()).update(svc.tags)
        return {k: sorted(v) for k, v in sorted(out.items())}

    return await _read(request, ("services",), render)


async def catalog_service(request: web.Request) -> web.Response:
    name, tag = request.match_info["name"], request.query.get("tag")

    def render(w: World) -> list[dict[str, Any]]:
        out = []
        for node, svc, _checks in w.service_entries(name):
            if tag and tag not in svc.tags:
                continue
            out.append({
                "ID": node.id, "Node": node.name, "Address": node.address,
                "Datacenter": node.datacenter, "TaggedAddresses": _tagged(node.address),
                "NodeMeta": dict(node.meta), "ServiceKind": svc.kind, "ServiceID": svc.id,
                "ServiceName": svc.name, "ServiceTags": list(svc.tags),
                "ServiceAddress": svc.address, "ServiceWeights": {"Passing": 1, "Warning": 1},
                "ServiceMeta": dict(svc.meta), "ServicePort": svc.port,
                "ServiceEnableTagOverride": False,
                "ServiceProxy": dict(svc.proxy) if svc.proxy else {}, "ServiceConnect": {},
                "CreateIndex": svc.create_index, "ModifyIndex": svc.modify_index,
            })
        return out

    return await _read(request, ("services",), render)


async def catalog_nodes(request: web.Request) -> web.Response:
    return await _read(request, ("nodes",), lambda w: [
        node_json(n) for n in sorted(w.consul_nodes.values(), key=lambda n: n.name)
        if not n.left  # a node that left is reaped from the catalog
    ])


async def catalog_node(request: web.Request) -> web.Response:
    name = request.match_info["node"]

    def render(w: World) -> Any:
        node = w.consul_nodes.get(name)
        if node is None or node.left:
            return None
        services = {s.id: service_json(s) for s in w.services.values() if s.node == name}
        return {"Node": node_json(node), "Services": services}

    return await _read(request, ("nodes", "services"), render)


async def health_service(request: web.Request) -> web.Response:
    name, tag = request.match_info["name"], request.query.get("tag")
    passing = _flag(request, "passing")

    def render(w: World) -> list[dict[str, Any]]:
        out = []
        for node, svc, checks in w.service_entries(name):
            if tag and tag not in svc.tags:
                continue
            if passing and any(c.status != "passing" for c in checks):
                continue
            out.append({"Node": node_json(node), "Service": service_json(svc),
                        "Checks": [check_json(c) for c in checks]})
        return out

    return await _read(request, ("services", "checks", "nodes"), render, keep=True)


async def health_connect(request: web.Request) -> web.Response:
    """api-docs/health#list-service-instances-for-connect-enabled-service."""
    name = request.match_info["name"]
    passing = _flag(request, "passing")

    def render(w: World) -> list[dict[str, Any]]:
        return [{"Node": node_json(node), "Service": service_json(svc),
                 "Checks": [check_json(c) for c in checks]}
                for node, svc, checks in consul_agent.connect_entries(w, name)
                if not (passing and any(c.status != "passing" for c in checks))]

    return await _read(request, ("services", "checks", "nodes"), render, keep=True)


async def health_state(request: web.Request) -> web.Response:
    """api-docs/health#list-checks-in-state: `any` is every check, another state the checks
    in it; a state no check has (Consul keeps no list of them) is an empty list, not an
    error (state/catalog.go checksInStateTxn); the index is the checks table's."""
    state = request.match_info["state"]
    if not state:
        raise SimError(400, "Missing check state")
    return await _read(request, ("checks",), lambda w: [
        check_json(c) for c in sorted(w.checks.values(), key=lambda c: (c.node, c.check_id))
        if state == "any" or c.status == state
    ])


async def health_node(request: web.Request) -> web.Response:
    name = request.match_info["node"]
    return await _read(request, ("checks",), lambda w: [
        check_json(c) for c in sorted(w.checks.values(), key=lambda c: c.check_id)
        if c.node == name
    ])


async def health_checks(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    return await _read(request, ("checks",), lambda w: [
        check_json(c) for c in sorted(w.checks.values(), key=lambda c: (c.node, c.check_id))
        if c.service_name == name
    ])


# -- agent, status, operator --------------------------------------------------------------


def _member(w: World, n: ConsulNode) -> dict[str, Any]:
    role = "consul" if n.server else "node"
    tags = {"role": role, "dc": w.datacenter, "segment": "", "build": f"{VERSION}:jamlab",
            "vsn": "2", "vsn_min": "2", "vsn_max": "3"}
    if n.server:
        tags.update({"port": "8300", "expect": str(len(w.server_names)), "raft_vsn": "3"})
    return {"Name": n.name, "Addr": n.address, "Port": 8301, "Tags": tags,
            "Status": 1 if n.alive else 3 if n.left else 4, "ProtocolMin": 1, "ProtocolMax": 5,
            "ProtocolCur": 2, "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4}


async def agent_members(request: web.Request) -> web.Response:
    # served by the local agent: answers without a leader, as a real agent does
    return await _read(request, ("members",), lambda w: [
        _member(w, n) for n in sorted(w.consul_nodes.values(), key=lambda n: n.name)
    ], need_leader=False)


async def agent_self(request: web.Request) -> web.Response:
    w = _world(request)
    name = w.server_names[0] if w.server_names else "vb0"
    node = w.consul_nodes.get(name)
    return web.json_response({
        "Config": {"Datacenter": w.datacenter, "NodeName": name, "Server": True,
                   "Version": VERSION, "Revision": "jamlab"},
        "Member": _member(w, node) if node else {},
    }, headers=_headers(w, w.consul.index))


async def agent_force_leave(request: web.Request) -> web.Response:
    """Forces a member into the left state (`consul force-leave`); an unknown node is
    Consul's 500 "agent: No node found with name ..."."""
    name = request.match_info["node"]
    if not _world(request).agent_leave(name):
        raise SimError(500, f"agent: No node found with name '{name}'")
    return web.Response(status=200)


def _servers(w: World) -> list[tuple[str, str]]:
    out = []
    for name in w.server_names:
        node = w.consul_nodes.get(name)
        vm = next((v for v in w.vms.values() if v.name == name), None)
        address = node.address if node else (vm.ip if vm and vm.ip else "127.0.0.1")
        out.append((name, f"{address}:8300"))
    return out


async def status_leader(request: web.Request) -> web.Response:
    w = _world(request)
    leader = w.consul_leader()
    return web.json_response(dict(_servers(w)).get(leader or "", ""),
                             headers=_headers(w, w.consul.index))


async def status_peers(request: web.Request) -> web.Response:
    w = _world(request)
    return web.json_response([a for _, a in _servers(w)], headers=_headers(w, w.consul.index))


async def raft_configuration(request: web.Request) -> web.Response:
    w = _world(request)
    leader = w.consul_leader()
    if leader is None:
        raise SimError(500, "No cluster leader")
    servers = [
        {"ID": w.consul_nodes[n].id if n in w.consul_nodes else n, "Node": n, "Address": a,
         "Leader": n == leader, "Voter": True, "ProtocolVersion": "3"}
        for n, a in _servers(w)
    ]
    return web.json_response({"Servers": servers, "Index": w.consul.index},
                             headers=_headers(w, w.consul.index))


async def autopilot_health(request: web.Request) -> web.Response:
    """api-docs/operator/autopilot#read-health: per server health from the leader's view and
    FailureTolerance; HTTP 429 with the same body while any server is unhealthy."""
    w = _world(request)
    leader = w.consul_leader()
    if leader is None:
        raise SimError(500, "No cluster leader")
    servers = []
    for name, address in _servers(w):
        node = w.consul_nodes.get(name)
        alive = bool(node and node.alive)
        servers.append({
            "ID": node.id if node else name, "Name": name, "Address": address,
            "SerfStatus": "alive" if alive else "failed", "Version": VERSION,
            "Leader": name == leader,
            "LastContact": "0s" if name == leader else ("9.2ms" if alive else "10.1s"),
            "LastTerm": 2, "LastIndex": w.consul.index if alive else 0, "Healthy": alive,
            "Voter": True, "StableSince": "2024-01-01T00:00:00Z",
        })
    healthy = sum(1 for s in servers if s["Healthy"])
    body = {"Healthy": healthy == len(servers),
            "FailureTolerance": max(0, healthy - (len(servers) // 2 + 1)), "Servers": servers}
    return web.json_response(body, status=200 if body["Healthy"] else 429,
                             headers=_headers(w, w.consul.index))


# -- intentions -----------------------------------------------------------------------------


async def intentions_list(request: web.Request) -> web.Response:
    return await _read(request, ("intentions",), lambda w: [
        intention_json(i) for i in sorted(
            w.intentions.values(), key=lambda i: (-i.precedence, i.source, i.destination))
    ])


async def intention_exact(request: web.Request) -> web.Response:
    w = _world(request)
    source, dest = request.query.get("source"), request.query.get("destination")
    if not source or not dest:
        raise SimError(400, "required query parameter 'source' and 'destination' not set")
    if request.method == "GET":
        found = next((i for i in w.intentions.values()
                      if i.source == source and i.destination == dest), None)
        if found is None:
            raise SimError(404, "Intention not found")
        return web.json_response(intention_json(found), headers=_headers(w, w.consul.index))
    if request.method == "PUT":
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError as exc:
            raise SimError(400, f"Request decode failed: {exc}") from None
        if not isinstance(body, dict):
            raise SimError(400, "Request decode failed: expected an intention object")
        w.intention_upsert(source, dest, str(body.get("Action", "")),
                           str(body.get("Description", "")))
        return web.json_response(True, headers=_headers(w, w.consul.index))
    if request.method == "DELETE":
        w.intention_delete(source, dest)
        return web.json_response(True, headers=_headers(w, w.consul.index))
    raise SimError(405, f"method {request.method} not allowed")


# -- KV ----------------------------------------------------------------------------------


async def kv(request: web.Request) -> web.StreamResponse:
    w = _world(request)
    key = request.match_info["key"]
    if request.method == "GET":
        return await _kv_get(request, w, key)
    if request.method == "PUT":
        if not key:
            raise SimError(400, "Missing key name")
        ok = consul_kv.kv_write(w, request, key, await request.read())
        return web.json_response(ok, headers=_headers(w, w.consul.of("kvs")))
    if request.method == "DELETE":
        ok = consul_kv.kv_remove(w, request, key, _flag(request, "recurse"))
        return web.json_response(ok, headers=_headers(w, w.consul.of("kvs")))
    raise SimError(405, f"method {request.method} not allowed")


async def _kv_get(request: web.Request, w: World, key: str) -> web.StreamResponse:
    params = blocking_params(request, DEFAULT_WAIT, MAX_WAIT)
    if w.consul_leader() is None:
        raise SimError(500, "No cluster leader")
    await block_until(params, lambda: w.consul.of("kvs"), w.wait_change)
    headers = _headers(w, w.consul.of("kvs"))
    recurse, keys = _flag(request, "recurse"), _flag(request, "keys")
    if keys:
        sep = request.query.get("separator", "")
        found: set[str] = set()
        for k in w.kv:
            if k.startswith(key):
                rest = k[len(key):]
                if sep and sep in rest:
                    rest = rest[: rest.index(sep) + len(sep)]
                found.add(key + rest)
        if not found and key:  # kvs_endpoint.go: the root's listing is an empty list
            return web.Response(status=404, headers=headers)
        return web.json_response(sorted(found), headers=headers)
    entries = sorted((e for k, e in w.kv.items() if k.startswith(key)) if recurse
                     else [w.kv[key]] if key in w.kv else [], key=lambda e: e.key)
    if not entries:
        return web.Response(status=404, headers=headers)
    if _flag(request, "raw"):
        return web.Response(body=entries[0].value, headers=headers)
    return web.json_response([consul_kv.entry_json(e) for e in entries], headers=headers)


# -- a node's own agent -----------------------------------------------------------------------

def agent_app(ctx: SimContext, node: str) -> web.Application:
    """The HTTP API of one node's agent: what acts on that node alone (agent/maintenance)."""
    app = web.Application(middlewares=[
        fault_middleware(f"consul:agent:{node}", ctx.faults, text_error),
        _acl_middleware(ctx),
    ])
    app[CTX] = ctx

    async def maintenance(request: web.Request) -> web.Response:
        raw = request.query.get("enable")
        if raw is None:
            raise SimError(400, "Missing value for enable")
        enable = go_bool(raw)
        if enable is None:
            raise SimError(400, f"Invalid value for enable: {raw!r}")
        ctx.world.node_maintenance(node, enable, request.query.get("reason", ""))
        return web.Response(status=200)

    async def self_(request: web.Request) -> web.Response:
        w = ctx.world
        n = w.consul_nodes.get(node)
        return web.json_response({
            "Config": {"Datacenter": w.datacenter, "NodeName": node,
                       "Server": bool(n and n.server), "Version": VERSION},
            "Member": _member(w, n) if n else {},
        }, headers=_headers(w, w.consul.index))

    async def leave(request: web.Request) -> web.Response:
        ctx.world.agent_leave(node)
        return web.Response(status=200)

    app.router.add_route("PUT", "/v1/agent/maintenance", maintenance)
    app.router.add_route("PUT", "/v1/agent/leave", leave)
    app.router.add_get("/v1/agent/self", self_)
    for method, path, handler in consul_agent.routes(
            lambda _r: ctx.world, _headers, lambda _w: node, service_json, check_json,
            node_json):
        app.router.add_route(method, path, handler)
    return app
