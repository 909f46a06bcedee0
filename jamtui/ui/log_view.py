"""The log viewer's screens: a ring buffer of lines drawn with Textual's line API (only the
visible lines are rendered, so the rate of the log does not matter), following or paused,
with a search that highlights in place and a filter that keeps only matching lines;
timestamps and wrapping on or off; ANSI colours kept. Several tails stay open (each following
in the background) and are switched between.

Three rooms: `log_store.py` (the lines and their geometry, no Textual), `log_lines.py` (the
widget that draws them), this module (the screens that feed it); the names of the first two
are importable from here as before."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, OptionList
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from ..plain import line
from .inbox import Inbox
from .log_lines import MATCH, STAMP, STDERR, LogLines
from .log_store import STAMP_WIDTH, Entry, FirstReads, Follower, LineStore, Read, Stream, entry
from .messages import CloseTail, SwitchTail

if TYPE_CHECKING:
    from .app import JamApp

__all__ = ["MATCH", "STAMP", "STAMP_WIDTH", "STDERR", "Entry", "Follower", "LineStore",
           "LogLines", "LogScreen", "Stream", "TailsScreen", "entry"]

FLUSH_MAX = 10_000  # lines drawn in per 50 ms tick at most, so a flood cannot hog a frame
FIRST_READ_WAIT = 5.0  # seconds a merged tail waits for its slowest stream's first read


class LogScreen(Screen[None]):
    """One or more followed logs in one viewer. `streams` may be a function: it is asked
    again every second (off the loop, by the screen's own thread worker), and streams that
    appear join, those that go leave (a job's allocations as they start and stop). Each
    stream is pumped by a thread worker of this screen, so every thread ends with it."""

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
        # asked by the watcher, off the loop (a function may read files: a journal's logs)
        self.streams: list[Stream] = [] if callable(streams) else list(streams)
        self.capacity = capacity
        self.stream = "stdout"
        self.stderr_toggle = stderr_toggle
        self.on_close = on_close
        self._followers: dict[str, Follower] = {}
        # lines not yet drawn; bounded like the buffer (older ones would be evicted anyway)
        self._pending: Inbox[Entry] = Inbox(maxlen=capacity)
        self._match = -1
        self._found = 0  # lines matching the search (counted as lines come)
        self._first: FirstReads | None = None  # a merged tail's first reads, being held
        self._reading: set[str] = set()  # streams whose first read is not in yet
        self._guessed: list[str] = []  # streams whose first read was placed by a guess
        self._merged = 0  # of how many first reads
        self._status = ""
        self._generation = 0  # followers of an older stream choice drop their lines
        self.closed = False
        self._exit = threading.Event()  # set when closed: the watcher stops waiting

    @property
    def jam(self) -> JamApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Label(self._title(), id="log-title", classes="pane-title")
        yield LogLines(self.capacity, id="log-lines")
        yield Label("", id="log-status")
        with Horizontal(id="log-bar"):
            yield Input(placeholder="", id="log-input")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#log-bar").display = False
        self.query_one(LogLines).focus()
        self.set_interval(0.05, self._flush)  # at most 20 redraws a second, whatever the rate
        self._start()
        if self._streams_fn is not None:
            self._watch_streams()

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
        self._update_status()

    def status(self) -> str:
        """The status line: following or paused (lines below), the filter, the search and
        its match, the stream, wrap and time, and whether the first read's order is a
        guess. Plain text (the patterns are the operator's, the labels a backend's)."""
        lines = self.query_one(LogLines)
        below = lines.below()
        parts = ["following" if lines.follow else
                 f"paused, {below} line{'s' if below != 1 else ''} below"]
        if lines.keep is not None:
            parts.append(f"filter &{'!' if lines.invert else ''}{lines.keep.pattern}")
        if lines.search is not None:
            where = f"match {self._match + 1}/{self._found}" if self._match >= 0 and \
                self._found else f"{self._found} match{'es' if self._found != 1 else ''}"
            parts.append(f"/{lines.search.pattern}: {where}")
        if self.stderr_toggle:
            parts.append(self.stream)
        parts += [f"wrap {'on' if lines.wrap else 'off'}",
                  f"time {'on' if lines.stamps else 'off'}"]
        if self._first is not None:
            parts.append("ordering the first read")
        elif self._guessed:
            parts.append(f"order guessed by task start for {len(self._guessed)}/"
                         f"{self._merged}")
        return line(" · ".join(parts))

    def _update_status(self) -> None:
        lines = self.query_one(LogLines)
        empty = "" if lines.shown_entries() else (
            f"reading {self.stream if self.stderr_toggle else 'the log'}…" if self._reading
            else "no line matches the filter" if lines.entries
            else f"no {self.stream} output yet" if self.stderr_toggle else "no output yet")
        if empty != lines.empty_text:
            lines.empty_text = empty
            lines.refresh()
        status = self.status()
        if status != self._status:
            self._status = status
            self.query_one("#log-status", Label).update(status)

    # -- streams ------------------------------------------------------------------------------

    def _start(self, streams: list[Stream] | None = None) -> None:
        """Start following `streams` (the tail's, by default); several are merged: their
        first reads are held and shown together, in time order."""
        streams = self.streams if streams is None else streams
        if len(streams) > 1:
            self._first = FirstReads([label for label, _ in streams],
                                     time.monotonic() + FIRST_READ_WAIT, self.capacity)
        for label, make in streams:
            self._start_one(label, make)

    def _start_one(self, label: str, make: Callable[[str], Follower]) -> None:
        follower = make(self.stream)
        self._followers[label] = follower
        self._reading.add(label)
        tag = label if len(self.streams) > 1 or self._streams_fn is not None else ""
        stderr = self.stream == "stderr"
        self.run_worker(partial(self._pump, follower, label, tag, stderr, self._generation),
                        thread=True, group="log-pump", name=f"log:{label}",
                        exit_on_error=False)

    def _put(self, e: Entry) -> None:
        """A line for the viewer (the inbox's lock held): held while a merged tail's first
        reads are being gathered, else drawn in at the next tick."""
        if self._first is not None:
            self._first.held.append(e)
        else:
            self._pending.put(e)

    def _arrive(self, read: Read) -> None:
        """A stream's first read is in (the inbox's lock held)."""
        self._reading.discard(read.label)
        first = self._first
        if first is not None and read.label in first.expected:
            first.arrive(read)
            if first.complete(time.monotonic()):
                self._release()
        else:
            for e in read.entries:
                self._put(e)

    def _release(self) -> None:
        """Every held line into the inbox, the first reads interleaved (lock held)."""
        assert self._first is not None
        self._merged = len(self._first.reads)
        merged, self._guessed = self._first.release()
        self._first = None
        for e in merged:
            self._pending.put(e)

    def _stop(self) -> None:
        for f in self._followers.values():
            f.stop()
        self._followers = {}

    def close(self) -> None:
        """Stop every follower for good (the tail is closed, not just hidden)."""
        if not self.closed:
            self.closed = True
            self._exit.set()
            self._stop()
            self.workers.cancel_node(self)  # its pumps and watcher end with it
            if self.on_close is not None:
                self.on_close()

    @work(thread=True, exit_on_error=False, group="log-streams", name="log streams")
    def _watch_streams(self) -> None:
        """Ask which streams there are now, every second, off the loop; ends with the screen
        (cancelled when it goes, or its exit event set when the tail is closed)."""
        assert self._streams_fn is not None
        worker = get_current_worker()
        first, said = True, ""
        while not worker.is_cancelled and not self._exit.is_set():
            try:
                now = dict(self._streams_fn())
            except Exception as exc:  # a stream list that cannot be read now: said, retried
                now = None
                if str(exc) != said:
                    said = str(exc)
                    with self._pending.lock:
                        self._put(entry(f"[jamtui] cannot list the streams: {exc}", "", True,
                                        time.time()))
            if now is not None and not worker.is_cancelled and not self._exit.is_set():
                try:
                    self.app.call_from_thread(self._membership, now, first)
                except RuntimeError:  # the app has stopped
                    return
                first = False
            self._exit.wait(1.0)

    def _membership(self, now: dict[str, Callable[[str], Follower]],
                    first: bool = False) -> None:
        """On the loop: start the streams that came, stop those gone (the first list is
        the tail's start, not news)."""
        if self.closed:
            return
        gone = [label for label in self._followers if label not in now]
        came = [(label, make) for label, make in now.items() if label not in self._followers]
        if not gone and not came:
            return
        self.streams = list(now.items())
        with self._pending.lock:
            for label in gone:
                self._followers.pop(label).stop()
                self._reading.discard(label)
                if self._first is not None:
                    self._first.expected.discard(label)
                self._put(entry(f"[jamtui] {label} left (no longer running)", label,
                                False, time.time()))
            for label, _ in came if not first else ():
                self._put(entry(f"[jamtui] {label} joined", label, False, time.time()))
            if first:
                self._start(came)
                return
        for label, make in came:
            self._start_one(label, make)

    def _pump(self, follower: Follower, label: str, tag: str, stderr: bool,
              generation: int) -> None:
        """A thread worker of this screen: the follower's first read (when it can read one
        apart: a Nomad task's log), then its lines, into the inbox, until the stream ends,
        the stream choice changes, or the screen goes (the worker cancelled)."""
        worker = get_current_worker()

        def made(line: object) -> Entry:
            text = getattr(line, "text", "")
            event = getattr(line, "event", "")
            if event:
                text = f"[jamtui] {event}" + (f"; {text}" if text else "")
            return entry(text, tag, stderr, time.time())

        started = getattr(follower, "started", None)  # a Nomad task's start, when known
        read = Read(label, float(started) if isinstance(started, int | float) else None, [])
        try:
            backlog = getattr(follower, "backlog", None)
            first = backlog() if callable(backlog) else []
            with self._pending.lock:
                if generation != self._generation or worker.is_cancelled:
                    return
                self._arrive(Read(label, read.started, [made(x) for x in first]))
            for line in follower.lines():
                if worker.is_cancelled:
                    return
                with self._pending.lock:
                    if generation != self._generation:
                        return
                    self._put(made(line))
        except Exception as exc:  # the stream's failure, shown in the viewer
            with self._pending.lock:
                if generation == self._generation:
                    if label in self._reading:
                        self._arrive(read)
                    self._put(entry(f"[jamtui] log stream ended: {exc}", tag, True,
                                    time.time()))
        finally:
            if worker.is_cancelled:
                follower.stop()

    def _flush(self) -> None:
        if self._first is not None and self._first.complete(time.monotonic()):
            with self._pending.lock:
                if self._first is not None:
                    self._release()  # a stream too slow to answer: the others wait no longer
        found = self.query(LogLines)
        if not found:
            return  # being closed: its widgets are gone; what is pending stays pending
        lines = found.first()
        batch = self._pending.take(FLUSH_MAX)
        if batch:
            lines.add(batch)
            if lines.search is not None:
                self._found += self._count(batch)
        self._update_status()

    def _count(self, batch: list[Entry]) -> int:
        """Lines of `batch` shown and matching the search."""
        lines = self.query_one(LogLines)
        search, keep, invert = lines.search, lines.keep, lines.invert
        if search is None:
            return 0
        return sum(1 for e in batch if search.search(e.text)
                   and (keep is None or bool(keep.search(e.text)) != invert))

    # -- keys -----------------------------------------------------------------------------------

    def action_resume(self) -> None:
        self.query_one(LogLines).resume()
        self._update_status()

    def action_toggle_stream(self) -> None:
        if not self.stderr_toggle:
            self.notify("this log has one stream")
            return
        with self._pending.lock:
            self._generation += 1
            self._pending.clear()
            self._first, self._reading, self._guessed = None, set(), []
        self._stop()
        self.stream = "stderr" if self.stream == "stdout" else "stdout"
        lines = self.query_one(LogLines)
        lines.clear()
        lines.resume()  # the other stream is shown from its end, following
        self._match, self._found = -1, 0
        with self._pending.lock:
            self._start()
        self._update_title()

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
            self._match = -1
        self._found = len(lines.matches())
        self._update_status()

    def action_next_match(self, step: int = 1) -> None:
        lines = self.query_one(LogLines)
        found = lines.matches()
        self._found = len(found)
        if not found:
            self._update_status()
            return
        lines.follow = False
        self._match = (self._match + step) % len(found)
        row = lines.row_of(found[self._match])
        lines.scroll_to(y=max(0, row - lines.size.height // 2), animate=False)
        self._update_status()

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
            self._match, self._found = -1, 0
            self._update_status()
            return
        self.app.pop_screen()


class TailsScreen(ModalScreen["str | None"]):
    """The open tails; Enter switches to one."""

    BINDINGS = [Binding("escape", "dismiss_none", "close", id="tails_close")]

    def __init__(self, tails: dict[str, LogScreen], top: int = 0) -> None:
        super().__init__()
        self.tails = tails
        self.top = top  # rows left free: the header bar of the screen beneath

    def compose(self) -> ComposeResult:
        options = [Option(Text.assemble((line(s.title_text), "bold"),
                                        f"  {len(s.query_one(LogLines).entries)} lines"
                                        if s.is_mounted else ""), id=name)
                   for name, s in self.tails.items()]
        title = Label(Text("Open tails (Enter switches, x in a tail closes it)", style="bold"))
        title.styles.margin = (self.top, 0, 0, 0)  # (a screen's padding would shift what
        yield title                                 # shows beneath it too)
        yield OptionList(*options, id="tails")

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(str(event.option.id))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
