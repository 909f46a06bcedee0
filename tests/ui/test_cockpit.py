"""The cockpit against the lab: screens, keys and actions through Textual's pilot. Each action
reaches the lab, and the lab's change comes back to the screen."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from textual.widgets import Static

from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.ui.app import JamApp
from jamtui.ui.screens import DetailScreen, HelpScreen, LabScreen


async def until(pilot: Any, cond: Callable[[], Any], timeout: float = 8.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


def text_of(renderable: Any) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def detail_text(app: JamApp) -> str:
    screen = app.screen
    if not isinstance(screen, DetailScreen):
        return ""
    found = screen.query("#detail")
    return text_of(found.first(Static).content) if found else ""


def pane(app: JamApp, kind: Kind) -> Any:
    screen = app.screen
    assert isinstance(screen, LabScreen)
    return next(p for p in screen.panes if p.kind is kind)


async def test_overview_fills_its_four_panes_and_health(lab_engine: tuple[Lab, Engine]) -> None:
    _lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        for kind in (Kind.HYPERVISOR, Kind.VM, Kind.SERVICE, Kind.ALLOCATION):
            await until(pilot, lambda k=kind: pane(app, k).table.row_count > 0)
        assert pane(app, Kind.HYPERVISOR).table.row_count == 2
        assert pane(app, Kind.ALLOCATION).table.row_count == 14  # staging's too
        text = app.screen.query_one("HealthBar").render()
        assert "nomad" in str(text) and "consul" in str(text)


async def ready(pilot: Any, app: JamApp) -> None:
    await until(pilot, lambda: pane(app, Kind.ALLOCATION).table.row_count > 0
                and pane(app, Kind.VM).table.row_count > 0)


def focus_row(table: Any, id_: str) -> None:
    table.focus()
    table.move_cursor(row=table.get_row_index(id_))


async def test_views_filter_detail_and_back(lab_engine: tuple[Lab, Engine]) -> None:
    _lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        await pilot.press("colon", *"allocs", "enter")
        await until(pilot, lambda: app.screen.name == "allocs")
        table = pane(app, Kind.ALLOCATION).table
        await until(pilot, lambda: table.row_count == 14)
        await pilot.press("slash", *"example")
        await until(pilot, lambda: table.row_count == 3)
        await pilot.press("enter")  # leave the filter bar, keep the filter
        table.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        body = text_of(app.screen.query_one("#detail", Static).content)
        assert "example.web[" in body and "server" in body  # the alloc and its task
        await pilot.press("escape")
        await until(pilot, lambda: app.screen.name == "allocs")
        assert table.row_count == 3  # the filter is still there
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await pilot.press("colon", *"jobs", "enter")
        await until(pilot, lambda: pane(app, Kind.JOB).table.row_count == 7)  # every namespace
        await pilot.press("colon", *"nodes", "enter")
        await until(pilot, lambda: pane(app, Kind.NOMAD_NODE).table.row_count == 3)
        await pilot.press("colon", *"storage", "enter")
        # Proxmox storages (6), Nomad host volumes (2 on each of 3 clients), one CSI volume
        await until(pilot, lambda: pane(app, Kind.STORAGE).table.row_count == 13)


async def test_restart_reaches_the_lab_and_comes_back(lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        table = pane(app, Kind.ALLOCATION).table
        alloc = next(a for a in engine.store.items(Kind.ALLOCATION) if a.job_id == "example")
        focus_row(table, alloc.id)
        await pilot.press("r")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")

        def restarts() -> int:
            return lab.call(lambda: lab.world.allocs[alloc.id].task_states["server"].restarts)

        await until(pilot, lambda: restarts() == 1)
        # the change comes back through the event stream to the store and the row
        await until(pilot, lambda: engine.store.get(Kind.ALLOCATION, alloc.id).tasks[0]
                    .restarts == 1)


async def test_vm_shutdown_asks_and_no_means_nothing(lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        vm = next(v for v in engine.store.items(Kind.VM) if v.name == "vs2")
        table = pane(app, Kind.VM).table
        focus_row(table, vm.id)
        await pilot.press("x")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        question = text_of(app.screen.query(Static).first().content)
        assert "vs2" in question
        await pilot.press("n")
        await pilot.pause(0.5)
        assert lab.call(lambda: lab.world.vms[vm.vmid].status) == "running"
        focus_row(table, vm.id)
        await pilot.press("x")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await until(pilot, lambda: lab.call(lambda: lab.world.vms[vm.vmid].status) == "stopped",
                    timeout=15)
        await until(pilot, lambda: engine.store.get(Kind.VM, vm.id).status == "stopped",
                    timeout=15)


async def test_read_only_refuses_actions(lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    app = JamApp(engine, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        vm = next(v for v in engine.store.items(Kind.VM) if v.name == "vs1")
        focus_row(pane(app, Kind.VM).table, vm.id)
        await pilot.press("X")
        await pilot.pause(0.3)
        assert type(app.screen).__name__ != "ConfirmScreen"
        assert lab.call(lambda: lab.world.vms[vm.vmid].status) == "running"


async def test_a_fault_marks_panes_stale_and_they_recover(lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        services = pane(app, Kind.SERVICE)
        # Consul's whole first picture on screen (its services arrive as each is read)
        await until(pilot, lambda: engine.sources["consul"].ready.is_set())
        rows = await until(pilot, lambda: services.table.row_count == engine.store.count(
            Kind.SERVICE) and services.table.row_count)
        await asyncio.to_thread(lab.set_fault, "consul", "down")
        await until(pilot, lambda: services.has_class("-stale"))
        assert services.table.row_count == rows  # kept, not cleared
        await asyncio.to_thread(lab.clear_fault)
        await until(pilot, lambda: not services.has_class("-stale"), timeout=40)


async def test_consul_node_maintenance_on_and_off(lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        await pilot.press("colon", *"members", "enter")
        await until(pilot, lambda: app.screen.name == "members")
        table = pane(app, Kind.MEMBER).table
        await until(pilot, lambda: "vs1" in table._texts)

        def in_lab() -> bool:
            return lab.call(lambda: ("vs1", "_node_maintenance") in lab.world.checks)

        for want in (True, False):
            focus_row(table, "vs1")
            await pilot.press("m")
            await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
            await pilot.press("y")
            await until(pilot, lambda w=want: in_lab() is w)
            await until(pilot, lambda w=want: engine.store.get(Kind.MEMBER, "vs1")
                        .maintenance is w)
            await until(pilot, lambda w=want: ("maintenance" in " ".join(
                table._texts["vs1"])) is w)


async def test_command_palette_finds_views_objects_and_actions(
        lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Go to Nomad jobs")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.name == "jobs")

        vm = next(v for v in engine.store.items(Kind.VM) if v.name == "vs0")
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*f"Stop VM (hard): VM {vm.vmid} vs0")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await until(pilot, lambda: lab.call(lambda: lab.world.vms[vm.vmid].status) == "stopped",
                    timeout=15)


async def follow(pilot: Any, app: JamApp, kind: Kind) -> None:
    """Pick the detail screen's first cross-link to an object of `kind`."""
    from textual.widgets import OptionList

    options = app.screen.query_one(OptionList)
    index = next(i for i, o in enumerate(options.options)
                 if (o.id or "").startswith(f"{kind.value}|"))
    options.focus()
    options.highlighted = index
    before = app.screen
    await pilot.press("enter")
    await until(pilot, lambda: app.screen is not before
                and isinstance(app.screen, DetailScreen) and app.screen.kind is kind
                and detail_text(app))


async def test_detail_cross_links_from_allocation_to_hypervisor_and_service(
        lab_engine: tuple[Lab, Engine]) -> None:
    _lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        await until(pilot, lambda: engine.store.count(Kind.INSTANCE) > 0)
        alloc = next(a for a in engine.store.items(Kind.ALLOCATION) if a.job_id == "api")
        app.open_detail(Kind.ALLOCATION, alloc.id)
        body = await until(pilot, lambda: detail_text(app))
        assert "Task events" in body and "Started" in body and alloc.node_name in body
        await follow(pilot, app, Kind.NOMAD_NODE)
        await follow(pilot, app, Kind.VM)
        body = await until(pilot, lambda: detail_text(app))
        assert "192.168.42." in body and "Serf Health Status" in body  # IP and checks
        await follow(pilot, app, Kind.HYPERVISOR)
        body = await until(pilot, lambda: detail_text(app))
        assert "Storage" in body and "local-lvm" in body and alloc.node_name in body
        for _ in range(3):
            await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen)
                    and app.screen.kind is Kind.ALLOCATION)

        app.open_detail(Kind.SERVICE, "db")
        body = await until(pilot, lambda: isinstance(app.screen, DetailScreen)
                           and app.screen.kind is Kind.SERVICE and detail_text(app))
        assert "1 proxies" in body  # the Connect sidecar
        assert "api" in body and "allow" in body and "deny" in body  # its intentions


async def test_routes_view_marks_the_broken_hop_and_traces(
        lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        await until(pilot, lambda: engine.store.count(Kind.ROUTE) > 0
                    and engine.store.count(Kind.HAPROXY) > 0)
        await pilot.press("colon", *"routes", "enter")
        await until(pilot, lambda: app.screen.name == "routes")
        screen: Any = app.screen
        await until(pilot, lambda: "example.jamfox.dev/" in screen.chains
                    and screen.chains["example.jamfox.dev/"].whole)
        table = screen.query_one("#chains")
        table.move_cursor(row=table.get_row_index("example.jamfox.dev/"))
        tree = await until(pilot, lambda: "instance vs" in text_of(
            screen.query_one("#chain", Static).content) and "dns example" in text_of(
            screen.query_one("#chain", Static).content) and text_of(
            screen.query_one("#chain", Static).content))
        assert "backend fabio" in tree and "hv pve" in tree
        assert "✓ dns example.jamfox.dev" in tree  # resolved from the start, before any `t`

        # every instance of example fails its check: the row turns red, the hop explains
        allocs = [a.id for a in engine.store.items(Kind.ALLOCATION)
                  if a.job_id == "example" and a.client_status == "running"]
        for alloc_id in allocs:
            await asyncio.to_thread(lab.call, lab.world.instance_health, alloc_id, False)
        chain = await until(pilot, lambda: not screen.chains["example.jamfox.dev/"].whole
                            and screen.chains["example.jamfox.dev/"])
        assert chain.broken.layer in ("route", "service")
        for alloc_id in allocs:
            await asyncio.to_thread(lab.call, lab.world.instance_health, alloc_id, True)
        await until(pilot, lambda: screen.chains["example.jamfox.dev/"].whole, timeout=15)

        await pilot.press("t")  # DNS and one real request through the lab's HAProxy
        traced = await until(pilot, lambda: screen.traced.get("example.jamfox.dev/"),
                             timeout=15)
        assert traced.probe is not None and traced.probe.status == 200
        assert traced.resolutions[0].addresses  # the lab's DNS answered

        # the job stops: its host stays listed, broken at the route that lost it, since when
        await asyncio.to_thread(lab.call, lab.world.stop_job, "example")
        row = await until(pilot, lambda: screen.rows.get("example.jamfox.dev/") is not None
                          and screen.rows["example.jamfox.dev/"].gone
                          and screen.rows["example.jamfox.dev/"], timeout=15)
        assert row.chain.broken.layer == "route" and "gone since" in row.chain.broken.problem
        cells = [text_of(c) for c in table.get_row("example.jamfox.dev/")]
        assert any("✗ gone" in c for c in cells)
        assert any(":" in c and "s)" in c for c in cells)  # SINCE: 12:03:44 (5s)
        table.move_cursor(row=table.get_row_index("example.jamfox.dev/"))
        await pilot.press("x")  # a gone host: off the list, nothing done to the lab
        await until(pilot, lambda: "example.jamfox.dev/" not in screen.rows)
        assert "example.jamfox.dev/" not in table.rows


async def test_log_viewer_follows_searches_filters_and_saves(
        lab_engine: tuple[Lab, Engine], tmp_path: Any) -> None:
    from jamtui.ui.log_view import LogLines, LogScreen

    lab, engine = lab_engine
    app = JamApp(engine, read_only=True)  # reading logs is allowed read-only
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        alloc = next(a for a in engine.store.items(Kind.ALLOCATION) if a.job_id == "example")
        focus_row(pane(app, Kind.ALLOCATION).table, alloc.id)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen))
        lines = app.screen.query_one(LogLines)
        await until(pilot, lambda: any("started on" in e.text for e in lines.entries))
        for i in range(30):
            await asyncio.to_thread(lab.call, lab.world.log_line, alloc.id, "server",
                                    f"needle-{i % 3} line {i}")
        await until(pilot, lambda: any("line 29" in e.text for e in lines.entries))
        assert lines.follow and lines.scroll_offset.y == lines.max_scroll_y  # following

        await pilot.press("slash", *"needle-2", "enter")
        assert lines.search is not None and len(lines.matches()) == 10
        assert not lines.follow  # a search jumps to the first match and pauses
        await pilot.press("n", "n", "N")
        await pilot.press("escape")  # clears the search
        await pilot.press("ampersand", *"!needle", "enter")
        assert all("needle" not in e.text for e in lines.shown_entries())
        await pilot.press("escape")
        await pilot.press("ampersand", *"needle-1", "enter")
        assert len(lines.shown_entries()) == 10
        target = tmp_path / "saved.log"
        await pilot.press("s", *str(target), "enter")
        await until(pilot, lambda: target.exists())
        assert len(target.read_text().splitlines()) == 10
        await pilot.press("f")
        assert lines.follow
        await pilot.press("escape", "escape")
        await until(pilot, lambda: not isinstance(app.screen, LogScreen))
