"""The store: merges, change events keyed by id, health, staleness and cross-links."""

from __future__ import annotations

import threading

from jamtui.model import (
    VM,
    Allocation,
    BackendStatus,
    Health,
    Hypervisor,
    Kind,
    NomadNode,
    Quorum,
    ServiceInstance,
)
from jamtui.store import Change, Store


def alloc(id_: str, status: str = "running", node: str = "n1") -> Allocation:
    return Allocation(id_, f"web.web[{id_}]", "web", "web", node, "vs0", status, "run")


def test_replace_publishes_only_the_difference() -> None:
    store = Store()
    seen: list[list[Change]] = []
    store.subscribe(seen.append)
    store.replace(Kind.ALLOCATION, [alloc("a"), alloc("b")])
    assert sorted((c.id, c.op) for c in seen[-1]) == [("a", "added"), ("b", "added")]
    store.replace(Kind.ALLOCATION, [alloc("a"), alloc("b", "failed"), alloc("c")])
    assert sorted((c.id, c.op) for c in seen[-1]) == [("b", "changed"), ("c", "added")]
    store.replace(Kind.ALLOCATION, [alloc("a"), alloc("b", "failed")])
    assert seen[-1] == [Change(Kind.ALLOCATION, "c", "removed")]
    n = len(seen)
    store.replace(Kind.ALLOCATION, [alloc("a"), alloc("b", "failed")])
    assert len(seen) == n  # nothing changed, nothing published


def test_scoped_replace_leaves_the_rest() -> None:
    store = Store()
    a1, a2 = alloc("a", node="n1"), alloc("b", node="n2")
    store.replace(Kind.ALLOCATION, [a1, a2])
    changes = store.replace(Kind.ALLOCATION, [], scope=lambda a: a.node_id == "n1")
    assert changes == [Change(Kind.ALLOCATION, "a", "removed")]
    assert store.items(Kind.ALLOCATION) == [a2]


def test_upsert_remove_and_batch() -> None:
    store = Store()
    seen: list[list[Change]] = []
    store.subscribe(seen.append)
    with store.batch():
        store.upsert(Kind.ALLOCATION, alloc("a"))
        store.upsert(Kind.ALLOCATION, alloc("b"))
        assert seen == []  # held until the batch ends
    assert len(seen) == 1 and len(seen[0]) == 2
    assert store.upsert(Kind.ALLOCATION, alloc("a")) is None  # equal: no event
    assert store.remove(Kind.ALLOCATION, "a") == Change(Kind.ALLOCATION, "a", "removed")
    assert store.remove(Kind.ALLOCATION, "a") is None


def test_down_backend_keeps_data_marked_stale() -> None:
    store = Store()
    store.replace(Kind.ALLOCATION, [alloc("a")])
    assert not store.is_stale(Kind.ALLOCATION)
    store.set_backend(BackendStatus("nomad", Health.DOWN, last_error="cannot reach"))
    assert store.is_stale(Kind.ALLOCATION)
    assert store.items(Kind.ALLOCATION) == [alloc("a")]
    assert not store.is_stale(Kind.VM)
    assert store.backend("proxmox").health is Health.UNKNOWN


def test_cross_links_alloc_node_vm_hypervisor() -> None:
    store = Store()
    store.upsert(Kind.HYPERVISOR, Hypervisor("pve2", "online", 0.1, 12, 1, 2))
    store.upsert(Kind.VM, VM(301, "vs1", "pve2", "running", 0.1, 4, 1, 2, ip="10.0.0.31"))
    store.upsert(Kind.NOMAD_NODE, NomadNode("n1", "vs1", "10.0.0.31", "ready", "eligible", False))
    a = alloc("a", node="n1")
    store.upsert(Kind.ALLOCATION, a)
    inst = ServiceInstance("vs1/x", "web", "x", "vs1", "10.0.0.31", 8080, alloc_id="a")
    store.upsert(Kind.INSTANCE, inst)
    node, vm, hv = store.chain_of(a)
    assert (node.name, vm.vmid, hv.name) == ("vs1", 301, "pve2")  # type: ignore[union-attr]
    assert store.alloc_of(inst) == a
    assert store.instances_of_alloc("a") == [inst]
    assert store.allocs_on("n1") == [a]


def test_concurrent_writers_lose_nothing() -> None:
    store = Store()
    events: list[Change] = []
    lock = threading.Lock()

    def record(changes: list[Change]) -> None:
        with lock:
            events.extend(changes)

    store.subscribe(record)

    def writer(prefix: str) -> None:
        for i in range(200):
            store.upsert(Kind.ALLOCATION, alloc(f"{prefix}{i}"))

    threads = [threading.Thread(target=writer, args=(p,)) for p in "wxyz"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count(Kind.ALLOCATION) == 800
    assert len(events) == 800 and {e.op for e in events} == {"added"}


def test_quorum_failure_tolerance() -> None:
    servers = ("a", "b", "c")
    assert Quorum("consul", "a", servers, servers).failure_tolerance == 1
    assert Quorum("consul", "a", servers, ("a", "b")).failure_tolerance == 0
    assert Quorum("consul", "", servers, ("a",)).failure_tolerance == -1


def test_upsert_many_is_each_upsert_published_once() -> None:
    """Consul's first picture writes a service's instances at once (100 a service at 5k):
    the changes are those one upsert each gives, under one lock, published as one list."""
    store = Store()
    store.upsert(Kind.ALLOCATION, alloc("a"))
    seen: list[list[Change]] = []
    store.subscribe(seen.append)
    changes = store.upsert_many(Kind.ALLOCATION, [alloc("a"), alloc("b", "failed"),
                                                  alloc("c")])
    assert changes == [Change(Kind.ALLOCATION, "b", "added"),
                       Change(Kind.ALLOCATION, "c", "added")] and seen == [changes]
    changes = store.upsert_many(Kind.ALLOCATION, [alloc("b"), alloc("c")])
    assert changes == [Change(Kind.ALLOCATION, "b", "changed")] and len(seen) == 2
    assert store.upsert_many(Kind.ALLOCATION, []) == [] and len(seen) == 2
    assert store.get(Kind.ALLOCATION, "b") == alloc("b")
