"""Name resolution for the trace: the lab's internal resolver, Consul DNS and the system's.

dnspython with an explicit nameserver, never the machine's own configuration, so the answer
is the one that server gives (inside the network, public names point at the bastion).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import dns.exception
import dns.resolver

from ..routing import Resolution


def _server(spec: str, default_port: int) -> tuple[str, int]:
    host, _, port = spec.rpartition(":") if spec.count(":") == 1 else (spec, "", "")
    host = host or spec
    try:
        address = socket.gethostbyname(host)
    except OSError:
        address = host
    return address, int(port) if port else default_port


def resolve(name: str, server: str, *, default_port: int = 53, timeout: float = 2.0,
            label: str = "internal DNS") -> Resolution:
    """A records for `name` from one DNS server ("ip", "host" or "host:port")."""
    address, port = _server(server, default_port)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [address]
    resolver.port = port
    resolver.lifetime = timeout
    who = f"{label} {address}:{port}"
    try:
        answer = resolver.resolve(name, "A", search=False)
    except dns.resolver.NXDOMAIN:
        return Resolution(who, (), "NXDOMAIN: no such name")
    except dns.resolver.NoAnswer:
        return Resolution(who, (), "no A record")
    except dns.resolver.LifetimeTimeout:
        return Resolution(who, (), f"no answer in {timeout:g} s")
    except dns.resolver.NoNameservers as exc:
        return Resolution(who, (), f"the server failed the query ({_rcode(exc)})")
    except dns.exception.DNSException as exc:
        return Resolution(who, (), f"bad answer: {type(exc).__name__}")
    return Resolution(who, tuple(sorted(str(r) for r in answer)))


def _rcode(exc: dns.resolver.NoNameservers) -> str:
    text = str(exc)
    for code in ("SERVFAIL", "REFUSED", "FORMERR", "NOTIMP"):
        if code in text:
            return code
    return "no usable answer"


def resolve_system(name: str) -> Resolution:
    """What this machine's own resolver (/etc/hosts, resolv.conf) says."""
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    except OSError as exc:
        return Resolution("system resolver", (), exc.strerror or str(exc))
    return Resolution("system resolver", tuple(sorted({str(i[4][0]) for i in infos})))


def addresses_of(server: str) -> Callable[[str], tuple[str, ...]]:
    """A resolver for inventory host names: the internal DNS (`[dns] server`) when configured,
    as the lab's hosts know each other, else this machine's resolver."""
    def lookup(name: str) -> tuple[str, ...]:
        return (resolve(name, server) if server else resolve_system(name)).addresses

    return lookup
