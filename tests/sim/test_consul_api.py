"""The lab's Consul HTTP API, driven by the real, unmodified py-consul client (1.8.0).

Each shape follows a page of developer.hashicorp.com/consul/api-docs:
- catalog: /api-docs/catalog (list-services, list-nodes-for-service, list-nodes,
  list-services-for-node)
- health: /api-docs/health (list-service-instances-for-service, list-checks-in-state,
  list-checks-for-node, list-checks-for-service)
- agent: /api-docs/agent (list-members, read-configuration)
- status: /api-docs/status (get-raft-leader, list-raft-peers)
- operator: /api-docs/operator/raft (read-configuration)
- kv: /api-docs/kv (read-key, create-update-key, delete-key)
- intentions: /api-docs/connect/intentions (list-intentions,
  read-specific-intention-by-name, upsert-intention-by-name, delete-intention-by-name)
- headers and blocking: /api-docs/features/blocking and /api-docs/features/consistency
  (X-Consul-Index, X-Consul-KnownLeader, X-Consul-LastContact, ?index, ?wait)
- tokens: /api-docs/api-structure#authentication (X-Consul-Token, Authorization: Bearer)
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import consul
import pytest
import requests
from consul.callback import CB

from jamtui.sim.lab import Lab
from tests.helpers import wait_for

NODE_KEYS = {"ID", "Node", "Address", "Datacenter", "TaggedAddresses", "Meta", "CreateIndex",
             "ModifyIndex"}
SERVICE_KEYS = {"ID", "Service", "Tags", "Address", "TaggedAddresses", "Meta", "Port",
                "Weights", "EnableTagOverride", "Proxy", "Connect", "CreateIndex",
                "ModifyIndex"}
CHECK_KEYS = {"Node", "CheckID", "Name", "Status", "Notes", "Output", "ServiceID",
              "ServiceName", "ServiceTags", "Type", "Interval", "Definition", "CreateIndex",
              "ModifyIndex"}
CATALOG_SERVICE_KEYS = {"ID", "Node", "Address", "Datacenter", "TaggedAddresses", "NodeMeta",
                        "ServiceKind", "ServiceID", "ServiceName", "ServiceTags",
                        "ServiceAddress", "ServiceWeights", "ServiceMeta", "ServicePort",
                        "ServiceEnableTagOverride", "ServiceProxy", "ServiceConnect",
                        "CreateIndex", "ModifyIndex"}
INTENTION_KEYS = {"ID", "SourceNS", "SourceName", "DestinationNS", "DestinationName",
                  "SourceType", "Action", "Description", "Precedence", "CreateIndex",
                  "ModifyIndex", "CreatedAt", "UpdatedAt", "Meta"}


def client(lab: Lab, token: str | None = None) -> consul.Consul:
    u = urlsplit(lab.urls["consul"])
    return consul.Consul(host=u.hostname, port=u.port, scheme="http",
                         token=token or lab.secrets.consul_token)


def with_token(c: consul.Consul, path: str) -> Any:
    """What py-consul sends without a token (members, Raft), sent with the client's token
    through its own HTTP layer, as jamtui's Consul source does."""
    return c.http.get(CB.json(), path, headers=c.prepare_headers())


def raw(lab: Lab, method: str, path: str, *, token: str | None = "", **kw: Any
        ) -> requests.Response:
    headers = {"X-Consul-Token": lab.secrets.consul_token if token == "" else token or ""}
    if token is None:
        headers = {}
    return requests.request(method, lab.urls["consul"] + path, headers=headers, timeout=5, **kw)


def stop_vm(lab: Lab, name: str) -> None:
    """Stop a VM the way Proxmox does, and wait for its task to finish."""
    world = lab.world
    node, vmid = lab.call(lambda: next((v.node, v.vmid) for v in world.vms.values()
                                       if v.name == name))
    upid = lab.call(world.vm_stop, node, vmid)
    wait_for(lambda: lab.call(lambda: world.tasks[upid].status) == "stopped")


# -- catalog and health ---------------------------------------------------------------------


def test_catalog_services_nodes_and_service(lab: Lab) -> None:
    c = client(lab)
    index, services = c.catalog.services()
    assert isinstance(index, str) and int(index) >= 1
    assert {"example", "api", "db", "nomad"} <= services.keys()
    assert "urlprefix-example.jamfox.dev/" in services["example"]
    assert "urlprefix-api.jamfox.dev/" in services["api"]

    _, instances = c.catalog.service("example")
    assert len(instances) == 3
    for inst in instances:
        assert inst.keys() >= CATALOG_SERVICE_KEYS
        assert inst["ServiceName"] == "example" and inst["ServicePort"] > 0
        assert inst["ServiceWeights"] == {"Passing": 1, "Warning": 1}
        assert inst["TaggedAddresses"]["lan"] == inst["Address"]
    assert len(c.catalog.service("example", tag="urlprefix-example.jamfox.dev/")[1]) == 3
    assert c.catalog.service("example", tag="no-such-tag")[1] == []

    _, nodes = c.catalog.nodes()
    names = [n["Node"] for n in nodes]
    assert {"vb0", "vb1", "vb2", "vs0"} <= set(names)
    assert all(n.keys() >= NODE_KEYS for n in nodes)

    _, node = c.catalog.node(instances[0]["Node"])
    assert node["Node"]["Node"] == instances[0]["Node"]
    assert instances[0]["ServiceID"] in node["Services"]


def test_health_service_entries_and_serf_health(lab: Lab) -> None:
    c = client(lab)
    index, entries = c.health.service("example")
    assert int(index) >= 1 and len(entries) == 3
    for e in entries:
        assert e["Node"].keys() >= NODE_KEYS
        assert e["Service"].keys() >= SERVICE_KEYS and "Kind" not in e["Service"]
        assert e["Service"]["Weights"] == {"Passing": 1, "Warning": 1}
        assert e["Checks"], "every entry carries at least the node's serfHealth"
        for check in e["Checks"]:
            assert check.keys() >= CHECK_KEYS
            assert isinstance(check["ServiceTags"], list)
        serf = [ck for ck in e["Checks"] if ck["CheckID"] == "serfHealth"]
        assert len(serf) == 1 and serf[0]["ServiceID"] == "" and serf[0]["Status"] == "passing"
        own = [ck for ck in e["Checks"] if ck["ServiceID"]]
        assert own and all(ck["ServiceID"] == e["Service"]["ID"] for ck in own)
    assert c.health.service("no-such-service")[1] == []
    assert len(c.health.service("example", tag="urlprefix-example.jamfox.dev/")[1]) == 3
    assert c.health.service("example", tag="nope")[1] == []
    sidecars = c.health.service("api-sidecar-proxy")[1]
    assert sidecars and sidecars[0]["Service"]["Kind"] == "connect-proxy"


def test_passing_filter_and_check_listings(lab: Lab) -> None:
    c = client(lab)
    _, entries = c.health.service("example")
    check = next(ck for ck in entries[0]["Checks"] if ck["ServiceID"])
    lab.call(lab.world.set_check, check["Node"], check["CheckID"], "critical", "HTTP GET: 503")
    assert len(c.health.service("example")[1]) == 3
    passing = c.health.service("example", passing=True)[1]
    assert len(passing) == 2
    assert check["ServiceID"] not in {e["Service"]["ID"] for e in passing}
    # a bare `?passing` counts too, and warning is not passing
    bare = raw(lab, "GET", "/v1/health/service/example?passing")
    assert bare.status_code == 200 and len(bare.json()) == 2
    other = next(ck for ck in entries[1]["Checks"] if ck["ServiceID"])
    lab.call(lab.world.set_check, other["Node"], other["CheckID"], "warning", "slow")
    assert len(c.health.service("example", passing=True)[1]) == 1

    critical = c.health.state("critical")[1]
    assert [ck["CheckID"] for ck in critical] == [check["CheckID"]]
    assert [ck["CheckID"] for ck in c.health.state("warning")[1]] == [other["CheckID"]]
    assert len(c.health.state("any")[1]) > len(c.health.state("passing")[1])
    # a state no check is in is an empty list (Consul's state store looks the status up in
    # its index; py-consul refuses it client-side); no state at all is a 400
    broken = raw(lab, "GET", "/v1/health/state/broken")
    assert broken.status_code == 200 and broken.json() == []
    assert int(broken.headers["X-Consul-Index"]) >= 1
    missing = raw(lab, "GET", "/v1/health/state/")
    assert missing.status_code == 400 and missing.text == "Missing check state"

    on_node = c.health.node(check["Node"])[1]
    assert "serfHealth" in {ck["CheckID"] for ck in on_node}
    assert all(ck["Node"] == check["Node"] for ck in on_node)
    for_service = c.health.checks("example")[1]
    assert len(for_service) == 3 and all(ck["ServiceName"] == "example" for ck in for_service)


def test_a_health_read_asked_again_unchanged_is_not_made_again(lab: Lab, monkeypatch: Any
                                                               ) -> None:
    """The lab keeps each `/v1/health/service/:name` body while the catalog stays (made and
    encoded again, 8.6 MB at 5,000 instances, it took the lab's core from the client under
    test); any change to a check, an instance or a node is in the next answer."""
    from jamtui.sim import consul as sim_consul

    made: list[str] = []
    render = sim_consul.check_json
    monkeypatch.setattr(sim_consul, "check_json", lambda c: made.append(c.check_id) or render(c))
    first = raw(lab, "GET", "/v1/health/service/example")
    assert first.status_code == 200 and made
    made.clear()
    again = raw(lab, "GET", "/v1/health/service/example")
    assert again.content == first.content and made == []
    assert again.headers["X-Consul-Index"] == first.headers["X-Consul-Index"]
    # another query of the same service is its own body (`passing` filters)
    check = next(ck for e in first.json() for ck in e["Checks"] if ck["ServiceID"])
    lab.call(lab.world.set_check, check["Node"], check["CheckID"], "critical", "HTTP GET: 503")
    passing = raw(lab, "GET", "/v1/health/service/example?passing")
    assert len(passing.json()) == len(first.json()) - 1
    changed = raw(lab, "GET", "/v1/health/service/example")
    assert int(changed.headers["X-Consul-Index"]) > int(first.headers["X-Consul-Index"])
    status = {ck["CheckID"]: ck["Status"] for e in changed.json() for ck in e["Checks"]
              if ck["Node"] == check["Node"]}
    assert status[check["CheckID"]] == "critical"
    # a filter is part of what is kept: each expression its own answer
    only = raw(lab, "GET", "/v1/health/service/example",
               params={"filter": f'Node.Node == "{check["Node"]}"'})
    assert {e["Node"]["Node"] for e in only.json()} == {check["Node"]}
    assert len(raw(lab, "GET", "/v1/health/service/example").json()) == len(first.json())


def test_checks_in_state_block_filter_and_hide_from_a_token(lab: Lab) -> None:
    """api-docs/health#list-checks-in-state, as jamtui's one watch over every check uses it:
    the documented fields, blocking on the checks' index, `filter=`, and a token without
    service:read given an empty list that says it was filtered."""
    c = client(lab)
    index, checks = c.health.state("any")
    assert checks and all(ck.keys() >= CHECK_KEYS for ck in checks)
    serf = next(ck for ck in checks if ck["CheckID"] == "serfHealth")
    assert serf["ServiceID"] == "" and serf["ServiceTags"] == [] and serf["Definition"] == {}
    mine = next(ck for ck in checks if ck["ServiceName"] == "example")
    assert mine["Type"] == "http" and mine["Definition"] == {"Interval": "10s"}
    assert mine["CreateIndex"] <= mine["ModifyIndex"] <= int(index)
    t = later(0.4, lambda: lab.call(lab.world.set_check, mine["Node"], mine["CheckID"],
                                    "critical", "HTTP GET: 503"))
    started = time.monotonic()
    resp = raw(lab, "GET", "/v1/health/state/any", params={"index": index, "wait": "5s"})
    t.join()
    assert 0.3 <= time.monotonic() - started < 2 and int(resp.headers["X-Consul-Index"]) > \
        int(index)
    assert resp.headers["X-Consul-KnownLeader"] == "true"
    assert resp.headers["X-Consul-LastContact"] == "0"
    moved = next(ck for ck in resp.json() if ck["CheckID"] == mine["CheckID"])
    assert moved["Status"] == "critical" and moved["ModifyIndex"] == int(
        resp.headers["X-Consul-Index"])
    only = raw(lab, "GET", "/v1/health/state/any",
               params={"filter": 'Status == "critical" and ServiceName == "example"'})
    assert [ck["CheckID"] for ck in only.json()] == [mine["CheckID"]]
    bad = raw(lab, "GET", "/v1/health/state/any", params={"filter": "Status =="})
    assert bad.status_code == 400 and "Failed to create boolean expression" in bad.text
    assert lab.ctx is not None
    old = lab.ctx.secrets
    lab.ctx.secrets = dataclasses.replace(old, consul_read_capabilities=frozenset({"node:read"}))
    try:
        hidden = raw(lab, "GET", "/v1/health/state/any", token=old.consul_read_token)
    finally:
        lab.ctx.secrets = old
    assert hidden.status_code == 200 and hidden.json() == []
    assert hidden.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"


# -- agent, status, operator ----------------------------------------------------------------


def test_members_leader_peers_and_raft(lab: Lab) -> None:
    c = client(lab)
    assert c.agent.members() == []  # py-consul sends no token: ACLs filter the list to none
    members = {m["Name"]: m for m in with_token(c, "/v1/agent/members")}
    assert {"vb0", "vb1", "vb2", "vs0"} <= members.keys()
    vb0 = members["vb0"]
    assert vb0["Status"] == 1 and vb0["Port"] == 8301 and vb0["Tags"]["role"] == "consul"
    assert vb0["Tags"]["dc"] == lab.world.datacenter
    assert members["vs0"]["Tags"]["role"] == "node"
    assert (vb0["ProtocolMin"], vb0["ProtocolMax"], vb0["ProtocolCur"]) == (1, 5, 2)
    assert (vb0["DelegateMin"], vb0["DelegateMax"], vb0["DelegateCur"]) == (2, 5, 4)

    with pytest.raises(consul.ACLPermissionDenied):
        c.agent.self()  # agent:read, and again py-consul sends no token
    me = with_token(c, "/v1/agent/self")
    assert me["Config"]["Datacenter"] == lab.world.datacenter and me["Config"]["Server"]
    assert me["Config"]["Version"] == "1.19.2" and me["Member"]["Name"]

    leader = c.status.leader()
    peers = c.status.peers()
    assert leader == f"{members['vb0']['Addr']}:8300" and leader in peers and len(peers) == 3

    with pytest.raises(consul.ACLPermissionDenied):
        c.operator.raft_config()  # operator:read needs the token py-consul does not send
    raft = with_token(c, "/v1/operator/raft/configuration")
    assert len(raft["Servers"]) == 3 and raft["Index"] >= 1
    assert [s["Address"] for s in raft["Servers"] if s["Leader"]] == [leader]
    assert all(s["Voter"] and s["ProtocolVersion"] == "3" for s in raft["Servers"])


def test_two_servers_down_means_no_leader(lab: Lab) -> None:
    c = client(lab)
    for name in ("vb0", "vb1"):
        stop_vm(lab, name)
    assert wait_for(lambda: c.status.leader() == "")
    assert c.status.peers()  # the configured servers are still listed
    with pytest.raises(consul.ConsulException, match="No cluster leader"):
        c.catalog.services()
    with pytest.raises(consul.ConsulException, match="No cluster leader"):
        c.health.service("example")
    with pytest.raises(consul.ConsulException, match="No cluster leader"):
        c.kv.get("jamlab/domain")
    resp = raw(lab, "GET", "/v1/operator/raft/configuration")
    assert resp.status_code == 500 and resp.text == "No cluster leader"
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert int(resp.headers["X-Consul-Index"]) >= 1
    assert resp.headers["X-Consul-KnownLeader"] == "false"
    failed = sorted(m["Name"] for m in with_token(c, "/v1/agent/members") if m["Status"] == 4)
    assert failed == ["vb0", "vb1"]


# -- KV --------------------------------------------------------------------------------------


def test_kv_put_get_delete_and_404_index(lab: Lab) -> None:
    c = client(lab)
    index, missing = c.kv.get("nothing/here")
    assert missing is None and isinstance(index, str) and int(index) >= 1
    assert c.kv.put("jamtui/test", "value-1", flags=7) is True
    _, item = c.kv.get("jamtui/test")
    assert item["Key"] == "jamtui/test" and item["Value"] == b"value-1" and item["Flags"] == 7
    assert item["LockIndex"] == 0 and item["CreateIndex"] == item["ModifyIndex"]

    # check-and-set: the wrong index refuses, the right one writes; cas=0 only creates
    assert c.kv.put("jamtui/test", "value-2", cas=item["ModifyIndex"] + 100) is False
    assert c.kv.put("jamtui/test", "value-2", cas=item["ModifyIndex"]) is True
    assert c.kv.put("jamtui/test", "again", cas=0) is False
    assert c.kv.get("jamtui/test")[1]["Value"] == b"value-2"

    assert c.kv.put("jamtui/dir/a", "1") and c.kv.put("jamtui/dir/b", "2")
    _, keys = c.kv.get("jamtui/", keys=True, separator="/")
    assert keys == ["jamtui/dir/", "jamtui/test"]
    _, tree = c.kv.get("jamtui/", recurse=True)
    assert [e["Key"] for e in tree] == ["jamtui/dir/a", "jamtui/dir/b", "jamtui/test"]
    body = raw(lab, "GET", "/v1/kv/jamtui/dir/a?raw")
    assert body.status_code == 200 and body.content == b"1"

    assert c.kv.delete("jamtui/test") is True
    assert c.kv.get("jamtui/test")[1] is None
    assert c.kv.delete("jamtui/", recurse=True) is True
    assert c.kv.get("jamtui/", recurse=True)[1] is None

    bad = raw(lab, "PUT", "/v1/kv/jamtui/x?flags=abc", data=b"v")
    assert bad.status_code == 400 and int(bad.headers["X-Consul-Index"]) >= 1


# -- blocking queries --------------------------------------------------------------------------


def later(delay: float, fn: Any, *args: Any) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        fn(*args)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_blocking_kv_get_returns_early_on_change(lab: Lab) -> None:
    c = client(lab)
    index, item = c.kv.get("jamlab/domain")
    t = later(0.5, lambda: lab.call(lab.world.kv_put, "jamlab/domain", b"example.org"))
    started = time.monotonic()
    newer, item = c.kv.get("jamlab/domain", index=index, wait="5s")
    elapsed = time.monotonic() - started
    t.join()
    assert 0.4 <= elapsed < 2 and int(newer) > int(index)
    assert item["Value"] == b"example.org"


def test_blocking_health_service_returns_early_on_change(lab: Lab) -> None:
    c = client(lab)
    index, entries = c.health.service("example")
    check = next(ck for ck in entries[0]["Checks"] if ck["ServiceID"])
    t = later(0.5, lambda: lab.call(lab.world.set_check, check["Node"], check["CheckID"],
                                    "critical", "HTTP GET: 503"))
    started = time.monotonic()
    newer, entries = c.health.service("example", index=index, wait="5s", passing=True)
    elapsed = time.monotonic() - started
    t.join()
    assert 0.4 <= elapsed < 2 and int(newer) > int(index) and len(entries) == 2


def test_blocking_query_times_out_with_the_same_index(lab: Lab) -> None:
    c = client(lab)
    index, _ = c.kv.get("jamlab/domain")
    # a change elsewhere (a check) wakes the server but must not end a KV query
    node, check_id = lab.call(lambda: next((ck.node, ck.check_id) for ck
                                           in lab.world.checks.values()
                                           if ck.service_name == "example"))
    t = later(0.3, lambda: lab.call(lab.world.set_check, node, check_id, "warning", "slow"))
    started = time.monotonic()
    same, item = c.kv.get("jamlab/domain", index=index, wait="1s")
    elapsed = time.monotonic() - started
    t.join()
    assert 0.95 <= elapsed < 1.5 and same == index and item["Value"] == b"jamfox.dev"


def test_blocking_parameters(lab: Lab) -> None:
    c = client(lab)
    index, _ = c.catalog.services()
    started = time.monotonic()
    assert c.catalog.services(index="0", wait="5s")[0] == index  # index 0 never blocks
    assert time.monotonic() - started < 1
    bad = raw(lab, "GET", "/v1/catalog/services", params={"index": index, "wait": "soon"})
    assert bad.status_code == 400 and bad.text == "Invalid wait time"
    assert int(bad.headers["X-Consul-Index"]) >= 1
    ok = raw(lab, "GET", "/v1/catalog/services?stale&consistent")
    assert ok.status_code == 200 and ok.headers["X-Consul-KnownLeader"] == "true"
    assert ok.headers["X-Consul-LastContact"] == "0"
    elsewhere = raw(lab, "GET", "/v1/catalog/services", params={"dc": "mars"})
    assert elsewhere.status_code == 500 and elsewhere.text == "No path to datacenter"


# -- intentions -------------------------------------------------------------------------------


def test_intentions_list_and_exact(lab: Lab) -> None:
    listed = raw(lab, "GET", "/v1/connect/intentions")
    assert listed.status_code == 200 and int(listed.headers["X-Consul-Index"]) >= 1
    items = listed.json()
    assert all(i.keys() >= INTENTION_KEYS for i in items)
    assert {(i["SourceName"], i["DestinationName"], i["Action"]) for i in items} >= {
        ("api", "db", "allow"), ("*", "db", "deny")}
    assert [i["Precedence"] for i in items] == sorted((i["Precedence"] for i in items),
                                                      reverse=True)
    assert items[0]["SourceNS"] == "default" and items[0]["SourceType"] == "consul"

    exact = "/v1/connect/intentions/exact"
    pair = {"source": "example", "destination": "api"}
    put = raw(lab, "PUT", exact, params=pair, data=json.dumps(
        {"SourceName": "example", "DestinationName": "api", "Action": "allow",
         "Description": "the web tier calls the API"}))
    assert put.status_code == 200 and put.json() is True
    got = raw(lab, "GET", exact, params=pair).json()
    assert got["Action"] == "allow" and got["Description"] == "the web tier calls the API"
    assert got["Precedence"] == 9
    assert raw(lab, "PUT", exact, params=pair, data=json.dumps({"Action": "deny"})).json()
    assert raw(lab, "GET", exact, params=pair).json()["Action"] == "deny"
    assert raw(lab, "DELETE", exact, params=pair).json() is True
    gone = raw(lab, "GET", exact, params=pair)
    assert gone.status_code == 404 and gone.text == "Intention not found"
    assert raw(lab, "GET", exact, params={"source": "api"}).status_code == 400
    bad = raw(lab, "PUT", exact, params=pair, data=json.dumps({"Action": "maybe"}))
    assert bad.status_code == 400

    # py-consul 1.8.0 wraps them as connect.intentions too
    c = client(lab)
    assert {i["ID"] for i in c.connect.intentions.list()} == {i["ID"] for i in items}
    assert c.connect.intentions.read("api", "db")["Action"] == "allow"


# -- tokens and faults ------------------------------------------------------------------------


def test_tokens(lab: Lab) -> None:
    with pytest.raises(consul.ACLPermissionDenied, match="ACL not found"):
        client(lab, token="wrong").catalog.services()
    # no token is the anonymous token: under default deny a list is filtered to nothing
    filtered = raw(lab, "GET", "/v1/catalog/services", token=None)
    assert filtered.status_code == 200 and filtered.json() == {}
    assert filtered.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    assert int(filtered.headers["X-Consul-Index"]) >= 1
    denied = raw(lab, "GET", "/v1/operator/raft/configuration", token=None)
    assert denied.status_code == 403 and denied.text == (
        "Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' "
        "lacks permission 'operator:read'")
    assert denied.headers["Content-Type"].startswith("text/plain")
    url = lab.urls["consul"] + "/v1/catalog/services"
    bearer = requests.get(url, timeout=5,
                          headers={"Authorization": f"Bearer {lab.secrets.consul_token}"})
    assert bearer.status_code == 200 and "example" in bearer.json()
    query = requests.get(url, timeout=5, params={"token": lab.secrets.consul_token})
    assert query.status_code == 200


@pytest.mark.parametrize("kind", ["error", "forbidden", "down", "malformed"])
def test_faults(lab: Lab, kind: str) -> None:
    c = client(lab)
    lab.set_fault("consul", kind)
    try:
        if kind == "error":
            with pytest.raises(consul.ConsulException, match="500"):
                c.catalog.services()
        elif kind == "forbidden":
            with pytest.raises(consul.ACLPermissionDenied):
                c.catalog.services()
        elif kind == "down":
            with pytest.raises(requests.ConnectionError):
                c.catalog.services()
        else:
            with pytest.raises(consul.ConsulException, match="Failed to decode JSON"):
                c.catalog.services()
    finally:
        lab.clear_fault()
    assert "example" in c.catalog.services()[1]


def test_slow_fault(lab: Lab) -> None:
    c = client(lab)
    lab.set_fault("consul", "slow", latency=0.5)
    try:
        started = time.monotonic()
        assert "example" in c.catalog.services()[1]
        assert time.monotonic() - started >= 0.45
    finally:
        lab.clear_fault()
    started = time.monotonic()
    c.catalog.services()
    assert time.monotonic() - started < 0.4


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
