"""The lab's Nomad API as third-party clients read it: one middleware over sim/nomad.py's
handlers (kept apart from them), so that the official Go client, python-nomad, Ansible's
modules and other TUIs meet what a real Nomad 1.8 answers. Pages followed:

- api-docs/nodes "List Nodes": `resources=true` adds `NodeResources` and `ReservedResources`,
  `os=true` adds `Attributes` with `os.name` only (nomad/structs Node.Stub); a stub's
  `Address` is the host of the node's `HTTPAddr` (net.SplitHostPort in Node.Stub).
- api-docs/nodes "Read Node": `HTTPAddr` is where the node's agent answers HTTP; in the lab
  every node's agent is the lab's Nomad API (clients such as the Go API client dial it
  directly for logs, fs and exec), with `TLSEnabled` as that API serves. A drain with a
  deadline has `DrainStrategy.ForceDeadline` = start + deadline and `StartedAt` (nomad/
  node_endpoint.go UpdateDrain).
- api-docs "Filtering" (`filter=`, go-bexpr, sim/bexpr.py) on the list endpoints: a bad
  expression is HTTP 400 `failed to read filter expression: …`, a selector naming no field
  400 `error finding value in datum: …` (the paginator's errors).
- api-docs/volumes "List Volumes": without `type` the answer is `[]`, with a type other than
  `csi` it is `null` (command/agent/csi_endpoint.go).
- Allocation and node IDs are looked up exactly (state store by ID); only `prefix=` on the
  list endpoints matches prefixes.
- api-docs/agent "Query Self": `stats` with `nomad`, `raft`, `serf`, `runtime`, `client`
  maps of strings.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from . import bexpr
from .context import SimContext
from .http import text_error

# list endpoints whose answer is a JSON array `filter=` applies to
_FILTERED = re.compile(r"/v1/(jobs|allocations|nodes|volumes|deployments|evaluations|"
                       r"job/[^/]+/(allocations|evaluations|deployments)|"
                       r"node/[^/]+/allocations|namespaces)")
_ALLOC_PATH = re.compile(r"/v1/(allocation|client/allocation|client/fs/[a-z]+)/([^/]+)(/.*)?")
_NODE_PATH = re.compile(r"/v1/node/([^/]+)(/.*)?")
_DRAINS_ATTR = "_jamlab_drain_started"


def http_addr(ctx: SimContext) -> str:
    """host:port of the lab's Nomad API: what every lab node advertises as its HTTP address."""
    url = ctx.urls.get("nomad", "")
    return urlsplit(url).netloc if url else "127.0.0.1:4646"


def _drains(ctx: SimContext) -> dict[str, int]:
    drains = getattr(ctx, _DRAINS_ATTR, None)
    if drains is None:
        drains = {}
        setattr(ctx, _DRAINS_ATTR, drains)
    return drains


def _rfc3339(ns: int) -> str:
    secs, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def node_resources(n: Any) -> dict[str, Any]:
    """nomad/structs NodeResources, as the JSON API renders it."""
    return {
        "Cpu": {"CpuShares": n.cores * 2400, "TotalCpuCores": n.cores,
                "ReservableCpuCores": list(range(n.cores))},
        "Memory": {"MemoryMB": n.memory_mb},
        "Disk": {"DiskMB": 50 * 1024},
        "Networks": [{"Mode": "host", "Device": "eth0", "CIDR": f"{n.address}/32",
                      "IP": n.address, "MBits": 1000, "DNS": None, "ReservedPorts": "",
                      "DynamicPorts": None}],
        "Devices": None,
        "NodeNetworks": [{"Mode": "host", "Device": "eth0", "MacAddress": "",
                          "Speed": 1000, "Addresses": [{"Family": "ipv4", "Alias": "default",
                                                        "Address": n.address,
                                                        "ReservedPorts": "", "Gateway": ""}]}],
        "MinDynamicPort": 20000,
        "MaxDynamicPort": 32000,
    }


RESERVED = {"Cpu": {"CpuShares": 0, "ReservedCpuCores": None}, "Memory": {"MemoryMB": 0},
            "Disk": {"DiskMB": 0}, "Networks": {"ReservedHostPorts": ""}}


def agent_stats(ctx: SimContext) -> dict[str, dict[str, str]]:
    """api-docs/agent#query-self `stats`: every value a string, as Nomad's Stats() maps are."""
    w = ctx.world
    leader = w.nomad_leader()
    servers = list(w.server_names)
    first = servers[0] if servers else "vb0"
    alive = [s for s in servers if (node := w.consul_nodes.get(s)) is not None and node.alive]
    index = str(w.nomad.index)
    return {
        "nomad": {"server": "true", "leader": "true" if leader == first else "false",
                  "leader_addr": f"{leader}:4647" if leader else "", "bootstrap": "false",
                  "known_regions": "1"},
        "raft": {"state": "Leader" if leader == first else "Follower", "term": "2",
                 "last_log_index": index, "last_log_term": "2", "commit_index": index,
                 "applied_index": index, "fsm_pending": "0", "last_snapshot_index": "0",
                 "last_snapshot_term": "0", "num_peers": str(max(0, len(servers) - 1)),
                 "protocol_version": "3", "protocol_version_min": "0",
                 "protocol_version_max": "3", "snapshot_version_min": "0",
                 "snapshot_version_max": "1", "last_contact": "0" if leader == first else "12ms"},
        "serf": {"members": str(len(servers)), "failed": str(len(servers) - len(alive)),
                 "left": "0", "health_score": "0", "member_time": "1", "event_time": "1",
                 "query_time": "1", "intent_queue": "0", "event_queue": "0",
                 "query_queue": "0", "encrypted": "false", "coordinate_resets": "0"},
        "runtime": {"arch": "amd64", "cpu_count": "2", "goroutines": "97",
                    "kernel.name": "linux", "max_procs": "2", "version": "go1.22.7"},
    }


def _bad(message: str) -> web.Response:
    return text_error(400, message)


async def _json_of(resp: Any) -> Any:
    if not isinstance(resp, web.Response) or resp.status != 200 or resp.body is None:
        return None
    body = resp.body
    if not isinstance(body, (bytes, bytearray)):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _replace(resp: web.Response, value: Any) -> web.Response:
    out = web.json_response(value, status=resp.status)
    for name, val in resp.headers.items():
        if name.lower().startswith("x-nomad-"):
            out.headers[name] = val
    return out


def middleware(ctx: SimContext) -> Any:
    """The Nomad app's last middleware (after faults and ACLs)."""

    @web.middleware
    async def reads(request: web.Request, handler: Callable[..., Awaitable[Any]]) -> Any:
        path, method, world = request.path, request.method, ctx.world
        # exact IDs
        m = _ALLOC_PATH.fullmatch(path)
        if m and m.group(2) not in world.allocs:
            return text_error(404, "alloc not found")
        m = _NODE_PATH.fullmatch(path)
        if m and m.group(1) not in world.nodes:
            return text_error(404, "node not found")
        if path == "/v1/volumes" and method == "GET" and request.query.get("type") != "csi":
            if "type" not in request.query:
                return web.json_response([], headers={"X-Nomad-Index": str(world.nomad.index)})
            return web.json_response(None, headers={"X-Nomad-Index": str(world.nomad.index)})
        expr = None
        if method == "GET" and request.query.get("filter") and _FILTERED.fullmatch(path):
            try:
                expr = bexpr.compile(request.query["filter"])
            except bexpr.BexprError as exc:
                return _bad(f"failed to create result paginator: failed to read filter "
                            f"expression: {exc}")
        resp = await handler(request)
        if m and m.group(2) == "/drain" and method in ("PUT", "POST") and \
                getattr(resp, "status", 0) == 200:
            node = world.nodes.get(m.group(1))
            if node is not None and node.drain:
                _drains(ctx)[node.id] = time.time_ns()
            else:
                _drains(ctx).pop(m.group(1), None)
        if method != "GET":
            return resp
        if path == "/v1/nodes" or expr is not None or (m and not m.group(2)) or \
                path == "/v1/agent/self":
            body = await _json_of(resp)
            if body is None:
                return resp
            if path == "/v1/nodes" and isinstance(body, list):
                body = [_list_node(ctx, request, n) for n in body]
            elif m and not m.group(2) and isinstance(body, dict):
                body = _read_node(ctx, body)
            elif path == "/v1/agent/self" and isinstance(body, dict) and not body.get("stats"):
                body["stats"] = agent_stats(ctx)
            if expr is not None and isinstance(body, list):
                try:
                    body = expr.filter(body)
                except bexpr.BexprError as exc:
                    return _bad(f"failed to read result page: {exc}")
            return _replace(resp, body)
        return resp

    return reads


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name)
    return raw is not None and raw.lower() in ("", "1", "t", "true")


def _list_node(ctx: SimContext, request: web.Request, stub: dict[str, Any]) -> dict[str, Any]:
    node = ctx.world.nodes.get(str(stub.get("ID", "")))
    stub["Address"] = http_addr(ctx).rsplit(":", 1)[0]
    if node is None:
        return stub
    if _flag(request, "os"):
        stub = {"Address": stub.pop("Address"), "ID": stub.pop("ID"),
                "Attributes": {"os.name": "debian"}, **stub}
    if _flag(request, "resources"):
        stub["NodeResources"] = node_resources(node)
        stub["ReservedResources"] = RESERVED
    return stub


def _read_node(ctx: SimContext, body: dict[str, Any]) -> dict[str, Any]:
    node = ctx.world.nodes.get(str(body.get("ID", "")))
    addr = http_addr(ctx)
    body["HTTPAddr"] = addr
    body["Address"] = addr.rsplit(":", 1)[0]
    body["TLSEnabled"] = ctx.urls.get("nomad", "").startswith("https://")
    if node is not None:
        body["NodeResources"] = node_resources(node)
        body["ReservedResources"] = RESERVED
    strategy = body.get("DrainStrategy")
    started = _drains(ctx).get(str(body.get("ID", "")))
    if isinstance(strategy, dict):
        deadline = int(strategy.get("Deadline") or 0)
        if started is not None:
            strategy["StartedAt"] = _rfc3339(started)
            if deadline > 0:
                strategy["ForceDeadline"] = _rfc3339(started + deadline)
    return body
