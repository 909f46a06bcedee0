"""The log viewer's widget: draws the `LineStore` (log_store.py) with Textual's line API,
only the rows on screen, so the rate of the log does not matter; follows the end or is
paused by scrolling up; search matches highlighted in place, ANSI colours kept."""

from __future__ import annotations

import re
import time
from collections import deque
from typing import Any

from rich.segment import Segment
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
EMPTY = Style(dim=True, italic=True)


class LogLines(ScrollView, can_focus=True):
    """Lines in a bounded ring; draws only what is on screen. The vertical scrollbar's
    gutter is kept whether or not it shows, so wrapped rows are cut at the width they are
    seen at, not under the scrollbar."""

    DEFAULT_CSS = "LogLines { scrollbar-gutter: stable; }"

    def __init__(self, capacity: int = 100_000, **kw: Any) -> None:
        super().__init__(**kw)
        self.store = LineStore(capacity)
        self.follow = True
        self.empty_text = ""  # said on the first row while nothing is shown

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
        elif self.follow:
            self._follow_end()

    def watch_show_horizontal_scrollbar(self, shown: bool) -> None:
        # the bar takes a row from the view: the end moves one row down
        if self.follow:
            self._follow_end()

    def view_width(self) -> int:
        """The cells a row is seen in: the content minus the vertical scrollbar."""
        return self.scrollable_content_region.width

    def _wrap_width(self) -> int:
        return max(10, self.view_width() or 80)

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
            self._follow_end()
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
        width = self.view_width()
        if not lines and y == 0 and self.empty_text:
            return Strip([Segment(line(self.empty_text), EMPTY)]).crop(0, width) \
                .extend_cell_length(width)
        if index >= len(lines) or scroll_y + y >= self._total_rows():
            return Strip.blank(width)
        segments = list(self.line_text(lines[index]).render(self.app.console))
        if self.wrap:
            wrap = self.store.wrap_width
            strip = Strip(segments).crop(sub * wrap, (sub + 1) * wrap)
        else:
            strip = Strip(segments).crop(scroll_x, scroll_x + width)
        return strip.extend_cell_length(width)

    def matches(self) -> list[int]:
        return self.store.matches()

    def row_of(self, index: int) -> int:
        return self.store.row_of(index)

    # -- follow and pause -----------------------------------------------------------------------

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new < old and new < self.max_scroll_y:
            # scrolling up pauses; the end moving up under the view (the lines cleared on
            # `e`, wrapping turned off) is no scroll by the operator and keeps following
            self.follow = False

    def _follow_end(self) -> None:
        """To the end after the next refresh (when the new size is known), if still
        following then: a PgUp pressed meanwhile is not undone."""
        self.call_after_refresh(self._end_if_following)

    def _end_if_following(self) -> None:
        if self.follow:
            self.scroll_end(animate=False, force=True, immediate=True)

    @property
    def allow_vertical_scroll(self) -> bool:
        # from the rows themselves: Textual's scrollbar flag lags a refresh behind a size
        # change, and a PgUp pressed then was passed on as if there were nothing to scroll
        return not self._check_disabled() and \
            self.virtual_size.height > self.scrollable_content_region.height

    # the operator's own moves up pause at once: a scroll to the end still queued for after
    # the next refresh must not undo them
    def action_scroll_up(self) -> None:
        self.follow = not self.allow_vertical_scroll and self.follow
        super().action_scroll_up()

    def action_page_up(self) -> None:
        self.follow = not self.allow_vertical_scroll and self.follow
        super().action_page_up()

    def action_scroll_home(self) -> None:
        self.follow = not self.allow_vertical_scroll and self.follow
        super().action_scroll_home()

    def below(self) -> int:
        """Lines after the last row on screen (0 while following)."""
        if self.follow:
            return 0
        bottom = int(self.scroll_offset.y) + self.scrollable_content_region.height
        if bottom >= self._total_rows():
            return 0
        index, sub = self._locate(bottom)
        return max(0, len(self.shown_entries()) - index - (1 if sub else 0))

    def resume(self) -> None:
        self.follow = True
        self.scroll_end(animate=False, force=True)
