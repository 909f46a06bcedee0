"""What each storage of a hypervisor holds (`/nodes/{node}/storage/{storage}/content`): disk
images, container volumes, ISOs, templates and backups, with their size; shown in the
hypervisor's detail under the storages' use. Read once when the detail opens (and with `g`),
never polled: a listing can be long and Proxmox has no feed."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Label, Static

from ..model import Kind, Volume
from ..plain import cells
from .columns import gib
from .inbox import Inbox

SHOWN = 200  # volumes listed per hypervisor


def content_table(by_storage: dict[str, list[Volume]]) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold dim")
    for h in ("STORAGE", "CONTENT", "VOLUME", "FORMAT", "SIZE", "VMID"):
        table.add_column(h)
    rows = 0
    for storage, volumes in sorted(by_storage.items()):
        for v in sorted(volumes, key=lambda v: (v.content, v.volid)):
            if rows >= SHOWN:
                break
            rows += 1
            table.add_row(*cells([storage, v.content, v.volid.partition(":")[2] or v.volid,
                                  v.format, gib(v.size), v.vmid if v.vmid else "-"]))
    return table


class StorageContentPanel(Vertical):
    BINDINGS = [Binding("g", "reload", "read storage again", show=False, id="storage_reload")]
    DEFAULT_CSS = "StorageContentPanel { height: auto; }"

    def __init__(self, node: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.node = node
        self.content: dict[str, list[Volume]] = {}
        self.problems: list[str] = []
        self._inbox: Inbox[tuple[dict[str, list[Volume]], list[str]]] = Inbox()

    def compose(self) -> ComposeResult:
        yield Label("Storage content (images, ISOs, templates, backups)", classes="pane-title")
        yield Static("reading…", id="storage-content")

    def on_mount(self) -> None:
        self.set_interval(0.3, self._take)
        self.action_reload()

    def _take(self) -> None:
        for content, problems in self._inbox.take():
            self._show(content, problems)

    def action_reload(self) -> None:
        self.run_worker(self._read, thread=True, group="storage-content", exclusive=True,
                        exit_on_error=False)

    def _read(self) -> None:
        source = self.app.engine.sources.get("proxmox")  # type: ignore[attr-defined]
        store = self.app.store  # type: ignore[attr-defined]
        if source is None:
            return
        names = sorted(s.storage for s in store.items(Kind.STORAGE)
                       if s.node == self.node and s.backend == "proxmox")
        content: dict[str, list[Volume]] = {}
        problems = []
        for name in names:
            try:
                content[name] = source.storage_content(self.node, name)
            except Exception as exc:  # a refusal (Datastore.Audit) turns off this one part
                problems.append(f"{name}: {getattr(source, '_words', lambda e: e)(exc)}")
        self._inbox.put((content, problems))

    def _show(self, content: dict[str, list[Volume]], problems: list[str]) -> None:
        from rich.console import Group
        from rich.text import Text

        from ..plain import text as safe_text

        self.content, self.problems = content, problems
        parts: list[Any] = [content_table(content)] if content else []
        parts += [safe_text(p, "yellow") for p in problems]
        if not parts:
            parts = [Text("no storage on this hypervisor", style="dim")]
        self.query_one("#storage-content", Static).update(Group(*parts))
