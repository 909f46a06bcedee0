"""The baseline for every first-frame figure: a bare Textual app, same Python, same terminal.

`--quiet-driver`: with the driver jamtui's app takes (`jamtui/ui/driver.py`), for
`input_idle.py`; without it, Textual's own (the first-frame baseline)."""

import sys

from textual.app import App, ComposeResult
from textual.driver import Driver
from textual.widgets import Static

QUIET = "--quiet-driver" in sys.argv[1:]


class Bare(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("BARE-TEXTUAL-READY")

    def get_driver_class(self) -> type[Driver]:
        chosen = super().get_driver_class()
        if QUIET:
            from jamtui.ui.driver import driver_for

            return driver_for(chosen)
        return chosen


if __name__ == "__main__":
    Bare().run()
