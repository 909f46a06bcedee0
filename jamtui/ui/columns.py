"""What each table shows: columns per kind, as Rich text, with words beside the colours.

Pure functions of a record (and the store, for cross-links), so they are tested without a
terminal, and every view that shows a kind shows it the same way.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from ..model import (
    VM,
    Allocation,
    HAProxyRow,
    Hypervisor,
    Job,
    Kind,
    Member,
    NomadNode,
    Route,
    Service,
    ServiceInstance,
    Storage,
)
from ..plain import text as safe_text
from ..store import Store

SPARK = "▁▂▃▄▅▆▇█"

# status word → (symbol, style). Colour is never the only signal: the word and symbol stay.
STATUS_LOOK: dict[str, tuple[str, str]] = {
    "running": ("●", "green"), "online": ("●", "green"), "ready": ("●", "green"),
    "passing": ("✓", "green"), "alive": ("●", "green"), "ok": ("✓", "green"),
    "UP": ("▲", "green"), "OPEN": ("●", "green"), "eligible": ("✓", "green"),
    "pending": ("◌", "yellow"), "starting": ("◌", "yellow"), "initializing": ("◌", "yellow"),
    "warning": ("!", "yellow"), "degraded": ("!", "yellow"), "draining": ("⇣", "yellow"),
    "ineligible": ("⊘", "yellow"), "MAINT": ("■", "yellow"),
    "complete": ("✓", "dim"), "dead": ("○", "dim"), "stopped": ("○", "red"),
    "failed": ("✗", "bold red"), "lost": ("✗", "bold red"), "critical": ("✗", "bold red"),
    "down": ("✗", "bold red"), "offline": ("✗", "bold red"), "DOWN": ("▼", "bold red"),
    "unknown": ("?", "dim"), "left": ("○", "dim"),
}


def status_text(status: str) -> Text:
    symbol, style = STATUS_LOOK.get(status, ("·", ""))
    return Text(f"{symbol} {status}", style=style)


def bar(fraction: float, width: int = 8) -> Text:
    """A usage bar with its percentage written out."""
    fraction = max(0.0, min(1.0, fraction))
    full = round(fraction * width)
    style = "red" if fraction > 0.9 else "yellow" if fraction > 0.75 else "green"
    return Text.assemble(("█" * full, style), ("░" * (width - full), "dim"),
                         f" {fraction * 100:3.0f}%")


def sparkline(values: list[float], width: int = 12) -> str:
    if not values:
        return ""
    tail = values[-width:]
    return "".join(SPARK[min(len(SPARK) - 1, int(max(0.0, v) * len(SPARK)))] for v in tail)


def age(seconds: float | None) -> str:
    """A compact duration: 42s, 5m03s, 3h05m, 12d03h."""
    if not seconds or seconds < 0:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def since(timestamp: float | None, now: float | None = None) -> str:
    if not timestamp:
        return "-"
    return age((now or time.time()) - timestamp)


def gib(n: int) -> str:
    return f"{n / 1024**3:.1f}G"


class History:
    """CPU samples per object, for sparklines of the last minutes (kept in the UI only)."""

    def __init__(self, size: int = 60) -> None:
        self.size = size
        self._data: dict[str, deque[float]] = {}

    def add(self, key: str, value: float) -> None:
        self._data.setdefault(key, deque(maxlen=self.size)).append(value)

    def get(self, key: str) -> list[float]:
        return list(self._data.get(key, ()))


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    render: Callable[[Any, Store, History], Any]
    width: int | None = None


def _alloc_status(a: Allocation, store: Store, h: History) -> Text:
    word = a.client_status
    if a.desired_status != "run" and a.client_status == "running":
        word = "stopping"
    text = status_text(word)
    restarts = sum(t.restarts for t in a.tasks)
    if restarts:
        text.append(f" ↻{restarts}", style="yellow")
    return text


def _instances(s: Service, store: Store, h: History) -> Text:
    total = s.passing + s.warning + s.critical
    text = Text(f"{s.passing}/{total} ✓", style="green" if s.passing == total else "")
    if s.warning:
        text.append(f" {s.warning} !", style="yellow")
    if s.critical:
        text.append(f" {s.critical} ✗", style="bold red")
    return text


def _vm_cpu(v: VM, store: Store, h: History) -> Text:
    if v.status != "running":
        return Text("-", style="dim")
    return Text.assemble(bar(v.cpu, 5), " ", (sparkline(h.get(f"vm/{v.vmid}"), 8), "cyan"))


def _hv_cpu(hv: Hypervisor, store: Store, h: History) -> Text:
    return Text.assemble(bar(hv.cpu, 6), " ", (sparkline(h.get(f"hv/{hv.name}"), 10), "cyan"))


COLUMNS: dict[Kind, list[Column]] = {
    Kind.HYPERVISOR: [
        Column("name", "HOST", lambda o, s, h: o.name),
        Column("status", "STATUS", lambda o, s, h: status_text(o.status)),
        Column("cpu", "CPU", _hv_cpu),
        Column("mem", "MEM", lambda o, s, h: bar(o.mem / o.maxmem if o.maxmem else 0, 6)),
        Column("vms", "VMS", lambda o, s, h: str(sum(
            1 for v in s.items(Kind.VM) if v.node == o.name and v.status == "running"))),
        Column("uptime", "UP", lambda o, s, h: age(o.uptime)),
    ],
    Kind.VM: [
        Column("vmid", "ID", lambda o, s, h: str(o.vmid)),
        Column("name", "NAME", lambda o, s, h: o.name),
        Column("status", "STATUS", lambda o, s, h: status_text(o.status)),
        Column("group", "GRP", lambda o, s, h: o.group or ("tmpl" if o.template else "-")),
        Column("node", "HOST", lambda o, s, h: o.node),
        Column("cpu", "CPU", _vm_cpu),
        Column("mem", "MEM", lambda o, s, h: bar(o.mem / o.maxmem if o.maxmem else 0, 5)
               if o.status == "running" else Text("-", style="dim")),
        Column("ip", "IP", lambda o, s, h: o.ip or "-"),
    ],
    Kind.SERVICE: [
        Column("name", "SERVICE", lambda o, s, h: o.name),
        Column("health", "INSTANCES", _instances),
        Column("tags", "TAGS", lambda o, s, h: safe_text(",".join(o.tags)[:40], "dim")),
    ],
    Kind.ALLOCATION: [
        Column("id", "ID", lambda o, s, h: o.short_id),
        Column("name", "NAME", lambda o, s, h: o.name),
        Column("status", "STATUS", _alloc_status),
        Column("node", "NODE", lambda o, s, h: o.node_name or o.node_id[:8]),
        Column("age", "AGE", lambda o, s, h: since(o.create_time, s.clock())),
    ],
    Kind.JOB: [
        Column("id", "JOB", lambda o, s, h: o.id),
        Column("type", "TYPE", lambda o, s, h: o.type),
        Column("status", "STATUS", lambda o, s, h: status_text(o.status)),
        Column("groups", "GROUPS (running/queued/failed)", lambda o, s, h: "  ".join(
            f"{g.name} {g.running}/{g.queued}/{g.failed}" for g in o.groups)),
        Column("priority", "PRI", lambda o, s, h: str(o.priority)),
    ],
    Kind.NOMAD_NODE: [
        Column("name", "NODE", lambda o, s, h: o.name),
        Column("status", "STATUS", lambda o, s, h: status_text(o.status)),
        Column("eligibility", "ELIGIBILITY", lambda o, s, h: status_text(o.eligibility)),
        Column("drain", "DRAIN", lambda o, s, h: status_text("draining") if o.drain else "-"),
        Column("address", "ADDRESS", lambda o, s, h: o.address),
        Column("allocs", "ALLOCS", lambda o, s, h: str(sum(
            1 for a in s.allocs_on(o.id) if a.client_status == "running"))),
        Column("version", "VERSION", lambda o, s, h: o.version),
    ],
    Kind.STORAGE: [
        Column("node", "HOST", lambda o, s, h: o.node),
        Column("storage", "STORAGE", lambda o, s, h: o.storage),
        Column("type", "TYPE", lambda o, s, h: o.type + (" (shared)" if o.shared else "")),
        Column("status", "STATUS", lambda o, s, h: status_text(o.status)),
        Column("used", "USED", lambda o, s, h: bar(o.used / o.total if o.total else 0, 8)),
        Column("total", "SIZE", lambda o, s, h: gib(o.total)),
        Column("content", "CONTENT", lambda o, s, h: safe_text(o.content, "dim")),
    ],
    Kind.INSTANCE: [
        Column("service", "SERVICE", lambda o, s, h: o.service),
        Column("node", "NODE", lambda o, s, h: o.node),
        Column("address", "ADDRESS", lambda o, s, h: f"{o.address}:{o.port}"),
        Column("status", "HEALTH", lambda o, s, h: status_text(o.status)),
        Column("alloc", "ALLOC", lambda o, s, h: o.alloc_id[:8] or "-"),
    ],
    Kind.MEMBER: [
        Column("name", "NODE", lambda o, s, h: o.name),
        Column("status", "STATUS", lambda o, s, h: status_text(o.status)),
        Column("role", "ROLE", lambda o, s, h: o.role),
        Column("address", "ADDRESS", lambda o, s, h: o.address),
        Column("maint", "MAINT", lambda o, s, h: Text("⚠ maintenance", style="bold yellow")
               if o.maintenance else ""),
    ],
    Kind.ROUTE: [
        Column("host", "HOST/PATH", lambda o, s, h: f"{o.host}{o.path}"),
        Column("service", "SERVICE", lambda o, s, h: o.service),
        Column("dst", "DESTINATION", lambda o, s, h: o.dst),
        Column("weight", "WEIGHT", lambda o, s, h: f"{o.weight:.2f}"),
        Column("fabio", "FABIO", lambda o, s, h: o.fabio),
    ],
    Kind.HAPROXY: [
        Column("proxy", "PROXY", lambda o, s, h: o.proxy),
        Column("name", "NAME", lambda o, s, h: o.name),
        Column("status", "STATUS", lambda o, s, h: status_text(o.status)),
        Column("sessions", "SESS", lambda o, s, h: str(o.sessions)),
        Column("rate", "REQ/S", lambda o, s, h: str(o.request_rate)),
        Column("2xx", "2xx", lambda o, s, h: str(o.hrsp_2xx)),
        Column("5xx", "5xx", lambda o, s, h: str(o.hrsp_5xx)),
    ],
}

# The record types per kind, for code that must check what it was handed.
RECORD: dict[Kind, type] = {
    Kind.HYPERVISOR: Hypervisor, Kind.VM: VM, Kind.SERVICE: Service, Kind.ALLOCATION: Allocation,
    Kind.JOB: Job, Kind.NOMAD_NODE: NomadNode, Kind.STORAGE: Storage,
    Kind.INSTANCE: ServiceInstance, Kind.MEMBER: Member, Kind.ROUTE: Route,
    Kind.HAPROXY: HAProxyRow,
}


def plain(value: Any) -> str:
    return value.plain if isinstance(value, Text) else str(value)
