"""Snapshots of the main screens at 80x24 and 160x48, from a fixed store (no clocks, no lab),
as a supplement to the pilot tests: they catch layout regressions, not behaviour.
Update with `pytest tests/ui/test_snapshots.py --snapshot-update` after checking the diff."""

from __future__ import annotations

import time
import types
from typing import Any

import pytest

from jamtui.model import (
    VM,
    Allocation,
    BackendStatus,
    Health,
    Hypervisor,
    Kind,
    Quorum,
    Service,
    TaskInfo,
)
from jamtui.store import Store
from jamtui.ui.app import JamApp


def fixed_store() -> Store:
    now = time.time()  # ages shown as "3d00h": no second ticks over during the test
    store = Store()
    for name in ("consul", "nomad", "proxmox", "fabio", "haproxy"):
        store.set_backend(BackendStatus(name, Health.OK, address=f"http://{name}.lab"))
    store.set_backend(BackendStatus("haproxy", Health.DOWN, address="http://bastion.lab:8404",
                                    last_error="cannot reach http://bastion.lab:8404: refused"))
    store.upsert(Kind.HYPERVISOR, Hypervisor("pve1", "online", 0.31, 16, 20 * 2**30, 64 * 2**30,
                                             uptime=1_036_800))
    store.upsert(Kind.HYPERVISOR, Hypervisor("pve2", "online", 0.12, 16, 9 * 2**30, 64 * 2**30,
                                             uptime=1_036_800))
    for i, (name, group) in enumerate([("vb0", "vb"), ("vb1", "vb"), ("vb2", "vb"),
                                       ("vs0", "vs"), ("vs1", "vs"), ("vs2", "vs")]):
        store.upsert(Kind.VM, VM(200 + i, name, f"pve{1 + i % 2}",
                                 "stopped" if name == "vs2" else "running", 0.1 + i / 20, 4,
                                 2**30 * (1 + i), 8 * 2**30, uptime=86_400,
                                 ip=f"192.168.42.{20 + i}", group=group))
    store.upsert(Kind.SERVICE, Service("example", ("urlprefix-example.jamfox.dev/",), 2, 0, 1))
    store.upsert(Kind.SERVICE, Service("api", ("urlprefix-api.jamfox.dev/",), 2, 0, 0))
    store.upsert(Kind.SERVICE, Service("db", (), 1, 0, 0))
    for i, status in enumerate(["running", "running", "failed", "pending"]):
        store.upsert(Kind.ALLOCATION, Allocation(
            f"{i:08x}-aaaa-bbbb-cccc-dddddddddddd", f"example.web[{i}]", "example", "web",
            "node-1", f"vs{i % 3}", status, "run", create_time=now - 3 * 86400 - 1800,
            tasks=(TaskInfo("server", "running" if status == "running" else "dead"),)))
    store.upsert(Kind.QUORUM, Quorum("consul", "192.168.42.20:8300",
                                     ("a", "b", "c"), ("a", "b")))
    store.upsert(Kind.QUORUM, Quorum("nomad", "192.168.42.20:4647",
                                     ("a", "b", "c"), ("a", "b", "c")))
    return store


def app() -> JamApp:
    store = fixed_store()
    engine: Any = types.SimpleNamespace(store=store, sources=dict.fromkeys(
        ("consul", "nomad", "proxmox", "fabio", "haproxy")), start=lambda: None,
        stop=lambda: None)
    return JamApp(engine, start_engine=False)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_overview(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app(), terminal_size=size)


def test_allocations_view(snap_compare: Any) -> None:
    assert snap_compare(app(), press=["colon", *"allocs", "enter"], terminal_size=(160, 48))
