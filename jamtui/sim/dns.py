"""The lab's DNS: the internal resolver (the Pi) and Consul DNS, on one loopback UDP port.

Answers A records for the inventory's hosts (`vs0`, `vs0.jamfox.dev`), for every host a
`urlprefix-` tag names (they point at the bastion, as inside the real network), for
`<service>.service.consul` (passing instances only, as Consul DNS does) and
`<node>.node.consul`. SRV queries for `[tag.]<service>.service.consul` and RFC 2782
`_<service>._<tag>.service.consul` answer one record per passing instance, with the target's
A record in the additional section (docs/discover/service/static). Anything else is
NXDOMAIN. Faults: `dns` down (no answer), error (SERVFAIL), malformed (garbage).
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .context import SimContext
from .fabio import parse_urlprefix

TTL = 30


def answers(ctx: SimContext, qname: str) -> list[str] | None:
    """The A records for a name; None when the name does not exist."""
    w = ctx.world
    name = qname.rstrip(".").lower()
    domain = w.domain.lower()
    bastion = next((h.address for h in w.inventory.hosts
                    if h.name == "bastion" or "bastion" in h.groups), None)
    for host in w.dns_hosts:
        if host.address and name in (host.name, f"{host.name}.{domain}"):
            return [str(host.address)]
    found = service_instances(ctx, name)
    if found is not None:
        return sorted({address for _port, _target, address in found})
    dc = w.datacenter.lower()
    if name.endswith((".node.consul", f".node.{dc}.consul")):
        node = w.consul_nodes.get(name.split(".")[0])
        return [node.address] if node else None
    if name.endswith((".addr.consul", f".addr.{dc}.consul")):  # the targets SRV answers name
        try:
            return [str(ipaddress.ip_address(bytes.fromhex(name.split(".")[0])))]
        except ValueError:
            return None
    if bastion:
        for svc in w.services.values():
            for tag in svc.tags:
                parsed = parse_urlprefix(tag)
                if parsed and parsed[0].lower() == name:
                    return [str(bastion)]
    return None


def _service_query(w: Any, name: str) -> tuple[str, str] | None:
    """(service, tag) of a service lookup (docs/discover/service/static): standard
    `[tag.]<service>.service[.<dc>].consul` or RFC 2782 `_<service>._<tag>.service[.<dc>]
    .consul`, where the tag `tcp` filters nothing. None: not a service lookup."""
    labels = name.split(".")
    if len(labels) < 3 or labels[-1] != "consul":
        return None
    labels = labels[:-1]
    if labels[-1] == w.datacenter.lower() and len(labels) >= 3 and labels[-2] == "service":
        labels = labels[:-1]
    if labels[-1] != "service":
        return None
    parts = labels[:-1]
    if len(parts) == 2 and parts[0].startswith("_") and parts[1].startswith("_"):
        tag = parts[1][1:]
        return parts[0][1:], "" if tag == "tcp" else tag
    if len(parts) == 2:
        return parts[1], parts[0]
    if len(parts) == 1:
        return parts[0], ""
    return None


def service_instances(ctx: SimContext, qname: str) -> list[tuple[int, str, str]] | None:
    """(port, SRV target, address) per healthy instance of a service lookup, as Consul DNS
    answers it (passing instances only); None when the name is no service lookup or the
    service does not exist (NXDOMAIN). The target is the node's name
    (`<node>.node.<dc>.consul.`) when the instance has the node's address, else the
    address's `<hex>.addr.<dc>.consul.` name."""
    w = ctx.world
    query = _service_query(w, qname.rstrip(".").lower())
    if query is None:
        return None
    service, tag = query
    if service not in w.service_names():
        return None
    out = []
    for node, svc, checks in w.service_entries(service):
        if tag and tag not in [t.lower() for t in svc.tags]:
            continue
        if not all(c.status == "passing" for c in checks):
            continue
        address = svc.address or node.address
        if address == node.address:
            target = f"{node.name}.node.{w.datacenter}.consul."
        else:
            try:
                target = f"{ipaddress.ip_address(address).packed.hex()}.addr.{w.datacenter}.consul."
            except ValueError:
                target = f"{node.name}.node.{w.datacenter}.consul."
        out.append((svc.port, target, address))
    return out


class DNSProtocol(asyncio.DatagramProtocol):
    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        fault = self.ctx.faults.get("dns")
        if fault is not None and fault.kind in ("down", "reset", "hang"):
            return  # silence: the client times out
        if fault is not None and fault.kind == "malformed":
            self.transport.sendto(b"\x00\x01garbage", addr)
            return
        try:
            query = dns.message.from_wire(data)
        except Exception:  # not DNS: a real server drops it too
            return
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA | dns.flags.RA
        if fault is not None and fault.kind in ("error", "forbidden"):
            response.set_rcode(dns.rcode.SERVFAIL if fault.kind == "error" else dns.rcode.REFUSED)
        else:
            for question in query.question:
                if question.rdtype == dns.rdatatype.SRV:
                    self._srv(question.name, response)
                    continue
                found = answers(self.ctx, question.name.to_text())
                if found is None:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                elif question.rdtype == dns.rdatatype.A and found:
                    response.answer.append(dns.rrset.from_text_list(
                        question.name, TTL, dns.rdataclass.IN, dns.rdatatype.A, found))
        self.transport.sendto(response.to_wire(), addr)


    def _srv(self, qname: dns.name.Name, response: dns.message.Message) -> None:
        """One SRV record per instance (priority 1, weight 1, its port), and the target's
        A record in the additional section, as Consul DNS answers."""
        found = service_instances(self.ctx, qname.to_text())
        if found is None:
            if answers(self.ctx, qname.to_text()) is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            return  # a name with no SRV records: NOERROR, no answer
        if not found:
            return
        response.answer.append(dns.rrset.from_text_list(
            qname, TTL, dns.rdataclass.IN, dns.rdatatype.SRV,
            [f"1 1 {port} {target}" for port, target, _ in found]))
        seen: set[str] = set()
        for _port, target, address in found:
            if target in seen:
                continue
            seen.add(target)
            response.additional.append(dns.rrset.from_text_list(
                dns.name.from_text(target), TTL, dns.rdataclass.IN, dns.rdatatype.A, [address]))


async def start(ctx: SimContext, host: str, port: int = 0) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: DNSProtocol(ctx),
                                                       local_addr=(host, port))
    sock = transport.get_extra_info("sockname")
    ctx.urls["dns"] = f"{sock[0]}:{sock[1]}"
    return transport
