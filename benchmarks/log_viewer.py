"""The log viewer under a flood: lines per second taken in and shown while following, the
longest stall of the UI loop meanwhile, and the memory of a full 100,000-line buffer.

    .venv/bin/python benchmarks/log_viewer.py [--seconds 5] [--rate N] [--wrap] [--stamps]
                                              [--ansi]

A fake follower produces lines as fast as it can on its thread (as a fast task would through
Nomad); the viewer batches them every 50 ms. A 10 ms timer on the UI loop measures how late
it fires: that lateness is how long a frame could have waited.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import threading
import time
import tracemalloc
import types
from typing import Any

from jamtui.store import Store
from jamtui.ui.app import JamApp
from jamtui.ui.log_view import Entry, LogLines, LogScreen


class FloodFollower:
    def __init__(self, ansi: bool = False, rate: float = 0.0) -> None:
        self.ansi = ansi
        self.rate = rate  # lines/s to hold to; 0 = as fast as it can
        self.stop_event = threading.Event()
        self.produced = 0

    def lines(self) -> Any:
        line = types.SimpleNamespace(text="", offset=0, event="")
        self.t0 = time.perf_counter()
        i = 0
        while not self.stop_event.is_set():
            i += 1
            status = "\x1b[32m200\x1b[0m" if self.ansi else "200"
            line = types.SimpleNamespace(
                text=f"2026-11-25T03:00:00Z example.web[0] server: GET /item/{i} {status} "
                     f"0.{i % 9}ms", offset=i, event="")
            self.produced = i
            yield line
            if i % 1000 == 0:
                if self.rate:
                    ahead = i / self.rate - (time.perf_counter() - self.t0)
                    time.sleep(max(0.0, ahead))
                else:
                    time.sleep(0)  # let the UI thread have the GIL, as network reads would

    def stop(self) -> None:
        self.stop_event.set()


async def flood(seconds: float, wrap: bool = False, stamps: bool = False,
                ansi: bool = False, rate: float = 0.0) -> tuple[float, float, int]:
    follower = FloodFollower(ansi, rate)
    engine: Any = types.SimpleNamespace(store=Store(), sources={}, start=lambda: None,
                                        stop=lambda: None)
    app = JamApp(engine, start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        app.push_screen(LogScreen("flood", [("flood", lambda stream: follower)]))
        await pilot.pause(0.1)
        lines = app.screen.query_one(LogLines)
        lines.set_wrap(wrap)
        lines.set_stamps(stamps)
        worst = 0.0
        t0 = time.perf_counter()
        last = t0
        while time.perf_counter() - t0 < seconds:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            worst = max(worst, now - last - 0.01)
            last = now
        await pilot.pause(0.1)  # the last batch reaches the buffer
        shown = len(lines.entries)
        follower.stop()
        elapsed = time.perf_counter() - t0
        return lines.added / elapsed, worst * 1000, shown


def buffer_memory(n: int = 100_000) -> float:
    tracemalloc.start()
    lines = LogLines(capacity=n)
    before = tracemalloc.take_snapshot()
    lines.entries.extend(
        Entry(f"2026-11-25T03:00:00Z example.web[0] server: GET /item/{i} 200 0.{i % 9}ms")
        for i in range(n))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(s.size_diff for s in after.compare_to(before, "filename")) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--wrap", action="store_true", help="wrapping on (at 160 columns)")
    ap.add_argument("--stamps", action="store_true", help="timestamps on")
    ap.add_argument("--ansi", action="store_true", help="every line carries colour codes")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="lines/s the source holds to (default: as fast as it can)")
    args = ap.parse_args()
    rate, worst_ms, shown = asyncio.run(flood(args.seconds, args.wrap, args.stamps, args.ansi,
                                              args.rate))
    mode = "+".join(m for m in ("wrap", "stamps", "ansi") if getattr(args, m)) or "plain"
    print(f"follow mode ({mode}): {rate:,.0f} lines/s drawn into the viewer "
          f"({shown:,} in the buffer); "
          f"longest UI loop stall {worst_ms:.0f} ms")
    print(f"100,000-line buffer: {buffer_memory():.1f} MB of Python objects; "
          f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
