"""The viewer's wrapped layout against a brute-force one: every visual row maps to the right
line and piece, as lines arrive, leave the front of the ring, and a filter applies."""

from __future__ import annotations

import random
import re

from textual.app import App, ComposeResult

from jamtui.ui.log_view import LogLines, entry


class Host(App[None]):
    def compose(self) -> ComposeResult:
        yield LogLines(capacity=50, id="lines")


def brute(lines: LogLines, width: int) -> list[tuple[int, int]]:
    rows = []
    for i, e in enumerate(lines.shown_entries()):
        rows += [(i, k) for k in range(max(1, -(-lines._cells(e) // width)))]
    return rows


async def test_wrapped_rows_map_to_lines_through_eviction_and_filters() -> None:
    rng = random.Random(7)
    app = Host()
    async with app.run_test(size=(30, 10)) as pilot:
        lines = app.query_one(LogLines)
        lines.set_wrap(True)
        await pilot.pause()
        width = lines._wrap_width()
        for round_ in range(8):  # 8 x 20 lines through a ring of 50: lines leave the front
            lines.add([entry(f"{round_}-{n} " + "x" * rng.randrange(0, 90),
                             source="src" if n % 3 else "")
                       for n in range(20)])
            for stamps in (False, True):
                lines.set_stamps(stamps)
                expect = brute(lines, width)
                assert lines._total_rows() == len(expect)
                assert [lines._locate(r) for r in range(len(expect))] == expect
                assert [lines.row_of(i) for i in range(len(lines.shown_entries()))] == [
                    expect.index((i, 0)) for i in range(len(lines.shown_entries()))]
        lines.set_filter(re.compile(r"-1\d "))
        expect = brute(lines, width)
        assert len(lines.shown_entries()) == 30 and lines._total_rows() == len(expect)
        assert [lines._locate(r) for r in range(len(expect))] == expect
        # the last visual row draws the end of the last line
        lines.set_filter(None)
        last = lines.entries[-1]
        lines.follow = False
        lines.scroll_to(y=lines._total_rows() - 1, animate=False)
        await pilot.pause()
        tail = lines.line_text(last).plain
        piece = tail[(len(tail) - 1) // width * width:]
        y = lines._total_rows() - 1 - lines.scroll_offset.y
        assert lines.render_line(y).text.rstrip() == piece.rstrip()
