"""The cockpit's seams: a question asked from a worker thread ends when the app does, and
read-only is decided once (a key offered in a table is offered in a detail and in `?`)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.ui.app import JamApp
from jamtui.ui.keymap import with_overrides as keymap_with
from jamtui.ui.log_view import LogLines, LogScreen
from jamtui.ui.screens import DetailScreen, HelpScreen
from tests.ui.test_cockpit import focus_row, pane, ready, until


class Asking(JamApp):
    """Notes when a worker's question returns, and what it answered."""

    returned = threading.Event()
    answers: list[bool] = []

    def ask_from_thread(self, dialog: Any) -> bool:
        try:
            answer = super().ask_from_thread(dialog)
            self.answers.append(answer)
            return answer
        finally:
            self.returned.set()


async def test_quitting_with_the_host_key_question_open_ends_the_waiting_worker(
        lab_engine: tuple[Lab, Engine]) -> None:
    _, engine = lab_engine
    app = Asking(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        vm = engine.store.vm_named("vs1")
        focus_row(pane(app, Kind.VM).table, vm.id)
        await pilot.press("l")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptScreen")
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", timeout=15)
        assert not app.returned.is_set()  # the worker waits for the operator
        app.exit()
    started = time.monotonic()
    assert app.returned.wait(2), "the worker still waits for an answer after the app quit"
    assert time.monotonic() - started < 2 and app.answers == [False]


async def test_read_only_logs_key_is_the_same_in_table_detail_and_help(
        lab_engine: tuple[Lab, Engine]) -> None:
    _, engine = lab_engine
    app = JamApp(engine, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        vm = engine.store.vm_named("vs1")
        focus_row(pane(app, Kind.VM).table, vm.id)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        table_help = {k.action for k in app.screen.keys}
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("l")  # in the table: logs open (the prompt for a host's unit)
        await until(pilot, lambda: type(app.screen).__name__ == "PromptScreen")
        await pilot.press("escape")
        await until(pilot, lambda: type(app.screen).__name__ != "PromptScreen")

        app.open_detail(Kind.VM, vm.id)
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        detail_help = {k.action for k in app.screen.keys}
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await pilot.press("l")  # in the detail too
        await until(pilot, lambda: type(app.screen).__name__ == "PromptScreen")
        assert "act('logs')" in table_help and "act('logs')" in detail_help
        assert not {a for a in table_help | detail_help
                    if a.startswith("act(") and a != "act('logs')"}  # nothing that changes


def test_every_binding_has_an_id_and_keys_knows_the_screens_ones() -> None:
    from textual.binding import Binding
    from textual.dom import DOMNode

    from jamtui.ui import keymap, log_view, routing_view, screens, workflow_view

    for module in (log_view, routing_view, screens, workflow_view):
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, DOMNode)
                    and obj.__module__.startswith("jamtui")):
                for b in obj.__dict__.get("BINDINGS", ()):
                    assert isinstance(b, Binding) and b.id, (obj.__name__, b)
    assert all(b.id for b in keymap.bindings(keymap.KEYMAP, {k.scope for k in keymap.KEYMAP}))
    assert {"log_wrap", "log_filter", "workflow_logs", "confirm_yes"} <= (
        keymap.screen_binding_ids())
    keymap.with_overrides({"log_wrap": "W", "vm_stop": "ctrl+k"})  # accepted
    with pytest.raises(ValueError, match="unknown action"):
        keymap.with_overrides({"log_wrapp": "W"})


async def test_keys_rebinds_the_log_viewers_keys(lab_engine: tuple[Lab, Engine]) -> None:
    _, engine = lab_engine
    overrides = {"log_wrap": "W", "log_close": "ctrl+w"}
    app = JamApp(engine, keymap=keymap_with(overrides), keys=overrides)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        alloc = next(a for a in engine.store.items(Kind.ALLOCATION) if a.job_id == "example")
        focus_row(pane(app, Kind.ALLOCATION).table, alloc.id)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen))
        lines = app.screen.query_one(LogLines)
        wrap = lines.wrap
        await pilot.press("w")  # no longer bound
        await pilot.pause(0.2)
        assert lines.wrap == wrap
        await pilot.press("W")
        await until(pilot, lambda: lines.wrap != wrap)
        await pilot.press("ctrl+w")  # close, rebound from x
        await until(pilot, lambda: not app.tails)


def test_the_inbox_wakes_once_per_batch_and_keeps_order() -> None:
    from jamtui.ui.inbox import Inbox

    wakes: list[int] = []
    inbox: Inbox[int] = Inbox(maxlen=5, wake=lambda: wakes.append(1))
    inbox.extend(range(3))
    inbox.put(3)
    assert len(wakes) == 1  # one message for the burst
    assert inbox.take(limit=2) == [0, 1] and len(wakes) == 2  # the rest wakes it again
    assert inbox.take() == [2, 3]
    inbox.extend(range(10))  # bounded: the oldest go
    assert inbox.take() == [5, 6, 7, 8, 9] and len(wakes) == 3
    inbox.extend(())
    assert len(wakes) == 3  # nothing put, nothing to wake for


def test_the_detail_reads_the_stores_clock() -> None:
    import time as _time

    from rich.console import Console

    from jamtui.model import Hypervisor
    from jamtui.store import Store
    from jamtui.ui.detail import render

    frozen = _time.mktime((2030, 1, 2, 3, 4, 5, 0, 0, -1))
    store = Store(clock=lambda: frozen)
    store.upsert(Kind.HYPERVISOR, Hypervisor("pve1", "online", 0.1, 4, 1, 2))
    assert [hv.name for hv in store.hypervisors()] == ["pve1"] and store.vms() == []
    body, _ = render(Kind.HYPERVISOR, "pve1", store)
    console = Console(width=120, record=True)
    console.print(body)
    assert "as of 03:04:05" in console.export_text()
