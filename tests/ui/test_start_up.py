"""The cockpit's start-up: the cyclic collector stays off until the first picture is in
(`jamtui/heap.py`), and is on again then, or after `HOLD_MAX` seconds whatever happens."""

from __future__ import annotations

import gc
from typing import Any

from jamtui import heap
from jamtui.store import Store
from jamtui.ui import app as app_module
from jamtui.ui.app import JamApp
from tests.helpers import fake_engine


async def _collector_on_again(engine: Any) -> bool:
    heap.hold()
    try:
        assert not gc.isenabled()
        app = JamApp(engine, start_engine=False)
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(100):
                if gc.isenabled():
                    break
                await pilot.pause(0.05)
            return gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        heap.release(freeze=False)
        gc.enable()
        gc.unfreeze()  # the rest of the test run collects as before


async def test_the_collector_is_on_again_once_the_first_picture_is_in(
        monkeypatch: Any) -> None:
    monkeypatch.setattr(app_module, "HEAP_SETTLE", 0.05)
    engine = fake_engine(Store())
    engine.wait_ready = lambda timeout=0: True
    assert await _collector_on_again(engine)


async def test_the_collector_is_on_again_when_a_backend_never_answers(
        monkeypatch: Any) -> None:
    monkeypatch.setattr(heap, "HOLD_MAX", 0.2)
    engine = fake_engine(Store())
    engine.wait_ready = lambda timeout=0: False
    assert await _collector_on_again(engine)


def test_a_collector_turned_off_by_its_caller_stays_off() -> None:
    gc.disable()
    try:
        heap.hold()
        heap.release(freeze=False)
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_the_footer_is_composed_again_only_when_its_keys_change(
        monkeypatch: Any) -> None:
    """Footer recomposed (every key unmounted, mounted and styled again) at each focus change,
    load or screen change: two or three times while a screen first appears. It still
    follows the focused pane's keys."""
    import time

    from jamtui.model import VM, Allocation, Kind, TaskInfo
    from jamtui.ui.screens import LabScreen
    from jamtui.ui.widgets import KeyFooter

    store = Store()
    store.upsert(Kind.VM, VM(101, "vs0", "pve1", "running", 0.1, 2, 2**30, 2**31))
    store.upsert(Kind.ALLOCATION, Allocation(
        "00000001-0000-4000-8000-000000000000", "load.web[1]", "load", "web", "n", "vs0",
        "running", "run", create_time=time.time() - 30, tasks=(TaskInfo("server", "running"),)))
    composed: list[int] = []
    real = KeyFooter.compose

    def counted(self: KeyFooter) -> Any:
        composed.append(1)
        return real(self)

    monkeypatch.setattr(KeyFooter, "compose", counted)
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, LabScreen)
        panes = {pane.kind: pane for pane in screen.panes}

        def keys() -> str:
            return " ".join(str(k.render()) for k in screen.query("FooterKey"))

        panes[Kind.VM].table.focus()
        for _ in range(100):
            await pilot.pause(0.05)
            if "migrate" in keys():
                break
        assert "migrate" in keys()
        await pilot.pause(0.3)
        before = len(composed)
        for _ in range(3):  # bindings "updated" with nothing changed: the footer stays
            screen.refresh_bindings()
            await pilot.pause(0.1)
        assert len(composed) == before
        panes[Kind.ALLOCATION].table.focus()  # other keys: composed again
        for _ in range(100):
            await pilot.pause(0.05)
            if "restart" in keys():
                break
        assert "restart" in keys() and "migrate" not in keys()
        assert len(composed) > before


async def test_a_load_into_a_pane_builds_the_rows_it_shows() -> None:
    """A load makes cells for the rows on screen only: a 20-row overview pane built 60 at
    each load (every pane, at the first frame)."""
    import time

    from jamtui.model import Allocation, Kind, TaskInfo
    from jamtui.ui.screens import LabScreen

    store = Store()
    with store.batch():
        for i in range(300):
            store.upsert(Kind.ALLOCATION, Allocation(
                f"{i:08x}-0000-4000-8000-000000000000", f"load.web[{i}]", "load", "web", "n",
                "vs0", "running", "run", create_time=time.time() - 30,
                tasks=(TaskInfo("server", "running"),)))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, LabScreen)
        table = next(p.table for p in screen.panes if p.kind is Kind.ALLOCATION)
        assert 0 < table.size.height < 30
        built: list[int] = []
        cells = table._cells

        def counted(obj: Any) -> list[Any]:
            built.append(1)
            return cells(obj)

        table._cells = counted  # type: ignore[method-assign]
        table.reload()
        assert table.row_count == 300
        assert len(built) <= table.size.height + 1, (len(built), table.size.height)
        await pilot.pause(0.2)  # drawn: the rows shown have their cells, in their order
        assert [table.get_row_at(r)[1].plain for r in range(3)] == [
            "load.web[0]", "load.web[1]", "load.web[2]"]


async def test_a_resize_to_the_same_size_lays_nothing_out_again() -> None:
    """The terminal reports its size again at start (tmux did): Textual handed that to the
    screen, which laid out and drew every widget again, right after the first picture was
    applied at 5,000 allocations (#17). A real resize still lays out."""
    from textual import events
    from textual.geometry import Size
    from textual.screen import Screen

    laid_out: list[Any] = []
    real = Screen._refresh_layout

    def counted(self: Screen[Any], size: Any = None, scroll: bool = False) -> None:
        laid_out.append(size)
        real(self, size, scroll)

    app = JamApp(fake_engine(Store()), start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.1)
        Screen._refresh_layout = counted  # type: ignore[method-assign]
        try:
            app.post_message(events.Resize(Size(80, 24), Size(80, 24)))
            await pilot.pause(0.1)
            assert laid_out == []
            app.post_message(events.Resize(Size(90, 24), Size(90, 24)))
            for _ in range(40):
                if laid_out:
                    break
                await pilot.pause(0.05)
            assert laid_out and app.size == Size(90, 24)
        finally:
            Screen._refresh_layout = real  # type: ignore[method-assign]


async def test_the_first_frame_is_told_to_the_engine_once_the_first_picture_is_in(
        monkeypatch: Any) -> None:
    """`Engine.first_frame`: Fabio's background pass waits for it (#17)."""
    import threading

    monkeypatch.setattr(app_module, "FIRST_FRAME_SETTLE", 0.05)
    ready = threading.Event()
    engine = fake_engine(Store())
    engine.wait_ready = lambda timeout=0: ready.wait(timeout)
    engine.first_frame = threading.Event()
    app = JamApp(engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        assert not engine.first_frame.is_set()  # some backend has not answered yet
        ready.set()
        for _ in range(100):
            if engine.first_frame.is_set():
                break
            await pilot.pause(0.05)
        assert engine.first_frame.is_set()


async def test_rows_coming_into_one_pane_lay_nothing_out() -> None:
    """A table's new row count set its virtual size, a layout reactive: the whole screen was
    laid out again (and every pane drawn again, in the cockpit), for each of Consul's 50
    service batches in the first picture at 5,000 allocations (#17). The pane is repainted;
    one that comes to overflow gets its scrollbar (a layout then)."""
    from textual.screen import Screen

    from jamtui.model import VM, Kind, Service
    from jamtui.ui.live_table import LiveTable

    store = Store()
    store.upsert(Kind.VM, VM(101, "vs0", "pve1", "running", 0.1, 2, 2**30, 2**31))
    laid_out: list[Any] = []  # the tables laid out again
    real = Screen._refresh_layout

    def counted(self: Screen[Any], size: Any = None, scroll: bool = False) -> None:
        laid_out.extend(w for ws in self._layout_widgets.values() for w in ws
                        if isinstance(w, LiveTable))
        real(self, size, scroll)

    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.2)
        Screen._refresh_layout = counted  # type: ignore[method-assign]
        try:
            for n in range(4):
                store.upsert(Kind.SERVICE, Service(f"svc{n}", (f"urlprefix-svc{n}/",), 1))
                await pilot.pause(0.1)
            services = app.screen.query_one("#pane-services").table
            assert services.row_count == 4 and laid_out == []
            assert "urlprefix-svc3/" in " ".join(
                s.text for s in services.render_lines(services.region.reset_offset))
            with store.batch():  # more than the pane shows: the scrollbar comes
                for n in range(4, 60):
                    store.upsert(Kind.SERVICE, Service(f"svc{n}", (), 1))
            for _ in range(40):
                if services.show_vertical_scrollbar:
                    break
                await pilot.pause(0.05)
            assert services.show_vertical_scrollbar and services.row_count == 60
        finally:
            Screen._refresh_layout = real  # type: ignore[method-assign]


def test_the_first_screen_s_backends_are_read_first_the_others_once_it_is_drawn(
        tmp_path: Any) -> None:
    """In the cockpit, Fabio and HAProxy (the overview shows only their health) start once
    the first frame is drawn: at 5,000 allocations Fabio's first table (4,800 routes) took
    the one GIL from it (#17). Meanwhile their health says "waiting"; without a cockpit
    (`status`, `snapshot`) every source starts at once."""
    import threading

    from jamtui.config import load_config
    from jamtui.engine import FIRST_SCREEN, Engine
    from jamtui.model import Health
    from jamtui.store import OWNER
    from jamtui.ui.kinds import OVERVIEW_PANES
    from tests.helpers import wait_for

    assert {OWNER[kind] for kind, _ in OVERVIEW_PANES} == set(FIRST_SCREEN)
    path = tmp_path / "jamtui.toml"
    path.write_text('[fabio]\naddresses = ["http://127.0.0.1:1"]\n'
                    '[haproxy]\nstats_url = "http://127.0.0.1:2/stats;csv"\n')

    def engine_started(cockpit: bool) -> tuple[Engine, list[str]]:
        engine = Engine(load_config(path, env={}))
        started: list[str] = []
        for name, source in engine.sources.items():
            source.start = lambda name=name: started.append(name)  # type: ignore[method-assign]
        if cockpit:
            engine.expect_first_frame()
        engine.start()
        return engine, started

    engine, started = engine_started(cockpit=False)
    engine.stop()
    assert sorted(started) == ["consul", "fabio", "haproxy", "nomad"]
    engine, started = engine_started(cockpit=True)
    try:
        assert sorted(started) == ["consul", "nomad"]
        assert [s.name for s in engine.first_sources] == ["nomad", "consul"]
        assert engine.store.backend("fabio").health is Health.UNKNOWN
        assert engine.store.backend("fabio").waiting_since
        threading.Event().wait(0.2)
        assert sorted(started) == ["consul", "nomad"]
        assert engine.first_frame is not None
        engine.first_frame.set()
        wait_for(lambda: len(started) == 4, timeout=5)
    finally:
        engine.stop()
    engine, started = engine_started(cockpit=True)  # `:routes` before the first frame
    try:
        engine.showing({"vms", "hypervisors"})
        assert sorted(started) == ["consul", "nomad"]
        engine.showing({"routes"})
        assert sorted(started) == ["consul", "fabio", "haproxy", "nomad"]
    finally:
        engine.stop()


async def test_the_first_frame_waits_for_the_first_screen_s_backends_only(
        monkeypatch: Any) -> None:
    """Fabio and HAProxy start once the first frame is drawn: the first frame must not wait
    for them (it would wait out its cap, 20 s)."""
    import threading
    import types

    monkeypatch.setattr(app_module, "FIRST_FRAME_SETTLE", 0.05)
    first = types.SimpleNamespace(ready=threading.Event())
    later = types.SimpleNamespace(ready=threading.Event())  # not started before the frame
    engine = fake_engine(Store())
    engine.sources = {"nomad": first, "fabio": later}
    engine.first_sources = [first]
    engine.first_frame = threading.Event()

    def wait_ready(timeout: float = 10.0, sources: Any = None) -> bool:
        return all(s.ready.wait(timeout) for s in (sources or engine.sources.values()))

    engine.wait_ready = wait_ready
    app = JamApp(engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.3)
        assert not engine.first_frame.is_set()
        first.ready.set()
        for _ in range(100):
            if engine.first_frame.is_set():
                break
            await pilot.pause(0.05)
        assert engine.first_frame.is_set()


async def test_check_states_are_recorded_after_the_first_frame_with_when_they_were_seen(
        monkeypatch: Any) -> None:
    """Recording every check's first state (5,000 instances at 5k) waited on the first
    frame; it is kept with the time it was seen and recorded once the frame is drawn, or
    when the history is read first (#17)."""
    import threading
    import time

    from jamtui.check_history import CheckHistory
    from jamtui.model import CheckInfo, Kind, ServiceInstance

    monkeypatch.setattr(app_module, "FIRST_FRAME_SETTLE", 0.05)
    observed: list[int] = []
    real = CheckHistory.observe

    def counted(self: CheckHistory, instances: Any, now: Any = None) -> int:
        observed.append(len(list(instances)))
        return real(self, instances, now)

    monkeypatch.setattr(CheckHistory, "observe", counted)
    ready = threading.Event()
    store = Store()
    engine = fake_engine(store)
    engine.wait_ready = lambda timeout=0: ready.wait(timeout)
    engine.first_frame = threading.Event()
    app = JamApp(engine, start_engine=False)
    async with app.run_test(size=(80, 24)) as pilot:
        before = time.time()
        inst = ServiceInstance("vs0/web-1", "web", "web-1", "vs0", "10.0.0.1", 80, (),
                               (CheckInfo("c1", "http", "passing", "ok", "web-1"),))
        store.upsert(Kind.INSTANCE, inst)
        await pilot.pause(0.2)
        assert observed == []  # seen, not yet recorded: the first frame is not drawn
        time.sleep(0.05)
        ready.set()
        for _ in range(100):
            if engine.first_frame.is_set():
                break
            await pilot.pause(0.05)
        assert observed == [1]
        (first,) = app.check_history.of(inst.id, "c1")
        assert first.status == "passing" and before <= first.at < time.time() - 0.04


async def test_the_overview_has_its_size_class_from_the_start(monkeypatch: Any) -> None:
    """`-wide`/`-narrow` (the app's breakpoints) came with the first resize, and changing a
    screen's classes restyles every widget on it: a second whole restyle of the composed
    overview before the first frame (#17). It is set before the screen is pushed."""
    from textual.screen import Screen

    from jamtui.ui.screens import OverviewScreen

    restyled: list[str] = []
    real = Screen.update_node_styles

    def counted(self: Screen[Any], animate: bool = True) -> None:
        if isinstance(self, OverviewScreen):
            restyled.append(" ".join(sorted(self.classes)))
        real(self, animate)

    monkeypatch.setattr(Screen, "update_node_styles", counted)
    for size, wanted in (((160, 48), "-wide"), ((100, 30), "-narrow")):
        restyled.clear()
        app = JamApp(fake_engine(Store()), start_engine=False)
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.2)
            assert wanted in app.screen.classes
            assert len(restyled) == 1, restyled  # when it is shown (Textual's), not again
