"""The path of a request through the lab, hop by hop, and the first hop that breaks it:
DNS → HAProxy frontend → HAProxy backend servers → Fabio route → Consul service instances →
Nomad allocation → node → VM → hypervisor. Pure functions over the store's records.

A chain is whole when at least one complete path exists: the host resolves to where it
should, the frontend is open, a backend server is up, a Fabio instance routes the host, and
an instance behind that route passes its checks and runs on a running allocation, ready node,
running VM and online hypervisor.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import (
    VM,
    Allocation,
    HAProxyRow,
    Hypervisor,
    Intention,
    Kind,
    NomadNode,
    Route,
    Service,
    ServiceInstance,
)

TAG_PREFIX = "urlprefix-"


@dataclass(frozen=True)
class Resolution:
    """What a resolver said for a name: addresses, or the error in words."""

    resolver: str  # "internal 192.168.42.2:53", "system"
    addresses: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class Hop:
    layer: str  # dns, frontend, server, route, service, instance, allocation, node, vm, hv
    name: str
    ok: bool
    detail: str = ""  # live figures
    problem: str = ""  # why it breaks the chain, when it does
    children: tuple[Hop, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "name": self.name, "ok": self.ok, "detail": self.detail,
                "problem": self.problem, "children": [c.to_dict() for c in self.children]}


@dataclass(frozen=True)
class Chain:
    host: str
    path: str
    hops: tuple[Hop, ...]  # in order; a layer with several (servers, instances) is one hop
    broken: Hop | None = None  # the first hop that breaks the chain
    notes: tuple[str, ...] = field(default=())  # mesh intentions and the like

    @property
    def whole(self) -> bool:
        return self.broken is None

    @property
    def id(self) -> str:
        return self.host + self.path

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "path": self.path, "whole": self.whole,
                "broken": self.broken.to_dict() if self.broken else None,
                "hops": [h.to_dict() for h in self.hops], "notes": list(self.notes)}


def routes_by_host(routes: list[Route]) -> dict[str, list[Route]]:
    """Routes grouped by lower-cased host, once for many traces: a big lab has thousands
    (each distinct route once, with the Fabios carrying it; per-instance records too), and
    every trace scanning them all made `:routes` take seconds."""
    out: dict[str, list[Route]] = {}
    for r in routes:
        out.setdefault(r.host.lower(), []).append(r)
    return out


def candidates(by_host: dict[str, list[Route]], host: str) -> list[Route]:
    """The routes `best_routes` may pick for `host`: its own and the host-less ones."""
    return by_host.get(host.lower(), []) + (by_host.get("", []) if host else [])


def parse_urlprefix(tag: str) -> tuple[str, str] | None:
    """`urlprefix-example.jamfox.dev/ opts` -> ("example.jamfox.dev", "/")."""
    if not tag.startswith(TAG_PREFIX):
        return None
    spec = tag[len(TAG_PREFIX):].split(" ", 1)[0]
    if "/" not in spec:
        return None
    host, _, rest = spec.partition("/")
    return host, "/" + rest


def entry_points(store: Any) -> list[tuple[str, str, str]]:
    """Every externally reachable (host, path, service): Fabio's routes and the urlprefix
    tags in Consul (a tag Fabio has no route for is exactly a broken chain to show)."""
    found: dict[tuple[str, str], str] = {}
    for r in store.items(Kind.ROUTE):
        found.setdefault((r.host, r.path), r.service)
    for s in store.items(Kind.SERVICE):
        for tag in s.tags:
            parsed = parse_urlprefix(tag)
            if parsed:
                found.setdefault(parsed, s.name)
    return sorted((h, p, svc) for (h, p), svc in found.items())


def split_target(target: str) -> tuple[str, str]:
    """`example.jamfox.dev/api` -> ("example.jamfox.dev", "/api")."""
    host, slash, rest = target.partition("/")
    return host.lower(), slash + rest if slash else "/"


def best_routes(routes: list[Route], host: str, path: str) -> list[Route]:
    """Fabio's choice: the host's routes (else host-less ones), longest matching prefix."""
    for want in (host, ""):
        matching = [r for r in routes if r.host.lower() == want and path.startswith(r.path)]
        if matching:
            longest = max(len(r.path) for r in matching)
            return [r for r in matching if len(r.path) == longest]
    return []


def trace(store: Any, target: str, dns: Resolution | None = None,
          expect: tuple[str, ...] = (), known_service: str = "",
          routes: list[Route] | None = None,
          fabios: Collection[str] | None = None,
          unread: Collection[str] = ()) -> Chain:
    """The chain for `target` (host[/path]) from the store's current picture.
    `dns` is what the internal resolver said; `expect`, the addresses it should say;
    `known_service`, the service the host was last seen routed to (when neither a route nor
    a tag names one any more: a stopped job's host); `routes`, the routes that may match
    (the host's and host-less ones, from `routes_by_host`), else every route in the store;
    `fabios`, every Fabio instance read (those lacking the route are named), else those the
    store's routes say were read; `unread`, the instances not read yet (said so)."""
    host, path = split_target(target)
    hops: list[Hop] = []
    if dns is not None:
        hops.append(_dns_hop(host, dns, expect))
    hops += _haproxy_hops(store.items(Kind.HAPROXY))
    if routes is None:
        routes = store.items(Kind.ROUTE)
        if fabios is None:
            fabios, unread = fabio_instances(routes)
    elif fabios is None:
        fabios, unread = fabio_instances(store.items(Kind.ROUTE))
    tail = trace_tail(store, host, path, known_service, routes, fabios, unread=unread)
    hops += tail.hops
    broken = next((h for h in hops if not h.ok), None)
    return Chain(host, path, tuple(hops), broken, tail.notes)


@dataclass(frozen=True)
class Tail:
    """A chain from its route on (route, service and what runs it) and its mesh notes: what
    depends on the host, unlike its DNS and HAProxy hops, which a caller adds."""

    hops: tuple[Hop, ...]
    service: str
    notes: tuple[str, ...] = ()


def fabio_instances(routes: list[Route]) -> tuple[set[str], set[str]]:
    """The Fabio instances whose tables were read, and those not read yet, as the routes
    say (`Route.read`/`unread`, shared by every route of one picture; or each one's
    `fabio`)."""
    read: set[str] = set()
    unread: set[str] = set()
    seen: set[int] = set()
    for r in routes:
        if r.fabio:
            read.add(r.fabio)
            continue
        for group, into in ((r.read or r.fabios, read), (r.unread, unread)):
            if id(group) not in seen:
                seen.add(id(group))
                into.update(group)
    return read, unread - read


def trace_tail(store: Any, host: str, path: str, known_service: str, routes: list[Route],
               fabios: Collection[str] | None = None,
               carriers: Mapping[Route, Collection[str]] | None = None,
               unread: Collection[str] = ()) -> Tail:
    """The route hop and the service hop for `host` (lower-case) and `path`, `routes` the
    routes that may match it (or, with `carriers`, the distinct ones and the Fabios that
    have each: a route 100 Fabios agree on is traced once). `unread`: Fabio instances whose
    table was not read yet: said so, never counted as lacking a route."""
    routes = best_routes(routes, host, path)
    hops = [_route_hop(host, path, routes, fabios, carriers, unread)]
    service = (routes[0].service if routes else _tagged_service(store, host, path)
               or known_service)
    if service:
        hops.append(_service_hop(store, service, routes))
    notes = tuple(_mesh_notes(store.items(Kind.INTENTION), service)) if service else ()
    return Tail(tuple(hops), service, notes)


def _tagged_service(store: Any, host: str, path: str) -> str:
    for s in store.items(Kind.SERVICE):
        for tag in s.tags:
            parsed = parse_urlprefix(tag)
            if parsed and parsed[0].lower() == host and path.startswith(parsed[1]):
                return str(s.name)
    return ""


def _dns_hop(host: str, dns: Resolution, expect: tuple[str, ...]) -> Hop:
    answer = ", ".join(dns.addresses) or "no answer"
    if dns.error or not dns.addresses:
        return Hop("dns", host, False, f"{dns.resolver}: {answer}",
                   f"{dns.resolver} has no address for {host}"
                   + (f" ({dns.error})" if dns.error else "")
                   + ". Add the record to the internal DNS (the Pi).")
    if expect and not set(dns.addresses) & set(expect):
        return Hop("dns", host, False, f"{dns.resolver}: {answer}",
                   f"{host} resolves to {answer}, not to the bastion ({', '.join(expect)}): "
                   "requests go elsewhere. Fix the record.")
    return Hop("dns", host, True, f"{dns.resolver}: {answer}")


def _haproxy_hops(rows: list[HAProxyRow]) -> list[Hop]:
    if not rows:
        return []  # HAProxy not configured or not read yet: the chain starts at Fabio
    fronts = [r for r in rows if r.type == "frontend" and r.proxy != "stats"]
    backends = [r for r in rows if r.type == "backend" and r.proxy != "stats"]
    hops = []
    for f in fronts:
        ok = f.status == "OPEN"
        hops.append(Hop("frontend", f.proxy, ok,
                        f"{f.sessions} sessions, {f.request_rate} req/s, 2xx {f.hrsp_2xx} "
                        f"4xx {f.hrsp_4xx} 5xx {f.hrsp_5xx}",
                        "" if ok else f"HAProxy frontend {f.proxy} is {f.status}."))
    for b in backends:
        servers = [r for r in rows if r.type == "server" and r.proxy == b.proxy]
        children = tuple(
            Hop("server", s.name, s.status.startswith("UP") or s.status == "no check",
                f"{s.status} {s.check_status}, {s.sessions_total} sessions",
                "" if s.status.startswith("UP") or s.status == "no check" else
                f"HAProxy server {b.proxy}/{s.name} is {s.status} ({s.check_status}): "
                "its Fabio does not answer.")
            for s in servers)
        up = sum(1 for c in children if c.ok)
        ok = up > 0
        hops.append(Hop("backend", b.proxy, ok, f"{up}/{len(servers)} servers up, "
                        f"{b.request_rate} req/s", "" if ok else
                        f"HAProxy backend {b.proxy} has no server up: every Fabio it balances "
                        "over is down or unreachable.", _collapsed(children, len(servers))))
    return hops


def _collapsed(servers: tuple[Hop, ...], total: int, most: int = 3) -> tuple[Hop, ...]:
    """A backend's servers as its hop's children: up to `most` one by one; beyond, the ones
    up are one child ("97/100 servers up") and those not up stay one by one, named."""
    good = [s for s in servers if s.ok]
    if len(servers) <= most or len(good) < 2:
        return servers
    return (Hop("server", _names([s.name for s in good]), True,
                f"{len(good)}/{total} servers up"),
            *(s for s in servers if not s.ok))


def _names(fabios: list[str], limit: int = 6) -> str:
    shown = ", ".join(fabios[:limit])
    return shown + (f" and {len(fabios) - limit} more" if len(fabios) > limit else "")


def _unread_words(unread: Collection[str]) -> str:
    n = len(unread)
    return f"{n} Fabio instance{'s' * (n != 1)} not read yet"


def _route_hop(host: str, path: str, routes: list[Route],
               fabios: Collection[str] | None = None,
               carriers: Mapping[Route, Collection[str]] | None = None,
               unread: Collection[str] = ()) -> Hop:
    """The route, once however many Fabio instances carry it: Fabios that agree (the same
    targets and weights) are one child ("on 100/100 Fabios"); a Fabio that routes it otherwise
    is its own child, and the Fabios that lack it are a broken child naming them. `fabios`:
    every Fabio instance read (with any route), else those in `routes`; `carriers`, when
    `routes` are distinct routes (their `fabio` left out): the Fabios that have each;
    `unread`, instances whose table was not read yet: a child of their own, in words, and
    never among those lacking it."""
    unread = sorted(set(unread))
    if not routes:
        if unread:
            return Hop("route", f"{host}{path}", False, "no route",
                       f"no Fabio instance read has a route for {host}{path} "
                       f"({_unread_words(unread)}): no passing instance carries its "
                       "urlprefix- tag (or the tag is missing).")
        return Hop("route", f"{host}{path}", False, "no route",
                   f"no Fabio instance has a route for {host}{path}: no passing instance "
                   "carries its urlprefix- tag (or the tag is missing).")
    groups: dict[tuple[tuple[str, float], ...], list[str]] = {}
    spread = {carriers.get(r, frozenset()) for r in routes} if carriers is not None else None
    if spread is not None and len(spread) == 1:  # every Fabio that has one has them all
        (members,) = spread
        groups[tuple(sorted((r.dst, r.weight) for r in routes))] = list(members)
        carrying = set(members)
    else:
        targets: dict[str, list[tuple[str, float]]] = {}
        for r in routes:
            for fabio in carriers.get(r, ()) if carriers is not None else r.carriers:
                targets.setdefault(fabio, []).append((r.dst, r.weight))
        for fabio, dsts in targets.items():
            groups.setdefault(tuple(sorted(dsts)), []).append(fabio)
        carrying = set(targets)
    known = sorted((set(fabios or ()) | carrying) - set(unread))
    total = len(known)
    name = f"{routes[0].host}{routes[0].path}"
    children: list[Hop] = []
    for targets_of, members in sorted(groups.items(), key=lambda g: (-len(g[1]), min(g[1]))):
        members.sort()
        where = (f"{len(members)}/{total} Fabios" if len(members) > 1 or total > 1
                 else members[0])
        label = members[0] if len(members) == 1 else (
            f"{len(members)} Fabios" if len(groups) == 1 else _names(members))
        children.append(Hop("fabio", label, True,
                            f"route on {where} → " + ", ".join(
                                f"{d} weight {w:.2f}" for d, w in targets_of)))
    missing = [f for f in known if f not in carrying]
    if missing:
        children.append(Hop(
            "fabio", _names(missing), False, f"no route on {len(missing)}/{total} Fabios",
            f"Fabio instance(s) {', '.join(missing)} have no route for {name}: requests "
            "HAProxy sends there get 404 (their Consul view or poll lags, or they lost it)."))
    agree = f"{len(carrying)}/{total}"
    read = "" if not unread else (
        f"; routes as read from {known[0]}" if total == 1 else " read")
    if unread:
        children.append(Hop("fabio", _names(unread), True, _unread_words(unread)
                            + ": whether they carry it is not known yet (their tables are "
                            "read in the background)"))
    return Hop("route", name, True,
               f"{routes[0].service} via {len(carrying)} Fabio instance(s)"
               + (f", route on {agree} Fabios" if total > 1 else "")
               + read
               + (f" ({len(groups)} differing)" if len(groups) > 1 else "")
               + (f"; {_unread_words(unread)}" if unread else ""),
               "", tuple(children))


def _service_hop(store: Any, service: str, routes: list[Route]) -> Hop:
    instances = sorted(store.instances_of(service), key=lambda i: i.id)
    routed = {r.dst.rstrip("/") for r in routes}
    children = tuple(_instance_hop(store, i) for i in instances)
    good = [c for c in children if c.ok]
    svc: Service | None = store.get(Kind.SERVICE, service)
    counts = (f"{svc.passing} passing, {svc.warning} warning, {svc.critical} critical"
              if svc else f"{len(instances)} instances")
    if not instances:
        return Hop("service", service, False, "no instances",
                   f"service {service} has no instances registered in Consul.")
    if not good:
        first = next((c for c in children if not c.ok), None)
        return Hop("service", service, False, counts,
                   f"service {service} has no instance that can answer"
                   + (f": {first.problem}" if first else "."), children)
    stale_routes = [d for d in routed if not any(f"{i.address}:{i.port}" in d
                                                 for i in instances)]
    detail = counts + (f"; {len(stale_routes)} route(s) to unknown instances"
                       if stale_routes else "")
    return Hop("service", service, True, detail, "", children)


def _instance_hop(store: Any, inst: ServiceInstance) -> Hop:
    """An instance, then the allocation, node, VM and hypervisor under it."""
    below: list[Hop] = []
    alloc: Allocation | None = store.alloc_of(inst)
    node: NomadNode | None = None
    vm: VM | None = None
    hv: Hypervisor | None = None
    if alloc is not None:
        node, vm, hv = store.chain_of(alloc)
        below.append(Hop("allocation", alloc.name, alloc.client_status == "running",
                         f"{alloc.short_id} {alloc.client_status}",
                         "" if alloc.client_status == "running" else
                         f"allocation {alloc.name} ({alloc.short_id}) is {alloc.client_status}"
                         f", not running."))
    else:
        vm = store.vm_named(inst.node)
        hv = store.hypervisor_of(vm) if vm else None
    if node is not None:
        below.append(Hop("node", node.name, node.status == "ready", node.status,
                         "" if node.status == "ready" else
                         f"Nomad node {node.name} is {node.status}."))
    if vm is not None:
        below.append(Hop("vm", f"{vm.vmid} {vm.name}", vm.status == "running", vm.status,
                         "" if vm.status == "running" else
                         f"VM {vm.vmid} ({vm.name}) is {vm.status}."))
    if hv is not None:
        below.append(Hop("hv", hv.name, hv.status == "online", hv.status,
                         "" if hv.status == "online" else
                         f"hypervisor {hv.name} is {hv.status}."))
    status = inst.status
    failing = [c for c in inst.checks if c.status != "passing"]
    problem = ""
    if status != "passing":
        check = failing[0] if failing else None
        problem = (f"instance {inst.node}/{inst.port} is {status}"
                   + (f" ({check.name}: {check.output or check.status})" if check else "") + ".")
    problem = problem or next((h.problem for h in below if not h.ok), "")
    return Hop("instance", f"{inst.node} {inst.address}:{inst.port}", not problem,
               status, problem, tuple(below))


def _mesh_notes(intentions: list[Intention], service: str) -> list[str]:
    return [f"Connect: {i.source} → {i.destination} is denied"
            + (f" ({i.description})" if i.description else "")
            for i in sorted(intentions, key=lambda i: -i.precedence)
            if i.action == "deny" and i.destination in (service, "*")]


def all_chains(store: Any) -> list[Chain]:
    routes = store.items(Kind.ROUTE)
    by_host = routes_by_host(routes)
    fabios, unread = fabio_instances(routes)
    return [trace(store, host + path, routes=candidates(by_host, host), fabios=fabios,
                  unread=unread)
            for host, path, _ in entry_points(store)]
