"""Tables at k9s's level (#14): a stable order per view with rows added later in their sorted
place, sorting by keyboard on typed keys (kept per view for the session), the navigation
keys, AGE ticking (each second in its first minute, then each minute), widths that follow
the content both ways, the columns that stay on an 80-column terminal, and a 5,000-row view
whose rows are all in at once (#17)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen

from jamtui.model import VM, Allocation, HAProxyRow, Kind, NomadNode, TaskInfo
from jamtui.store import Store
from jamtui.ui import live_table
from jamtui.ui.app import JamApp
from jamtui.ui.live_table import LiveTable
from jamtui.ui.nav_table import NavTable
from jamtui.ui.screens import LabScreen
from tests.helpers import fake_engine

NOW = 1_800_000_000.0


def alloc(i: int, job: str = "load", index: int | None = None, age: float = 30.0,
          status: str = "running", name: str = "") -> Allocation:
    index = i if index is None else index
    return Allocation(f"{i:08x}-0000-4000-8000-000000000000", name or f"{job}.web[{index}]",
                      job, "web", "n", "vs0", status, "run", create_time=NOW - age,
                      tasks=(TaskInfo("server", "running"),))


def vm(vmid: int, name: str = "") -> VM:
    return VM(vmid, name or f"vm{vmid}", "pve1", "running", 0.1, 2, 2**30, 2**31)


def node(name: str, eligibility: str = "eligible") -> NomadNode:
    return NomadNode(f"id-{name}", name, "10.0.0.1", "ready", eligibility, False)


async def view(pilot: Any, app: JamApp, name: str) -> LiveTable:
    app.go_to_view(name)
    await pilot.pause(0.2)
    screen = app.screen
    assert isinstance(screen, LabScreen)
    table = screen.panes[0].table
    table.focus()
    await pilot.pause(0.05)
    return table


def column(table: LiveTable, key: str) -> list[str]:
    """What a column shows, top to bottom (every row, drawn or not)."""
    at = [c.key for c in table.columns_spec].index(key)
    return [table.get_row_at(n) and table._texts[str(table._row_locations.get_key(n).value)][at]
            for n in range(table.row_count)]


def header(table: LiveTable) -> str:
    return table.render_line(0).text


def shown(table: LiveTable) -> list[str]:
    return [table.render_line(y).text for y in range(table.size.height)]


async def until(pilot: Any, cond: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := cond():
            return value
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


async def test_default_order_and_rows_added_later_in_their_sorted_place() -> None:
    store = Store(clock=lambda: NOW)
    for vmid in (300, 9000, 100, 202):
        store.upsert(Kind.VM, vm(vmid))
    for i, (job, index) in enumerate([("web", 10), ("api", 1), ("web", 2), ("api", 0)]):
        store.upsert(Kind.ALLOCATION, alloc(i, job, index))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause(0.2)
        overview = app.screen
        assert isinstance(overview, LabScreen)
        vms = next(p.table for p in overview.panes if p.kind is Kind.VM)
        allocs = next(p.table for p in overview.panes if p.kind is Kind.ALLOCATION)
        assert column(vms, "vmid") == ["100", "202", "300", "9000"]  # numbers, not text
        # allocations by job, then index: web[2] before web[10]
        assert column(allocs, "name") == ["api.web[0]", "api.web[1]", "web.web[2]",
                                          "web.web[10]"]
        assert "ID ▲" in header(vms) and "NAME ▲" in header(allocs)
        store.upsert(Kind.VM, vm(150))
        store.upsert(Kind.VM, vm(10000))
        store.upsert(Kind.ALLOCATION, alloc(9, "web", 3))
        await until(pilot, lambda: vms.row_count == 6 and allocs.row_count == 5)
        assert column(vms, "vmid") == ["100", "150", "202", "300", "9000", "10000"]
        assert column(allocs, "name")[2:4] == ["web.web[2]", "web.web[3]"]


async def test_sorting_by_keyboard_on_typed_keys_kept_per_view() -> None:
    ages = {"a": 5, "b": 3599, "c": 120, "d": 12 * 86400 + 3 * 3600, "e": 59}
    store = Store(clock=lambda: NOW)
    for i, (name, seconds) in enumerate(ages.items()):
        store.upsert(Kind.ALLOCATION, alloc(i, name, 0, age=seconds))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 45)) as pilot:
        table = await view(pilot, app, "allocs")
        keys = [c.key for c in table.columns_spec]
        assert table._sort == ("name", False)
        await pilot.press(*[">"] * (keys.index("age") - keys.index("name")))
        assert table._sort == ("age", False)
        assert "AGE ▲" in header(table) and "NAME ▲" not in header(table)
        # by duration: as text, "12d03h" would come first and "5s" after "3m00s"
        assert column(table, "age") == ["5s", "59s", "2m", "59m", "12d03h"]
        await pilot.press("exclamation_mark")
        assert "AGE ▼" in header(table)
        assert column(table, "age") == ["12d03h", "59m", "2m", "59s", "5s"]
        await pilot.press("<")
        assert table._sort == ("node", False) and "NODE ▲" in header(table)
        await pilot.press(">")
        # the choice outlives the view: back to the overview and into :allocs again
        await pilot.press("escape")
        await pilot.pause(0.1)
        overview = app.screen
        assert isinstance(overview, LabScreen) and overview.name == "overview"
        pane = next(p.table for p in overview.panes if p.kind is Kind.ALLOCATION)
        assert pane._sort == ("name", False)  # the overview's pane is another view
        again = await view(pilot, app, "allocs")
        assert again is not table
        assert again._sort == ("age", False) and "AGE ▲" in header(again)
        assert column(again, "age")[0] == "5s"


async def test_navigation_keys() -> None:
    store = Store(clock=lambda: NOW)
    for i in range(100):
        store.upsert(Kind.VM, vm(100 + i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(120, 30)) as pilot:
        table = await view(pilot, app, "vms")
        page = (table.scrollable_content_region.height - 1) // 2
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == 99
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("end")
        assert table.cursor_row == 99
        await pilot.press("home")
        assert table.cursor_row == 0
        await pilot.press("ctrl+d")
        assert table.cursor_row == page
        await pilot.press("ctrl+d", "ctrl+u")
        assert table.cursor_row == page
        await pilot.press("pagedown")
        assert table.cursor_row > page
        await pilot.press("pageup", "ctrl+u")
        assert table.cursor_row == 0
        assert table.selected_id() == "100"


async def test_a_second_that_changes_no_age_repaints_no_row() -> None:
    """Idle, the clock's tick redraws only what it changed: past its first minute an AGE
    says whole minutes, so a second that crosses no minute repaints no row (each young row
    was repainted every second: most of the cockpit's idle CPU, #17); the minute that
    changes them repaints those rows, and only those."""
    now = [NOW]
    store = Store(clock=lambda: now[0])
    for i in range(20):
        store.upsert(Kind.ALLOCATION, alloc(i, age=5 * 60 + i))  # 5m00s ... 5m19s
    store.upsert(Kind.ALLOCATION, alloc(20, age=3 * 3600 + 50))  # 3h00m50s
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 45)) as pilot:
        table = await view(pilot, app, "allocs")
        assert set(column(table, "age")) == {"5m", "3h00m"}
        repainted: list[int] = []  # the lines repainted (an AGE cell's region, #17)
        real = table.refresh

        def counting(*regions: Any, **kw: Any) -> Any:
            repainted.extend(y for r in regions for y in range(r.y, r.y + r.height))
            return real(*regions, **kw)

        table.refresh = counting  # type: ignore[method-assign]
        for _ in range(5):  # 5m01s ... 5m24s: the same minutes
            now[0] += 1
            table.refresh_times()
            await pilot.pause(0)
        assert repainted == []
        now[0] += 40  # 5m45s ... 6m04s, and 3h01m35s
        table.refresh_times()
        await pilot.pause(0)
        ages = column(table, "age")
        assert ages.count("6m") == 5 and ages.count("5m") == 15 and "3h01m" in ages
        assert len(repainted) == 6  # the rows whose minute changed, no other


async def test_age_ticks_each_second_and_fits_its_widest() -> None:
    now = [NOW]
    store = Store(clock=lambda: now[0])
    store.upsert(Kind.ALLOCATION, alloc(0, "a", 0, age=41))
    store.upsert(Kind.ALLOCATION, alloc(1, "b", 0, age=3 * 3600 + 300))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 45)) as pilot:
        table = await view(pilot, app, "allocs")
        assert column(table, "age") == ["41s", "3h05m"]
        now[0] += 1
        await until(pilot, lambda: column(table, "age")[0] == "42s", timeout=3)
        assert column(table, "age")[1] == "3h05m"  # its unit is the minute
        # the column fits 59m59s and 12d03h from the start: nothing beside it moves
        assert table.columns["age"].get_render_width(table) >= 6 + 2
        now[0] += 12 * 86400
        await until(pilot, lambda: column(table, "age")[0] == "12d00h", timeout=3)
        assert any("12d00h" in line for line in shown(table))


async def test_widths_follow_the_content_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_table, "SHRINK_AFTER", 0.2)
    store = Store(clock=lambda: NOW)
    for name in ("vs0", "vs1"):
        store.upsert(Kind.NOMAD_NODE, node(name))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 45)) as pilot:
        table = await view(pilot, app, "nodes")
        narrow = table.columns["eligibility"].content_width
        store.upsert(Kind.NOMAD_NODE, node("vs1", "ineligible"))
        await until(pilot, lambda: any("⊘ ineligible" in line for line in shown(table)))
        assert table.columns["eligibility"].content_width == len("⊘ ineligible")
        store.upsert(Kind.NOMAD_NODE, node("vs1", "eligible"))
        # the column gives the width back once its widest cell has been narrower a while
        await until(pilot, lambda: table.columns["eligibility"].content_width == narrow)


async def test_an_80_column_overview_keeps_status_and_node_and_reaches_links() -> None:
    store = Store(clock=lambda: NOW)
    for i in range(5):
        store.upsert(Kind.ALLOCATION, alloc(i, "node-exporter-with-a-long-name", i,
                                            status="complete" if i == 2 else "running"))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        overview = app.screen
        assert isinstance(overview, LabScreen)
        table = next(p.table for p in overview.panes if p.kind is Kind.ALLOCATION)
        head = header(table)
        assert "STATUS" in head and "NODE" in head, head
        assert "ID" not in head.split() and "CPU" not in head
        assert any("✓ complete" in line for line in shown(table))  # a status is never cut
        assert any("…" in line for line in shown(table))  # the name gives way, visibly
        footer = " ".join(str(k.render()) for k in app.screen.query("FooterKey"))
        assert footer.index("keys") < footer.index("quit")  # `?` among the first keys
        table.focus()
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "DetailScreen")
        await pilot.pause(0.2)
        side = app.screen.query_one("#detail-side")
        assert side.display and side.region.height > 2 and side.region.width > 20


async def test_5000_rows_are_all_in_at_once_with_cells_only_for_those_drawn() -> None:
    store = Store(clock=lambda: NOW)
    with store.batch():
        for i in range(5000):
            store.upsert(Kind.ALLOCATION, alloc(i, f"job{i % 50}", i // 50, age=i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause(0.2)
        overview = app.screen
        assert isinstance(overview, LabScreen)
        pane = next(p.table for p in overview.panes if p.kind is Kind.ALLOCATION)
        made: list[str] = []
        loaded: list[tuple[int, int]] = []  # (rows in the table, cells made) after a load
        real, real_reload = LiveTable._cells, LiveTable.reload

        def counting(self: LiveTable, obj: Any) -> list[Any]:
            if self is not pane:  # the overview's pane fills its own rows meanwhile
                made.append(obj.id)
            return real(self, obj)

        def reload(self: LiveTable) -> None:
            real_reload(self)
            loaded.append((self.row_count, len(made)))

        LiveTable._cells = counting  # type: ignore[method-assign]
        LiveTable.reload = reload  # type: ignore[method-assign]
        try:
            app.go_to_view("allocs")
            await pilot.pause(0)
            screen = app.screen
            assert isinstance(screen, LabScreen)
            table = screen.panes[0].table
            # every row is in (and sorted once) before more than a screenful of cells is made
            assert len(loaded) == 1 and loaded[0][0] == 5000 and loaded[0][1] <= 100, loaded
            await pilot.press("ctrl+end")
            await until(pilot, lambda: any("job49.web[99]" in line for line in shown(table)))
            title = str(screen.panes[0].query("Label").first().render())
            assert "[5000]" in title
        finally:
            LiveTable._cells = real  # type: ignore[method-assign]
            LiveTable.reload = real_reload  # type: ignore[method-assign]


async def test_a_row_whose_key_changes_moves_only_when_its_place_does() -> None:
    store = Store(clock=lambda: NOW)

    def server(name: str, sessions: int) -> HAProxyRow:
        return HAProxyRow("web", name, "server", "UP", sessions=sessions)

    for name, sessions in (("a", 10), ("b", 30), ("c", 50)):
        store.upsert(Kind.HAPROXY, server(name, sessions))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 45)) as pilot:
        table = await view(pilot, app, "haproxy")
        table.set_sort("sessions", False)
        await pilot.pause(0.1)
        count = table._update_count
        store.upsert(Kind.HAPROXY, server("b", 31))  # still the middle one
        await until(pilot, lambda: column(table, "sessions") == ["10", "31", "50"])
        assert table._update_count == count  # its own line repainted, nothing placed again
        store.upsert(Kind.HAPROXY, server("b", 99))  # now the busiest
        await until(pilot, lambda: column(table, "name") == ["a", "c", "b"])


async def test_screen_tables_have_the_navigation_keys_and_the_screen_keeps_its_own() -> None:
    class Deployments(Screen[None]):  # as :deployments: `g` promotes a group there
        BINDINGS = [Binding("g", "promote", "promote group")]
        promoted = 0

        def compose(self) -> ComposeResult:
            yield NavTable(cursor_type="row")

        def on_mount(self) -> None:
            table = self.query_one(NavTable)
            table.add_column("N")
            for n in range(60):
                table.add_row(str(n))
            table.focus()

        def action_promote(self) -> None:
            self.promoted += 1

    class Small(App[None]):
        def on_mount(self) -> None:
            self.push_screen(Deployments())

    app = Small()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        screen = app.screen
        assert isinstance(screen, Deployments)
        table = screen.query_one(NavTable)
        await pilot.press("j", "j", "k")
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == 59
        await pilot.press("g")  # the screen's key, not the table's
        assert screen.promoted == 1 and table.cursor_row == 59
        await pilot.press("home")
        assert table.cursor_row == 0
        await pilot.press("ctrl+d")
        assert table.cursor_row > 5


async def test_a_filter_makes_each_row_once_not_at_every_keystroke() -> None:
    store = Store(clock=lambda: NOW)
    for i in range(300):
        store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 45)) as pilot:
        table = await view(pilot, app, "allocs")
        made: list[str] = []
        real = table._cells

        def counting(obj: Any) -> list[Any]:
            made.append(obj.id)
            return real(obj)

        table._cells = counting  # type: ignore[method-assign]
        table.set_filter("web[1")
        assert table.row_count == 111  # web[1], web[10..19], web[100..199]
        first = len(made)
        assert first <= 300
        table.set_filter("web[12")
        table.set_filter("web[1")
        assert table.row_count == 111
        # matched on what each row showed (the objects unchanged): cells made again only for
        # the rows drawn, a screenful a keystroke
        assert len(made) - first <= 2 * 61
        store.upsert(Kind.ALLOCATION, alloc(150, status="failed"))
        await until(pilot, lambda: "failed" in " ".join(c.plain for c in table.get_row(
            alloc(150).id)))
        table.set_filter("failed")
        assert table.row_count == 1


async def test_namespace_column_follows_nomad_namespaces_after_the_first_draw() -> None:
    """Nomad's second namespace can come after the tables were drawn (created later, or read
    after the allocations): NAMESPACE then shows, with each row's, and goes with it."""
    from dataclasses import replace

    from jamtui.model import Namespace

    store = Store(clock=lambda: NOW)
    store.upsert(Kind.NAMESPACE, Namespace("default"))
    store.upsert(Kind.ALLOCATION, alloc(1, "web", 0))
    store.upsert(Kind.ALLOCATION, replace(alloc(2, "batch", 0), namespace="batch"))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 45)) as pilot:
        table = await view(pilot, app, "allocs")
        await pilot.press(">")  # a sort chosen by hand is kept through the rebuild
        chosen = table._sort
        assert "NAMESPACE" not in header(table)
        store.upsert(Kind.NAMESPACE, Namespace("batch"))
        await until(pilot, lambda: "NAMESPACE" in header(table))
        assert sorted(column(table, "namespace")) == ["batch", "default"]
        assert table._sort == chosen and table.row_count == 2
        store.remove(Kind.NAMESPACE, "batch")
        await until(pilot, lambda: "NAMESPACE" not in header(table))
        assert table.row_count == 2
