"""First reads that do not wait for each other: Proxmox writes what /cluster/resources gives
at once and reads VM configs after, in parallel; it polls every second while its VMs are on
screen and at once after an action; Fabio's instances are read in parallel; Nomad's full
reads side by side; Consul's check watch does not spin while the first picture is read; a
one-shot command reads the first picture only."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.sources.consul import ConsulSource
from jamtui.sources.fabio import FabioSource
from jamtui.sources.nomad import NomadSource
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


def test_nomad_first_reads_are_side_by_side(lab: Lab, tmp_path: Path) -> None:
    """Every Nomad answer `delay` late: nodes, jobs, allocations, volumes, namespaces and
    deployments one after another (after the quorum read) took 6 * delay and more; side by
    side, with the quorum read meanwhile, the slow answers do not add up."""
    delay = 0.5
    store = Store()
    src = NomadSource(store, _cfg(lab, tmp_path).nomad, poll_interval=30)
    lab.set_fault("nomad", "slow", latency=delay)
    try:
        started = time.monotonic()
        src.start()
        assert src.ready.wait(30)
        took = time.monotonic() - started
    finally:
        lab.clear_fault("nomad")
        src.stop()
    assert store.backend("nomad").health.value == "ok", store.backend("nomad")
    assert store.items(Kind.ALLOCATION) and store.items(Kind.JOB)
    assert store.items(Kind.NOMAD_NODE) and store.get(Kind.QUORUM, "nomad") is not None
    # the stream's connect, then the reads (one delay), the quorum read long done by then
    assert took < 5 * delay, f"{took:.1f} s with every answer {delay} s late"


def test_consul_check_watch_holds_while_the_first_picture_is_read(
        lab: Lab, tmp_path: Path) -> None:
    """While the services were read (not yet `ok`), the check watch asked for every check's
    state without its index, again and again: at 5,000 instances 2.5 MB each time, and the
    first picture waited behind them at the server."""
    assert lab.ctx is not None
    src = ConsulSource(Store(), _cfg(lab, tmp_path).consul, poll_interval=30)
    before = lab.ctx.consul_requests["GET /v1/health/state/any"]
    lab.set_fault("consul", "slow", latency=0.3)
    try:
        src.start()
        assert src.ready.wait(30) and src._first_read.is_set()
        wait_for(lambda: src._checks_loaded, timeout=10)
    finally:
        lab.clear_fault("consul")
        src.stop()
    assert lab.ctx.consul_requests["GET /v1/health/state/any"] - before == 1


def test_a_one_shot_engine_reads_the_first_picture_only(lab: Lab, tmp_path: Path) -> None:
    """`status` and `snapshot` print the first picture: no event stream, no check watch
    (its first answer is every check's state again), and the picture as whole as ever."""
    assert lab.ctx is not None
    asked = lab.ctx.requests, lab.ctx.consul_requests
    stream = asked[0]["GET /v1/event/stream?index&topic"] + asked[0]["GET /v1/event/stream?topic"]
    checks = sum(n for k, n in asked[1].items() if k.startswith("GET /v1/health/state/any"))
    engine = Engine(_cfg(lab, tmp_path))
    engine.start(followers=False)
    try:
        assert not engine.settle(30)
        store = engine.store
        assert all(store.backend(n).health.value == "ok" for n in ("nomad", "consul"))
        assert store.items(Kind.ALLOCATION) and store.items(Kind.MEMBER)
        instances = store.items(Kind.INSTANCE)
        assert instances and all(i.checks for i in instances)
        assert store.get(Kind.QUORUM, "nomad") and store.get(Kind.QUORUM, "consul")
    finally:
        engine.stop(timeout=5)
    # nothing held open that the stop had to wait for (Consul's held catalog query did,
    # the full timeout, before `snapshot` printed a thing)
    assert not [t.name for s in engine.sources.values() for t in s._threads if t.is_alive()]
    assert asked[0]["GET /v1/event/stream?index&topic"] + asked[0][
        "GET /v1/event/stream?topic"] == stream
    assert sum(n for k, n in asked[1].items()
               if k.startswith("GET /v1/health/state/any")) == checks


def test_a_stopped_proxmox_starts_no_more_config_reads(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`status` stops listening after `--timeout`: the VM configs still queued must not be
    read (a thread pool's queue ran to its end, and the process waited for it at exit)."""
    import jamtui.sources.proxmox as proxmox

    bound = 2  # the small lab has 7 running VMs
    monkeypatch.setattr(proxmox, "CONFIG_READS", bound)
    src = ProxmoxSource(Store(), _cfg(lab, tmp_path).proxmox, poll_interval=30)
    started: list[int] = []
    real = src._config_ip

    def slow_config(node: str, vmid: int) -> str | None:
        started.append(vmid)
        time.sleep(0.5)
        return real(node, vmid)

    src._config_ip = slow_config  # type: ignore[method-assign]
    running = lab.call(lambda: sum(1 for v in lab.world.vms.values() if v.status == "running"))
    assert running > bound
    src.start()
    wait_for(lambda: started, timeout=10)
    src.stop()
    time.sleep(1.5)  # the reads under way end; none may begin
    assert len(started) <= bound


def test_status_waits_for_no_detail_it_does_not_print(lab: Lab, tmp_path: Path) -> None:
    """`status` prints counts: no VM config for its address (a GET per running VM, 104 at
    the 5,000-allocation lab), no task states with the allocations (most of their 8 MB)."""
    assert lab.ctx is not None
    key = "GET /v1/allocations?namespace&task_states"  # python-nomad sends its namespace
    before = lab.ctx.requests[key]
    engine = Engine(_cfg(lab, tmp_path))
    engine.start(followers=False, summary=True)
    try:
        assert not engine.settle(30)
        store = engine.store
        assert store.backend("proxmox").health.value == "ok"
        assert store.items(Kind.VM) and store.items(Kind.HYPERVISOR)
        assert engine.sources["proxmox"]._ips == {}  # type: ignore[attr-defined]
        allocs = store.items(Kind.ALLOCATION)
        assert allocs and all(not a.tasks for a in allocs)
        assert lab.ctx.requests[key] == before + 1
    finally:
        engine.stop()
