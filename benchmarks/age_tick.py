"""The cost of the overview's AGE tick (#17), on the demo lab's objects, headless.

    .venv/bin/python benchmarks/age_tick.py [--ticks 40] [--view overview|allocs]
        [--profile tick|all]

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

    .venv/bin/python benchmarks/age_tick.py --tmux [--jamtui-root PATH] [--window 25]

The real cockpit instead: `jamtui lab` (demo size) and the TUI against it in tmux 160x48
(benchmarks/scale.py's LabProc and Term); the TUI's CPU (utime+stime from /proc), of its main
thread and of the whole process, over `--window` seconds in the lab's first minute (from its
15th second: every AGE on screen changes each second) and again once every allocation is
older than a minute (from its 70th second).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

from jamtui import heap
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


async def run(ticks: int, view: str, profile: str) -> None:
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
        heap.release()  # the collector as the cockpit runs it once its first picture is in
        await pilot.pause(0.3)
        results: dict[str, list[tuple[float, float]]] = {}
        prof = cProfile.Profile() if profile else None
        for mode in ("young", "settled"):
            per: list[tuple[float, float]] = []
            for _ in range(ticks):
                if mode == "young":
                    now[0] += 1.0  # the first minute (`--ticks` < 58): every AGE changes
                t0 = time.thread_time()
                if prof is not None and mode == "young":
                    prof.enable()
                app._refresh_ages()
                tick = time.thread_time() - t0
                if prof is not None and profile == "tick":
                    prof.disable()
                await asyncio.sleep(0.06)  # the frame (Textual paints at most 60 a second)
                if prof is not None:
                    prof.disable()
                per.append((tick, time.thread_time() - t0 - tick))
            results.setdefault(mode, []).extend(per)
        print(f"view {view}: {rows} rows with AGE on screen; {ticks} ticks each")
        for mode, per in results.items():
            tick_ms = statistics.median(p[0] for p in per) * 1000
            frame_ms = statistics.median(p[1] for p in per) * 1000
            whole = statistics.median(p[0] + p[1] for p in per) * 1000
            print(f"  {mode:8s} tick {tick_ms:5.2f} ms  frame {frame_ms:5.2f} ms  "
                  f"whole {whole:5.2f} ms per tick")
        if prof is not None:
            pstats.Stats(prof).sort_stats("tottime").print_stats(45)


def thread_cpu(pid: int, tid: int) -> float:
    from scale import CLK

    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def tmux(root: str | None, window: float) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from scale import LabProc, Term, cpu_seconds, full_frame, jamtui_cmd

    lab = LabProc(None)
    born = time.monotonic()  # its allocations started just before it said it was ready
    term = None
    try:
        cmd, env = jamtui_cmd(root, lab.config)
        term = Term(cmd, {**lab.env, **env})
        term.wait(full_frame, 60, 0.05, "a full first frame")
        for name, start in (("first minute", 15.0), ("settled", 70.0)):
            time.sleep(max(0.0, born + start - time.monotonic()))
            t0 = time.monotonic()
            m0, p0 = thread_cpu(term.pid, term.pid), cpu_seconds(term.pid)
            time.sleep(window)
            m1, p1 = thread_cpu(term.pid, term.pid), cpu_seconds(term.pid)
            dt = time.monotonic() - t0
            print(f"  {name:12s} (lab age {start:.0f}-{start + dt:.0f} s): main thread "
                  f"{100 * (m1 - m0) / dt:.2f} %, process {100 * (p1 - p0) / dt:.2f} %",
                  flush=True)
    finally:
        if term is not None:
            term.close()
        lab.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=40, help="at most 55: the first minute")
    parser.add_argument("--view", default="overview")
    parser.add_argument("--profile", choices=("tick", "all"), default="",
                        help="cProfile of the young ticks: the tick alone, or with its frame")
    parser.add_argument("--tmux", action="store_true",
                        help="the real cockpit in tmux against `jamtui lab`: CPU from /proc")
    parser.add_argument("--jamtui-root", default=None,
                        help="--tmux: run the jamtui of this checkout")
    parser.add_argument("--window", type=float, default=25.0)
    args = parser.parse_args()
    if args.tmux:
        tmux(args.jamtui_root, args.window)
        return
    if not 0 < args.ticks <= 55:
        parser.error("--ticks: 1 to 55 (every AGE changes in the first minute only)")
    asyncio.run(run(args.ticks, args.view, args.profile))


if __name__ == "__main__":
    main()
