"""The cockpit's seams: a question asked from a worker thread ends when the app does, and
read-only is decided once (a key offered in a table is offered in a detail and in `?`)."""

from __future__ import annotations

import threading
import time
from typing import Any

from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.ui.app import JamApp
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
