"""The lab's Consul DNS, asked with dnspython as any resolver would.

Pages followed: developer.hashicorp.com/consul/docs/discover/service/static ("Service
lookups": standard `[tag.]<service>.service.consul` and RFC 2782
`_<service>._<protocol>.service.consul` SRV lookups, one SRV record per healthy instance with
the node's A record in the additional section; `_tcp` filters on no tag)."""

from __future__ import annotations

from collections.abc import Iterator

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from jamtui.sim.lab import Lab
from tests.conftest import FAST


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=7, tick=0.2, traffic=False, **FAST) as running:
        yield running


def ask(lab: Lab, name: str, rdtype: str) -> dns.message.Message:
    host, port = lab.urls["dns"].rsplit(":", 1)
    return dns.query.udp(dns.message.make_query(name, rdtype), host, port=int(port), timeout=5)


def passing_instances(lab: Lab, service: str) -> list[tuple[str, int]]:
    w = lab.world
    return lab.call(lambda: sorted(
        (svc.address or node.address, svc.port) for node, svc, checks in
        w.service_entries(service) if all(c.status == "passing" for c in checks)))


@pytest.mark.parametrize("name", ["api.service.consul", "_api._tcp.service.consul",
                                  "api.service.jamlab.consul"])
def test_srv_one_record_per_instance_and_a_records(lab: Lab, name: str) -> None:
    want = passing_instances(lab, "api")
    assert len(want) >= 2, "the demo lab runs several api instances"
    reply = ask(lab, name, "SRV")
    assert reply.rcode() == dns.rcode.NOERROR
    srv = [rr for rrset in reply.answer for rr in rrset if rrset.rdtype == dns.rdatatype.SRV]
    assert len(srv) == len(want)
    glue = {rrset.name.to_text(): [rr.address for rr in rrset] for rrset in reply.additional
            if rrset.rdtype == dns.rdatatype.A}
    got = sorted((glue[rr.target.to_text()][0], rr.port) for rr in srv)
    assert got == want
    assert all(rr.priority == 1 and rr.weight == 1 for rr in srv)


def test_rfc2782_tag_filters_and_unknown_is_nxdomain(lab: Lab) -> None:
    assert "metrics" in lab.call(lambda: lab.world.service_names()["node-exporter"])
    for name in ("_node-exporter._metrics.service.consul", "metrics.node-exporter.service.consul"):
        tagged = ask(lab, name, "SRV")
        assert tagged.rcode() == dns.rcode.NOERROR and tagged.answer, name
    assert not ask(lab, "_node-exporter._no-such-tag.service.consul", "SRV").answer
    assert ask(lab, "_nope._tcp.service.consul", "SRV").rcode() == dns.rcode.NXDOMAIN


def test_srv_target_resolves(lab: Lab) -> None:
    reply = ask(lab, "api.service.consul", "SRV")
    target = next(rr.target.to_text() for rrset in reply.answer for rr in rrset)
    a = ask(lab, target, "A")
    assert a.rcode() == dns.rcode.NOERROR and a.answer
