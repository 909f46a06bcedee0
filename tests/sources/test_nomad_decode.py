"""Nomad decoders against the official API documentation's sample responses, not our lab.

Fixtures (tests/fixtures/nomad) are the "Sample Response" blocks of
developer.hashicorp.com/nomad/api-docs: allocations.json from "List Allocations"
(allocations.mdx), nodes.json from "List Nodes" and node.json from "Read Node" (nodes.mdx),
jobs.json from "List Jobs" (jobs.mdx); long event lists trimmed, field names untouched.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jamtui.sources.nomad import (
    decode_alloc,
    decode_job,
    decode_node,
    decode_quorum,
    rfc3339,
    split_stream,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nomad"


def load(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


def test_allocation_list_stub() -> None:
    (raw,) = load("allocations.json")  # type: ignore[misc]
    a = decode_alloc(raw)
    assert a.id == "5457f16d-0f87-8e6b-5e91-0c7da3a41eb7" and a.short_id == "5457f16d"
    assert (a.name, a.job_id, a.task_group) == ("example.cache[0]", "example", "cache")
    assert (a.client_status, a.desired_status) == ("running", "run")
    assert a.node_name == "linux" and a.node_id.startswith("f476d2b4")
    assert a.create_time == pytest.approx(1636017249.798459) and a.modify_index == 15
    (task,) = a.tasks
    assert task.name == "redis" and task.state == "running" and task.restarts == 0
    assert task.finished_at is None  # null in the list, not an error
    assert task.started_at == rfc3339("2021-11-04T09:14:12.04996Z")
    assert task.last_event == "Task started by client"
    assert task.events[-1].type == "Started" and task.events[-1].time > 1.6e9
    assert task.events[0].type == "Received"


def test_node_list_stub_and_full_node() -> None:
    (raw,) = load("nodes.json")  # type: ignore[misc]
    n = decode_node(raw)
    assert (n.name, n.address, n.status, n.eligibility, n.drain) == (
        "nomad-4", "10.138.0.5", "ready", "eligible", False)
    assert n.version == "0.8.0-rc1" and n.modify_index == 2526
    full = decode_node(load("node.json"))  # type: ignore[arg-type]
    # the full Node has no Address or Version: they come from HTTPAddr and the attributes
    assert full.address == "127.0.0.1" and full.version == "1.1.0"


def test_job_list_stub_with_summary() -> None:
    (raw,) = load("jobs.json")  # type: ignore[misc]
    j = decode_job(raw)
    assert (j.id, j.type, j.status, j.priority) == ("example", "service", "pending", 50)
    (group,) = j.groups
    assert (group.name, group.queued, group.complete, group.running) == ("cache", 1, 1, 0)


def test_rfc3339_handles_nanoseconds_zero_and_offsets() -> None:
    assert rfc3339("0001-01-01T00:00:00Z") is None
    assert rfc3339(None) is None
    assert rfc3339("2017-07-25T23:36:26.106431265Z") == pytest.approx(1501025786.106431)
    assert rfc3339("2021-11-04T10:14:22.054814+01:00") == rfc3339("2021-11-04T09:14:22.054814Z")


def test_quorum_is_what_was_checked_not_every_voter_while_a_leader_exists() -> None:
    peers = [f"10.0.0.{i}:4647" for i in (1, 2, 3)]
    servers = [{"ID": str(i), "Name": f"s{i}.global", "Address": p, "SerfStatus": "alive",
                "Leader": i == 1, "Healthy": i != 3, "Voter": True}
               for i, p in enumerate(peers, 1)]
    health = {"Healthy": False, "FailureTolerance": 0, "Servers": servers}
    q = decode_quorum("10.0.0.1:4647", peers, health)
    assert q.has_leader and len(q.servers) == 3 and len(q.alive) == 2
    assert q.failure_tolerance == 0  # the server that stopped is not counted alive
    members = [{"Name": f"s{i}.global", "Addr": f"10.0.0.{i}", "Port": 4648,
                "Tags": {"role": "nomad", "port": "4647"},
                "Status": "alive" if i != 3 else "failed"} for i in (1, 2, 3)]
    gossip = decode_quorum("10.0.0.1:4647", peers, None, members, "no operator:read")
    assert gossip.alive == tuple(peers[:2]) and gossip.failure_tolerance == 0
    blind = decode_quorum("10.0.0.1:4647", peers, None, None, "no node:read either")
    assert not blind.checked and blind.failure_tolerance is None
    lost = decode_quorum("", peers, None, members[:1])
    assert not lost.has_leader and lost.failure_tolerance is not None
    assert lost.failure_tolerance < 0


def test_event_stream_framing() -> None:
    objs, rest = split_stream('{}\n{"Index":5,"Events":[]}\n{"Ind')
    assert objs == [{}, {"Index": 5, "Events": []}] and rest == '{"Ind'
