"""The sources' fast decoding (jamtui/sources/jsonload.py: msgspec, straight into structs of
the kept fields) gives the store exactly what the stdlib path gave: the lab's real bodies
are decoded both ways and every record compared, a body with every kept field set too, and a
few values checked against the body itself. A body that is not JSON, or JSON of another
shape, still fails in words."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import consul
import pytest
import requests
import urllib3.response

from jamtui.model import Allocation, ServiceInstance
from jamtui.sim.lab import Lab
from jamtui.sources import jsonload
from jamtui.sources.base import describe_error
from jamtui.sources.consul import (
    ConsulSource,
    _decoded,
    decode_instance,
    decode_instances,
    decode_node_check,
    decode_node_checks,
)
from jamtui.sources.nomad import NomadSource, decode_alloc, decode_allocs
from jamtui.store import Store
from tests.conftest import FAST
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=5, tick=0.2, traffic=False, **FAST) as running:
        yield running


def _get(lab: Lab, backend: str, path: str) -> bytes:
    token = lab.secrets.nomad_token if backend == "nomad" else lab.secrets.consul_token
    header = "X-Nomad-Token" if backend == "nomad" else "X-Consul-Token"
    resp = requests.get(f"{lab.urls[backend]}{path}", headers={header: token}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.content


def _running_allocs(lab: Lab) -> bytes:
    def ready() -> bytes | None:
        body = _get(lab, "nomad", "/v1/allocations")
        raw = json.loads(body)
        events = [e for a in raw for s in (a.get("TaskStates") or {}).values()
                  for e in s.get("Events") or []]
        return body if any(a["ClientStatus"] == "running" for a in raw) and events else None

    wait_for(lambda: ready() is not None, timeout=20)
    body = ready()
    assert body is not None
    return body


def test_allocation_list_decodes_to_the_same_records(lab: Lab) -> None:
    body = _running_allocs(lab)
    raw = json.loads(body)
    fast = decode_allocs(body)
    assert len(fast) == len(raw) > 5
    assert fast == [decode_alloc(a) for a in raw]
    # made without their __init__ (nomad._allocation, _task_info): the same records to every
    # reader: repr, hash, fields in order, replace()
    slow = decode_alloc(raw[0])
    assert repr(fast[0]) == repr(slow) and hash(fast[0]) == hash(slow)
    assert list(vars(fast[0]).items()) == list(vars(slow).items())
    assert list(vars(fast[0].tasks[0]).items()) == list(vars(slow.tasks[0]).items())
    assert dataclasses.replace(fast[0], name="x") == dataclasses.replace(slow, name="x")
    # the body itself, not only the other path
    first, a = raw[0], fast[0]
    assert (a.id, a.job_id, a.node_name, a.client_status) == (
        first["ID"], first["JobID"], first["NodeName"], first["ClientStatus"])
    assert a.create_time == first["CreateTime"] / 1e9
    assert [t.name for t in a.tasks] == sorted(first["TaskStates"])
    state = first["TaskStates"][a.tasks[0].name]
    assert a.tasks[0].events[-1].message == state["Events"][-1]["DisplayMessage"]
    started = datetime.fromisoformat(state["StartedAt"][:26] + "+00:00").timestamp()
    assert a.tasks[0].started_at == started
    # without task states (as `status` reads them)
    bare = _get(lab, "nomad", "/v1/allocations?task_states=false")
    assert decode_allocs(bare) == [decode_alloc(x) for x in json.loads(bare)]


def test_every_kept_allocation_field_comes_through(lab: Lab) -> None:
    """A record with every field set away from its default: a field one path dropped would
    be its default there and the records would differ."""
    raw = json.loads(_running_allocs(lab))
    entry = copy.deepcopy(next(a for a in raw if a.get("TaskStates")))
    entry.update(Name="web.api[3]", Namespace="prod", JobVersion=7, ClientDescription="cd",
                 DesiredDescription="dd", NextAllocation="n-1", PreviousAllocation="p-1",
                 ModifyIndex=99, CreateTime=1_700_000_000_123_456_789,
                 ModifyTime=1_700_000_001_000_000_000)
    name, task = next(iter(entry["TaskStates"].items()))
    task.update(State="dead", Failed=True, Restarts=3, FinishedAt="2026-01-02T04:00:00Z",
                StartedAt="2026-01-02T03:04:05.123456789Z")
    task["Events"] = [{"Type": f"T{i}", "Time": i * 10**9 + 5, "DisplayMessage": "",
                       "Message": f"m{i}", "Details": {"x": "y"}} for i in range(14)]
    entry["TaskStates"]["zz-second"] = {"State": "pending", "Events": None}
    body = json.dumps([entry, {"ID": "only-an-id"}]).encode()
    fast = decode_allocs(body)
    assert fast == [decode_alloc(json.loads(body)[0]), decode_alloc({"ID": "only-an-id"})]
    default = Allocation("", "", "", "", "", "", "", "")
    for field in dataclasses.fields(Allocation):
        assert getattr(fast[0], field.name) != getattr(default, field.name), field.name
    t = next(t for t in fast[0].tasks if t.name == name)
    assert (t.state, t.failed, t.restarts, t.last_event) == ("dead", True, 3, "T13")
    assert [e.message for e in t.events] == [f"m{i}" for i in range(4, 14)]  # the last 10
    assert fast[1] == Allocation("only-an-id", "", "", "", "", "", "", "")


def test_consul_health_and_checks_decode_to_the_same_records(lab: Lab) -> None:
    names = json.loads(_get(lab, "consul", "/v1/catalog/services"))
    assert len(names) > 3
    seen = 0
    for name in names:
        body = _get(lab, "consul", f"/v1/health/service/{name}")
        raw = json.loads(body)
        fast = decode_instances(body)
        assert fast == [decode_instance(e) for e in raw], name
        for inst, entry in zip(fast, raw, strict=True):
            assert inst.id == f"{entry['Node']['Node']}/{entry['Service']['ID']}"
            assert inst.port == entry["Service"]["Port"]
            assert [c.status for c in inst.checks] == [c["Status"] for c in entry["Checks"]]
            seen += 1
    assert seen > 5
    body = _get(lab, "consul", "/v1/health/state/any")
    raw = json.loads(body)
    assert decode_node_checks(body) == [((c["Node"], c["CheckID"]), decode_node_check(c))
                                        for c in raw]
    entry = {"Node": {"Node": "vs1", "Address": "10.0.0.9"},
             "Service": {"ID": "_nomad-task-0123abcd-0123-4567-89ab-0123456789ab-web-http",
                         "Service": "web", "Address": "10.0.0.8", "Port": 8080,
                         "Tags": ["a", "b"], "Kind": "connect-proxy"},
             "Checks": [{"CheckID": "c1", "Name": "n1", "Status": "warning", "Output": "o",
                         "ServiceID": "s1"}]}
    [inst] = decode_instances(json.dumps([entry]))
    assert inst == decode_instance(entry)
    assert inst.alloc_id == "0123abcd-0123-4567-89ab-0123456789ab"
    blank = ServiceInstance("", "", "", "", "", 0)
    for field in dataclasses.fields(ServiceInstance):
        assert getattr(inst, field.name) != getattr(blank, field.name), field.name
    assert decode_instances(b'[{}]') == [decode_instance({})]
    sparse = [{"Node": "n1", "CheckID": "c"}, {"Node": "n1", "CheckID": "d", "Output": None,
                                               "ServiceID": None, "ServiceName": None}]
    assert decode_node_checks(json.dumps(sparse)) == [
        ((c["Node"], c["CheckID"]), decode_node_check(c)) for c in sparse]


@pytest.mark.parametrize("body", [b"<html>busy</html>", b"", b'[{"ID": "a"', b"NaN"])
def test_a_body_that_is_not_json_is_said_in_words(body: bytes) -> None:
    for decode in (decode_allocs, decode_instances, decode_node_checks, jsonload.loads):
        with pytest.raises(json.JSONDecodeError) as caught:
            decode(body)  # type: ignore[operator]
        words = describe_error("nomad", "http://10.0.0.1:4646", caught.value)
        assert words == ("http://10.0.0.1:4646 sent a malformed answer (not valid JSON). "
                         "Is it really nomad?")
    response: Any = consul.base.Response(200, {}, body)
    with pytest.raises(consul.ConsulException, match=r"^Failed to decode JSON"):
        _decoded(decode_instances)(response)


def test_the_check_watch_keeps_each_unchanged_check(lab: Lab) -> None:
    """Each answer of the check watch is every check: those that did not move are the last
    answer's records (not built again), those that moved are new, and all equal a fresh
    decode."""
    body = _get(lab, "consul", "/v1/health/state/any")
    first = dict(decode_node_checks(body))
    raw = json.loads(body)
    assert len(raw) > 3
    raw[0]["Status"] = "passing" if raw[0]["Status"] == "critical" else "critical"
    raw[1]["Output"] = "a new output"
    raw[2]["ServiceName"] = "renamed"
    again = decode_node_checks(json.dumps(raw), first)
    assert again == [((c["Node"], c["CheckID"]), decode_node_check(c)) for c in raw]
    kept = [key for key, check in again if check is first.get(key)]
    assert len(kept) == len(raw) - 3
    assert {key for key, check in again[:3]}.isdisjoint(kept)
    assert again[0][1].info.status == raw[0]["Status"]


def test_an_empty_list_is_none_whether_null_or_empty() -> None:
    for decode in (decode_allocs, decode_instances, decode_node_checks):
        assert decode(b"[]") == decode(b"null") == []  # type: ignore[operator]


@pytest.mark.parametrize("body", [b'["x"]', b'[{"Name": "no id"}]', b'{"ID": "x"}'])
def test_json_of_another_shape_is_said_in_words(body: bytes) -> None:
    with pytest.raises(jsonload.WrongShape) as caught:
        decode_allocs(body)
    words = describe_error("nomad", "http://10.0.0.1:4646", caught.value)
    assert words.startswith("nomad at http://10.0.0.1:4646: the answer is not in the shape "
                            "the API documents (")
    assert "Expected" in words or "missing" in words  # what, and where: msgspec says


def test_an_error_status_keeps_py_consuls_words() -> None:
    for code, kind in ((403, consul.ACLPermissionDenied), (500, consul.ConsulException)):
        with pytest.raises(kind, match="nope"):
            _decoded(decode_instances)(consul.base.Response(code, {}, b"nope"))
    assert _decoded(decode_instances)(consul.base.Response(404, {}, b"")) is None


def test_malformed_answers_from_the_lab_fail_in_words(lab: Lab, tmp_path: Any) -> None:
    from jamtui.config import load_config

    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    cfg = load_config(path, env=lab.env())
    assert cfg.nomad is not None and cfg.consul is not None
    store = Store()
    nomad = NomadSource(store, cfg.nomad)
    consul_source = ConsulSource(store, cfg.consul)
    lab.set_fault("nomad", "malformed")
    lab.set_fault("consul", "malformed")
    try:
        with pytest.raises(json.JSONDecodeError) as caught:
            nomad._allocations()
        assert "sent a malformed answer (not valid JSON)" in describe_error(
            "nomad", cfg.nomad.address, caught.value)
        with pytest.raises(consul.ConsulException) as failed:
            consul_source._read_service("nomad")
        assert "sent a malformed answer (not valid JSON)" in str(consul_source._words(
            failed.value))
    finally:
        lab.clear_fault()


def test_big_bodies_are_read_in_big_pieces_into_the_same_records(lab: Lab, tmp_path: Any,
                                                                 monkeypatch: Any) -> None:
    """Nomad's allocation list and Consul's health answers are read 1 MiB at a time
    (`jsonload.whole_body`), not in requests' 10 KiB pieces (#17: 830 trips through urllib3,
    each giving the GIL up, for 8.3 MB at 5,000 allocations), and give the records a plain
    read gives; the connection goes back to its pool (the next read reuses it)."""
    from jamtui.config import load_config

    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    cfg = load_config(path, env=lab.env())
    store = Store()
    nomad, consul_source = NomadSource(store, cfg.nomad), ConsulSource(store, cfg.consul)
    pieces: list[int] = []
    real = urllib3.response.HTTPResponse.stream

    def recording(self: urllib3.response.HTTPResponse, amt: int | None = 2**16,
                  decode_content: bool | None = None) -> Any:
        pieces.append(amt or 0)  # requests' `iter_content` and `tls.PlainGet` read here
        return real(self, amt, decode_content)

    monkeypatch.setattr(urllib3.response.HTTPResponse, "stream", recording)
    _running_allocs(lab)

    def same_allocations() -> bool:  # the lab lives: compared with a plain read just after
        pieces.clear()
        allocs = nomad._allocations()
        assert pieces and min(pieces) >= jsonload.BODY_PIECE == 1 << 20
        return allocs == decode_allocs(_get(lab, "nomad", "/v1/allocations?namespace=*"))

    wait_for(same_allocations, timeout=20)
    pool = consul_source.client.http.session.get_adapter(cfg.consul.address).poolmanager \
        .connection_from_url(cfg.consul.address)

    def same_instances() -> bool:
        pieces.clear()
        instances = consul_source._read_service("nomad")
        assert pieces and min(pieces) >= jsonload.BODY_PIECE
        return bool(instances) and instances == decode_instances(
            _get(lab, "consul", "/v1/health/service/nomad"))

    wait_for(same_instances, timeout=20)
    opened = pool.num_connections
    for _ in range(3):  # each read's connection went back to the pool: no new one
        consul_source._read_service("nomad")
    assert pool.num_connections == opened
