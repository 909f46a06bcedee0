"""End to end: `jamtui --demo` in a real terminal (tmux), keys typed as a person would, the
screen read back. tmux comes from Debian (scripts/test installs it)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

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
    for text in ("example.web[", "pve1", "vb0", "urlprefix-example", "nomad ✓ ok"):
        screen = demo.wait_for(text)
    for title in ("Hypervisors", "VMs", "Consul services", "Nomad allocations"):
        assert title in screen

    demo.keys(":")
    demo.type("jobs")
    demo.keys("Enter")
    screen = demo.wait_for("Nomad jobs")
    assert "node-exporter" in screen and "backup" in screen

    demo.keys(":")
    demo.type("allocs")
    demo.keys("Enter")
    demo.wait_for("Allocations")
    demo.keys("/")
    demo.type("db")
    # the filter applies as typed: the other allocations leave, db's stays
    deadline = time.monotonic() + 20
    screen = demo.screen()
    while time.monotonic() < deadline and ("example.web[" in screen or "db.db[0]" not in screen):
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
