"""A terminal driver whose input thread sleeps while nothing happens (#17).

Textual's `LinuxDriver` (8.x) reads the terminal in a thread that waits in `select()` for
0.1 s at most: ten wake-ups a second for the whole life of the app, to see whether the app
is leaving (`exit_event`) and to let its key parser time out a lone Esc (`tick`). That loop
was most of a bare Textual app's idle CPU (0.13 % of a core) and 0.15 % of jamtui's.

`QuietDriver` changes only that thread (`run_input_thread`) and the event that ends it:
- it waits with no timeout while the parser holds nothing, and until the parser's own
  deadline while it holds the start of a sequence (a lone Esc becomes Escape after
  `ESCDELAY`, as with Textual's loop; a sequence split across reads is still one key);
- `exit_event` is an `Event` that also writes a byte to a pipe the thread waits on, so
  `disable_input` (quit, `App.suspend` for ssh/exec/$EDITOR, Ctrl+Z) wakes it at once;
- at end of input (stdin a pipe that closed) it stops watching stdin, where Textual's loop
  found it readable again and again and spun.
Reads, UTF-8 decoding, the parser and every message go as in Textual's loop.

`driver_for` hands out `QuietDriver` only in place of Textual's own `LinuxDriver`, and only
where Textual looks as this was written for (8.x: the parser's `_timeout_time`, the driver's
`run_input_thread`, `disable_input`, `exit_event`); anything else (Windows, the web,
`TEXTUAL_DRIVER`, a Textual that changed) keeps the driver Textual chose."""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
from codecs import getincrementaldecoder
from typing import Any

from textual.driver import Driver

try:  # Textual's own modules, some private: a Textual without them keeps its driver
    from textual._parser import ParseError
    from textual._time import get_time
    from textual._xterm_parser import XTermParser
    from textual.drivers.linux_driver import LinuxDriver
except Exception:  # Windows (no termios), or a Textual laid out otherwise
    LinuxDriver = None  # type: ignore[assignment,misc]

FD_SETSIZE = 1024  # select() cannot watch a descriptor past it


class WakingEvent(threading.Event):
    """`exit_event` that also wakes the input thread: `set` writes a byte to the pipe the
    thread has attached (none attached: nothing to wake)."""

    def __init__(self) -> None:
        super().__init__()
        self._guard = threading.RLock()  # re-entered if a signal handler sets it meanwhile
        self._write_fd: int | None = None

    def set(self) -> None:
        super().set()
        with self._guard:
            if self._write_fd is not None:
                # a full pipe (OSError) has bytes to wake the thread already
                with contextlib.suppress(OSError):
                    os.write(self._write_fd, b"\0")

    def attach(self, fd: int | None) -> None:
        with self._guard:
            self._write_fd = fd


def _looks_as_expected() -> bool:
    if LinuxDriver is None:
        return False
    try:
        parser = XTermParser(False)
        timeout_time = parser._timeout_time  # the deadline of a partial sequence
    except Exception:
        return False
    return (timeout_time is None and callable(getattr(parser, "tick", None))
            and callable(getattr(parser, "feed", None))
            and callable(getattr(LinuxDriver, "run_input_thread", None))
            and callable(getattr(LinuxDriver, "disable_input", None)))


if LinuxDriver is not None:

    class QuietDriver(LinuxDriver):
        """Textual's `LinuxDriver` with an input thread that sleeps until input, a key's
        deadline, or the app stopping its input."""

        def __init__(self, app: Any, **kwargs: Any) -> None:
            super().__init__(app, **kwargs)
            if type(getattr(self, "exit_event", None)) is threading.Event:
                self.exit_event = WakingEvent()

        def run_input_thread(self) -> None:
            wake = self.exit_event
            if not isinstance(wake, WakingEvent):
                return super().run_input_thread()
            try:
                wake_fd, poke_fd = os.pipe()
            except OSError:
                return super().run_input_thread()
            if max(wake_fd, self.fileno) >= FD_SETSIZE:
                os.close(wake_fd)
                os.close(poke_fd)
                return super().run_input_thread()
            os.set_blocking(wake_fd, False)
            os.set_blocking(poke_fd, False)
            wake.attach(poke_fd)
            try:
                self._read_until_stopped(wake, wake_fd)
            finally:
                wake.attach(None)
                os.close(wake_fd)
                os.close(poke_fd)

        def _read_until_stopped(self, wake: threading.Event, wake_fd: int) -> None:
            fileno = self.fileno
            read = os.read
            process = self.process_message
            parser = XTermParser(self._debug)
            feed, tick = parser.feed, parser.tick
            decode = getincrementaldecoder("utf-8")().decode
            selector = selectors.SelectSelector()  # as Textual: select() works on every tty
            selector.register(fileno, selectors.EVENT_READ)
            selector.register(wake_fd, selectors.EVENT_READ)
            try:
                while not wake.is_set():
                    deadline = parser._timeout_time
                    timeout = None if deadline is None else max(0.0, deadline - get_time())
                    for key, _mask in selector.select(timeout):
                        if key.fd == wake_fd:  # set: the loop ends
                            with contextlib.suppress(OSError):
                                read(wake_fd, 64)
                            continue
                        data = read(fileno, 1024 * 4)
                        if not data:  # end of input (a pipe): nothing more will come
                            selector.unregister(fileno)
                            continue
                        text = decode(data)
                        if text:
                            for event in feed(text):
                                process(event)
                    for event in tick():
                        process(event)
                for event in tick():  # as Textual's loop: a key due by now still goes
                    process(event)
            finally:
                selector.close()
                try:
                    for _event in feed(""):
                        pass
                except (EOFError, ParseError):
                    pass

    _READY = _looks_as_expected()
else:
    _READY = False


def driver_for(chosen: type[Driver]) -> type[Driver]:
    """The driver to run with where Textual chose `chosen`: `QuietDriver` in place of
    Textual's own `LinuxDriver` (not a subclass of it someone chose), else `chosen`."""
    if _READY and chosen is LinuxDriver:
        return QuietDriver
    return chosen
