"""End to end: `s` in `jamtui --demo` in a real terminal (tmux): the cockpit steps aside, the
task's shell has the terminal (a real `sh` in the lab's allocation directory, over Nomad's
exec WebSocket with a TTY), and when it exits the same screen comes back with its status."""

from __future__ import annotations

import time

from tests.test_e2e_tmux import Terminal, demo  # noqa: F401 - the fixture


def line_on_screen(term: Terminal, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in [ln.strip() for ln in term.screen().splitlines()]:
            return
        time.sleep(0.1)
    raise AssertionError(f"no line {text!r}; the screen:\n{term.screen()}")


def test_s_hands_the_terminal_to_a_task_shell_and_comes_back(demo: Terminal) -> None:  # noqa: F811
    demo.wait_for("example.web[")
    demo.keys(":")
    demo.wait_for(":view (")
    demo.type("allocs")
    demo.keys("Enter")
    demo.wait_for("Allocations")
    demo.keys("/")
    demo.wait_for("/filter")
    demo.type("db.db")
    deadline = time.monotonic() + 20
    screen = demo.screen()
    while time.monotonic() < deadline and ("example.web[" in screen or "db.db[0]" not in screen):
        time.sleep(0.1)
        screen = demo.screen()
    demo.keys("Enter")
    time.sleep(0.3)
    demo.keys("s")
    demo.wait_for("Command to run in db.db[")
    demo.keys("Enter")  # the default, /bin/sh
    line_on_screen(demo, "$")  # the task's shell prompts (tmux drops the trailing space)
    demo.type("echo h''i")
    demo.keys("Enter")
    line_on_screen(demo, "hi")
    demo.type("exit 3")
    demo.keys("Enter")
    screen = demo.wait_for("ended with status 3")
    assert "Allocations" in screen and "db.db[0]" in screen  # the screen it left
    demo.keys("Escape")
    time.sleep(0.5)
    demo.keys("Escape")
    time.sleep(0.5)
    demo.keys("q")
    deadline = time.monotonic() + 20
    while demo.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not demo.alive()
