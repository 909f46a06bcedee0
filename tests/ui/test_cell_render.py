"""A table's cells are drawn without Rich's renderer where that gives the same segments: a
plain Cell (one style, no spans) that fits its column. Rich's generators (measure, wrap,
join, crop, pad) were most of drawing a screenful of rows (#17: a first frame at 5,000
allocations, `:allocs` opening)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.style import Style
from rich.text import Span, Text
from textual.widgets import DataTable

from jamtui.model import Allocation, Kind, TaskInfo
from jamtui.store import Store
from jamtui.ui.app import JamApp
from jamtui.ui.live_table import Cell
from tests.helpers import allocs_view, fake_engine


def alloc(i: int, status: str = "running") -> Allocation:
    return Allocation(f"{i:08x}-0000-4000-8000-000000000000", f"load.web[{i}]", "load", "web",
                      "n", "vs0", status, "run", create_time=time.time() - 30 - i,
                      tasks=(TaskInfo("server", "running"),))


CELLS = [Cell.of("plain"), Cell.of(""), Cell.of(Text("dim", style="dim")),
         Cell.of(Text("", style="green")), Cell.of(Text("● running", style="bold yellow")),
         Cell.of(Text("styled", style=Style(color="red", italic=True))),
         Cell.of("日本語の名前"), Cell.of("exactly-twelve"[:12]),
         Cell.of("a name much too long for its column, cut with an ellipsis"),
         Cell.of(Text.assemble(("two", "red"), " spans")),
         Cell("right", justify="right"), Cell("centre", justify="center"),
         # CPU: a figure and a sparkline span (redrawn at each stats read, #17); a styled
         # cell with spans over and beside each other
         Cell.of(Text.assemble("   250MHz ", ("▁▃▅█", "cyan"))),
         Cell.of(Text.assemble(("a", "bold"), ("b", Style(color="red")), "c", style="dim")),
         Cell.of(Text("overlap", style="italic", spans=[Span(0, 5, "red"), Span(2, 7, "bold")]))]


async def test_a_cell_drawn_directly_is_what_rich_draws(monkeypatch: Any) -> None:
    """Segment for segment (styles, meta for the mouse, cursor and hover, padding, wide
    characters), against DataTable's own rendering of the same cell."""
    store = Store()
    for i in range(30):
        store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(120, 30)) as pilot:
        _, table = await allocs_view(pilot, app)
        await pilot.pause(0.2)
        first = table._column_locations.get_key(0)  # the cells go in the first column
        for n, cell in enumerate(CELLS):
            table._data[table._row_locations.get_key(n)][first] = cell
        rich_drawn: list[tuple[int, int]] = []
        real = DataTable._render_cell

        def by_rich(self: Any, row: int, column: int, style: Style, width: int,
                    *args: Any) -> Any:
            rich_drawn.append((width, row))
            return real(self, row, column, style, width, *args)

        monkeypatch.setattr(DataTable, "_render_cell", by_rich)
        for width in (6, 14, 30):
            for cursor, hover in ((False, False), (True, False), (False, True), (True, True)):
                for row in range(len(CELLS)):
                    table._cell_render_cache.clear()
                    ours = table._render_cell(row, 0, Style(bgcolor="black"), width, cursor,
                                              hover)
                    table._cell_render_cache.clear()
                    rich = real(table, row, 0, Style(bgcolor="black"), width, cursor, hover)
                    assert ours == rich, (CELLS[row], width, cursor, hover)
        # Rich drew the cut and the aligned ones; the plain and the spanned ones that fit
        # were direct
        assert {row for width, row in rich_drawn if width == 30} == {8, 10, 11}
        assert {row for width, row in rich_drawn if width == 6} == {0, 4, 5, 6, 7, 8, 9,
                                                                    10, 11, 12, 14}


async def test_a_screenful_of_plain_rows_is_drawn_without_rich() -> None:
    """Opening a view of 5,000 allocations renders its headers through Rich, and its cells
    (plain text that fits) without it."""
    store = Store()
    with store.batch():
        for i in range(5000):
            store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        _, table = await allocs_view(pilot, app)
        await pilot.pause(0.2)
        calls: list[object] = []
        real = Console.render_lines

        def counted(self: Console, renderable: object, *args: object, **kw: object) -> object:
            calls.append(renderable)
            return real(self, renderable, *args, **kw)

        Console.render_lines = counted  # type: ignore[method-assign]
        try:
            table._clear_caches()
            table.refresh()
            await pilot.pause(0.2)
            lines = [table.render_line(y).text for y in range(table.size.height)]
        finally:
            Console.render_lines = real  # type: ignore[method-assign]
        assert sum(alloc(i).id[:8] in "".join(lines) for i in range(5000)) >= 40
        assert len(calls) <= 3 * len(table.columns), len(calls)  # the header's, not 40 rows'


async def test_a_drawing_pass_reads_the_tables_styles_once_and_draws_the_same(
        monkeypatch: Any) -> None:
    """The table's own style, background and component styles are read once per drawing
    pass (DataTable read them for every line, walking every ancestor): the lines are the
    same as DataTable draws them with the styles read live, focused or not."""
    from textual.dom import DOMNode
    from textual.geometry import Region

    store = Store()
    for i in range(60):
        store.upsert(Kind.ALLOCATION, alloc(i, "pending" if i % 7 == 0 else "running"))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(120, 30)) as pilot:
        _, table = await allocs_view(pilot, app)
        await pilot.pause(0.2)
        for focused in (True, False):
            if not focused:
                table.blur()
                await pilot.pause(0.1)
            assert table.has_focus is focused
            walks: list[int] = []
            real = DOMNode.rich_style.fget  # type: ignore[attr-defined]

            def counted(self: Any, walks: list[int] = walks, real: Any = real) -> Any:
                walks.append(1)
                return real(self)

            monkeypatch.setattr(DOMNode, "rich_style", property(counted))
            try:
                table._clear_caches()
                table._styles_cache.clear()
                region = Region(0, 0, table.size.width, table.size.height)
                passed = [strip._segments for strip in table.render_lines(region)]
            finally:
                monkeypatch.undo()
            assert len(walks) <= 3, len(walks)  # not one per line (30)
            table._clear_caches()
            table._styles_cache.clear()
            live = [strip._segments for strip in DataTable.render_lines(table, region)]
            assert passed == live
