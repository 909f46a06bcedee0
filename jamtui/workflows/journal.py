"""A workflow's journal on disk: one JSON line per fact (the workflow and its parameters,
each step's start and result, the end), fsynced as written, and each step's output in its own
log file. A crash, a closed SSH session or a cancel leaves it readable, and the workflow can
be resumed from the step that did not finish, or rolled back."""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

ENDED = ("done", "failed", "cancelled", "rolled-back")


class JournalError(Exception):
    pass


@dataclass(frozen=True)
class Summary:
    id: str
    kind: str
    params: dict[str, Any]
    state: str  # pending | running | done | failed | cancelled | rolled-back | interrupted
    started: float
    step: str  # the last step that started
    message: str
    phase: str = "run"  # run | rollback (a rollback was started: resume continues it)
    ended: float | None = None  # its end, or its last record when cut short; None: running

    def duration(self, now: float) -> float:
        """Seconds from its start to its end (to `now` while it runs)."""
        return max(0.0, (now if self.ended is None else self.ended) - self.started)


class Journal:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.id = directory.name
        self._lock_fd: TextIO | None = None

    # -- creating and finding ----------------------------------------------------------------

    @classmethod
    def create(cls, state_dir: str | Path, kind: str, params: dict[str, Any]) -> Journal:
        root = workflows_dir(state_dir)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = re.sub(r"[^A-Za-z0-9_.-]", "-", str(params.get("name", "")))[:40]
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1000):
            directory = root / (f"{stamp}-{kind}-{name}" + (f"-{n}" if n else ""))
            try:
                directory.mkdir(mode=0o700)
                break
            except FileExistsError:
                continue
        journal = cls(directory)
        journal.record("workflow", kind=kind, params=params)
        return journal

    @classmethod
    def open(cls, state_dir: str | Path, id_: str) -> Journal:
        directory = workflows_dir(state_dir) / id_
        if not (directory / "journal.jsonl").is_file():
            raise JournalError(f"no workflow {id_!r} in {workflows_dir(state_dir)}")
        return cls(directory)

    # -- writing -----------------------------------------------------------------------------

    def record(self, type_: str, **fields: Any) -> None:
        line = json.dumps({"at": round(time.time(), 3), "type": type_, **fields}) + "\n"
        with open(self.dir / "journal.jsonl", "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def log_path(self, step: str) -> Path:
        return self.dir / f"{step}.log"

    def log(self, step: str, line: str) -> None:
        with open(self.log_path(step), "a", encoding="utf-8") as fh:
            fh.write(line.rstrip("\n") + "\n")

    @property
    def screen_path(self) -> Path:
        """What the workflow screen's log pane shows, in order (`[step] line`): each line once,
        never the tools' raw output (that is in the step's own log)."""
        return self.dir / "screen.lines"

    def show(self, step: str, line: str) -> None:
        with open(self.screen_path, "a", encoding="utf-8") as fh:
            fh.write(f"[{step}] " + line.rstrip("\n").replace("\n", " ") + "\n")

    def lock(self) -> None:
        """One runner at a time: a second `resume` of the same workflow is refused."""
        fd = open(self.dir / "lock", "a")  # noqa: SIM115 - held until unlock()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fd.close()
            raise JournalError(f"workflow {self.id} is running in another jamtui") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            self._lock_fd.close()
            self._lock_fd = None

    def is_locked(self) -> bool:
        try:
            with open(self.dir / "lock", "a") as fd:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            return True
        return False

    # -- reading -----------------------------------------------------------------------------

    def entries(self) -> list[dict[str, Any]]:
        out = []
        try:
            text = (self.dir / "journal.jsonl").read_text(encoding="utf-8")
        except OSError as exc:
            raise JournalError(f"{self.dir}: cannot read journal: {exc.strerror}") from exc
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash: the step it began is rerun
        if not out or out[0].get("type") != "workflow":
            raise JournalError(f"{self.dir}: not a jamtui workflow journal")
        return out

    def step_states(self) -> dict[str, dict[str, Any]]:
        """Each step's last record in the current phase (after a rollback began: its steps)."""
        entries = self.entries()
        starts = [i for i, e in enumerate(entries) if e.get("type") == "rollback"]
        states: dict[str, dict[str, Any]] = {}
        for e in entries[starts[-1] if starts else 0:]:
            if e.get("type") == "step":
                states[e["step"]] = e
        return states

    def phase(self) -> str:
        return "rollback" if any(e.get("type") == "rollback" for e in self.entries()) else "run"

    def last(self, type_: str, **match: Any) -> dict[str, Any] | None:
        """The last record of this type (with these fields), or None."""
        return next((e for e in reversed(self.entries()) if e.get("type") == type_
                     and all(e.get(k) == v for k, v in match.items())), None)

    def summary(self) -> Summary:
        entries = self.entries()
        head = entries[0]
        last_step = next((e for e in reversed(entries) if e.get("type") == "step"), {})
        end = next((e for e in reversed(entries) if e.get("type") == "end"), None)
        if end is not None:
            state, message = end.get("state", "done"), end.get("message", "")
        elif self.is_locked():
            state, message = "running", last_step.get("message", "")
        else:
            # never run (made, its inventory entry written, not started yet) or cut short
            started = any(e.get("type") == "run" or (e.get("type") == "step" and
                                                     e.get("step") != "inventory")
                          for e in entries)
            state = "interrupted" if started else "pending"
            message = last_step.get("message", "")
        phase = "rollback" if any(e.get("type") == "rollback" for e in entries) else "run"
        ended = None if state == "running" else float(
            (end or entries[-1]).get("at", head.get("at", 0.0)))
        return Summary(self.id, head.get("kind", ""), head.get("params", {}), state,
                       head.get("at", 0.0), last_step.get("step", ""), message, phase, ended)


def workflows_dir(state_dir: str | Path) -> Path:
    return Path(state_dir).expanduser() / "workflows"


def list_journals(state_dir: str | Path) -> list[Summary]:
    """Every workflow, newest first; unreadable ones are skipped."""
    root = workflows_dir(state_dir)
    out = []
    for directory in sorted(root.iterdir() if root.is_dir() else [], reverse=True):
        try:
            out.append(Journal(directory).summary())
        except JournalError:
            continue
    return out
