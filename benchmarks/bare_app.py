"""The baseline for every first-frame figure: a bare Textual app, same Python, same terminal."""

from textual.app import App, ComposeResult
from textual.widgets import Static


class Bare(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("BARE-TEXTUAL-READY")


if __name__ == "__main__":
    Bare().run()
