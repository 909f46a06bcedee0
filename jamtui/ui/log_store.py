"""The log viewer's lines and their geometry, without Textual: a bounded ring of entries,
the filtered view, and where each line sits when wrapped (a running total of rows, so
finding the line of a visual row is a bisection). The widget (`log_lines.py`) draws from it;
the screen (`log_view.py`) feeds it."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from itertools import accumulate
from typing import Any, Protocol

from ..plain import log_line, no_escapes, sgr_only

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


class LineStore:
    """Lines in a bounded ring, filtered or not, laid out unwrapped (one row each) or
    wrapped at `wrap_width` (set by the widget from its size)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.entries: deque[Entry] = deque(maxlen=capacity)
        self.search: re.Pattern[str] | None = None
        self.keep: re.Pattern[str] | None = None
        self.invert = False
        self.stamps = False
        self.wrap = False
        self.wrap_width = 80
        self.width = 0  # the widest line, in cells
        self._view: list[Entry] | None = None  # the filtered lines, when filtering
        # wrapping: the running total of rows after each line (absolute, so lines leaving the
        # front only move `_cum_start`); the filtered view builds its own when needed
        self._cum: list[int] = []
        self._cum_start = 0
        self._rows: list[int] | None = None
        self.added = 0  # lines taken in since the start (for the benchmark)

    def cells(self, e: Entry) -> int:
        return (len(e.source) + 3 if e.source else 0) + len(e.text) + \
            (STAMP_WIDTH if self.stamps else 0)

    def height(self, e: Entry, width: int) -> int:
        return max(1, -(-self.cells(e) // width))

    def add(self, entries: list[Entry]) -> None:
        self.added += len(entries)
        cap = self.entries.maxlen or len(entries)
        entries = entries[-cap:]  # of a batch bigger than the buffer only its end stays
        over = len(self.entries) + len(entries) - cap
        cells = [self.cells(e) for e in entries]
        self.width = max(self.width, max(cells, default=0))
        self.entries.extend(entries)
        if self.wrap:
            width = self.wrap_width
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

    def shown(self) -> list[Entry] | deque[Entry]:
        if self.keep is None:
            return self.entries
        if self._view is None:
            keep, invert = self.keep, self.invert
            self._view = [e for e in self.entries if bool(keep.search(e.text)) != invert]
        return self._view

    def set_filter(self, pattern: re.Pattern[str] | None, invert: bool = False) -> None:
        self.keep, self.invert, self._view = pattern, invert, None
        self.relayout()

    def set_stamps(self, on: bool) -> None:
        self.stamps = on
        self.width = max((self.cells(e) for e in self.entries), default=0)
        self.relayout()

    def set_wrap(self, on: bool) -> None:
        self.wrap = on
        self.relayout()

    def clear(self) -> None:
        self.entries.clear()
        self.relayout()

    def relayout(self) -> None:
        self._rows = None
        self._cum, self._cum_start = [], 0
        if self.wrap:
            width = self.wrap_width
            self._cum = list(accumulate(self.height(e, width) for e in self.entries))

    def content_width(self) -> int:
        return self.wrap_width if self.wrap else self.width

    def _base(self) -> int:
        """Rows of the lines that have left the front of the buffer."""
        return self._cum[self._cum_start - 1] if self._cum_start else 0

    def total_rows(self) -> int:
        if not self.wrap:
            return len(self.shown())
        if self.keep is not None:
            rows = self._filtered_rows()
            return rows[-1] if rows else 0
        return (self._cum[-1] - self._base()) if self._cum else 0

    def _filtered_rows(self) -> list[int]:
        if self._rows is None:
            width = self.wrap_width
            self._rows = list(accumulate(self.height(e, width) for e in self.shown()))
        return self._rows

    def locate(self, row: int) -> tuple[int, int]:
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

    def matches(self) -> list[int]:
        if self.search is None:
            return []
        return [i for i, e in enumerate(self.shown()) if self.search.search(e.text)]

    def row_of(self, index: int) -> int:
        if not self.wrap or index == 0:
            return index
        if self.keep is not None:
            return self._filtered_rows()[index - 1]
        return self._cum[self._cum_start + index - 1] - self._base()


# -- a merged tail's first read, interleaved by time ----------------------------------------

# an RFC 3339 / ISO 8601 time near the start of a line (`2026-11-29T18:11:21Z`,
# `[2026-11-29 18:11:21,123]`, `time="2026-11-29T18:11:21.5+01:00"`); none: no time known
LINE_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
                       r"\s?(Z|[+-]\d\d:?\d\d)?")
TIME_WITHIN = 64  # characters from the start of a line a time is looked for in


def line_time(text: str) -> float | None:
    """The time a line says it was written (Unix seconds), when it says one near its start;
    a time without a zone is taken as local time."""
    m = LINE_TIME.search(text, 0, TIME_WITHIN)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    tz = None
    if zone == "Z":
        tz = UTC
    elif zone:
        sign = -1 if zone[0] == "-" else 1
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        when = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        int((frac or "0")[:6].ljust(6, "0")), tzinfo=tz)
    except ValueError:
        return None
    return when.timestamp()


@dataclass(frozen=True, slots=True)
class Read:
    """One stream's first read: its lines and when its task started (None: unknown)."""

    label: str
    started: float | None
    entries: list[Entry]


def interleave(reads: list[Read]) -> tuple[list[Entry], list[str]]:
    """The first reads of several streams as one list in the best time order known, and the
    labels of those placed by a guess. Nomad's log frames carry no time: a line's own time
    (when it starts with one) orders it; a stream whose lines carry none is placed whole at
    its task's start (a guess; an unknown start: last), and streams tie in the order their
    tasks started. A stream's
    own lines never change order."""
    ranked = sorted(reads, key=lambda r: (r.started is None, r.started or 0.0, r.label))
    keyed: list[tuple[float, int, int, Entry]] = []
    guessed: list[str] = []
    for rank, read in enumerate(ranked):
        times = [line_time(e.text) for e in read.entries]
        known = [t for t in times if t is not None]
        if read.entries and not known:
            guessed.append(read.label)
        # lines before the first timed one go with it; untimed streams at the task's start
        # (unknown: after the others, nearest to the live lines)
        last = known[0] if known else (read.started if read.started is not None
                                       else float("inf"))
        for i, (e, t) in enumerate(zip(read.entries, times, strict=True)):
            if t is not None:
                last = max(last, t)
            keyed.append((last, rank, i, e))
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed], guessed


class FirstReads:
    """A merged tail's first reads, held until every stream's is in (or `deadline`, a
    monotonic time, has passed), then given back interleaved; lines that come live
    meanwhile are held after them in arrival order."""

    def __init__(self, labels: list[str], deadline: float, capacity: int = 100_000) -> None:
        self.expected = set(labels)
        self.deadline = deadline
        self.reads: list[Read] = []
        self.held: deque[Entry] = deque(maxlen=capacity)  # a flood meanwhile: its end

    def arrive(self, read: Read) -> None:
        self.expected.discard(read.label)
        self.reads.append(read)

    def complete(self, now: float) -> bool:
        return not self.expected or now >= self.deadline

    def release(self) -> tuple[list[Entry], list[str]]:
        """Every line held, in order, and the labels placed by a guess."""
        merged, guessed = interleave(self.reads)
        return merged + list(self.held), guessed
