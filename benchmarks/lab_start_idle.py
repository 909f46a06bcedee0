"""How fast `jamtui lab` starts and what it costs while nobody talks to it.

Start time: from spawning `python -m jamtui lab` to the line that says the lab is ready
(imports, CA generation, world build, every server listening). Idle cost: the process's own
CPU time (utime + stime from /proc/<pid>/stat) over a quiet window, as % of one core.

    .venv/bin/python benchmarks/lab_start_idle.py [--runs 5] [--idle 30]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def start_lab(workdir: str) -> tuple[subprocess.Popen[str], float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jamtui", "lab", "--workdir", workdir],
        stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Ctrl-C stops the lab" in line:
            return proc, time.perf_counter() - t0
    raise RuntimeError(f"lab exited early with {proc.wait()}")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of idle measurement")
    args = ap.parse_args()
    starts = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as d:
            proc, took = start_lab(d)
            starts.append(took)
            stop(proc)
    print(f"start: median {statistics.median(starts):.2f} s, max {max(starts):.2f} s "
          f"over {args.runs} runs")
    with tempfile.TemporaryDirectory() as d:
        proc, _ = start_lab(d)
        time.sleep(2)  # let start-up work settle
        c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(args.idle)
        c1, t1 = cpu_seconds(proc.pid), time.perf_counter()
        stop(proc)
    print(f"idle: {100 * (c1 - c0) / (t1 - t0):.2f}% of one core over {t1 - t0:.0f} s "
          "(world ticking every 1 s, traffic trickling through HAProxy and Fabio)")


if __name__ == "__main__":
    main()
