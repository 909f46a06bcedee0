"""What a change costs on screen: only its own row is redrawn, widths follow content, the
AGE column is recomputed for the rows on screen only, and the title counts a chunked load."""

from __future__ import annotations

import dataclasses
import time

from jamtui.model import Allocation, Kind, TaskInfo
from jamtui.store import Store
from jamtui.ui.app import JamApp
from tests.helpers import allocs_view, fake_engine, spy


def alloc(i: int, status: str = "running", restarts: int = 0) -> Allocation:
    return Allocation(f"{i:08x}-0000-4000-8000-000000000000", f"load.web[{i}]", "load", "web",
                      "n", "vs0", status, "run", create_time=time.time() - 30 - i,
                      tasks=(TaskInfo("server", "running", restarts=restarts),))


async def _allocs_view(pilot, app: JamApp):  # type: ignore[no-untyped-def]
    return await allocs_view(pilot, app)


async def test_a_changed_row_redraws_only_itself_and_widens_its_column() -> None:
    store = Store()
    for i in range(60):
        store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        _, table = await _allocs_view(pilot, app)
        await pilot.pause(0.2)
        count = table._update_count
        cached_rows = {k[0] for k in table._row_render_cache.keys()}  # noqa: SIM118
        assert len(cached_rows) > 20  # the screenful is drawn and cached
        store.upsert(Kind.ALLOCATION, alloc(5, status="pending"))  # fits its column
        await pilot.pause(0.2)
        # DataTable's update_cell would have bumped the count: every cell redrawn
        assert table._update_count == count
        still = {k[0] for k in table._row_render_cache.keys()}  # noqa: SIM118
        assert len(cached_rows & still) >= len(cached_rows) - 1
        row = table.get_row_index(alloc(5).id)
        assert "pending" in table.get_row_at(row)[2].plain
        # a status wider than any in its column widens it: not "✓ complet", and ↻N shows
        store.upsert(Kind.ALLOCATION, alloc(7, status="complete", restarts=3))
        await pilot.pause(0.3)
        lines = [strip.text for strip in (table.render_line(y) for y in range(table.size.height))]
        line = next(t for t in lines if alloc(7).id[:8] in t)
        assert "complete ↻3" in line, line


async def test_title_counts_every_row_after_a_chunked_load() -> None:
    store = Store()
    with store.batch():
        for i in range(1500):
            store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        pane, table = await _allocs_view(pilot, app)
        for _ in range(200):
            if table.row_count == 1500:
                break
            await pilot.pause(0.02)
        await pilot.pause(0.2)
        title = str(pane.query("Label").first().render())
        assert "[1500]" in title, title


async def test_age_is_recomputed_for_the_rows_on_screen_only() -> None:
    store = Store()
    with store.batch():
        for i in range(500):
            store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(120, 30)) as pilot:
        _, table = await _allocs_view(pilot, app)
        await pilot.pause(0.3)
        aged: list[str] = []
        at = next(n for n, c in enumerate(table.columns_spec) if c.key == "age")
        real = table.columns_spec[at].render

        def counting(o, s, h):  # type: ignore[no-untyped-def]
            aged.append(o.id)
            return real(o, s, h)

        table.columns_spec[at] = dataclasses.replace(table.columns_spec[at], render=counting)
        app._refresh_ages()
        await pilot.pause(0.1)
        # not 500 (the app's own tick each second may have counted them too)
        assert 0 < len(set(aged)) <= table.size.height + 1
        first = str(table._row_locations.get_key(0).value)
        assert first in aged
        # rows scrolled into view are brought up to date as they appear
        aged.clear()
        table.scroll_to(y=300, animate=False)
        await pilot.pause(0.3)
        shown = str(table._row_locations.get_key(int(table.scroll_y) + 1).value)
        assert shown in aged


async def test_an_unchanged_title_and_health_line_do_not_relayout_the_screen() -> None:
    store = Store()
    for i in range(30):
        store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await _allocs_view(pilot, app)
        layouts = spy(app.screen, "_refresh_layout")
        # the view's own first layouts may come late on a loaded machine: count from a quiet
        # half second on
        quiet_since = time.monotonic()
        deadline = quiet_since + 15
        while time.monotonic() - quiet_since < 0.5 and time.monotonic() < deadline:
            seen = len(layouts)
            await pilot.pause(0.1)
            if len(layouts) != seen:
                quiet_since = time.monotonic()
        layouts.clear()
        for n in range(5):  # a row changes, the count and the title stay the same
            store.upsert(Kind.ALLOCATION, alloc(3, status="pending" if n % 2 else "running"))
            await pilot.pause(0.1)
        assert layouts == []  # each was a whole-screen relayout and redraw of every pane
