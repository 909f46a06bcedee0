"""The cockpit's start-up: the cyclic collector stays off until the first picture is in
(`ui/heap.py`), and is on again then, or after `HOLD_MAX` seconds whatever happens."""

from __future__ import annotations

import gc
from typing import Any

from jamtui.store import Store
from jamtui.ui import app as app_module
from jamtui.ui import heap
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
