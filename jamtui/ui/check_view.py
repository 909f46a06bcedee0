"""A check's history in the service detail: each state change seen this session with its time
and output, and (Enter on the check's link) the last output in full."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..check_history import CheckHistory, Transition
from ..model import CheckInfo, Kind, ServiceInstance
from ..plain import BLOCK_LIMIT
from ..plain import text as safe_text
from .columns import status_text

LINK_MARK = "#check#"  # a detail link to one check: "<instance id>#check#<check id>"


def check_link(instance_id: str, check_id: str) -> str:
    return f"{instance_id}{LINK_MARK}{check_id}"


def parse_check_link(id_: str) -> tuple[str, str] | None:
    instance_id, mark, check_id = id_.partition(LINK_MARK)
    return (instance_id, check_id) if mark else None


def _clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def history_rows(transitions: list[Transition], limit: int = 5) -> list[list[Any]]:
    """The last changes, newest first: time, from → to, the output's first line."""
    rows = []
    for t in reversed(transitions[-limit:]):
        change = (Text.assemble(status_text(t.previous), " → ", status_text(t.status))
                  if not t.first else Text.assemble("seen ", status_text(t.status)))
        first = (t.output or "").splitlines()[0] if t.output else ""
        rows.append([_clock(t.at), change, safe_text(first, "dim", limit=80)])
    return rows


def render_check(instance: ServiceInstance | None, check: CheckInfo | None,
                 transitions: list[Transition]) -> Any:
    if instance is None or check is None:
        return Text("This check is gone from Consul.", style="yellow")
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("check", safe_text(check.name))
    head.add_row("instance", safe_text(f"{instance.service} on {instance.node} "
                                       f"({instance.service_id})"))
    head.add_row("status", status_text(check.status))
    changes = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    for col in ("TIME", "CHANGE", "OUTPUT"):
        changes.add_column(col)
    for row in history_rows(transitions, limit=len(transitions) or 1):
        changes.add_row(*row)
    note = Text("(changes seen since jamtui started; nothing is kept between sessions)",
                style="dim")
    return Group(head, Text(""), Text("State changes", style="bold underline"), changes, note,
                 Text(""), Text("Last output", style="bold underline"),
                 safe_text(check.output or "(no output)", limit=BLOCK_LIMIT, multiline=True))


class CheckScreen(ModalScreen[None]):
    """One check: its changes this session and its last output in full."""

    BINDINGS = [Binding("escape,enter,q", "close", "close", id="check_close")]

    def __init__(self, store: Any, history: CheckHistory, instance_id: str,
                 check_id: str) -> None:
        super().__init__()
        self.store = store
        self.history = history
        self.instance_id = instance_id
        self.check_id = check_id

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static(self._body(), id="check-body")
            yield Static(Text("Esc: close", style="dim"))

    def _body(self) -> Any:
        instance = self.store.get(Kind.INSTANCE, self.instance_id)
        check = next((c for c in instance.checks if c.check_id == self.check_id),
                     None) if instance is not None else None
        return render_check(instance, check, self.history.of(self.instance_id, self.check_id))

    def action_close(self) -> None:
        self.dismiss(None)
