"""Checking a node spec, and the inventory as people write it (one validator for `doctor`,
`jamtui node add` and the cockpit's `a`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .parse import NODE_GROUPS, Host, Inventory, InventoryError, _ip, host_ip
from .propose import _LABEL, NodeSpec, hypervisor_free, subnet_of


def validate_node(inv: Inventory, spec: NodeSpec,
                  addresses: Mapping[str, str] | None = None) -> dict[str, str]:
    """Field → what is wrong with it; empty when the node can be added. `addresses`: hosts
    written by name as resolved (`resolve_names`); one missing there makes the IP uncheckable
    (refused, said why). None: no resolution was tried (names are only compared as text)."""
    import ipaddress

    errors: dict[str, str] = {}
    if not _LABEL.match(spec.name):
        errors["name"] = ("not a valid host name (RFC 1123: letters, digits and hyphens, "
                          "1-63 characters, no hyphen at either end)")
    elif inv.host(spec.name) is not None:
        errors["name"] = f"{spec.name} is already in the inventory"
    try:
        ip = ipaddress.ip_address(spec.ip)
    except ValueError:
        errors["ip"] = f"{spec.ip!r} is not an IP address"
    else:
        net = subnet_of(inv)
        holder = next((h.name for h in inv.hosts if str(h.address) == spec.ip
                       or str(host_ip(h, addresses)) == spec.ip), None)
        if ip not in net or ip in (net.network_address, net.broadcast_address):
            errors["ip"] = f"{spec.ip} is not a host address in the lab's subnet {net}"
        elif spec.ip == str(inv.vars.get("lab_gateway", "")):
            errors["ip"] = f"{spec.ip} is the gateway"
        elif holder:
            errors["ip"] = f"{spec.ip} is already {holder}'s"
        elif addresses is not None and (unknown := [
                h for h in named_hosts(inv) if h.name not in addresses]):
            errors["ip"] = (f"cannot tell whether {spec.ip} is free: " + ", ".join(
                f"{h.name} ({h.address})" for h in unknown) + " did not resolve (is [dns] "
                "server the internal resolver?)")
    holder = next((h.name for h in inv.hosts if h.vars.get("vmid") == spec.vmid), None)
    if not 100 <= spec.vmid <= 999_999_999:
        errors["vmid"] = "Proxmox VMIDs run from 100 to 999999999"
    elif holder:
        errors["vmid"] = f"VMID {spec.vmid} is already {holder}'s"
    free = hypervisor_free(inv)
    if spec.hypervisor not in free:
        errors["hypervisor"] = f"no hypervisor {spec.hypervisor!r} (known: {', '.join(free)})"
    else:
        cores, memory = free[spec.hypervisor]
        if not 1 <= spec.cores <= max(cores, 1):
            errors["cores"] = f"{spec.hypervisor} has {cores} cores"
        if spec.memory < 256:
            errors["memory"] = "at least 256 MiB"
        elif spec.memory > memory:
            errors["memory"] = f"{spec.hypervisor} has {memory} MiB unallocated"
    if spec.disk < 4:
        errors["disk"] = "at least 4 GiB"
    if spec.group not in NODE_GROUPS:
        errors["group"] = f"nodes are added to {' or '.join(NODE_GROUPS)}"
    return errors


# -- checking the inventory as people write it -----------------------------------------------
# One validator for `doctor`, `jamtui node add` and the cockpit's `a`: each defect names the
# host (or group var), the field and the reason.

_SIZES = {"cores": "a whole number of cores", "memory": "a whole number of MiB",
          "disk": "a whole number of GiB"}


def is_host_name(text: str) -> bool:
    """An RFC 1123 host name (`vs0`, `vs0.jamfox.dev`), not an address."""
    labels = text.rstrip(".").split(".")
    return 0 < len(text) <= 253 and all(_LABEL.match(label) for label in labels) \
        and not labels[-1].isdigit()


def named_hosts(inv: Inventory) -> list[Host]:
    """Hosts whose `ansible_host` is a name: resolving it is needed only where an address is
    (proposing and checking a new node's IP)."""
    return [h for h in inv.hosts if h.address is not None and _ip(str(h.address)) is None
            and is_host_name(str(h.address))]


def resolve_names(inv: Inventory, resolve: Callable[[str], Iterable[str]]) -> dict[str, str]:
    """Host name → the first address `resolve(ansible_host)` gives; unresolved names are left
    out (`validate_node` then refuses an IP it cannot check is free)."""
    out: dict[str, str] = {}
    for h in named_hosts(inv):
        found = sorted(resolve(str(h.address)))
        if found:
            out[h.name] = found[0]
    return out


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def inventory_problems(inv: Inventory) -> list[str]:
    """Every defect that would stop jamtui using the inventory's values, in words; empty when
    it is fine. Host names in `ansible_host` are valid (nothing is resolved here)."""
    import ipaddress

    problems: list[str] = []

    def say(where: str, key: str, why: str) -> None:
        problems.append(f"{inv.path}: {where}: {key}: {why}")

    net = None
    if "lab_subnet" in inv.vars:
        try:
            net = ipaddress.ip_network(str(inv.vars["lab_subnet"]), strict=False)
        except ValueError:
            say("all vars", "lab_subnet", f"{str(inv.vars['lab_subnet'])!r} is not a subnet "
                "(like 192.168.42.0/24)")
    if "lab_gateway" in inv.vars:
        gateway = _ip(str(inv.vars["lab_gateway"]))
        if gateway is None:
            say("all vars", "lab_gateway", f"{str(inv.vars['lab_gateway'])!r} is not an IP "
                "address")
        elif net is not None and gateway not in net:
            say("all vars", "lab_gateway", f"{gateway} is not in lab_subnet {net}")
    hypervisors = {h.name for h in inv.group("hypervisors")}
    for h in inv.hosts:
        where = f"host {h.name}"
        if h.address is not None:
            text = str(h.address)
            if _ip(text) is None and not is_host_name(text):
                say(where, "ansible_host", f"{text!r} is neither an IP address nor a host name")
        if "vmid" in h.vars:
            vmid = _whole(h.vars["vmid"])
            if vmid is None:
                say(where, "vmid", f"{str(h.vars['vmid'])!r} is not a whole number")
            elif not 100 <= vmid <= 999_999_999:
                say(where, "vmid", f"{vmid}: Proxmox VMIDs run from 100 to 999999999")
        for key, what in _SIZES.items():
            if key in h.vars:
                size = _whole(h.vars[key])
                if size is None:
                    say(where, key, f"{str(h.vars[key])!r} is not {what}")
                elif size <= 0:
                    say(where, key, f"{size} is not {what} above 0")
        if "hypervisor" in h.vars and hypervisors and str(h.vars["hypervisor"]) not in hypervisors:
            say(where, "hypervisor", f"{str(h.vars['hypervisor'])!r} is not in the "
                f"hypervisors group ({', '.join(sorted(hypervisors))})")
    return problems


def check_inventory(inv: Inventory) -> Inventory:
    """The inventory, or InventoryError listing every problem (one per line)."""
    problems = inventory_problems(inv)
    if problems:
        raise InventoryError("\n".join(problems))
    return inv
