"""`:events`: one timeline, newest first and live (#15 ★).

Nomad (allocation state changes, deployments, node drain/eligibility, job registrations),
Consul check transitions, Proxmox tasks and jamtui's own workflow steps, each line with its
time, source, object and what happened (`jamtui/timeline.py` derives them from the store).
`/` filters, Enter follows the object's cross-link (a Proxmox task: its log), `l` on a
Proxmox task shows its log. The list is redrawn at most twice a second however busy the lab.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label

from ..model import Kind
from ..plain import line
from ..plain import text as safe_text
from ..timeline import Entry, Timeline, workflow_entries
from .inbox import Inbox
from .messages import GoToView, OpenDetail
from .nav_table import NavTable

SHOWN = 500  # the newest entries drawn (the timeline keeps more; the filter searches all)
SOURCE_STYLE = {"nomad": "green", "consul": "magenta", "proxmox": "cyan", "jamtui": "yellow"}
WORKFLOW_EVERY = 3.0  # seconds between reads of the workflow journals


class EventsScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "back", id="events_back"),
        Binding("slash", "filter", "filter", id="events_filter"),
        Binding("l", "task_log", "task log", id="events_task_log"),
        Binding("enter", "open", "open", show=True, id="events_open"),
    ]

    def __init__(self) -> None:
        super().__init__(name="events")
        self.needle = ""
        self.rows: list[Entry] = []
        self._dirty = True
        self._news: Inbox[Entry] = Inbox(maxlen=SHOWN)  # the timeline's thread → this loop
        self._unlisten: Any = None
        self._workflows_at = 0.0

    @property
    def timeline(self) -> Timeline:
        engine = self.app.engine  # type: ignore[attr-defined]
        timeline = getattr(engine, "timeline", None)
        if timeline is None:  # an engine without one (tests' fake engines): start one here
            timeline = Timeline(self.app.store)  # type: ignore[attr-defined]
            timeline.start()
            engine.timeline = timeline
        return timeline

    def compose(self) -> ComposeResult:
        yield Label("Events: Nomad, Consul checks, Proxmox tasks, jamtui workflows "
                    "(newest first)", classes="pane-title")
        yield Input(placeholder="filter (source, object or text)", id="events-filter")
        table: DataTable[Any] = NavTable(id="events-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("TIME", "SOURCE", "OBJECT", "WHAT HAPPENED")
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#events-filter", Input).display = False
        self._unlisten = self.timeline.listen(self._news.extend)
        self.set_interval(0.5, self._tick)
        self._tick()
        self.query_one(DataTable).focus()

    def on_unmount(self) -> None:
        if self._unlisten:
            self._unlisten()

    def _tick(self) -> None:
        if time.monotonic() - self._workflows_at > WORKFLOW_EVERY:
            self._workflows_at = time.monotonic()
            self.run_worker(self._read_workflows, thread=True, group="events-workflows",
                            exclusive=True, exit_on_error=False)
        if self._news.take() or self._dirty:
            self._dirty = False
            self.redraw()

    def _read_workflows(self) -> None:
        config = getattr(self.app.engine, "config", None)  # type: ignore[attr-defined]
        state_dir = getattr(getattr(config, "provisioning", None), "state_dir", None)
        if not state_dir:
            return
        self.timeline.add(workflow_entries(state_dir))  # known ones are dropped

    def redraw(self) -> None:
        table = self.query_one(DataTable)
        wanted = self.timeline.entries(self.needle)[:SHOWN]
        if wanted == self.rows:
            return
        keep = self.rows[table.cursor_row] if self.rows and table.cursor_row < len(
            self.rows) else None
        self.rows = wanted
        table.clear()
        for e in wanted:
            table.add_row(
                time.strftime("%H:%M:%S", time.localtime(e.time)),
                Text(e.source, style=SOURCE_STYLE.get(e.source, "")),
                safe_text(e.label),
                safe_text(e.what, "bold red" if e.failed else ""),
            )
        if keep is not None and keep in wanted:
            table.move_cursor(row=wanted.index(keep))

    def current(self) -> Entry | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]

    @on(DataTable.RowSelected)
    def _selected(self, _: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        e = self.current()
        if e is None:
            return
        if e.upid:
            self.action_task_log()
        elif e.kind is not None and self.app.store.get(e.kind, e.object_id) is not None:  # type: ignore[attr-defined]
            self.post_message(OpenDetail(e.kind, e.object_id))
        elif e.kind is None:
            self.post_message(GoToView("workflows"))
        else:
            self.app.notify(f"{line(e.label)} is gone from the lab.", severity="warning")

    def action_task_log(self) -> None:
        e = self.current()
        if e is None or not e.upid:
            self.app.notify("`l` shows a Proxmox task's log: pick a proxmox line.",
                            severity="warning")
            return
        self.post_message(OpenDetail(Kind.PVE_TASK, e.upid))  # a task's detail is its log

    def action_filter(self) -> None:
        bar = self.query_one("#events-filter", Input)
        bar.display = True
        bar.focus()

    @on(Input.Changed, "#events-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.needle = event.value.strip()
        self._dirty = True

    @on(Input.Submitted, "#events-filter")
    def _filter_kept(self, _: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    def action_back(self) -> None:
        bar = self.query_one("#events-filter", Input)
        if bar.has_focus:
            if not bar.value:
                bar.display = False
            self.query_one(DataTable).focus()
            return
        self.app.pop_screen()
