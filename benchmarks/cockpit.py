"""The cockpit's speed, as the operator feels it.

    .venv/bin/python benchmarks/cockpit.py [--runs 5] [--samples 40]

1. `jamtui --demo` in a real terminal (tmux, 160x48): from spawning the process to the first
   screen on which all four panes show rows (screen polled every 20 ms).
2. change in the lab → the row on screen: a Consul check flips (services pane) and a Nomad
   allocation stops (allocations pane); timed from the world action to the first update the
   compositor hands to the terminal (`App._display`) that carries the row's new text
   (headless app, real lab and engine). Not to the table's own row text (`_texts`), which
   changes before anything is painted. `benchmarks/scale.py` measures the same in tmux.
3. a table of 5,000 allocations: one changed row from the store's change event to the first
   update handed to the terminal that carries it (the app's own path: inbox, message, signal,
   table, compositor), and the time to open the allocations view with all 5,000 rows
   (headless app on a filled store).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path
from typing import Any

from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.model import Allocation, Kind, TaskInfo
from jamtui.sim.lab import Lab
from jamtui.store import Store
from jamtui.ui.app import JamApp
from jamtui.ui.live_table import LiveTable
from jamtui.ui.screens import LabScreen

CLIENT_ENV = ("NOMAD_ADDR", "NOMAD_TOKEN", "CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN",
              "PROXMOX_VE_ENDPOINT", "PROXMOX_VE_API_TOKEN")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# 1 -------------------------------------------------------------------------------------------

def first_frame(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        sock = f"jamtui-bench-{uuid.uuid4().hex[:8]}"
        unset = " ".join(f"-u {n}" for n in CLIENT_ENV)
        cmd = f"env {unset} TERM=xterm-256color {shlex.quote(sys.executable)} -m jamtui --demo"
        t0 = time.perf_counter()
        subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-s", "b", "-x", "160",
                        "-y", "48", cmd], check=True, env={**os.environ, "TERM": "xterm"})
        try:
            while True:
                screen = subprocess.run(["tmux", "-L", sock, "capture-pane", "-p", "-t", "b"],
                                        capture_output=True, text=True).stdout
                if all(s in screen for s in ("pve1", "vb0", "urlprefix-example",
                                             "example.web[")):
                    times.append(time.perf_counter() - t0)
                    break
                if time.perf_counter() - t0 > 30:
                    raise RuntimeError(f"no full first frame in 30 s:\n{screen}")
                time.sleep(0.02)
        finally:
            subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
    return times


# 2 -------------------------------------------------------------------------------------------

def pane_table(app: JamApp, kind: Kind) -> Any:
    screen = app.screen
    assert isinstance(screen, LabScreen)
    return next(p for p in screen.panes if p.kind is kind).table


ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PAINTS: list[tuple[float, str]] = []  # (when, text) of every update sent to the terminal


def spy_on_paints(app: JamApp) -> None:
    real = app._display

    def display(screen: Any, renderable: Any) -> None:
        if renderable is not None:
            try:
                text = ESCAPES.sub("", "".join(renderable.render_segments(app.console)))
            except Exception:
                text = ""
            PAINTS.append((time.perf_counter(), text))
        real(screen, renderable)

    app._display = display  # type: ignore[method-assign]


async def row_changes(table: Any, id_: str, before: tuple[str, ...], t0: float,
                      timeout: float = 5.0) -> float:
    """Seconds from t0 until a paint carries the row's changed text."""
    deadline = time.perf_counter() + timeout
    while table._texts.get(id_) == before:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"row {id_} did not change")
        await asyncio.sleep(0.001)
    after = table._texts[id_]
    changed = [a for b, a in zip(before, after, strict=True) if a != b]
    want = max(changed, key=len).strip()
    while True:
        hit = next((when for when, text in PAINTS if when >= t0 and want in text), None)
        if hit is not None:
            return hit - t0
        if time.perf_counter() > deadline:
            raise RuntimeError(f"row {id_}: {want!r} never painted")
        await asyncio.sleep(0.001)


async def lab_to_screen(samples: int) -> tuple[list[float], list[float]]:
    consul_ms: list[float] = []
    nomad_ms: list[float] = []
    with Lab(seed=3, tick=0, traffic=False, flap_rate=0, task_delay=0.05,
             heartbeat_grace=0.3, boot_delay=0.5) as lab, \
            tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jamtui.toml"
        path.write_text(lab.config_toml())
        engine = Engine(load_config(path, env=lab.env()))
        app = JamApp(engine)
        async with app.run_test(size=(160, 48)) as pilot:
            spy_on_paints(app)
            while pane_table(app, Kind.ALLOCATION).row_count == 0 or \
                    pane_table(app, Kind.SERVICE).row_count == 0:
                await pilot.pause(0.05)
            await pilot.pause(0.5)
            services = pane_table(app, Kind.SERVICE)
            check = lab.call(lambda: next(c for c in lab.world.checks.values()
                                          if c.service_name == "example"))
            for i in range(samples):
                status = "critical" if i % 2 == 0 else "passing"
                before = services._texts["example"]
                t0 = time.perf_counter()
                await asyncio.to_thread(lab.call, lab.world.set_check, check.node,
                                        check.check_id, status)
                consul_ms.append(await row_changes(services, "example", before, t0) * 1000)
                await pilot.pause(0.02)
            allocs = pane_table(app, Kind.ALLOCATION)
            for _ in range(samples):
                victim = next(a for a in engine.store.items(Kind.ALLOCATION)
                              if a.client_status == "running" and a.job_id == "example")
                before = allocs._texts[victim.id]
                t0 = time.perf_counter()
                await asyncio.to_thread(lab.call, lab.world.stop_alloc, victim.id)
                nomad_ms.append(await row_changes(allocs, victim.id, before, t0) * 1000)
                await pilot.pause(0.2)  # let the replacement start
    return consul_ms, nomad_ms


# 3 -------------------------------------------------------------------------------------------

def big_store(n: int) -> Store:
    store = Store()
    now = time.time()
    with store.batch():
        for i in range(n):
            store.upsert(Kind.ALLOCATION, Allocation(
                f"{i:08x}-0000-4000-8000-000000000000", f"load.web[{i}]", "load", "web",
                f"node-{i % 50}", f"vs{i % 50}", "running", "run", create_time=now - i,
                tasks=(TaskInfo("server", "running"),)))
    return store


async def big_table(n: int, samples: int) -> tuple[float, float, list[float]]:
    store = big_store(n)
    engine: Any = types.SimpleNamespace(store=store, sources={}, start=lambda: None,
                                        stop=lambda: None)
    app = JamApp(engine, start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        painted: list[float] = []
        original = LiveTable.render_lines

        def render_lines(table: LiveTable, crop: Any) -> Any:
            if table.kind is Kind.ALLOCATION and table.row_count and not painted:
                painted.append(time.perf_counter())
            return original(table, crop)

        LiveTable.render_lines = render_lines  # type: ignore[method-assign]
        t0 = time.perf_counter()
        app.go_to_view("allocs")
        table = None
        while table is None or table.row_count < n:
            await asyncio.sleep(0.001)
            screen = app.screen
            if isinstance(screen, LabScreen) and screen.is_mounted and screen.panes:
                table = pane_table(app, Kind.ALLOCATION)
        open_s = time.perf_counter() - t0
        LiveTable.render_lines = original  # type: ignore[method-assign]
        shown_s = painted[0] - t0
        # one changed row → the terminal: the store's change event goes the sources' way
        # (the app's inbox, one StoreChanged message, the signal, the table, the compositor)
        # and the clock stops at the first update handed to the terminal that carries the
        # row's new status on its line (rows 0-19 are on screen)
        spy_on_paints(app)
        apply_ms = []
        for i in range(samples):
            id_ = f"{i % 20:08x}-0000-4000-8000-000000000000"
            status = ("failed", "lost")[(i // 20) % 2]
            old = store.get(Kind.ALLOCATION, id_)
            new = dataclasses.replace(old, client_status=status)
            line = re.compile(re.escape(id_[:8]) + r".{0,60}?" + status)
            t0 = time.perf_counter()
            store.upsert(Kind.ALLOCATION, new)  # the store's change event, as from a source
            deadline = t0 + 10
            while not any(when >= t0 and line.search(text) for when, text in PAINTS):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"row {id_[:8]} {status} never painted")
                await asyncio.sleep(0.0005)
            apply_ms.append((min(when for when, text in PAINTS
                                 if when >= t0 and line.search(text)) - t0) * 1000)
            PAINTS.clear()
            await pilot.pause(0.05)
    return shown_s, open_s, apply_ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--samples", type=int, default=40)
    args = ap.parse_args()
    frames = first_frame(args.runs)
    print(f"jamtui --demo → first full frame: median {statistics.median(frames):.2f} s, "
          f"max {max(frames):.2f} s over {args.runs} runs")
    consul_ms, nomad_ms = asyncio.run(lab_to_screen(args.samples))
    for name, values in (("consul", consul_ms), ("nomad", nomad_ms)):
        print(f"lab change → row on screen ({name}): p50 {statistics.median(values):.1f} ms, "
              f"p95 {pct(values, 95):.1f} ms, max {max(values):.1f} ms ({len(values)} changes)")
    shown_s, open_s, apply_ms = asyncio.run(big_table(5000, args.samples))
    print(f"5,000 allocations: the view open with its first rows painted {shown_s * 1000:.0f} "
          f"ms, all 5,000 rows in {open_s * 1000:.0f} ms; one changed row → terminal "
          f"p50 {statistics.median(apply_ms):.2f} ms, p95 {pct(apply_ms, 95):.2f} ms")


if __name__ == "__main__":
    main()
