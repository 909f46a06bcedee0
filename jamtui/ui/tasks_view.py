"""A Proxmox task's log (`/nodes/{node}/tasks/{upid}/log`), live while the task runs.

Opened with Enter on a row of `:tasks`, a task line of `:events` (or `l` there), and a task
link in a guest's detail. A thread worker reads the lines after the last one it has, once a
second while the task runs (its status from the store's `/cluster/tasks`, else
`…/tasks/{upid}/status`), and once more when it ends. Every line is the backend's text: made
plain where it is drawn.
"""

from __future__ import annotations

import threading
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Label, RichLog

from ..model import Kind
from ..plain import line
from ..plain import text as safe_text
from .inbox import Inbox

POLL = 1.0  # seconds between reads of a running task's log


class TaskLogScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "back", "back", id="tasklog_back")]

    def __init__(self, node: str, upid: str, title: str = "") -> None:
        super().__init__(name=f"tasklog:{upid}")
        self.node = node
        self.upid = upid
        self.title_text = title or upid
        self.lines: list[str] = []
        self.state = "reading"
        self._stop = threading.Event()
        self._inbox: Inbox[tuple[list[str], str]] = Inbox()  # (new lines, state) from the worker

    def compose(self) -> ComposeResult:
        yield Label(safe_text(f"Proxmox task {self.title_text} on {self.node}"),
                    classes="pane-title", id="task-title")
        yield Label("", id="task-state")
        yield RichLog(id="task-log", wrap=True, markup=False, highlight=False)
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(0.2, self._take)
        self.run_worker(self._follow, thread=True, group="tasklog", exit_on_error=False)

    def _take(self) -> None:
        for new, state in self._inbox.take():
            self._show(new, state)

    def on_unmount(self) -> None:
        self._stop.set()

    def _status(self, source: Any) -> tuple[bool, str]:
        """(still running, exit status) from the store, else from the task's status."""
        task = self.app.store.get(Kind.PVE_TASK, self.upid)  # type: ignore[attr-defined]
        if task is not None and not task.running:
            return False, task.status
        status, exitstatus = source.task_status(self.node, self.upid)
        return status != "stopped", exitstatus

    def _follow(self) -> None:
        source = self.app.engine.sources.get("proxmox")  # type: ignore[attr-defined]
        if source is None:
            self._inbox.put(([], "Proxmox is not configured"))
            return
        start = 0
        while not self._stop.is_set():
            try:
                running, exitstatus = self._status(source)
                new, start = source.task_log(self.node, self.upid, start=start)
            except Exception as exc:  # the backend's failure, in words, never a traceback
                words = getattr(source, "_words", lambda e: e)(exc)
                self._inbox.put(([], f"could not read the log: {words}"))
                return
            state = "running (following)" if running else f"ended: {exitstatus or '?'}"
            self._inbox.put((new, state))
            if not running:
                return
            self._stop.wait(POLL)

    def _show(self, new: list[str], state: str) -> None:
        self.lines += new
        self.state = state
        log = self.query_one(RichLog)
        for text in new:
            log.write(safe_text(line(text)))
        self.query_one("#task-state", Label).update(safe_text(f"{state} · {len(self.lines)} "
                                                              "lines"))

    def action_back(self) -> None:
        self._stop.set()
        self.app.pop_screen()


def open_task_log(app: Any, upid: str) -> None:
    """Push the log screen of the task with this UPID (its node is the UPID's second part).
    The app's own opener; a screen posts `OpenDetail(Kind.PVE_TASK, upid)` instead."""
    task = app.store.get(Kind.PVE_TASK, upid)
    parts = upid.split(":")
    node = task.node if task is not None else (parts[1] if len(parts) > 2 else "")
    title = f"{task.type} {task.object_id}".strip() if task is not None else upid
    app.push_screen(TaskLogScreen(node, upid, title))
