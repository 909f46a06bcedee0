"""Small widgets named for what the user sees: the health bar and a titled live pane."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Static

from ..model import Health, Kind, Quorum
from ..plain import BLOCK_LIMIT
from ..plain import line as plain_line
from ..store import Store
from .columns import History, age
from .keymap import Key
from .live_table import LiveTable

HEALTH_LOOK = {
    Health.OK: ("✓", "green"),
    Health.DEGRADED: ("!", "yellow"),
    Health.DOWN: ("✗", "bold red"),
    Health.UNKNOWN: ("?", "dim"),
}


def quorum_text(q: Quorum) -> Text:
    alive, total = len(q.alive), len(q.servers)
    if not q.has_leader:
        return Text(f"{q.system} ✗ NO LEADER {alive}/{total}", style="bold red")
    if q.failure_tolerance <= 0:
        return Text(f"{q.system} ! {alive}/{total} — one more loss loses quorum",
                    style="bold yellow")
    return Text(f"{q.system} ✓ leader {plain_line(q.leader.split(':')[0])} {alive}/{total}",
                style="green")


class HealthBar(Static):
    """Backends (ok / degraded / down) and Consul and Nomad quorum, always on top; the reason
    of every backend that is not ok is written out beneath."""

    DEFAULT_CSS = """
    HealthBar { height: auto; max-height: 4; padding: 0 1; }
    """

    def __init__(self, store: Store, configured: set[str], **kw: Any) -> None:
        super().__init__(**kw)
        self.store = store
        self.configured = configured

    def on_mount(self) -> None:
        self.refresh_health()
        self.set_interval(1.0, self.refresh_health)  # the ages in it move with the clock

    def refresh_health(self) -> None:
        line = Text()
        problems = Text()
        now = time.time()
        for b in self.store.backends():
            if b.name not in self.configured and b.health is Health.UNKNOWN:
                continue
            mark, style = HEALTH_LOOK[b.health]
            line.append(f"{b.name} {mark} {b.health.value}", style=style)
            line.append("  ")
            if b.health in (Health.DOWN, Health.DEGRADED) and b.last_error:
                when = f" (data {age(now - b.last_success)} old)" if (
                    b.health is Health.DOWN and b.last_success) else ""
                problems.append(f"{b.name}: {plain_line(b.last_error, BLOCK_LIMIT)}{when}\n",
                                style=style)
        quorums = sorted(self.store.items(Kind.QUORUM), key=lambda q: q.system)
        if quorums:
            line.append("│ ", style="dim")
            for q in quorums:
                line.append_text(quorum_text(q))
                line.append("  ")
        problems.rstrip()
        self.update(line if not problems else Text.assemble(line, "\n", problems))


class Pane(Vertical):
    """A titled live table; dimmed and labelled stale while its backend is down."""

    DEFAULT_CSS = """
    Pane { border: round $primary-darken-2; height: 1fr; }
    Pane:focus-within { border: round $accent; }
    Pane.-stale { opacity: 60%; border: round $error; }
    Pane > Label.pane-title { width: 1fr; text-style: bold; padding: 0 1; }
    """

    def __init__(self, kind: Kind, title: str, store: Store, history: History,
                 keymap: tuple[Key, ...], read_only: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.kind = kind
        self.title = title
        self.store = store
        self.table = LiveTable(kind, store, history, keymap=keymap, read_only=read_only)

    def compose(self) -> ComposeResult:
        yield Label(self.title, classes="pane-title")
        yield self.table

    def on_mount(self) -> None:
        self.refresh_title()

    def refresh_title(self) -> None:
        labels = self.query(Label)
        if not labels:
            return  # not composed yet, or being torn down: a change may land in between
        label = labels.first()
        count = self.table.row_count
        title = Text(f"{self.title} ", style="bold")
        title.append(f"[{count}]", style="dim")
        if self.table.filter_text:
            title.append(f"  /{plain_line(self.table.filter_text)}", style="yellow")
        stale = self.store.is_stale(self.kind)
        self.set_class(stale, "-stale")
        if stale:
            from ..store import OWNER

            backend = self.store.backend(OWNER[self.kind])
            when = age(time.time() - backend.last_success) if backend.last_success else "?"
            title.append(f"  STALE {when}: {plain_line(backend.last_error, BLOCK_LIMIT)}",
                         style="bold red")
        label.update(title)
