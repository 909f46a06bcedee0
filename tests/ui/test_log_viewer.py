"""The log viewer's everyday feel, on streams made here (no lab, so each state is exact):
opens at the end following, wraps at the width it is seen at (not under the scrollbar) and
again on resize, the status line, `e` to an empty stream and back, a merged tail's first
reads in time order (a guess said), every key a declared binding."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

from textual.widgets import Label

from jamtui.sources.logs import LogLine
from jamtui.store import Store
from jamtui.ui.app import JamApp
from jamtui.ui.log_lines import LogLines
from jamtui.ui.log_store import Read, entry, interleave, line_time
from jamtui.ui.log_view import LogScreen
from tests.ui.test_cockpit import until
from tests.ui.test_hostile import drawn

T0 = 1_790_000_000.0  # a fixed time the lines below are written at (Unix s)


def stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


class Fake:
    """A follower with a first read apart (as LogFollower has), then live lines."""

    def __init__(self, backlog: list[str], live: list[str] | None = None,
                 started: float | None = None, delay: float = 0.0) -> None:
        self._backlog, self.live, self.started, self.delay = backlog, live or [], started, delay
        self.stopped = threading.Event()
        self.read = False

    def backlog(self) -> list[LogLine]:
        self.stopped.wait(self.delay)
        self.read = True
        return [LogLine(t, 0) for t in self._backlog]

    def lines(self) -> Iterator[LogLine]:
        for t in ([] if self.read else self._backlog) + self.live:
            yield LogLine(t, 0)
        self.stopped.wait()

    def stop(self) -> None:
        self.stopped.set()


def fixed(by_stream: dict[str, Fake]) -> Callable[[str], Fake]:
    return lambda stream: by_stream.get(stream) or Fake([])


def cockpit() -> JamApp:
    """The cockpit on an empty store (no lab): tails open in it as `l` opens them."""
    engine: Any = SimpleNamespace(store=Store(), sources={}, start=lambda: None,
                                  stop=lambda: None)
    return JamApp(engine, start_engine=False)


async def opened(pilot: Any, app: JamApp, screen: LogScreen) -> LogLines:
    app.open_tail(lambda: screen)
    await until(pilot, lambda: app.screen is screen and screen.query(LogLines))
    return screen.query_one(LogLines)


def status(app: JamApp) -> str:
    return str(app.screen.query_one("#log-status", Label).content)


def inner_rows(app: JamApp) -> list[str]:
    """The log's rows as drawn, between the round border's sides, less the scrollbar's
    two cells."""
    return [row.split("│", 1)[1].rsplit("│", 1)[0][:-2] for row in drawn(app).splitlines()
            if row.startswith("│")]


async def test_opens_at_the_end_and_wraps_at_the_width_seen() -> None:
    long = "".join(f"<{n:03d}>" for n in range(60))  # 300 cells, every piece numbered
    backlog = [f"line {n}" for n in range(200)] + [long]
    screen = LogScreen("one", [("one", fixed({"stdout": Fake(backlog)}))])
    app = cockpit()
    async with app.run_test(size=(80, 24)) as pilot:
        lines = await opened(pilot, app, screen)
        await until(pilot, lambda: len(lines.entries) == 201)
        await pilot.pause(0.2)
        # no line came after the first read: the end is shown all the same, following
        assert lines.follow and lines.scroll_y == lines.max_scroll_y > 0
        assert "line 199" in drawn(app) and status(app).startswith("following")
        for size in ((80, 24), (97, 24)):
            await pilot.resize_terminal(*size)
            if not lines.wrap:
                await pilot.press("w")
            await pilot.pause(0.3)
            assert lines.store.wrap_width == lines.scrollable_content_region.width
            rows = inner_rows(app)
            first = next(i for i, r in enumerate(rows) if r.startswith("<000>"))
            seen = "".join(r.rstrip() for r in rows[first:])
            assert seen == long, f"at {size}: cells lost at the wrap:\n" + "\n".join(rows)
            assert lines.scroll_y == lines.max_scroll_y  # still at the end
        assert "wrap on" in status(app)


async def test_the_status_line_and_every_key_a_binding() -> None:
    backlog = [f"{stamp(T0 + n)} request {n} {'ERROR' if n % 10 == 3 else 'ok'}"
               for n in range(100)]
    screen = LogScreen("one", [("one", fixed({"stdout": Fake(backlog)}))])
    app = cockpit()
    async with app.run_test(size=(100, 30)) as pilot:
        lines = await opened(pilot, app, screen)
        await until(pilot, lambda: len(lines.entries) == 100)
        await until(pilot, lambda: status(app) == "following · stdout · wrap off · time off")
        await until(pilot, lambda: lines.scroll_y == lines.max_scroll_y > 0)
        await pilot.press("pageup")
        await until(pilot, lambda: status(app).startswith("paused, "))
        shown = lines.scrollable_content_region.height

        def below() -> int:
            return int(status(app).split(", ")[1].split()[0])

        # PgUp scrolls with Textual's animation: the line may be written at a step of it
        # (a loaded run saw "23 below" at y 52 before y reached 50); it follows the scroll
        await until(pilot, lambda: below() == 100 - int(lines.scroll_y) - shown)
        assert below() > 0 and not lines.follow
        await pilot.press("f")
        await until(pilot, lambda: status(app).startswith("following"))
        await pilot.press("ampersand", *"request [0-4]", "enter")
        await until(pilot, lambda: "filter &request [0-4]" in status(app))
        await pilot.press("slash", *"error", "enter")
        await until(pilot, lambda: "/error: match 1/5" in status(app))  # 3, 13, 23, 33, 43
        assert status(app).startswith("paused")  # the match is shown, the end is not
        await pilot.press("n", "n")
        await until(pilot, lambda: "/error: match 3/5" in status(app))
        await pilot.press("t", "w")
        await until(pilot, lambda: status(app).endswith("stdout · wrap on · time on"))
        await pilot.press("escape")  # the search and the filter go
        await until(pilot, lambda: "&" not in status(app) and "/" not in status(app))
    # `?` is generated from the screen's bindings: every key of the viewer is one, described
    keys = {b.key for b in LogScreen.BINDINGS}
    assert {"f,end", "slash", "n", "N", "ampersand", "e", "t", "w", "s", "x", "escape",
            "right_square_bracket", "left_square_bracket"} <= keys
    assert all(b.description for b in LogScreen.BINDINGS)
    assert "on_key" not in vars(LogScreen)


async def test_e_to_an_empty_stream_says_so_and_back_lands_at_the_end() -> None:
    written = {"stdout": [f"out {n}" for n in range(120)], "stderr": []}
    screen = LogScreen("one", [("one", lambda s: Fake(list(written[s])))])
    app = cockpit()
    async with app.run_test(size=(80, 24)) as pilot:
        lines = await opened(pilot, app, screen)
        await until(pilot, lambda: len(lines.entries) == 120)
        # at the end with no line after the first read (it stayed at the top until one came)
        await until(pilot, lambda: lines.scroll_y == lines.max_scroll_y > 0)
        await pilot.press("pageup")  # paused
        await until(pilot, lambda: not lines.follow)
        await pilot.press("e")
        await until(pilot, lambda: "no stderr output yet" in drawn(app))
        assert "stderr" in status(app)
        written["stdout"] += [f"out {n}" for n in range(120, 150)]
        await pilot.press("e")
        await until(pilot, lambda: len(lines.entries) == 150)
        await pilot.pause(0.2)
        assert lines.follow and lines.scroll_y == lines.max_scroll_y > 0
        assert "out 149" in drawn(app) and status(app).startswith("following · stdout")


async def test_a_merged_tail_shows_its_first_reads_in_time_order() -> None:
    # web[0]'s task started first but its lines come last; db's lines carry no time
    web0 = Fake([f"{stamp(T0 + n)} web0 {n}" for n in (0, 2, 4)], live=["web0 live"],
                started=T0 - 10, delay=0.4)
    web1 = Fake([f"{stamp(T0 + n)} web1 {n}" for n in (1, 3)] + ["  continued"],
                live=["web1 live"], started=T0 - 5)
    db = Fake(["db a", "db b"], started=T0 + 2.5)
    screen = LogScreen("job", [("web0", fixed({"stdout": web0})),
                               ("web1", fixed({"stdout": web1})),
                               ("db", fixed({"stdout": db}))])
    app = cockpit()
    async with app.run_test(size=(100, 30)) as pilot:
        lines = await opened(pilot, app, screen)
        await until(pilot, lambda: len(lines.entries) == 10)
        texts = [e.text.split("Z ")[-1] for e in lines.entries]
        assert texts[:8] == ["web0 0", "web1 1", "web0 2", "db a", "db b", "web1 3",
                             "  continued", "web0 4"]
        assert set(texts[8:]) == {"web0 live", "web1 live"}  # live lines after, as they came
        assert [e.source for e in lines.entries][:2] == ["web0", "web1"]
        await until(pilot, lambda: "order guessed by task start for 1/3" in status(app))


def test_line_times_and_the_order_of_untimed_streams() -> None:
    assert line_time("2026-11-29T18:11:21Z x") == 1_795_975_881.0
    assert line_time('ts="2026-11-29T19:11:21.250+01:00" msg=x') == 1_795_975_881.25
    assert line_time("[2026-11-29 18:11:21,5] x") is not None  # local time, no zone
    assert line_time("GET /health 200") is None and line_time("2026-13-45T99:00:00Z") is None
    # no times anywhere: whole streams in the order their tasks started; unknown starts last
    reads = [Read("late", T0 + 9, [entry("l1"), entry("l2")]), Read("none", None, [entry("n")]),
             Read("early", T0, [entry("e1"), entry("e2")])]
    merged, guessed = interleave(reads)
    assert [e.text for e in merged] == ["e1", "e2", "l1", "l2", "n"]
    assert guessed == ["early", "late", "none"]


async def test_a_flush_while_the_viewer_closes_keeps_its_lines_and_raises_nothing() -> None:
    """The flush timer fired on a viewer whose widgets Textual had removed: `NoMatches`
    ended a CI run. It draws nothing then, and what was pending stays pending."""
    screen = LogScreen("one", [("one", fixed({"stdout": Fake(["a", "b"])}))])
    app = cockpit()
    async with app.run_test(size=(80, 24)) as pilot:
        lines = await opened(pilot, app, screen)
        await until(pilot, lambda: len(lines.entries) == 2)
        await lines.remove()
        screen._put(entry("c", "one", False, time.time()))
        screen._flush()
        assert [e.text for e in screen._pending.take(10)] == ["c"]
