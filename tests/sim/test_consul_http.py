"""The lab's Consul API, driven by the real py-consul client.

Shapes follow developer.hashicorp.com/consul/api-docs: catalog (list-services), health
(list-service-instances-for-service, list-checks-in-state), agent (list-members), kv
(read-key, create-update-key, delete-key), connect/intentions (list-intentions,
read-specific-intention-by-name), status, operator/raft (read-configuration), and
features/blocking (index, wait, X-Consul-Index).
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

import consul
import pytest
import requests

from jamtui.sim.lab import Lab
from tests.helpers import wait_for

ENTRY_NODE = {"ID", "Node", "Address", "Datacenter", "TaggedAddresses", "Meta"}
ENTRY_SERVICE = {"ID", "Service", "Tags", "Address", "TaggedAddresses", "Meta", "Port",
                 "Weights"}
ENTRY_CHECK = {"Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID",
               "ServiceName", "ServiceTags"}


def client(lab: Lab, token: str | None = None) -> consul.Consul:
    u = urlsplit(lab.urls["consul"])
    return consul.Consul(host=u.hostname, port=u.port, scheme="http",
                         token=token or lab.secrets.consul_token)



def test_catalog_and_health_shapes(lab: Lab) -> None:
    c = client(lab)
    index, services = c.catalog.services()
    assert isinstance(index, str) and int(index) >= 1
    assert "urlprefix-example.jamfox.dev/" in services["example"]
    assert {"api", "db", "nomad", "consul", "fabio"} <= services.keys()

    _, entries = c.health.service("example")
    assert len(entries) == 3
    for e in entries:
        assert e["Node"].keys() >= ENTRY_NODE and e["Service"].keys() >= ENTRY_SERVICE
        for check in e["Checks"]:
            assert check.keys() >= ENTRY_CHECK
        serf = [ck for ck in e["Checks"] if ck["CheckID"] == "serfHealth"]
        assert len(serf) == 1 and serf[0]["ServiceID"] == ""
    assert c.health.service("no-such-service")[1] == []

    proxies = c.health.service("api-sidecar-proxy")[1]
    assert proxies and proxies[0]["Service"]["Kind"] == "connect-proxy"


def test_passing_filter_drops_an_instance_with_a_failing_check(lab: Lab) -> None:
    c = client(lab)
    _, entries = c.health.service("example")
    check = next(ck for ck in entries[0]["Checks"] if ck["ServiceID"])
    lab.call(lab.world.set_check, check["Node"], check["CheckID"], "critical", "HTTP GET: 503")
    assert len(c.health.service("example", passing=True)[1]) == 2
    assert len(c.health.service("example")[1]) == 3
    critical = c.health.state("critical")[1]
    assert [ck["CheckID"] for ck in critical] == [check["CheckID"]]


def members(lab: Lab) -> list[dict[str, Any]]:
    # py-consul sends no token here; Consul's ACLs then filter the list to nothing
    return requests.get(f"{lab.urls['consul']}/v1/agent/members", timeout=5,
                        headers={"X-Consul-Token": lab.secrets.consul_token}).json()


def test_members_status_and_raft(lab: Lab) -> None:
    c = client(lab)
    assert c.agent.members() == []  # anonymous: filtered, not refused
    members_ = {m["Name"]: m for m in members(lab)}
    assert members_["vb0"]["Status"] == 1 and members_["vb0"]["Tags"]["role"] == "consul"
    assert members_["vs0"]["Tags"]["role"] == "node"
    leader = c.status.leader()
    assert leader.endswith(":8300") and leader in c.status.peers()
    with pytest.raises(consul.ACLPermissionDenied):
        c.operator.raft_config()  # operator:read needs the token py-consul does not send
    raft = requests.get(f"{lab.urls['consul']}/v1/operator/raft/configuration", timeout=5,
                        headers={"X-Consul-Token": lab.secrets.consul_token}).json()
    assert sum(s["Leader"] for s in raft["Servers"]) == 1 and len(raft["Servers"]) == 3


def test_kv_and_its_index_header_on_404(lab: Lab) -> None:
    c = client(lab)
    index, missing = c.kv.get("nothing/here")
    assert missing is None and int(index) >= 1  # the header is there even on a 404
    assert c.kv.put("jamtui/test", "value-1") is True
    _, item = c.kv.get("jamtui/test")
    assert item["Value"] == b"value-1" and item["Key"] == "jamtui/test"
    _, keys = c.kv.get("jamlab/", keys=True)
    assert "jamlab/domain" in keys
    assert c.kv.delete("jamtui/test") is True
    assert c.kv.get("jamtui/test")[1] is None


def test_blocking_query_returns_on_change_and_times_out_with_same_index(lab: Lab) -> None:
    c = client(lab)
    index, _ = c.health.service("example")

    started = time.monotonic()
    same, _ = c.health.service("example", index=index, wait="1s")
    assert 0.9 <= time.monotonic() - started < 3 and same == index

    def change() -> None:
        time.sleep(0.4)
        check = next(ck for ck in lab.world.checks.values() if ck.service_name == "example")
        lab.call(lab.world.set_check, check.node, check.check_id, "warning", "slow")

    threading.Thread(target=change, daemon=True).start()
    started = time.monotonic()
    newer, _ = c.health.service("example", index=index, wait="20s")
    assert time.monotonic() - started < 5 and int(newer) > int(index)

    bad = requests.get(f"{lab.urls['consul']}/v1/catalog/services", timeout=5,
                       params={"index": index, "wait": "soon"},
                       headers={"X-Consul-Token": lab.secrets.consul_token})
    assert bad.status_code == 400


def test_intentions(lab: Lab) -> None:
    c = client(lab)
    listed = c.connect.intentions.list()
    assert {(i["SourceName"], i["DestinationName"], i["Action"]) for i in listed} >= {
        ("api", "db", "allow"), ("*", "db", "deny")}
    assert listed[0]["Precedence"] >= listed[-1]["Precedence"]
    assert c.connect.intentions.upsert("example", "api", action="allow") is True
    got = c.connect.intentions.read("example", "api")
    assert got["Action"] == "allow"
    assert c.connect.intentions.delete("example", "api") is True
    gone = requests.get(f"{lab.urls['consul']}/v1/connect/intentions/exact", timeout=5,
                        params={"source": "example", "destination": "api"},
                        headers={"X-Consul-Token": lab.secrets.consul_token})
    assert gone.status_code == 404 and gone.text == "Intention not found"


def test_two_servers_down_means_no_leader(lab: Lab) -> None:
    c = client(lab)
    for name in ("vb0", "vb1"):
        vm = next(v for v in lab.world.vms.values() if v.name == name)
        lab.call(lab.world.vm_stop, vm.node, vm.vmid)
    wait_for(lambda: c.status.leader() == "")
    with pytest.raises(consul.ConsulException, match="No cluster leader"):
        c.catalog.services()
    failed = [m["Name"] for m in members(lab) if m["Status"] == 4]
    assert sorted(failed) == ["vb0", "vb1"]


def test_wrong_token_is_denied(lab: Lab) -> None:
    with pytest.raises(consul.ACLPermissionDenied):
        client(lab, token="wrong").catalog.services()


@pytest.mark.parametrize("kind", ["error", "forbidden", "malformed", "down", "reset"])
def test_faults(lab: Lab, kind: str) -> None:
    c = client(lab)
    lab.set_fault("consul", kind)
    try:
        if kind == "forbidden":
            with pytest.raises(consul.ACLPermissionDenied):
                c.catalog.services()
        elif kind in ("error", "malformed"):
            with pytest.raises(consul.ConsulException) as err:
                c.catalog.services()
            assert ("500" in str(err.value)) if kind == "error" else \
                ("Failed to decode JSON" in str(err.value))
        else:
            with pytest.raises(requests.ConnectionError):
                c.catalog.services()
    finally:
        lab.clear_fault()
    assert c.catalog.services()[1]


def test_slow_fault(lab: Lab) -> None:
    c = client(lab)
    lab.set_fault("consul", "slow", latency=0.5)
    try:
        started = time.monotonic()
        c.catalog.services()
        assert time.monotonic() - started >= 0.45
    finally:
        lab.clear_fault()


def test_node_maintenance_through_the_nodes_own_agent(lab: Lab) -> None:
    u = urlsplit(lab.urls["consul:agent:vs1"])
    agent = consul.Consul(host=u.hostname, port=u.port, scheme="http",
                          token=lab.secrets.consul_token)
    assert agent.agent.maintenance("true", "kernel upgrade") is True
    c = client(lab)
    checks = {ck["CheckID"]: ck for ck in c.health.node("vs1")[1]}
    assert checks["_node_maintenance"]["Status"] == "critical"
    assert checks["_node_maintenance"]["Notes"] == "kernel upgrade"
    # the node's services drop out of ?passing (and so out of Fabio's routes)
    passing = c.health.service("example", passing=True)[1]
    assert all(e["Node"]["Node"] != "vs1" for e in passing)
    assert agent.agent.maintenance("false") is True
    assert "_node_maintenance" not in {ck["CheckID"] for ck in c.health.node("vs1")[1]}
    with pytest.raises(consul.ACLPermissionDenied):
        consul.Consul(host=u.hostname, port=u.port, token="wrong").agent.maintenance("true")
