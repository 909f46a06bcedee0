"""The Nomad event stream as a real server sends it: a new subscription first gets the events
still in the buffer (Nomad's event broker), and garbage collection makes no event. The lab
does both; jamtui must neither resurrect a collected allocation from the replay nor pay a
request per buffered Job event on every reconnect."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from jamtui.config import load_config
from jamtui.model import Health, Kind
from jamtui.sim.lab import Lab
from jamtui.sources.nomad import NomadSource
from jamtui.store import Store
from tests.conftest import FAST
from tests.helpers import wait_for


def _quiet(lab: Lab) -> int:
    """Wait until the lab has settled (services running, batch work done) and nothing has
    happened in Nomad for a second; the index then."""
    wait_for(lambda: lab.call(lambda: all(
        a.terminal if a.job_type == "batch" else a.client_status in ("running", "complete")
        for a in lab.world.allocs.values())), timeout=15)
    last, since = -1, time.monotonic()
    while time.monotonic() - since < 1.0:
        index = lab.call(lambda: lab.world.nomad.index)
        if index != last:
            last, since = index, time.monotonic()
        time.sleep(0.1)
    return last


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(seed=3, tick=0, traffic=False, **FAST) as running:  # no ticks: a quiet world
        yield running


def _first_batches(lab: Lab, index: int | None, count: int) -> list[dict[str, Any]]:
    params = [("topic", "*")] + ([("index", str(index))] if index is not None else [])
    resp = requests.get(f"{lab.urls['nomad']}/v1/event/stream", params=params, stream=True,
                        headers={"X-Nomad-Token": lab.secrets.nomad_token}, timeout=10)
    out: list[dict[str, Any]] = []
    try:
        for raw in resp.iter_lines():
            msg = json.loads(raw)
            if msg.get("Events"):
                out.append(msg)
            if len(out) >= count:
                break
    finally:
        resp.close()
    return out


def test_the_lab_replays_its_buffer_as_nomads_broker_does(lab: Lab) -> None:
    newest = _quiet(lab)
    buffered = lab.call(lambda: sorted({e.index for e in lab.world.events}))
    assert len(buffered) >= 3 and buffered[-1] <= newest
    # no index: from the oldest event still in the buffer
    assert _first_batches(lab, None, 1)[0]["Index"] == buffered[0]
    # an index in the buffer: from there, inclusive
    assert _first_batches(lab, buffered[1], 1)[0]["Index"] == buffered[1]
    # beyond the newest: the newest buffered one (StartAtClosest)
    assert _first_batches(lab, newest + 50, 1)[0]["Index"] == buffered[-1]


def test_the_lab_buffer_keeps_the_last_event_buffer_size_indexes(lab: Lab) -> None:
    _quiet(lab)
    assert lab.call(lambda: len({e.index for e in lab.world.events})) > 5
    lab.call(setattr, lab.world, "event_buffer_size", 5)
    alloc = lab.call(lambda: next(a.id for a in lab.world.allocs.values()
                                  if a.client_status == "running"))
    newest = lab.call(lambda: lab.world.nomad.index)
    lab.call(lab.world.restart_alloc, alloc)  # a new event: the oldest ones leave
    indexes = lab.call(lambda: sorted({e.index for e in lab.world.events}))
    assert len(indexes) == 5 and indexes[-1] > newest


def _newest_event(lab: Lab) -> int:
    """The newest buffered index of a topic jamtui follows."""
    return lab.call(lambda: max(e.index for e in lab.world.events
                                if e.topic in ("Node", "Job", "Allocation")))


def _source(lab: Lab, tmp_path: Path) -> NomadSource:
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    cfg = load_config(path, env=lab.env())
    return NomadSource(Store(), cfg.nomad, poll_interval=0.5)


def _reconnect(lab: Lab, source: NomadSource) -> None:
    """Cut the stream (as a restarting server or a proxy would) and wait for the new one."""
    streams = _streams(lab)
    lab.set_fault("nomad", "reset")
    wait_for(lambda: source.store.backend("nomad").health is Health.DOWN, timeout=10)
    lab.clear_fault()
    wait_for(lambda: _streams(lab) > streams, timeout=15)
    wait_for(lambda: source.store.backend("nomad").health is Health.OK, timeout=15)


def _streams(lab: Lab) -> int:
    assert lab.ctx is not None
    return sum(n for k, n in lab.ctx.requests.items() if k.startswith("GET /v1/event/stream"))


def _job_reads(lab: Lab) -> int:
    assert lab.ctx is not None
    return sum(n for k, n in lab.ctx.requests.items()
               if k.startswith("GET /v1/jobs?") and "prefix" in k.split("?")[1].split("&"))


def test_a_collected_allocation_never_comes_back(lab: Lab, tmp_path: Path) -> None:
    _quiet(lab)
    victim = lab.call(lambda: next(a.id for a in lab.world.allocs.values()
                                   if a.job_id == "example" and a.client_status == "running"))
    lab.call(lab.world.stop_alloc, victim)
    wait_for(lambda: lab.call(lambda: lab.world.allocs[victim].terminal), timeout=5)
    _quiet(lab)
    newest = _newest_event(lab)
    lab.call(lab.world.gc_alloc, victim)  # gone, and no event says so
    assert lab.call(lambda: any(e.key == victim for e in lab.world.events))  # still buffered

    source = _source(lab, tmp_path)
    store = source.store
    source.start()
    try:
        assert source.ready.wait(10)
        wait_for(lambda: source.stream_index >= newest, timeout=10)  # the replay is read
        time.sleep(0.3)
        assert store.get(Kind.ALLOCATION, victim) is None
        assert store.count(Kind.ALLOCATION) == lab.call(lambda: len(lab.world.allocs))
        _reconnect(lab, source)
        time.sleep(0.5)
        assert store.get(Kind.ALLOCATION, victim) is None
    finally:
        source.stop()


def test_buffered_job_events_cost_no_requests_on_connect_or_reconnect(
        lab: Lab, tmp_path: Path) -> None:
    _quiet(lab)
    newest = _newest_event(lab)
    assert lab.call(lambda: sum(e.topic in ("Job", "Allocation") for e in lab.world.events)) > 5
    source = _source(lab, tmp_path)
    source.start()
    try:
        assert source.ready.wait(10)
        wait_for(lambda: source.stream_index >= newest, timeout=10)
        time.sleep(0.3)
        assert _job_reads(lab) == 0, lab.ctx.requests if lab.ctx else None
        _reconnect(lab, source)
        time.sleep(0.5)
        assert _job_reads(lab) == 0, lab.ctx.requests if lab.ctx else None
        assert source.store.count(Kind.JOB) > 0
        # the reconnect resumed after what it had, rather than replaying the whole buffer
        assert lab.ctx is not None
        assert any(k.startswith("GET /v1/event/stream?index&") for k in lab.ctx.requests)
        # and a live change still costs its one read
        alloc = next(a for a in source.store.items(Kind.ALLOCATION)
                     if a.job_id == "example" and a.client_status == "running")
        lab.call(lab.world.restart_alloc, alloc.id)
        wait_for(lambda: _job_reads(lab) >= 1, timeout=10)
    finally:
        source.stop()
