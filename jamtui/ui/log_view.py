"""The log viewer: a ring buffer of lines drawn with Textual's line API (only the visible
lines are rendered, so the rate of the log does not matter), following or paused, with a
search that highlights in place and a filter that keeps only matching lines; timestamps and
wrapping on or off; ANSI colours kept. Several tails stay open (each following in the
background) and are switched between."""

from __future__ import annotations

import re
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.geometry import Size
from textual.screen import ModalScreen, Screen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Footer, Input, Label, OptionList
from textual.widgets.option_list import Option

from ..plain import line, log_line, no_escapes, sgr_only
from .inbox import Inbox
from .messages import CloseTail, SwitchTail

if TYPE_CHECKING:
    from .app import JamApp

MATCH = Style(bgcolor="yellow", color="black", bold=True)
STDERR = Style(color="red")
STAMP = Style(color="cyan", dim=True)
FLUSH_MAX = 10_000  # lines drawn in per 50 ms tick at most, so a flood cannot hog a frame
STAMP_WIDTH = 13  # "HH:MM:SS.mmm "


class Follower(Protocol):
    def lines(self) -> Iterator[Any]: ...  # objects with .text (and .event)
    def stop(self) -> None: ...


# (label, make a follower for "stdout" or "stderr")
Stream = tuple[str, Callable[[str], Follower]]


@dataclass(frozen=True, slots=True)
class Entry:
    text: str  # plain: what search, filter and save see
    source: str = ""  # "example.web[0] server" when several streams are merged
    stderr: bool = False
    at: float = 0.0  # when it arrived
    raw: str | None = None  # the line with its ANSI colours, when it had any


def entry(text: str, source: str = "", stderr: bool = False, at: float = 0.0) -> Entry:
    # a line is data: only SGR colours may reach the renderer; titles, clipboard writes,
    # hyperlinks, cursor and screen controls are removed, other controls shown visibly
    if "\x1b" in text or "\x9b" in text:
        return Entry(no_escapes(text), source, stderr, at, sgr_only(text))
    return Entry(log_line(text), source, stderr, at)


class LogLines(ScrollView, can_focus=True):
    """Lines in a bounded ring; draws only what is on screen."""

    def __init__(self, capacity: int = 100_000, **kw: Any) -> None:
        super().__init__(**kw)
        self.entries: deque[Entry] = deque(maxlen=capacity)
        self.search: re.Pattern[str] | None = None
        self.keep: re.Pattern[str] | None = None
        self.invert = False
        self.follow = True
        self.stamps = False
        self.wrap = False
        self._view: list[Entry] | None = None  # the filtered lines, when filtering
        self._width = 0
        # wrapping: the running total of rows after each line (absolute, so lines leaving the
        # front only move `_cum_start`); the filtered view builds its own when needed
        self._cum: list[int] = []
        self._cum_start = 0
        self._rows: list[int] | None = None
        self.added = 0  # lines taken in since the start (for the benchmark)

    # -- content ------------------------------------------------------------------------------

    def _cells(self, e: Entry) -> int:
        return (len(e.source) + 3 if e.source else 0) + len(e.text) + \
            (STAMP_WIDTH if self.stamps else 0)

    def _height(self, e: Entry, width: int) -> int:
        return max(1, -(-self._cells(e) // width))

    def add(self, entries: list[Entry]) -> None:
        self.added += len(entries)
        cap = self.entries.maxlen or len(entries)
        entries = entries[-cap:]  # of a batch bigger than the buffer only its end stays
        over = len(self.entries) + len(entries) - cap
        cells = [self._cells(e) for e in entries]
        self._width = max(self._width, max(cells, default=0))
        self.entries.extend(entries)
        if self.wrap:
            width = self._wrap_width()
            last = self._cum[-1] if self._cum else 0
            cum = self._cum
            for c in cells:
                last += max(1, -(-c // width))
                cum.append(last)
            if over > 0:
                self._cum_start += over
                if self._cum_start > cap:
                    del cum[:self._cum_start]
                    self._cum_start = 0
        if self.keep is not None:
            self._view = None
            self._rows = None
        self._resize()

    def shown_entries(self) -> list[Entry] | deque[Entry]:
        if self.keep is None:
            return self.entries
        if self._view is None:
            keep, invert = self.keep, self.invert
            self._view = [e for e in self.entries if bool(keep.search(e.text)) != invert]
        return self._view

    def set_filter(self, pattern: re.Pattern[str] | None, invert: bool = False) -> None:
        self.keep, self.invert, self._view = pattern, invert, None
        self._relayout()

    def set_stamps(self, on: bool) -> None:
        self.stamps = on
        self._width = max((self._cells(e) for e in self.entries), default=0)
        self._relayout()

    def set_wrap(self, on: bool) -> None:
        self.wrap = on
        self._relayout()

    def clear(self) -> None:
        self.entries.clear()
        self._relayout()

    def on_resize(self) -> None:
        if self.wrap:
            self._relayout()

    def _wrap_width(self) -> int:
        return max(10, self.size.width or 80)

    def _relayout(self) -> None:
        self._rows = None
        self._cum, self._cum_start = [], 0
        if self.wrap:
            width = self._wrap_width()
            self._cum = list(accumulate(self._height(e, width) for e in self.entries))
        self._resize()

    def _base(self) -> int:
        """Rows of the lines that have left the front of the buffer."""
        return self._cum[self._cum_start - 1] if self._cum_start else 0

    def _total_rows(self) -> int:
        if not self.wrap:
            return len(self.shown_entries())
        if self.keep is not None:
            rows = self._filtered_rows()
            return rows[-1] if rows else 0
        return (self._cum[-1] - self._base()) if self._cum else 0

    def _filtered_rows(self) -> list[int]:
        if self._rows is None:
            width = self._wrap_width()
            self._rows = list(accumulate(self._height(e, width) for e in self.shown_entries()))
        return self._rows

    def _resize(self) -> None:
        width = self._wrap_width() if self.wrap else self._width
        self.virtual_size = Size(width, self._total_rows())
        if self.follow:
            self.scroll_end(animate=False)
        self.refresh()

    # -- drawing ------------------------------------------------------------------------------

    def _locate(self, row: int) -> tuple[int, int]:
        """(entry index, row within the entry) of a visual row."""
        if not self.wrap:
            return row, 0
        if self.keep is not None:
            cum, lo, base = self._filtered_rows(), 0, 0
        else:
            cum, lo, base = self._cum, self._cum_start, self._base()
        i = bisect_right(cum, base + row, lo=lo)
        before = cum[i - 1] if i > lo else base
        return i - lo, base + row - before

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
            width = self._wrap_width()
            strip = Strip(segments).crop(sub * width, (sub + 1) * width)
        else:
            strip = Strip(segments).crop(scroll_x, scroll_x + self.size.width)
        return strip.extend_cell_length(self.size.width)

    def matches(self) -> list[int]:
        if self.search is None:
            return []
        return [i for i, e in enumerate(self.shown_entries()) if self.search.search(e.text)]

    def row_of(self, index: int) -> int:
        if not self.wrap or index == 0:
            return index
        if self.keep is not None:
            return self._filtered_rows()[index - 1]
        return self._cum[self._cum_start + index - 1] - self._base()

    # -- follow and pause -----------------------------------------------------------------------

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new < old:
            self.follow = False  # scrolling up pauses

    def resume(self) -> None:
        self.follow = True
        self.scroll_end(animate=False)


class LogScreen(Screen[None]):
    """One or more followed logs in one viewer. `streams` may be a function: it is asked
    again every second, and streams that appear join, those that go leave (a job's
    allocations as they start and stop)."""

    BINDINGS = [
        Binding("f,end", "resume", "follow", id="log_follow"),
        Binding("slash", "search", "search", id="log_search"),
        Binding("n", "next_match", "next", show=False, id="log_next_match"),
        Binding("N", "previous_match", "previous", show=False,
                id="log_previous_match"),
        Binding("ampersand", "filter", "filter", id="log_filter"),
        Binding("e", "toggle_stream", "stdout/stderr", id="log_stream"),
        Binding("t", "toggle_stamps", "time", id="log_time"),
        Binding("w", "toggle_wrap", "wrap", id="log_wrap"),
        Binding("s", "save", "save", id="log_save"),
        Binding("right_square_bracket", "next_tail", "next tail", show=False,
                id="log_next_tail"),
        Binding("left_square_bracket", "next_tail(-1)", "previous tail", show=False,
                id="log_previous_tail"),
        Binding("x", "close", "close", id="log_close"),
        Binding("escape", "back", "back", id="log_back"),
    ]

    def __init__(self, title: str, streams: list[Stream] | Callable[[], list[Stream]],
                 capacity: int = 100_000, *, stderr_toggle: bool = True,
                 on_close: Callable[[], None] | None = None) -> None:
        super().__init__(name=f"logs:{title}")
        self.title_text = title
        self._streams_fn = streams if callable(streams) else None
        self.streams: list[Stream] = streams() if callable(streams) else list(streams)
        self.capacity = capacity
        self.stream = "stdout"
        self.stderr_toggle = stderr_toggle
        self.on_close = on_close
        self._followers: dict[str, Follower] = {}
        # lines not yet drawn; bounded like the buffer (older ones would be evicted anyway)
        self._pending: Inbox[Entry] = Inbox(maxlen=capacity)
        self._match = -1
        self._generation = 0  # followers of an older stream choice drop their lines
        self.closed = False

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
        if self._streams_fn is not None:
            self.set_interval(1.0, self._membership)
        self._start()

    def on_unmount(self) -> None:
        self.close()

    def on_screen_resume(self) -> None:
        self.query_one(LogLines).focus()

    def _title(self) -> Text:
        flags = [self.stream] if self.stderr_toggle else []
        lines = self.query("#log-lines")
        if lines:
            view = lines.first(LogLines)
            flags += ["time"] if view.stamps else []
            flags += ["wrap"] if view.wrap else []
        tails = getattr(self.app, "tails", {}) if self.is_attached else {}
        where = f"  ({list(tails).index(self.name) + 1}/{len(tails)} open: [ ])" \
            if self.name in tails and len(tails) > 1 else ""
        return Text.assemble((f"Logs {line(self.title_text)} ", "bold"),
                             (f"[{' · '.join(flags)}]" if flags else "", "cyan"), (where, "dim"))

    def _update_title(self) -> None:
        self.query_one("#log-title", Label).update(self._title())

    # -- streams ------------------------------------------------------------------------------

    def _start(self) -> None:
        for label, make in self.streams:
            self._start_one(label, make)

    def _start_one(self, label: str, make: Callable[[str], Follower]) -> None:
        follower = make(self.stream)
        self._followers[label] = follower
        tag = label if len(self.streams) > 1 or self._streams_fn is not None else ""
        stderr = self.stream == "stderr"
        threading.Thread(target=self._pump, args=(follower, tag, stderr, self._generation),
                         daemon=True, name=f"log:{label}").start()

    def _stop(self) -> None:
        for f in self._followers.values():
            f.stop()
        self._followers = {}

    def close(self) -> None:
        """Stop every follower for good (the tail is closed, not just hidden)."""
        if not self.closed:
            self.closed = True
            self._stop()
            if self.on_close is not None:
                self.on_close()

    def _membership(self) -> None:
        assert self._streams_fn is not None
        if self.closed:
            return
        now = dict(self._streams_fn())
        gone = [label for label in self._followers if label not in now]
        came = [(label, make) for label, make in now.items() if label not in self._followers]
        if not gone and not came:
            return
        self.streams = list(now.items())
        with self._pending.lock:
            for label in gone:
                self._followers.pop(label).stop()
                self._pending.put(entry(f"[jamtui] {label} left (no longer running)", label,
                                        False, time.time()))
            for label, _ in came:
                self._pending.put(entry(f"[jamtui] {label} joined", label, False,
                                        time.time()))
        for label, make in came:
            self._start_one(label, make)

    def _pump(self, follower: Follower, tag: str, stderr: bool, generation: int) -> None:
        try:
            for line in follower.lines():
                text = line.text if not getattr(line, "event", "") else \
                    f"[jamtui] {line.event}" + (f"; {line.text}" if line.text else "")
                with self._pending.lock:
                    if generation != self._generation:
                        return
                    self._pending.put(entry(text, tag, stderr, time.time()))
        except Exception as exc:  # the stream's failure, shown in the viewer
            with self._pending.lock:
                if generation == self._generation:
                    self._pending.put(entry(f"[jamtui] log stream ended: {exc}", tag, True,
                                               time.time()))

    def _flush(self) -> None:
        batch = self._pending.take(FLUSH_MAX)
        if batch:
            self.query_one(LogLines).add(batch)

    # -- keys -----------------------------------------------------------------------------------

    def action_resume(self) -> None:
        self.query_one(LogLines).resume()

    def action_toggle_stream(self) -> None:
        if not self.stderr_toggle:
            self.notify("this log has one stream")
            return
        with self._pending.lock:
            self._generation += 1
            self._pending.clear()
        self._stop()
        self.stream = "stderr" if self.stream == "stdout" else "stdout"
        self.query_one(LogLines).clear()
        self._update_title()
        self._start()

    def action_toggle_stamps(self) -> None:
        lines = self.query_one(LogLines)
        lines.set_stamps(not lines.stamps)
        self._update_title()

    def action_toggle_wrap(self) -> None:
        lines = self.query_one(LogLines)
        lines.set_wrap(not lines.wrap)
        self._update_title()

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
        row = lines.row_of(found[self._match])
        lines.scroll_to(y=max(0, row - lines.size.height // 2), animate=False)

    def action_previous_match(self) -> None:
        self.action_next_match(-1)

    def _save(self, name: str) -> None:
        if not name:
            return
        path = Path(name).expanduser()
        try:
            with path.open("x", encoding="utf-8") as f:  # never overwrite a file by accident
                for e in self.query_one(LogLines).shown_entries():
                    f.write((f"{e.source} | " if e.source else "") + e.text + "\n")
        except OSError as exc:
            self.notify(f"cannot save to {path}: {exc.strerror or exc}", severity="error")
            return
        self.notify(f"saved to {path}")

    def action_next_tail(self, step: int = 1) -> None:
        self.post_message(SwitchTail(self, step))

    def action_close(self) -> None:
        """Stop following and forget this tail (Esc leaves it following in the background)."""
        self.post_message(CloseTail(self))

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


class TailsScreen(ModalScreen["str | None"]):
    """The open tails; Enter switches to one."""

    BINDINGS = [Binding("escape", "dismiss_none", "close", id="tails_close")]

    def __init__(self, tails: dict[str, LogScreen]) -> None:
        super().__init__()
        self.tails = tails

    def compose(self) -> ComposeResult:
        options = [Option(Text.assemble((line(s.title_text), "bold"),
                                        f"  {len(s.query_one(LogLines).entries)} lines"
                                        if s.is_mounted else ""), id=name)
                   for name, s in self.tails.items()]
        yield Label(Text("Open tails (Enter switches, x in a tail closes it)", style="bold"))
        yield OptionList(*options, id="tails")

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(str(event.option.id))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
