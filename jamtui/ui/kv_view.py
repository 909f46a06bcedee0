"""`:kv`: Consul's key/value store as a tree by prefix, one key's value beside it.

Enter opens a folder (or reads a key), Backspace goes up; `e` edits the key's value in
`$EDITOR` (the app suspended) or, without one, in an inline editor, and writes it back with
check-and-set on the ModifyIndex it read (a change made meanwhile is refused and shown); `n`
makes a new key (only if it does not exist: `cas=0`); `x` deletes a key (check-and-set) or a
folder (recursively, asked twice). Flags and the lock holder (the session's name and node)
are shown. Every read and write runs in a thread worker (jamtui/sources/consul_kv.py).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Label, Static, TextArea

from ..plain import BLOCK_LIMIT, LINE_LIMIT, line
from ..plain import text as safe_text
from ..sources.base import BackendError
from ..sources.consul_kv import CASConflict, ConsulKV, KVValue, SessionInfo
from ..sources.reasons import in_words
from .keymap import usable
from .nav_table import NavTable
from .screens import ConfirmScreen, PromptScreen

if TYPE_CHECKING:
    from .app import JamApp

VALUE_SHOWN = 64 * 1024  # bytes of a value drawn in the pane; the editor gets all of it


def kv_client(app: Any) -> ConsulKV | None:
    """The KV client over the engine's Consul source; None when Consul is not configured."""
    engine = getattr(app, "engine", None)
    source = getattr(engine, "sources", {}).get("consul") if engine is not None else None
    return ConsulKV(source) if source is not None else None


def value_panel(v: KVValue | None, holder: SessionInfo | None, key: str) -> Any:
    """The selected key: its value as text (or its size and type when binary), flags,
    indexes and who holds its lock."""
    if v is None:
        return Text(f"{line(key)}: no such key (deleted meanwhile?)", style="yellow")
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column()
    fields.add_row("key", safe_text(v.key))
    fields.add_row("size", f"{len(v.value)} bytes ({v.kind})")
    fields.add_row("flags", str(v.flags))
    fields.add_row("ModifyIndex", str(v.modify_index))
    if v.session:
        who = (f"{holder.name or '(unnamed)'} on {holder.node}" if holder is not None
               else "(session not readable)")
        fields.add_row("lock", safe_text(f"held by session {v.session[:8]} — {who}; "
                                         f"LockIndex {v.lock_index}", "yellow"))
    else:
        fields.add_row("lock", f"free (LockIndex {v.lock_index})")
    text = v.text
    if text is None:
        body: Any = Text(f"binary value: {len(v.value)} bytes, {v.kind}; not shown",
                         style="dim")
    else:
        shown = text[:VALUE_SHOWN]
        body = safe_text(shown, limit=BLOCK_LIMIT, multiline=True)
        if len(text) > len(shown):
            body = Group(body, Text(f"… {len(text) - len(shown)} more characters "
                                    "(e opens all of it)", style="dim"))
    return Group(fields, Text(""), body)


class ValueEditor(ModalScreen["str | None"]):
    """The inline editor: Ctrl+S writes, Esc leaves without writing."""

    BINDINGS = [Binding("ctrl+s", "save", "write", id="kv_editor_write"),
                Binding("escape", "cancel", "cancel", id="kv_editor_cancel")]

    def __init__(self, title: str, value: str) -> None:
        super().__init__()
        self.title_text = title
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(safe_text(self.title_text, "bold"))
            yield TextArea(self.value, id="editor", soft_wrap=True, tab_behavior="indent")
            yield Static(Text("Ctrl+S: write    Esc: cancel", style="dim"))

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class KVScreen(Screen[None]):
    BINDINGS = [
        Binding("e", "edit", "edit", id="kv_edit"),
        Binding("n", "new", "new key", id="kv_new"),
        Binding("x", "delete", "delete", id="kv_delete"),
        Binding("r", "reload", "reload", id="kv_reload"),
        Binding("backspace,h", "up", "up a level", id="kv_up"),
        Binding("escape", "back", "back", show=False, id="kv_back"),
    ]
    WRITES = {"edit", "new", "delete"}  # off under --read-only (keymap.usable decides)

    def __init__(self, prefix: str = "") -> None:
        super().__init__(name="kv")
        self.prefix = prefix
        self.entries: list[str] = []
        self.current: KVValue | None = None
        self.holder: SessionInfo | None = None
        self.kv: ConsulKV | None = None
        self.notice: tuple[str, str] | None = None  # (key, a refused write's words)

    @property
    def jam(self) -> JamApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Horizontal(id="kv-body"):
            with Vertical(id="kv-tree"):
                yield Label(id="kv-title", classes="pane-title")
                yield NavTable(id="kv-keys", cursor_type="row")
            with VerticalScroll(id="kv-value"):
                yield Static(id="kv-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#kv-keys", DataTable)
        table.add_column("KEY", key="key")
        self.kv = kv_client(self.app)
        if self.kv is None:
            self._say("Consul is not configured: no key/value store to show.", "yellow")
            return
        self.action_reload()
        table.focus()

    # -- reading ---------------------------------------------------------------------------

    def _say(self, message: str, style: str = "") -> None:
        self.query_one("#kv-detail", Static).update(safe_text(message, style,
                                                              limit=2 * LINE_LIMIT,
                                                              multiline=True))

    def _title(self) -> None:
        self.query_one("#kv-title", Label).update(safe_text(
            f"Consul KV: /{self.prefix}  ({len(self.entries)} entries)", "bold"))

    def _in_worker(self, fn: Callable[[], Any], done: Callable[[Any], None],
                   what: str) -> None:
        """Run `fn` on a thread; `done(result)` back on the loop; errors in words."""

        def run() -> None:
            try:
                result = fn()
            except CASConflict as exc:
                self.app.call_from_thread(self._alive(self._conflict), str(exc))
                return
            except (BackendError, ValueError) as exc:
                self.app.call_from_thread(self._alive(partial(self._failed, what)), str(exc))
                return
            except Exception as exc:  # a connection's or library's error: in words
                self.app.call_from_thread(self._alive(partial(self._failed, what)),
                                          in_words(exc))
                return
            self.app.call_from_thread(self._alive(done), result)

        self.run_worker(run, thread=True, group="kv", exit_on_error=False)  # ends with me

    def _alive(self, fn: Callable[[Any], None]) -> Callable[[Any], None]:
        """`fn`, skipped once this screen is gone (a worker's answer may come after)."""
        def call(value: Any) -> None:
            if self.is_mounted:
                fn(value)
        return call

    def _failed(self, what: str, message: str) -> None:
        self.notify(f"{what}: {message}", severity="error", timeout=8)
        self._say(f"{what}: {message}", "red")

    def _conflict(self, message: str) -> None:
        self.notify(message, severity="error", timeout=10)
        self._say(message, "bold red")
        key = self.selected()
        if key is not None:
            self.notice = (key, message)  # stays above the value read again
        self._read_selected()  # show what is there now

    def action_reload(self) -> None:
        kv = self.kv
        if kv is None:
            return
        prefix = self.prefix
        self._in_worker(lambda: kv.keys(prefix), self._listed, f"reading /{prefix}")

    def _listed(self, keys: list[str]) -> None:
        table = self.query_one("#kv-keys", DataTable)
        keep = self.selected()
        table.clear()
        self.entries = keys
        for k in keys:
            name = k[len(self.prefix):]
            table.add_row(safe_text(name, "bold cyan" if name.endswith("/") else ""), key=k)
        self._title()
        if keep in keys:
            table.move_cursor(row=keys.index(keep))
        if not keys:
            self._say(f"/{self.prefix} is empty. n makes a key here.", "dim")
        else:
            self._read_selected()

    def selected(self) -> str | None:
        table = self.query_one("#kv-keys", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    @on(DataTable.RowHighlighted, "#kv-keys")
    def highlighted(self, _: DataTable.RowHighlighted) -> None:
        self._read_selected()

    def _read_selected(self) -> None:
        key = self.selected()
        kv = self.kv
        if key is None or kv is None:
            return
        if self.notice is not None and self.notice[0] != key:
            self.notice = None
        if key.endswith("/"):
            self.current = None
            self._say(f"{key}: a folder. Enter opens it; x deletes everything under it.",
                      "dim")
            return

        def read() -> tuple[str, KVValue | None, SessionInfo | None]:
            v = kv.read(key)
            holder = kv.session(v.session) if v is not None and v.session else None
            return key, v, holder

        self._in_worker(read, self._show, f"reading {key}")

    def _show(self, result: tuple[str, KVValue | None, SessionInfo | None]) -> None:
        key, v, holder = result
        if key != self.selected():
            return  # the cursor moved on meanwhile
        self.current, self.holder = v, holder
        panel = value_panel(v, holder, key)
        if self.notice is not None and self.notice[0] == key:
            panel = Group(safe_text(self.notice[1], "bold red", limit=2 * LINE_LIMIT,
                                    multiline=True), Text("now in Consul:", style="dim"),
                          panel)
        self.query_one("#kv-detail", Static).update(panel)

    @on(DataTable.RowSelected, "#kv-keys")
    def opened(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        if key.endswith("/"):
            self.prefix = key
            self.action_reload()
        else:
            self._read_selected()

    def action_up(self) -> None:
        if not self.prefix:
            return
        parts = self.prefix.rstrip("/").split("/")[:-1]
        self.prefix = "/".join(parts) + "/" if parts else ""
        self.action_reload()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    # -- writing ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Writes are not offered under --read-only (footer, `?` and keys alike)."""
        read_only = getattr(self.app, "read_only", False)
        return action not in self.WRITES or usable(f"act('kv_{action}')", read_only)

    def _writable(self) -> bool:
        if not usable("act('kv_write')", getattr(self.app, "read_only", False)):
            self.notify("read-only: started with --read-only; actions are off.", severity="warning")
            return False
        return self.kv is not None

    def action_edit(self) -> None:
        v = self.current
        if not self._writable():
            return
        if v is None or v.key != self.selected():
            self.notify("choose a key (not a folder) to edit", severity="warning")
            return
        if v.text is None:
            self.notify(f"{line(v.key)} holds a binary value ({len(v.value)} bytes, {v.kind}); "
                        "jamtui edits text values only", severity="warning")
            return
        self._edit(v.key, v.text, v.modify_index, v.flags)

    def _edit(self, key: str, text: str, cas: int, flags: int) -> None:
        """$EDITOR with the app suspended; the inline editor without one (or where the
        terminal cannot be handed over)."""
        edited = self._external_editor(key, text)
        if isinstance(edited, str):
            self._write(key, edited, cas, flags)
            return
        if edited is None:
            return
        self.app.push_screen(ValueEditor(f"{key} (ModifyIndex {cas})", text),
                             lambda new: self._write(key, new, cas, flags)
                             if new is not None else None)

    def _external_editor(self, key: str, text: str) -> str | bool | None:
        """The edited text; None if unchanged or the editor failed; False if no $EDITOR
        could run here (then the inline editor is used)."""
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if not editor:
            return False
        try:
            argv = shlex.split(editor)
        except ValueError:
            self.notify(f"$EDITOR is not a command line: {line(editor)}", severity="error")
            return False
        suffix = "".join(ch if ch.isalnum() or ch in "._-" else "_"
                         for ch in Path(key).name)[-40:]
        fd, name = tempfile.mkstemp(prefix="jamtui-kv-", suffix=f"-{suffix}")
        path = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            try:
                with self.app.suspend():
                    code = subprocess.call([*argv, str(path)])  # argv, never a shell string
            except SuspendNotSupported:  # no terminal to hand over (tests, web): inline
                return False
            except OSError as exc:
                self.notify(f"$EDITOR ({line(argv[0])}) could not start: {exc.strerror}; "
                            "the inline editor instead", severity="warning")
                return False
            if code != 0:
                self.notify(f"{line(argv[0])} exited {code}: nothing written", severity="warning")
                return None
            new = path.read_text(encoding="utf-8", errors="replace")
            return None if new == text else new
        finally:
            path.unlink(missing_ok=True)

    def _write(self, key: str, new: str, cas: int, flags: int = 0) -> None:
        kv = self.kv
        assert kv is not None

        def write() -> str:
            kv.write(key, new.encode("utf-8"), cas=cas, flags=flags or None)
            return key

        self._in_worker(write, self._written, f"writing {key}")

    def _written(self, key: str) -> None:
        self.notice = None
        self.notify(f"{line(key)} written", timeout=3)
        parent = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
        if parent != self.prefix and not key.startswith(self.prefix):
            self.prefix = parent
        self.action_reload()

    def action_new(self) -> None:
        if not self._writable():
            return

        def named(name: str | None) -> None:
            name = (name or "").strip()
            if not name:
                return
            if name.endswith("/"):
                self.notify("a key's name does not end with / (folders are made by the keys "
                            "under them)", severity="warning")
                return
            self.app.push_screen(ValueEditor(f"new key {name}", ""),
                                 lambda value: self._write(name, value, 0)
                                 if value is not None else None)

        self.app.push_screen(PromptScreen("New key (full path):", self.prefix), named)

    def action_delete(self) -> None:
        key = self.selected()
        if key is None or not self._writable():
            return
        kv = self.kv
        assert kv is not None
        if key.endswith("/"):
            def first(yes: bool | None) -> None:
                if yes:
                    self.app.push_screen(ConfirmScreen(
                        f"Really delete every key under {key}? This cannot be undone."),
                        lambda sure: self._in_worker(
                            partial(kv.delete, key, None, True), lambda _: self._deleted(key),
                            f"deleting {key}") if sure else None)

            self.app.push_screen(ConfirmScreen(
                f"Delete the folder {key} and every key under it?"), first)
            return
        v = self.current
        cas = v.modify_index if v is not None and v.key == key else None
        self.app.push_screen(ConfirmScreen(f"Delete the key {key}?"),
                             lambda yes: self._in_worker(
                                 partial(kv.delete, key, cas), lambda _: self._deleted(key),
                                 f"deleting {key}") if yes else None)

    def _deleted(self, key: str) -> None:
        self.notify(f"{line(key)} deleted", timeout=3)
        self.action_reload()
