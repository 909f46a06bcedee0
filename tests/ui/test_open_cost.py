"""What opening `:allocs` costs at 5,000 allocations (#17: all rows loaded in < 500 ms): the
work counted (rows drawn, objects made, loop stalls), not the wall time."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from jamtui.model import Allocation, Kind, TaskInfo
from jamtui.store import Store
from jamtui.ui.app import JamApp
from jamtui.ui.live_table import LiveTable
from tests.helpers import allocs_view, fake_engine

BIG = 5000


def alloc(i: int) -> Allocation:
    # hours old: no AGE moves while the test looks; node names of two widths, as a lab's
    return Allocation(f"{i:08x}-0000-4000-8000-000000000000", f"svc{i // 100}.web[{i % 100}]",
                      f"svc{i // 100}", "web", f"n{i % 100}", f"client-{i % 100}", "running",
                      "run", create_time=time.time() - 7200 - i,
                      tasks=(TaskInfo("server", "running"),))


def big_app() -> JamApp:
    store = Store()
    with store.batch():
        for i in range(BIG):
            store.upsert(Kind.ALLOCATION, alloc(i))
    return JamApp(fake_engine(store), start_engine=False)


async def opened(pilot: Any, app: JamApp) -> LiveTable:
    """`:allocs` opened, every row in, and its first frames settled."""
    _, table = await allocs_view(pilot, app)
    for _ in range(200):
        if table.row_count == BIG:
            break
        await pilot.pause(0.05)
    for _ in range(6):  # the frames after: the scrollbar, the footer's keys, the title
        await pilot.pause(0.1)
    return table


async def test_opening_the_view_draws_each_row_of_its_first_page_once(monkeypatch: Any) -> None:
    """Each row on screen is drawn once. The first page was drawn twice: the screen's size
    class (`-wide`), given by Textual at its first resize, after the first frame here,
    restyled every widget, and the table threw away every row it had drawn."""
    drawn: Counter[Any] = Counter()
    real = LiveTable._render_line_in_row

    def counting(self: LiveTable, row_key: Any, *args: Any, **kw: Any) -> Any:
        if self.kind is Kind.ALLOCATION and self.screen.name == "allocs":
            drawn[row_key] += 1
        return real(self, row_key, *args, **kw)

    monkeypatch.setattr(LiveTable, "_render_line_in_row", counting)
    app = big_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        table = await opened(pilot, app)
        assert table.show_vertical_scrollbar
        page = table.scrollable_content_region.height
        assert page - 2 <= len(drawn) <= page + 1  # the header and the rows on screen
        assert [k for k, n in drawn.items() if n > 1] == []


async def test_opening_the_view_makes_no_row_object_and_cells_for_one_screenful(
        monkeypatch: Any) -> None:
    """The load makes no Row (nor RowKey) where another table shows the same allocations
    (the overview's pane): 10,000 objects a load that the cyclic collector then walked at
    each pass; and cells for as many rows as the terminal is tall (the table has no height
    before its first layout: 60 rows were made)."""
    made: list[int] = []
    real = LiveTable._cells

    def counting(self: LiveTable, obj: Any) -> list[Any]:
        if self.screen.name == "allocs":
            made.append(1)
        return real(self, obj)

    monkeypatch.setattr(LiveTable, "_cells", counting)
    app = big_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause(0.3)
        overview = next(p.table for p in app.screen.panes if p.kind is Kind.ALLOCATION)
        assert overview.row_count == BIG
        table = await opened(pilot, app)
        assert len(made) <= 41
        assert all(table.rows[key] is overview.rows[key] for key in overview.rows)


async def test_opening_the_view_sets_off_no_full_collection() -> None:
    """Once the cockpit runs (`heap.release`), opening `:allocs` at 5,000 allocations makes
    no full pass of the cyclic collector over the heap, and few young ones: with Python's
    young generation of 700 objects, Textual's drawing of a screenful (each drawn line's
    Strips carry seven caches) set off over a hundred young passes and a full one nearly
    every time (40-110 ms an opening at 5k)."""
    import gc

    from jamtui import heap

    threshold = gc.get_threshold()
    passes: list[int] = []

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            passes.append(info["generation"])

    app = big_app()
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause(0.3)
            heap.release()  # as the cockpit does once its first picture is in
            gc.collect()
            gc.callbacks.append(seen)
            try:
                await opened(pilot, app)
            finally:
                gc.callbacks.remove(seen)
    finally:
        gc.unfreeze()  # the rest of the test run collects as before
        gc.set_threshold(*threshold)
    assert 2 not in passes, passes
    assert len(passes) <= 20, len(passes)
