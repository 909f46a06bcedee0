"""Headless commands as Unix tools: a reader that leaves early (`| head`) ends the command
quietly with its usual status, as Python's documentation recommends for SIGPIPE: on
BrokenPipeError, point stdout at /dev/null (so the final flush at exit cannot fail again)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    class PipeConsole(Console):
        def on_broken_pipe(self) -> None: ...

INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command ended by Ctrl-C


def stdout_gone() -> None:
    """The reader closed the pipe: whatever is still buffered or printed goes nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout already closed or not a file
        pass


@contextmanager
def reader_may_leave() -> Iterator[None]:
    """Print inside this; a closed pipe ends the printing, not the command's status."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_gone()


def _pipe_console() -> type:
    from rich.console import Console

    class PipeConsole(Console):
        """A rich Console for headless output: rich's own answer to a closed pipe is
        `SystemExit(1)`, which would turn `status | head -1` into a failure; this one ends
        the printing (BrokenPipeError, for `reader_may_leave`) and leaves the status to the
        command."""

        def on_broken_pipe(self) -> None:
            self.quiet = True
            stdout_gone()
            raise BrokenPipeError

    PipeConsole.__qualname__ = "PipeConsole"
    return PipeConsole


def __getattr__(name: str) -> Any:
    """`PipeConsole`, made when first imported: Rich (0.02-0.03 s to import) loads for the
    commands that print with it, not for `snapshot --json`."""
    if name == "PipeConsole":
        made = globals()["PipeConsole"] = _pipe_console()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
