"""The single live picture of the lab: what the UI and the headless commands read.

Sources write into it from their own threads; it merges each update, keeps every backend's
health, and tells subscribers exactly which objects were added, changed or removed, so a view
updates one row rather than rebuilding a table. Data from a backend that went down stays,
marked stale, rather than vanishing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from .model import (
    VM,
    Allocation,
    BackendStatus,
    HAProxyRow,
    Health,
    Hypervisor,
    Intention,
    Job,
    Kind,
    Member,
    NomadNode,
    Refusal,
    Route,
    Service,
    ServiceInstance,
    Storage,
)

Op = Literal["added", "changed", "removed"]

# Which backend each kind comes from, so its staleness follows that backend's health.
OWNER: dict[Kind, str] = {
    Kind.HYPERVISOR: "proxmox",
    Kind.VM: "proxmox",
    Kind.STORAGE: "proxmox",
    Kind.PVE_TASK: "proxmox",
    Kind.NOMAD_NODE: "nomad",
    Kind.JOB: "nomad",
    Kind.ALLOCATION: "nomad",
    Kind.DEPLOYMENT: "nomad",
    Kind.NAMESPACE: "nomad",
    Kind.SERVICE: "consul",
    Kind.INSTANCE: "consul",
    Kind.MEMBER: "consul",
    Kind.INTENTION: "consul",
    Kind.ROUTE: "fabio",
    Kind.HAPROXY: "haproxy",
}


@dataclass(frozen=True)
class Change:
    kind: Kind
    id: str
    op: Op


Subscriber = Callable[[list[Change]], None]


def object_id(obj: Any) -> str:
    return str(obj.id)


class Store:
    """Thread-safe; subscribers are called in the writer's thread, outside the lock."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.RLock()
        self._items: dict[Kind, dict[str, Any]] = {k: {} for k in Kind}
        self._subscribers: list[Subscriber] = []
        self._pending: list[Change] | None = None
        self._batch_depth = 0
        self.clock = clock
        self.version = 0  # bumped on every published change, for cheap "anything new?" checks

    # -- reading -----------------------------------------------------------------------------

    def get(self, kind: Kind, id_: str) -> Any | None:
        with self._lock:
            return self._items[kind].get(id_)

    def items(self, kind: Kind) -> list[Any]:
        with self._lock:
            return list(self._items[kind].values())

    def count(self, kind: Kind) -> int:
        with self._lock:
            return len(self._items[kind])

    def backend(self, name: str) -> BackendStatus:
        status = self.get(Kind.BACKEND, name)
        return status if status is not None else BackendStatus(name, Health.UNKNOWN)

    def backends(self) -> list[BackendStatus]:
        return sorted(self.items(Kind.BACKEND), key=lambda b: b.name)

    def refusals(self, kind: Kind) -> list[Refusal]:
        """What the tokens may not read of `kind`, from any backend (Nomad volumes are part
        of the Proxmox-owned storage view)."""
        return [r for b in self.backends() for r in b.refused if r.kind == kind.value]

    def is_stale(self, kind: Kind) -> bool:
        owner = OWNER.get(kind)
        return owner is not None and self.backend(owner).health is Health.DOWN

    # -- writing -----------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Publish everything written inside as one list of changes."""
        with self._lock:
            self._batch_depth += 1
            if self._pending is None:
                self._pending = []
        try:
            yield
        finally:
            with self._lock:
                self._batch_depth -= 1
                done = self._batch_depth == 0
                changes = self._pending if done else None
                if done:
                    self._pending = None
            if changes:
                self._publish(changes)

    def upsert(self, kind: Kind, obj: Any) -> Change | None:
        key = object_id(obj)
        with self._lock:
            old = self._items[kind].get(key)
            if old == obj:
                return None
            self._items[kind][key] = obj
            change = Change(kind, key, "added" if old is None else "changed")
        self._emit([change])
        return change

    def upsert_many(self, kind: Kind, objs: Iterable[Any]) -> list[Change]:
        """`upsert` of each of `objs`, under one lock and published as one list: Consul's
        first picture writes 100 instances a service, 5,000 at 5k."""
        changes: list[Change] = []
        with self._lock:
            _put(self._items[kind], kind, ((object_id(o), o) for o in objs), changes)
        self._emit(changes)
        return changes

    def remove(self, kind: Kind, id_: str) -> Change | None:
        with self._lock:
            if self._items[kind].pop(id_, None) is None:
                return None
            change = Change(kind, id_, "removed")
        self._emit([change])
        return change

    def replace(
        self, kind: Kind, objs: Iterable[Any], scope: Callable[[Any], bool] | None = None
    ) -> list[Change]:
        """Make `kind` (or the part of it `scope` selects) exactly `objs`; publish the diff."""
        new = {object_id(o): o for o in objs}
        changes: list[Change] = []
        with self._lock:
            table = self._items[kind]
            for key, old in list(table.items()):
                if key not in new and (scope is None or scope(old)):
                    del table[key]
                    changes.append(Change(kind, key, "removed"))
            _put(table, kind, new.items(), changes)
        self._emit(changes)
        return changes

    def set_backend(self, status: BackendStatus) -> None:
        self.upsert(Kind.BACKEND, status)

    def _emit(self, changes: list[Change]) -> None:
        if not changes:
            return
        with self._lock:
            if self._pending is not None:
                self._pending.extend(changes)
                return
        self._publish(changes)

    def _publish(self, changes: list[Change]) -> None:
        with self._lock:
            self.version += 1
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(changes)

    # -- typed accessors, one per kind (items(kind) is Any; these are checked) ----------------

    def hypervisors(self) -> list[Hypervisor]:
        return self.items(Kind.HYPERVISOR)

    def vms(self) -> list[VM]:
        return self.items(Kind.VM)

    def storages(self) -> list[Storage]:
        return self.items(Kind.STORAGE)

    def nomad_nodes(self) -> list[NomadNode]:
        return self.items(Kind.NOMAD_NODE)

    def jobs(self) -> list[Job]:
        return self.items(Kind.JOB)

    def allocations(self) -> list[Allocation]:
        return self.items(Kind.ALLOCATION)

    def services(self) -> list[Service]:
        return self.items(Kind.SERVICE)

    def instances(self) -> list[ServiceInstance]:
        return self.items(Kind.INSTANCE)

    def members(self) -> list[Member]:
        return self.items(Kind.MEMBER)

    def intentions(self) -> list[Intention]:
        return self.items(Kind.INTENTION)

    def routes(self) -> list[Route]:
        return self.items(Kind.ROUTE)

    def haproxy_rows(self) -> list[HAProxyRow]:
        return self.items(Kind.HAPROXY)

    # -- cross-links ---------------------------------------------------------------------------

    def node_of(self, alloc: Allocation) -> NomadNode | None:
        return self.get(Kind.NOMAD_NODE, alloc.node_id)

    def vm_named(self, name: str) -> VM | None:
        with self._lock:
            return next((v for v in self._items[Kind.VM].values() if v.name == name), None)

    def vm_of_node(self, node: NomadNode) -> VM | None:
        """A Nomad client runs on the VM of the same name (or, failing that, address)."""
        vm = self.vm_named(node.name)
        if vm is None:
            with self._lock:
                vm = next((v for v in self._items[Kind.VM].values()
                           if v.ip and v.ip == node.address), None)
        return vm

    def hypervisor_of(self, vm: VM) -> Hypervisor | None:
        return self.get(Kind.HYPERVISOR, vm.node)

    def allocs_on(self, node_id: str) -> list[Allocation]:
        with self._lock:
            return [a for a in self._items[Kind.ALLOCATION].values() if a.node_id == node_id]

    def instances_of(self, service: str) -> list[ServiceInstance]:
        with self._lock:
            return [i for i in self._items[Kind.INSTANCE].values() if i.service == service]

    def instances_of_alloc(self, alloc_id: str) -> list[ServiceInstance]:
        with self._lock:
            return [i for i in self._items[Kind.INSTANCE].values() if i.alloc_id == alloc_id]

    def alloc_of(self, instance: ServiceInstance) -> Allocation | None:
        return self.get(Kind.ALLOCATION, instance.alloc_id) if instance.alloc_id else None

    def chain_of(self, alloc: Allocation) -> tuple[NomadNode | None, VM | None, Hypervisor | None]:
        """allocation → node → VM → hypervisor, as far as the lab's data reaches."""
        node = self.node_of(alloc)
        vm = self.vm_of_node(node) if node else self.vm_named(alloc.node_name)
        return node, vm, self.hypervisor_of(vm) if vm else None


def _put(table: dict[str, Any], kind: Kind, objs: Iterable[tuple[str, Any]],
         changes: list[Change]) -> None:
    """Write each (id, record) into `table` unless it holds an equal one, noting the change."""
    for key, obj in objs:
        old = table.get(key)
        if old != obj:
            table[key] = obj
            changes.append(Change(kind, key, "added" if old is None else "changed"))
