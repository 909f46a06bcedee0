"""Fabio: the routing table of every Fabio instance (`/api/routes`).

Fabio has no change feed, and every instance builds the same table from the same Consul
`urlprefix-` tags; at 100 instances a table of 4,800 routes is ~1 MB each, ~100 MB to read
them all. So:

- Each interval every instance's port is tried (a TCP connect, not an HTTP request), so one
  that stops listening shows as down within an interval, and ONE answering instance's routes
  are read (one that came back first, else the next in turn): the first picture is one table.
- The others are read in the background, by a thread of their own (`_passes`), a few at a
  time: at once while some answering instance was never read, again when a table moved
  (once the least recently read table is `FULL_EVERY` seconds old: the first tables count),
  always paced so that a pass waits at least `BACKGROUND_PACE` times its own duration after
  the last (a small share of a core), and long enough that passes read `WIRE_BUDGET` bytes
  a second at most. While `:routes` or `:fabio` is on screen (`set_foreground`) a pass runs
  at once, then every interval, paced at `FOREGROUND_PACE` times its duration (and the same
  wire budget).
- Instances with identical tables share one table (kept once), and the store holds each
  distinct route once with the instances carrying it (`Route.fabios`), every instance read
  (`Route.read`) and those not read yet (`Route.unread`): nobody is said to lack a route
  that was never read. When a table moves (the same instances read), only the routes an
  instance gained or lost are written, not every route again (`_publish_moved`). A body
  identical to one already decoded (same digest) is not decoded again. Real Fabio puts
  per-instance metrics in each route (`rate1`, `pct99`: admin/api/routes.go) and joins a
  route's options from a Go map (any order): bodies differ between instances that route
  alike, so tables are compared on what routing needs (service, host, path, target, weight,
  options in a fixed order), never on bytes alone.
- One instance failing while others answer makes the backend degraded, not down, and keeps
  its last routes. The health says what was read ("routes as read from 127.0.0.1:9998; 99
  instances not read yet").
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import requests

from ..config import FabioConfig
from ..model import Health, Kind, Route
from ..store import Store
from . import jsonload
from .base import FIRST_FRAME_WAIT, SLOW_SECONDS, BackendError, Source, describe_error, timed
from .reasons import in_words
from .tls import environment_once

Row = tuple[str, str, str, str, float, str]  # service, host, path, dst, weight, opts
Table = tuple[Row, ...]


def _opts(value: Any) -> str:
    """Fabio joins a route's options from a Go map, in no fixed order: one order here."""
    return " ".join(sorted(str(value or "").split()))


def decode_table(fabio: str, data: Any) -> Table:
    """`/api/routes` is a list of routes, or `null` when the table is empty; what routing
    needs of each (the per-instance metrics rate1 and pct99 left out)."""
    if data is None:
        return ()
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise BackendError(f"{fabio} sent routes that are not a list. Is it really Fabio?")
    return tuple((str(r.get("service") or ""), str(r.get("host") or ""),
                  str(r.get("path") or "/"), str(r.get("dst") or ""),
                  float(r.get("weight") or 0), _opts(r.get("opts"))) for r in data)


def decode_routes(fabio: str, data: Any) -> list[Route]:
    """One instance's routes, each naming it."""
    return [Route(fabio, *row) for row in decode_table(fabio, data)]


PARALLEL = 8  # instances read at once while routes are on screen (12-14 s one by one at 100)
BACKGROUND_PARALLEL = 2  # at once in a background pass: it must not hold the GIL long
FULL_EVERY = 300.0  # seconds at least between passes for a moved table while none is shown
BACKGROUND_PACE = 20.0  # a background pass waits at least this many times its duration
FOREGROUND_PACE = 5.0  # while routes are on screen: at most a fifth of a core
WIRE_BUDGET = 2_000_000  # bytes a second at most, on average, that passes read (100 1-MB
# tables: one pass in 50 s, not one every 8 s: 100 Mbit/s on a homelab's network)
FIRST_TRIES = 3  # instances asked in turn for the first picture when one fails its read
CONNECT_TIMEOUT = 2.0  # seconds for the TCP connect that tells an instance is listening


def instance_name(address: str) -> str:
    parts = urlsplit(address)
    return parts.netloc or address


class FabioSource(Source):
    name = "fabio"
    hint = "[fabio] addresses"

    def __init__(self, store: Store, cfg: FabioConfig, *, poll_interval: float = 5.0,
                 timeout: float = 5.0) -> None:
        shown = ", ".join(cfg.addresses[:3])  # 100 addresses made `status` a page wide
        if len(cfg.addresses) > 3:
            shown = f"{len(cfg.addresses)} instances: {shown} and {len(cfg.addresses) - 3} more"
        super().__init__(store, shown)
        self.addresses = tuple(a.rstrip("/") for a in cfg.addresses)
        self.names = {a: instance_name(a) for a in self.addresses}
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.session = environment_once(requests.Session())
        self.foreground = False  # a view of routes is on screen: passes every interval
        self._wake = _Wake()  # the pass thread: a pass is wanted at once
        self._lock = threading.RLock()  # the tables, problems and publishing
        self._tables: dict[str, Table] = {}  # instance name -> its table, as last read
        self._interned: dict[Table, Table] = {}  # one object per distinct table
        self._digests: dict[bytes, Table] = {}  # a body's digest -> its table
        self._digest_of: dict[str, tuple[bytes, ...]] = {}  # name -> its last body's digests
        self._unreachable: dict[str, str] = {}  # address -> why its port takes no connection
        self._failed: dict[str, str] = {}  # address -> why its last read failed
        self._down: set[str] = set()  # addresses that did not answer the last time
        self._turn = 0
        self.full_every = FULL_EVERY
        self._stale = False  # a table moved since the last pass
        self._pass_at = 0.0  # when the last pass started (monotonic), 0: never
        self._full_at = 0.0  # when the last pass over every instance started
        self._read_at: dict[str, float] = {}  # instance name -> when its table was last read
        self._pass_end = 0.0
        self._pass_took = 0.0
        self._pass_bytes = 0  # what the last pass read
        self._hold_until = 0.0  # the first frame waited for until then (monotonic)
        self.bytes_read = 0  # bodies read, in all
        self._published: tuple[Any, ...] | None = None
        self._as_published: dict[str, Table] = {}  # each instance's table, as published
        self._rows: dict[int, tuple[Table, frozenset[Row]]] = {}  # a table's rows
        self.passes = 0  # passes over every instance (a figure for tests and benchmarks)
        self.decoded = 0  # bodies decoded (identical bodies are decoded once)

    def start(self) -> None:
        self.spawn(lambda: self.loop(self._poll, "routes"), "poll")
        # a one-shot command prints one table as read (and says how many are not): the
        # others' 1 MB bodies, read meanwhile, only took the CPU its answer waited for
        if len(self.addresses) > 1 and not self.once:
            self._hold_until = time.monotonic() + FIRST_FRAME_WAIT
            self.spawn(lambda: self.loop(self._passes, "routes"), "pass")

    def stop(self, timeout: float = 1.0) -> None:
        self.stop_event.set()
        self._wake.set()  # the pass thread's sleep ends now
        super().stop(timeout)

    def set_foreground(self, on: bool) -> None:
        """A view of routes is on screen (True): every instance read at once, then each
        interval (paced)."""
        was, self.foreground = self.foreground, on  # before the wake: the thread reads it
        if on and not was:
            self._wake.set()  # what is on screen may be one instance's view, an interval old

    # -- each interval: every port, one table --------------------------------------------------

    def _poll(self) -> float:
        self.sample()
        return self.poll_interval

    def sample(self) -> None:
        """Try every instance's port; read one answering instance's routes (one that came
        back first, else the next in turn) and publish them; report the health."""
        reachable = self._connect_all(self.addresses)
        unreachable = {a: p for a, p in zip(self.addresses, reachable, strict=True) if p}
        up = [a for a in self.addresses if a not in unreachable]
        with self._lock:
            # listening again: read first (one that listens but fails its reads is read in
            # turn, not every interval: the others' tables would go unread meanwhile)
            back = [a for a in up if a in self._unreachable]
            self._unreachable = unreachable
            for a in unreachable:
                self._failed.pop(a, None)  # its port is the news now
        if not up:
            with self._lock:
                self._down = set(self.addresses)
            self._raise_all_down()
        address = back[0] if back else up[self._turn % len(up)]
        if not back:
            self._turn += 1
        name, table, latency, problem = self._read(address)
        tries = [a for a in up if a != address][:FIRST_TRIES - 1] if not self._tables else []
        while table is None and tries:  # no picture yet: another instance, not an interval
            with self._lock:
                self._failed[address] = problem
            address = tries.pop(0)
            name, table, latency, problem = self._read(address)
        with self._lock:
            if table is None:
                self._failed[address] = problem  # it listens but does not answer
            else:
                self._failed.pop(address, None)
                old = self._tables.get(name)
                if old is not None and old is not table:
                    self._stale = True  # the others' (as held) may be older
                self._tables[name] = table
            self._down = set(self._unreachable) | set(self._failed)
            if len(self._down) == len(self.addresses):
                self._raise_all_down()
            self._publish_routes()
            self._report(latency)

    # -- in the background: every instance, paced ---------------------------------------------

    def _passes(self) -> None:
        """The pass thread's step: wait until a pass is due (or wanted at once), run it."""
        while not self.stop_event.is_set():
            if self._wake.is_set():
                self._wake.clear()
                if self.foreground and (not self._pass_end or time.monotonic()
                                        - self._pass_end >= self.poll_interval):
                    break  # a view of routes came on screen: at once (unless just read)
            if not self._held() and self._pass_due():
                break
            self._wake.wait_or_stop(self._pass_pause(), self.stop_event)
        if self.stop_event.is_set():
            return
        kind = self._pass_wanted()
        if kind:
            self.full_pass(PARALLEL if self.foreground else BACKGROUND_PARALLEL,
                           only_unread=kind == "unread")

    def _pass_pause(self) -> float:
        """How long the pass thread sleeps before it looks again: until the next pass is due,
        an interval at most when none is wanted (a view of routes coming on screen wakes it
        at once); a quarter second while the first frame is waited for. It looked four times
        a second, over every instance (100 at 5k), for passes due every few minutes."""
        if self._held():
            return 0.25
        kind = self._pass_wanted()
        if not kind:  # on screen: the next "all" an interval after the last
            later = self._full_at + self.poll_interval - time.monotonic() \
                if self.foreground else self.poll_interval
            return min(max(0.25, self.poll_interval), max(0.05, later))
        return min(max(0.25, self.poll_interval),
                   max(0.05, self._pass_end + self._pass_gap() - time.monotonic()))

    def _held(self) -> bool:
        """Until the cockpit's first frame is drawn (at most `FIRST_FRAME_WAIT` seconds), no
        pass in the background: the first picture is the one table `sample` reads; the
        others' 1 MB bodies would take the GIL from the frame. Routes on screen: at once."""
        first = self.first_frame
        return (first is not None and not first.is_set() and not self.foreground
                and time.monotonic() < self._hold_until)

    def _pass_wanted(self) -> str:
        """What only a pass tells: "all" (routes on screen, an interval after the last pass
        over all; a moved table, at most every `full_every`), "unread" (answering instances
        never read: only they are read), or nothing ("")."""
        with self._lock:
            now = time.monotonic()
            if (self.foreground and now - self._full_at >= self.poll_interval) or (
                    self._stale and now - self._oldest_read() >= self.full_every):
                return "all"
            unread = any(self.names[a] not in self._tables for a in self.addresses
                         if a not in self._unreachable)
            return "unread" if unread else ""

    def _oldest_read(self) -> float:
        """When the least recently read table of the instances answering was read (under
        `_lock`): every table held is at least that fresh. The start-up's tables (one by the
        first poll, the others by the pass for those never read) count: a table moving a
        minute later made another pass over all 100 instances at once (100 MB, a tenth of a
        core for the 50 s its wire budget spread it over), as if none had ever been read."""
        read = self._read_at
        return min((read[n] for a in self.addresses
                    if a not in self._down and (n := self.names[a]) in read), default=0.0)

    def _pass_due(self) -> str:
        kind = self._pass_wanted()
        if not kind:
            return ""
        return kind if time.monotonic() >= self._pass_end + self._pass_gap() else ""

    def _pass_gap(self) -> float:
        """Seconds at least between the end of the last pass and the next."""
        pace = FOREGROUND_PACE if self.foreground else BACKGROUND_PACE
        return max(self.poll_interval, pace * self._pass_took,
                   self._pass_bytes / WIRE_BUDGET) if self._pass_end else 0.0

    def full_pass(self, parallel: int = PARALLEL, only_unread: bool = False) -> None:
        """Read every answering instance's routes (`parallel` at a time; `only_unread`: those
        never read), publish once."""
        start = time.monotonic()
        with self._lock:
            self._pass_at = start
            if not only_unread:
                self._full_at = start
                self._stale = False
            wanted = tuple(a for a in self.addresses if a not in self._unreachable
                           and not (only_unread and self.names[a] in self._tables))
            read_before = self.bytes_read
        answers = self._map(self._read, wanted, parallel)
        if self.stop_event.is_set():
            return
        slowest = 0.0
        with self._lock:
            for address, (name, table, latency, problem) in zip(wanted, answers, strict=True):
                if table is None:
                    self._failed[address] = problem
                else:
                    self._failed.pop(address, None)
                    self._tables[name] = table
                    slowest = max(slowest, latency)
            self._down = set(self._unreachable) | set(self._failed)
            self.passes += 1
            self._pass_end = time.monotonic()
            self._pass_took = self._pass_end - start
            self._pass_bytes = self.bytes_read - read_before
            self._publish_routes()
            if len(self._down) < len(self.addresses):
                self._report(slowest)

    def refresh(self) -> None:
        """Every instance's routes now (side by side, `PARALLEL` at once), one way or the
        other: what `status` and the tests call for a whole picture."""
        with self._lock:
            self._unreachable = {}
        self.full_pass(PARALLEL)
        with self._lock:
            if len(self._down) == len(self.addresses):
                self._raise_all_down()

    def read_all(self) -> None:
        """`refresh`, its failure kept as the health (for a one-shot command)."""
        try:
            self.refresh()
        except BackendError as exc:
            self.report_failure(exc, "routes")

    # -- what is published ---------------------------------------------------------------------

    def _publish_routes(self) -> None:
        """The routes, each distinct route once with the instances carrying it (under
        `_lock`). Nothing is published when no table changed."""
        read = tuple(sorted(self._tables))
        unread = tuple(sorted(self.names[a] for a in self.addresses
                              if self.names[a] not in self._tables))
        groups: dict[int, tuple[Table, list[str]]] = {}
        for name in read:
            table = self._tables[name]
            groups.setdefault(id(table), (table, []))[1].append(name)
        digests = {d for ds in self._digest_of.values() for d in ds}  # the last ones only
        self._digests = {d: t for d, t in self._digests.items() if d in digests}
        # a table held, or just read by a pass still running (its digest is the last read)
        held = set(groups) | {id(t) for t in self._digests.values()}
        if any(id(t) not in held for t in self._interned):  # (a table's hash is not cached)
            self._interned = {t: t for t in self._interned if id(t) in held}
        key = (read, unread, tuple((k, tuple(m)) for k, (_, m) in groups.items()))
        if key == self._published:
            return
        published, self._published = self._published, key
        before = self._as_published
        self._as_published = {name: self._tables[name] for name in read}
        # each distinct table's rows as a set, kept with the table (so its id stays its own)
        rows, self._rows = self._rows, {k: self._rows.get(k) or (t, frozenset(t))
                                        for k, (t, _) in groups.items()}
        if published is not None and published[:2] == (read, unread):
            self._publish_moved(before, rows, groups, read, unread)
            return
        routes: list[Route] = []
        if len(groups) == 1:
            ((table, members),) = groups.values()
            fabios = tuple(members)
            routes = [Route("", *row, fabios=fabios, read=read, unread=unread)
                      for row in table]
        else:
            carriers: dict[Row, list[str]] = {}
            for table, members in groups.values():
                for row in table:
                    carriers.setdefault(row, []).extend(members)
            shared: dict[tuple[str, ...], tuple[str, ...]] = {}
            for row, members in carriers.items():
                fabios = tuple(sorted(members))
                fabios = shared.setdefault(fabios, fabios)
                routes.append(Route("", *row, fabios=fabios, read=read, unread=unread))
        self.store.replace(Kind.ROUTE, routes)

    def _publish_moved(self, before: dict[str, Table],
                       rows: dict[int, tuple[Table, frozenset[Row]]],
                       groups: dict[int, tuple[Table, list[str]]],
                       read: tuple[str, ...], unread: tuple[str, ...]) -> None:
        """The same instances read as at the last publish, some tables moved: only the routes
        that an instance gained or lost are written (at 100 Fabios, one moved route rebuilt
        4,800 records and compared them all, 40-80 ms of CPU, each time the interval's read
        found a moved table). The others' records stay as they are: their carriers did not
        change, nor did `read` and `unread`."""
        moved: set[Row] = set()
        for name in read:
            old, now = before[name], self._tables[name]
            if old is not now:
                was = rows.get(id(old))
                moved |= (was[1] if was else frozenset(old)) ^ self._rows[id(now)][1]
        shared: dict[tuple[str, ...], tuple[str, ...]] = {}
        with self.store.batch():
            for row in moved:
                fabios = tuple(sorted(n for k, (_, members) in groups.items()
                                      if row in self._rows[k][1] for n in members))
                if fabios:
                    self.store.upsert(Kind.ROUTE, Route(
                        "", *row, fabios=shared.setdefault(fabios, fabios), read=read,
                        unread=unread))
                else:  # no instance carries it now (its id as a carried route's)
                    self.store.remove(Kind.ROUTE, Route("", *row, fabios=read).id)

    def reading(self) -> str:
        """What the routes are as read, in words ("" when every instance's table is held)."""
        with self._lock:
            read = [self.names[a] for a in self.addresses if self.names[a] in self._tables]
            unread = len(self.addresses) - len(read)
        if not unread:
            return ""
        if not read:
            return f"no instance's routes read yet ({unread} instances)"
        where = (read[0] if len(read) == 1 else f"{len(read)} of {len(self.addresses)} "
                 "instances")
        return (f"routes as read from {where}; {unread} instance{'s' * (unread > 1)} not "
                "read yet")

    def _report(self, latency: float) -> None:
        problems = [self._unreachable.get(a) or self._failed[a] for a in self.addresses
                    if a in self._down]
        if latency > SLOW_SECONDS:
            problems.append(f"routes answer slowly ({latency:.1f} s)")
        reading = self.reading()
        self.last_success = time.time()  # what was read is said in words, even when fine
        self._set(Health.DEGRADED if problems else Health.OK,
                  "; ".join(problems + [reading] * bool(reading)), latency)

    def _raise_all_down(self) -> None:
        words = [self._unreachable.get(a) or self._failed.get(a, "") for a in self.addresses]
        words = [w for w in words if w]
        raise BackendError(words[0] if len(words) == 1 else
                           f"no Fabio instance answers: {'; '.join(words)}")

    # -- the wire ------------------------------------------------------------------------------

    def _map(self, fn: Callable[[str], Any], addresses: tuple[str, ...] | list[str],
             parallel: int) -> list[Any]:
        if len(addresses) <= 1 or parallel <= 1:
            return [fn(a) for a in addresses]
        with ThreadPoolExecutor(min(parallel, len(addresses)),
                                thread_name_prefix="fabio-read") as pool:
            return list(pool.map(fn, addresses))  # in the configured order

    def _read(self, address: str) -> tuple[str, Table | None, float, str]:
        name = self.names.get(address) or instance_name(address)
        if self.stop_event.is_set():
            return name, None, 0.0, "stopped"
        try:
            resp, latency = timed(lambda: self._get(address))
            with resp:  # (a failed one's connection goes, its body unread)
                resp.raise_for_status()
                body = jsonload.whole_body(resp)  # 1 MB at 100 Fabios: one piece, not 100
            with self._lock:
                self.bytes_read += len(body)
            table = self._table(name, body)
            with self._lock:
                self._read_at[name] = time.monotonic()
            return name, table, latency, ""
        except Exception as exc:  # one instance down is the backend's health, not a crash
            return name, None, 0.0, describe_error("fabio", address, exc)

    def _table(self, name: str, body: bytes) -> Table:
        """The table a body holds: one already decoded if the same body was, else decoded and
        shared with any instance whose table is the same."""
        if self.once:  # one table read (`sample`): nothing to share it with, no digests
            return self._decoded(name, body)
        digest = _digest(body)
        with self._lock:
            known = self._digests.get(digest)
            if known is not None:
                self._digest_of[name] = (digest,)
                return known
        # real Fabio's bodies differ on each read by their metrics alone: compared without
        # them (8 ms a MB, a quarter of decoding)
        bare = _digest(METRICS.sub(b"", body))
        with self._lock:
            self._digest_of[name] = (digest, bare)
            known = self._digests.get(bare)
        if known is not None:
            return known
        table = self._decoded(name, body)
        with self._lock:
            table = self._interned.setdefault(table, table)
            self._digests[digest] = self._digests[bare] = table
        return table

    def _decoded(self, name: str, body: bytes) -> Table:
        try:
            data = jsonload.loads(body)
        except ValueError as exc:
            raise BackendError(f"{name} sent a malformed answer (not valid JSON). Is it "
                               "really Fabio?") from exc
        table = decode_table(name, data)
        with self._lock:
            self.decoded += 1
        return table

    def _connect(self, address: str) -> str:
        """'' when the instance's port takes a connection, else why not, in words."""
        parts = urlsplit(address)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", port),
                                          timeout=min(self.timeout, CONNECT_TIMEOUT)):
                return ""
        except OSError as exc:
            return self._unreached(address, exc)

    def _connect_all(self, addresses: tuple[str, ...]) -> list[str]:
        """`_connect` for every address, in one thread: each port's connect started at once
        (non-blocking), answered within one `CONNECT_TIMEOUT` (100 instances each interval
        took 8 threads made each time, and a name lookup per port: a quarter of the idle
        cockpit's Fabio CPU). A host with more than one address, and any failure of a host
        name, goes through `_connect` (each address in turn, its words)."""
        deadline = time.monotonic() + min(self.timeout, CONNECT_TIMEOUT)
        out = [""] * len(addresses)
        resolved: dict[str, list[Any]] = {}  # host -> its addresses (looked up once)
        waiting: dict[socket.socket, int] = {}
        slow: list[int] = []
        with selectors.DefaultSelector() as sel:
            try:
                for n, address in enumerate(addresses):
                    parts = urlsplit(address)
                    host = parts.hostname or "127.0.0.1"
                    port = parts.port or (443 if parts.scheme == "https" else 80)
                    try:
                        if host not in resolved:
                            resolved[host] = socket.getaddrinfo(host, None,
                                                                type=socket.SOCK_STREAM)
                        infos = resolved[host]
                        if len(infos) != 1:
                            raise OSError("more than one address")
                        family, kind, proto, _, sockaddr = infos[0]
                        sockaddr = (sockaddr[0], port, *sockaddr[2:])
                        sock = socket.socket(family, kind, proto)
                    except OSError:
                        slow.append(n)
                        continue
                    sock.setblocking(False)
                    code = sock.connect_ex(sockaddr)
                    if code in (0, errno.EINPROGRESS, errno.EAGAIN):
                        waiting[sock] = n
                        sel.register(sock, selectors.EVENT_WRITE)
                    else:
                        sock.close()
                        out[n] = self._unreached(address, OSError(code, os.strerror(code)))
                while waiting and (left := deadline - time.monotonic()) > 0:
                    for key, _ in sel.select(left):
                        sock = key.fileobj  # type: ignore[assignment]
                        n = waiting.pop(sock)
                        sel.unregister(sock)
                        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        sock.close()
                        if code:
                            out[n] = self._unreached(addresses[n],
                                                     OSError(code, os.strerror(code)))
                for n in waiting.values():
                    out[n] = self._unreached(addresses[n], TimeoutError("timed out"))
            finally:
                for sock in waiting:
                    sock.close()
        for n in slow:
            out[n] = self._connect(addresses[n])
        return out

    def _unreached(self, address: str, exc: BaseException) -> str:
        return (f"cannot reach {address}: {in_words(exc, CONNECT_TIMEOUT)}. Is Fabio "
                "running there, and is the address right?")

    def _get(self, address: str) -> requests.Response:
        self.requests_made += 1
        return self.session.get(f"{address}/api/routes", timeout=self.timeout, stream=True)


# each route's own metrics in Fabio's answer (admin/api/routes.go: rate1, pct99): a key in
# quotes is never inside a string, where quotes are escaped
METRICS = re.compile(rb'"(?:rate1|pct99)"\s*:\s*[-+0-9.eE]+')


def _digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).digest()


class _Wake(threading.Event):
    def wait_or_stop(self, seconds: float, stop: threading.Event) -> None:
        """Sleep `seconds`, or until set (a pass is wanted) or stopped."""
        if not stop.is_set():
            self.wait(seconds)  # `FabioSource.stop` sets it too
