"""What an idle cockpit asks and draws (#17): nothing polled for columns nobody sees."""

from __future__ import annotations

import time
from typing import Any

import pytest

from jamtui.model import Allocation, Kind, TaskInfo
from jamtui.store import Store
from jamtui.ui import nomad_views
from jamtui.ui.app import JamApp
from tests.helpers import allocs_view, fake_engine, spy, stats_watched


def alloc(i: int) -> Allocation:
    # a name as long as the lab's (node-exporter.exporter[0]): the overview's half-width
    # pane has no room left for CPU and MEM
    return Allocation(f"{i:08x}-0000-4000-8000-000000000000",
                      f"node-exporter-with-a-longer-name.exporter[{i}]", "node-exporter",
                      "exporter", "n", "vs0", "running", "run", create_time=time.time() - 3600,
                      tasks=(TaskInfo("server", "running"),))


def allocs_app(count: int) -> JamApp:
    """The cockpit (no sources) on a store of `count` running allocations."""
    store = Store()
    with store.batch():
        for i in range(count):
            store.upsert(Kind.ALLOCATION, alloc(i))
    return JamApp(fake_engine(store), start_engine=False)


def young_store(ages: list[int]) -> tuple[list[float], Store]:
    """A store of allocations these many seconds old, on a clock the test moves (`now[0]`)."""
    from tests.ui.test_table_keys import NOW
    from tests.ui.test_table_keys import alloc as young

    now = [NOW]
    store = Store(clock=lambda: now[0])
    for i, age in enumerate(ages):
        store.upsert(Kind.ALLOCATION, young(i, age=age))
    return now, store


def young_app(ages: list[int], test_ticks: bool = False) -> tuple[list[float], JamApp]:
    """An app over `young_store(ages)`; `test_ticks`: the app's own AGE ticks are off (the
    test ticks, by `refresh_times`)."""
    now, store = young_store(ages)
    app = JamApp(fake_engine(store), start_engine=False)
    if test_ticks:
        app._refresh_ages = lambda: None  # type: ignore[method-assign]
    return now, app


async def test_a_pane_without_cpu_and_mem_polls_no_allocation_stats() -> None:
    """The overview asked Nomad for the stats of every allocation it shows (every 15 s), and
    redrew their rows, while its pane was too narrow to show CPU or MEM."""
    app = allocs_app(12)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        pane = next(p.table for p in app.screen.panes if p.kind is Kind.ALLOCATION)
        assert pane.row_count == 12
        assert "cpu" not in pane.columns and "mem" not in pane.columns
        assert nomad_views.visible_alloc_ids(app) == set()
        started = stats_watched(app)
        for _ in range(nomad_views.OVERVIEW_EVERY * 2):
            nomad_views.poll_tick(app)
            await pilot.pause(0.02)
        assert started == []
        # `:allocs` (the whole width) shows them: its rows are polled
        _, table = await allocs_view(pilot, app)
        await pilot.pause(0.2)
        assert "cpu" in table.columns
        for _ in range(2):  # 12 rows: the cursor's and 8 more, then the other 3
            nomad_views.poll_tick(app)
            await pilot.pause(0.05)
        assert started and set().union(*started) == {str(a.id) for a in
                                                     app.store.items(Kind.ALLOCATION)}


async def test_a_changed_cell_is_drawn_as_a_whole_repaint_would_draw_it() -> None:
    """Only the changed cells are rendered into a row's cached line; the line must be what
    rendering the whole row afresh gives, on the cursor's row and on another."""
    from tests.ui.test_table_keys import NOW
    from tests.ui.test_table_keys import alloc as young

    now = [NOW]
    store = Store(clock=lambda: now[0])
    for i in range(5):
        store.upsert(Kind.ALLOCATION, young(i, age=3 * 3600 + 50 + i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        _, table = await allocs_view(pilot, app)
        table.focus()
        await pilot.pause(0.1)
        header = table.header_height
        before = [table.render_line(row + header) for row in range(5)]
        assert table.cursor_row == 0
        now[0] += 60  # every AGE moves a minute: 3h00m → 3h01m
        table.refresh_times()
        await pilot.pause(0.1)
        patched = [table.render_line(row + header) for row in range(5)]
        assert all("3h01m" in line.text for line in patched)
        assert patched != before
        table._clear_caches()
        table._update_count += 1
        fresh = [table.render_line(row + header) for row in range(5)]
        # the cursor's row keeps its highlight, and every segment is what a full render gives
        assert [list(line) for line in patched] == [list(line) for line in fresh]
        first = [next(iter(line)).style for line in patched[:2]]
        assert first[0] != first[1]  # the cursor's row is drawn as the cursor's


async def test_an_age_tick_splices_the_drawn_lines_as_a_full_render_draws_them() -> None:
    """In the first minute every AGE on screen changes each second: the drawn lines get the
    new text in the cells' place (no row rendered again), and each line, the cursor's too,
    is what rendering the table afresh gives (8s → 9s, 9s → 10s, 59s → 1m)."""
    from tests.ui.test_table_keys import NOW
    from tests.ui.test_table_keys import alloc as young

    now = [NOW]
    store = Store(clock=lambda: now[0])
    ages = (8, 9, 30, 59, 600)
    for i, age in enumerate(ages):
        store.upsert(Kind.ALLOCATION, young(i, age=age))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        table = next(p.table for p in app.screen.panes if p.kind is Kind.ALLOCATION)
        table.focus()
        await pilot.pause(0.1)
        header = table.header_height
        before = [table.render_line(row + header).text for row in range(len(ages))]
        rendered = spy(table, "_render_line_in_row")
        now[0] += 1
        app._refresh_ages()
        await pilot.pause(0.1)
        patched = [table.render_line(row + header) for row in range(len(ages))]
        assert rendered == []  # every changed line was spliced
        texts = [line.text for line in patched]
        assert [t != b for t, b in zip(texts, before, strict=True)] == [True] * 4 + [False]
        assert {"9s", "10s", "31s", "1m"} <= {w for t in texts for w in t.split()}
        # the changed rows' renders went (only the unchanged row's is left): a line not
        # cached is drawn again from the row's cells
        rendered_rows = {k[0] for k in table._row_render_cache.keys()}  # noqa: SIM118
        keys = [table._row_locations.get_key(row) for row in range(len(ages))]
        assert keys[-1] in rendered_rows and not set(keys[:-1]) & rendered_rows
        table._line_cache.clear()
        table._styles_cache.clear()
        from_rows = [table.render_line(row + header) for row in range(len(ages))]
        table._clear_caches()
        table._update_count += 1
        fresh = [table.render_line(row + header) for row in range(len(ages))]
        assert [list(line) for line in patched] == [list(line) for line in fresh]
        assert [list(line) for line in from_rows] == [list(line) for line in fresh]
        assert table.cursor_row == 0 and patched[0] != patched[1]


async def test_a_change_in_columns_not_shown_repaints_no_row() -> None:
    """New CPU and MEM figures for rows of a pane too narrow to show those columns change
    nothing on screen: no row is repainted."""
    from collections import deque

    app = allocs_app(12)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        pane = next(p.table for p in app.screen.panes if p.kind is Kind.ALLOCATION)
        assert "cpu" not in pane.columns
        repainted = spy(pane, "refresh_row")
        ids = {str(a.id) for a in app.store.items(Kind.ALLOCATION)}
        for aid in ids:  # as a stats poll leaves them
            app.stats_poller.tasks[aid] = {"server": deque([(250.0, 64 << 20)])}
        nomad_views._polled(app, ids)
        await pilot.pause(0.1)
        assert all("250" in " ".join(pane._texts[aid]) for aid in ids)  # the rows know them
        assert repainted == []


async def test_the_overview_under_a_view_draws_nothing_until_shown_again() -> None:
    """Textual counts the screen below the top one as visible, whatever the top's background:
    the overview under `:allocs` drew its changes and forwarded each repainted region to
    `:allocs` as a repaint (a whole-screen render when its footer was laid out again). Hidden,
    it draws nothing; shown again, its rows are today's."""
    from dataclasses import replace

    from jamtui.model import VM

    store = Store()
    vm = VM(101, "vs0", "pve1", "running", 0.1, 2, 2**30, 2**31)
    store.upsert(Kind.VM, vm)
    for i in range(3):
        store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        overview = app.screen
        await allocs_view(pilot, app)
        await pilot.pause(0.3)
        top = app.screen
        refreshed = spy(top, "refresh")
        for n in range(5):  # only the overview shows VMs
            store.upsert(Kind.VM, replace(vm, status="stopped" if n % 2 == 0 else "running",
                                          cpu=0.2 + n / 10))
            await pilot.pause(0.1)
        await pilot.pause(0.2)
        assert [regions for regions in refreshed if regions] == []  # none forwarded
        assert overview not in app._background_screens
        app.go_to_view("overview")
        await pilot.pause(0.3)
        assert app.screen is overview
        table = next(p.table for p in overview.panes if p.kind is Kind.VM)
        assert "stopped" in " ".join(str(c) for c in table.get_row_at(0))
        drawn = overview._compositor.render_update(full=True)  # what the terminal gets
        lines = ["".join(s.text for strip in row for s in strip) for row in drawn.strips]
        vm_line = next(line for line in lines if "vs0" in line)
        assert "stopped" in vm_line, vm_line  # it was running when `:allocs` opened


async def test_a_page_of_allocations_takes_turns_for_stats() -> None:
    """Every tick read the stats of every running allocation on screen (40 on `:allocs`, 13
    requests a second) and redrew each row. A tick reads the cursor's row and at most
    `STATS_PER_TICK` more, the longest unread first, so the page is read over a few ticks."""
    app = allocs_app(60)
    async with app.run_test(size=(160, 48)) as pilot:
        _, table = await allocs_view(pilot, app)
        table.focus()
        await pilot.pause(0.2)
        table.move_cursor(row=5)
        await pilot.pause(0.05)
        cursor = table.selected_id()
        shown = nomad_views.visible_alloc_ids(app)
        assert len(shown) > 2 * nomad_views.STATS_PER_TICK
        started = stats_watched(app)
        turns = -(-(len(shown) - 1) // nomad_views.STATS_PER_TICK)
        for _ in range(turns):
            nomad_views.poll_tick(app)
            await pilot.pause(0.05)
        assert len(started) >= turns  # (the app's own 3 s timer may add a tick)
        assert all(len(ids) <= nomad_views.STATS_PER_TICK + 1 for ids in started)
        assert cursor in started[0]  # the cursor's row goes first
        assert set().union(*started) == shown  # every row on screen, none off it


async def test_a_row_read_is_read_again_only_once_its_figures_are_row_every_ticks_old() -> None:
    """A page of a few rows was read whole every tick, the cursor's row too (the demo's 14
    rows: a request a second, and a redraw each tick, over half of `:allocs`' idle cost).
    Once every row has figures, a tick reads none until they are `ROW_EVERY` ticks old; then
    each is read again, the cursor's first."""
    app = allocs_app(12)
    async with app.run_test(size=(160, 48)) as pilot:
        _, table = await allocs_view(pilot, app)
        table.focus()
        await pilot.pause(0.2)
        cursor = table.selected_id()
        shown = nomad_views.visible_alloc_ids(app)
        assert len(shown) == 12 and cursor in shown
        poller = app.stats_poller
        poller.interval = 3600.0  # the test's ticks only (the app's timer is already set)
        started = stats_watched(app)

        def tick() -> set[str]:
            poller._busy = False  # no Nomad here: the worker's round ends at once
            nomad_views.poll_tick(app)
            return started[-1] if started else set()

        opening = tick()
        assert cursor in opening and len(opening) == nomad_views.STATS_PER_TICK + 1
        assert opening | tick() == shown  # the other 3
        read = len(started)
        for _ in range(nomad_views.ROW_EVERY - 2):
            tick()
        assert len(started) == read  # every row's figures fresh: nothing asked, no redraw
        again = tick()
        assert cursor in again and len(again) == nomad_views.STATS_PER_TICK + 1
        assert again | tick() == shown  # due again: each row's figures at most 15 s old
        # what scrolled away long ago is forgotten, what is on screen is not (its rows kept
        # their turns: forgotten, all were read again at the next tick)
        poller.read_at.update({f"gone-{n}": 0 for n in range(2001)})
        read = len(started)
        tick()
        assert len(started) == read and set(poller.read_at) == shown


async def test_new_stats_make_only_the_cpu_and_mem_cells_again() -> None:
    """A stats round went through the store's change path: every polled row's cells were all
    made again (and the row re-sorted) though only CPU and MEM had moved."""
    from collections import deque

    app = allocs_app(30)
    async with app.run_test(size=(160, 48)) as pilot:
        _, table = await allocs_view(pilot, app)
        await pilot.pause(0.2)
        ids = set(table._visible_ids()) & {str(a.id) for a in app.store.items(Kind.ALLOCATION)}
        made = spy(table, "_cells")
        for aid in ids:
            app.stats_poller.tasks[aid] = {"server": deque([(321.0, 64 << 20)])}
        nomad_views._polled(app, ids)
        await pilot.pause(0.1)
        assert made == []
        assert all("321MHz" in " ".join(table._texts[aid]) for aid in ids)
        assert all("321MHz" in " ".join(str(c) for c in table.get_row(aid)) for aid in ids)


async def test_a_table_being_removed_draws_nothing_on_the_ages_tick() -> None:
    """The AGE tick reached a table Textual was pruning (its component styles already
    cleared, its row renders not yet): `KeyError: No 'datatable--cursor' key` ended a CI
    run. A table no longer in the app patches no row."""
    now, app = young_app([50 + i for i in range(5)])
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        table = next(p.table for p in app.screen.panes if p.kind is Kind.ALLOCATION)
        assert table.row_count == 5
        await table.remove()
        patched: list[Any] = []
        table._patch_rows = patched.append  # type: ignore[method-assign]
        now[0] += 5  # every AGE moves: 50s → 55s
        table.refresh_times()
        assert patched == []


async def ticked_once(pilot: Any, app: JamApp, now: list[float], settle: float
                      ) -> tuple[Any, list[Any]]:
    """`:allocs` open and settled, then the clock a second on and its AGE tick: the table,
    and the regions of each `refresh` it made since it settled."""
    _, table = await allocs_view(pilot, app)
    await pilot.pause(settle)
    refreshed = spy(table, "refresh")
    now[0] += 1
    table.refresh_times()
    return table, refreshed


def age_column(table: Any) -> tuple[int, int]:
    """The AGE column's left edge on the table's line and its drawn width."""
    age_at = list(table.columns).index("age")
    x = sum(c.get_render_width(table) for c in table.ordered_columns[:age_at])
    return x, table.ordered_columns[age_at].get_render_width(table)


async def test_an_age_tick_repaints_the_age_cells_not_their_lines() -> None:
    """Each AGE tick repainted every young row's whole line: Textual's compositor then cut,
    styled and sent 160 cells a row to the terminal for a 3-character change. Only the
    changed cells' regions are repainted; what the screen shows is what a full render gives."""
    from textual.geometry import Region

    now, app = young_app([10 + i for i in range(5)])
    async with app.run_test(size=(160, 48)) as pilot:
        table, refreshed = await ticked_once(pilot, app, now, settle=0.1)
        await pilot.pause(0.1)
        x, width = age_column(table)
        repainted: list[Region] = [r for regions in refreshed for r in regions]
        # the five rows' AGE cells, one below the other: one region, those cells only
        header = table.header_height
        assert repainted == [Region(x, header, width, 5)]
        header = table.header_height
        shown = [table.render_line(row + header).text for row in range(5)]
        assert all(f"{11 + i}s" in line for i, line in enumerate(shown))
        drawn = app.screen._compositor.render_update(full=True)  # what the terminal has
        lines = ["".join(s.text for strip in row for s in strip) for row in drawn.strips]
        assert sum(1 for line in lines if "11s" in line) == 1


async def test_a_health_line_beneath_another_screen_is_not_made_each_second(
        monkeypatch: Any) -> None:
    """The overview's health line kept making itself each second beneath `:allocs`, for
    nobody. It waits while its screen is hidden and has its ages back once shown again."""
    from jamtui.model import BackendStatus, Health
    from jamtui.ui.widgets import HealthBar

    made: list[Any] = []
    real = HealthBar.refresh_health

    def counted(self: HealthBar) -> None:
        made.append(self)
        real(self)

    monkeypatch.setattr(HealthBar, "refresh_health", counted)
    now = [time.time()]
    store = Store(clock=lambda: now[0])
    store.set_backend(BackendStatus("consul", Health.UNKNOWN, "http://c", waiting_since=now[0]))
    for i in range(5):
        store.upsert(Kind.ALLOCATION, alloc(i))
    engine = fake_engine(store)
    engine.sources = {"consul": None}  # configured: its health is said
    app = JamApp(engine, start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        overview = app.screen
        bar = overview.query_one(HealthBar)
        assert "consul … waiting 0 s" in str(bar.render())
        await allocs_view(pilot, app)
        made.clear()
        await pilot.pause(2.3)  # two of its ticks
        assert bar not in made
        now[0] += 7
        app.pop_screen()
        await pilot.pause(1.3)
        assert app.screen is overview and bar in made
        assert "consul … waiting 7 s" in str(bar.render())


@pytest.mark.parametrize("noted", [None, 40])
async def test_an_age_tick_drops_the_changed_cells_renders_without_a_pass_over_the_cache(
        monkeypatch: Any, noted: int | None) -> None:
    """After browsing `:allocs` at 5,000 allocations DataTable's cell cache holds up to 10,000
    renders, and each AGE tick walked every one of them (a RowKey hashed in Python for each)
    to find the few dozen cells that changed. The keys are noted as the renders are made:
    a tick looks up the changed cells' renders and drops those, and only those; so too once
    more were noted than the bound (`noted`: evicted ones are forgotten, the cache's noted
    again)."""
    from textual.cache import LRUCache

    from jamtui.ui import live_table

    if noted is not None:
        monkeypatch.setattr(live_table, "CELL_KEYS_MAX", noted)
    now, app = young_app([10 + i for i in range(30)], test_ticks=True)
    async with app.run_test(size=(160, 48)) as pilot:
        _, table = await allocs_view(pilot, app)
        # a Resize that comes after the first paint (no class change restyles the view now)
        # moves DataTable's update count without a paint: the renders on screen are of the
        # count before, until drawn again
        table.refresh()
        await pilot.pause(0.2)
        cache = table._cell_render_cache
        age = table._column_key["age"]
        before = set(cache.keys())
        # (renders of an older update count are never asked for again)
        ages = {k for k in before if k[1] == age and k[6] == table._update_count
                and k[0] != table._header_row_key}
        assert len({k[0] for k in ages}) >= 20  # the rows on screen are drawn
        passes: list[Any] = []
        real = LRUCache.keys

        def keys(self: Any) -> Any:
            if self is cache:
                passes.append(self)
            return real(self)

        monkeypatch.setattr(LRUCache, "keys", keys)
        now[0] += 1
        table.refresh_times()
        monkeypatch.setattr(LRUCache, "keys", real)
        assert passes == []
        after = set(cache.keys())
        assert not ages & after  # every changed AGE render went
        assert before - ages <= after  # no other cell's
        await pilot.pause(0.1)
        header = table.header_height
        shown = [table.render_line(row + header).text for row in range(5)]
        assert all(f"{11 + i}s" in line for i, line in enumerate(shown))


async def test_a_line_an_age_tick_spliced_is_drawn_without_datatables_line_lookup(
        monkeypatch: Any) -> None:
    """Drawing a line an AGE tick changed went through DataTable's `render_line`: ten
    reactive and style reads to build its line cache key, for each line, half the cost of
    the line. The key is made once per drawing pass; what the pass draws, the cursor's row
    and the rows around it, is what DataTable draws afresh."""
    from textual.geometry import Region
    from textual.widgets import DataTable

    now, app = young_app([10 + i for i in range(8)], test_ticks=True)
    async with app.run_test(size=(160, 48)) as pilot:
        _, table = await allocs_view(pilot, app)
        table.move_cursor(row=2, animate=False)
        await pilot.pause(0.2)
        # the lines beside the cursor's are cached under the old cursor's place until they
        # are drawn again: the first tick after a move draws them through DataTable
        now[0] += 1
        table.refresh_times()
        await pilot.pause(0.2)
        looked: list[Any] = []
        real = DataTable._render_line

        def render_line(self: Any, y: int, *args: Any) -> Any:
            if self is table:
                looked.append(y)
            return real(self, y, *args)

        monkeypatch.setattr(DataTable, "_render_line", render_line)
        now[0] += 1
        table.refresh_times()
        await pilot.pause(0.2)
        assert looked == []  # the 8 changed lines: from the line cache, spliced
        header = table.header_height
        drawn = [table.render_line(row + header).text for row in range(8)]
        assert all(f"{12 + i}s" in line for i, line in enumerate(drawn))
        looked.clear()  # (outside a drawing pass: DataTable's own way)
        table._styles_cache.clear()  # every line of the next pass drawn
        whole = Region(0, 0, *table.size)
        passed = [list(line) for line in table.render_lines(whole)]
        assert [y for y in looked if y >= header] == list(range(header + 8, whole.height))
        looked.clear()  # (above: the lines below the last row, blank, which DataTable draws)
        table._clear_caches()
        table._update_count += 1
        table._styles_cache.clear()
        fresh = [list(line) for line in table.render_lines(whole)]
        assert len(looked) > 8  # DataTable drew them
        assert passed == fresh
        assert passed[header + 2] != passed[header + 1]  # the cursor's row, as the cursor's


async def test_each_line_drawn_passes_one_line_filter(monkeypatch: Any) -> None:
    """Textual applies every line filter to every line of every widget it draws in a frame
    (some 200 lines in an AGE tick's frame on the overview, however few cells changed): the
    guard against control characters was a second filter after Textual's ANSI one, so each
    line was looked up twice and each new line copied twice. One filter does both."""
    from rich.segment import Segment
    from rich.style import Style
    from textual.color import Color
    from textual.strip import Strip

    now, app = young_app([10 + i for i in range(5)])
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        filters = app.get_line_filters()
        assert len(filters) == 1 and app.get_line_filters()[0] is filters[0]
        applied: list[Any] = []
        real = Strip.apply_filter

        def apply_filter(self: Any, line_filter: Any, background: Any) -> Any:
            applied.append(line_filter)
            return real(self, line_filter, background)

        monkeypatch.setattr(Strip, "apply_filter", apply_filter)
        now[0] += 1
        JamApp._refresh_ages(app)
        await pilot.pause(0.2)
        monkeypatch.setattr(Strip, "apply_filter", real)
        assert applied and set(applied) == {filters[0]}
        # both at once: Textual's (a system colour made true colour), then the guard
        out = filters[0].apply([Segment("a\x1b]0;x\x07b", Style(color="red"))], Color(0, 0, 0))
        assert [s.text for s in out] == ["a]0;xb"]
        assert out[0].style is not None and out[0].style.color is not None
        assert out[0].style.color.triplet is not None  # true colour now
        assert not out[0].style.color.is_system_defined


async def test_an_age_tick_splices_only_the_lines_drawn_as_the_table_is_now(
        monkeypatch: Any) -> None:
    """DataTable caches a line (and a row's render) under the cursor's and the mouse's place:
    each place the cursor passed over left a copy of every line, and each AGE tick spliced
    all of them (64 lines for 14 rows once the cursor had gone down and up), though only the
    lines of the table as it is now can be drawn again as they are. The others go; the lines
    drawn are what a full render gives."""
    from jamtui.ui import live_table

    now, app = young_app([10 + i for i in range(8)], test_ticks=True)
    async with app.run_test(size=(160, 48)) as pilot:
        _, table = await allocs_view(pilot, app)
        table.focus()
        await pilot.pause(0.2)
        for key in ["down"] * 7 + ["up"] * 5:
            await pilot.press(key)
            await pilot.pause(0.02)
        await pilot.pause(0.2)
        assert table.cursor_row == 2
        header = table.header_height

        def state() -> tuple[Any, ...]:  # DataTable's line key beside y, as the table is now
            width, x = table.size.width, table.scroll_offset.x
            return (x, x + width, width, table.cursor_coordinate, table.hover_coordinate,
                    table.rich_style, table.cursor_type, table._show_hover_cursor,
                    table._update_count, table._pseudo_class_state)

        lines = [k for k in table._line_cache.keys()  # noqa: SIM118
                 if header <= k[0] < header + 8]
        current = [k for k in lines if k[1:] == state()]
        assert len(lines) > 2 * 8  # a copy per place passed
        assert current  # (the rows the cursor left or reached were drawn again)
        spliced = spy(live_table, "_splice")
        now[0] += 1
        table.refresh_times()
        assert len(spliced) == len(current)  # one line a row drawn as the table is now
        # (lines of an older update count, never asked for again, may stay)
        assert {k[1:] for k in table._line_cache.keys()  # noqa: SIM118
                if header <= k[0] < header + 8 and k[9] == table._update_count} == {state()}
        await pilot.pause(0.2)
        drawn = [list(table.render_line(row + header)) for row in range(8)]
        assert all(f"{11 + i}s" in "".join(s.text for s in line)
                   for i, line in enumerate(drawn))
        table._clear_caches()
        table._update_count += 1
        fresh = [list(table.render_line(row + header)) for row in range(8)]
        assert drawn == fresh


@pytest.mark.parametrize("view", ["overview", "allocs"])
async def test_an_age_tick_draws_only_the_widgets_around_its_cells(
        monkeypatch: Any, view: str) -> None:
    """Textual's compositor draws again (from their caches) every widget whose parent's
    region meets a region repainted: each AGE tick of a table drew the health bar, the
    footer and each of its keys, the pane's title and the overview's three other panes.
    Each of them is held in a box of its own (`widgets.Holder`): only the ticking pane and
    its table are drawn, and the screen is what a full render gives."""
    from textual.widget import Widget

    from jamtui.ui.widgets import HealthBar, KeyFooter, Pane

    now, app = young_app([10 + i for i in range(5)])
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        if view == "allocs":
            await allocs_view(pilot, app)
            await pilot.pause(0.2)
        drawn: list[Widget] = []
        real = Widget.render_lines

        def render_lines(self: Widget, crop: Any) -> Any:
            drawn.append(self)
            return real(self, crop)

        monkeypatch.setattr(Widget, "render_lines", render_lines)
        now[0] += 1
        JamApp._refresh_ages(app)
        await pilot.pause(0.2)
        monkeypatch.setattr(Widget, "render_lines", real)
        ticking = next(p for p in app.screen.panes if p.kind is Kind.ALLOCATION)
        assert ticking.table in drawn
        assert [w for w in drawn if isinstance(w, Pane)] == [ticking]
        others = [w for w in drawn if isinstance(w, HealthBar | KeyFooter)
                  or w.has_class("pane-title") or isinstance(w.parent, KeyFooter)]
        assert others == [], others
        lines = ["".join(s.text for strip in row for s in strip)
                 for row in app.screen._compositor.render_update(full=True).strips]
        assert sum(1 for line in lines if "11s" in line) == 1
        assert "quit" in lines[-1]  # the footer, where it was


async def cursor_walked(pilot: Any, app: JamApp, keys: list[str],
                        after: Any = None) -> Any:
    """`:allocs` open, its table focused and the cursor moved by `keys` (`after(table)` run
    after each): the table."""
    _, table = await allocs_view(pilot, app)
    table.focus()
    await pilot.pause(0.2)
    for key in keys:
        await pilot.press(key)
        await pilot.pause(0.02)
        if after is not None:
            after(table)
    return table


async def test_an_age_tick_walks_none_of_datatables_line_and_row_caches(
        monkeypatch: Any) -> None:
    """Each AGE tick walked the whole of DataTable's line cache, its row render cache and its
    row renderable cache (up to 1,000 keys each, a RowKey hashed in Python for each row
    render) to find the entries of the rows that changed. The line and row renders drawn
    are noted as they are drawn, the renderables go by their keys: no pass, and every line
    of another state (the cursor elsewhere) still goes. A line DataTable drew outside a
    drawing pass (not noted) makes the next tick note the caches again, once."""
    from textual.cache import LRUCache

    now, app = young_app([10 + i for i in range(8)], test_ticks=True)
    async with app.run_test(size=(160, 48)) as pilot:
        table = await cursor_walked(pilot, app, ["down"] * 5 + ["up"] * 3)
        await pilot.pause(0.2)  # (a copy of each line per place passed)
        header = table.header_height
        count = table._update_count
        lines = {k for k in table._line_cache.keys()  # noqa: SIM118
                 if header <= k[0] < header + 8 and k[9] == count}
        assert len(lines) > 2 * 8
        caches = {id(table._line_cache), id(table._row_render_cache),
                  id(table._row_renderable_cache)}
        passes: list[Any] = []
        real = LRUCache.keys

        def keys(self: Any) -> Any:
            if id(self) in caches:
                passes.append(self)
            return real(self)

        monkeypatch.setattr(LRUCache, "keys", keys)
        now[0] += 1
        table.refresh_times()
        assert passes == []
        state = table._line_state()
        left = {k for k in real(table._line_cache)
                if header <= k[0] < header + 8 and k[9] == count}
        assert left and {k[1:] for k in left} == {state}  # the others went
        await pilot.pause(0.2)
        table.render_line(header)  # drawn by DataTable itself: not noted
        now[0] += 1
        table.refresh_times()
        assert passes  # noted again from the caches
        passes.clear()
        await pilot.pause(0.2)
        now[0] += 1
        table.refresh_times()
        assert passes == []
        monkeypatch.setattr(LRUCache, "keys", real)
        await pilot.pause(0.2)
        drawn = [list(table.render_line(row + header)) for row in range(8)]
        table._clear_caches()
        table._update_count += 1
        fresh = [list(table.render_line(row + header)) for row in range(8)]
        assert drawn == fresh
        assert all(f"{13 + i}s" in "".join(s.text for s in line)
                   for i, line in enumerate(drawn))


async def test_an_age_tick_repaints_one_region_per_run_of_rows() -> None:
    """The AGE cells of rows one below the other are repainted as one region; a row whose
    AGE did not change (10m) splits the run: the regions cover the changed cells, and only
    them."""
    from textual.geometry import Region

    now, app = young_app([10, 11, 600, 12, 13, 14], test_ticks=True)
    async with app.run_test(size=(160, 48)) as pilot:
        table, refreshed = await ticked_once(pilot, app, now, settle=0.2)
        x, width = age_column(table)
        header = table.header_height
        old = next(row for row in range(6) if "10m" in table.render_line(row + header).text)
        assert 0 < old < 5
        repainted = [r for regions in refreshed for r in regions]
        assert sorted(repainted) == [Region(x, header, width, old),
                                     Region(x, header + old + 1, width, 5 - old)]
        await pilot.pause(0.1)
        lines = ["".join(s.text for strip in row for s in strip)
                 for row in app.screen._compositor.render_update(full=True).strips]
        assert all(sum(1 for line in lines if f" {age}s " in line) == 1
                   for age in (11, 12, 13, 14, 15))


def test_the_line_filter_turns_each_style_to_true_colour_once() -> None:
    """Textual's ANSI filter looked each segment's style up in its cache (the style and the
    background's Rich colour hashed) for every line of every frame; an AGE tick's lines keep
    their cells' style objects. The guard does the ANSI filter's work itself, each style
    object turned to true colour once per background: what Textual's filter gives, segment
    for segment, a segment already in true colour kept as it is."""
    from rich.segment import Segment
    from rich.style import Style
    from rich.terminal_theme import DEFAULT_TERMINAL_THEME
    from textual.color import Color
    from textual.filter import ANSIToTruecolor

    from jamtui.ui.app import NoControls

    textual = ANSIToTruecolor(DEFAULT_TERMINAL_THEME)
    ours = ANSIToTruecolor(DEFAULT_TERMINAL_THEME)
    guard = NoControls([ours])
    asked: list[Style] = []
    real = ours.truecolor_style

    def truecolor_style(style: Style, background: Any) -> Style:
        asked.append(style)
        return real(style, background)

    ours.truecolor_style = truecolor_style  # type: ignore[method-assign]
    styles = [Style(color="red"), Style(color="#102030", bgcolor="#000000"),
              Style(color="green", dim=True), Style(bold=True)]
    line = [Segment("a", styles[0]), Segment("b", None), Segment("c", styles[1]),
            Segment("d", styles[2]), Segment("e", styles[3]), Segment("e", styles[0])]
    for background in (Color(0, 0, 0), Color(0, 0, 0), Color(40, 40, 40)):
        out = guard.apply(line, background)
        assert out == textual.apply(line, background)
        assert out[2] is line[2]  # true colour already: the very segment
    assert len(asked) == 2 * len(styles)  # once per style and background, not per segment
    bad = [Segment("x\x1b[2Jy", styles[0])]
    assert [s.text for s in guard.apply(bad, Color(0, 0, 0))] == ["x[2Jy"]


async def test_the_drawn_keys_noted_stay_bounded_while_no_age_ticks(
        monkeypatch: Any) -> None:
    """The line and row render keys are noted as they are drawn; a settled table (its AGEs
    past their first minute) may see no tick for a long while as the cursor goes about, each
    move a new key for every line: past `DRAWN_KEYS_MAX` the notes are forgotten, and the
    next tick notes the caches again (its lines still what a full render gives)."""
    from jamtui.ui import live_table

    monkeypatch.setattr(live_table, "DRAWN_KEYS_MAX", 40)
    now, app = young_app([10 + i for i in range(8)], test_ticks=True)
    async with app.run_test(size=(160, 48)) as pilot:
        noted: list[int] = []  # after each move (two lines in a new state)
        table = await cursor_walked(pilot, app, ["down"] * 7 + ["up"] * 7, lambda t: (
            noted.append(sum(len(keys) for keys in t._lines_noted.values()))))
        assert len(noted) == 14 and max(noted) <= 40
        assert not table._drawn_whole
        await pilot.press("down")
        await pilot.pause(0.1)
        now[0] += 1
        table.refresh_times()
        header = table.header_height
        state = table._line_state()
        assert {k[1:] for k in table._line_cache.keys()  # noqa: SIM118
                if header <= k[0] < header + 8 and k[9] == table._update_count} == {state}
        await pilot.pause(0.2)
        drawn = [list(table.render_line(row + header)) for row in range(8)]
        table._clear_caches()
        table._update_count += 1
        assert drawn == [list(table.render_line(row + header)) for row in range(8)]
