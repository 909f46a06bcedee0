"""The data layer against the embedded lab: how fast a change reaches the store, what
watching costs while nothing changes, and how long a big lab takes to load.

    .venv/bin/python benchmarks/data_layer.py [--samples 40] [--idle 60]

1. change → store latency (p50/p95/max) for a Consul change (a check turns critical) and a
   Nomad change (an allocation restarts), timed from the world action on the lab's loop to
   the store's change event for that object.
2. requests per minute the sources make while nothing changes (flapping and drift off).
3. time and peak RSS to load a lab of 5,000 allocations and 1,000 service instances into
   the store (the whole process: lab and jamtui in one).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path

from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.sim.model import GroupSpec, Job, ServiceSpec, TaskSpec
from jamtui.store import Change


def engine_for(lab: Lab, tmp: Path, poll: float = 5.0) -> Engine:
    path = tmp / "jamtui.toml"
    path.write_text(f"poll_interval = {poll}\n" + lab.config_toml())
    return Engine(load_config(path, env=lab.env()))


class Waiter:
    """Times the first store change for one (kind, id) after `arm()`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.target: tuple[Kind, str] | None = None
        self.done = threading.Event()
        self.at = 0.0

    def arm(self, kind: Kind, id_: str) -> None:
        with self.lock:
            self.target, self.at = (kind, id_), 0.0
            self.done.clear()

    def __call__(self, changes: list[Change]) -> None:
        now = time.perf_counter()
        with self.lock:
            if self.target and any((c.kind, c.id) == self.target for c in changes):
                self.at, self.target = now, None
                self.done.set()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def latency(samples: int, tmp: Path) -> None:
    with Lab(seed=1, flap_rate=0.0, log_rate=0.0, traffic=False) as lab:
        engine = engine_for(lab, tmp)
        waiter = Waiter()
        engine.store.subscribe(waiter)
        engine.start()
        engine.wait_ready(15)
        time.sleep(1)
        world = lab.world
        consul, nomad = [], []
        inst = next(i for i in engine.store.items(Kind.INSTANCE) if i.service == "example")
        check = next(c for c in inst.checks if c.service_id)
        status = "critical"
        for _ in range(samples):
            waiter.arm(Kind.INSTANCE, inst.id)
            t0 = time.perf_counter()
            lab.call(world.set_check, inst.node, check.check_id, status, "bench")
            assert waiter.done.wait(5), "consul change never arrived"
            consul.append(waiter.at - t0)
            status = "passing" if status == "critical" else "critical"
            time.sleep(0.05)
        alloc = next(a for a in engine.store.items(Kind.ALLOCATION)
                     if a.job_id == "example" and a.client_status == "running")
        for _ in range(samples):
            waiter.arm(Kind.ALLOCATION, alloc.id)
            t0 = time.perf_counter()
            lab.call(world.restart_alloc, alloc.id)
            assert waiter.done.wait(5), "nomad change never arrived"
            nomad.append(waiter.at - t0)
            time.sleep(0.05)
        engine.stop()
    for name, xs in (("consul", consul), ("nomad", nomad)):
        print(f"change→store {name}: p50 {1000 * statistics.median(xs):.1f} ms, "
              f"p95 {1000 * pct(xs, 0.95):.1f} ms, max {1000 * max(xs):.1f} ms "
              f"({len(xs)} changes)")


def idle_requests(seconds: float, tmp: Path) -> None:
    with Lab(seed=1, flap_rate=0.0, log_rate=0.0, traffic=False, tick=0) as lab:
        engine = engine_for(lab, tmp, poll=5.0)
        engine.start()
        engine.wait_ready(15)
        time.sleep(2)
        before = {n: s.requests_made for n, s in engine.sources.items()}
        time.sleep(seconds)
        after = {n: s.requests_made for n, s in engine.sources.items()}
        engine.stop()
    per_min = {n: (after[n] - before[n]) * 60 / seconds for n in after}
    parts = ", ".join(f"{n} {v:.0f}" for n, v in sorted(per_min.items()))
    print(f"requests/min while nothing changes over {seconds:.0f} s: {parts} "
          "(proxmox, fabio, haproxy poll every 5 s; consul and nomad hold long polls)")


def big_lab_jobs() -> list[Job]:
    return [
        Job(id="bulk", type="batch", groups=[GroupSpec(
            "work", 4000, [TaskSpec("work", driver="exec", behaviour="run")])]),
        Job(id="svc", type="service", groups=[GroupSpec(
            "svc", 1000, [TaskSpec("svc", behaviour="run")], ports=["http"],
            services=[ServiceSpec("svc", "http", tags=["metrics"])])]),
    ]


def big_load(tmp: Path) -> None:
    with Lab(seed=1, flap_rate=0.0, log_rate=0.0, traffic=False, tick=0,
             jobs=big_lab_jobs()) as lab:
        n_alloc = lab.call(lambda: len(lab.world.allocs))
        engine = engine_for(lab, tmp)
        t0 = time.perf_counter()
        engine.start()
        engine.wait_ready(60)
        while (engine.store.count(Kind.ALLOCATION) < n_alloc
               or engine.store.count(Kind.INSTANCE) < 1000):
            time.sleep(0.01)
        took = time.perf_counter() - t0
        engine.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"load {n_alloc} allocations + 1000 service instances: {took:.2f} s; "
          f"peak RSS of the whole process (lab + jamtui): {rss:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--only", choices=["latency", "idle", "load"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.only in (None, "latency"):
            latency(args.samples, tmp)
        if args.only in (None, "idle"):
            idle_requests(args.idle, tmp)
        if args.only in (None, "load"):
            big_load(tmp)


if __name__ == "__main__":
    main()
