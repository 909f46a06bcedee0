"""HAProxy: frontends, backends and servers from the stats CSV (HTTP `;csv` or the runtime
socket's `show stat`), polled. Columns are read by name: their set varies by version.
"""

from __future__ import annotations

import csv
import io
import re
import socket

import requests

from ..config import HAProxyConfig
from ..model import HAProxyRow, Kind
from ..store import Store
from .base import BackendError, Source, timed
from .tls import environment_once

_NAME = re.compile(r"[A-Za-z0-9_.:-]+")  # what HAProxy accepts; nothing that ends a command
TYPES = {"0": "frontend", "1": "backend", "2": "server", "3": "listener"}


def _int(row: dict[str, str], key: str) -> int:
    value = row.get(key) or ""
    return int(value) if value.lstrip("-").isdigit() else 0


def parse_stats_csv(text: str) -> list[HAProxyRow]:
    """Parse `show stat` CSV: a `# ` header, one row a proxy or server, a trailing comma."""
    if not text.startswith("# "):
        raise BackendError("the HAProxy stats answer is not CSV (no '# pxname,...' header). "
                           "Does stats_url end with ';csv'?")
    rows = []
    for r in csv.DictReader(io.StringIO(text[2:])):
        if None in r or None in r.values():  # more or fewer cells than the header names
            raise BackendError("the HAProxy stats CSV is malformed (a row does not match its "
                               "header). Is something between jamtui and HAProxy cutting it?")
        if not r.get("pxname"):
            continue
        kind = TYPES.get(r.get("type", ""), "server")
        if kind == "listener":
            continue
        rows.append(HAProxyRow(
            proxy=r["pxname"], name=r.get("svname", ""), type=kind,
            status=r.get("status", ""), sessions=_int(r, "scur"),
            sessions_total=_int(r, "stot"),
            request_rate=_int(r, "req_rate") if kind == "frontend" else _int(r, "rate"),
            requests_total=_int(r, "req_tot") or _int(r, "stot"),
            hrsp_2xx=_int(r, "hrsp_2xx"), hrsp_4xx=_int(r, "hrsp_4xx"),
            hrsp_5xx=_int(r, "hrsp_5xx"), check_status=r.get("check_status", "") or "",
            last_change=_int(r, "lastchg"),
        ))
    return rows


def read_socket(path: str, command: str, timeout: float = 5.0) -> str:
    """One command over HAProxy's runtime API socket; it answers and closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


class HAProxySource(Source):
    name = "haproxy"
    hint = "[haproxy] stats_url or socket"

    def __init__(self, store: Store, cfg: HAProxyConfig, *, poll_interval: float = 5.0,
                 timeout: float = 5.0) -> None:
        super().__init__(store, cfg.socket or cfg.stats_url)
        self.cfg = cfg
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.session = environment_once(requests.Session())

    def start(self) -> None:
        self.spawn(lambda: self.loop(self._poll, "stats"), "poll")

    def _poll(self) -> float:
        self.refresh()
        return self.poll_interval

    def refresh(self) -> None:
        text, latency = timed(self._read)
        self.store.replace(Kind.HAPROXY, parse_stats_csv(text))
        self.report_ok(latency)

    def _read(self) -> str:
        self.requests_made += 1
        if self.cfg.socket:
            return read_socket(self.cfg.socket, "show stat", self.timeout)
        resp = self.session.get(self.cfg.stats_url, timeout=self.timeout)
        resp.raise_for_status()
        return resp.text

    def server_command(self, action: str, backend: str, server: str) -> str:
        """`enable server` / `disable server` through the runtime socket."""
        if action not in ("enable", "disable"):
            raise ValueError(f"unknown server action {action!r}")
        for name in (backend, server):
            if not _NAME.fullmatch(name):
                raise ValueError(f"not an HAProxy proxy or server name: {name!r}")
        if not self.cfg.socket:
            raise BackendError("server actions need the HAProxy runtime socket: set "
                               "[haproxy] socket.")
        return read_socket(self.cfg.socket, f"{action} server {backend}/{server}", self.timeout)

