"""A guest's snapshots as a tree in its detail (`/nodes/{node}/qemu/{vmid}/snapshot`), and the
dialogs of the Proxmox actions that ask something first: take a snapshot (name, description,
with RAM or not), and migrate (the target hypervisor, with its free memory).

Keys on the focused tree: `n` take one, `b` roll back to the highlighted one, `x` delete it;
each destructive one is confirmed naming the VM and the snapshot, and the Proxmox task is
followed to its end in the panel's status line; the tree is read again when it ends.
"""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList
from textual.widgets.option_list import Option

from ..actions import ActionError, describe, find
from ..model import VM, Kind, Snapshot
from ..plain import line
from ..plain import text as safe_text
from ..sources.proxmox import snapshot_tree
from .columns import gib
from .inbox import Inbox

# PVE::JSONSchema 'pve-configid': what Proxmox accepts as a snapshot's name
SNAPNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{1,39}$")


def tree_rows(snaps: list[Snapshot]) -> list[tuple[str, Text]]:
    """(snapshot name, the row) in tree order: indented under its parent, `current` marked
    "you are here", the time, RAM or not, the description."""
    import time

    rows = []
    for depth, s in snapshot_tree(snaps):
        indent = "  " * depth + ("└ " if depth else "")
        if s.name == "current":
            rows.append((s.name, Text.assemble(indent, ("● you are here", "bold green"),
                                               f" ({'running' if s.running else 'stopped'})")))
            continue
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.snaptime)) if s.snaptime \
            else "-"
        row = Text.assemble(indent, safe_text(s.name, "bold"), f"  {when}",
                            ("  with RAM" if s.vmstate else "", "cyan"))
        if s.description:
            row.append("  ")
            row.append_text(safe_text(line(s.description)[:80], "dim"))
        rows.append((s.name, row))
    return rows


class SnapshotList(OptionList):
    BINDINGS = [
        Binding("n", "take", "new snapshot", id="snapshot_new"),
        Binding("b", "rollback", "roll back", id="snapshot_rollback"),
        Binding("x", "delete", "delete snapshot", id="snapshot_delete"),
    ]

    def action_take(self) -> None:
        self.panel.take()

    def action_rollback(self) -> None:
        self.panel.ask("snapshot_rollback")

    def action_delete(self) -> None:
        self.panel.ask("snapshot_delete")

    @property
    def panel(self) -> SnapshotPanel:
        return self.query_ancestor(SnapshotPanel)


class SnapshotPanel(Vertical):
    """The snapshot tree of one guest, read on demand (not polled: Proxmox has no feed)."""

    DEFAULT_CSS = """
    SnapshotPanel { height: auto; max-height: 16; }
    SnapshotPanel SnapshotList { height: auto; max-height: 12; }
    """

    def __init__(self, vmid: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.vmid = vmid
        self.snapshots: list[Snapshot] = []
        self.busy = False
        # what the workers hand to the loop: (method, argument)
        self._inbox: Inbox[tuple[Any, Any]] = Inbox()

    def compose(self) -> ComposeResult:
        yield Label("Snapshots (n new · b roll back · x delete)", classes="pane-title")
        yield SnapshotList(id="snapshot-list")
        yield Label("", id="snapshot-status")

    def on_mount(self) -> None:
        self.set_interval(0.2, self._take)
        self.reload()

    def _take(self) -> None:
        for fn, arg in self._inbox.take():
            fn(arg)

    def _notify(self, args: tuple[str, str]) -> None:
        text, severity = args
        self.app.notify(line(text), severity=severity,  # type: ignore[arg-type]
                        timeout=12 if severity == "error" else 4)

    @property
    def vm(self) -> VM | None:
        return self.app.store.get(Kind.VM, self.vmid)  # type: ignore[attr-defined]

    def _source(self) -> Any:
        return self.app.engine.sources.get("proxmox")  # type: ignore[attr-defined]

    def reload(self) -> None:
        self.run_worker(self._read, thread=True, group="snapshots", exclusive=True,
                        exit_on_error=False)

    def _read(self) -> None:
        vm, source = self.vm, self._source()
        if vm is None or source is None:
            self._inbox.put((self._status, "no Proxmox source for this guest"))
            return
        try:
            snaps = source.snapshots(vm.node, vm.vmid, vm.type)
        except Exception as exc:  # a refusal (VM.Audit) or the backend's failure, in words
            words = getattr(source, "_words", lambda e: e)(exc)
            self._inbox.put((self._status, f"snapshots not read: {words}"))
            return
        self._inbox.put((self._show, snaps))

    def _show(self, snaps: list[Snapshot]) -> None:
        self.snapshots = snaps
        options = self.query_one(SnapshotList)
        highlighted = options.highlighted
        options.clear_options()
        options.add_options([Option(row, id=name) for name, row in tree_rows(snaps)])
        if highlighted is not None and options.option_count:
            options.highlighted = min(highlighted, options.option_count - 1)
        if not self.busy:
            self._status(f"{len(snaps) - 1} snapshot(s)")

    def _status(self, text: str) -> None:
        self.query_one("#snapshot-status", Label).update(safe_text(text))

    def chosen(self) -> str | None:
        options = self.query_one(SnapshotList)
        if options.highlighted is None:
            return None
        name = options.get_option_at_index(options.highlighted).id
        return None if name in (None, "current") else name

    # -- actions ------------------------------------------------------------------------------

    def _allowed(self) -> bool:
        if getattr(self.app, "read_only", False):
            self.app.notify("read-only: started with --read-only; actions are off.",
                            severity="warning")
            return False
        if self.busy:
            self.app.notify("a snapshot task is still running", severity="warning")
            return False
        return self.vm is not None

    def take(self) -> None:
        vm = self.vm
        if not self._allowed() or vm is None:
            return
        self.app.push_screen(SnapshotForm(vm), lambda params: self.start_snapshot_action(
            "vm_snapshot", params) if params else None)

    def ask(self, name: str) -> None:
        vm, snap = self.vm, self.chosen()
        if not self._allowed() or vm is None:
            return
        if snap is None:
            self.app.notify("highlight a snapshot first (not 'you are here')",
                            severity="warning")
            return
        from .screens import ConfirmScreen

        question = (f"Roll back {describe(vm)} to snapshot '{snap}'? What changed since is "
                    "lost" + (" and the VM stops" if vm.status == "running" else "")
                    if name == "snapshot_rollback"
                    else f"Delete snapshot '{snap}' of {describe(vm)}?")
        self.app.push_screen(ConfirmScreen(line(question)), lambda yes: self.start_snapshot_action(
            name, {"snapshot": snap}) if yes else None)

    def start_snapshot_action(self, name: str, params: dict[str, Any]) -> None:
        self.busy = True
        self.run_worker(lambda: self._run(name, params), thread=True, group="snapshot-action",
                        exit_on_error=False)

    def _run(self, name: str, params: dict[str, Any]) -> None:
        action, vm = find(name), self.vm
        assert action is not None
        progress = ""
        try:
            if vm is None:
                raise ActionError("the guest is gone from the lab")
            for progress in action.run(self.app.engine, vm, params):  # type: ignore[attr-defined]
                self._inbox.put((self._status, progress))
            self._inbox.put((self._notify, (progress, "information")))
        except ActionError as exc:
            self._inbox.put((self._status, f"{action.label} failed"))
            self._inbox.put((self._notify, (f"{action.label} failed: {exc}", "error")))
        finally:
            self.busy = False
            self._read()


class SnapshotForm(ModalScreen["dict[str, Any] | None"]):
    """`n`: the new snapshot's name, description and whether it keeps the RAM."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="snapshot_form_cancel")]

    def __init__(self, vm: VM) -> None:
        super().__init__()
        self.vm = vm

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(safe_text(f"New snapshot of {describe(self.vm)}"))
            yield Input(placeholder="name (a letter, then letters, digits, - or _)",
                        id="snap-name")
            yield Input(placeholder="description (optional)", id="snap-description")
            yield Checkbox("with RAM (vmstate: resumes running on rollback)",
                           value=False, id="snap-vmstate",
                           disabled=self.vm.status != "running")
            yield Label("", id="snap-error")
            with Horizontal():
                yield Button("Take", variant="primary", id="snap-ok")
                yield Button("Cancel", id="snap-cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#snap-ok")
    def _submit(self, _: Any) -> None:
        name = self.query_one("#snap-name", Input).value.strip()
        if not SNAPNAME.match(name) or name == "current":
            self.query_one("#snap-error", Label).update(
                "the name must start with a letter, then 1-39 letters, digits, - or _")
            return
        self.dismiss({"name": name,
                      "description": self.query_one("#snap-description", Input).value,
                      "vmstate": self.query_one("#snap-vmstate", Checkbox).value})

    @on(Button.Pressed, "#snap-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class MigrateScreen(ModalScreen["str | None"]):
    """`M`: pick the hypervisor to migrate to, each with its free memory."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="migrate_cancel")]

    def __init__(self, vm: VM) -> None:
        super().__init__()
        self.vm = vm

    def compose(self) -> ComposeResult:
        store = self.app.store  # type: ignore[attr-defined]
        options = []
        for hv in sorted(store.items(Kind.HYPERVISOR), key=lambda h: h.name):
            if hv.name == self.vm.node:
                continue
            free = max(0, hv.maxmem - hv.mem)
            fits = free >= self.vm.maxmem
            label = Text.assemble(safe_text(hv.name, "bold"), f"  {hv.status}  ",
                                  (f"{gib(free)} free of {gib(hv.maxmem)}",
                                   "" if fits else "yellow"),
                                  ("" if fits else "  (less than the VM's memory)", "yellow"))
            options.append(Option(label, id=hv.name, disabled=hv.status != "online"))
        how = "live (online: it keeps running)" if self.vm.status == "running" else "offline"
        with Vertical(id="dialog"):
            yield Label(safe_text(f"Migrate {describe(self.vm)}, {how}, to:"))
            yield OptionList(*options, id="migrate-targets")
            if not options:
                yield Label("no other hypervisor to migrate to")

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
