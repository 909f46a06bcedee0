"""The workflow engine on its own: tools as real subprocesses (cancel escalates SIGINT →
SIGTERM), the journal's lock, resume and redo, failures as states, not tracebacks."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from jamtui.workflows.journal import Journal, JournalError
from jamtui.workflows.parsers import Event
from jamtui.workflows.runner import Cancelled, StepFailed, run_tool
from jamtui.workflows.workflow import Step, Workflow


def words(line: str) -> Event | None:
    return Event("test", "message", line) if line else None


def test_cancel_interrupts_then_terminates_a_tool_that_ignores_sigint(tmp_path: Path) -> None:
    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
              "print('ready', flush=True)\n"
              "time.sleep(60)\n")
    cancel = threading.Event()
    seen: list[str] = []

    def on_line(line: str) -> None:
        seen.append(line)
        cancel.set()  # cancel as soon as it has started

    t0 = time.monotonic()
    with pytest.raises(Cancelled, match="cancelled"):
        run_tool([sys.executable, "-c", script], parse=words, on_line=on_line, cancel=cancel,
                 grace=0.5)
    assert seen == ["ready"] and time.monotonic() - t0 < 5  # SIGINT ignored, SIGTERM worked


def test_a_missing_tool_and_a_failing_one_are_said_in_words(tmp_path: Path) -> None:
    with pytest.raises(StepFailed, match="no-such-tool: not found"):
        run_tool([str(tmp_path / "no-such-tool")], parse=words)
    with pytest.raises(StepFailed, match=r"python\S* exited with 3: .*last words"):
        run_tool([sys.executable, "-c", "print('last words'); raise SystemExit(3)"],
                 parse=lambda line: None)


def make(journal: Journal, ran: list[str], fail_once: set[str]) -> Workflow:
    def body(name: str):
        def run(ctx):
            ran.append(name)
            if name in fail_once:
                fail_once.discard(name)
                raise StepFailed(f"{name} broke")
            return f"{name} ok"
        return run

    steps = [Step("a", "A", body("a")), Step("plan", "Plan", body("plan")),
             Step("apply", "Apply", body("apply"), redo=("plan",)), Step("b", "B", body("b"))]
    return Workflow("test", {"name": "x"}, steps, journal)


def test_resume_skips_done_steps_and_redoes_a_plan(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "test", {"name": "x"})
    ran: list[str] = []
    wf = make(journal, ran, {"apply"})
    assert wf.run() == "failed" and wf.message == "Apply: apply broke"
    assert ran == ["a", "plan", "apply"]
    again = make(Journal.open(tmp_path, journal.id), ran, set())
    assert again.states["a"].state == "done" and again.states["plan"].state == "pending"
    assert again.states["apply"].state == "failed"
    assert again.run() == "done"
    assert ran == ["a", "plan", "apply", "plan", "apply", "b"]
    assert Journal.open(tmp_path, journal.id).summary().state == "done"


def test_a_second_runner_of_the_same_journal_is_refused(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, "test", {"name": "x"})
    hold, release = threading.Event(), threading.Event()

    def slow(ctx):
        hold.set()
        release.wait(10)

    first = Workflow("test", {}, [Step("s", "S", slow)], journal)
    first.start()
    assert hold.wait(5)
    second = Workflow("test", {}, [Step("s", "S", slow)], Journal.open(tmp_path, journal.id))
    assert Journal.open(tmp_path, journal.id).summary().state == "running"
    second.start().join(5)
    assert second.state == "failed" and "running in another jamtui" in second.message
    with pytest.raises(JournalError):
        second.run()
    release.set()
    first.join(5)
    assert first.state == "done"
