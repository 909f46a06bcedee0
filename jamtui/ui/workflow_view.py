"""Node add and remove in the cockpit: the form (prefilled, validated as you type), the plan
(shown before anything is applied), and the live workflow screen (each step's state, a
progress bar, the step log). The workflow runs in its own thread; this only draws it."""

from __future__ import annotations

import os
import time
import weakref
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Log, ProgressBar, Static
from textual.worker import get_current_worker

from ..inventory import (
    NODE_GROUPS,
    Inventory,
    InventoryError,
    NodeSpec,
    check_inventory,
    load_inventory,
    propose_node,
    resolve_names,
    validate_node,
)
from ..plain import BLOCK_LIMIT, block, line
from ..workflows.journal import JournalError
from ..workflows.runner import StepFailed
from ..workflows.workflow import StepState, Workflow
from .columns import age
from .inbox import Inbox

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.widgets import DataTable

    from ..workflows.journal import Journal, Summary
    from ..workflows.node import NodeWorkflows
    from .app import JamApp
    from .log_store import Stream

# what building or resuming a workflow can refuse with: said, never raised
REFUSED = (InventoryError, JournalError, StepFailed, OSError)
FIELDS = ("group", "name", "ip", "vmid", "cores", "memory", "disk", "hypervisor")
INTS = {"vmid", "cores", "memory", "disk"}
LABELS = {"ip": "IP", "vmid": "VMID", "memory": "memory MiB", "disk": "disk GiB"}
ICONS = {"pending": ("·", "dim"), "running": ("▶", "bold cyan"), "done": ("✔", "green"),
         "skipped": ("-", "dim green"), "failed": ("✘", "bold red"),
         "cancelled": ("■", "yellow"), "interrupted": ("!", "bold yellow")}


class NodeAddScreen(ModalScreen["NodeSpec | None"]):
    """The node-add form: every field prefilled from the inventory and checked as you type."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="node_form_cancel"),
                Binding("ctrl+s", "submit", "add", id="node_form_submit")]

    def __init__(self, inventory: Inventory, group: str = "vs",
                 addresses: dict[str, str] | None = None) -> None:
        super().__init__()
        self.inventory = inventory
        self.addresses = addresses or {}  # hosts written by name → their resolved address
        self.spec = propose_node(inventory, group, self.addresses)
        self.errors: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="node-form"):
            yield Label(Text("Add a node", style="bold"), classes="pane-title")
            with Grid(id="node-fields"):
                for f in FIELDS:
                    yield Label(LABELS.get(f, f))
                    yield Input(str(getattr(self.spec, f)), id=f"f-{f}")
                    yield Label("", id=f"e-{f}", classes="field-error")
            with Horizontal(id="node-buttons"):
                yield Button("Plan", id="submit", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#f-group", Input).focus()
        self._check()

    @on(Input.Changed)
    def changed(self, event: Input.Changed) -> None:
        if event.input.id == "f-group" and event.value in NODE_GROUPS \
                and event.value != self.spec.group:
            proposal = propose_node(self.inventory, event.value, self.addresses)
            for f in FIELDS[1:]:
                self.query_one(f"#f-{f}", Input).value = str(getattr(proposal, f))
        self._check()

    def _read(self) -> tuple[NodeSpec | None, dict[str, str]]:
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for f in FIELDS:
            raw = self.query_one(f"#f-{f}", Input).value.strip()
            if f in INTS:
                if not raw.isdigit():
                    errors[f] = "a whole number"
                    values[f] = 0
                    continue
                values[f] = int(raw)
            else:
                values[f] = raw
        spec = NodeSpec(**values)
        errors = {**validate_node(self.inventory, spec, self.addresses), **errors}
        return spec, errors

    def _check(self) -> None:
        spec, self.errors = self._read()
        if spec is not None:
            self.spec = spec
        for f in FIELDS:
            self.query_one(f"#e-{f}", Label).update(Text(line(self.errors.get(f, ""))))
        self.query_one("#submit", Button).disabled = bool(self.errors)

    @on(Button.Pressed, "#submit")
    def action_submit(self) -> None:
        self._check()
        if not self.errors:
            self.dismiss(self.spec)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.action_submit()


class PlanScreen(ModalScreen[bool]):
    """The plan, before anything is applied: `y` applies, `n` or Esc stops."""

    BINDINGS = [Binding("y", "answer(True)", "apply", id="plan_apply"),
                Binding("n,escape", "answer(False)", "do not apply", id="plan_refuse")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="plan-box"):
            yield Label(Text(line(self.title_text), style="bold"), classes="pane-title")
            with VerticalScroll():
                yield Static(Text(block(self.text, None)), id="plan-text")
            yield Label("Apply this plan?  y apply · n / Esc do not apply")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


# the workflows running in this process: `:workflows` opens the running one, not a copy
LIVE: weakref.WeakValueDictionary[str, Workflow] = weakref.WeakValueDictionary()
RESUMABLE = ("failed", "cancelled", "interrupted", "pending")


class WorkflowScreen(Screen[None]):
    """A workflow live: steps, progress, log. Esc leaves it running in the background. One
    running elsewhere (another jamtui, or opened from `:workflows`) is followed through its
    journal. The log pane is the journal's screen lines, each shown once."""

    BINDINGS = [
        Binding("c", "cancel_workflow", "cancel", id="workflow_cancel"),
        Binding("r", "resume", "resume", id="workflow_resume"),
        Binding("b", "rollback", "roll back", id="workflow_rollback"),
        Binding("l", "logs", "logs", id="workflow_logs"),
        Binding("escape", "back", "back", id="workflow_back"),
    ]

    def __init__(self, workflow: Workflow) -> None:
        super().__init__(name=f"workflow:{workflow.id}")
        self.workflow = workflow
        self._unobserve: Any = None
        self._dirty = True
        self._offset = 0  # how far the screen lines are shown
        self._partial = b""
        self._journal_seen: tuple[int, int] | None = None
        self._applies: dict[str, bool] = {}
        self._was_live = False
        self._lines: Inbox[str] = Inbox()  # the screen lines, read by `_read_lines`

    @property
    def jam(self) -> JamApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        wf = self.workflow
        yield Label(Text(line(f"{wf.kind} {wf.params.get('name', '')}  ·  {wf.id}"),
                         style="bold"),
                    id="wf-title", classes="pane-title")
        yield Static(id="wf-steps")
        yield ProgressBar(total=1.0, show_eta=False, id="wf-progress")
        yield Log(max_lines=5000, id="wf-log")
        yield Footer()

    def on_mount(self) -> None:
        self._unobserve = self.workflow.observe(self._observed)
        self._journal_seen = self._journal_stat()
        self._flush()
        self._read_lines()
        self.set_interval(0.1, self._flush)
        self.set_interval(0.5, self._follow)

    def on_unmount(self) -> None:
        if self._unobserve:
            self._unobserve()

    def _observed(self, what: str, step: StepState | None, data: Any) -> None:
        # from the workflow's thread: the interval draws
        self._dirty = True

    def _journal_stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.workflow.journal.dir / "journal.jsonl")
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _follow(self) -> None:
        """Not running here: its journal is the truth, read again when it changes."""
        if self.workflow.live:
            return
        seen = self._journal_stat()
        if seen != self._journal_seen:
            self._journal_seen = seen
            try:
                self.workflow.reload()
            except (JournalError, OSError):
                return
            self._dirty = True

    @work(thread=True, exit_on_error=False, name="workflow screen lines")
    def _read_lines(self) -> None:
        """The screen lines file, read off the loop as it grows; ends with the screen."""
        worker = get_current_worker()
        while not worker.is_cancelled:
            self._lines.extend(self._new_lines())
            time.sleep(0.1)

    def _new_lines(self) -> list[str]:
        try:
            with open(self.workflow.journal.screen_path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read(1 << 20)
        except OSError:
            return []
        self._offset += len(data)
        data, self._partial = self._partial + data, b""
        if not data.endswith(b"\n"):
            data, _, self._partial = data.rpartition(b"\n")
        return [line(x, None) for x in data.decode("utf-8", errors="replace").splitlines()]

    def _flush(self) -> None:
        lines = self._lines.take()
        live = self.workflow.live
        dirty, self._dirty = self._dirty or live != self._was_live, False
        self._was_live = live
        if lines:
            self.query_one(Log).write_lines(lines)
        if dirty:
            applies = self._what_applies()
            if applies != self._applies:
                self._applies = applies
                self.refresh_bindings()
            self.query_one("#wf-steps", Static).update(self.render_steps())
            done = sum(s.state in ("done", "skipped") for s in self.workflow.states.values())
            running = next((s for s in self.workflow.states.values() if s.state == "running"),
                           None)
            part = (running.progress or 0.0) if running else 0.0
            total = max(1, len(self.workflow.states))
            self.query_one(ProgressBar).update(progress=(done + part) / total)

    def render_steps(self) -> Table:
        wf = self.workflow
        table = Table.grid(padding=(0, 1))
        table.add_column(width=1)
        table.add_column(min_width=28)
        table.add_column(ratio=1)
        for st in wf.states.values():
            icon, style = ICONS.get(st.state, ("?", ""))
            table.add_row(Text(icon, style=style), Text(line(st.title)),
                          Text(line(st.message, BLOCK_LIMIT),
                               style="red" if st.state == "failed" else "dim"))
        state_style = {"done": "green", "failed": "bold red", "cancelled": "yellow",
                       "rolled-back": "yellow"}.get(wf.state, "cyan")
        applies = self._applies or self._what_applies()
        hints = []
        if applies["resume"]:
            hints.append("r resume the rollback" if wf.phase == "rollback"
                         else "r resume from the failed step")
        if applies["rollback"]:
            hints.append("b roll back")
        state = f"rollback {wf.state}" if wf.phase == "rollback" and wf.state != "rolled-back" \
            else wf.state
        table.add_row("", Text(state, style=state_style),
                      Text(line(wf.message, BLOCK_LIMIT)
                           + ("  " + " · ".join(hints) if hints else "")))
        return table

    def _what_applies(self) -> dict[str, bool]:
        wf = self.workflow
        stopped = wf.state in RESUMABLE and not wf.live
        return {"cancel_workflow": wf.live and wf.state == "running",
                "resume": stopped,
                "rollback": stopped and wf.phase == "run" and not wf.rollback_refusal()}

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """c, r and b are shown only when they apply."""
        if action in ("cancel_workflow", "resume", "rollback"):
            if not self._applies:
                self._applies = self._what_applies()
            return self._applies.get(action, False)
        return True

    def action_cancel_workflow(self) -> None:
        if not self._what_applies()["cancel_workflow"]:
            return
        from .screens import ConfirmScreen

        self.app.push_screen(ConfirmScreen(f"Cancel {self.workflow.kind} "
                                           f"{self.workflow.params.get('name', '')}?"),
                             lambda yes: self.workflow.cancel() if yes else None)

    def action_resume(self) -> None:
        """Resume what stopped: the workflow, or its rollback if one began."""
        if self._what_applies()["resume"]:
            self._resume(self.workflow.id)

    @work(thread=True, exclusive=True, group="workflow-resume", exit_on_error=False,
          name="resume workflow")
    def _resume(self, workflow_id: str) -> None:
        """Off the loop (it reads the journal and the inventory, under the file's lock),
        then the resumed workflow's screen replaces this one and it starts."""
        jam = self.jam
        try:
            fresh = jam.workflows().resume(workflow_id)
        except REFUSED as exc:
            jam.call_from_thread(self.notify, f"cannot resume: {exc}", severity="error",
                                 timeout=12)
            return

        def show() -> None:
            LIVE[fresh.id] = fresh
            jam.switch_screen(WorkflowScreen(fresh))
            fresh.start()

        if not get_current_worker().is_cancelled:
            jam.call_from_thread(show)

    def action_rollback(self) -> None:
        if not self._what_applies()["rollback"]:
            return
        from .screens import ConfirmScreen

        def go(yes: bool | None) -> None:
            if yes:
                LIVE[self.workflow.id] = self.workflow
                self.workflow.start(rollback=True)
                self._dirty = True

        self.app.push_screen(ConfirmScreen(
            f"Roll back {self.workflow.kind} {self.workflow.params.get('name', '')} "
            "(destroy its VM, remove its inventory entry)?"), go)

    def action_logs(self) -> None:
        """Every step's log in the viewer (search, filter, save), followed while it runs."""
        open_workflow_logs(self.jam, self.workflow.journal)

    def action_back(self) -> None:
        self.app.pop_screen()


def open_workflow_logs(app: JamApp, journal: Journal) -> None:
    from functools import partial

    from ..sources.logs import FileFollower
    from .log_view import LogScreen

    def streams() -> list[Stream]:
        # a step's log appears when the step starts: the viewer asks again every second
        steps = sorted(journal.dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
        return [(p.stem, partial(lambda path, _stream: FileFollower(path), p)) for p in steps]

    app.open_tail(lambda: LogScreen(f"workflow {journal.id}", streams, stderr_toggle=False))


def open_node_add(app: JamApp) -> None:
    """Read and check the inventory, resolve hosts written by name (DNS: in a thread), then
    open the form; a defect is said in a notification, never raised."""
    from ..sources.dns import addresses_of

    cfg = app.engine.config

    def chosen(spec: NodeSpec | None) -> None:
        if spec is not None:
            start_workflow(app, lambda flows: flows.add(spec))

    def show(inv: Inventory, addresses: dict[str, str]) -> None:
        app.push_screen(NodeAddScreen(inv, addresses=addresses), chosen)

    def prepare() -> None:
        try:
            inv = check_inventory(load_inventory(cfg.inventory))
            addresses = resolve_names(inv, addresses_of(cfg.dns.server))
        except (InventoryError, OSError, ValueError) as exc:  # said, never a crash
            app.call_from_thread(app.notify, str(exc), severity="error", timeout=12)
            return
        app.call_from_thread(show, inv, addresses)

    app.run_worker(prepare, thread=True, group="node-add", exclusive=True)


def start_workflow(app: JamApp, build: Callable[[NodeWorkflows], Workflow]) -> None:
    """Build the workflow in a thread (an add writes its inventory entry under the file's
    lock, which another editor may hold a moment), then show it and run it; refused input is
    said, nothing starts."""
    def show(wf: Workflow) -> None:
        LIVE[wf.id] = wf
        app.push_screen(WorkflowScreen(wf))
        wf.start()

    def built() -> None:
        try:
            wf = build(app.workflows())
        except REFUSED as exc:
            app.call_from_thread(app.notify, str(exc), severity="error", timeout=12)
            return
        app.call_from_thread(show, wf)

    app.run_worker(built, thread=True, group="workflow-build", exit_on_error=False)


def open_node_remove(app: JamApp, name: str) -> None:
    from .screens import PromptScreen

    def typed(text: str | None) -> None:
        if text is None:
            return
        if text.strip() != name:
            app.notify(f"not removed: the name typed was not {name}", severity="warning")
            return
        start_workflow(app, lambda flows: flows.remove(name))

    app.push_screen(PromptScreen(f"Remove node {name}: drain, leave, destroy its VM, delete "
                                 f"its inventory entry. Type {name} to confirm"), typed)


WORKFLOW_COLUMNS = (("state", "STATE"), ("kind", "KIND"), ("node", "NODE"),
                    ("started", "STARTED"), ("took", "DURATION"), ("step", "STEP"),
                    ("id", "ID"), ("message", "MESSAGE"))


def _took(seconds: float) -> str:
    """A duration as AGE writes it (`columns.age`), a workflow's first second as `0s`."""
    return age(seconds) if seconds >= 1 else "0s"


def _started(at: float, now: float) -> str:
    same_day = time.strftime("%Y%m%d", time.localtime(at)) == time.strftime(
        "%Y%m%d", time.localtime(now))
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M", time.localtime(at))


def workflow_cells(s: Summary, now: float) -> list[Text]:
    """One `:workflows` row: state (with its icon), kind, node, start, duration (ticking
    while it runs), last step, id, message; every journal string made plain."""
    icon, style = ICONS.get({"rolled-back": "cancelled", "interrupted": "failed"}.get(
        s.state, s.state), ("", ""))
    state = f"rollback {s.state}" if s.phase == "rollback" and s.state != "rolled-back" \
        else s.state
    return [Text(f"{icon} {state}".strip(), style=style), Text(line(s.kind)),
            Text(line(str(s.params.get("name", "")))), Text(_started(s.started, now)),
            Text(_took(s.duration(now)), style="bold cyan" if s.state == "running" else ""),
            Text(line(s.step)), Text(line(s.id), style="dim"), Text(line(s.message))]


class WorkflowsScreen(Screen[None]):
    """`:workflows`: every journalled workflow, newest first, with a header, its start and
    duration; live (the journals are re-read off the loop every 2 s, so a workflow's state and
    duration follow it as it runs, here or in another jamtui). Enter opens it."""

    BINDINGS = [Binding("escape", "back", "back", id="workflows_back")]
    REFRESH = 2.0

    def compose(self) -> ComposeResult:
        from textual.widgets import DataTable

        yield Label(Text("Workflows", style="bold"), classes="pane-title")
        yield DataTable(id="wf-list", cursor_type="row")
        yield Label("No workflows yet: `a` on the VMs view adds a node.", id="wf-none")
        yield Footer()

    def on_mount(self) -> None:
        from textual.widgets import DataTable

        table = self.query_one("#wf-list", DataTable)
        for key, label in WORKFLOW_COLUMNS:
            table.add_column(label, key=key)
        self.summaries: dict[str, Summary] = {}
        self.query_one("#wf-none").display = False
        self._list()
        self._timer = self.set_interval(self.REFRESH, self._list)

    def on_screen_suspend(self) -> None:  # a workflow opened over it: no reads meanwhile
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.pause()

    def on_screen_resume(self) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None:  # back from a workflow: at once, then every 2 s again
            timer.resume()
            self._list()

    @work(thread=True, exit_on_error=False, exclusive=True, group="wf-list",
          name="list journals")
    def _list(self) -> None:
        """The journals are files: read off the loop, then shown."""
        from ..workflows.journal import list_journals

        summaries = list_journals(self.app.engine.config.provisioning.state_dir)  # type: ignore[attr-defined]
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, summaries)

    def _show(self, summaries: list[Summary]) -> None:
        from textual.widgets import DataTable

        table = self.query_one("#wf-list", DataTable)
        now = time.time()
        first = not table.row_count
        ids = [s.id for s in summaries]
        if ids != list(self.summaries):  # new or gone workflows: rebuilt, newest first
            at = self._selected()
            table.clear()
            for s in summaries:
                table.add_row(*workflow_cells(s, now), key=s.id)
            if at in ids:
                table.move_cursor(row=ids.index(at))
        else:
            for s in summaries:
                for (key, _), cell in zip(WORKFLOW_COLUMNS, workflow_cells(s, now),
                                          strict=True):
                    table.update_cell(s.id, key, cell)
        self.summaries = {s.id: s for s in summaries}
        table.display = bool(summaries)
        self.query_one("#wf-none").display = not summaries
        if first and summaries:
            table.focus()

    def _selected(self) -> str | None:
        from textual.widgets import DataTable

        table = self.query_one("#wf-list", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        workflow_id = str(event.row_key.value)
        running = LIVE.get(workflow_id)
        if running is not None and running.live:
            self.app.push_screen(WorkflowScreen(running))
            return
        self._load(workflow_id)

    @work(thread=True, exit_on_error=False, name="load workflow")
    def _load(self, workflow_id: str) -> None:
        """A journal is read off the loop, then its screen shown."""
        jam: JamApp = self.app  # type: ignore[assignment]
        try:
            wf = jam.workflows().load(workflow_id)
        except Exception as exc:  # a bad journal is said, not raised
            jam.call_from_thread(jam.notify, f"cannot open workflow: {exc}", severity="error")
            return
        def show() -> None:
            jam.push_screen(WorkflowScreen(wf))

        if not get_current_worker().is_cancelled:
            jam.call_from_thread(show)

    def action_back(self) -> None:
        self.app.pop_screen()
