"""The log viewer: a ring buffer of lines drawn with Textual's line API (only the visible
lines are rendered, so the rate of the log does not matter), following or paused, with a
search that highlights in place and a filter that keeps only matching lines."""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.geometry import Size
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Input, Label

from ..sources.logs import LogFollower

if TYPE_CHECKING:
    from .app import JamApp

MATCH = Style(bgcolor="yellow", color="black", bold=True)
STDERR = Style(color="red")


@dataclass(frozen=True)
class Entry:
    text: str
    source: str = ""  # "example.web[0] server" when several streams are merged
    stderr: bool = False


class LogLines(ScrollView, can_focus=True):
    """Lines in a bounded ring; draws only what is on screen."""

    def __init__(self, capacity: int = 100_000, **kw: Any) -> None:
        super().__init__(**kw)
        self.entries: deque[Entry] = deque(maxlen=capacity)
        self.search: re.Pattern[str] | None = None
        self.keep: re.Pattern[str] | None = None
        self.invert = False
        self.follow = True
        self._view: list[Entry] | None = None  # the filtered lines, when filtering
        self._width = 0

    # -- content ------------------------------------------------------------------------------

    def add(self, entries: list[Entry]) -> None:
        self.entries.extend(entries)
        for e in entries:
            self._width = max(self._width, len(e.source) + len(e.text) + 3)
        if self.keep is not None:
            self._view = None
        self._resize()

    def visible(self) -> list[Entry] | deque[Entry]:
        if self.keep is None:
            return self.entries
        if self._view is None:
            keep, invert = self.keep, self.invert
            self._view = [e for e in self.entries if bool(keep.search(e.text)) != invert]
        return self._view

    def set_filter(self, pattern: re.Pattern[str] | None, invert: bool = False) -> None:
        self.keep, self.invert, self._view = pattern, invert, None
        self._resize()

    def _resize(self) -> None:
        self.virtual_size = Size(self._width, len(self.visible()))
        if self.follow:
            self.scroll_end(animate=False)
        self.refresh()

    # -- drawing ------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        lines = self.visible()
        index = scroll_y + y
        if index >= len(lines):
            return Strip.blank(self.size.width)
        entry = lines[index]
        text = Text(no_wrap=True)
        if entry.source:
            text.append(entry.source + " │ ", style="dim")
        text.append(entry.text, style=STDERR if entry.stderr else "")
        if self.search is not None:
            offset = len(entry.source) + 3 if entry.source else 0
            for m in self.search.finditer(entry.text):
                text.stylize(MATCH, offset + m.start(), offset + m.end())
        segments = list(text.render(self.app.console))
        strip = Strip(segments).crop(scroll_x, scroll_x + self.size.width)
        return strip.extend_cell_length(self.size.width)

    def matches(self) -> list[int]:
        if self.search is None:
            return []
        return [i for i, e in enumerate(self.visible()) if self.search.search(e.text)]

    # -- follow and pause -----------------------------------------------------------------------

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new < old:
            self.follow = False  # scrolling up pauses

    def resume(self) -> None:
        self.follow = True
        self.scroll_end(animate=False)


class LogScreen(Screen[None]):
    """One or more followed task logs in one viewer."""

    BINDINGS = [
        Binding("f,end", "resume", "follow"),
        Binding("slash", "search", "search"),
        Binding("n", "next_match", "next", show=False),
        Binding("N", "previous_match", "previous", show=False),
        Binding("ampersand", "filter", "filter"),
        Binding("e", "toggle_stream", "stdout/stderr"),
        Binding("s", "save", "save"),
        Binding("escape", "back", "back"),
    ]

    def __init__(self, title: str, streams: list[tuple[str, Callable[[str], LogFollower]]],
                 capacity: int = 100_000) -> None:
        super().__init__(name=f"logs:{title}")
        self.title_text = title
        self.streams = streams  # (label, make follower for "stdout"/"stderr")
        self.capacity = capacity
        self.stream = "stdout"
        self._followers: list[LogFollower] = []
        self._pending: list[Entry] = []
        self._lock = threading.Lock()
        self._match = -1

    @property
    def jam(self) -> JamApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Label(self._title(), id="log-title", classes="pane-title")
        yield LogLines(self.capacity, id="log-lines")
        with Horizontal(id="log-bar"):
            yield Input(placeholder="", id="log-input")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#log-bar").display = False
        self.query_one(LogLines).focus()
        self.set_interval(0.05, self._flush)  # at most 20 redraws a second, whatever the rate
        self._start()

    def on_unmount(self) -> None:
        self._stop()

    def _title(self) -> Text:
        return Text.assemble((f"Logs {self.title_text} ", "bold"), (f"[{self.stream}]", "cyan"))

    # -- streams ------------------------------------------------------------------------------

    def _start(self) -> None:
        for label, make in self.streams:
            follower = make(self.stream)
            self._followers.append(follower)
            tag = label if len(self.streams) > 1 else ""
            stderr = self.stream == "stderr"
            threading.Thread(target=self._pump, args=(follower, tag, stderr), daemon=True,
                             name=f"log:{label}").start()

    def _stop(self) -> None:
        for f in self._followers:
            f.stop()
        self._followers = []

    def _pump(self, follower: LogFollower, tag: str, stderr: bool) -> None:
        try:
            for line in follower.lines():
                with self._lock:
                    self._pending.append(Entry(line.text, tag, stderr))
        except Exception as exc:  # the stream's failure, shown in the viewer
            with self._lock:
                self._pending.append(Entry(f"[jamtui] log stream ended: {exc}", tag, True))

    def _flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            self.query_one(LogLines).add(batch)

    # -- keys -----------------------------------------------------------------------------------

    def action_resume(self) -> None:
        self.query_one(LogLines).resume()

    def action_toggle_stream(self) -> None:
        self._stop()
        self.stream = "stderr" if self.stream == "stdout" else "stdout"
        lines = self.query_one(LogLines)
        lines.entries.clear()
        lines.set_filter(lines.keep, lines.invert)
        self.query_one("#log-title", Label).update(self._title())
        self._start()

    def _ask(self, mode: str, placeholder: str) -> None:
        self._mode = mode
        bar = self.query_one("#log-bar")
        bar.display = True
        box = self.query_one("#log-input", Input)
        box.placeholder = placeholder
        box.value = ""
        box.focus()

    def action_search(self) -> None:
        self._ask("search", "search (regex); n/N move between matches, Esc clears")

    def action_filter(self) -> None:
        self._ask("filter", "keep lines matching (regex); start with ! to drop them instead")

    def action_save(self) -> None:
        self._ask("save", "save what is shown to file:")

    @on(Input.Submitted, "#log-input")
    def submitted(self, event: Input.Submitted) -> None:
        value = event.value
        self.query_one("#log-bar").display = False
        lines = self.query_one(LogLines)
        lines.focus()
        mode = getattr(self, "_mode", "")
        if mode == "save":
            self._save(value)
            return
        invert = mode == "filter" and value.startswith("!")
        try:
            pattern = re.compile(value[1:] if invert else value, re.I) if value else None
        except re.error as exc:
            self.notify(f"not a regular expression: {exc}", severity="error")
            return
        if mode == "search":
            lines.search = pattern
            self._match = -1
            lines.refresh()
            if pattern is not None:
                self.action_next_match()
        else:
            lines.set_filter(pattern, invert)

    def action_next_match(self, step: int = 1) -> None:
        lines = self.query_one(LogLines)
        found = lines.matches()
        if not found:
            return
        lines.follow = False
        self._match = (self._match + step) % len(found)
        lines.scroll_to(y=max(0, found[self._match] - lines.size.height // 2), animate=False)

    def action_previous_match(self) -> None:
        self.action_next_match(-1)

    def _save(self, name: str) -> None:
        if not name:
            return
        path = Path(name).expanduser()
        try:
            with path.open("x", encoding="utf-8") as f:  # never overwrite a file by accident
                for e in self.query_one(LogLines).visible():
                    f.write((f"{e.source} | " if e.source else "") + e.text + "\n")
        except OSError as exc:
            self.notify(f"cannot save to {path}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"saved to {path}")

    def action_back(self) -> None:
        bar = self.query_one("#log-bar")
        if bar.display:
            bar.display = False
            self.query_one(LogLines).focus()
            return
        lines = self.query_one(LogLines)
        if lines.search is not None or lines.keep is not None:
            lines.search = None
            lines.set_filter(None)
            return
        self.app.pop_screen()
