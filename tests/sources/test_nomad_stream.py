"""The Nomad event stream's way into the store (#17): an event is applied as it comes, never
held behind a request (each batch re-read its job's summary before the next batch was read:
0.1-0.7 s at 5,000 allocations), and a big frame in many chunks is read in linear time."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jamtui.config import load_config
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.sources.nomad import LineReader, NomadSource
from jamtui.store import Store
from tests.conftest import FAST
from tests.helpers import wait_for


class Counted(bytes):
    """A chunk that counts the bytes the reader looks through in it."""

    looked = 0

    def __contains__(self, item: object) -> bool:
        Counted.looked += len(self)
        return super().__contains__(item)  # type: ignore[operator]

    def split(self, *args: Any, **kw: Any) -> list[bytes]:  # type: ignore[override]
        Counted.looked += len(self)
        return super().split(*args, **kw)


def test_a_big_frame_in_many_chunks_is_read_in_linear_time() -> None:
    """A job of thousands of allocations can come as one frame of megabytes, in many reads:
    each byte is looked at a bounded number of times, not once per chunk after it (the old
    reader added each chunk to the rest and split all of it again)."""
    frame = json.dumps({"Index": 7, "Events": [
        {"Topic": "Allocation", "Key": f"{i:08x}", "Payload": {"Name": f"web[{i}]"}}
        for i in range(20_000)]}).encode() + b"\n"
    assert len(frame) > 1_000_000
    reader = LineReader()
    Counted.looked = 0
    lines: list[bytes] = []
    for at in range(0, len(frame), 4096):
        lines += reader.feed(Counted(frame[at:at + 4096]))
    assert Counted.looked <= 2 * len(frame)  # quadratic would be ~250 times the frame
    assert len(lines) == 1 and json.loads(lines[0])["Events"][-1]["Key"] == f"{19_999:08x}"
    assert reader.pending == 0


def test_lines_split_anywhere_even_inside_a_character() -> None:
    text = '{}\n{"Index":5,"Events":[{"Key":"café ✓ 日本"}]}\n{"Ind'.encode()
    for cut in range(1, len(text)):
        reader = LineReader()
        lines = reader.feed(text[:cut]) + reader.feed(text[cut:])
        assert [json.loads(line) for line in lines] == [
            {}, {"Index": 5, "Events": [{"Key": "café ✓ 日本"}]}]
        assert reader.pending == len(b'{"Ind')


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=5, tick=0, traffic=False, **FAST) as running:  # no ticks: a quiet world
        yield running


def test_an_allocation_event_is_applied_while_a_job_read_is_held(
        lab: Lab, tmp_path: Path) -> None:
    """A stop makes two batches: the allocation stopped, then its replacement placed. The
    replacement reaches the store while the job summary read the first batch asked for is
    still unanswered (it waited for it before)."""
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    source = NomadSource(Store(), load_config(path, env=lab.env()).nomad, poll_interval=0.5)
    held = threading.Event()
    release = threading.Event()
    jobs = source._jobs

    def slow_jobs(prefix: str | None = None) -> list[dict[str, Any]]:
        if prefix is not None:  # a job summary re-read, after an event
            held.set()
            release.wait(30)
        return jobs(prefix)

    source._jobs = slow_jobs  # type: ignore[method-assign]
    source.start()
    try:
        assert source.ready.wait(10)
        store = source.store
        wait_for(lambda: any(a.job_id == "example" and a.client_status == "running"
                             for a in store.items(Kind.ALLOCATION)), timeout=10)
        victim = next(a for a in store.items(Kind.ALLOCATION)
                      if a.job_id == "example" and a.client_status == "running")
        before = {a.id for a in store.items(Kind.ALLOCATION)}
        lab.call(lab.world.stop_alloc, victim.id)
        wait_for(held.is_set, timeout=10)
        # the job read is held; the stream goes on: the stop and the replacement are in
        wait_for(lambda: store.get(Kind.ALLOCATION, victim.id).desired_status == "stop",
                 timeout=10)
        wait_for(lambda: any(a.id not in before and a.job_id == "example"
                             for a in store.items(Kind.ALLOCATION)), timeout=10)
        assert not release.is_set()
        release.set()
        # and the job's summary is read after them, once the read is free again
        wait_for(lambda: any(g.complete >= 1 for g in store.get(Kind.JOB, "example").groups),
                 timeout=10)
    finally:
        release.set()
        source.stop()


def test_an_allocation_already_read_still_refreshes_an_older_job_list() -> None:
    """The full read takes the job list and the allocations side by side: an allocation
    event between the two lists' indexes is in the allocations read (not applied again) but
    not in the job's summary counts: the job is read again (the jobs view said `0/1/0` for a
    running allocation until something else touched the job)."""
    from jamtui.config import NomadConfig

    source = NomadSource(Store(), NomadConfig(), poll_interval=30)
    source._seen = {"Job": 10, "Allocation": 20}

    def batch(at: int, job: str) -> dict[str, Any]:
        return {"Index": at, "Events": [{"Topic": "Allocation", "Index": at, "Payload": {
            "Allocation": {"ID": f"{at:08x}-0000", "JobID": job}}}]}

    source._apply(batch(5, "old"))  # older than both lists: nothing to do
    source._apply(batch(15, "between"))  # in the allocations, newer than the job list
    assert source._job_refresh == {"between"}
    assert source.store.items(Kind.ALLOCATION) == []  # not applied twice
