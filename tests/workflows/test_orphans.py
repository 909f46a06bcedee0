"""A jamtui killed while a tool runs leaves the tool running (its own process group, by
design). The resume finds it by the pid and start time journalled when it started, stops it
(SIGINT, then SIGTERM) before running the step again, and says so; a pid now used by another
process is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from jamtui.workflows.journal import Journal
from jamtui.workflows.runner import alive, start_time
from jamtui.workflows.workflow import Step, StepContext, Workflow
from tests.helpers import wait_for

# a stand-in for a long Terraform apply: notes its pid, answers SIGINT as Terraform does
# (or, with IGNORE, not at all), never writes to its (broken) stdout
TOOL = textwrap.dedent("""\
    import os, signal, sys, time
    marks = sys.argv[1]
    def note(text):
        with open(marks, "a") as fh:
            fh.write(text + "\\n")
    def interrupted(sig, frame):
        note("SIGINT")
        sys.exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN if sys.argv[2] == "IGNORE" else interrupted)
    signal.signal(signal.SIGTERM, lambda sig, frame: (note("SIGTERM"), sys.exit(143)))
    note(f"started {os.getpid()}")
    time.sleep(60)
""")

# the jamtui that gets killed: one step running the tool through the runner, journalled
JAMTUI = textwrap.dedent("""\
    import sys
    from pathlib import Path
    from jamtui.workflows.journal import Journal
    from jamtui.workflows.runner import run_tool, start_time
    from jamtui.workflows.workflow import Step, Workflow
    journal = Journal(Path(sys.argv[1]))
    def apply(ctx):
        run_tool([sys.executable, sys.argv[2], sys.argv[3], sys.argv[4]], parse=lambda l: None,
                 on_start=lambda pid: journal.record("tool", step="apply", tool="terraform",
                                                     pid=pid, start=start_time(pid)))
        return "applied"
    Workflow("test", {}, [Step("apply", "apply", apply)], journal).run()
""")


def killed_in_the_middle(tmp_path: Path, mode: str) -> tuple[Journal, int, Path]:
    """A journal whose jamtui was SIGKILLed while its tool ran; the tool's pid."""
    journal = Journal.create(tmp_path / "state", "test", {"name": "x"})
    tool, marks = tmp_path / "tool.py", tmp_path / "marks"
    tool.write_text(TOOL)
    proc = subprocess.Popen([sys.executable, "-c", JAMTUI, str(journal.dir), str(tool),
                             str(marks), mode], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: marks.exists() and "started" in marks.read_text(), timeout=30)
        wait_for(lambda: journal.last("tool") is not None, timeout=30)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    pid = int(marks.read_text().split()[1])
    assert alive(pid, start_time(pid)), "the tool should outlive its jamtui"
    assert journal.summary().state == "interrupted"
    return journal, pid, marks


def resumed(journal: Journal, seen: list[bool]) -> Workflow:
    def apply(ctx: StepContext) -> str:
        tool = journal.last("tool")
        assert tool is not None
        seen.append(alive(tool["pid"], tool["start"]))
        return "applied again"

    wf = Workflow("test", {}, [Step("apply", "apply", apply)], journal)
    wf.orphan_grace = 5.0
    return wf


def test_resume_interrupts_the_tool_a_killed_jamtui_left_running(tmp_path: Path) -> None:
    journal, pid, marks = killed_in_the_middle(tmp_path, "INTERRUPT")
    seen: list[bool] = []
    wf = resumed(journal, seen)
    assert wf.run() == "done", wf.message
    assert seen == [False]  # the step ran again only once the old tool had ended
    assert "SIGINT" in marks.read_text() and "SIGTERM" not in marks.read_text()
    log = journal.log_path("apply").read_text()
    assert f"terraform (pid {pid}) is still running from a jamtui that ended" in log
    assert "sending SIGINT to its process group" in log
    assert f"terraform (pid {pid}) has ended" in log
    assert f"(pid {pid}) has ended" in journal.screen_path.read_text()


def test_a_tool_that_ignores_sigint_gets_sigterm(tmp_path: Path) -> None:
    journal, _pid, marks = killed_in_the_middle(tmp_path, "IGNORE")
    seen: list[bool] = []
    wf = resumed(journal, seen)
    wf.orphan_grace = 1.0
    assert wf.run() == "done", wf.message
    assert seen == [False]
    assert "SIGTERM" in marks.read_text()
    log = journal.log_path("apply").read_text()
    assert "sending SIGINT" in log and "sending SIGTERM" in log


def test_a_reused_pid_is_left_alone(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path / "state", "test", {"name": "x"})
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        real = start_time(other.pid)
        assert real is not None
        # the journal names this pid, but a process that started at another time
        journal.record("tool", step="apply", tool="terraform", pid=other.pid, start=real - 1)
        journal.record("step", step="apply", state="running")
        seen: list[bool] = []
        wf = resumed(journal, seen)
        assert wf.run() == "done"
        assert other.poll() is None  # not signalled
        log = journal.log_path("apply")
        assert not log.exists() or "still running" not in log.read_text()
    finally:
        os.killpg(other.pid, signal.SIGKILL)
        other.wait(10)


def test_ctrl_c_in_jamtui_interrupts_its_tool_gracefully(tmp_path: Path) -> None:
    """Ctrl-C in `jamtui node …` reaches jamtui only (the tool has its own process group):
    the tool is then sent SIGINT, as at a terminal, never killed outright (a killed Terraform
    leaves its state lock)."""
    import pytest

    from jamtui.workflows.runner import run_tool

    tool, marks = tmp_path / "tool.py", tmp_path / "marks"
    tool.write_text(TOOL.replace('note(f"started {os.getpid()}")',
                                 'note(f"started {os.getpid()}"); print("up", flush=True)'))

    def line(text: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_tool([sys.executable, str(tool), str(marks), "INTERRUPT"], parse=lambda text: None,
                 on_line=line, grace=5.0)
    assert "SIGINT" in marks.read_text()


def test_a_workflow_made_but_not_started_is_pending_not_interrupted(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path / "state", "test", {"name": "x"})
    journal.record("step", step="inventory", state="running")
    journal.record("step", step="inventory", state="done")
    assert journal.summary().state == "pending"
    wf = Workflow("test", {}, [Step("inventory", "i", lambda c: "x"),
                               Step("apply", "a", lambda c: "applied")], journal)
    assert wf.state == "pending" and wf.states["inventory"].state == "done"
    assert wf.run() == "done"
    assert journal.summary().state == "done"
