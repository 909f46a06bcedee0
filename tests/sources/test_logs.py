"""Following a task's log through the lab's framed stream: lines as they are written, a reset
mid-way resumed at the right offset (nothing lost, nothing twice), truncation."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import nomad
import pytest

from jamtui.config import NomadConfig, Secret
from jamtui.sim.lab import Lab
from jamtui.sources.logs import FrameDecoder, LogFollower, LogLine
from jamtui.sources.nomad import decode_alloc
from jamtui.ui.app import task_started
from tests.conftest import FAST
from tests.helpers import wait_for


@pytest.fixture
def lab() -> Iterator[Lab]:
    """No background chatter: these tests count the bytes of the lines they write (a chatty
    line landing in the same frame moved the truncation test's offset, by the dice's luck)."""
    with Lab(seed=1, tick=0.2, traffic=False, log_rate=0.0, **FAST) as running:
        yield running


def start(lab: Lab, **kw: Any) -> tuple[LogFollower, queue.Queue[LogLine], str]:
    alloc = lab.call(lambda: next(a.id for a in lab.world.allocs.values()
                                  if a.job_id == "example" and a.client_status == "running"))
    cfg = NomadConfig(address=lab.urls["nomad"], token=Secret(lab.secrets.nomad_token))
    follower = LogFollower(cfg, alloc, "server", **kw)
    lines: queue.Queue[LogLine] = queue.Queue()

    def run() -> None:
        for line in follower.lines():
            lines.put(line)

    threading.Thread(target=run, daemon=True).start()
    if kw.get("follow", True):
        assert follower.connected.wait(5)
    return follower, lines, alloc


def drain(lines: queue.Queue[LogLine], until: str, timeout: float = 8.0) -> list[LogLine]:
    got: list[LogLine] = []
    while not any(until in line.text for line in got):
        got.append(lines.get(timeout=timeout))
    return got


def test_follow_receives_lines_as_written(lab: Lab) -> None:
    follower, lines, alloc = start(lab, origin="end")
    try:
        for i in range(5):
            lab.call(lab.world.log_line, alloc, "server", f"live-{i}")
        got = [line.text for line in drain(lines, "live-4")]
        assert [t.split()[-1] for t in got if "live-" in t] == [f"live-{i}" for i in range(5)]
        assert not any("started on" in t for t in got)  # origin=end: nothing old
    finally:
        follower.stop()


def test_a_reset_resumes_without_loss_or_duplicates(lab: Lab) -> None:
    follower, lines, alloc = start(lab, origin="end")
    try:
        lab.call(lab.world.log_line, alloc, "server", "before-0")
        drain(lines, "before-0")
        lab.set_fault("nomad", "reset")  # the stream is cut mid-way
        for i in range(3):
            lab.call(lab.world.log_line, alloc, "server", f"during-{i}")
        wait_for(lambda: follower.reconnects >= 1)
        lab.clear_fault()
        lab.call(lab.world.log_line, alloc, "server", "after-0")
        got = [line.text.split()[-1] for line in drain(lines, "after-0")]
        marks = [t for t in got if t.startswith(("before", "during", "after"))]
        assert marks == ["during-0", "during-1", "during-2", "after-0"]
    finally:
        follower.stop()


def test_truncation_starts_again_from_the_top(lab: Lab) -> None:
    follower, lines, alloc = start(lab, origin="end")
    try:
        lab.call(lab.world.log_line, alloc, "server", "old-line")
        drain(lines, "old-line")
        lab.call(lab.world.truncate_log, alloc, "server")
        lab.call(lab.world.log_line, alloc, "server", "new-line")
        got = drain(lines, "new-line")
        assert got[-1].event == "file truncated"
        assert got[-1].offset == len(got[-1].text) + 1  # the new file's first line
    finally:
        follower.stop()


def test_a_restarted_task_keeps_coming_in_the_same_follow(lab: Lab) -> None:
    """Nomad's logmon keeps the task's log file across a restart (it appends, rotating by
    size): the follower sees the restart and what the new run writes, without reconnecting."""
    follower, lines, alloc = start(lab, origin="end")
    try:
        lab.call(lab.world.log_line, alloc, "server", "first-run")
        drain(lines, "first-run")
        lab.call(lab.world.restart_alloc, alloc, "server")
        lab.call(lab.world.log_line, alloc, "server", "second-run")
        got = [line.text for line in drain(lines, "second-run")]
        assert any(t.endswith("restarted by user") for t in got)
        assert follower.reconnects == 0
    finally:
        follower.stop()


def test_not_following_reads_what_is_there_and_ends(lab: Lab) -> None:
    _, lines, _ = start(lab, follow=False)
    first = lines.get(timeout=5)
    assert "started on" in first.text


def test_decoder_handles_split_frames_and_heartbeats() -> None:
    decoder = FrameDecoder()
    assert decoder.feed('{"Offset":3,"Da') == []
    assert decoder.feed('ta":"YWIK"}{}{"Off') == [{"Offset": 3, "Data": "YWIK"}, {}]
    assert decoder.feed('set":5}') == [{"Offset": 5}]
    with pytest.raises(Exception, match="not an object"):
        decoder.feed("[1]")


def test_the_first_read_apart_then_following_from_the_line_not_yet_complete(lab: Lab) -> None:
    """The viewer reads a merged tail's backlog apart (to order it) and then follows: the
    line half written at that moment comes whole, once, and nothing is repeated."""
    alloc = lab.call(lambda: next(a for a in lab.world.allocs.values()
                                  if a.job_id == "example" and a.client_status == "running"))

    def half(data: bytes) -> None:
        lab.world.log_file(alloc, "server", "stdout").data.extend(data)
        lab.world.notify_logs()

    for i in range(3):
        lab.call(lab.world.log_line, alloc.id, "server", f"before-{i}")
    lab.call(half, b"half-")
    cfg = NomadConfig(address=lab.urls["nomad"], token=Secret(lab.secrets.nomad_token))
    follower = LogFollower(cfg, alloc.id, "server", origin="end", offset=64 * 1024)
    first = [line.text.split()[-1] for line in follower.backlog()]
    assert first[-3:] == ["before-0", "before-1", "before-2"] and "half-" not in first
    lines: queue.Queue[LogLine] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in follower.lines()],
                     daemon=True).start()
    try:
        assert follower.connected.wait(5)
        lab.call(half, b"done\n")
        lab.call(lab.world.log_line, alloc.id, "server", "after")
        got = [line.text for line in drain(lines, "after")]
        assert got[0] == "half-done" and got[1].endswith(" after") and len(got) == 2
    finally:
        follower.stop()


def test_task_start_times_come_from_the_labs_events_as_nomad_gives_them(lab: Lab) -> None:
    """Nomad's TaskEvent.Time is Unix nanoseconds; the viewer orders a merged tail's first
    reads by the earliest `Started` event (StartedAt is the last start)."""
    client = nomad.Nomad(address=lab.urls["nomad"], token=lab.secrets.nomad_token, timeout=5)
    stub = next(a for a in client.allocations.get_allocations()
                if a["JobID"] == "example" and a["ClientStatus"] == "running")
    raw = client.allocation.get_allocation(stub["ID"])["TaskStates"]["server"]
    started = [e["Time"] for e in raw["Events"] if e["Type"] == "Started"]
    assert started and all(isinstance(t, int) and t > 10**18 for t in started)  # ns, not s
    task = next(t for t in decode_alloc(stub).tasks if t.name == "server")
    assert task_started(task) == pytest.approx(min(started) / 1e9)
    lab.call(lab.world.restart_alloc, stub["ID"], "server")  # a later start: the first counts
    wait_for(lambda: len([e for e in client.allocation.get_allocation(stub["ID"])
                          ["TaskStates"]["server"]["Events"] if e["Type"] == "Started"]) > 1)
    again = decode_alloc(client.allocation.get_allocation(stub["ID"]))
    task = next(t for t in again.tasks if t.name == "server")
    assert task.started_at is not None and task.started_at > min(started) / 1e9
    assert task_started(task) == pytest.approx(min(started) / 1e9)
