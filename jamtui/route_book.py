"""Every host `:routes` has seen this session, kept after its route is gone.

Fabio drops a route as soon as its service has no passing instance, and a stopped job
deregisters its service with its `urlprefix-` tags: read afresh, the host would simply vanish
from `:routes`, which is exactly when an operator needs to see it. The book remembers each
host/path a Fabio route or a Consul tag named since jamtui started, the service it led to, and
since when its chain is in its present state; a host no route and no tag names any more stays
listed, broken at its route ("gone"), until `x` removes it from the list.

It also caches the internal DNS's answer for each host, resolved off the UI's loop and
refreshed slowly, so the chains carry their DNS hop from the start.

The book subscribes to the store (on the engine, from the first poll) and only notes which
hosts are named on route and service changes and when HAProxy's part broke or healed, which is
cheap; chains are evaluated when a view asks for them (`rows`). Times are the book's clock
(unix seconds).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from .model import Kind, Route
from .routing import (
    Chain,
    Hop,
    Resolution,
    Tail,
    _dns_hop,
    _haproxy_hops,
    parse_urlprefix,
    trace_tail,
)
from .store import Change

DNS_REFRESH = 60.0  # seconds between two resolutions of one host


@dataclass
class _Seen:
    host: str
    path: str
    service: str
    first_seen: float
    routed: bool  # a Fabio route names it now
    route_since: float  # when it got (or lost) its Fabio route, as far as seen
    gone_since: float | None = None  # no route and no tag names it any more
    state: str = ""  # "whole" or the broken layer, as last evaluated ("": never)
    since: float = 0.0


@dataclass(frozen=True)
class RouteRow:
    """One host/path as `:routes` lists it."""

    chain: Chain
    since: float  # when its chain entered its present state (whole, or broken at a hop)
    first_seen: float
    gone_since: float | None = None  # no route and no tag names it: listed from memory
    service: str = ""  # the service it was last seen routed to

    @property
    def id(self) -> str:
        return self.chain.id

    @property
    def gone(self) -> bool:
        return self.gone_since is not None


def clock_time(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def _gone(chain: Chain, seen: _Seen) -> Chain:
    """A host no route and no tag names: broken at its route, with since when and why."""
    problem = (f"gone since {clock_time(seen.gone_since or 0)}: no Fabio route and no Consul "
               f"urlprefix- tag names {seen.host}{seen.path} any more"
               + (f" (it led to service {seen.service}; a stopped job deregisters its "
                  "service and its tags)" if seen.service else "")
               + ". `x` removes it from this list.")
    hops = tuple(replace(h, detail="gone", problem=problem) if h.layer == "route" else h
                 for h in chain.hops)
    route = next((h for h in hops if h.layer == "route"), None)
    broken = chain.broken
    if route is not None and (broken is None or broken.layer == "route"):
        broken = route
    return replace(chain, hops=hops, broken=broken)


def _distinct(r: Route) -> tuple[Any, ...]:
    """A route as every Fabio that has it has it: its fields but `fabio`, in order."""
    return (r.service, r.host, r.path, r.dst, r.weight, r.opts)


def _union(carriers: dict[str, tuple[str, ...]]) -> frozenset[str]:
    """The Fabios carrying a distinct route: one record's (the Fabio source's), or one per
    instance's record."""
    if len(carriers) == 1:
        return frozenset(next(iter(carriers.values())))
    return frozenset(f for group in carriers.values() for f in group)


class RouteBook:
    """Thread-safe: sources write through the store's subscription, the DNS worker from its
    thread, the UI reads.

    It keeps the store's routes indexed by host (and how many routes name each host/path, and
    every Fabio instance seen), updated from each batch's changes, so noting costs what
    changed, not the 100 Fabios times routes a big lab holds. Each host's chain from its route on
    (a `Tail`) is cached and traced again only when something on it changed: its routes, its
    service or instances, an allocation, node, VM or hypervisor under them (`dirty`);
    HAProxy's and DNS's hops are the same for every host and are put in front when `rows`
    is read. `evaluated` counts the tails traced (a figure for tests and benchmarks)."""

    def __init__(self, store: Any, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.RLock()
        self._rows_lock = threading.Lock()  # one evaluation at a time
        self._seen: dict[str, _Seen] = {}
        self._host_cids: dict[str, set[str]] = {}  # lower-case host -> its listed cids
        self._dns: dict[str, tuple[Resolution, float]] = {}  # host -> answer, when asked
        self.expect: tuple[str, ...] | None = None  # where public names must point
        self._unsubscribe: Callable[[], None] | None = None
        self._haproxy: str | None = None  # HAProxy's first broken hop ("": none), as seen
        self._haproxy_since: float | None = None  # when it became so
        self._haproxy_hops: list[Hop] | None = None  # None: to be read again
        # the store's routes, indexed (from its changes)
        self._routes: dict[str, Route] = {}  # route id -> route
        # lower-case host -> a distinct route (its fields but `fabio`) -> route id -> the
        # Fabios having it (the Fabio source's records: one record, every carrier)
        self._by_host: dict[str, dict[tuple[Any, ...], dict[str, tuple[str, ...]]]] = {}
        self._naming: dict[str, dict[str, str]] = {}  # cid -> route id -> its service
        self._fabios: dict[str, int] = {}  # Fabio instance -> how many routes name it alone
        # the instances whose tables were read and those not read yet, as the routes say
        self._read: tuple[str, ...] = ()
        self._unread: tuple[str, ...] = ()
        self._tags: dict[str, set[str]] = {}  # service -> the cids its urlprefix- tags name
        self._tagged: dict[str, dict[str, None]] = {}  # cid -> the services tagging it
        # the chains from their route on, cached, and what each depends on
        self._tails: dict[str, Tail] = {}
        self._dirty: set[str] = set()
        self._service_cids: dict[str, set[str]] = {}  # service -> cids whose chain uses it
        self._inst_service: dict[str, str] = {}  # instance id -> its service, as traced
        self._deps: dict[tuple[Kind, str], set[str]] = {}  # record -> cids it is under
        self._cid_deps: dict[str, set[tuple[Kind, str]]] = {}
        self.evaluated = 0  # tails traced since the book started

    # -- following the store -------------------------------------------------------------------

    def start(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self.store.subscribe(self._changed)
        self.note()
        self.note_haproxy()

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _changed(self, changes: list[Change]) -> None:
        naming = [c for c in changes if c.kind in (Kind.ROUTE, Kind.SERVICE)]
        if naming:
            self.note(naming)
        if any(c.kind is Kind.HAPROXY for c in changes):
            self.note_haproxy()
        self._mark(changes)

    def _mark(self, changes: list[Change]) -> None:
        """The chains a batch's instances, allocations, nodes, VMs, hypervisors and
        intentions touch, to trace again."""
        with self._lock:
            for c in changes:
                if c.kind is Kind.INSTANCE:
                    inst = self.store.get(Kind.INSTANCE, c.id)
                    service = inst.service if inst is not None else self._inst_service.get(c.id)
                    if service is not None:
                        self._dirty |= self._service_cids.get(service, set())
                elif c.kind in (Kind.ALLOCATION, Kind.NOMAD_NODE, Kind.VM, Kind.HYPERVISOR):
                    if c.kind is not Kind.ALLOCATION and c.op != "changed":
                        # looked up by name and address too: a new or lost one may be any's
                        self._dirty |= self._seen.keys()
                    else:
                        self._dirty |= self._deps.get((c.kind, c.id), set())
                elif c.kind is Kind.INTENTION:
                    self._dirty |= self._seen.keys()

    def note_haproxy(self) -> None:
        """Record when HAProxy's part of every chain (frontend open, a server up) changed:
        a few rows, read on each of its polls."""
        hops = _haproxy_hops(self.store.items(Kind.HAPROXY))
        broken = next((f"{h.layer} {h.name}" for h in hops if not h.ok), "")
        with self._lock:
            self._haproxy_hops = hops
            if broken != self._haproxy:
                self._haproxy, self._haproxy_since = broken, self.clock()

    def note(self, changes: list[Change] | None = None) -> None:
        """Record which hosts a Fabio route or a urlprefix- tag names now: from a batch's
        route and service `changes` (what they touch only), else from the whole store."""
        now = self.clock()
        with self._lock:
            if changes is None:
                touched = self._reindex()
            else:
                touched = set()
                for c in changes:
                    if c.kind is Kind.ROUTE:
                        touched |= self._route_changed(c.id)
                    elif c.kind is Kind.SERVICE:
                        touched |= self._service_changed(c.id)
            for cid in touched:
                routes = self._naming.get(cid)
                tagged = self._tagged.get(cid)
                seen = self._seen.get(cid)
                routed = bool(routes)
                if routes or tagged:
                    service = (next(iter(routes.values())) if routes else
                               next(iter(tagged or ())))
                    if seen is None:
                        host, _, rest = cid.partition("/")
                        self._seen[cid] = _Seen(host, "/" + rest, service, now, routed, now)
                        self._host_cids.setdefault(host, set()).add(cid)
                        self._dirty.add(cid)
                        continue
                    seen.service = service or seen.service
                    seen.gone_since = None
                elif seen is not None and seen.gone_since is None:
                    seen.gone_since = now
                if seen is not None and routed != seen.routed:
                    seen.routed = routed
                    seen.route_since = now

    def _reindex(self) -> set[str]:
        """Every route and tag in the store, indexed afresh: what changed is touched."""
        before = set(self._naming) | set(self._tagged)
        self._routes.clear()
        self._by_host.clear()
        self._naming.clear()
        self._fabios.clear()
        self._read = self._unread = ()
        self._tags.clear()
        self._tagged.clear()
        for r in self.store.items(Kind.ROUTE):
            self._add_route(r)
        for svc in self.store.items(Kind.SERVICE):
            self._service_changed(svc.name)
        self._dirty |= self._seen.keys()
        return before | set(self._naming) | set(self._tagged) | set(self._seen)

    def _add_route(self, r: Route) -> str:
        host = r.host.lower()
        cid = host + r.path
        self._routes[r.id] = r
        self._by_host.setdefault(host, {}).setdefault(_distinct(r), {})[r.id] = r.carriers
        self._naming.setdefault(cid, {})[r.id] = r.service
        if not r.fabio:
            if r.read is not self._read or r.unread is not self._unread:
                if (r.read, r.unread) != (self._read, self._unread):
                    self._dirty |= self._seen.keys()  # more read: every chain counts them
                self._read, self._unread = r.read, r.unread
            return cid
        self._fabios[r.fabio] = self._fabios.get(r.fabio, 0) + 1
        if self._fabios[r.fabio] == 1:  # a Fabio more: every chain counts it
            self._dirty |= self._seen.keys()
        return cid

    def _drop_route(self, r: Route) -> str:
        host = r.host.lower()
        cid = host + r.path
        del self._routes[r.id]
        distinct = self._by_host.get(host, {})
        key = _distinct(r)
        carriers = distinct.get(key, {})
        carriers.pop(r.id, None)
        if not carriers:
            distinct.pop(key, None)
        if not distinct:
            self._by_host.pop(host, None)
        naming = self._naming.get(cid, {})
        naming.pop(r.id, None)
        if not naming:
            self._naming.pop(cid, None)
        if not r.fabio:
            return cid
        self._fabios[r.fabio] -= 1
        if not self._fabios[r.fabio]:
            del self._fabios[r.fabio]
            self._dirty |= self._seen.keys()
        return cid

    def _route_changed(self, rid: str) -> set[str]:
        old = self._routes.get(rid)
        new = self.store.get(Kind.ROUTE, rid)
        touched = set()
        for r in (old, new):
            if r is None:
                continue
            host = r.host.lower()
            # its host's chains (a host-less route: every host's) show its targets
            self._dirty |= self._host_cids.get(host, set()) if host else self._seen.keys()
        if old is not None:
            touched.add(self._drop_route(old))
        if new is not None:
            touched.add(self._add_route(new))
        return touched

    def _service_changed(self, name: str) -> set[str]:
        svc = self.store.get(Kind.SERVICE, name)
        now: set[str] = set()
        for tag in svc.tags if svc is not None else ():
            parsed = parse_urlprefix(tag)
            if parsed:
                now.add(parsed[0].lower() + parsed[1])
        before = self._tags.pop(name, set())
        if now:
            self._tags[name] = now
        for cid in before - now:
            tagged = self._tagged.get(cid, {})
            tagged.pop(name, None)
            if not tagged:
                self._tagged.pop(cid, None)
        for cid in now - before:
            self._tagged.setdefault(cid, {})[name] = None
        changed = before ^ now
        self._dirty |= changed | self._service_cids.get(name, set())
        return changed | now

    # -- what a view draws ---------------------------------------------------------------------

    def dirty(self) -> int:
        """How many chains are to be traced again."""
        with self._lock:
            return len((self._dirty | (self._seen.keys() - self._tails.keys()))
                       & self._seen.keys())

    def rows(self) -> list[RouteRow]:
        """Every remembered host's chain, as the store has it now (gone ones broken at their
        route), with since when it is in that state. Traces only the chains something changed
        on since the last call: call it off the UI's loop all the same."""
        with self._rows_lock:
            return self._rows()

    def _rows(self) -> list[RouteRow]:
        if self._unsubscribe is None:
            self.note()  # not following the store (a view's own book): catch up now
            self.note_haproxy()
            self._mark([Change(Kind.INTENTION, "", "changed")])
        now = self.clock()
        with self._lock:  # copies: the chains are traced without holding the sources up
            due = (self._dirty | (self._seen.keys() - self._tails.keys())) & self._seen.keys()
            self._dirty = set()
            work = []
            for cid in sorted(due):
                seen = self._seen[cid]
                host = seen.host
                carriers = {Route("", *k): _union(f)
                            for k, f in self._by_host.get(host, {}).items()}
                if host:
                    carriers.update((Route("", *k), _union(f))
                                    for k, f in self._by_host.get("", {}).items())
                work.append((cid, seen.host, seen.path, seen.service, carriers))
            fabios = set(self._fabios) | set(self._read)
            unread = set(self._unread) - fabios
        traced = []
        for cid, host, path, service, carriers in work:
            tail = trace_tail(self.store, host, path, service, list(carriers), fabios, carriers,
                              unread)
            traced.append((cid, tail, self._depends(tail.service)))
        with self._lock:
            self.evaluated += len(traced)
            for cid, tail, (deps, instances) in traced:
                if cid not in self._seen:
                    continue
                self._tails[cid] = tail
                self._depend(cid, tail.service, deps, instances)
            haproxy = self._haproxy_hops
            if haproxy is None:
                haproxy = self._haproxy_hops = _haproxy_hops(self.store.items(Kind.HAPROXY))
            out = []
            for cid, live in sorted(self._seen.items()):
                cached = self._tails.get(cid)
                if cached is None:
                    continue
                dns = self._dns.get(live.host)
                hops = ([_dns_hop(live.host, dns[0], self.expect or ())] if dns else [])
                hops += haproxy
                hops += cached.hops
                chain = Chain(live.host, live.path, tuple(hops),
                              next((h for h in hops if not h.ok), None), cached.notes)
                seen = replace(live)
                if seen.gone_since is not None:
                    chain = _gone(chain, seen)
                state = "whole" if chain.broken is None else chain.broken.layer
                if state != live.state:
                    live.since = self._since(state, live, seen, now)
                    live.state = state
                out.append(RouteRow(chain, live.since, seen.first_seen, seen.gone_since,
                                    seen.service))
        return out

    def _depends(self, service: str) -> tuple[set[tuple[Kind, str]], list[str]]:
        """The allocations, nodes, VMs and hypervisors under `service`'s instances, and the
        instances: a change to any re-traces the chain."""
        deps: set[tuple[Kind, str]] = set()
        instances: list[str] = []
        if not service:
            return deps, instances
        for inst in self.store.instances_of(service):
            instances.append(inst.id)
            if inst.alloc_id:
                deps.add((Kind.ALLOCATION, inst.alloc_id))
            alloc = self.store.alloc_of(inst)
            if alloc is not None:
                deps.add((Kind.NOMAD_NODE, alloc.node_id))
                _, vm, hv = self.store.chain_of(alloc)
            else:
                vm = self.store.vm_named(inst.node)
                hv = self.store.hypervisor_of(vm) if vm else None
            if vm is not None:
                deps.add((Kind.VM, vm.id))
            if hv is not None:
                deps.add((Kind.HYPERVISOR, hv.id))
        return deps, instances

    def _depend(self, cid: str, service: str, deps: set[tuple[Kind, str]],
                instances: list[str]) -> None:
        for key in self._cid_deps.pop(cid, set()):
            cids = self._deps.get(key)
            if cids is not None:
                cids.discard(cid)
                if not cids:
                    del self._deps[key]
        for cids in self._service_cids.values():
            cids.discard(cid)
        if service:
            self._service_cids.setdefault(service, set()).add(cid)
            for inst in instances:
                self._inst_service[inst] = service
        self._cid_deps[cid] = deps
        for key in deps:
            self._deps.setdefault(key, set()).add(cid)

    def _since(self, state: str, live: _Seen, seen: _Seen, now: float) -> float:
        """When a chain entered `state`. Its route's comings and goings and HAProxy's are
        known from the first poll (the store's changes); other breaks (DNS, a hop under a
        route Fabio still has) from when they are evaluated here."""
        routed = seen.gone_since if seen.gone_since is not None else seen.route_since
        haproxy = self._haproxy_since
        by_state: dict[str, list[float | None]] = {
            "route": [routed], "frontend": [haproxy], "backend": [haproxy],
            "whole": [routed, haproxy]}
        known = by_state.get(state, [])
        times = [t for t in known if t is not None and (not live.state or t >= live.since)]
        return max(times) if times else now

    def remove(self, cid: str) -> tuple[bool, str]:
        """`x`: forget a gone host (a view-only removal: nothing changes in the lab). A host a
        route or a tag still names stays."""
        with self._lock:
            seen = self._seen.get(cid)
            if seen is None:
                return False, f"{cid} is not listed"
            if seen.gone_since is None:
                return False, (f"{cid} is still named by a Fabio route or a Consul tag: it "
                               "stays listed while it is (only gone hosts can be removed)")
            del self._seen[cid]
            self._host_cids.get(seen.host, set()).discard(cid)
            self._tails.pop(cid, None)
            self._depend(cid, "", set(), [])
        return True, (f"removed {cid} from :routes for this session (nothing changed in the "
                      "lab; it comes back if a route or tag names it again)")

    # -- DNS -------------------------------------------------------------------------------------

    def dns_due(self, refresh: float = DNS_REFRESH) -> list[str]:
        """The hosts whose internal DNS answer is missing or older than `refresh` seconds."""
        now = self.clock()
        with self._lock:
            hosts = sorted({s.host for s in self._seen.values()})
            return [h for h in hosts if h not in self._dns or now - self._dns[h][1] >= refresh]

    def set_dns(self, host: str, answer: Resolution) -> None:
        """An answer for `host`: its chains' DNS hop (put in front when `rows` is read)."""
        with self._lock:
            self._dns[host.lower()] = (answer, self.clock())

    def resolve_due(self, cfg: Any, inventory: Any, refresh: float = DNS_REFRESH) -> bool:
        """Blocking (a worker thread's): ask the internal DNS (`[dns] server`) about every
        host that is due, a few at once. True when an answer was stored."""
        if not cfg.dns.server:
            return False
        from .sources.dns import resolve
        from .tracing import expected_addresses

        if self.expect is None:
            self.expect = expected_addresses(cfg, inventory)
        due = self.dns_due(refresh)
        if not due:
            return False
        with ThreadPoolExecutor(max_workers=min(8, len(due)),
                                thread_name_prefix="route-dns") as pool:
            answers = list(pool.map(lambda h: resolve(h, cfg.dns.server), due))
        for host, answer in zip(due, answers, strict=True):
            self.set_dns(host, answer)
        return True
