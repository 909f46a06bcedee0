"""CPU per small repeated read, in one thread (`time.thread_time`): Nomad's allocation stats
(`NomadSource.alloc_stats`), Nomad's and Consul's liveness probes (`probe`), against a running
lab (`jamtui lab --workdir DIR`; its config file). For #17's idle CPU: run it on two checkouts
back to back (`--jamtui-root`) for a before/after.

    .venv/bin/python benchmarks/small_reads.py --config /tmp/lead-lab/jamtui.toml
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def per_read(fn: Any, n: int) -> float:
    """ms of this thread's CPU per call of `fn`, after 20 calls of warm-up."""
    for _ in range(20):
        fn()
    start = time.thread_time()
    for _ in range(n):
        fn()
    return (time.thread_time() - start) / n * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="the lab's jamtui.toml")
    ap.add_argument("--reads", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3, help="the median of this many")
    ap.add_argument("--jamtui-root", default=str(Path(__file__).resolve().parents[1]))
    args = ap.parse_args()
    sys.path.insert(0, args.jamtui_root)

    import jamtui
    from jamtui.config import load_config
    from jamtui.sources.consul import ConsulSource
    from jamtui.sources.nomad import NomadSource
    from jamtui.store import Store

    print(f"jamtui from {Path(jamtui.__file__).parent}")
    cfg = load_config(Path(args.config))
    nomad, consul = NomadSource(Store(), cfg.nomad), ConsulSource(Store(), cfg.consul)
    running = [a["ID"] for a in nomad.client.allocations.get_allocations()
               if a["ClientStatus"] == "running"]
    if not running:
        print("no running allocation in the lab", file=sys.stderr)
        return 1
    turn = iter(range(1 << 62))

    def stats() -> None:
        nomad.alloc_stats(running[next(turn) % len(running)])

    for name, fn in (("nomad alloc_stats", stats),
                     ("nomad probe", lambda: nomad.probe(5.0)),
                     ("consul probe", lambda: consul.probe(5.0))):
        ms = [per_read(fn, args.reads) for _ in range(args.rounds)]
        print(f"{name:18} {statistics.median(ms):.3f} ms CPU per read "
              f"(rounds: {', '.join(f'{m:.3f}' for m in ms)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
