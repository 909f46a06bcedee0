"""What each table shows: columns per kind, as Rich text, with words beside the colours.

Pure functions of a record (and the store, for cross-links), so they are tested without a
terminal, and every view that shows a kind shows it the same way.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
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
    PveTask,
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
    """The last `width` samples, newest on the right, always `width` cells: a line that grew
    a cell per sample widened its column each time, and so re-laid out the whole screen."""
    tail = values[-width:]
    return " " * (width - len(tail)) + "".join(
        SPARK[min(len(SPARK) - 1, int(max(0.0, v) * len(SPARK)))] for v in tail)


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


def age_column(seconds: float | None) -> str:
    """AGE in a table: seconds for the first minute, whole minutes for the first hour (5m),
    then as `age` (3h05m, 12d03h). A row's AGE changes once a minute at most after its first
    minute, not every second: each second's tick repainted every young row on screen (a
    DataTable line costs about a millisecond: 40 rows of `:allocs` were 4 % of a core idle).
    Whole minutes are what the second says, rounded down: still true."""
    if seconds and 60 <= seconds < 3600:
        return f"{int(seconds) // 60}m"
    return age(seconds)


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


def fabio_carriers(r: Route) -> str:
    """Which Fabio instances carry a route, as read: "all 100", "97/100, not on a, b, c",
    "127.0.0.1:9998" (one read), and how many were not read yet (nothing known of them)."""
    if r.fabio:
        return r.fabio
    read = r.read or r.fabios
    if len(r.fabios) == len(read):
        words = r.fabios[0] if len(read) == 1 else f"all {len(read)}"
    else:
        lacking = sorted(set(read) - set(r.fabios))
        words = (f"{len(r.fabios)}/{len(read)}, not on " + ", ".join(lacking[:3])
                 + (f" and {len(lacking) - 3} more" if len(lacking) > 3 else ""))
    if r.unread:
        words += f" ({len(r.unread)} not read yet)"
    return words


def task_status(t: PveTask) -> Text:
    """running, OK, or the task's error (cut: the log has it whole)."""
    if t.running:
        return status_text("running")
    if t.ok:
        return status_text("ok")
    return safe_text(f"✗ {t.status[:60]}", "bold red")


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
            1 for v in s.vms() if v.node == o.name and v.status == "running"))),
        Column("uptime", "UP", lambda o, s, h: age(o.uptime)),
    ],
    Kind.VM: [
        Column("vmid", "ID", lambda o, s, h: str(o.vmid)),
        Column("type", "TYPE", lambda o, s, h: "CT" if o.is_container else "VM"),
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
        Column("age", "AGE", lambda o, s, h: age_column(
            s.clock() - o.create_time if o.create_time else None)),
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
        Column("fabio", "FABIO", lambda o, s, h: fabio_carriers(o)),
    ],
    Kind.PVE_TASK: [
        Column("started", "STARTED", lambda o, s, h: time.strftime(
            "%m-%d %H:%M:%S", time.localtime(o.starttime))),
        Column("node", "NODE", lambda o, s, h: o.node),
        Column("type", "TYPE", lambda o, s, h: o.type),
        Column("object", "ID", lambda o, s, h: o.object_id or "-"),
        Column("user", "USER", lambda o, s, h: o.user),
        Column("status", "STATUS", lambda o, s, h: task_status(o)),
        Column("duration", "DURATION", lambda o, s, h: age(o.duration(time.time()))
               if o.duration(time.time()) >= 1 else "<1s"),
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
    Kind.HAPROXY: HAProxyRow, Kind.PVE_TASK: PveTask,
}


def _namespace(o: Any, s: Store, h: History) -> Text:
    return safe_text(getattr(o, "namespace", "") or "default")


def _alloc_cpu(a: Allocation, s: Store, h: History) -> Text:
    """The allocation's CPU from its stats (polled only while its row is on screen)."""
    series = h.get(f"acpu/{a.id}")
    if a.client_status != "running" or not series:
        return Text("-", style="dim")
    top = max(series) or 1.0
    return Text.assemble(f"{series[-1]:6.0f}MHz ", (sparkline([v / top for v in series], 6),
                                                      "cyan"))


def _alloc_mem(a: Allocation, s: Store, h: History) -> Text:
    series = h.get(f"amem/{a.id}")
    if a.client_status != "running" or not series:
        return Text("-", style="dim")
    return Text(f"{series[-1] / 1024**2:6.0f}MiB")


NAMESPACE_COLUMN = Column("namespace", "NAMESPACE", _namespace)
ALLOC_STATS_COLUMNS = [Column("cpu", "CPU", _alloc_cpu), Column("mem", "MEM", _alloc_mem)]


def columns_for(kind: Kind, store: Store) -> list[Column]:
    """The columns of a table: NAMESPACE where Nomad has more than one namespace, CPU and
    MEM on allocations."""
    cols = list(COLUMNS[kind])
    if kind in (Kind.JOB, Kind.ALLOCATION) and store.count(Kind.NAMESPACE) > 1:
        cols.insert(1 if kind is Kind.JOB else 2, NAMESPACE_COLUMN)
    if kind is Kind.ALLOCATION:
        cols += ALLOC_STATS_COLUMNS
    return cols


def plain(value: Any) -> str:
    return value.plain if isinstance(value, Text) else str(value)


# -- order: what each column sorts by, the default sort, which columns go first when narrow --

_DIGITS = re.compile(r"(\d+)")


@lru_cache(maxsize=16384)
def natural(text: str) -> tuple[Any, ...]:
    """web[10] after web[9]: digit runs compare as numbers (str and int alternate, so any
    two of these tuples compare)."""
    if not any(ch.isdigit() for ch in text):
        return (text.lower(),)
    return tuple(int(part) if n % 2 else part.lower()
                 for n, part in enumerate(_DIGITS.split(text)))


def by_text(value: Any) -> tuple[Any, ...]:
    """A text key; empty and "-" sort after every value; a status sorts by its word, not
    by its symbol."""
    s = plain(value).strip()
    if len(s) > 2 and s[1] == " " and not s[0].isalnum():
        s = s[2:]
    return (1, ()) if not s or s == "-" else (0, natural(s))


def by_number(value: float | None) -> tuple[int, float]:
    """A number key; a missing one sorts after every number."""
    return (1, 0.0) if value is None else (0, float(value))


def _index(name: str) -> int:
    """job.group[3] → 3."""
    head, _, tail = name.rpartition("[")
    return int(tail[:-1]) if head and tail[:-1].isdigit() else -1


@lru_cache(maxsize=16384)
def _by_name(job_id: str, group: str, name: str) -> tuple[Any, ...]:
    """An allocation's NAME key: by job, then group, then index (web[2] before web[10]),
    kept: a load of 5,000 allocations asks for every one (the same tuple each time)."""
    return (natural(job_id), natural(group), _index(name))


def _last(series: list[float]) -> float | None:
    return series[-1] if series else None


SortKey = Callable[[Any, Store, History], Any]

# typed sort keys (numbers as numbers, ages as durations); a column not listed sorts by its
# text, digit runs as numbers (`by_text` of what it shows)
SORT_KEYS: dict[Kind, dict[str, SortKey]] = {
    Kind.HYPERVISOR: {
        "cpu": lambda o, s, h: by_number(o.cpu),
        "mem": lambda o, s, h: by_number(o.mem / o.maxmem if o.maxmem else None),
        "uptime": lambda o, s, h: by_number(o.uptime or None),
    },
    Kind.VM: {
        "vmid": lambda o, s, h: by_number(o.vmid),
        "cpu": lambda o, s, h: by_number(o.cpu if o.status == "running" else None),
        "mem": lambda o, s, h: by_number(o.mem / o.maxmem if o.maxmem and o.status == "running"
                                         else None),
    },
    Kind.SERVICE: {
        "health": lambda o, s, h: (-o.critical, -o.warning, o.passing),
    },
    Kind.ALLOCATION: {
        "name": lambda o, s, h: _by_name(o.job_id, o.task_group, o.name),
        "age": lambda o, s, h: by_number(-o.create_time if o.create_time else None),
        "cpu": lambda o, s, h: by_number(_last(h.get(f"acpu/{o.id}"))
                                         if o.client_status == "running" else None),
        "mem": lambda o, s, h: by_number(_last(h.get(f"amem/{o.id}"))
                                         if o.client_status == "running" else None),
    },
    Kind.JOB: {"priority": lambda o, s, h: by_number(o.priority)},
    Kind.STORAGE: {
        "used": lambda o, s, h: by_number(o.used / o.total if o.total else None),
        "total": lambda o, s, h: by_number(o.total),
    },
    Kind.ROUTE: {"weight": lambda o, s, h: by_number(o.weight)},
    Kind.PVE_TASK: {
        "started": lambda o, s, h: by_number(o.starttime),
        "duration": lambda o, s, h: by_number(o.duration(time.time())),
    },
    Kind.HAPROXY: {
        "sessions": lambda o, s, h: by_number(o.sessions),
        "rate": lambda o, s, h: by_number(o.request_rate),
        "2xx": lambda o, s, h: by_number(o.hrsp_2xx),
        "5xx": lambda o, s, h: by_number(o.hrsp_5xx),
    },
}

# each view's first order (column, reversed); every table starts sorted, shown ▲/▼
DEFAULT_SORT: dict[Kind, tuple[str, bool]] = {
    Kind.HYPERVISOR: ("name", False), Kind.VM: ("vmid", False), Kind.SERVICE: ("name", False),
    Kind.ALLOCATION: ("name", False), Kind.JOB: ("id", False),
    Kind.NOMAD_NODE: ("name", False), Kind.STORAGE: ("node", False),
    Kind.INSTANCE: ("service", False), Kind.MEMBER: ("name", False),
    Kind.ROUTE: ("host", False), Kind.PVE_TASK: ("started", True),
    Kind.HAPROXY: ("proxy", False),
}

# which columns stay when the width does not fit them all, most important first; columns
# not named go after these, in their order
PRIORITY: dict[Kind, tuple[str, ...]] = {
    Kind.HYPERVISOR: ("name", "status", "cpu", "mem", "vms"),
    Kind.VM: ("vmid", "name", "status", "node", "ip", "type", "group"),
    Kind.SERVICE: ("name", "health"),
    Kind.ALLOCATION: ("name", "status", "node", "age", "namespace", "id"),
    Kind.JOB: ("id", "status", "type", "groups"),
    Kind.NOMAD_NODE: ("name", "status", "eligibility", "drain", "allocs"),
    Kind.STORAGE: ("node", "storage", "status", "used"),
    Kind.INSTANCE: ("service", "node", "status", "address"),
    Kind.MEMBER: ("name", "status", "role", "maint"),
    Kind.ROUTE: ("host", "service", "dst"),
    Kind.PVE_TASK: ("started", "type", "object", "status", "node"),
    Kind.HAPROXY: ("proxy", "name", "status", "sessions", "rate"),
}

# the narrowest a column gets: AGE fits 59m59s and 12d03h without moving its neighbours
MIN_WIDTH: dict[str, int] = {"age": 6, "uptime": 6, "duration": 6}


def sort_key(kind: Kind, column: Column) -> SortKey:
    """What a column of a kind sorts by."""
    typed = SORT_KEYS.get(kind, {}).get(column.key)
    if typed is not None:
        return typed
    render = column.render
    return lambda o, s, h: by_text(render(o, s, h))


def priority(kind: Kind, columns: list[Column]) -> list[str]:
    """The column keys of a table, most important first."""
    first = [k for k in PRIORITY.get(kind, ()) if any(c.key == k for c in columns)]
    return first + [c.key for c in columns if c.key not in first]
