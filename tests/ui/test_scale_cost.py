"""What one store batch costs the cockpit at 5,000 allocations: work follows the batch (and
the screen), not the size of the store (#17)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from jamtui.model import Allocation, Kind, TaskInfo
from jamtui.store import Store
from jamtui.ui.app import JamApp
from jamtui.ui.screens import LabScreen
from tests.helpers import allocs_view, fake_engine, spy, stats_watched

BIG = 5000
SCREENFULS = 200  # rows: more than any terminal is tall


def alloc(i: int) -> Allocation:
    return Allocation(f"{i:08x}-0000-4000-8000-000000000000", f"load.web[{i}]", "load", "web",
                      "n", "vs0", "running", "run", create_time=time.time() - i,
                      tasks=(TaskInfo("server", "running"),))


async def test_a_first_answer_of_5000_rows_after_the_view_opened_builds_a_screenful() -> None:
    """The panes mount before the backends answer: Nomad's first read then arrives as one
    batch of 5,000 new allocations. That batch builds at most the screenfuls drawn (it built
    all 5,000 rows before the next frame: seconds at 5k)."""
    store = Store()
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        pane, table = await allocs_view(pilot, app)
        built: list[int] = []
        after_batch: list[int] = []
        cells = table._cells
        real_apply = table.apply

        def counting_cells(obj: Any) -> list[Any]:
            built.append(1)
            return cells(obj)

        def apply(ids: Any) -> None:
            built.clear()
            real_apply(ids)
            if len(ids) == BIG:  # the first answer's batch (not an AGE refresh)
                after_batch.append(len(built))

        table._cells = counting_cells  # type: ignore[method-assign]
        table.apply = apply  # type: ignore[method-assign]
        with store.batch():
            for i in reversed(range(BIG)):  # the order the store happens to hold them in
                store.upsert(Kind.ALLOCATION, alloc(i))
        for _ in range(600):
            if table.row_count == BIG:
                break
            await pilot.pause(0.05)
        assert after_batch and after_batch[0] <= SCREENFULS, after_batch
        assert table.row_count == BIG
        # in the table's own order (natural by name), as a view opened on a full store is
        names = [table.get_row_at(r)[1].plain for r in range(5)]
        assert names == [f"load.web[{i}]" for i in range(5)]
        await pilot.pause(0.2)
        assert "[5000]" in str(pane.query_one("Label").render())


async def test_a_change_to_one_row_of_5000_builds_one_row() -> None:
    store = Store()
    with store.batch():
        for i in range(BIG):
            store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        _, table = await allocs_view(pilot, app)
        for _ in range(600):
            if table.row_count == BIG:
                break
            await pilot.pause(0.05)
        built: list[int] = []
        per_batch: list[int] = []
        cells = table._cells
        real_apply = table.apply

        def counting_cells(obj: Any) -> list[Any]:
            built.append(1)
            return cells(obj)

        def apply(ids: Any) -> None:
            built.clear()
            real_apply(ids)
            if changed in ids:  # not the AGE refresh of the rows on screen
                per_batch.append(len(built))

        table._cells = counting_cells  # type: ignore[method-assign]
        table.apply = apply  # type: ignore[method-assign]
        changed = alloc(4321).id
        store.upsert(Kind.ALLOCATION, dataclasses.replace(alloc(4321), client_status="failed"))
        for _ in range(200):
            if per_batch:
                break
            await pilot.pause(0.05)
        assert per_batch[0] <= 1  # its own row, if drawn before; no other
        assert "failed" in " ".join(str(c) for c in table.get_row(changed))


async def test_the_overview_polls_allocation_stats_at_a_glance_pace() -> None:
    """The stats poller asked Nomad for every allocation on the overview every 3 s and redrew
    their rows: most of an idle cockpit's cost. The overview polls every 5th tick; `:allocs`
    each tick that has rows due (its page of 30 read over four ticks, again from the sixth)."""
    from jamtui.ui import nomad_views

    store = Store()
    with store.batch():
        for i in range(30):
            store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        started = stats_watched(app)
        for _ in range(10):
            nomad_views.poll_tick(app)
            await pilot.pause(0.05)
        on_overview = len(started)
        app.go_to_view("allocs")
        await pilot.pause(0.3)
        started.clear()
        for _ in range(10):
            nomad_views.poll_tick(app)
            await pilot.pause(0.05)
        # (the app's own 3 s timer may add a tick to either count)
        assert 2 <= on_overview <= 3
        assert len(started) >= 8 and all(started)
        assert set().union(*started) == nomad_views.visible_alloc_ids(app)


async def test_waiting_seconds_repaint_the_title_and_health_line_without_a_relayout() -> None:
    """While a backend has not answered (a minute for Consul's first read at 5k), the pane
    titles and the health line count its seconds: each new second re-laid out the screen and
    redrew every pane (5,000-row tables included) while the first rows were loading."""
    from jamtui.model import BackendStatus, Health

    store = Store()
    store.set_backend(BackendStatus("consul", Health.UNKNOWN, "http://c",
                                    waiting_since=time.time()))
    for i in range(30):
        store.upsert(Kind.ALLOCATION, alloc(i))
    engine = fake_engine(store)
    engine.sources = {"consul": object()}  # configured: the health line counts its wait
    app = JamApp(engine, start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(1.5)  # laid out, and the first second counted
        screen = app.screen
        assert isinstance(screen, LabScreen)
        layouts = spy(screen, "_refresh_layout")
        health = screen.query_one("#health")
        title = screen.panes[2].query_one("Label")  # Consul services
        before = (str(health.render()), str(title.render()))
        for _ in range(60):
            if str(health.render()) != before[0] and str(title.render()) != before[1]:
                break
            await pilot.pause(0.1)
        await pilot.pause(0.1)
        assert str(health.render()) != before[0] and "waiting" in str(title.render())
        assert str(title.render()) != before[1]  # the seconds moved on both
        assert layouts == []


async def test_the_first_picture_is_frozen_out_of_the_collectors_sight(
        monkeypatch: Any) -> None:
    """At 5k each full garbage collection walked ~400,000 objects of the first picture (0.6-0.8 s
    with the loop stopped, every 10-20 s); once every backend answered, they are frozen."""
    import gc

    from jamtui.ui import app as app_module

    monkeypatch.setattr(app_module, "HEAP_SETTLE", 0.05)
    engine = fake_engine(Store())
    engine.wait_ready = lambda timeout=0: True
    gc.unfreeze()
    app = JamApp(engine, start_engine=False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(100):
                if gc.get_freeze_count():
                    break
                await pilot.pause(0.05)
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # the rest of the test run collects as before


def test_a_sparkline_keeps_its_width_as_samples_come() -> None:
    """A sparkline that grew a cell per sample widened its column on each poll until full,
    and a wider column re-lays out the screen: the largest idle cost left at 5,000 rows."""
    from jamtui.ui.columns import sparkline

    assert {len(sparkline([0.5] * n, 8)) for n in range(12)} == {8}
    assert sparkline([0.0, 1.0], 4).endswith("▁█")  # newest on the right


async def test_an_age_tick_renders_only_the_age_cells() -> None:
    """AGE moves each second for every row on screen: each row's other cells keep their
    rendering (every cell of each of those rows was dropped and made by Rich again, each
    second)."""
    store = Store()
    for i in range(30):
        store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    app._refresh_ages = lambda: None  # type: ignore[method-assign]  # the test ticks
    async with app.run_test(size=(160, 40)) as pilot:
        _, table = await allocs_view(pilot, app)
        for _ in range(100):  # every row on screen drawn
            await pilot.pause(0.1)
            if len({k[0] for k in table._cell_render_cache.keys()}) >= 30:  # noqa: SIM118
                break
        age = table._column_key["age"]
        dropped: set[Any] = set()
        for _ in range(5):  # a tick that moved the ages shown (all under a minute)
            await pilot.pause(1.1)
            cache = table._cell_render_cache
            before = {k: cache.get(k) for k in list(cache.keys())}
            table.refresh_times()
            # dropped, or rendered again in place (into the row's cached line)
            dropped = {k for k, v in before.items() if cache.get(k) is not v}
            if dropped:
                break
        assert dropped  # the tick did move them
        assert {k[1] for k in dropped} == {age}  # one AGE cell per row, no other cell
        assert len(dropped) == len({k[0] for k in dropped})
