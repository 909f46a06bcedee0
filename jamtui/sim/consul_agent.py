"""The lab's Consul agent service and check endpoints, as Consul's documentation says.

Pages followed (developer.hashicorp.com/consul/api-docs/...):
- agent/service (register-service, deregister-service, list-services): a service and its
  `Check`/`Checks` registered on the agent's node; check IDs `service:<id>` (or
  `service:<id>:<n>` for several); a check starts `critical` unless `Status` says otherwise;
  an unknown ID is a 404 `Unknown service ID "<id>". Ensure that the service ID is passed,
  not the service name.`
- agent/check (register-check, deregister-check, ttl-check-pass/warn/fail, ttl-check-update,
  list-checks): `?note=` becomes the output; `update` takes `{"Status", "Output"}`; only a TTL
  check takes these (500 `CheckID "<id>" does not have associated TTL`); an unknown check is a
  404 `Unknown check ID "<id>". Ensure that the check ID is passed, not the check name.`
- health (list-service-instances-for-connect-enabled-service): `/v1/health/connect/:service`
  answers the Connect-capable instances (sidecar proxies whose destination is the service),
  in the shape of `/v1/health/service/:service`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from . import consul_filter
from .model import Check, ServiceInstance
from .world import SimError, World

WorldOf = Callable[[web.Request], World]
HeadersOf = Callable[[World, int], dict[str, str]]
STATUSES = ("passing", "warning", "critical")


def _fold(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        return {}
    return {str(k).lower(): v for k, v in body.items()}


async def _object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise SimError(400, f"Request decode failed: {exc}") from None
    if not isinstance(body, dict):
        raise SimError(400, "Request decode failed: expected a JSON object")
    return _fold(body)


def _unknown_check(check_id: str) -> SimError:
    return SimError(404, f"Unknown check ID {json.dumps(check_id)}. Ensure that the check ID "
                         "is passed, not the check name.")


def _check_from(node: str, d: dict[str, Any], default_id: str, service: ServiceInstance | None
                ) -> Check:
    name = str(d.get("name") or (f"Service '{service.name}' check" if service else ""))
    if not name:
        raise SimError(400, "Missing check name")
    status = str(d.get("status") or "critical")
    if status not in STATUSES:
        raise SimError(400, f"Invalid check status: '{status}'")
    if d.get("ttl"):
        type_ = "ttl"
    elif d.get("http"):
        type_ = "http"
    elif d.get("tcp"):
        type_ = "tcp"
    elif d.get("grpc"):
        type_ = "grpc"
    else:
        type_ = "script" if d.get("args") else ""
    return Check(node, str(d.get("checkid") or d.get("id") or default_id), name, status,
                 notes=str(d.get("notes") or ""), output="",
                 service_id=service.id if service else "",
                 service_name=service.name if service else "",
                 service_tags=list(service.tags) if service else [], type=type_,
                 interval=str(d.get("interval") or ""))


def _put_check(w: World, check: Check) -> None:
    idx = w.consul.bump("checks")
    old = w.checks.get((check.node, check.check_id))
    check.create_index = old.create_index if old else idx
    check.modify_index = idx
    w.checks[(check.node, check.check_id)] = check


def register_service(w: World, node: str, d: dict[str, Any]) -> ServiceInstance:
    name = str(d.get("name") or "")
    if not name:
        raise SimError(400, "Missing service name")
    sid = str(d.get("id") or name)
    tags = d.get("tags") or []
    meta = d.get("meta") or {}
    if not isinstance(tags, list) or not isinstance(meta, dict):
        raise SimError(400, "Request decode failed: Tags is a list, Meta a map of strings")
    try:
        port = int(d.get("port") or 0)
    except (TypeError, ValueError):
        raise SimError(400, "Request decode failed: Port is a number") from None
    proxy = d.get("proxy") if isinstance(d.get("proxy"), dict) else None
    svc = ServiceInstance(sid, name, node, str(d.get("address") or ""), port,
                          [str(t) for t in tags], {str(k): str(v) for k, v in meta.items()},
                          kind=str(d.get("kind") or ""), proxy=proxy)
    old = w.services.get((node, sid))
    idx = w.consul.bump("services")
    svc.create_index = old.create_index if old else idx
    svc.modify_index = idx
    w.services[(node, sid)] = svc
    defs: list[Any] = []
    if isinstance(d.get("check"), dict) and d["check"]:
        defs.append(d["check"])
    if isinstance(d.get("checks"), list):
        defs.extend(c for c in d["checks"] if isinstance(c, dict))
    for n, raw in enumerate(defs, start=1):
        default_id = f"service:{sid}" if len(defs) == 1 else f"service:{sid}:{n}"
        _put_check(w, _check_from(node, _fold(raw), default_id, svc))
    w.notify()
    return svc


def deregister_service(w: World, node: str, sid: str) -> None:
    if (node, sid) not in w.services:
        raise SimError(404, f"Unknown service ID {json.dumps(sid)}. Ensure that the service "
                            "ID is passed, not the service name.")
    w.consul.bump("services", "checks")
    del w.services[(node, sid)]
    for key in [k for k, c in w.checks.items() if c.node == node and c.service_id == sid]:
        del w.checks[key]
    w.notify()


def update_ttl(w: World, node: str, check_id: str, status: str, output: str) -> None:
    check = w.checks.get((node, check_id))
    if check is None:
        raise _unknown_check(check_id)
    if check.type != "ttl":
        raise SimError(500, f"CheckID {json.dumps(check_id)} does not have associated TTL")
    idx = w.consul.bump("checks")
    check.status, check.output, check.modify_index = status, output, idx
    w.notify()


def routes(world_of: WorldOf, headers: HeadersOf, node_of: Callable[[World], str],
           service_json: Callable[[ServiceInstance], dict[str, Any]],
           check_json: Callable[[Check], dict[str, Any]],
           node_json: Callable[[Any], dict[str, Any]]
           ) -> list[tuple[str, str, Callable[[web.Request], Any]]]:
    """(method, path, handler) for the agent's service/check endpoints and health/connect;
    `node_of` names the node whose agent answers."""

    def ok(w: World) -> web.Response:
        return web.Response(status=200, headers=headers(w, w.consul.index))

    async def svc_register(request: web.Request) -> web.Response:
        w = world_of(request)
        register_service(w, node_of(w), await _object(request))
        return ok(w)

    async def svc_deregister(request: web.Request) -> web.Response:
        w = world_of(request)
        deregister_service(w, node_of(w), request.match_info["id"])
        return ok(w)

    async def services(request: web.Request) -> web.Response:
        w = world_of(request)
        node = node_of(w)
        out = {}
        for (n, sid), s in sorted(w.services.items()):
            if n == node:
                doc = service_json(s)
                doc.pop("CreateIndex", None)
                doc.pop("ModifyIndex", None)
                doc["Datacenter"] = w.datacenter
                out[sid] = doc
        return web.json_response(_filter_map(request, out),
                                 headers=headers(w, w.consul.of("services")))

    async def check_register(request: web.Request) -> web.Response:
        w = world_of(request)
        node = node_of(w)
        d = await _object(request)
        service = None
        if d.get("serviceid"):
            service = w.services.get((node, str(d["serviceid"])))
            if service is None:
                raise SimError(400, f"ServiceID {json.dumps(str(d['serviceid']))} does not "
                                    "exist")
        name = str(d.get("name") or "")
        if not name:
            raise SimError(400, "Missing check name")
        check = _check_from(node, d, name, service)
        _put_check(w, check)
        w.notify()
        return ok(w)

    async def check_deregister(request: web.Request) -> web.Response:
        w = world_of(request)
        cid = request.match_info["id"]
        if (node_of(w), cid) not in w.checks:
            raise _unknown_check(cid)
        w.consul.bump("checks")
        del w.checks[(node_of(w), cid)]
        w.notify()
        return ok(w)

    def ttl(status: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            w = world_of(request)
            update_ttl(w, node_of(w), request.match_info["id"], status,
                       request.query.get("note", ""))
            return ok(w)
        return handler

    async def check_update(request: web.Request) -> web.Response:
        w = world_of(request)
        d = await _object(request)
        status = str(d.get("status") or "")
        if status not in STATUSES:
            raise SimError(400, f"Invalid check status: '{status}'")
        update_ttl(w, node_of(w), request.match_info["id"], status, str(d.get("output") or ""))
        return ok(w)

    async def checks(request: web.Request) -> web.Response:
        w = world_of(request)
        node = node_of(w)
        out = {}
        for (n, cid), c in sorted(w.checks.items()):
            if n == node:
                doc = check_json(c)
                doc.pop("CreateIndex", None)
                doc.pop("ModifyIndex", None)
                out[cid] = doc
        return web.json_response(_filter_map(request, out),
                                 headers=headers(w, w.consul.of("checks")))

    return [
        ("PUT", "/v1/agent/service/register", svc_register),
        ("PUT", "/v1/agent/service/deregister/{id}", svc_deregister),
        ("GET", "/v1/agent/services", services),
        ("PUT", "/v1/agent/check/register", check_register),
        ("PUT", "/v1/agent/check/deregister/{id}", check_deregister),
        ("PUT", "/v1/agent/check/pass/{id}", ttl("passing")),
        ("PUT", "/v1/agent/check/warn/{id}", ttl("warning")),
        ("PUT", "/v1/agent/check/fail/{id}", ttl("critical")),
        ("PUT", "/v1/agent/check/update/{id}", check_update),
        ("GET", "/v1/agent/checks", checks),
    ]


def _filter_map(request: web.Request, items: dict[str, Any]) -> dict[str, Any]:
    """`filter=` on the agent's maps (api-docs/agent/service#list-services): on each value."""
    expression = request.query.get("filter")
    if not expression:
        return items
    try:
        kept = consul_filter.apply(expression, list(items.values()))
    except consul_filter.FilterError as exc:
        raise SimError(400, str(exc)) from None
    return {k: v for k, v in items.items() if any(v is x for x in kept)}


def connect_entries(w: World, service: str) -> list[tuple[Any, ServiceInstance, list[Check]]]:
    """The Connect-capable instances of `service`: its sidecar proxies (Kind connect-proxy,
    Proxy.DestinationServiceName) and instances registered Connect-native."""
    out = []
    for svc in sorted(w.services.values(), key=lambda s: (s.node, s.id)):
        proxy = svc.proxy or {}
        if not (svc.kind == "connect-proxy"
                and proxy.get("DestinationServiceName") == service):
            continue
        node = w.consul_nodes.get(svc.node)
        if node is None:
            continue
        checks = sorted((c for c in w.checks.values()
                         if c.node == svc.node and c.service_id in ("", svc.id)),
                        key=lambda c: (c.service_id, c.check_id))
        out.append((node, svc, checks))
    return out
