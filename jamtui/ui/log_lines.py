"""The log viewer's widget: draws the `LineStore` (log_store.py) with Textual's line API,
only the rows on screen, so the rate of the log does not matter; follows the end or is
paused by scrolling up; search matches highlighted in place, ANSI colours kept."""

from __future__ import annotations

import re
import time
from collections import deque
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..plain import line
from .log_store import Entry, LineStore

MATCH = Style(bgcolor="yellow", color="black", bold=True)
STDERR = Style(color="red")
STAMP = Style(color="cyan", dim=True)


class LogLines(ScrollView, can_focus=True):
    """Lines in a bounded ring; draws only what is on screen."""

    def __init__(self, capacity: int = 100_000, **kw: Any) -> None:
        super().__init__(**kw)
        self.store = LineStore(capacity)
        self.follow = True

    # -- the store's state, as the screen and the tests read it -------------------------------

    @property
    def entries(self) -> deque[Entry]:
        return self.store.entries

    @property
    def search(self) -> re.Pattern[str] | None:
        return self.store.search

    @search.setter
    def search(self, pattern: re.Pattern[str] | None) -> None:
        self.store.search = pattern

    @property
    def keep(self) -> re.Pattern[str] | None:
        return self.store.keep

    @property
    def invert(self) -> bool:
        return self.store.invert

    @property
    def stamps(self) -> bool:
        return self.store.stamps

    @property
    def wrap(self) -> bool:
        return self.store.wrap

    @property
    def added(self) -> int:
        return self.store.added

    # -- content ------------------------------------------------------------------------------

    def _cells(self, e: Entry) -> int:
        return self.store.cells(e)

    def add(self, entries: list[Entry]) -> None:
        self._sync_width()
        self.store.add(entries)
        self._resize()

    def shown_entries(self) -> list[Entry] | deque[Entry]:
        return self.store.shown()

    def set_filter(self, pattern: re.Pattern[str] | None, invert: bool = False) -> None:
        self._sync_width()
        self.store.set_filter(pattern, invert)
        self._resize()

    def set_stamps(self, on: bool) -> None:
        self._sync_width()
        self.store.set_stamps(on)
        self._resize()

    def set_wrap(self, on: bool) -> None:
        self._sync_width()
        self.store.set_wrap(on)
        self._resize()

    def clear(self) -> None:
        self._sync_width()
        self.store.clear()
        self._resize()

    def on_resize(self) -> None:
        if self.wrap:
            self._relayout()

    def _wrap_width(self) -> int:
        return max(10, self.size.width or 80)

    def _sync_width(self) -> None:
        self.store.wrap_width = self._wrap_width()

    def _relayout(self) -> None:
        self._sync_width()
        self.store.relayout()
        self._resize()

    def _total_rows(self) -> int:
        return self.store.total_rows()

    def _resize(self) -> None:
        self.virtual_size = Size(self.store.content_width(), self.store.total_rows())
        if self.follow:
            self.scroll_end(animate=False)
        self.refresh()

    # -- drawing ------------------------------------------------------------------------------

    def _locate(self, row: int) -> tuple[int, int]:
        """(entry index, row within the entry) of a visual row."""
        return self.store.locate(row)

    def line_text(self, e: Entry) -> Text:
        text = Text(no_wrap=True)
        if self.stamps:
            stamp = time.strftime("%H:%M:%S", time.localtime(e.at))
            text.append(f"{stamp}.{int(e.at * 1000) % 1000:03d} ", style=STAMP)
        if e.source:
            text.append(line(e.source) + " │ ", style="dim")
        offset = text.cell_len
        if e.raw is not None:
            body = Text.from_ansi(e.raw, no_wrap=True)
            if e.stderr:
                body.stylize(STDERR)
            text.append_text(body)
        else:
            text.append(e.text, style=STDERR if e.stderr else "")
        if self.search is not None:
            for m in self.search.finditer(e.text):
                text.stylize(MATCH, offset + m.start(), offset + m.end())
        return text

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        lines = self.shown_entries()
        index, sub = self._locate(scroll_y + y)
        if index >= len(lines) or scroll_y + y >= self._total_rows():
            return Strip.blank(self.size.width)
        segments = list(self.line_text(lines[index]).render(self.app.console))
        if self.wrap:
            width = self.store.wrap_width
            strip = Strip(segments).crop(sub * width, (sub + 1) * width)
        else:
            strip = Strip(segments).crop(scroll_x, scroll_x + self.size.width)
        return strip.extend_cell_length(self.size.width)

    def matches(self) -> list[int]:
        return self.store.matches()

    def row_of(self, index: int) -> int:
        return self.store.row_of(index)

    # -- follow and pause -----------------------------------------------------------------------

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new < old:
            self.follow = False  # scrolling up pauses

    def resume(self) -> None:
        self.follow = True
        self.scroll_end(animate=False)
