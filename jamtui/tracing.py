"""`jamtui trace HOST[/PATH]`: resolve the host, walk the chain, optionally send one real
request through HAProxy; print a tree (or JSON). Shared by the CLI and the cockpit's `t`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests
from rich.text import Text
from rich.tree import Tree

from .config import Config
from .inventory import Inventory, is_host_name
from .plain import BLOCK_LIMIT, line
from .routing import Chain, Hop, Resolution, split_target, trace
from .sources.dns import addresses_of, resolve, resolve_system
from .sources.reasons import in_words


@dataclass(frozen=True)
class Probe:
    url: str
    status: int = 0
    seconds: float = 0.0
    answered_by: str = ""  # the instance, when it says (X-Jamlab-Instance, Server)
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "seconds": round(self.seconds, 4),
                "answered_by": self.answered_by, "error": self.error}


@dataclass(frozen=True)
class Trace:
    chain: Chain
    resolutions: tuple[Resolution, ...] = ()
    probe: Probe | None = None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {**self.chain.to_dict(),
                "resolutions": [{"resolver": r.resolver, "addresses": list(r.addresses),
                                 "error": r.error} for r in self.resolutions],
                "probe": self.probe.to_dict() if self.probe else None,
                "notes": [*self.chain.notes, *self.notes]}


def expected_addresses(cfg: Config, inventory: Inventory | None) -> tuple[str, ...]:
    """Where public names must point: the config's, else the bastion's address."""
    if cfg.dns.expect:
        return cfg.dns.expect
    if inventory is not None:
        for host in inventory.hosts:
            if (host.name == "bastion" or "bastion" in host.groups) and host.address:
                address = str(host.address)
                if is_host_name(address):  # written by name: its address by the internal DNS
                    return tuple(addresses_of(cfg.dns.server)(address))
                return (address,)
    return ()


def run_trace(store: Any, cfg: Config, inventory: Inventory | None, target: str,
              probe: bool = False) -> Trace:
    host, path = split_target(target)
    resolutions: list[Resolution] = []
    internal = None
    if cfg.dns.server:
        internal = resolve(host, cfg.dns.server)
        resolutions.append(internal)
    resolutions.append(resolve_system(host))
    chain = trace(store, target, internal, expected_addresses(cfg, inventory))
    notes = []
    route = next((h for h in chain.hops if h.layer == "route" and h.ok), None)
    service = next((h.name for h in chain.hops if h.layer == "service"), "")
    if cfg.dns.consul and service:
        consul = resolve(f"{service}.service.consul", cfg.dns.consul, default_port=8600,
                         label="Consul DNS")
        resolutions.append(consul)
        if route is not None and not consul.addresses:
            notes.append(f"{service}.service.consul does not resolve: {consul.error}")
    result = None
    if probe:
        result = send_probe(cfg, host, path)
    return Trace(chain, tuple(resolutions), result, tuple(notes))


def send_probe(cfg: Config, host: str, path: str, timeout: float = 10.0) -> Probe:
    """One real request through HAProxy's frontend with the right Host header."""
    base = cfg.haproxy.frontend.rstrip("/")
    if not base:
        return Probe("", error="no [haproxy] frontend configured to probe through")
    url = base + path
    started = time.perf_counter()
    try:
        resp = requests.get(url, headers={"Host": host}, timeout=timeout,
                            allow_redirects=False, verify=cfg.haproxy.ca_file or True)
    except requests.RequestException as exc:
        return Probe(url, seconds=time.perf_counter() - started,
                     error=in_words(exc, timeout))
    by = resp.headers.get("X-Jamlab-Instance") or resp.headers.get("Server", "")
    return Probe(url, resp.status_code, time.perf_counter() - started, by)


# -- printing -------------------------------------------------------------------------------


def _label(hop: Hop) -> Text:
    mark = Text("✓ ", style="green") if hop.ok else Text("✗ ", style="bold red")
    text = mark + Text(f"{hop.layer} ", style="bold") + Text(line(hop.name))
    if hop.detail:
        text += Text(f" · {line(hop.detail)}", style="dim")
    if hop.problem:
        text += Text(f"\n  → {line(hop.problem, BLOCK_LIMIT)}", style="red")
    return text


def _add(tree: Tree, hop: Hop) -> None:
    branch = tree.add(_label(hop))
    for child in hop.children:
        _add(branch, child)


def render_tree(result: Trace) -> Tree:
    chain = result.chain
    head = Text(f"{line(chain.host)}{line(chain.path)}  ", style="bold")
    head += (Text("whole", style="bold green") if chain.whole else
             Text(f"broken at {chain.broken.layer if chain.broken else '?'}", style="bold red"))
    tree = Tree(head)
    for r in result.resolutions:
        ok = bool(r.addresses)
        tree.add(Text("· ", style="dim") + Text(f"{line(r.resolver)}: ") +
                 Text(line(", ".join(r.addresses) if ok else r.error, BLOCK_LIMIT),
                      style="" if ok else "yellow"))
    for hop in chain.hops:
        _add(tree, hop)
    for note in (*chain.notes, *result.notes):
        tree.add(Text(f"! {line(note, BLOCK_LIMIT)}", style="yellow"))
    if result.probe is not None:
        p = result.probe
        tree.add(Text(line(f"probe {p.url}: " + (f"{p.status} in {p.seconds * 1000:.0f} ms"
                                                 + (f" from {p.answered_by}" if p.answered_by
                                                    else "") if not p.error else p.error),
                           BLOCK_LIMIT),
                      style="cyan" if not p.error and p.status < 500 else "red"))
    return tree
