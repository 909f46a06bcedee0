"""The chain logic on plain records: a whole chain, then every way it breaks."""

from __future__ import annotations

import dataclasses

from jamtui.model import (
    VM,
    Allocation,
    CheckInfo,
    HAProxyRow,
    Hypervisor,
    Intention,
    Kind,
    NomadNode,
    Route,
    Service,
    ServiceInstance,
)
from jamtui.routing import Resolution, all_chains, entry_points, split_target, trace
from jamtui.store import Store

ALLOC = "5457f16d-0f87-8e6b-5e91-0c7da3a41eb7"
BASTION = ("192.168.42.10",)


def lab_store() -> Store:
    s = Store()
    s.upsert(Kind.HAPROXY, HAProxyRow("www", "FRONTEND", "frontend", "OPEN", hrsp_2xx=10))
    s.upsert(Kind.HAPROXY, HAProxyRow("fabio", "BACKEND", "backend", "UP"))
    for n in ("vs0", "vs1"):
        s.upsert(Kind.HAPROXY, HAProxyRow("fabio", f"fabio_{n}", "server", "UP",
                                          check_status="L4OK"))
    s.upsert(Kind.HAPROXY, HAProxyRow("stats", "FRONTEND", "frontend", "OPEN"))
    s.upsert(Kind.ROUTE, Route("vs0:9998", "example", "example.jamfox.dev", "/",
                               "http://10.0.0.30:2001/", 1.0))
    s.upsert(Kind.SERVICE, Service("example", ("urlprefix-example.jamfox.dev/",), 1))
    s.upsert(Kind.INSTANCE, ServiceInstance(
        "vs0/_nomad-task-x", "example", "_nomad-task-x", "vs0", "10.0.0.30", 2001,
        checks=(CheckInfo("serfHealth", "Serf Health Status", "passing"),
                CheckInfo("http", "service check", "passing", service_id="_nomad-task-x")),
        alloc_id=ALLOC))
    s.upsert(Kind.ALLOCATION, Allocation(ALLOC, "example.web[0]", "example", "web", "n0", "vs0",
                                         "running", "run"))
    s.upsert(Kind.NOMAD_NODE, NomadNode("n0", "vs0", "10.0.0.30", "ready", "eligible", False))
    s.upsert(Kind.VM, VM(300, "vs0", "pve1", "running", 0.1, 4, 1, 2, ip="10.0.0.30"))
    s.upsert(Kind.HYPERVISOR, Hypervisor("pve1", "online", 0.1, 8, 1, 2))
    return s


def ok_dns() -> Resolution:
    return Resolution("internal 127.0.0.1:53", BASTION)


def test_a_whole_chain_names_every_hop() -> None:
    chain = trace(lab_store(), "example.jamfox.dev/", ok_dns(), BASTION)
    assert chain.whole, chain.broken
    assert [h.layer for h in chain.hops] == ["dns", "frontend", "backend", "route", "service"]
    (instance,) = chain.hops[-1].children
    assert [h.layer for h in instance.children] == ["allocation", "node", "vm", "hv"]
    assert chain.to_dict()["whole"] is True


def test_dns_no_answer_and_wrong_address() -> None:
    chain = trace(lab_store(), "example.jamfox.dev", Resolution("internal", (), "NXDOMAIN"),
                  BASTION)
    assert chain.broken is not None and chain.broken.layer == "dns"
    assert "no address" in chain.broken.problem and "NXDOMAIN" in chain.broken.problem
    chain = trace(lab_store(), "example.jamfox.dev", Resolution("internal", ("1.2.3.4",)),
                  BASTION)
    assert chain.broken is not None and "not to the bastion" in chain.broken.problem


def test_one_server_down_is_not_broken_all_down_is() -> None:
    s = lab_store()
    s.upsert(Kind.HAPROXY, HAProxyRow("fabio", "fabio_vs0", "server", "DOWN",
                                      check_status="L4CON"))
    chain = trace(s, "example.jamfox.dev", ok_dns(), BASTION)
    assert chain.whole
    backend = next(h for h in chain.hops if h.layer == "backend")
    assert [c.ok for c in backend.children] == [False, True]
    assert "fabio_vs0 is DOWN" in backend.children[0].problem
    s.upsert(Kind.HAPROXY, HAProxyRow("fabio", "fabio_vs1", "server", "MAINT"))
    chain = trace(s, "example.jamfox.dev", ok_dns(), BASTION)
    assert chain.broken is not None and chain.broken.layer == "backend"
    assert "no server up" in chain.broken.problem


def test_no_fabio_route_for_a_tagged_host() -> None:
    s = lab_store()
    s.remove(Kind.ROUTE, next(iter(s.items(Kind.ROUTE))).id)
    assert ("example.jamfox.dev", "/", "example") in entry_points(s)  # the tag still says so
    chain = trace(s, "example.jamfox.dev", ok_dns(), BASTION)
    assert chain.broken is not None and chain.broken.layer == "route"
    assert "no Fabio instance has a route" in chain.broken.problem


def test_route_to_a_service_with_no_passing_instance() -> None:
    s = lab_store()
    inst = next(iter(s.items(Kind.INSTANCE)))
    failing = (inst.checks[0], dataclasses.replace(inst.checks[1], status="critical",
                                                   output="HTTP GET: 503"))
    s.upsert(Kind.INSTANCE, dataclasses.replace(inst, checks=failing))
    chain = trace(s, "example.jamfox.dev", ok_dns(), BASTION)
    assert chain.broken is not None and chain.broken.layer == "service"
    assert "503" in chain.broken.problem


def test_instance_whose_allocation_is_not_running() -> None:
    s = lab_store()
    s.upsert(Kind.ALLOCATION, dataclasses.replace(s.get(Kind.ALLOCATION, ALLOC),
                                                  client_status="failed"))
    chain = trace(s, "example.jamfox.dev", ok_dns(), BASTION)
    assert chain.broken is not None and "is failed, not running" in chain.broken.problem


def test_node_down_and_vm_stopped() -> None:
    s = lab_store()
    s.upsert(Kind.NOMAD_NODE, dataclasses.replace(s.get(Kind.NOMAD_NODE, "n0"), status="down"))
    chain = trace(s, "example.jamfox.dev", ok_dns(), BASTION)
    assert chain.broken is not None and "Nomad node vs0 is down" in chain.broken.problem
    s = lab_store()
    s.upsert(Kind.VM, dataclasses.replace(s.get(Kind.VM, "300"), status="stopped"))
    chain = trace(s, "example.jamfox.dev", ok_dns(), BASTION)
    assert chain.broken is not None and "VM 300 (vs0) is stopped" in chain.broken.problem


def test_mesh_denials_are_noted_and_targets_parse() -> None:
    s = lab_store()
    s.upsert(Kind.INTENTION, Intention("*", "example", "deny", 8, "default deny"))
    chain = trace(s, "example.jamfox.dev", ok_dns(), BASTION)
    assert chain.whole and chain.notes == ("Connect: * → example is denied (default deny)",)
    assert split_target("Example.jamfox.dev/api/v1") == ("example.jamfox.dev", "/api/v1")
    assert [c.host for c in all_chains(s)] == ["example.jamfox.dev"]
