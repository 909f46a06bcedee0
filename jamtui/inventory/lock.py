"""Writing the inventory: under a lock, atomically, with a backup; a node added, removed or
restored."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .edit import _ini_add, _ini_host_line, _ini_remove, _yaml_add, _yaml_remove
from .parse import Inventory, InventoryError, is_ini, parse_inventory, read_text
from .propose import NodeSpec, propose_node
from .validate import validate_node

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
