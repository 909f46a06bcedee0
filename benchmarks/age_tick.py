"""The cost of the overview's AGE tick (#17), on the demo lab's objects, headless.

    .venv/bin/python benchmarks/age_tick.py [--ticks 40] [--view overview|allocs] [--profile]

The demo lab is started, the engine reads it once, and both stop; the store it filled is
then drawn by the cockpit (160x48, `App.run_test`) on a clock the benchmark moves, so no
source thread or lab churn runs beside it: what is measured is the main thread's CPU
(`time.thread_time`) for one second's AGE update: `JamApp._refresh_ages`, then the frame
it causes (Textual's compositor, and the text the driver would write: a headless driver
writes nothing, so the update's `render_segments` is made here as a terminal driver makes
it). Two modes, back to back:

- young: the lab's first minute: each tick the clock moves a second and every AGE on screen
  changes (seconds are shown under a minute);
- settled: the clock stays: the tick finds nothing changed and draws nothing.

Reported per tick (ms of main-thread CPU, medians over `--ticks` ticks): the tick itself
(`_refresh_ages`), the rest of the second's slice of the event loop (the frame: compositor
and text; and the loop's own idle work, which the settled mode shows alone), and the whole.
Young minus settled is what the AGE change costs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import tempfile
import time
import types
from pathlib import Path
from typing import Any

from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.store import Store
from jamtui.ui.app import JamApp
from jamtui.ui.screens import LabScreen


def demo_store() -> Store:
    """The store the engine fills from a fresh demo lab (as `jamtui --demo`)."""
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        lab.wait_settled()
        path = Path(tmp) / "jamtui.toml"
        path.write_text(lab.config_toml())
        engine = Engine(load_config(path, env=lab.env()))
        engine.start()
        try:
            assert engine.wait_ready(60), "the demo lab did not answer"
            time.sleep(2.0)  # the watches' second answers, the stats
        finally:
            engine.stop()
    return engine.store


def write_text(app: JamApp) -> None:
    """A headless driver writes nothing: make each update's text as a terminal driver
    does (`App._display`), so its cost is counted."""
    real = app._display

    def display(screen: Any, renderable: Any) -> None:
        if renderable is not None and app.is_headless:
            renderable.render_segments(app.console)
        real(screen, renderable)

    app._display = display  # type: ignore[method-assign]


async def run(ticks: int, view: str, profile: bool) -> None:
    store = demo_store()
    allocs = list(store.items(Kind.ALLOCATION))
    start = max(a.create_time for a in allocs if a.create_time)
    now = [start + 1.0]
    store.clock = lambda: now[0]
    engine = types.SimpleNamespace(store=store, sources={}, start=lambda: None,
                                   stop=lambda: None)  # no sources: the store stays
    app = JamApp(engine, start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.5)
        if view != "overview":
            app.go_to_view(view)
            await pilot.pause(0.5)
        screen = app.screen
        assert isinstance(screen, LabScreen)
        tables = [p.table for p in screen.panes]
        rows = sum(len(t._visible_ids()) for t in tables if "age" in t.columns)
        write_text(app)
        await pilot.pause(0.3)
        results: dict[str, list[tuple[float, float]]] = {}
        prof = cProfile.Profile() if profile else None
        for mode in ("young", "settled", "young"):
            per: list[tuple[float, float]] = []
            for _ in range(ticks):
                if mode == "young":
                    now[0] += 1.0
                    if now[0] - start > 58:
                        now[0] = start + 1.0  # back to the first second: ages still change
                t0 = time.thread_time()
                if prof is not None and mode == "young":
                    prof.enable()
                app._refresh_ages()
                tick = time.thread_time() - t0
                await asyncio.sleep(0.06)  # the frame (Textual paints at most 60 a second)
                if prof is not None:
                    prof.disable()
                per.append((tick, time.thread_time() - t0 - tick))
            results.setdefault(mode, []).extend(per)
        print(f"view {view}: {rows} rows with AGE on screen; {ticks * 2} young ticks, "
              f"{ticks} settled")
        for mode, per in results.items():
            tick_ms = statistics.median(p[0] for p in per) * 1000
            frame_ms = statistics.median(p[1] for p in per) * 1000
            whole = statistics.median(p[0] + p[1] for p in per) * 1000
            print(f"  {mode:8s} tick {tick_ms:5.2f} ms  frame {frame_ms:5.2f} ms  "
                  f"whole {whole:5.2f} ms per tick")
        if prof is not None:
            pstats.Stats(prof).sort_stats("tottime").print_stats(45)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=40)
    parser.add_argument("--view", default="overview")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.ticks, args.view, args.profile))


if __name__ == "__main__":
    main()
