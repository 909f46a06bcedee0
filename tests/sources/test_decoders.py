"""The decoders against responses that do not come from our own lab.

- consul/health-service.json: the sample response of `GET /v1/health/service/:service`,
  consul's website/content/api-docs/health.mdx; consul/agent-members.json and
  raft-configuration.json and intentions.json: the sample responses of agent.mdx,
  operator/raft.mdx and connect/intentions.mdx.
- haproxy/stats-2.6.12.csv: `show stat` CSV printed by Debian's haproxy 2.6.12 (one frontend,
  a backend with two servers down, the stats listener).
- proxmox/cluster-resources.json: written after the API viewer's return schema for
  `/cluster/resources` (PVE publishes no sample), with the 1/0 booleans and string tags.
- fabio/routes.json: the fields of fabio's admin API route entries (admin/api/routes.go).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jamtui.inventory import load_inventory
from jamtui.sources.base import BackendError
from jamtui.sources.consul import (
    decode_instance,
    decode_intention,
    decode_member,
    decode_quorum,
    summarize,
)
from jamtui.sources.fabio import decode_routes
from jamtui.sources.haproxy import parse_stats_csv
from jamtui.sources.proxmox import decode_node, decode_storage, decode_vm, ip_from_config

FIXTURES = Path(__file__).parent.parent / "fixtures"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_consul_health_service_sample() -> None:
    [entry] = load("consul/health-service.json")
    inst = decode_instance(entry)
    assert inst.id == "foobar/redis" and inst.service == "redis" and inst.port == 8000
    assert inst.address == "10.1.10.12" and inst.tags == ("primary",)
    assert [c.check_id for c in inst.checks] == ["service:redis", "serfHealth"]
    assert inst.checks[1].service_id == "" and inst.status == "passing"
    assert inst.alloc_id == ""  # not a Nomad registration
    svc = summarize("redis", ["primary"], [inst])
    assert (svc.passing, svc.warning, svc.critical) == (1, 0, 0)


def test_consul_nomad_service_id_links_the_allocation() -> None:
    [entry] = load("consul/health-service.json")
    alloc = "5a2b1c3d-1111-2222-3333-444455556666"
    entry["Service"]["ID"] = f"_nomad-task-{alloc}-group-web-example-http"
    assert decode_instance(entry).alloc_id == alloc


def test_consul_members_raft_and_intentions_samples() -> None:
    [member] = [decode_member(m) for m in load("consul/agent-members.json")]
    assert (member.name, member.address, member.status, member.role) == (
        "foobar", "10.1.10.12", "alive", "server")
    peers = [s["Address"] for s in load("consul/raft-configuration.json")["Servers"]]
    # Serf's view (node:read) over the peers (no ACL): carol's agent is not alive
    alive = [member.__class__(name=n, address=a, status="alive", role="server")
             for n, a in (("alice", "127.0.0.1"), ("bob", "127.0.0.2"))]
    quorum = decode_quorum("127.0.0.1:8300", peers, None, alive)
    assert len(quorum.servers) == 3 and len(quorum.alive) == 2 and quorum.source == "gossip"
    assert quorum.failure_tolerance == 0  # 2 of 3 alive: one more loss loses quorum
    # autopilot health (operator:read): its own Healthy and FailureTolerance
    health = decode_quorum("127.0.0.1:8300", peers, load("consul/autopilot-health.json"))
    assert health.alive == ("127.0.0.1:8300", "127.0.0.2:8300")
    assert health.failure_tolerance == 0 and health.source == "autopilot"
    # neither: the servers are known, their health is not, and nothing claims it
    blind = decode_quorum("127.0.0.1:8300", peers, None, None, "the token lacks node:read")
    assert not blind.checked and blind.failure_tolerance is None and blind.alive == ()
    intentions = [decode_intention(i) for i in load("consul/intentions.json")]
    assert [(i.source, i.destination, i.action, i.precedence) for i in intentions] == [
        ("web", "db", "deny", 9), ("web", "*", "allow", 6)]


def test_haproxy_csv_from_the_real_haproxy() -> None:
    rows = {r.id: r for r in parse_stats_csv((FIXTURES / "haproxy/stats-2.6.12.csv")
                                             .read_text())}
    assert rows["www/FRONTEND"].type == "frontend" and rows["www/FRONTEND"].status == "OPEN"
    assert rows["fabio/fabio_vs0"].type == "server" and rows["fabio/fabio_vs0"].status == "DOWN"
    assert rows["fabio/fabio_vs0"].check_status == "L4CON"
    assert rows["fabio/BACKEND"].type == "backend"
    assert rows["stats/FRONTEND"].sessions_total == 1


def test_haproxy_rejects_what_is_not_its_csv() -> None:
    with pytest.raises(BackendError, match="not CSV"):
        parse_stats_csv("<html>login</html>")
    text = (FIXTURES / "haproxy/stats-2.6.12.csv").read_text()
    with pytest.raises(BackendError, match="malformed"):
        parse_stats_csv(text[: len(text) // 2])


def test_proxmox_cluster_resources() -> None:
    data = load("proxmox/cluster-resources.json")["data"]
    inventory = load_inventory(FIXTURES.parent.parent / "jamtui/sim/data/inventory.yml")
    [node] = [decode_node(r) for r in data if r["type"] == "node"]
    assert node.name == "pve1" and node.maxcpu == 16 and node.status == "online"
    vms = {v.vmid: v for v in (decode_vm(r, inventory, None) for r in data
                               if r["type"] == "qemu")}
    assert vms[201].group == "vs" and vms[201].tags == ("vs", "nomad")
    assert vms[201].ip == inventory.host("vs1").address  # no cloud-init IP read: inventory
    assert vms[9000].template is True and vms[201].template is False
    [storage] = [decode_storage(r) for r in data if r["type"] == "storage"]
    assert storage.type == "lvmthin" and storage.shared is False
    assert ip_from_config({"ipconfig0": "ip=192.168.42.31/24,gw=192.168.42.1"}) == \
        "192.168.42.31"
    assert ip_from_config({"ipconfig0": "ip=dhcp"}) is None


def test_fabio_routes_and_null() -> None:
    routes = decode_routes("vs0:9998", load("fabio/routes.json"))
    assert [r.weight for r in routes] == [0.5, 0.5]
    assert routes[0].host == "example.jamfox.dev" and routes[0].dst.endswith(":23456/")
    assert decode_routes("vs0:9998", None) == []  # fabio says null when it has no routes
    with pytest.raises(BackendError):
        decode_routes("vs0:9998", {"routes": []})
