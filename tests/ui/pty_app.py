"""A Textual app on a real terminal, for tests/ui/test_input_thread.py.

    python -m tests.ui.pty_app MODE LOG

run with a pty as stdin (or a pipe), stdout and stderr in a new session. MODE `probe`: a
small app that takes its driver as jamtui's app does and writes to LOG each thing it receives;
`jam`: jamtui's own app on an empty store. In both, each input thread the driver starts is
written to LOG as `input DRIVER-CLASS NATIVE-ID` (a watcher thread looks: nothing in the app
is changed), and `exited` once the app has returned."""

from __future__ import annotations

import fcntl
import sys
import termios
import threading
import time
from collections.abc import Callable
from typing import Any

from textual import events
from textual.app import App, ComposeResult
from textual.driver import Driver
from textual.widgets import Static

from jamtui.ui.driver import driver_for

Say = Callable[..., None]


class Probe(App[None]):
    BINDINGS = [("escape", "escape", ""), ("s", "step_aside", ""), ("q", "quit", "")]

    def __init__(self, say: Say) -> None:
        super().__init__()
        self.say = say

    def get_driver_class(self) -> type[Driver]:
        return driver_for(super().get_driver_class())

    def compose(self) -> ComposeResult:
        yield Static("probe")

    def on_key(self, event: events.Key) -> None:
        self.say("key", event.key, repr(event.character))

    def on_paste(self, event: events.Paste) -> None:
        self.say("paste", repr(event.text))

    def on_app_focus(self) -> None:
        self.say("focus")

    def on_resize(self, event: events.Resize) -> None:
        self.say("resize", event.size.width, event.size.height)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self.say("mouse", int(event.screen_x), int(event.screen_y))

    def action_escape(self) -> None:
        self.say("escape-binding")

    def action_step_aside(self) -> None:
        with self.suspend():
            self.say("suspended")
        self.say("resumed")


def jam_app() -> App[None]:
    from jamtui.store import Store
    from jamtui.ui.app import JamApp
    from tests.helpers import fake_engine

    return JamApp(fake_engine(Store()), start_engine=False)


def watch_inputs(app: App[Any], say: Say) -> None:
    seen: set[int] = set()
    while True:
        driver = getattr(app, "_driver", None)
        thread = getattr(driver, "_key_thread", None)
        if thread is not None and thread.is_alive() and thread.native_id not in seen:
            seen.add(thread.native_id)
            say("input", type(driver).__name__, thread.native_id)
        time.sleep(0.05)


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    if sys.stdin.isatty():  # the pty is our terminal: its resizes signal us
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    log = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life
    lock = threading.Lock()

    def say(*words: Any) -> None:
        with lock:
            log.write(" ".join(str(w) for w in words) + "\n")

    app = Probe(say) if mode == "probe" else jam_app()
    threading.Thread(target=watch_inputs, args=(app, say), daemon=True).start()
    app.run()
    say("exited")


if __name__ == "__main__":
    main()
