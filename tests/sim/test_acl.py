"""The lab's tokens and policies answer as the real servers do, through the real clients:
Nomad 403 `Permission denied` / `ACL token not found`; Consul lists filtered with
`X-Consul-Results-Filtered-By-ACLs`, operator endpoints 403 naming the permission, `ACL not
found`; Proxmox 403 `Permission check failed (/vms/N, VM.PowerMgmt)`. And the servers' health
(autopilot, Nomad's gossip members) as a stopped `vb` VM leaves it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import consul
import nomad
import nomad.api.exceptions as nomad_errors
import proxmoxer
import pytest
import requests
from proxmoxer.core import ResourceException

from jamtui.sim.lab import Lab
from tests.conftest import FAST
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=3, tick=0.2, traffic=False, **FAST) as running:
        yield running


def nomad_get(lab: Lab, path: str, token: str | None) -> requests.Response:
    headers = {"X-Nomad-Token": token} if token else {}
    return requests.get(lab.urls["nomad"] + path, headers=headers, timeout=5)


def consul_get(lab: Lab, path: str, token: str | None) -> requests.Response:
    headers = {"X-Consul-Token": token} if token else {}
    return requests.get(lab.urls["consul"] + path, headers=headers, timeout=5)


def test_nomad_read_only_token_reads_and_is_refused_the_rest(lab: Lab) -> None:
    u = urlsplit(lab.urls["nomad"])
    ro = nomad.Nomad(host=u.hostname, port=u.port, token=lab.secrets.nomad_read_token,
                     timeout=5)
    assert len(ro.nodes.get_nodes()) == 3 and ro.jobs.get_jobs()
    assert ro.allocations.get_allocations()
    token = lab.secrets.nomad_read_token
    for path in ("/v1/volumes?type=csi", "/v1/operator/autopilot/health",
                 "/v1/operator/raft/configuration", "/v1/agent/self"):
        refused = nomad_get(lab, path, token)
        assert (refused.status_code, refused.text) == (403, "Permission denied"), path
    members = nomad_get(lab, "/v1/agent/members", token)  # node:read
    assert members.status_code == 200 and len(members.json()["Members"]) == 3
    assert nomad_get(lab, "/v1/status/peers", None).status_code == 200  # no ACL at all
    with pytest.raises(nomad_errors.URLNotAuthorizedNomadException) as err:
        ro.job.deregister_job("example")  # submit-job
    assert err.value.nomad_resp.text == "Permission denied"
    unknown = nomad_get(lab, "/v1/nodes", "00000000-dead-beef-0000-000000000000")
    assert (unknown.status_code, unknown.text) == (403, "ACL token not found")
    # the event stream checks each topic's capability; the read token has them all
    stream = requests.get(lab.urls["nomad"] + "/v1/event/stream",
                          params=[("topic", "Node:*"), ("topic", "Allocation:*")],
                          headers={"X-Nomad-Token": token}, stream=True, timeout=5)
    try:
        assert stream.status_code == 200
    finally:
        stream.close()


def test_consul_read_only_token_sees_filtered_lists_and_refused_operator(lab: Lab) -> None:
    u = urlsplit(lab.urls["consul"])
    ro = consul.Consul(host=u.hostname, port=u.port, token=lab.secrets.consul_read_token)
    _, services = ro.catalog.services()
    assert "example" in services
    token = lab.secrets.consul_read_token
    intentions = consul_get(lab, "/v1/connect/intentions", token)
    assert intentions.status_code == 200 and intentions.json() == []
    assert intentions.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    members = consul_get(lab, "/v1/agent/members", token)
    assert len(members.json()) == 7 and "X-Consul-Results-Filtered-By-ACLs" not in \
        members.headers
    refused = consul_get(lab, "/v1/operator/autopilot/health", token)
    assert refused.status_code == 403
    assert refused.text.startswith("Permission denied: token with AccessorID '")
    assert refused.text.endswith("' lacks permission 'operator:read'")
    assert token not in refused.text  # the accessor is not the secret
    with pytest.raises(consul.ACLPermissionDenied, match="ACL not found"):
        consul.Consul(host=u.hostname, port=u.port, token="not-a-token").catalog.services()


def test_proxmox_read_only_token_names_the_missing_privilege(lab: Lab) -> None:
    u = urlsplit(lab.urls["proxmox"])
    user, _, rest = lab.secrets.proxmox_read_api_token.partition("!")
    name, _, value = rest.partition("=")
    pve = proxmoxer.ProxmoxAPI(u.hostname, port=u.port, user=user, token_name=name,
                               token_value=value, verify_ssl=str(lab.ca_cert), timeout=5)
    resources = pve.cluster.resources.get()
    assert sum(1 for r in resources if r["type"] == "qemu") == 8
    perms = pve.access.permissions.get()
    assert perms["/"]["VM.Audit"] == 1 and "VM.PowerMgmt" not in perms["/"]
    vm = next(r for r in resources if r["type"] == "qemu" and r["name"] == "vs0")
    with pytest.raises(ResourceException) as err:
        pve.nodes(vm["node"]).qemu(vm["vmid"]).status.stop.post()
    assert err.value.status_code == 403
    assert err.value.content == f"Permission check failed (/vms/{vm['vmid']}, " \
        "VM.PowerMgmt)"
    assert lab.call(lambda: lab.world.vms[vm["vmid"]].status) == "running"


def _autopilot(lab: Lab, backend: str) -> tuple[int, dict[str, Any]]:
    get = nomad_get if backend == "nomad" else consul_get
    token = lab.secrets.nomad_token if backend == "nomad" else lab.secrets.consul_token
    resp = get(lab, "/v1/operator/autopilot/health", token)
    return resp.status_code, resp.json()


def test_a_stopped_vb_server_is_unhealthy_in_autopilot_and_failed_in_gossip(lab: Lab) -> None:
    for backend in ("nomad", "consul"):
        status, health = _autopilot(lab, backend)
        assert status == 200 and health["Healthy"] and health["FailureTolerance"] == 1
        server = health["Servers"][0]
        assert {"ID", "Name", "Address", "SerfStatus", "Version", "Leader", "LastContact",
                "LastTerm", "LastIndex", "Healthy", "Voter", "StableSince"} <= server.keys()
    vm = lab.call(lambda: next(v for v in lab.world.vms.values() if v.name == "vb2"))
    lab.call(lab.world.vm_stop, vm.node, vm.vmid)
    try:
        for backend in ("nomad", "consul"):
            status, health = wait_for(lambda b=backend: (lambda r: r if r[0] == 429 else None)(
                _autopilot(lab, b)), timeout=10)
            assert not health["Healthy"] and health["FailureTolerance"] == 0
            bad = [s for s in health["Servers"] if not s["Healthy"]]
            assert len(bad) == 1 and bad[0]["SerfStatus"] == "failed"
            assert bad[0]["Name"].startswith("vb2")
        members = nomad_get(lab, "/v1/agent/members", lab.secrets.nomad_read_token).json()
        status_of = {m["Name"]: m["Status"] for m in members["Members"]}
        assert status_of == {"vb0.global": "alive", "vb1.global": "alive",
                             "vb2.global": "failed"}
    finally:
        lab.call(lab.world.vm_start, vm.node, vm.vmid)
        wait_for(lambda: _autopilot(lab, "consul")[0] == 200, timeout=15)


def test_a_filtered_list_still_blocks(lab: Lab) -> None:
    """Consul filters after the blocking query ran: a client holding a filtered list must not
    get an instant answer each time (that would spin)."""
    token = lab.secrets.consul_read_token
    first = consul_get(lab, "/v1/connect/intentions", token)
    index = first.headers["X-Consul-Index"]
    started = time.monotonic()
    held = consul_get(lab, f"/v1/connect/intentions?index={index}&wait=1s", token)
    assert held.status_code == 200 and held.json() == []
    assert time.monotonic() - started >= 0.9
