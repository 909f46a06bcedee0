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
from .runner import Cancelled, StepFailed, alive, stop_orphan


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
        self.workflow.journal.show(self.step.name, line)
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
                 rollback_steps: list[Step] | None = None,
                 rollback_check: Callable[[], str] | None = None) -> None:
        self.kind = kind
        self.params = params
        self.steps = steps
        self.rollback_steps = rollback_steps or []
        self.rollback_check = rollback_check or (lambda: "")
        self.journal = journal
        self.approver = approver or (lambda title, text: False)
        self.cancel_event = threading.Event()
        self.phase = "run"  # run | rollback: what `run()` (and a resume) continues
        self.orphan_grace = 10.0  # how long a left-over tool gets per signal
        self.notes: dict[str, Any] = {}  # what one step tells a later one in the same run
        self.state = "pending"  # pending | running | done | failed | cancelled | rolled-back
        self.message = ""
        self._observers: list[Observer] = []
        self._thread: threading.Thread | None = None
        self.reload()

    def reload(self) -> None:
        """Where the journal leaves it (read again: the screen follows a workflow another
        jamtui runs this way)."""
        self.phase = self.journal.phase()
        steps = self._phase_steps()
        self.states = {s.name: StepState(s.name, s.title) for s in steps}
        self.state, self.message = "pending", ""
        self._load(self.journal)
        self._reset_redo(steps)

    def _phase_steps(self) -> list[Step]:
        return self.rollback_steps if self.phase == "rollback" else self.steps

    def _load(self, journal: Journal) -> None:
        """Where the journal left it: done steps stay done; one that was running when its
        jamtui died is `interrupted`; one undone (a rejected plan's inventory entry) is to do."""
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
            elif st.state == "undone":
                st.state = "pending"

    def _reset_redo(self, steps: list[Step]) -> None:
        for step in steps:
            if step.name in self.states and \
                    self.states[step.name].state not in ("done", "skipped"):
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

    @property
    def live(self) -> bool:
        """Running in this process (its thread): cancellable from here."""
        return self._thread is not None and self._thread.is_alive()

    def rollback_refusal(self) -> str:
        """Why this workflow cannot be rolled back ('' when it can)."""
        if not self.rollback_steps:
            return f"a {self.kind} cannot be rolled back; run the opposite workflow"
        return self.rollback_check()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> str:
        """Run, or resume, the workflow's current phase: after a rollback began, the rollback."""
        if self.phase == "rollback":
            return self._run(self.rollback_steps, "rolled-back")
        return self._run(self.steps, "done")

    def rollback(self) -> str:
        """Undo what the workflow did itself, as its journal records, as far as it got (its
        rollback steps, in order); refused, with the reason, when it did nothing to undo."""
        if self.phase == "rollback":
            return self.run()
        why = self.rollback_refusal()
        if why:
            raise StepFailed(why)
        self.journal.lock()
        try:
            self.journal.record("rollback")
        finally:
            self.journal.unlock()
        self.phase = "rollback"
        self.states = {s.name: StepState(s.name, s.title) for s in self.rollback_steps}
        self.cancel_event.clear()
        return self._run(self.rollback_steps, "rolled-back")

    def _run(self, steps: list[Step], success: str) -> str:
        self.journal.lock()
        self.state = "running"
        self.emit("workflow", None, self.state)
        try:
            self.journal.record("run", phase=self.phase)
            if not self._stop_orphans():
                return self.state
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

    def _stop_orphans(self) -> bool:
        """A tool a killed jamtui left running (its own process group, by design) is found by
        the pid and start time journalled when it started, and interrupted before any step
        runs again: real Terraform would otherwise meet its own state lock. Said in the log of
        the step it belonged to; if it will not end, the workflow fails and says why."""
        ended = {(e.get("pid"), e.get("start")) for e in self.journal.entries()
                 if e.get("type") == "tool-end"}
        for e in self.journal.entries():
            if e.get("type") != "tool" or (e.get("pid"), e.get("start")) in ended:
                continue
            pid, started = int(e.get("pid", 0)), e.get("start")
            if not pid or not alive(pid, started):
                continue
            st = self.states.get(e.get("step", "")) or StepState(e.get("step", "?"), "")

            def say(text: str, st: StepState = st) -> None:
                self.journal.log(st.name, text)
                self.journal.show(st.name, text)
                self.emit("line", st, text)

            tool = e.get("tool", "the tool")
            say(f"{tool} (pid {pid}) is still running from a jamtui that ended: stopping it "
                "before the step runs again")
            if stop_orphan(pid, started, self.orphan_grace, say):
                say(f"{tool} (pid {pid}) has ended")
                self.journal.record("tool-end", step=st.name, pid=pid, start=started,
                                    rc=None, orphan=True)
                continue
            st.state = "failed"
            self._end("failed", f"{tool} (pid {pid}) from an earlier run is still running "
                      "after SIGINT and SIGTERM: not running the step again beside it "
                      f"(end it, then resume)")
            return False
        return True

    def _fail(self, st: StepState, state: str, message: str) -> bool:
        st.state, st.message, st.ended = state, message, time.time()
        ctx_line = f"{state}: {message}"
        self.journal.log(st.name, ctx_line)
        self.journal.show(st.name, ctx_line)
        self.journal.record("step", step=st.name, state=state, message=message)
        self.emit("step", st, None)
        self._end(state, f"{st.title}: {message}")
        return False

    def _end(self, state: str, message: str) -> None:
        self.state, self.message = state, message
        self.journal.record("end", state=state, message=message)
        self.emit("workflow", None, state)
