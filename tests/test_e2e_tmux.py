"""End to end: `jamtui --demo` in a real terminal (tmux), keys typed as a person would, the
screen read back. tmux comes from Debian (scripts/test installs it)."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import CLIENT_ENV


class Terminal:
    def __init__(self, socket: str, session: str) -> None:
        self.socket = socket
        self.session = session

    def tmux(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                             text=True, timeout=10)
        return out.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", self.session, key)
            time.sleep(0.05)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.session, "-l", text)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{screen}")

    def alive(self) -> bool:
        return subprocess.run(["tmux", "-L", self.socket, "has-session", "-t", self.session],
                              capture_output=True).returncode == 0


@contextlib.contextmanager
def busy_cores(n: int = 2) -> Iterator[None]:
    """Two spinning processes for the length of the block (ended, whatever happens)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(n)]
    try:
        yield
    finally:
        for p in spinners:
            p.kill()
            p.wait(timeout=10)


@pytest.fixture
def demo() -> Iterator[Terminal]:
    socket, session = f"jamtui-test-{uuid.uuid4().hex[:8]}", "demo"
    env = " ".join(f"-u {name}" for name in CLIENT_ENV)
    command = f"env {env} TERM=xterm-256color {shlex.quote(sys.executable)} -m jamtui --demo"
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", session, "-x", "160",
                    "-y", "48", command], check=True, timeout=10,
                   env={**os.environ, "TERM": "xterm-256color"})
    term = Terminal(socket, session)
    try:
        yield term
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def test_demo_in_a_real_terminal(demo: Terminal) -> None:
    # each waited for: a capture can fall between the writes of one repaint
    for text in ("example.web[", "pve1", "vb0", "urlprefix-example", "nomad ✓ ok",
                 "Hypervisors", "VMs", "Consul services", "Nomad allocations"):
        demo.wait_for(text)

    # typed as a practised hand does: `:` and the name in one write, no wait for the bar
    # (the keys after it are held until the bar has the focus: none reaches the table)
    demo.type(":jobs")
    demo.keys("Enter")
    screen = demo.wait_for("Nomad jobs")
    assert "node-exporter" in screen and "backup" in screen

    with busy_cores():  # a loaded machine: the race is tried where it was lost
        # one write: `:al`, Tab (the completion: allocs), Enter, then `/db` before the view
        # or its filter bar exists on screen; every key lands where it was meant to
        demo.tmux("send-keys", "-t", demo.session, ":al", "Tab", "Enter", "/db")
        demo.wait_for("Allocations")
        # the filter applies as typed: the other allocations leave, db's stays
        deadline = time.monotonic() + 20
        screen = demo.screen()
        while time.monotonic() < deadline and ("example.web[" in screen
                                               or "db.db[0]" not in screen):
            time.sleep(0.1)
            screen = demo.screen()
    assert "db.db[0]" in screen and "example.web[" not in screen, screen

    demo.keys("Escape")
    time.sleep(0.5)  # apart, or the terminal reads Escape then q as Alt+q
    demo.keys("Escape")
    time.sleep(0.5)
    demo.keys("q")
    deadline = time.monotonic() + 20
    while demo.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not demo.alive(), f"q did not quit jamtui; the screen:\n{demo.screen()}"


def test_hostile_names_leave_the_terminal_alone(tmp_path: Any) -> None:
    """A job whose group, task and service tags carry terminal codes (#12 §1): in a real
    terminal the pane's title and the alternate screen stay as they were."""
    from jamtui.sim.lab import Lab
    from tests.conftest import FAST
    from tests.ui.test_hostile import register

    socket, session = f"jamtui-test-{uuid.uuid4().hex[:8]}", "hostile"
    with Lab(seed=6, tick=0.2, traffic=False, **FAST) as lab:
        register(lab)
        path = tmp_path / "jamtui.toml"
        path.write_text(lab.config_toml())
        env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
        env.update(lab.env(), TERM="xterm-256color")
        subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", session, "-x", "200",
                        "-y", "50", f"{shlex.quote(sys.executable)} -m jamtui --config "
                        f"{shlex.quote(str(path))}"], check=True, timeout=10, env=env)
        term = Terminal(socket, session)
        try:
            term.tmux("set-option", "-t", session, "remain-on-exit", "on")
            before = term.tmux("display", "-p", "-t", session, "#{pane_title}").strip()

            def state() -> tuple[str, str]:
                out = term.tmux("display", "-p", "-t", session,
                                "#{pane_title}|#{alternate_on}").strip()
                title, _, alternate = out.partition("|")
                return title, alternate

            term.wait_for("hostile.", timeout=30)
            time.sleep(1.0)
            assert state() == (before, "1"), term.screen()
            term.wait_for("hostile.t␛]0;PWNED␇[0]", timeout=30)  # shown, not obeyed
            for view, seen in (("jobs", "g[/x] 1/0/0"), ("services", "␛]8;;http://evil")):
                term.keys(":")
                term.wait_for(":view (")  # the command bar is open before anything is typed
                term.type(view)
                term.wait_for(f"▊  {view}")  # typed into the bar
                term.keys("Enter")
                term.wait_for(seen, timeout=30)
                assert state() == (before, "1"), term.screen()
            term.keys(":")
            term.wait_for(":view (")
            term.type("allocs")
            term.wait_for("▊  allocs")
            term.keys("Enter")
            term.wait_for("Allocations")
            term.wait_for("hostile.g[/x][0]", timeout=30)
            time.sleep(0.5)
            assert state() == (before, "1"), term.screen()
            # the allocation's detail: its task is named ␛[2J␛[?1049l
            time.sleep(1.0)
            term.keys("/")
            term.wait_for("/filter", timeout=10)
            term.type("hostile.t")
            time.sleep(1.0)
            term.keys("Enter")  # keep the filter
            time.sleep(1.0)
            term.keys("Enter")  # open the allocation
            term.wait_for("Task events", timeout=30)
            time.sleep(1.0)
            assert state() == (before, "1"), term.screen()
            term.wait_for("task␛[2J␛[?1049l", timeout=10)
        finally:
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True,
                           timeout=10)


def test_a_crash_restores_the_terminal_and_exits_non_zero(tmp_path: Any) -> None:
    """An unexpected exception in the cockpit: the terminal is restored (main screen), one
    line is said, the exit status is 1 (it was 0)."""
    script = tmp_path / "crash.py"
    script.write_text(
        "import sys\n"
        "from jamtui import cli\n"
        "from jamtui.ui.app import JamApp\n"
        "def boom(self):\n"
        "    raise RuntimeError('kaput \\x1b]0;PWNED\\x07')\n"
        "JamApp.on_mount = boom\n"
        "sys.exit(cli.main(['--demo']))\n")
    socket, session = f"jamtui-test-{uuid.uuid4().hex[:8]}", "crash"
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    env.update(TERM="xterm-256color", TMPDIR=str(tmp_path))  # the traceback file goes there
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", session, "-x", "160",
                    "-y", "40", "sh", "-c", f"sleep 2; {shlex.quote(sys.executable)} -c "
                    f"{shlex.quote(script.read_text())}; echo exit=$?"], check=True, timeout=10,
                   env=env)  # -c: jamtui from the working directory, as `-m jamtui` does
    term = Terminal(socket, session)
    try:
        term.tmux("set-option", "-t", session, "remain-on-exit", "on")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and term.tmux(
                "display", "-p", "-t", session, "#{pane_dead}").strip() != "1":
            time.sleep(0.2)
        alternate, title = term.tmux(
            "display", "-p", "-t", session, "#{alternate_on}|#{pane_title}").strip().split(
            "|", 1)
        screen = term.tmux("capture-pane", "-p", "-t", session, "-S", "-")
        said = [line for line in screen.splitlines() if line.strip()
                and not line.startswith("Pane is dead")]
        assert said[-1:] == ["exit=1"], screen
        assert alternate == "0" and "PWNED" not in title
        assert said and said[0].startswith(
            "jamtui: unexpected error: RuntimeError: kaput ␛]0;PWNED␇"), screen
        assert "Traceback" not in screen
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
