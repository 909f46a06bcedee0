"""A big table loads in chunks (the first rows paint at once) and stays consistent when
changes arrive while it is still loading."""

from __future__ import annotations

import dataclasses
import time

from jamtui.model import Allocation, Kind, TaskInfo
from jamtui.store import Store
from jamtui.ui.app import JamApp
from jamtui.ui.screens import LabScreen
from tests.helpers import allocs_view, fake_engine


def alloc(i: int) -> Allocation:
    return Allocation(f"{i:08x}-0000-4000-8000-000000000000", f"load.web[{i}]", "load", "web",
                      "n", "vs0", "running", "run", create_time=time.time() - i,
                      tasks=(TaskInfo("server", "running"),))


async def test_chunked_load_with_changes_midway() -> None:
    store = Store()
    with store.batch():
        for i in range(2500):
            store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.go_to_view("allocs")
        await pilot.pause(0)
        screen = app.screen
        assert isinstance(screen, LabScreen)
        table = screen.panes[0].table
        # a change to a row not loaded yet, a removal and an addition, while loading
        last = store.get(Kind.ALLOCATION, alloc(2499).id)
        store.upsert(Kind.ALLOCATION, dataclasses.replace(last, client_status="failed"))
        store.remove(Kind.ALLOCATION, alloc(2498).id)
        store.upsert(Kind.ALLOCATION, alloc(2500))
        for _ in range(200):
            if table.row_count == 2500 and not len(pilot.app._changes):
                break
            await pilot.pause(0.02)
        await pilot.pause(0.1)
        assert table.row_count == 2500
        assert alloc(2498).id not in table.rows
        assert "failed" in " ".join(c.plain for c in table.get_row(alloc(2499).id))
        assert alloc(2500).id in table.rows


async def test_cursor_sort_and_filter_survive_live_changes() -> None:
    store = Store()
    for i in range(50):
        store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        _, table = await allocs_view(pilot, app)
        table.sort_by("name")
        table.focus()
        chosen = alloc(17).id
        table.move_cursor(row=table.get_row_index(chosen))
        # rows before and after it change, one is added that sorts before it, one goes
        store.upsert(Kind.ALLOCATION, dataclasses.replace(alloc(3), client_status="failed"))
        store.upsert(Kind.ALLOCATION, dataclasses.replace(alloc(40), client_status="lost"))
        store.upsert(Kind.ALLOCATION, dataclasses.replace(alloc(0), id="00000000-new",
                                                          name="load.web[1000]"))
        store.remove(Kind.ALLOCATION, alloc(5).id)
        await pilot.pause(0.1)
        assert table.selected_id() == chosen  # the cursor stays on the same allocation
        names = [table.get_row(k)[1].plain for k in table.rows]
        # still in the user's sort order (natural: web[2] before web[10])
        assert names == sorted(names, key=lambda n: int(n.split("[")[1].rstrip("]")))
        await pilot.press("slash", *"web[1")
        await pilot.pause(0.1)
        visible = table.row_count
        store.upsert(Kind.ALLOCATION, dataclasses.replace(alloc(12), client_status="failed"))
        store.upsert(Kind.ALLOCATION, dataclasses.replace(alloc(33), client_status="failed"))
        await pilot.pause(0.1)
        assert table.row_count == visible  # the filter still applies to changed rows


async def test_theme_toggles_between_dark_and_light() -> None:
    store = Store()
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark is not dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark is dark


async def test_a_first_picture_into_an_empty_table_is_every_row_sorted_and_filtered() -> None:
    """The allocations answer after the pane was drawn empty: the batch is loaded whole
    (`LiveTable.apply` → `reload`), with the filter and the sort the table had, every row."""
    store = Store()
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.go_to_view("allocs")
        await pilot.pause(0)
        screen = app.screen
        assert isinstance(screen, LabScreen)
        table = screen.panes[0].table
        assert table.row_count == 0
        table.set_filter("web[1")  # kept while the table is empty
        with store.batch():
            for i in range(600):
                store.upsert(Kind.ALLOCATION, alloc(i))
        want = sorted(a.id for a in store.items(Kind.ALLOCATION) if "web[1" in a.name)
        for _ in range(200):
            if table.row_count == len(want):
                break
            await pilot.pause(0.02)
        assert sorted(str(k.value) for k in table.rows) == want
        # in the view's order (newest first), the first row on screen is the newest
        order = [table.coordinate_to_cell_key((r, 0)).row_key.value for r in range(3)]
        newest = sorted((a for a in store.items(Kind.ALLOCATION) if "web[1" in a.name),
                        key=lambda a: -a.create_time)
        assert order == [a.id for a in newest[:3]]
        # a later change is applied row by row as before
        store.upsert(Kind.ALLOCATION, dataclasses.replace(alloc(1), client_status="failed"))
        for _ in range(100):
            if "failed" in " ".join(c.plain for c in table.get_row(alloc(1).id)):
                break
            await pilot.pause(0.02)
        assert "failed" in " ".join(c.plain for c in table.get_row(alloc(1).id))
        assert f"[{len(want)}]" in str(screen.panes[0].query("Label").first().render())
