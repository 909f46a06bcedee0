"""Big labs (`jamtui lab --scale`) and what the lab must do so it is not its own bottleneck."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from jamtui.inventory import default_inventory_path, load_inventory
from jamtui.sim import fabio
from jamtui.sim.model import Alloc, GroupSpec, Job
from jamtui.sim.scale import ScaleError, parse_scale, scale_inventory, scale_jobs
from jamtui.sim.world import PortOnlyRuntime, World


class SlowRuntime(PortOnlyRuntime):
    """Start-up slower than the world's task_delay, as thousands of servers are."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: dict[str, int] = {}
        self.stops: list[str] = []

    async def start(self, alloc: Alloc, job: Job, group: GroupSpec) -> dict[str, int]:
        self.starts[alloc.id] = self.starts.get(alloc.id, 0) + 1
        await asyncio.sleep(0.3)
        return await super().start(alloc, job, group)

    async def stop(self, alloc: Alloc) -> None:
        self.stops.append(alloc.id)


async def test_an_allocation_starts_once_when_start_up_outlasts_task_delay() -> None:
    runtime = SlowRuntime()
    w = World(load_inventory(default_inventory_path()), seed=1, runtime=runtime,
              flap_rate=0.0, task_delay=0.05)
    await w.start(tick=0)
    try:
        await asyncio.sleep(0.5)  # the placement timers fire while the lab's start ran
        assert runtime.starts and set(runtime.starts.values()) == {1}
        assert runtime.stops == []  # no loser stopping the winner's servers
        running = [a for a in w.allocs.values() if a.client_status == "running"]
        assert running and all(a.ports for a in running if a.job_id == "fabio")
    finally:
        await w.stop()


def test_parse_scale_says_what_is_wrong() -> None:
    assert parse_scale("100,5000,50") == (100, 5000, 50)
    for bad, words in [("100,5000", "three whole numbers"), ("a,b,c", "three whole numbers"),
                       ("10,20,5", "at least 25"), ("0,10,1", "CLIENTS")]:
        with pytest.raises(ScaleError, match=words):
            parse_scale(bad)


async def test_scaled_world_has_the_asked_allocations_and_routes(tmp_path: Path) -> None:
    inv = scale_inventory(40, tmp_path / "inv.yml")
    w = World(inv, seed=2, flap_rate=0.0, task_delay=0.01, jobs=scale_jobs(40, 600, 20))
    await w.start(tick=0)
    try:
        assert sum(1 for n in w.nodes.values() if n.status == "ready") == 40
        live = [a for a in w.allocs.values() if not a.terminal]
        assert len(live) == 600
        routes = fabio.api_routes(w) or []
        body = fabio.routes_body(w)
        assert json.loads(body) == routes and fabio.routes_body(w) is body  # encoded once
        assert {r["host"] for r in routes} == {f"svc{i:03d}.jamfox.dev" for i in range(20)}
        assert len(routes) == 600 - 80  # one target per service allocation
        # the routing table follows a failing check, though it is built from an index
        alloc = next(a for a in live if a.job_id == "svc003")
        w.instance_health(alloc.id, False)
        after = fabio.api_routes(w) or []
        assert len(after) == len(routes) - 1
        assert all(r["dst"] != f"http://127.0.0.1:{alloc.ports['http']}/" for r in after)
        # and stays cheap: 600 instances' routes well under what a scan of every check cost
        t0 = time.perf_counter()
        for _ in range(20):
            fabio.api_routes(w)
        assert (time.perf_counter() - t0) / 20 < 0.05
    finally:
        await w.stop()
