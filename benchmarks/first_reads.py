"""When each source's first picture is in after the engine starts, and the CPU it took
(issue #17: the sources decode megabytes at 5,000 allocations, under the UI's GIL).

    .venv/bin/python benchmarks/first_reads.py CONFIG [--runs 3] [--summary | --snapshot]

Against a running lab (e.g. `jamtui lab --scale 100,5000,50 --workdir /tmp/lab5k`, CONFIG
its jamtui.toml). From this checkout, or from another with `PYTHONPATH=/tmp/main` (the
"before"). Each run is a fresh process (`python -P` of this file with `--one`): one engine,
followers as the cockpit runs them (`--summary`: as `status` does), printed: when each
source is ready, and the process's CPU seconds (user+system) when all are (imports
excluded: counted from just before `Engine.start`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    fields = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def one(config: Path, summary: bool, snapshot: bool = False) -> None:
    from jamtui.config import load_config
    from jamtui.engine import Engine

    engine = Engine(load_config(config))
    cpu0, start = cpu_seconds(), time.perf_counter()
    engine.start(followers=not (summary or snapshot), summary=summary)
    pending = dict(engine.sources)
    ready: dict[str, float] = {}
    while pending and time.perf_counter() - start < 120:
        for name, source in list(pending.items()):
            if source.ready.is_set():
                ready[name] = time.perf_counter() - start
                del pending[name]
        time.sleep(0.005)
    cpu = cpu_seconds() - cpu0
    engine.stop()
    last = max(ready.values(), default=0.0)
    print(" ".join(f"{n}={t:.2f}" for n, t in sorted(ready.items()))
          + f" all={last:.2f} cpu={cpu:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--summary", action="store_true", help="as `status` starts it")
    parser.add_argument("--snapshot", action="store_true",
                        help="as `snapshot --json` starts it (first picture only, everything)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.config, args.summary, args.snapshot)
        return
    alls, cpus = [], []
    for _ in range(args.runs):
        cmd = [sys.executable, "-P", __file__, str(args.config), "--one"]
        flags = (["--summary"] if args.summary else []) + (["--snapshot"] if args.snapshot else [])
        out = subprocess.run(cmd + flags, check=True,
                             capture_output=True, text=True).stdout.strip()
        print(out, flush=True)
        fields = dict(f.split("=") for f in out.split())
        alls.append(float(fields["all"]))
        cpus.append(float(fields["cpu"]))
    print(f"median: all ready {statistics.median(alls):.2f} s, "
          f"CPU {statistics.median(cpus):.2f} s", flush=True)


if __name__ == "__main__":
    main()
