"""The lab's Nomad API, driven by the real python-nomad client (and plain HTTP where
python-nomad has no call, e.g. blocking queries and followed logs).

Shapes follow developer.hashicorp.com/nomad/api-docs:
  jobs (list-jobs: JobListStub; read-job), allocations (list-allocations: AllocListStub;
  read-allocation), nodes (list-nodes: NodeListStub; drain-node; update-node-eligibility),
  client (stream-logs: framed StreamFrame {Offset, Data, File, FileEvent}; restart-allocation),
  events (event-stream: NDJSON, `{}` heartbeats), status (leader, peers),
  operator/raft (read-raft-configuration), and the blocking-queries and ACL pages.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from typing import Any

import nomad
import pytest
import requests
from nomad.api import exceptions as nomad_errors

from jamtui.sim.lab import Lab
from tests.helpers import wait_for

JOB_STUB = {"ID", "ParentID", "Name", "Namespace", "Datacenters", "NodePool", "Type", "Priority",
            "Periodic", "ParameterizedJob", "Stop", "Status", "StatusDescription",
            "JobModifyIndex", "SubmitTime", "JobSummary", "CreateIndex", "ModifyIndex"}
ALLOC_STUB = {"ID", "EvalID", "Name", "Namespace", "NodeID", "NodeName", "JobID", "JobType",
              "JobVersion", "TaskGroup", "DesiredStatus", "DesiredDescription", "ClientStatus",
              "ClientDescription", "DesiredTransition", "TaskStates", "DeploymentStatus",
              "FollowupEvalID", "NextAllocation", "RescheduleTracker", "CreateIndex",
              "ModifyIndex", "CreateTime", "ModifyTime"}
TASK_STATE = {"State", "Failed", "Restarts", "LastRestart", "StartedAt", "FinishedAt", "Events"}
NODE_STUB = {"Address", "ID", "Datacenter", "Name", "NodePool", "NodeClass", "Version", "Drain",
             "SchedulingEligibility", "Status", "StatusDescription", "Drivers", "HostVolumes",
             "LastDrain", "CreateIndex", "ModifyIndex"}


def client(lab: Lab, token: str | None = None) -> nomad.Nomad:
    return nomad.Nomad(address=lab.urls["nomad"], token=token or lab.secrets.nomad_token,
                       verify=True, timeout=5)


def get(lab: Lab, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{lab.urls['nomad']}{path}", params=params, timeout=15,
                        headers={"X-Nomad-Token": lab.secrets.nomad_token})


def running(n: nomad.Nomad, job: str) -> list[dict[str, Any]]:
    return [a for a in n.job.get_allocations(job) if a["ClientStatus"] == "running"]



def test_list_shapes_follow_the_docs(lab: Lab) -> None:
    n = client(lab)
    jobs = {j["ID"]: j for j in n.jobs.get_jobs()}
    assert {"example", "api", "db", "backup", "fabio", "node-exporter"} <= jobs.keys()
    assert jobs["example"].keys() >= JOB_STUB
    assert jobs["example"]["Type"] == "service" and jobs["fabio"]["Type"] == "system"
    assert jobs["example"]["JobSummary"]["Summary"]["web"]["Running"] == 3

    allocs = n.allocations.get_allocations()
    web = [a for a in allocs if a["JobID"] == "example"]
    assert len(web) == 3
    for a in web:
        assert a.keys() >= ALLOC_STUB
        assert a["Name"].startswith("example.web[") and a["TaskGroup"] == "web"
        assert a["ClientStatus"] == "running" and a["DesiredStatus"] == "run"
        state = a["TaskStates"]["server"]
        assert state.keys() >= TASK_STATE and state["State"] == "running"
        assert state["FinishedAt"] == "0001-01-01T00:00:00Z"  # Go's zero time
        assert isinstance(a["CreateTime"], int) and a["CreateTime"] > 10**18  # Unix ns

    nodes = n.nodes.get_nodes()
    assert sorted(x["Name"] for x in nodes) == ["vs0", "vs1", "vs2"]
    assert nodes[0].keys() >= NODE_STUB
    assert {x["Status"] for x in nodes} == {"ready"}

    one = n.allocation.get_allocation(web[0]["ID"])
    assert one["Job"]["ID"] == "example" and one["NodeName"] == web[0]["NodeName"]
    node = n.node.get_node(nodes[0]["ID"])
    assert node["Name"] == nodes[0]["Name"] and node["Attributes"]["unique.hostname"]


def test_status_and_raft_configuration(lab: Lab) -> None:
    n = client(lab)
    leader = n.status.leader.get_leader()
    assert leader.endswith(":4647")
    peers = n.status.peers.get_peers()
    assert leader in peers and len(peers) == 3
    raft = n.operator.get_configuration()
    assert [s["Leader"] for s in raft["Servers"]].count(True) == 1
    assert all(s["Voter"] for s in raft["Servers"])


def test_a_wrong_token_is_refused_with_403(lab: Lab) -> None:
    with pytest.raises(nomad_errors.URLNotAuthorizedNomadException) as err:
        client(lab, token="not-the-token").jobs.get_jobs()
    assert err.value.nomad_resp.text == "ACL token not found"  # an unknown secret
    anonymous = requests.get(f"{lab.urls['nomad']}/v1/jobs", timeout=5)
    assert anonymous.status_code == 403 and anonymous.text == "Permission denied"
    bearer = requests.get(f"{lab.urls['nomad']}/v1/jobs", timeout=5,
                          headers={"Authorization": f"Bearer {lab.secrets.nomad_token}"})
    assert bearer.status_code == 200


def test_blocking_query_returns_on_change_and_times_out_with_the_same_index(lab: Lab) -> None:
    first = get(lab, "/v1/allocations")
    index = int(first.headers["X-Nomad-Index"])
    assert first.headers["X-Nomad-KnownLeader"] == "true"

    # nothing changes: held for the wait, then answered with the same index
    started = time.monotonic()
    idle = get(lab, "/v1/allocations", index=index, wait="1s")
    assert 0.9 <= time.monotonic() - started < 3
    assert int(idle.headers["X-Nomad-Index"]) == index
    assert idle.json() == first.json()  # the same list (sent again as made: sim/nomad.py)

    # a change wakes the held query early
    victim = first.json()[0]["ID"]
    timer = threading.Timer(0.4, lambda: client(lab).allocation.stop_allocation(victim))
    timer.start()
    started = time.monotonic()
    woke = get(lab, "/v1/allocations", index=index, wait="20s")
    assert time.monotonic() - started < 5
    assert int(woke.headers["X-Nomad-Index"]) > index
    # the lab ticks: its own changes wake a held query too (a restart before the stop); the
    # next held queries, each woken early, bring the stop
    def status() -> str:
        return str({a["ID"]: a["DesiredStatus"] for a in woke.json()}[victim])

    while status() != "stop" and time.monotonic() - started < 5:
        at = int(woke.headers["X-Nomad-Index"])
        woke = get(lab, "/v1/allocations", index=at, wait="20s")
        assert int(woke.headers["X-Nomad-Index"]) > at
    # and the list answered after it is made anew: the stopped allocation says so
    assert status() == "stop"
    assert {a["ID"]: a["DesiredStatus"] for a in get(lab, "/v1/allocations").json()}[
        victim] == "stop"
    # another query (a prefix) is its own list
    assert [a["ID"] for a in get(lab, "/v1/allocations", prefix=victim[:8]).json()] == [victim]
    assert get(lab, "/v1/allocations", wait="bogus").status_code == 400


def test_actions_change_the_lab(lab: Lab) -> None:
    n = client(lab)
    # restart: the task's restart count moves, the allocation keeps running
    alloc = running(n, "example")[0]
    n.client.allocation.restart_allocation(alloc["ID"])
    after = n.allocation.get_allocation(alloc["ID"])
    assert after["TaskStates"]["server"]["Restarts"] == 1 and after["ClientStatus"] == "running"

    # scale: one more instance appears and runs
    resp = requests.post(f"{lab.urls['nomad']}/v1/job/example/scale", timeout=5,
                         headers={"X-Nomad-Token": lab.secrets.nomad_token},
                         json={"Count": 4, "Target": {"Group": "web"}})
    assert resp.status_code == 200 and resp.json()["EvalID"]
    wait_for(lambda: len(running(n, "example")) == 4)

    # stop the job: every allocation is told to stop, the job is dead
    out = n.job.deregister_job("api")
    assert {"EvalID", "EvalCreateIndex", "JobModifyIndex"} <= out.keys()
    wait_for(lambda: n.job.get_job("api")["Status"] == "dead")
    assert not running(n, "api")

    # register a new job from JSON
    job = {"Job": {"ID": "hello", "Type": "service", "TaskGroups": [{
        "Name": "hello", "Count": 2,
        "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
        "Services": [{"Name": "hello", "PortLabel": "http",
                      "Tags": ["urlprefix-hello.jamfox.dev/"]}],
        "Tasks": [{"Name": "web", "Driver": "docker", "Config": {"image": "nginx"}}],
    }]}}
    reg = n.job.register_job("hello", job)
    assert reg["EvalID"]
    wait_for(lambda: len(running(n, "hello")) == 2)
    with pytest.raises(nomad_errors.BadRequestNomadException):
        n.job.register_job("broken", {"Job": {"ID": "broken", "TaskGroups": []}})


def test_drain_moves_allocations_and_eligibility_toggles(lab: Lab) -> None:
    n = client(lab)
    nodes = {x["Name"]: x["ID"] for x in n.nodes.get_nodes()}
    web_on = lambda name: [a for a in running(n, "example") if a["NodeID"] == nodes[name]]  # noqa: E731
    assert web_on("vs0")
    out = n.node.drain_node_with_spec(nodes["vs0"], {"Deadline": 60 * 10**9})
    assert "NodeModifyIndex" in out
    assert n.node.get_node(nodes["vs0"])["SchedulingEligibility"] == "ineligible"
    wait_for(lambda: not web_on("vs0") and len(running(n, "example")) == 3)

    n.node.drain_node_with_spec(nodes["vs0"], None, mark_eligible=True)
    assert n.node.get_node(nodes["vs0"])["SchedulingEligibility"] == "eligible"
    n.node.eligible_node(nodes["vs1"], ineligible=True)
    assert n.node.get_node(nodes["vs1"])["SchedulingEligibility"] == "ineligible"


def _frames(raw: bytes) -> list[dict[str, Any]]:
    """Nomad's framed log stream: JSON objects back to back, no separator."""
    text, pos, out = raw.decode(), 0, []
    decoder = json.JSONDecoder()
    while pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)
    return out


def test_logs_framed_plain_offsets_and_errors(lab: Lab) -> None:
    n = client(lab)
    alloc = running(n, "example")[0]["ID"]
    lab.call(lab.world.log_line, alloc, "server", "marker-one")
    plain = n.client.stream_logs.stream(alloc, "server", "stdout", plain=True)
    assert "marker-one" in plain

    framed = get(lab, f"/v1/client/fs/logs/{alloc}", task="server", type="stdout")
    frames = [f for f in _frames(framed.content) if f]
    data = b"".join(base64.b64decode(f["Data"]) for f in frames)
    assert data.decode() == plain
    assert frames[-1]["Offset"] == len(data)
    assert frames[0]["File"] == "alloc/logs/server.stdout.0"

    tail = get(lab, f"/v1/client/fs/logs/{alloc}", task="server", type="stdout",
               origin="end", offset=11, plain="true")
    assert tail.text == plain[-11:]

    assert get(lab, f"/v1/client/fs/logs/{alloc}", type="stdout").text == \
        "must provide task name"
    bad = get(lab, f"/v1/client/fs/logs/{alloc}", task="server", type="stdout", origin="middle")
    assert bad.status_code == 400
    assert get(lab, "/v1/client/fs/logs/ffffffff-0000", task="x", type="stdout"
               ).status_code == 404


def test_followed_log_receives_lines_as_written_and_sees_truncation(lab: Lab) -> None:
    n = client(lab)
    alloc = running(n, "example")[0]["ID"]
    size = len(n.client.stream_logs.stream(alloc, "server", "stdout", plain=True))
    resp = requests.get(f"{lab.urls['nomad']}/v1/client/fs/logs/{alloc}", stream=True,
                        timeout=10, headers={"X-Nomad-Token": lab.secrets.nomad_token},
                        params={"task": "server", "type": "stdout", "follow": "true",
                                "origin": "end", "offset": 0})
    received = b""
    events: list[str] = []

    def read() -> None:
        nonlocal received
        decoder, buf = json.JSONDecoder(), ""
        for chunk in resp.iter_content(chunk_size=None):
            buf += chunk.decode()
            while buf:
                try:
                    obj, end = decoder.raw_decode(buf)
                except ValueError:
                    break
                buf = buf[end:]
                received += base64.b64decode(obj.get("Data", ""))
                if obj.get("FileEvent"):
                    events.append(obj["FileEvent"])
            if b"marker-after-truncate" in received:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.3)
    lab.call(lab.world.log_line, alloc, "server", "marker-live")
    wait_for(lambda: b"marker-live" in received)
    assert size > 0 and b"started on" not in received  # origin=end: only what is new
    lab.call(lab.world.truncate_log, alloc, "server")
    lab.call(lab.world.log_line, alloc, "server", "marker-after-truncate")
    reader.join(5)
    resp.close()
    assert "file truncated" in events
    assert b"marker-after-truncate" in received


def test_event_stream_heartbeat_then_events(lab: Lab) -> None:
    n = client(lab)
    resp = requests.get(f"{lab.urls['nomad']}/v1/event/stream", stream=True, timeout=10,
                        headers={"X-Nomad-Token": lab.secrets.nomad_token},
                        params=[("topic", "Allocation:*")])
    lines = resp.iter_lines()
    assert json.loads(next(lines)) == {}  # the heartbeat at connect
    victim = running(n, "example")[0]["ID"]
    n.allocation.stop_allocation(victim)
    seen: list[dict[str, Any]] = []
    for raw in lines:
        assert raw, "Nomad never sends a blank line"
        msg = json.loads(raw)
        for ev in msg.get("Events", []):
            assert ev["Topic"] == "Allocation" and ev["Index"] == msg["Index"]
            seen.append(ev)
        if any(e["Key"] == victim and
               e["Payload"]["Allocation"]["DesiredStatus"] == "stop" for e in seen):
            break
    resp.close()

    # python-nomad's own stream reader works against it (it dies on a blank line)
    thread, stop, queue = n.event.stream.get_stream(timeout=10)
    thread.start()
    time.sleep(0.2)
    n.client.allocation.restart_allocation(running(n, "example")[0]["ID"])
    msg = queue.get(timeout=5)
    stop.set()
    assert msg["Events"][0]["Topic"] in {"Allocation", "Job", "Evaluation", "Node"}
    # one more event: the reader sees `stop` after it and ends, not cut off mid-read when the
    # lab ends (its thread raises that as ChunkedEncodingError, a warning in CI)
    n.client.allocation.restart_allocation(running(n, "example")[0]["ID"])
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_losing_two_servers_loses_the_leader(lab: Lab) -> None:
    n = client(lab)
    for name in ("vb0", "vb1"):
        vm = next(v for v in lab.world.vms.values() if v.name == name)
        lab.call(lab.world.vm_stop, vm.node, vm.vmid)
    wait_for(lambda: n.status.leader.get_leader() == "")
    with pytest.raises(nomad_errors.BaseNomadException) as err:
        n.jobs.get_jobs()
    assert err.value.nomad_resp.status_code == 500
    assert "No cluster leader" in err.value.nomad_resp.text


@pytest.mark.parametrize("kind", ["error", "forbidden", "malformed", "down", "reset"])
def test_faults_reach_the_client_as_documented(lab: Lab, kind: str) -> None:
    n = client(lab)
    lab.set_fault("nomad", kind)
    try:
        if kind == "error":
            with pytest.raises(nomad_errors.BaseNomadException) as err:
                n.jobs.get_jobs()
            assert err.value.nomad_resp.status_code == 500
        elif kind == "forbidden":
            with pytest.raises(nomad_errors.URLNotAuthorizedNomadException):
                n.jobs.get_jobs()
        elif kind == "malformed":
            with pytest.raises(ValueError):  # JSONDecodeError
                n.jobs.get_jobs()
        else:
            with pytest.raises(nomad_errors.BaseNomadException) as err:
                n.jobs.get_jobs()
            assert isinstance(err.value.nomad_resp, requests.exceptions.ConnectionError)
    finally:
        lab.clear_fault()
    assert n.jobs.get_jobs()


def test_slow_fault_adds_latency(lab: Lab) -> None:
    n = client(lab)
    lab.set_fault("nomad", "slow", latency=0.5)
    try:
        started = time.monotonic()
        n.jobs.get_jobs()
        assert time.monotonic() - started >= 0.45
    finally:
        lab.clear_fault()


def test_a_completed_drain_leaves_the_node_ineligible_with_last_drain_complete(lab: Lab) -> None:
    """nomad/state/state_store.go updateNodeDrainImpl: a drain sets the node ineligible; when
    it completes DrainStrategy is null and Drain false, SchedulingEligibility stays
    ineligible, and LastDrain says complete (whole seconds); a cancel says canceled."""
    n = client(lab)
    nodes = {x["Name"]: x["ID"] for x in n.nodes.get_nodes()}
    assert n.node.get_node(nodes["vs1"])["LastDrain"] is None  # never drained
    n.node.drain_node_with_spec(nodes["vs1"], {"Deadline": 60 * 10**9})
    draining = n.node.get_node(nodes["vs1"])
    assert draining["LastDrain"]["Status"] == "draining" and draining["Drain"] is True
    refused = requests.post(f"{lab.urls['nomad']}/v1/node/{nodes['vs1']}/eligibility",
                            json={"Eligibility": "eligible"}, timeout=5,
                            headers={"X-Nomad-Token": lab.secrets.nomad_token})
    assert (refused.status_code, refused.text) == (
        500, "can not set node's scheduling eligibility to eligible while it is draining")
    wait_for(lambda: n.node.get_node(nodes["vs1"])["DrainStrategy"] is None)
    done = n.node.get_node(nodes["vs1"])
    assert (done["Drain"], done["SchedulingEligibility"]) == (False, "ineligible")
    assert done["LastDrain"]["Status"] == "complete"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", done["LastDrain"]["UpdatedAt"])
    stub = next(x for x in n.nodes.get_nodes() if x["ID"] == nodes["vs1"])
    assert stub["LastDrain"]["Status"] == "complete"  # the list's stub carries it too

    n.node.drain_node_with_spec(nodes["vs2"], {"Deadline": 60 * 10**9})
    n.node.drain_node_with_spec(nodes["vs2"], None, mark_eligible=False)  # -keep-ineligible
    cancelled = n.node.get_node(nodes["vs2"])
    assert cancelled["LastDrain"]["Status"] == "canceled"
    assert cancelled["SchedulingEligibility"] == "ineligible"
