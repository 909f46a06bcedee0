"""A row added or removed among 5,000 (a stopped allocation's replacement, a collected one):
only the rows whose place changed are drawn again, and every line shows the row at its place
(#17: DataTable's way threw away every cached cell and line, 66-260 ms a frame at 5k)."""

from __future__ import annotations

import time
from typing import Any

from jamtui.model import Allocation, Kind, TaskInfo
from jamtui.store import Store
from jamtui.ui.app import JamApp
from tests.helpers import allocs_view, fake_engine

BIG = 5000


def alloc(i: int) -> Allocation:
    # an hour old: its AGE changes once a minute (a young row's AGE tick each second drops
    # its row's render, drawn again from its cells where needed)
    return Allocation(f"{i:08x}-0000-4000-8000-000000000000", f"load.web[{i}]", "load", "web",
                      "n", "vs0", "running", "run", create_time=time.time() - 3600,
                      tasks=(TaskInfo("server", "running"),))


def shown(table: Any) -> list[str]:
    """The allocation ids (short) on the table's lines, top to bottom."""
    out = []
    for y in range(table.size.height):
        text = table.render_line(y).text.split()
        if text and len(text[0]) == 8 and text[0] != "ID":
            out.append(text[0])
    return out


def expected(table: Any) -> list[str]:
    top = int(table.scroll_y)
    ids = [str(table._row_locations.get_key(r).value)[:8]
           for r in range(top, min(table.row_count, top + table.size.height - 1))]
    return ids


async def test_rows_added_and_removed_redraw_only_the_rows_that_moved() -> None:
    store = Store()
    with store.batch():
        for i in range(0, 2 * BIG, 2):  # even numbers: room between them
            store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        _, table = await allocs_view(pilot, app)
        for _ in range(200):
            if table.row_count == BIG:
                break
            await pilot.pause(0.05)
        table.move_cursor(row=100, animate=False)  # scrolled to somewhere in the middle
        await pilot.pause(0.3)
        table.move_cursor(row=int(table.scroll_y), animate=False)  # on the top line
        await pilot.pause(0.3)
        assert shown(table) == expected(table) and shown(table)
        on_screen = {k[0] for k in table._row_render_cache.keys()}  # noqa: SIM118
        count = table._update_count

        # far below the screen: nothing drawn moves, nothing drawn is thrown away
        store.upsert(Kind.ALLOCATION, alloc(2 * 4000 + 1))
        await pilot.pause(0.3)
        assert table.row_count == BIG + 1
        assert table._update_count == count
        kept = {k[0] for k in table._row_render_cache.keys()}  # noqa: SIM118
        assert on_screen <= kept
        assert shown(table) == expected(table)

        # on screen: the rows above it keep their drawing, those below show their new places
        first, *_ = shown(table)
        middle = int(shown(table)[10], 16)
        store.upsert(Kind.ALLOCATION, alloc(middle + 1))
        await pilot.pause(0.3)
        lines = shown(table)
        assert lines == expected(table)
        assert f"{middle + 1:08x}" in lines and lines[0] == first
        assert lines.index(f"{middle + 1:08x}") == lines.index(f"{middle:08x}") + 1

        # removed on screen, and removed above it: every line still shows its own row
        store.remove(Kind.ALLOCATION, alloc(middle + 1).id)
        store.remove(Kind.ALLOCATION, alloc(0).id)
        await pilot.pause(0.3)
        assert table.row_count == BIG
        assert shown(table) == expected(table)
        assert f"{middle + 1:08x}" not in shown(table)

        # the cursor still selects the row under it
        row = table.cursor_row
        assert table.selected_id() == str(table._row_locations.get_key(row).value)
