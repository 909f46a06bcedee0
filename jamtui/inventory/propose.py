"""A new node: its spec (`NodeSpec`), and the next free name, VMID, IP and hypervisor
proposed from the inventory."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .parse import Inventory, host_ip

# -- proposing and validating a node ----------------------------------------------------------

HOST_VARS = ("ansible_host", "vmid", "cores", "memory", "disk", "hypervisor")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)


@dataclass(frozen=True)
class NodeSpec:
    group: str
    name: str
    ip: str
    vmid: int
    cores: int
    memory: int  # MiB
    disk: int  # GiB
    hypervisor: str

    def host_vars(self) -> dict[str, Any]:
        return dict(zip(HOST_VARS, (self.ip, self.vmid, self.cores, self.memory, self.disk,
                                    self.hypervisor), strict=True))


def subnet_of(inv: Inventory, default: str = "192.168.42.0/24") -> Any:
    import ipaddress

    return ipaddress.ip_network(str(inv.vars.get("lab_subnet", default)), strict=False)


def hypervisor_free(inv: Inventory) -> dict[str, tuple[int, int]]:
    """(cores, free memory MiB) per hypervisor: its memory less what its VMs are given."""
    out: dict[str, tuple[int, int]] = {}
    for hv in inv.group("hypervisors"):
        used = sum(int(h.vars.get("memory", 0)) for h in inv.hosts
                   if h.vars.get("hypervisor") == hv.name)
        out[hv.name] = (int(hv.vars.get("cores", 0)), int(hv.vars.get("memory", 0)) - used)
    return out


def propose_node(inv: Inventory, group: str,
                 addresses: Mapping[str, str] | None = None) -> NodeSpec:
    """The next free name, IP and VMID in the group, its hosts' size, the least-loaded
    hypervisor. `addresses`: what hosts written by name resolve to (`resolve_names`)."""
    members = inv.group(group)
    taken = {h.name for h in inv.hosts}
    pattern = re.compile(rf"^{re.escape(group)}(\d+)$")
    numbers = {int(m.group(1)) for h in members if (m := pattern.match(h.name))}
    n = 0
    while n in numbers or f"{group}{n}" in taken:
        n += 1
    net = subnet_of(inv)
    used_ips = {str(ip) for h in inv.hosts if (ip := host_ip(h, addresses)) is not None}
    used_ips.add(str(inv.vars.get("lab_gateway", "")))
    ips = [ip for h in members if (ip := host_ip(h, addresses)) is not None and ip in net]
    ip = max(ips) + 1 if ips else next(net.hosts()) + 9
    while str(ip) in used_ips and ip in net:
        ip += 1
    vmids = {int(h.vars["vmid"]) for h in inv.hosts if "vmid" in h.vars}
    own = [int(h.vars["vmid"]) for h in members if "vmid" in h.vars]
    vmid = max(own) + 1 if own else max(vmids, default=99) + 1
    while vmid in vmids:
        vmid += 1
    last = members[-1].vars if members else {}
    free = hypervisor_free(inv)
    hypervisor = max(free, key=lambda hv: free[hv][1]) if free else ""
    return NodeSpec(group, f"{group}{n}", str(ip), vmid, int(last.get("cores", 2)),
                    int(last.get("memory", 2048)), int(last.get("disk", 32)), hypervisor)
