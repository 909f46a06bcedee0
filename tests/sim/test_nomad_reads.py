"""The lab's Nomad API as third-party clients read it (sim/nomad_reads.py, sim/acl.py),
through python-nomad where it covers the endpoint; each test names the doc page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import urlsplit

import nomad
import pytest
import requests

from jamtui.sim.lab import Lab
from tests.conftest import FAST
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=1, tick=0.2, traffic=False, **FAST) as running:
        yield running


def client(lab: Lab, token: str | None = "") -> nomad.Nomad:
    u = urlsplit(lab.urls["nomad"])
    return nomad.Nomad(host=u.hostname, port=u.port,
                       token=lab.secrets.nomad_token if token == "" else token, timeout=10)


def test_nodes_advertise_the_labs_api_as_their_http_address(lab: Lab) -> None:
    """api-docs/nodes#read-node `HTTPAddr`: a client that contacts the node directly (the Go
    API client for logs, fs, exec) reaches the lab; the list stub's `Address` is its host."""
    n = client(lab)
    stub = n.nodes.get_nodes()[0]
    node = n.node.get_node(stub["ID"])
    assert node["HTTPAddr"] == urlsplit(lab.urls["nomad"]).netloc
    assert node["TLSEnabled"] is False
    assert stub["Address"] == node["HTTPAddr"].rsplit(":", 1)[0]
    host, port = node["HTTPAddr"].rsplit(":", 1)
    direct = nomad.Nomad(host=host, port=int(port), token=lab.secrets.nomad_token, timeout=10)
    assert direct.node.get_node(stub["ID"])["ID"] == stub["ID"]


def test_list_nodes_resources_and_os(lab: Lab) -> None:
    """api-docs/nodes#list-nodes: `resources=true` adds NodeResources and ReservedResources,
    `os=true` adds Attributes with os.name only (structs.Node.Stub)."""
    n = client(lab)
    plain = n.nodes.get_nodes()[0]
    assert "NodeResources" not in plain and "Attributes" not in plain
    rich = n.nodes.get_nodes(resources=True)[0]
    assert rich["NodeResources"]["Cpu"]["TotalCpuCores"] > 0
    assert rich["NodeResources"]["Memory"]["MemoryMB"] > 0
    assert rich["ReservedResources"]["Memory"] == {"MemoryMB": 0}
    assert n.nodes.get_nodes(os=True)[0]["Attributes"] == {"os.name": "debian"}


def test_volumes_without_type_is_an_empty_list(lab: Lab) -> None:
    """api-docs/volumes#list-volumes: no `type` → [] (csi_endpoint.go), another type → null."""
    h = {"X-Nomad-Token": lab.secrets.nomad_token}
    base = lab.urls["nomad"] + "/v1/volumes"
    assert requests.get(base, headers=h, timeout=10).json() == []
    assert requests.get(base, params={"type": "host"}, headers=h, timeout=10).json() is None
    assert requests.get(base, params={"type": "csi"}, headers=h, timeout=10).json()[0]["ID"]


def test_regions_need_no_token_and_an_unknown_token_is_not_found(lab: Lab) -> None:
    """api-docs/regions (no ACL); acl tokens: an unknown secret is 403 `ACL token not found`."""
    assert client(lab, token=None).regions.get_regions() == ["global"]
    with pytest.raises(nomad.api.exceptions.BaseNomadException) as err:
        client(lab, token="00000000-dead-beef-0000-000000000000").jobs.get_jobs()
    assert err.value.nomad_resp.status_code == 403
    assert err.value.nomad_resp.text == "ACL token not found"


def test_filter_expressions_on_list_endpoints(lab: Lab) -> None:
    """api-docs "Filtering" (go-bexpr) on /v1/jobs, /v1/allocations, /v1/nodes."""
    n = client(lab)
    wait_for(lambda: any(a["ClientStatus"] == "running" for a in n.allocations.get_allocations()),
             timeout=20)
    jobs = n.jobs.get_jobs()
    kinds = {j["Type"] for j in jobs}
    assert len(kinds) > 1  # so a filter can select
    services = n.jobs.get_jobs(filter_='Type == "service"')
    assert services and {j["Type"] for j in services} == {"service"}
    assert len(n.jobs.get_jobs(filter_='Type != "service"')) == len(jobs) - len(services)
    first = jobs[0]["ID"]
    assert [j["ID"] for j in n.jobs.get_jobs(
        filter_=f'ID == "{first}" or ID == "no-such-job"')] == [first]
    assert n.jobs.get_jobs(filter_=f'ID == "{first}" and Type == "nope"') == []
    allocs = n.allocations.get_allocations()
    group = allocs[0]["TaskGroup"]
    picked = n.allocations.get_allocations(filter_=f'TaskGroup == "{group}"')
    assert picked and all(a["TaskGroup"] == group for a in picked)
    assert all(a["JobID"].find("a") >= 0 for a in n.allocations.get_allocations(
        filter_='JobID contains "a"'))
    name = n.nodes.get_nodes()[0]["Name"]
    assert [x["Name"] for x in n.nodes.get_nodes(filter_=f'Name == "{name}"')] == [name]
    with pytest.raises(nomad.api.exceptions.BaseNomadException) as err:
        n.jobs.get_jobs(filter_="NotValid")
    assert err.value.nomad_resp.status_code == 400
    assert "failed to read filter expression" in err.value.nomad_resp.text
    with pytest.raises(nomad.api.exceptions.BaseNomadException) as err:
        n.jobs.get_jobs(filter_='InvalidField == "value"')
    assert err.value.nomad_resp.status_code == 400
    assert "error finding value in datum" in err.value.nomad_resp.text


def test_ids_are_exact_and_prefixes_only_where_prefix_says(lab: Lab) -> None:
    """api-docs/allocations#read-allocation and nodes#read-node take the full ID; `prefix=`
    on the list endpoints matches a prefix."""
    n = client(lab)
    alloc = n.allocations.get_allocations()[0]["ID"]
    node = n.nodes.get_nodes()[0]["ID"]
    assert n.allocation.get_allocation(alloc)["ID"] == alloc
    with pytest.raises(nomad.api.exceptions.URLNotFoundNomadException):
        n.allocation.get_allocation(alloc[:8])
    with pytest.raises(nomad.api.exceptions.URLNotFoundNomadException):
        n.node.get_node(node[:8])
    assert [a["ID"] for a in n.allocations.get_allocations(prefix=alloc[:8])] == [alloc]
    assert [x["ID"] for x in n.nodes.get_nodes(prefix=node[:8])] == [node]


def test_a_drain_with_a_deadline_sets_force_deadline(lab: Lab) -> None:
    """api-docs/nodes#drain-node → read-node `DrainStrategy.ForceDeadline` = start + deadline."""
    n = client(lab)
    node = next(x for x in n.nodes.get_nodes() if x["Status"] == "ready")["ID"]
    before = time.time()
    n.node.drain_node_with_spec(node, {"Deadline": 600 * 10**9})
    try:
        strategy = n.node.get_node(node)["DrainStrategy"]
        assert strategy is not None and strategy["Deadline"] == 600 * 10**9
        force = datetime.fromisoformat(strategy["ForceDeadline"][:26] + "+00:00").timestamp()
        assert before + 599 <= force <= time.time() + 601
        assert not strategy["ForceDeadline"].startswith("0001")
    finally:
        n.node.drain_node_with_spec(node, None)


def test_agent_self_carries_stats(lab: Lab) -> None:
    """api-docs/agent#query-self: `stats` maps (nomad, raft, serf, runtime) of strings."""
    stats = client(lab).agent.get_agent()["stats"]
    assert {"nomad", "raft", "serf", "runtime"} <= set(stats)
    assert stats["nomad"]["server"] == "true"
    assert stats["raft"]["state"] in ("Leader", "Follower")
    assert all(isinstance(v, str) for m in stats.values() for v in m.values())


def test_fabio_routes_omit_empty_tags(lab: Lab) -> None:
    """fabio admin/api/routes.go: `Tags []string json:"tags,omitempty"`."""
    url = lab.fabio_urls()[0] + "/api/routes"
    routes = wait_for(lambda: requests.get(url, timeout=10).json(), timeout=20)
    assert routes
    for r in routes:
        assert "tags" not in r or r["tags"], r
