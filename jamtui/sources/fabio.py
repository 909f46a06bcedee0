"""Fabio: the routing table of every Fabio instance (`/api/routes`), polled.

Fabio has no change feed. Each instance is read at the configured interval; one instance
failing while others answer makes the backend degraded, not down, and keeps its last routes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import requests

from ..config import FabioConfig
from ..model import Kind, Route
from ..store import Store
from .base import BackendError, Source, describe_error, timed


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

    def start(self) -> None:
        self.spawn(lambda: self.loop(self._poll, "routes"), "poll")

    def _poll(self) -> float:
        self.refresh()
        return self.poll_interval

    def refresh(self) -> None:
        problems: list[str] = []
        slowest = 0.0

        def read(address: str) -> tuple[str, list[Route] | None, float, str]:
            name = instance_name(address)
            try:
                resp, latency = timed(lambda: self._get(address))
                resp.raise_for_status()
                return name, decode_routes(name, resp.json()), latency, ""
            except Exception as exc:  # one instance down is the backend's health, not a crash
                return name, None, 0.0, describe_error("fabio", address, exc)

        if len(self.addresses) == 1:
            answers = [read(self.addresses[0])]
        else:
            with ThreadPoolExecutor(min(PARALLEL, len(self.addresses)),
                                    thread_name_prefix="fabio-read") as pool:
                answers = list(pool.map(read, self.addresses))  # in the configured order
        for name, routes, latency, problem in answers:
            if routes is None:
                problems.append(problem)
            else:
                self._last[name] = routes
                slowest = max(slowest, latency)
        if len(problems) == len(self.addresses):
            raise BackendError(problems[0] if len(problems) == 1 else
                               f"no Fabio instance answers: {'; '.join(problems)}")
        self.store.replace(Kind.ROUTE, [r for routes in self._last.values() for r in routes])
        self.report_ok(slowest, "; ".join(problems))

    def _get(self, address: str) -> requests.Response:
        self.requests_made += 1
        return self.session.get(f"{address}/api/routes", timeout=self.timeout)
