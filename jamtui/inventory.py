"""The Ansible inventory, the single source of truth for which nodes exist: read (YAML or
INI), and edited round-trip (comments and order kept) under a lock, atomically."""

from __future__ import annotations

import ast
import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

NODE_GROUPS = ("vb", "vs")


class InventoryError(ValueError):
    """A malformed inventory: the message names the file and, where known, the line."""


@dataclass(frozen=True)
class Host:
    name: str
    groups: tuple[str, ...]
    vars: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def address(self) -> str | None:
        return self.vars.get("ansible_host")

    @property
    def group(self) -> str | None:
        """The node group (`vb`/`vs`) or, failing that, the first group the host is in."""
        for g in NODE_GROUPS:
            if g in self.groups:
                return g
        return self.groups[0] if self.groups else None


@dataclass(frozen=True)
class Inventory:
    path: Path
    hosts: tuple[Host, ...]
    vars: dict[str, Any] = field(default_factory=dict, compare=False)

    def group(self, name: str) -> list[Host]:
        return [h for h in self.hosts if name in h.groups]

    def host(self, name: str) -> Host | None:
        return next((h for h in self.hosts if h.name == name), None)


def _line_of(node: Any) -> str:
    lc = getattr(node, "lc", None)
    return f", line {lc.line + 1}" if lc is not None else ""


def is_ini(path: Path, text: str) -> bool:
    """INI by its suffix, or (a `hosts` file has none) by its first meaningful line."""
    if path.suffix in (".yml", ".yaml", ".json"):
        return False
    if path.suffix in (".ini", ".cfg"):
        return True
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            return line.startswith("[") or not (line.startswith("all:") or line == "---")
    return False


def read_text(path: Path) -> str:
    """The file's text; a UTF-8 byte order mark (Windows editors write one) is not part of it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InventoryError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read inventory: {exc.strerror}") from exc


def load_inventory(path: str | Path) -> Inventory:
    """Load a YAML or INI inventory; raise InventoryError naming file and line on any defect."""
    path = Path(path)
    return parse_inventory(path, read_text(path))


def parse_inventory(path: Path, text: str) -> Inventory:
    if is_ini(path, text):
        return parse_ini(path, text)
    try:
        doc = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise InventoryError(f"{path}{where}: invalid YAML: {exc.problem}") from exc
    except YAMLError as exc:
        raise InventoryError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("all"), dict):
        raise InventoryError(f"{path}: an inventory must be a mapping with a top-level 'all' group")
    hosts: dict[str, tuple[list[str], dict[str, Any]]] = {}
    _walk_group(path, "all", doc["all"], hosts)
    all_vars = dict(doc["all"].get("vars") or {})
    return Inventory(
        path=path,
        hosts=tuple(Host(n, tuple(g), v) for n, (g, v) in hosts.items()),
        vars=all_vars,
    )


def _walk_group(path: Path, name: str, group: Any, out: dict) -> None:
    if group is None:
        return
    if not isinstance(group, dict):
        raise InventoryError(f"{path}{_line_of(group)}: group '{name}' must be a mapping")
    for key in group:
        if key not in ("hosts", "children", "vars"):
            raise InventoryError(
                f"{path}{_line_of(group)}: group '{name}' has unknown key '{key}' "
                "(expected hosts, children or vars)"
            )
    hosts = group.get("hosts") or {}
    if not isinstance(hosts, dict):
        raise InventoryError(
            f"{path}{_line_of(group)}: 'hosts' of group '{name}' must be a mapping"
        )
    for host, hvars in hosts.items():
        if hvars is not None and not isinstance(hvars, dict):
            raise InventoryError(
                f"{path}{_line_of(hosts)}: variables of host '{host}' must be a mapping"
            )
        groups, merged = out.setdefault(str(host), ([], {}))
        if name != "all":
            groups.append(name)
        merged.update(dict(hvars or {}))
    children = group.get("children") or {}
    if not isinstance(children, dict):
        raise InventoryError(
            f"{path}{_line_of(group)}: 'children' of group '{name}' must be a mapping"
        )
    for child, sub in children.items():
        _walk_group(path, str(child), sub, out)


def default_inventory_path() -> Path:
    """The realistic JamLab inventory shipped with the embedded lab."""
    return Path(__file__).parent / "sim" / "data" / "inventory.yml"


# -- INI ------------------------------------------------------------------------------------

_SECTION = re.compile(r"^\[([^\]:\s]+)(?::(vars|children))?\]\s*$")


def _ini_value(text: str) -> Any:
    """Ansible reads INI values as Python literals where they are ones (8 → int), else text."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, (int, float, str, bool)) else text


def _ini_pairs(path: Path, lineno: int, words: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InventoryError(f"{path}, line {lineno}: expected key=value, got {word!r}")
        out[key] = _ini_value(value)
    return out


def _ini_split(path: Path, lineno: int, line: str) -> list[str]:
    import shlex

    try:
        return shlex.split(line, comments=True)
    except ValueError as exc:
        raise InventoryError(f"{path}, line {lineno}: {exc}") from exc


def parse_ini(path: Path, text: str) -> Inventory:
    """Ansible's INI inventory: `[group]` host lines with key=value variables, `[group:vars]`,
    `[group:children]`. Host ranges (`vs[0:2]`) are not expanded: name them one by one."""
    hosts: dict[str, tuple[list[str], dict[str, Any]]] = {}
    group_vars: dict[str, dict[str, Any]] = {}
    section, kind = "ungrouped", None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            m = _SECTION.match(line)
            if not m:
                raise InventoryError(f"{path}, line {lineno}: malformed section header {line!r}")
            section, kind = m.group(1), m.group(2)
            continue
        words = _ini_split(path, lineno, line)
        if not words:
            continue
        if kind == "vars":
            group_vars.setdefault(section, {}).update(_ini_pairs(path, lineno, words))
        elif kind == "children":
            if len(words) != 1:
                raise InventoryError(f"{path}, line {lineno}: a children line names one group")
        else:
            name = words[0]
            if "=" in name or "[" in name:
                raise InventoryError(f"{path}, line {lineno}: {name!r} is not a host name "
                                     "(host ranges are not supported: name each host)")
            groups, merged = hosts.setdefault(name, ([], {}))
            if section not in ("all", "ungrouped") and section not in groups:
                groups.append(section)
            merged.update(_ini_pairs(path, lineno, words[1:]))
    return Inventory(path=path, hosts=tuple(Host(n, tuple(g), v) for n, (g, v) in hosts.items()),
                     vars=group_vars.get("all", {}))


def _ini_add(text: str, group: str, line: str) -> str:
    lines = text.splitlines()
    start = next((i for i, raw in enumerate(lines) if raw.strip() == f"[{group}]"), None)
    if start is None:
        tail = "" if not lines or not lines[-1].strip() else "\n"
        return text.rstrip("\n") + f"\n{tail}[{group}]\n{line}\n"
    at = start + 1
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if stripped.startswith("["):
            break
        if stripped and not stripped.startswith(("#", ";")):
            at = i + 1
    lines.insert(at, line)
    return "\n".join(lines) + "\n"


def _ini_remove(text: str, name: str) -> str:
    out, kind = [], None
    for raw in text.splitlines():
        stripped = raw.strip()
        m = _SECTION.match(stripped) if stripped.startswith("[") else None
        if m:
            kind = m.group(2)
        elif kind is None and stripped and not stripped.startswith(("#", ";")) \
                and stripped.split()[0] == name:
            continue
        out.append(raw)
    return "\n".join(out) + "\n"


def _ini_host_line(name: str, hvars: dict[str, Any]) -> str:
    return " ".join([name, *(f"{k}={v}" for k, v in hvars.items())])


# -- YAML round-trip --------------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _yaml_edit(text: str, fn: Any) -> str:
    from ruamel.yaml.comments import CommentedMap

    yaml = _yaml()
    doc = yaml.load(text)
    fn(doc, CommentedMap)
    buf = io.StringIO()
    yaml.dump(doc, buf)
    return buf.getvalue()


def _yaml_add(text: str, group: str, name: str, hvars: dict[str, Any]) -> str:
    def add(doc: Any, cmap: Any) -> None:
        root = doc["all"]
        if root.get("children") is None:
            root["children"] = cmap()
        grp = root["children"].get(group)
        if grp is None:
            grp = root["children"][group] = cmap()
        if grp.get("hosts") is None:
            grp["hosts"] = cmap()
        grp["hosts"][name] = cmap(hvars)

    return _yaml_edit(text, add)


def _yaml_remove(text: str, name: str) -> str:
    def walk(group: Any) -> None:
        if not isinstance(group, dict):
            return
        hosts = group.get("hosts")
        if isinstance(hosts, dict) and name in hosts:
            del hosts[name]
        for child in (group.get("children") or {}).values():
            walk(child)

    return _yaml_edit(text, lambda doc, _cmap: walk(doc["all"]))


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


def _ip(text: str) -> Any:
    import ipaddress

    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def host_ip(host: Host, addresses: Mapping[str, str] | None = None) -> Any:
    """The host's IP address: `ansible_host` when it is one, else what its name resolved to
    (`addresses`, from `resolve_names`), else None (not known without asking DNS)."""
    if host.address is None:
        return None
    ip = _ip(str(host.address))
    if ip is None and addresses:
        ip = _ip(addresses.get(host.name, ""))
    return ip


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


# -- writing: locked, atomic, with a backup ---------------------------------------------------


class InventoryLocked(InventoryError):
    """Another editor holds the inventory's lock."""


def _locked(path: Path, timeout: float) -> Any:
    import contextlib
    import fcntl
    import time

    @contextlib.contextmanager
    def hold() -> Any:
        lock = path.with_name(f".{path.name}.lock")
        with open(lock, "a") as fd:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise InventoryLocked(
                            f"{path}: another edit is in progress (lock {lock}); try again"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    return hold()


def edit_inventory(path: str | Path, change: Any, timeout: float = 10.0) -> Inventory:
    """Apply `change(inventory, text) -> new text` to the file as it is now, under its lock,
    so two editors never lose each other's edit. The file is replaced atomically (temporary
    file and rename) and the previous version kept as `<name>.bak`; a malformed inventory,
    before or after, is refused and nothing is written. A file the operator cannot write
    (read-only) is refused too: a rename would replace it behind its permissions."""
    import os

    path = Path(path)
    # no write bit for anyone (chmod a-w) is read-only even to root, who could write it
    if path.exists() and (not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222):
        raise InventoryError(f"{path}: the inventory is read-only; nothing written (make it "
                             "writable to let jamtui edit it)")
    with _locked(path, timeout):
        text = read_text(path)
        before = parse_inventory(path, text)
        new = change(before, text)
        after = parse_inventory(path, new)
        bom = path.read_bytes().startswith(b"\xef\xbb\xbf")
        _replace(path, (b"\xef\xbb\xbf" if bom else b"") + new.encode("utf-8"))
        return after


def _write_new(target: Path, data: bytes, like: Any) -> None:
    """Write a new file, owner-only from the start, then give it `like`'s mode and group."""
    import contextlib
    import os

    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(fd, "wb", closefd=False) as fh:
            fh.write(data)
        os.fsync(fd)
        # keep the file's group (its readers); not a member of it: the file stays ours
        with contextlib.suppress(OSError):
            os.fchown(fd, -1, like.st_gid)
        os.fchmod(fd, like.st_mode & 0o7777)
    finally:
        os.close(fd)


def _replace(path: Path, data: bytes) -> None:
    """Replace `path` by `data` atomically; its previous version becomes `<name>.bak` only once
    the new one is in place, so a failed write leaves both the file and the old `.bak`."""
    import os

    st = path.stat()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    bak_tmp = path.with_name(f".{path.name}.{os.getpid()}.bak.tmp")
    try:
        _write_new(tmp, data, st)
        _write_new(bak_tmp, path.read_bytes(), st)
        os.replace(tmp, path)
        os.replace(bak_tmp, path.with_name(path.name + ".bak"))
    finally:
        tmp.unlink(missing_ok=True)
        bak_tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def add_node(path: str | Path, spec: NodeSpec) -> Inventory:
    """Add the node to its group; refused (nothing written) if invalid against the file as it
    is at the moment of writing."""
    def change(inv: Inventory, text: str) -> str:
        errors = validate_node(inv, spec)
        if errors:
            raise InventoryError(f"{inv.path}: cannot add {spec.name}: " + "; ".join(
                f"{k}: {v}" for k, v in errors.items()))
        if is_ini(inv.path, text):
            return _ini_add(text, spec.group, _ini_host_line(spec.name, spec.host_vars()))
        return _yaml_add(text, spec.group, spec.name, spec.host_vars())

    return edit_inventory(path, change)


class NodeInvalid(InventoryError):
    """The node cannot be added: `errors` is field → what is wrong with it."""

    def __init__(self, message: str, errors: dict[str, str]) -> None:
        super().__init__(message)
        self.errors = errors


def add_proposed(path: str | Path, group: str, given: dict[str, Any] | None = None,
                 before_write: Any = None, timeout: float = 10.0,
                 addresses: Mapping[str, str] | None = None) -> tuple[Inventory, NodeSpec]:
    """Propose the group's next node (name, IP, VMID, size, hypervisor; `given` fixes any of
    them) and add it, both under the inventory's lock: two adds at once get different nodes,
    and a value taken meanwhile is refused (NodeInvalid), nothing written.
    `before_write(spec, text_before, text_after)` runs under the lock just before the file is
    replaced (a workflow journals what it is about to write). `addresses`: what hosts written
    by name resolve to (`resolve_names`), resolved before the lock is taken."""
    from dataclasses import replace

    chosen: list[NodeSpec] = []

    def change(inv: Inventory, text: str) -> str:
        spec = replace(propose_node(inv, group, addresses), **(given or {}))
        errors = validate_node(inv, spec, addresses)
        if errors:
            raise NodeInvalid(f"{inv.path}: cannot add {spec.name}: " + "; ".join(
                f"{k}: {v}" for k, v in errors.items()), errors)
        if is_ini(inv.path, text):
            new = _ini_add(text, spec.group, _ini_host_line(spec.name, spec.host_vars()))
        else:
            new = _yaml_add(text, spec.group, spec.name, spec.host_vars())
        if before_write is not None:
            before_write(spec, text, new)
        chosen.append(spec)
        return new

    return edit_inventory(path, change, timeout), chosen[0]


def restore_inventory(path: str | Path, expected: str, original: str,
                      timeout: float = 10.0) -> bool:
    """Put back `original` byte for byte, under the lock, if the file is still exactly
    `expected` (what we wrote); False, nothing written, if anyone changed it since."""
    def change(inv: Inventory, text: str) -> str:
        if text != expected:
            raise _Changed()
        return original

    try:
        edit_inventory(path, change, timeout)
    except _Changed:
        return False
    return True


class _Changed(Exception):
    pass


def remove_node(path: str | Path, name: str) -> Inventory:
    """Remove the host from every group; an absent host is not an error (idempotent)."""
    def change(inv: Inventory, text: str) -> str:
        if inv.host(name) is None:
            return text
        return _ini_remove(text, name) if is_ini(inv.path, text) else _yaml_remove(text, name)

    return edit_inventory(path, change)
