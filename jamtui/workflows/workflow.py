"""A workflow: named steps run in order in a background thread, each journalled (start,
result, output) so it can be resumed from the step that did not finish, or rolled back.
Observers (the TUI's workflow screen, the CLI's printer) get every state change and line."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .journal import Journal, JournalError
from .parsers import Event
from .runner import Cancelled, StepFailed


@dataclass
class StepState:
    name: str
    title: str
    state: str = "pending"  # pending | running | done | skipped | failed | cancelled
    message: str = ""
    progress: float | None = None  # 0..1 where the tool tells
    started: float = 0.0
    ended: float = 0.0
    lines: list[str] = field(default_factory=list)  # the tail, for the screen; all on disk


class StepContext:
    """What a step's body gets: logging, events, progress, the cancel flag, the approval."""

    def __init__(self, workflow: Workflow, step: StepState) -> None:
        self.workflow = workflow
        self.step = step
        self.cancel = workflow.cancel_event

    def log(self, line: str) -> None:
        self.workflow.journal.log(self.step.name, line)
        self.step.lines.append(line)
        del self.step.lines[:-500]
        self.workflow.emit("line", self.step, line)

    def raw(self, line: str) -> None:
        """A tool's own output line: kept in the step's log file (its events are shown)."""
        self.workflow.journal.log(self.step.name, line)

    def event(self, event: Event) -> None:
        if event.message:
            where = f"{event.resource}: " if event.resource else ""
            self.log(f"{'! ' if event.failed else ''}{where}{event.message}")
        if event.kind in ("progress", "done") and event.resource:
            self.step.message = f"{event.resource}: {event.message}"[:200]
        elif event.failed:
            self.step.message = event.message[:200]
        self.workflow.emit("event", self.step, event)

    def progress(self, fraction: float, message: str = "") -> None:
        self.step.progress = max(0.0, min(1.0, fraction))
        if message:
            self.step.message = message
        self.workflow.emit("step", self.step, None)

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled("cancelled")

    def wait(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise Cancelled("cancelled")

    def approve(self, title: str, text: str) -> None:
        """Show the plan and wait for the operator's yes; a no cancels the workflow."""
        self.log(f"--- {title} ---")
        for line in text.splitlines():
            self.log(line)
        if not self.workflow.approver(title, text):
            raise Cancelled("plan rejected: nothing applied")
        self.log("--- approved ---")


Body = Callable[[StepContext], str | None]


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    run: Body
    redo: tuple[str, ...] = ()  # steps to run again before this one (a plan is single-use)


Observer = Callable[[str, StepState | None, Any], None]


class Workflow:
    """`start()` runs the steps in a thread; `run()` in the caller's. A step already `done`
    in the journal is not run again (resume)."""

    def __init__(self, kind: str, params: dict[str, Any], steps: list[Step], journal: Journal,
                 approver: Callable[[str, str], bool] | None = None,
                 rollback_steps: list[Step] | None = None) -> None:
        self.kind = kind
        self.params = params
        self.steps = steps
        self.rollback_steps = rollback_steps or []
        self.journal = journal
        self.approver = approver or (lambda title, text: False)
        self.cancel_event = threading.Event()
        self.states = {s.name: StepState(s.name, s.title) for s in steps}
        self.state = "pending"  # pending | running | done | failed | cancelled | rolled-back
        self.message = ""
        self._observers: list[Observer] = []
        self._thread: threading.Thread | None = None
        self._load(journal)
        self._reset_redo(steps)

    def _load(self, journal: Journal) -> None:
        """Where the journal left it: done steps stay done; one that was running when its
        jamtui died is `interrupted`; the last lines of each step's log, for the screen."""
        if len(journal.entries()) == 1:
            return
        summary = journal.summary()
        self.state = summary.state
        self.message = summary.message
        for name, entry in journal.step_states().items():
            st = self.states.get(name)
            if st is None:
                continue
            st.state, st.message = entry.get("state", "pending"), entry.get("message", "")
            if st.state == "running":
                st.state = "interrupted" if summary.state == "interrupted" else "running"
            path = journal.log_path(name)
            if path.exists():
                st.lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[-500:]

    def _reset_redo(self, steps: list[Step]) -> None:
        for step in steps:
            if self.states[step.name].state not in ("done", "skipped"):
                for name in step.redo:
                    if name in self.states:
                        self.states[name].state = "pending"
                break

    @property
    def id(self) -> str:
        return self.journal.id

    def observe(self, fn: Observer) -> Callable[[], None]:
        self._observers.append(fn)
        return lambda: self._observers.remove(fn) if fn in self._observers else None

    def emit(self, what: str, step: StepState | None, data: Any) -> None:
        for fn in list(self._observers):
            with contextlib.suppress(Exception):
                fn(what, step, data)

    def start(self, rollback: bool = False) -> threading.Thread:
        """Run (or roll back) in a thread; what stops it before any step (the journal locked by
        another jamtui, a full disk) becomes the workflow's failed state, never a traceback."""
        def body() -> None:
            try:
                self.rollback() if rollback else self.run()
            except (JournalError, StepFailed, OSError) as exc:
                self.state, self.message = "failed", str(exc)
                self.emit("workflow", None, self.state)

        self._thread = threading.Thread(target=body, name=f"workflow-{self.id}", daemon=True)
        self._thread.start()
        return self._thread

    def cancel(self) -> None:
        self.cancel_event.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> str:
        return self._run(self.steps, "done")

    def rollback(self) -> str:
        """Undo what the workflow did, as far as it got (its rollback steps, in order)."""
        if not self.rollback_steps:
            raise StepFailed(f"a {self.kind} cannot be rolled back; run the opposite workflow")
        self.states = {s.name: StepState(s.name, s.title) for s in self.rollback_steps}
        self.cancel_event.clear()
        self.journal.record("rollback")
        return self._run(self.rollback_steps, "rolled-back")

    def _run(self, steps: list[Step], success: str) -> str:
        self.journal.lock()
        self.state = "running"
        self.emit("workflow", None, self.state)
        try:
            for step in steps:
                st = self.states[step.name]
                if st.state in ("done", "skipped"):
                    continue
                if not self._step(step, st):
                    return self.state
            self._end(success, "")
            return self.state
        finally:
            self.journal.unlock()

    def _step(self, step: Step, st: StepState) -> bool:
        st.state, st.message, st.progress = "running", "", None
        st.started, st.lines = time.time(), []
        self.journal.record("step", step=step.name, state="running")
        self.emit("step", st, None)
        ctx = StepContext(self, st)
        try:
            ctx.check_cancel()
            result = step.run(ctx)
        except Cancelled as exc:
            return self._fail(st, "cancelled", str(exc))
        except StepFailed as exc:
            return self._fail(st, "failed", str(exc))
        except Exception as exc:
            return self._fail(st, "failed", f"{type(exc).__name__}: {exc}")
        skipped = isinstance(result, str) and result.startswith("skipped: ")
        st.state = "skipped" if skipped else "done"
        if skipped:
            result = result.removeprefix("skipped: ")
        st.message, st.progress, st.ended = result or st.message, 1.0, time.time()
        self.journal.record("step", step=step.name, state=st.state, message=st.message)
        self.emit("step", st, None)
        return True

    def _fail(self, st: StepState, state: str, message: str) -> bool:
        st.state, st.message, st.ended = state, message, time.time()
        ctx_line = f"{state}: {message}"
        self.journal.log(st.name, ctx_line)
        self.journal.record("step", step=st.name, state=state, message=message)
        self.emit("step", st, None)
        self._end(state, f"{st.title}: {message}")
        return False

    def _end(self, state: str, message: str) -> None:
        self.state, self.message = state, message
        self.journal.record("end", state=state, message=message)
        self.emit("workflow", None, state)
