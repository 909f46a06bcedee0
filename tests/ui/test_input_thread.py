"""The terminal's input thread sleeps while nothing happens (#17, `jamtui/ui/driver.py`).

Real apps on a real pty (tests/ui/pty_app.py in a subprocess, the pty its controlling
terminal): the input thread's wake-ups are counted from /proc (its voluntary context
switches: Textual's own loop woke ten times a second), then bytes are written as a terminal
writes them and what the app received is read back from its log."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CLIENT_ENV

ROOT = Path(__file__).resolve().parents[2]
ESCDELAY_MS = 300  # wide enough that a pause between two halves of a sequence fits in it

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(),
                                reason="counts a thread's wake-ups through Linux's /proc")


def set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class PtyApp:
    def __init__(self, mode: str, log: Path, piped: bool = False) -> None:
        """`piped`: stdin is a pipe (`self.pipe` its end to write), not the pty."""
        self.log = log
        self.master, slave = os.openpty()
        set_size(self.master, 80, 24)
        env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
        env.update(TERM="xterm-256color", ESCDELAY=str(ESCDELAY_MS))
        stdin, self.pipe = os.pipe() if piped else (slave, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.ui.pty_app", mode, str(log)], stdin=stdin,
            stdout=slave, stderr=slave, start_new_session=True, cwd=ROOT, env=env)
        os.close(slave)
        if piped:
            os.close(stdin)
        # what the app draws is read and dropped: a full pty would stop its writer
        self.drawn = threading.Thread(target=self._drain, daemon=True)
        self.drawn.start()

    def _drain(self) -> None:
        while True:
            try:
                if not os.read(self.master, 65536):
                    return
            except OSError:  # the app has gone (EIO) or the test closed the pty
                return

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def wait_for(self, pattern: str, after: int = 0, timeout: float = 20.0) -> re.Match[str]:
        """The first line past the first `after` lines that matches `pattern`."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines()[after:]:
                if m := re.fullmatch(pattern, line):
                    return m
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {pattern!r}; the app's log:\n" +
                                     "\n".join(self.lines()))
            time.sleep(0.02)

    def state(self) -> str:
        return Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]

    def wait_until(self, done: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "\n".join(self.lines())
            time.sleep(0.02)

    def write(self, data: bytes) -> int:
        """Writes `data` to the app; the number of log lines before it."""
        mark = len(self.lines())
        os.write(self.master if self.pipe is None else self.pipe, data)
        return mark

    def wakeups(self, tid: int, seconds: float) -> int:
        """The thread's voluntary context switches over `seconds`: each time it slept and
        was woken."""
        def switches() -> int:
            status = Path(f"/proc/{self.proc.pid}/task/{tid}/status").read_text()
            return int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", status, re.M)[1])

        before = switches()
        time.sleep(seconds)
        return switches() - before

    def cpu_ticks(self, tid: int, seconds: float) -> int:
        """The thread's CPU (user + system clock ticks) over `seconds`."""
        def ticks() -> int:
            stat = Path(f"/proc/{self.proc.pid}/task/{tid}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])

        before = ticks()
        time.sleep(seconds)
        return ticks() - before

    def exit_time(self, key: bytes) -> float:
        t0 = time.monotonic()
        os.write(self.master, key)
        self.proc.wait(timeout=20)
        return time.monotonic() - t0

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.master)
        if self.pipe is not None:
            with contextlib.suppress(OSError):
                os.close(self.pipe)


@pytest.fixture
def pty_app(tmp_path: Path) -> Iterator[type[PtyApp]]:
    started: list[PtyApp] = []

    def start(mode: str, piped: bool = False) -> PtyApp:
        app = PtyApp(mode, tmp_path / f"{mode}-{len(started)}.log", piped)
        started.append(app)
        return app

    yield start  # type: ignore[misc]
    for app in started:
        app.close()


def test_jamtuis_input_thread_sleeps_while_idle_and_q_still_quits(pty_app) -> None:
    app = pty_app("jam")
    found = app.wait_for(r"input (\w+) (\d+)")
    assert found[1] == "QuietDriver"
    time.sleep(0.5)  # its start-up queries written and answered (none: no terminal answers)
    # Textual's loop: ~15 (select(0.1) timing out); asleep in select: none
    assert app.wakeups(int(found[2]), 1.5) <= 3
    assert app.exit_time(b"q") < 2.0  # ~0.25 s here: the app's own teardown with it
    assert app.wait_for("exited")


def test_keys_escape_paste_mouse_resize_suspend_and_quit_as_before(pty_app) -> None:
    app = pty_app("probe")
    tid = int(app.wait_for(r"input QuietDriver (\d+)")[1])
    app.wait_for(r"resize 80 24")
    time.sleep(0.3)
    assert app.wakeups(tid, 1.0) <= 2

    mark = app.write(b"a")
    app.wait_for(r"key a 'a'", mark)
    # a lone Esc is the Escape key once ESCDELAY has passed, with nothing more typed
    mark = app.write(b"\x1b")
    app.wait_for("escape-binding", mark)
    # a sequence and a character split across two reads are still one key each
    mark = app.write(b"\x1b[")
    time.sleep(0.05)
    app.write(b"A")
    app.wait_for(r"key up None", mark)
    mark = app.write(b"\x1bx")  # Alt+x
    app.wait_for(r"key alt\+x .*", mark)
    mark = app.write("é".encode()[:1])
    time.sleep(0.05)
    app.write("é".encode()[1:])
    app.wait_for(r"key \S+ 'é'", mark)
    mark = app.write(b"\x1b[200~two\nlines\x1b[201~")
    app.wait_for(r"paste 'two\\nlines'", mark)
    mark = app.write(b"\x1b[I")
    app.wait_for("focus", mark)
    mark = app.write(b"\x1b[<0;5;3M")
    app.wait_for("mouse 4 2", mark)
    mark = len(app.lines())
    set_size(app.master, 100, 30)  # the kernel signals the app (SIGWINCH)
    app.wait_for("resize 100 30", mark)
    # the lone Esc was one Escape key; neither split sequence became Escape and a character
    assert [line for line in app.lines() if line.startswith("key escape")] == ["key escape '\\x1b'"]

    # App.suspend (jamtui's ssh/exec/$EDITOR) stops the input thread and starts another
    mark = app.write(b"s")
    app.wait_for("resumed", mark)
    tid = int(app.wait_for(r"input QuietDriver (\d+)", mark)[1])
    mark = app.write(b"b")
    app.wait_for(r"key b 'b'", mark)
    time.sleep(0.3)
    assert app.wakeups(tid, 1.0) <= 2

    # Ctrl+Z's way (SIGTSTP, e.g. `kill -TSTP`): the driver stops its input from the signal
    # handler, the process stops; SIGCONT brings it back with input again
    mark = len(app.lines())
    os.kill(app.proc.pid, signal.SIGTSTP)
    app.wait_until(lambda: app.state() == "T")
    os.kill(app.proc.pid, signal.SIGCONT)
    app.wait_for(r"input QuietDriver (\d+)", mark)
    mark = app.write(b"c")
    app.wait_for(r"key c 'c'", mark)

    assert app.exit_time(b"q") < 1.0  # 0.07-0.12 s here (Textual's loop: 0.3-0.4 s)
    app.wait_for("exited")


def test_piped_input_is_read_to_its_end_and_then_left_alone(pty_app) -> None:
    """stdin a pipe that closes: what it held arrives, then the thread waits on (Textual's
    loop found the closed pipe readable again and again: a core, spinning)."""
    app = pty_app("probe", piped=True)
    tid = int(app.wait_for(r"input QuietDriver (\d+)")[1])
    mark = app.write(b"xy")
    os.close(app.pipe)
    app.wait_for(r"key y 'y'", mark)
    assert app.cpu_ticks(tid, 0.5) <= 5  # spinning: ~50 (100 a second)
    assert app.proc.poll() is None


def test_textuals_driver_is_kept_where_it_is_not_the_one_this_was_written_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only Textual's own LinuxDriver is replaced; a Textual whose parser keeps no deadline
    where this looks keeps its driver (the check runs once, at import)."""
    from textual.drivers.headless_driver import HeadlessDriver
    from textual.drivers.linux_driver import LinuxDriver

    from jamtui.ui import driver

    assert driver.driver_for(LinuxDriver) is driver.QuietDriver
    assert driver.driver_for(HeadlessDriver) is HeadlessDriver

    class Chosen(LinuxDriver):  # a driver someone chose (TEXTUAL_DRIVER): kept
        pass

    assert driver.driver_for(Chosen) is Chosen
    assert driver._looks_as_expected()

    class Changed:  # a parser laid out otherwise
        def __init__(self, debug: bool) -> None:
            self.feed = self.tick = lambda *a: ()

    monkeypatch.setattr(driver, "XTermParser", Changed)
    assert not driver._looks_as_expected()
    monkeypatch.setattr(driver, "_READY", False)
    assert driver.driver_for(LinuxDriver) is LinuxDriver
