"""`:intentions`: Consul Connect intentions with source, destination, action and precedence,
highest precedence first (the order Consul applies them); `n` creates one (allow or deny),
`x` deletes the selected one, both confirmed. The routing view opens this screen on a
chain's denial (`select`)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static

from ..model import Intention, Kind
from ..plain import cells as plain_cells
from ..plain import line
from ..plain import text as safe_text
from ..sources.base import BackendError
from ..sources.reasons import in_words
from .keymap import usable
from .kv_view import kv_client
from .nav_table import NavTable
from .screens import ConfirmScreen, PromptScreen

if TYPE_CHECKING:
    from .app import JamApp

COLUMNS = (("source", "SOURCE"), ("arrow", "→"), ("destination", "DESTINATION"),
           ("action", "ACTION"), ("precedence", "PRECEDENCE"), ("description", "DESCRIPTION"))


def ordered(store: Any) -> list[Intention]:
    return sorted(store.items(Kind.INTENTION),
                  key=lambda i: (-i.precedence, i.source, i.destination))


def denials_for(store: Any, service: str) -> list[Intention]:
    """The deny intentions that apply to connections into `service` (as routing's notes)."""
    return [i for i in ordered(store)
            if i.action == "deny" and i.destination in (service, "*")]


def parse_new(text: str) -> tuple[str, str, str, str]:
    """`SOURCE DESTINATION allow|deny [description…]` → its parts; ValueError in words."""
    parts = text.split(maxsplit=3)
    if len(parts) < 3:
        raise ValueError("give SOURCE DESTINATION allow|deny [description]")
    source, dest, action = parts[0], parts[1], parts[2].lower()
    if action not in ("allow", "deny"):
        raise ValueError(f"the action is allow or deny, not {line(parts[2])!r}")
    return source, dest, action, parts[3] if len(parts) > 3 else ""


def _action(action: str) -> Text:
    return Text("✓ allow", style="green") if action == "allow" else Text(
        f"✗ {action}", style="bold red")


class IntentionsScreen(Screen[None]):
    BINDINGS = [Binding("n", "new", "new intention", id="intention_new"),
                Binding("x", "delete", "delete", id="intention_delete"),
                Binding("escape", "back", "back", show=False, id="intentions_back")]

    def __init__(self, select: str | None = None) -> None:
        super().__init__(name="intentions")
        self.select = select

    @property
    def jam(self) -> JamApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="intentions-body"):
            yield Label(Text("Consul intentions (highest precedence first)", style="bold"),
                        classes="pane-title")
            yield Static(id="intentions-refused")
            yield NavTable(id="intentions", cursor_type="row")
            yield Static(id="intention-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#intentions", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self.refresh_intentions()
        self.jam.store_changed.subscribe(self, self.apply_changes, immediate=True)
        if self.select and self.select in table.rows:
            table.move_cursor(row=table.get_row_index(self.select))
        table.focus()
        self.show_selected()

    # -- live (the app forwards store changes to the screen on top) ------------------------

    def apply_changes(self, by_kind: dict[Kind, set[str]]) -> None:
        if Kind.INTENTION in by_kind or Kind.BACKEND in by_kind:
            self.refresh_intentions()

    def refresh_rows(self, kinds: set[Kind]) -> None:
        return None

    def refresh_intentions(self) -> None:
        store = self.jam.store
        refused = store.refusals(Kind.INTENTION)
        self.query_one("#intentions-refused", Static).update(
            Text("\n".join(line(r.message) for r in refused), style="yellow") if refused
            else "")
        table = self.query_one("#intentions", DataTable)
        keep = self.selected_id()
        table.clear()
        for i in ordered(store):
            table.add_row(*plain_cells([i.source, "→", i.destination, _action(i.action),
                                        str(i.precedence), i.description]), key=i.id)
        if keep is not None and keep in table.rows:
            table.move_cursor(row=table.get_row_index(keep))
        self.show_selected()

    def selected_id(self) -> str | None:
        table = self.query_one("#intentions", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    def selected(self) -> Intention | None:
        iid = self.selected_id()
        return self.jam.store.get(Kind.INTENTION, iid) if iid else None

    @on(DataTable.RowHighlighted, "#intentions")
    def highlighted(self, _: DataTable.RowHighlighted) -> None:
        self.show_selected()

    def show_selected(self) -> None:
        i = self.selected()
        detail = self.query_one("#intention-detail", Static)
        if i is None:
            detail.update(Text("No intentions. n creates one.", style="dim"))
            return
        verb = "may" if i.action == "allow" else "may NOT"
        detail.update(Text.assemble(
            safe_text(f"{i.source} {verb} connect to {i.destination}",
                      "green" if i.action == "allow" else "bold red"),
            f"  (precedence {i.precedence})\n",
            safe_text(i.description or "no description", "dim")))

    # -- actions --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Creating and deleting are not offered under --read-only."""
        read_only = getattr(self.app, "read_only", False)
        return action not in ("new", "delete") or usable(f"act('intention_{action}')",
                                                         read_only)

    def _writable(self) -> Any:
        if not usable("act('intention_write')", getattr(self.app, "read_only", False)):
            self.notify("read-only: started with --read-only; actions are off.", severity="warning")
            return None
        kv = kv_client(self.app)
        if kv is None:
            self.notify("Consul is not configured", severity="warning")
        return kv

    def _run(self, fn: Any, done: str) -> None:
        def run() -> None:
            try:
                fn()
            except (BackendError, ValueError) as exc:
                self.app.call_from_thread(self.notify, str(exc), severity="error", timeout=8)
                return
            except Exception as exc:  # a connection's or library's error: in words
                self.app.call_from_thread(self.notify, f"Consul: {in_words(exc)}",
                                          severity="error", timeout=8)
                return
            self.app.call_from_thread(self.notify, done, timeout=4)

        self.run_worker(run, thread=True, group="intentions", exit_on_error=False)

    def action_new(self) -> None:
        kv = self._writable()
        if kv is None:
            return
        current = self.selected()
        hint = f"{current.source} {current.destination} deny" if current else "web api allow"

        def answered(text: str | None) -> None:
            if not text:
                return
            try:
                source, dest, action, description = parse_new(text)
            except ValueError as exc:
                self.notify(str(exc), severity="warning")
                return
            self.app.push_screen(
                ConfirmScreen(f"Create the intention {source} → {dest}: {action}?"),
                lambda yes: self._run(partial(kv.create_intention, source, dest, action,
                                              description),
                                      f"intention {source} → {dest}: {action}")
                if yes else None)

        self.app.push_screen(PromptScreen(
            "New intention: SOURCE DESTINATION allow|deny [description]  (* for any)", hint),
            answered)

    def action_delete(self) -> None:
        i = self.selected()
        if i is None:
            return
        kv = self._writable()
        if kv is None:
            return
        self.app.push_screen(
            ConfirmScreen(f"Delete the intention {i.source} → {i.destination} ({i.action})?"),
            lambda yes: self._run(partial(kv.delete_intention, i.source, i.destination),
                                  f"intention {i.source} → {i.destination} deleted")
            if yes else None)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
