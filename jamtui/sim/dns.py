"""The lab's DNS: the internal resolver (the Pi) and Consul DNS, on one loopback UDP port.

Answers A records for the inventory's hosts (`vs0`, `vs0.jamfox.dev`), for every host a
`urlprefix-` tag names (they point at the bastion, as inside the real network), for
`<service>.service.consul` (passing instances only, as Consul DNS does) and
`<node>.node.consul`. Anything else is NXDOMAIN. Faults: `dns` down (no answer), error
(SERVFAIL), malformed (garbage).
"""

from __future__ import annotations

import asyncio
from typing import Any

import dns.flags
import dns.message
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
    if name.endswith(".service.consul"):
        service = name.split(".")[0]
        addrs = []
        for node, svc, checks in w.service_entries(service):
            if all(c.status == "passing" for c in checks):
                addrs.append(svc.address or node.address)
        return sorted(set(addrs)) if addrs or service in w.service_names() else None
    if name.endswith(".node.consul"):
        node = w.consul_nodes.get(name.split(".")[0])
        return [node.address] if node else None
    if bastion:
        for svc in w.services.values():
            for tag in svc.tags:
                parsed = parse_urlprefix(tag)
                if parsed and parsed[0].lower() == name:
                    return [str(bastion)]
    return None


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
                found = answers(self.ctx, question.name.to_text())
                if found is None:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                elif question.rdtype == dns.rdatatype.A and found:
                    response.answer.append(dns.rrset.from_text_list(
                        question.name, TTL, dns.rdataclass.IN, dns.rdatatype.A, found))
        self.transport.sendto(response.to_wire(), addr)


async def start(ctx: SimContext, host: str, port: int = 0) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: DNSProtocol(ctx),
                                                       local_addr=(host, port))
    sock = transport.get_extra_info("sockname")
    ctx.urls["dns"] = f"{sock[0]}:{sock[1]}"
    return transport
