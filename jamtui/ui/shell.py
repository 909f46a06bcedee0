"""`s`: a shell in an allocation's task (Nomad exec) or on a VM or hypervisor (SSH), on the
real terminal: the app is suspended (`App.suspend()`) while the session runs and comes back
to the same screen when it ends, with the exit status said in a notification.

The command asked for an allocation is split like a shell would (shlex) into an argv that
Nomad receives as a JSON array: nothing is interpreted by a shell on our side. For hosts the
system's OpenSSH (or paramiko's channel) is run as an argv list (sources/ssh_shell.py).
`Shells.suspend` and `Shells.ssh_runner` are the seams tests replace (Textual's test driver
cannot suspend)."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..model import VM, Allocation, Hypervisor
from ..plain import line
from ..sources.exec import ExecError, ExecTarget, run_exec
from ..sources.ssh_shell import ShellError, run_shell, targets
from .screens import PromptScreen

if TYPE_CHECKING:
    from textual.app import App

DEFAULT_COMMAND = "/bin/sh"


def split_command(text: str) -> list[str]:
    """The operator's command as an argv (ValueError for unbalanced quotes); empty → sh."""
    argv = shlex.split(text)
    return argv or [DEFAULT_COMMAND]


class Shells:
    """Opens shells for one app; `suspend` and `ssh_runner` are replaceable for tests."""

    def __init__(self, app: App[Any], config: Any, inventory: Any) -> None:
        self.app = app
        self.config = config
        self.inventory = inventory
        self.ssh_runner: Callable[[list[str]], int] | None = None  # default: subprocess
        self.last: dict[str, Any] = {}  # what the last session ran (for tests and messages)

    @contextlib.contextmanager
    def suspend(self) -> Iterator[None]:
        with self.app.suspend():
            yield

    # -- entry point --------------------------------------------------------------------------

    def open(self, obj: Any) -> None:
        if isinstance(obj, Allocation):
            self.ask_exec(obj)
        elif isinstance(obj, (VM, Hypervisor)):
            self.ssh(obj)
        else:
            self.app.notify("s opens a shell on an allocation, a VM or a hypervisor",
                            severity="warning")

    # -- Nomad exec ---------------------------------------------------------------------------

    def ask_exec(self, alloc: Allocation) -> None:
        if alloc.client_status != "running":
            self.app.notify(f"{line(alloc.name)} is {line(alloc.client_status)}: a shell needs "
                            "a running allocation", severity="warning")
            return
        tasks = [t.name for t in alloc.tasks if t.state == "running"] or \
            [t.name for t in alloc.tasks]
        if not tasks:
            self.app.notify(f"{line(alloc.name)} has no task to run a command in",
                            severity="warning")
            return

        def with_task(task: str | None) -> None:
            if task is None:
                return
            task = task.strip()
            if task not in tasks:
                self.app.notify(f"no task {line(task)!r} in {line(alloc.name)} (tasks: "
                                f"{', '.join(line(t) for t in tasks)})", severity="error")
                return
            self.app.push_screen(PromptScreen(
                f"Command to run in {alloc.name} {alloc.short_id} task {task} (a TTY; Enter "
                f"for {DEFAULT_COMMAND})", DEFAULT_COMMAND),
                lambda text: self._exec(alloc, task, text))

        if len(tasks) == 1:
            with_task(tasks[0])
        else:
            self.app.push_screen(PromptScreen(
                f"Task of {alloc.name} to open a shell in ({', '.join(tasks)})", tasks[0]),
                with_task)

    def _exec(self, alloc: Allocation, task: str, text: str | None) -> None:
        if text is None:
            return
        try:
            argv = split_command(text)
        except ValueError as exc:
            self.app.notify(f"not a command: {exc}", severity="error")
            return
        target = ExecTarget(alloc.id, task, tuple(argv), alloc.namespace or "default")
        self.last = {"kind": "exec", "target": target}
        self._run(f"{alloc.name} {task}", lambda: run_exec(self.config.nomad, target, tty=True))

    # -- SSH ----------------------------------------------------------------------------------

    def ssh(self, obj: VM | Hypervisor) -> None:
        status = getattr(obj, "status", "")
        if status not in ("running", "online"):
            self.app.notify(f"{line(obj.name)} is {line(status or 'unknown')}: nothing to log "
                            "in to", severity="warning")
            return
        address = getattr(obj, "ip", None) or getattr(obj, "address", None) or ""
        try:
            target, jump = targets(self.config, self.inventory, obj.name, str(address))
        except LookupError as exc:
            self.app.notify(f"ssh {line(obj.name)}: {exc}", severity="error")
            return
        self.last = {"kind": "ssh", "target": target, "jump": jump}
        self._run(f"ssh {obj.name}", lambda: run_shell(self.config, target, jump,
                                                        runner=self.ssh_runner))

    # -- the suspended session ------------------------------------------------------------------

    def _run(self, title: str, session: Callable[[], int]) -> None:
        code: int | None = None
        problem = ""
        try:
            with self.suspend():
                try:
                    code = session()
                except (ExecError, ShellError, LookupError, OSError) as exc:
                    problem = str(exc) or type(exc).__name__
        except Exception as exc:
            problem = f"this terminal cannot hand over to a shell ({type(exc).__name__})"
        self.last["code"] = code
        if problem:
            self.app.notify(f"{line(title)}: {line(problem)}", severity="error", timeout=10)
        elif code:
            self.app.notify(f"{line(title)}: the shell ended with status {code}",
                            severity="warning")
        else:
            self.app.notify(f"{line(title)}: the shell ended")
        self.app.refresh()
