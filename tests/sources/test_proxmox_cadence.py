"""What the Proxmox poll costs while VMs are on screen (#17): /cluster/resources each second
(a guest's new state shows within the second), /cluster/tasks at the configured interval and
at once after an action, not both every second."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jamtui.config import load_config
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.sources import proxmox
from jamtui.sources.proxmox import ProxmoxSource
from jamtui.store import Store
from tests.conftest import FAST
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=9, tick=0, traffic=False, **FAST) as running:
        yield running


def counted_source(lab: Lab, tmp_path: Path, store: Store
                   ) -> tuple[ProxmoxSource, Counter[str]]:
    """A Proxmox source on the lab (30 s poll interval) counting its reads by path."""
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    src = ProxmoxSource(store, load_config(path, env=lab.env()).proxmox, poll_interval=30)
    reads: Counter[str] = Counter()
    get = src._get

    def counting(what: str) -> Any:
        reads[what] += 1
        return get(what)

    src._get = counting  # type: ignore[method-assign]
    return src, reads


def test_the_foreground_poll_reads_resources_each_second_and_tasks_at_the_interval(
        lab: Lab, tmp_path: Path) -> None:
    store = Store()
    src, reads = counted_source(lab, tmp_path, store)
    vm = next(v for v in lab.world.vms.values() if v.name == "bastion")
    src.start()
    try:
        wait_for(lambda: store.items(Kind.VM) and reads["cluster/tasks"], timeout=10)
        src.set_foreground(True)
        wait_for(lambda: reads["cluster/resources"] >= 5, timeout=10)
        # the first poll and the one the screen's turn to VMs woke: no more in 30 s
        assert reads["cluster/tasks"] <= 2, reads
        lab.call(lab.world.vm_stop, vm.node, vm.vmid)  # outside jamtui: no task to go by
        wait_for(lambda: any(v.vmid == vm.vmid and v.status == "stopped"
                             for v in store.items(Kind.VM)), timeout=5)
        before = reads["cluster/tasks"]
        src.vm_action(vm.node, vm.vmid, "start")  # through jamtui: its task is read at once
        wait_for(lambda: reads["cluster/tasks"] > before, timeout=5)
        wait_for(lambda: any(t.object_id == str(vm.vmid) and t.type == "qmstart"
                             for t in store.items(Kind.PVE_TASK)), timeout=5)
    finally:
        lab.call(lab.world.vm_start, vm.node, vm.vmid)
        src.stop()


def test_the_fast_foreground_read_does_not_read_privileges_more_often(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token's own privileges (/access/permissions) are read every PRIVILEGE_CHECK_EVERY
    poll intervals, on the clock: the foreground's read each second made it each 12 s."""
    monkeypatch.setattr(proxmox, "FOREGROUND_INTERVAL", 0.05)  # a second's reads, quicker
    src, reads = counted_source(lab, tmp_path, Store())
    src.set_foreground(True)
    src.start()
    try:
        wait_for(lambda: reads["cluster/resources"] >= 2 * proxmox.PRIVILEGE_CHECK_EVERY + 2,
                 timeout=20)
        assert reads["access/permissions"] == 1, reads
    finally:
        src.stop()


def test_a_one_shot_reads_the_configs_beside_its_first_write(lab: Lab, tmp_path: Path) -> None:
    """`snapshot --json` (#17): the first write reads the inventory (0.1-0.2 s at 5k) for a
    picture a one-shot command never shows; the VM configs (its longest wait) are read beside
    it, not after it."""
    import threading

    store = Store()
    src, _ = counted_source(lab, tmp_path, store)
    src.once = True
    config_read = threading.Event()
    get = src._get

    def noting(what: str) -> Any:
        if what.endswith("/config"):
            config_read.set()
        return get(what)

    src._get = noting  # type: ignore[method-assign]
    asked: list[bool] = []

    def inventory() -> None:  # the first write's: were configs read meanwhile?
        asked.append(config_read.wait(5))

    src.inventory = inventory  # type: ignore[assignment]
    src.refresh()
    assert asked and asked[0], asked
    assert store.items(Kind.HYPERVISOR) and store.items(Kind.STORAGE)
    assert any(v.ip for v in store.items(Kind.VM)), store.items(Kind.VM)


def test_the_cockpit_reads_vm_configs_once_its_first_frame_is_drawn(
        lab: Lab, tmp_path: Path) -> None:
    """The VMs' configs (their addresses: one read per running VM, 104 at 5k) wait for the
    cockpit's first frame (`Source.first_frame`): they took the one GIL from it (#17). The
    VMs are written and the source has answered before; the configs are read after."""
    import threading

    store = Store()
    src, reads = counted_source(lab, tmp_path, store)
    src.first_frame = threading.Event()
    src.refresh()
    assert store.items(Kind.VM)
    assert not any(path.endswith("/config") for path in reads), reads
    src.first_frame.set()
    src.refresh()
    assert any(path.endswith("/config") for path in reads), reads
    assert any(v.ip for v in store.items(Kind.VM))
