"""The one timeline (`:events`, #15): derived from store changes (pure), seeded with what the
objects already tell of their past, and live against the lab: a Proxmox task, an allocation's
state change, a node drain and a Consul check transition each become one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.model import (
    Allocation,
    CheckInfo,
    Kind,
    NomadNode,
    PveTask,
    ServiceInstance,
    TaskEvent,
    TaskInfo,
)
from jamtui.sim.lab import Lab
from jamtui.store import Store
from jamtui.timeline import Timeline, check_transitions, derive, workflow_entries
from tests.conftest import FAST
from tests.helpers import wait_for


def instance(status: str, output: str = "") -> ServiceInstance:
    return ServiceInstance("vs0/web-1", "web", "web-1", "vs0", "192.168.42.31", 8080,
                           checks=(CheckInfo("c1", "http", status, output, "web-1"),))


def test_check_transitions_are_lines_and_first_states_are_not() -> None:
    assert check_transitions(None, instance("passing"), 1.0) == []
    (e,) = check_transitions(instance("passing"), instance("critical", "HTTP 500\nmore"), 2.0)
    assert (e.source, e.kind, e.object_id) == ("consul", Kind.INSTANCE, "vs0/web-1")
    assert e.what == "check http: passing → critical (HTTP 500)" and e.failed
    assert check_transitions(instance("critical"), instance("critical"), 3.0) == []


def test_tasks_and_nodes_derive_lines() -> None:
    running = PveTask("UPID:pve1:1:2:3:qmigrate:300:root@pam!jamtui:", "pve1", "qmigrate",
                      "300", "root@pam!jamtui", 100)
    (start,) = derive(Kind.PVE_TASK, None, running, 100.0)
    assert start.what == "migrate started by root@pam!jamtui on pve1" and start.label == "VM 300"
    ended = PveTask(running.upid, "pve1", "qmigrate", "300", "root@pam!jamtui", 100, 103,
                    "migration aborted")
    (end,) = derive(Kind.PVE_TASK, running, ended, 104.0)
    assert end.time == 103 and end.failed and end.upid == running.upid
    assert end.what.startswith("migrate failed: migration aborted (3 s")
    node = NomadNode("n1", "vs0", "192.168.42.31", "ready", "eligible", False)
    drained = NomadNode("n1", "vs0", "192.168.42.31", "ready", "ineligible", True)
    assert [e.what for e in derive(Kind.NOMAD_NODE, node, drained, 5.0)] == [
        "drain on", "eligibility eligible → ineligible"]


def test_timeline_follows_the_store_newest_first_and_filters() -> None:
    store = Store(clock=lambda: 50.0)
    store.upsert(Kind.PVE_TASK, PveTask("UPID:a", "pve1", "qmstart", "200", "root@pam", 10, 12,
                                        "OK"))
    timeline = Timeline(store)
    timeline.start()
    assert [e.what for e in timeline.entries()] == ["start OK (2 s, by root@pam)"]
    store.upsert(Kind.INSTANCE, instance("passing"))
    store.upsert(Kind.INSTANCE, instance("critical"))
    store.upsert(Kind.PVE_TASK, PveTask("UPID:b", "pve2", "vzstart", "400", "root@pam", 40))
    whats = [e.what for e in timeline.entries()]
    assert whats == ["check http: passing → critical", "start started by root@pam on pve2",
                     "start OK (2 s, by root@pam)"]
    assert [e.label for e in timeline.entries("CT 400")] == ["CT 400"]
    timeline.stop()
    store.upsert(Kind.INSTANCE, instance("passing"))
    assert len(timeline.entries()) == 3  # stopped: no longer listening


def test_a_first_picture_keeps_its_newest_events_not_its_last_arrived() -> None:
    """More task events than the timeline keeps in one first picture (20,000 at 5,000
    allocations, 2,000 kept): the newest by time stay, whatever order the store wrote them
    in (arrival order kept the last allocations' events, however old)."""

    def alloc(n: int, at: float) -> Allocation:
        events = tuple(TaskEvent(at + i, "Started" if i else "Received", "") for i in range(2))
        return Allocation(f"{n:08d}-a", f"web.web[{n}]", "web", "web", "n1", "vs0", "running",
                          "run", tasks=(TaskInfo("web", "running", events=events),))

    store = Store(clock=lambda: 500.0)
    timeline = Timeline(store, keep=3)
    timeline.start()
    # the newest allocation first, as a list read in id order may give it
    store.replace(Kind.ALLOCATION, [alloc(0, 300.0), alloc(1, 100.0), alloc(2, 200.0)])
    assert [(e.time, e.object_id) for e in timeline.entries()] == [
        (301.0, "00000000-a"), (300.0, "00000000-a"), (201.0, "00000002-a")]
    # and seeded from a store that holds them already, the same
    seeded = Timeline(store, keep=3)
    seeded.start()
    assert [e.time for e in seeded.entries()] == [301.0, 300.0, 201.0]
    # later changes still come in as lines
    store.upsert(Kind.ALLOCATION, replace(alloc(1, 100.0), client_status="failed"))
    assert any(e.object_id == "00000001-a" and e.time == 500.0 for e in timeline.entries())


def test_a_first_picture_s_past_is_told_once_the_first_frame_is_drawn() -> None:
    """At 5,000 allocations the first picture's 20,000 task events were sorted on the Nomad
    thread while the cockpit drew its first frame (#17): told once it is drawn, merged by
    time with what happened meanwhile, the newest kept."""
    import threading

    def alloc(n: int, at: float, status: str = "running") -> Allocation:
        events = tuple(TaskEvent(at + i, "Started" if i else "Received", "") for i in range(2))
        return Allocation(f"{n:08d}-a", f"web.web[{n}]", "web", "web", "n1", "vs0", status,
                          "run", tasks=(TaskInfo("web", "running", events=events),))

    store = Store(clock=lambda: 500.0)
    timeline = Timeline(store, keep=3)
    timeline.first_frame = drawn = threading.Event()
    timeline.start()
    heard: list[Any] = []
    timeline.listen(heard.extend)
    store.replace(Kind.ALLOCATION, [alloc(0, 300.0), alloc(1, 100.0), alloc(2, 200.0)])
    assert timeline.entries() == []  # not yet
    store.upsert(Kind.ALLOCATION, alloc(1, 100.0, "failed"))  # meanwhile: told at once
    assert [(e.time, e.object_id) for e in timeline.entries()] == [(500.0, "00000001-a")]
    drawn.set()
    wait_for(lambda: len(timeline.entries()) == 3, timeout=5)
    assert [(e.time, e.object_id) for e in timeline.entries()] == [
        (500.0, "00000001-a"), (301.0, "00000000-a"), (300.0, "00000000-a")]
    assert {e.time for e in heard} == {500.0, 301.0, 300.0}


def test_workflow_steps_from_journals(tmp_path: Path) -> None:
    d = tmp_path / "workflows" / "20261129-160000-node-add-vs3"
    d.mkdir(parents=True)
    lines = [{"at": 1.0, "type": "workflow", "kind": "node-add", "params": {"name": "vs3"}},
             {"at": 2.0, "type": "step", "step": "apply", "state": "running"},
             {"at": 9.0, "type": "step", "step": "apply", "state": "failed",
              "message": "Error: 403"},
             {"at": 9.5, "type": "end", "state": "failed"}]
    (d / "journal.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (tmp_path / "workflows" / "broken").mkdir()
    entries = workflow_entries(tmp_path)
    assert [(e.label, e.what, e.failed) for e in entries] == [
        ("node-add vs3", "step apply: running", False),
        ("node-add vs3", "step apply: failed (Error: 403)", True),
        ("node-add vs3", "workflow failed", True)]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Engine]]:
    with Lab(seed=4, tick=0.2, traffic=False, **FAST) as lab:
        path = tmp_path_factory.mktemp("tl") / "jamtui.toml"
        path.write_text("poll_interval = 0.5\n" + lab.config_toml())
        engine = Engine(load_config(path, env=lab.env()))
        engine.start()
        try:
            assert engine.wait_ready(10)
            yield lab, engine
        finally:
            engine.stop()


def test_the_lab_live(live: tuple[Lab, Engine]) -> None:
    lab, engine = live
    timeline = engine.timeline
    # the first picture brings the past: the seeded tasks, the allocations' task events
    wait_for(lambda: any(e.source == "proxmox" for e in timeline.entries()))
    assert any(e.source == "nomad" and "Started" in e.what for e in timeline.entries())
    vm = next(v for v in engine.store.items(Kind.VM) if v.name == "vs2")
    engine.sources["proxmox"].vm_action(vm.node, vm.vmid, "reboot")
    wait_for(lambda: any(e.label == f"VM {vm.vmid}" and e.what.startswith("reboot OK")
                         for e in timeline.entries()), timeout=10)
    node = next(n for n in engine.store.items(Kind.NOMAD_NODE) if n.name == "vs1")
    engine.sources["nomad"].eligibility(node.id, False)
    wait_for(lambda: any(e.object_id == node.id and "ineligible" in e.what
                         for e in timeline.entries()), timeout=10)
    node_name, check_id = lab.call(lambda: next(
        k for k, c in lab.world.checks.items() if getattr(c, "service_id", "")))
    lab.call(lab.world.set_check, node_name, check_id, "critical", "boom")
    wait_for(lambda: any(e.source == "consul" and e.what.endswith("→ critical (boom)")
                         for e in timeline.entries()), timeout=10)
    entries = timeline.entries()
    newest = [e.time for e in entries]
    assert newest == sorted(newest, reverse=True)
