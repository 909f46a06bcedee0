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

from .model import Kind
from .routing import Chain, Resolution, candidates, routes_by_host, trace
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


class RouteBook:
    """Thread-safe: sources write through the store's subscription, the DNS worker from its
    thread, the UI reads."""

    def __init__(self, store: Any, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.RLock()
        self._seen: dict[str, _Seen] = {}
        self._dns: dict[str, tuple[Resolution, float]] = {}  # host -> answer, when asked
        self.expect: tuple[str, ...] | None = None  # where public names must point
        self._unsubscribe: Callable[[], None] | None = None
        self._haproxy: str | None = None  # HAProxy's first broken hop ("": none), as seen
        self._haproxy_since: float | None = None  # when it became so

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
        # a route's weight changing names no new host: only routes added or removed count
        if any(c.kind is Kind.SERVICE or (c.kind is Kind.ROUTE and c.op != "changed")
               for c in changes):
            self.note()
        if any(c.kind is Kind.HAPROXY for c in changes):
            self.note_haproxy()

    def note_haproxy(self) -> None:
        """Record when HAProxy's part of every chain (frontend open, a server up) changed:
        a few rows, read on each of its polls."""
        from .routing import _haproxy_hops

        broken = next((f"{h.layer} {h.name}" for h in _haproxy_hops(
            self.store.items(Kind.HAPROXY)) if not h.ok), "")
        with self._lock:
            if broken != self._haproxy:
                self._haproxy, self._haproxy_since = broken, self.clock()

    def note(self) -> None:
        """Record which hosts a Fabio route or a urlprefix- tag names now."""
        from .routing import parse_urlprefix

        now = self.clock()
        named: dict[str, tuple[str, str, str]] = {}
        routed: set[str] = set()
        for r in self.store.items(Kind.ROUTE):
            cid = r.host.lower() + r.path
            if cid not in routed:
                routed.add(cid)
                named[cid] = (r.host.lower(), r.path, r.service)
        for svc in self.store.items(Kind.SERVICE):
            for tag in svc.tags:
                parsed = parse_urlprefix(tag)
                if parsed:
                    named.setdefault(parsed[0].lower() + parsed[1],
                                     (parsed[0].lower(), parsed[1], svc.name))
        with self._lock:
            for cid, (host, path, service) in named.items():
                seen = self._seen.get(cid)
                if seen is None:
                    self._seen[cid] = _Seen(host, path, service, now, cid in routed, now)
                    continue
                seen.service = service or seen.service
                seen.gone_since = None
            for cid, seen in self._seen.items():
                if cid not in named and seen.gone_since is None:
                    seen.gone_since = now
                if (cid in routed) != seen.routed:
                    seen.routed = cid in routed
                    seen.route_since = now

    # -- what a view draws ---------------------------------------------------------------------

    def rows(self) -> list[RouteRow]:
        """Every remembered host's chain, as the store has it now (gone ones broken at their
        route), with since when it is in that state."""
        if self._unsubscribe is None:
            self.note()  # not following the store (a view's own book): catch up now
        now = self.clock()
        with self._lock:  # copies: the chains are traced without holding the sources up
            listed = [(cid, replace(seen), self._dns.get(seen.host))
                      for cid, seen in sorted(self._seen.items())]
        by_host = routes_by_host(self.store.items(Kind.ROUTE))
        traced = []
        for cid, seen, dns in listed:
            chain = trace(self.store, cid, dns[0] if dns else None, self.expect or (),
                          known_service=seen.service, routes=candidates(by_host, seen.host))
            traced.append((cid, seen, chain if seen.gone_since is None else _gone(chain, seen)))
        out = []
        with self._lock:
            for cid, seen, chain in traced:
                live = self._seen.get(cid)
                if live is None:  # removed meanwhile
                    continue
                state = "whole" if chain.broken is None else chain.broken.layer
                if state != live.state:
                    live.since = self._since(state, live, seen, now)
                    live.state = state
                out.append(RouteRow(chain, live.since, seen.first_seen, seen.gone_since,
                                    seen.service))
        return out

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
