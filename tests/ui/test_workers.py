"""Threads end with their screens and I/O stays off the loop: a closed log viewer's pump
threads end (even over a follower that ignores `stop`), and resuming a workflow does not
block the event loop while it reads its journal."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from jamtui.engine import Engine
from jamtui.inventory import load_inventory, propose_node
from jamtui.sim.lab import Lab
from jamtui.ui.app import JamApp
from jamtui.ui.log_view import LogScreen
from jamtui.ui.workflow_view import WorkflowScreen
from jamtui.workflows.journal import JournalError
from jamtui.workflows.node import NodeWorkflows
from tests.ui.test_cockpit import ready, until


class Stubborn:
    """A follower that ignores `stop` (a stuck stream): only the worker's end stops it."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.ended = threading.Event()  # the pump let go of it (its thread is a pool's)

    def lines(self) -> Iterator[Any]:
        self.started.set()
        n = 0
        try:
            while True:
                n += 1
                yield SimpleNamespace(text=f"line {n}", event="")
                time.sleep(0.02)
        finally:
            self.ended.set()

    def stop(self) -> None:
        pass


async def test_a_closed_log_screens_pump_threads_end(lab_engine: tuple[Lab, Engine]) -> None:
    _, engine = lab_engine
    app = JamApp(engine)
    followers = [Stubborn(), Stubborn()]
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        app.open_tail(lambda: LogScreen("stuck", [(f"s{i}", lambda _s, f=f: f)
                                                  for i, f in enumerate(followers)]))
        screen = await until(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen)
        await until(pilot, lambda: all(f.started.is_set() for f in followers))
        pumps = [w for w in app.workers if w.node is screen and w.group == "log-pump"]
        assert len(pumps) == 2 and not any(w.is_finished for w in pumps)
        await pilot.press("x")  # close the tail
        await until(pilot, lambda: not app.tails and app.screen is not screen)
        started = time.monotonic()
        await until(pilot, lambda: all(f.ended.is_set() for f in followers)
                    and all(w.is_finished for w in pumps), timeout=2)
        assert time.monotonic() - started < 2


async def test_many_streams_all_pump_at_once(lab_engine: tuple[Lab, Engine]) -> None:
    """Pumps live as long as their screen: more of them than the loop's default pool has
    threads (6 on 2 cores) must all run, none waiting for another to end."""
    _, engine = lab_engine
    app = JamApp(engine)
    followers = [Stubborn() for _ in range(12)]
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        app.open_tail(lambda: LogScreen("many", [(f"s{i}", lambda _s, f=f: f)
                                                 for i, f in enumerate(followers)]))
        await until(pilot, lambda: all(f.started.is_set() for f in followers), timeout=15)
        await pilot.press("x")
        await until(pilot, lambda: all(f.ended.is_set() for f in followers), timeout=5)


async def test_resume_does_not_block_the_loop(lab_engine: tuple[Lab, Engine]) -> None:
    _, engine = lab_engine
    cfg = engine.config
    pending = NodeWorkflows(cfg, engine, lambda title, text: True).add(
        propose_node(load_inventory(cfg.inventory), "vb"))
    entered, release, returned = threading.Event(), threading.Event(), threading.Event()

    class SlowFlows:
        def resume(self, workflow_id: str) -> Any:
            entered.set()
            try:
                release.wait(5)  # a journal on a slow disk, a lock another editor holds
                raise JournalError(f"{workflow_id}: journal unreadable")
            finally:
                returned.set()

    class Slow(JamApp):
        def workflows(self) -> Any:
            return SlowFlows()

    app = Slow(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        app.push_screen(WorkflowScreen(pending))
        await until(pilot, lambda: isinstance(app.screen, WorkflowScreen)
                    and "r" in app.screen.active_bindings)
        await pilot.press("r")
        await until(pilot, entered.is_set)
        # the loop runs this test while resume still waits (on the loop it could not)
        await pilot.pause(0.2)
        assert not returned.is_set()
        release.set()
        await until(pilot, lambda: any("cannot resume" in str(n.message)
                                       for n in app._notifications))
        assert isinstance(app.screen, WorkflowScreen)
