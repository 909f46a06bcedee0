"""First reads that do not wait for each other: Proxmox writes what /cluster/resources gives
at once and reads VM configs after, in parallel; it polls every second while its VMs are on
screen and at once after an action; Fabio's instances are read in parallel."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.config import load_config
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.sources.fabio import FabioSource
from jamtui.sources.proxmox import ProxmoxSource
from jamtui.store import Store
from tests.conftest import FAST
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=9, tick=0, traffic=False, **FAST) as running:
        yield running


def _cfg(lab: Lab, tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    return load_config(path, env=lab.env())


def test_vms_show_before_their_configs_are_read(lab: Lab, tmp_path: Path) -> None:
    store = Store()
    src = ProxmoxSource(store, _cfg(lab, tmp_path).proxmox, poll_interval=30)
    release = threading.Event()
    reads: list[int] = []
    at_once: list[int] = []
    real = src._config_ip

    def slow_config(node: str, vmid: int) -> str | None:
        reads.append(vmid)
        at_once.append(len(reads))
        release.wait(10)
        return real(node, vmid)

    src._config_ip = slow_config  # type: ignore[method-assign]
    src.start()
    try:
        # every VM is on screen while no config has answered yet
        guests = len(lab.world.vms) + len(lab.world.containers)  # LXC guests are listed too
        wait_for(lambda: len(store.items(Kind.VM)) == guests, timeout=10)
        assert store.items(Kind.HYPERVISOR)
        wait_for(lambda: len(reads) > 1, timeout=10)  # configs read side by side
        release.set()
        wait_for(lambda: any(v.ip for v in store.items(Kind.VM)
                             if v.name == "vb0" and v.status == "running"), timeout=10)
    finally:
        release.set()
        src.stop()


def test_proxmox_polls_fast_while_shown_and_at_once_after_an_action(
        lab: Lab, tmp_path: Path) -> None:
    store = Store()
    src = ProxmoxSource(store, _cfg(lab, tmp_path).proxmox, poll_interval=30)
    vm = next(v for v in lab.world.vms.values() if v.name == "bastion")
    src.start()
    try:
        wait_for(lambda: store.items(Kind.VM), timeout=10)
        src.set_foreground(True)

        def shown(status: str) -> bool:
            return any(v.vmid == vm.vmid and v.status == status for v in store.items(Kind.VM))

        lab.call(lab.world.vm_stop, vm.node, vm.vmid)  # outside jamtui
        wait_for(lambda: shown("stopped"), timeout=5)  # not the 30 s interval
        src.set_foreground(False)
        time.sleep(1.5)  # the foreground poll's wait ends; now at the 30 s interval
        before = src.requests_made
        src.vm_action(vm.node, vm.vmid, "start")  # through jamtui: read again at once
        wait_for(lambda: src.requests_made > before + 1, timeout=5)
    finally:
        lab.call(lab.world.vm_start, vm.node, vm.vmid)
        src.stop()


def test_fabio_instances_are_read_side_by_side(lab: Lab, tmp_path: Path) -> None:
    cfg = _cfg(lab, tmp_path)
    assert len(cfg.fabio.addresses) >= 3
    for name in [k for k in lab.urls if k.startswith("fabio:") and not k.endswith(":lb")]:
        lab.set_fault(name, "slow", latency=1.0)
    try:
        store = Store()
        src = FabioSource(store, cfg.fabio)
        t0 = time.monotonic()
        src.refresh()
        # one after another: a second per instance
        assert time.monotonic() - t0 < len(cfg.fabio.addresses) - 0.5
        assert store.items(Kind.ROUTE)
    finally:
        lab.clear_fault()


def test_an_unchanged_cluster_resources_answer_costs_no_records_and_no_store_change(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read every second while VMs are on screen, Proxmox mostly answers what it answered
    last (pvestatd refreshes its figures every 10 s): such an answer builds no records and
    publishes nothing, so the cockpit repaints nothing."""
    import jamtui.sources.proxmox as proxmox

    store = Store()
    src = ProxmoxSource(store, _cfg(lab, tmp_path).proxmox, poll_interval=30)
    src.refresh()  # the first answer, and the VMs' addresses
    published: list[object] = []
    store.subscribe(published.append)
    decoded: list[int] = []
    real = proxmox.decode_vm

    def counting(*args: object) -> object:
        decoded.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(proxmox, "decode_vm", counting)
    for _ in range(20):
        # the lab's uptimes count whole seconds: two reads within one second are the same
        time.sleep(1.02 - time.time() % 1)
        second = int(time.time())
        src.refresh()
        published.clear()
        decoded.clear()
        src.refresh()
        if int(time.time()) == second:
            break
    else:
        pytest.skip("no two reads within one second on this machine")
    assert published == [] and decoded == []
    # a changed answer is written as before
    vm = next(v for v in lab.world.vms.values() if v.name == "bastion")
    lab.call(lab.world.vm_stop, vm.node, vm.vmid)

    def stopped() -> bool:
        src.refresh()
        return any(v.vmid == vm.vmid and v.status == "stopped" for v in store.items(Kind.VM))

    wait_for(stopped, timeout=10, step=0.2)
    assert decoded and published
    lab.call(lab.world.vm_start, vm.node, vm.vmid)
