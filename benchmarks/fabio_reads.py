"""Fabio at scale (issue #17): when each source's first picture is in, when every Fabio
instance's table is, what the routes cost to hold, and what watching them costs.

    .venv/bin/python benchmarks/fabio_reads.py CONFIG [--seconds 60]

Against a running lab (e.g. `jamtui lab --scale 100,5000,50 --workdir /tmp/lab5k`, CONFIG
its jamtui.toml). From this checkout, or from another with `PYTHONPATH=/tmp/main` (the
"before": `git worktree add /tmp/main main`). One engine with its followers (the route book,
as the cockpit runs it) is started; printed: when each source is first ready (as
/tmp/firstreads.py printed it), when Fabio holds every instance's table (`reading()` says
nothing more), the route records in the store and the process's peak RSS; then, 15 s later,
`/api/routes` requests per minute and the process's CPU over `--seconds`, first as the
overview shows (no routes on screen), then with routes on screen (`Engine.showing`).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.model import Kind

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    fields = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    engine = Engine(load_config(args.config))
    start = time.perf_counter()
    engine.start()
    fabio = engine.sources.get("fabio")
    if fabio is None:
        sys.exit("no [fabio] addresses in this config")
    pending = dict(engine.sources)
    while pending and time.perf_counter() - start < 120:
        for name, source in list(pending.items()):
            if source.ready.is_set():
                print(f"{name}: ready at {time.perf_counter() - start:.2f} s", flush=True)
                del pending[name]
        time.sleep(0.01)
    reading = getattr(fabio, "reading", lambda: "")  # the "before" reads them all at once
    while reading() and time.perf_counter() - start < 120:
        time.sleep(0.05)
    print(f"fabio: every instance read at {time.perf_counter() - start:.2f} s; "
          f"{engine.store.count(Kind.ROUTE)} route records; CPU so far {cpu_seconds():.1f} s; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB",
          flush=True)
    time.sleep(15)
    for label, kinds in (("overview", {"hypervisors", "vms", "services", "allocations"}),
                         ("routes on screen", {"routes"})):
        engine.showing(kinds)
        before, cpu = fabio.requests_made, cpu_seconds()
        time.sleep(args.seconds)
        per_min = (fabio.requests_made - before) * 60 / args.seconds
        print(f"{label}: {per_min:.0f} /api/routes a minute, process CPU "
              f"{(cpu_seconds() - cpu) * 100 / args.seconds:.1f} %", flush=True)
    engine.stop()


if __name__ == "__main__":
    main()
