"""Running one provisioning tool as a subprocess: arguments as a list (never a shell), its
output parsed line by line into events, cancellable (SIGINT, then SIGTERM, then SIGKILL to its
process group, as one would at a terminal)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .parsers import Event


class StepFailed(Exception):
    """A step did not do its work; the message is the tool's own words where it gave any."""


class Cancelled(Exception):
    """The operator cancelled (or rejected the plan)."""


@dataclass
class ToolRun:
    argv: list[str]
    rc: int
    events: list[Event] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)  # the last lines, for an error message

    def errors(self) -> list[str]:
        return [e.message + (f" ({e.resource})" if e.resource else "")
                for e in self.events if e.failed]


def run_tool(
    argv: Sequence[str],
    *,
    parse: Callable[[str], Event | None],
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] = lambda line: None,
    on_event: Callable[[Event], None] = lambda event: None,
    cancel: threading.Event | None = None,
    grace: float = 10.0,
    on_start: Callable[[int], None] = lambda pid: None,
) -> ToolRun:
    """Run the tool to its end; raise StepFailed (non-zero exit, with the tool's error events
    or its last lines) or Cancelled. stderr is merged into the parsed stream: the tools'
    diagnostics land on either."""
    argv = [str(a) for a in argv]
    cancel = cancel or threading.Event()
    full_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, text=True, errors="replace",
                                bufsize=1)
    except FileNotFoundError:
        raise StepFailed(f"{argv[0]}: not found (install it, or set its path under "
                         "[provisioning] in the config)") from None
    except PermissionError:
        raise StepFailed(f"{argv[0]}: not executable") from None
    run = ToolRun(argv, -1)
    try:
        on_start(proc.pid)  # journalled: a resume after a killed jamtui finds the tool
    except BaseException:
        _stop(proc, grace)
        raise
    tail: deque[str] = deque(maxlen=20)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(0.1):
                _interrupt(proc, grace, done)
                return

    watcher = threading.Thread(target=watch, name=f"cancel-{Path(argv[0]).name}", daemon=True)
    watcher.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            tail.append(line)
            on_line(line)
            event = parse(line)
            if event is not None:
                run.events.append(event)
                on_event(event)
        run.rc = proc.wait()
    finally:
        done.set()
        watcher.join(grace * 3)
        if proc.poll() is None:  # left by an exception here (Ctrl-C in the CLI)
            _stop(proc, grace)
    run.tail = list(tail)
    if cancel.is_set():
        raise Cancelled(f"{Path(argv[0]).name} cancelled (exit {run.rc})")
    if run.rc != 0:
        words = run.errors() or [t for t in run.tail if t.strip()][-3:] or ["no output"]
        raise StepFailed(f"{Path(argv[0]).name} exited with {run.rc}: " + "; ".join(words))
    return run


def _stop(proc: subprocess.Popen[str], grace: float) -> None:
    """As at a terminal: SIGINT (Terraform saves its state and releases its lock), then
    SIGTERM, SIGKILL only as the last resort."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def _interrupt(proc: subprocess.Popen[str], grace: float, done: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        if done.wait(grace) or proc.poll() is not None:
            return


# -- a tool left running by a jamtui that was killed ------------------------------------------


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks after boot, /proc/PID/stat field 22): with the
    pid it names one process, never a later one that got the same pid. None when it is gone
    (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the name may hold spaces and parentheses
    if not fields or fields[0] in ("Z", "X"):
        return None
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def alive(pid: int, started: int | None) -> bool:
    return started is not None and start_time(pid) == started


def stop_orphan(pid: int, started: int, grace: float, say: Callable[[str], None]) -> bool:
    """Interrupt the tool's process group as one would at its terminal: SIGINT (Terraform
    finishes what it is doing and saves its state), then SIGTERM; never SIGKILL (a killed
    Terraform leaves its state lock). True when it is gone."""
    import time

    for sig in (signal.SIGINT, signal.SIGTERM):
        if not alive(pid, started):
            return True
        say(f"sending {signal.Signals(sig).name} to its process group")
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return not alive(pid, started)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not alive(pid, started):
                return True
            time.sleep(0.1)
    return not alive(pid, started)
