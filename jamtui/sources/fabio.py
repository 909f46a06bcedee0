"""Fabio: the routing table of every Fabio instance (`/api/routes`).

Fabio has no change feed, and every instance builds the same table from the same Consul
`urlprefix-` tags. So while no view of routes is on screen, one instance is read per
interval, in turn (one that came back first); when its table moved, every instance is read
again, at most every `FULL_EVERY` seconds (flapping checks move the table often: 100
instances each time would be the old cost again; and no view shows routes meanwhile).
While `:routes` or `:fabio` is on screen (`set_foreground`), every instance is read each
interval, and at once when it comes on.
Each interval every instance's port is tried (a TCP connect, not an HTTP request), so one
that stops listening shows as down within an interval. One instance failing while others
answer makes the backend degraded, not down, and keeps its last routes.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import requests

from ..config import FabioConfig
from ..model import Kind, Route
from ..store import Store
from .base import BackendError, Source, describe_error, timed
from .reasons import in_words


def decode_routes(fabio: str, data: Any) -> list[Route]:
    """`/api/routes` is a list of routes, or `null` when the table is empty."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise BackendError(f"{fabio} sent routes that are not a list. Is it really Fabio?")
    return [
        Route(fabio=fabio, service=r.get("service", ""), host=r.get("host", ""),
              path=r.get("path", "/"), dst=r.get("dst", ""),
              weight=float(r.get("weight") or 0), opts=r.get("opts", "") or "")
        for r in data
    ]


PARALLEL = 8  # instances read at once: 100 Fabios one after another took 12-14 s
FULL_EVERY = 300.0  # seconds at least between reads of every instance while none is shown
CONNECT_TIMEOUT = 2.0  # seconds for the TCP connect that tells an instance is listening


def instance_name(address: str) -> str:
    parts = urlsplit(address)
    return parts.netloc or address


class FabioSource(Source):
    name = "fabio"
    hint = "[fabio] addresses"

    def __init__(self, store: Store, cfg: FabioConfig, *, poll_interval: float = 5.0,
                 timeout: float = 5.0) -> None:
        super().__init__(store, ", ".join(cfg.addresses))
        self.addresses = tuple(a.rstrip("/") for a in cfg.addresses)
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.session = requests.Session()
        self._last: dict[str, list[Route]] = {}
        self.foreground = False  # a view of routes is on screen: read every instance
        self._wake = _Wake()
        self._all_read = False
        self._down: set[str] = set()  # addresses that did not answer the last time
        self._turn = 0
        self.full_every = FULL_EVERY
        self._stale = False  # a table moved since every instance was last read
        self._full_at = 0.0

    def start(self) -> None:
        self.spawn(lambda: self.loop(self._poll, "routes"), "poll")

    def set_foreground(self, on: bool) -> None:
        """A view of routes is on screen (True): read every instance each interval."""
        if on and not self.foreground:
            self._wake.set()  # what is on screen may be one instance's view, an interval old
        self.foreground = on

    def _poll(self) -> None:
        self._wake.clear()
        if self.foreground or not self._all_read or len(self.addresses) == 1:
            self.refresh()
        else:
            self.sample()
        self._wake.wait_or_stop(self.poll_interval, self.stop_event)

    # -- every instance ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read every instance's routes (side by side, `PARALLEL` at once)."""
        answers = self._map(self._read, self.addresses)
        problems: list[str] = []
        slowest = 0.0
        for address, (name, routes, latency, problem) in zip(self.addresses, answers,
                                                              strict=True):
            if routes is None:
                problems.append(problem)
                self._down.add(address)
            else:
                self._last[name] = routes
                self._down.discard(address)
                slowest = max(slowest, latency)
        if len(problems) == len(self.addresses):
            raise BackendError(problems[0] if len(problems) == 1 else
                               f"no Fabio instance answers: {'; '.join(problems)}")
        self._all_read = True
        self._stale = False
        self._full_at = time.monotonic()
        self._publish_routes()
        self.report_ok(slowest, "; ".join(problems))

    # -- one at a time ---------------------------------------------------------------------

    def sample(self) -> None:
        """Try every instance's port; read one answering instance's routes: one that came
        back first, else the next in turn. When a table moved, the others' (as held) may be
        older: all are read again, at most every `full_every` seconds."""
        reachable = self._map(self._connect, self.addresses)
        problems = {a: p for a, p in zip(self.addresses, reachable, strict=True) if p}
        up = [a for a in self.addresses if a not in problems]
        if not up:
            self._down = set(self.addresses)
            words = list(problems.values())
            raise BackendError(words[0] if len(words) == 1 else
                               f"no Fabio instance answers: {'; '.join(words)}")
        back = [a for a in up if a in self._down]
        if back:
            address = back[0]
        else:
            address = up[self._turn % len(up)]
            self._turn += 1
        name, routes, latency, problem = self._read(address)
        if routes is None:
            problems[address] = problem  # it listens but does not answer
        elif routes != self._last.get(name):
            self._stale = True
            self._last[name] = routes
            self._publish_routes()
        self._down = set(problems)
        if self._stale and time.monotonic() - self._full_at >= self.full_every:
            self.refresh()
            return
        if len(problems) == len(self.addresses):
            words = list(problems.values())
            raise BackendError(words[0] if len(words) == 1 else
                               f"no Fabio instance answers: {'; '.join(words)}")
        self.report_ok(latency, "; ".join(problems[a] for a in self.addresses
                                          if a in problems))

    def _publish_routes(self) -> None:
        self.store.replace(Kind.ROUTE, [r for routes in self._last.values() for r in routes])

    def _map(self, fn: Any, addresses: tuple[str, ...]) -> list[Any]:
        if len(addresses) == 1:
            return [fn(addresses[0])]
        with ThreadPoolExecutor(min(PARALLEL, len(addresses)),
                                thread_name_prefix="fabio-read") as pool:
            return list(pool.map(fn, addresses))  # in the configured order

    def _read(self, address: str) -> tuple[str, list[Route] | None, float, str]:
        name = instance_name(address)
        try:
            resp, latency = timed(lambda: self._get(address))
            resp.raise_for_status()
            return name, decode_routes(name, resp.json()), latency, ""
        except Exception as exc:  # one instance down is the backend's health, not a crash
            return name, None, 0.0, describe_error("fabio", address, exc)

    def _connect(self, address: str) -> str:
        """'' when the instance's port takes a connection, else why not, in words."""
        parts = urlsplit(address)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", port),
                                          timeout=min(self.timeout, CONNECT_TIMEOUT)):
                return ""
        except OSError as exc:
            return (f"cannot reach {address}: {in_words(exc, CONNECT_TIMEOUT)}. Is Fabio "
                    "running there, and is the address right?")

    def _get(self, address: str) -> requests.Response:
        self.requests_made += 1
        return self.session.get(f"{address}/api/routes", timeout=self.timeout)


class _Wake(threading.Event):
    def wait_or_stop(self, seconds: float, stop: threading.Event) -> None:
        """Sleep `seconds`, or until set (a view of routes came on screen) or stopped."""
        deadline = time.monotonic() + seconds
        while not stop.is_set() and not self.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.wait(min(left, 0.25))
