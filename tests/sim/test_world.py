"""The lab's world on its own: propagation of actions as a real lab would show them.

No HTTP here; the servers' own tests check the wire. This checks the behaviour they render.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from jamtui.inventory import default_inventory_path, load_inventory
from jamtui.sim.world import SimError, World

FAST = dict(flap_rate=0.0, boot_delay=0.2, heartbeat_grace=0.1, task_delay=0.05)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = World(load_inventory(default_inventory_path()), seed=7, **FAST)
    await w.start(tick=0)
    yield w
    await w.stop()


async def until(predicate, timeout: float = 3.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.02)


def vm_named(w: World, name: str):  # type: ignore[no-untyped-def]
    return next(v for v in w.vms.values() if v.name == name)


def running(w: World, job: str) -> list:  # type: ignore[type-arg]
    return [a for a in w.job_allocs(job) if a.client_status == "running"]


async def test_lab_starts_whole(world: World) -> None:
    assert world.consul_leader() == "vb0"
    assert {n.name for n in world.nodes.values() if n.status == "ready"} == {"vs0", "vs1", "vs2"}
    assert len(running(world, "example")) == 3
    # system jobs run once on every client node
    assert sorted(world.nodes[a.node_id].name for a in running(world, "fabio")) == [
        "vs0", "vs1", "vs2"]
    assert {a.name for a in running(world, "example")} == {
        "example.web[0]", "example.web[1]", "example.web[2]"}
    # every VM in the inventory plus the Packer template
    assert sorted(v.name for v in world.vms.values()) == sorted(
        ["bastion", "vb0", "vb1", "vb2", "vs0", "vs1", "vs2", "debian-12-cloudinit"])


async def test_seed_makes_ids_repeatable() -> None:
    inv = load_inventory(default_inventory_path())
    ids = []
    for _ in range(2):
        w = World(inv, seed=42, **FAST)
        await w.start(tick=0)
        ids.append(sorted(a.id for a in w.allocs.values()))
        await w.stop()
    assert ids[0] == ids[1]


async def test_stopped_vs_vm_loses_node_and_reschedules(world: World) -> None:
    vs0 = vm_named(world, "vs0")
    node = next(n for n in world.nodes.values() if n.name == "vs0")
    on_vs0 = [a for a in world.node_allocs(node.id) if a.job_id == "example"]
    assert on_vs0
    consul_index = world.consul.index
    world.vm_stop(vs0.node, vs0.vmid)
    await until(lambda: world.checks[("vs0", "serfHealth")].status == "critical")
    assert world.consul.index > consul_index
    await until(lambda: node.status == "down")
    assert all(a.client_status == "lost" and a.desired_status == "stop" for a in on_vs0)
    await until(lambda: len(running(world, "example")) == 3)
    replacements = [a for a in running(world, "example") if a.previous_allocation]
    assert {a.previous_allocation for a in replacements} == {a.id for a in on_vs0}
    assert all(world.nodes[a.node_id].name != "vs0" for a in running(world, "example"))


async def test_two_vb_servers_down_lose_quorum_and_it_returns(world: World) -> None:
    vb0, vb1 = vm_named(world, "vb0"), vm_named(world, "vb1")
    world.vm_stop(vb0.node, vb0.vmid)
    await until(lambda: world.consul_nodes["vb0"].alive is False)
    assert world.consul_leader() == "vb1"  # two of three still elect a leader
    world.vm_stop(vb1.node, vb1.vmid)
    await until(lambda: world.consul_leader() is None)
    assert world.nomad_leader() is None
    world.vm_start(vb1.node, vb1.vmid)
    await until(lambda: world.consul_leader() is not None)


async def test_power_task_reports_errors_like_proxmox(world: World) -> None:
    vs1 = vm_named(world, "vs1")
    upid = world.vm_start(vs1.node, vs1.vmid)
    assert upid.startswith(f"UPID:{vs1.node}:") and upid.endswith(":")
    assert len(upid.split(":")) == 9  # as proxmoxer.tools.Tasks.decode_upid requires
    await until(lambda: world.tasks[upid].status == "stopped")
    assert world.tasks[upid].exitstatus == f"VM {vs1.vmid} already running"
    with pytest.raises(SimError) as info:
        world.vm_stop(vs1.node, 999)
    assert info.value.status == 500


async def test_clone_boots_and_joins_once_configured(world: World) -> None:
    template = world.vms[9000]
    upid = world.vm_clone(template.node, 9000, 303, name="vs3", target="pve2")
    assert world.vms[303].lock == "clone"
    assert "Failed to connect" in world.provision("vs3")  # not running: unreachable
    await until(lambda: world.tasks[upid].status == "stopped")
    world.vm_set_config("pve2", 303, {"ipconfig0": "ip=192.168.42.33/24,gw=192.168.42.1"})
    world.vm_start("pve2", 303)
    await until(lambda: world.vms[303].booted)
    assert "vs3" not in world.consul_nodes  # a fresh clone has no agents until Ansible runs
    assert world.provision("vs3") == ""
    await until(lambda: "vs3" in world.consul_nodes)
    node = next(n for n in world.nodes.values() if n.name == "vs3")
    assert node.status == "ready" and node.address == "192.168.42.33"
    # system jobs follow a new client node
    await until(lambda: any(world.nodes[a.node_id].name == "vs3" for a in running(world, "fabio")))


async def test_drain_moves_service_allocations(world: World) -> None:
    node = next(n for n in world.nodes.values() if n.name == "vs1")
    world.node_drain(node.id, True)
    assert node.eligibility == "ineligible"
    await until(lambda: not node.drain)
    live = [a for a in world.node_allocs(node.id) if not a.terminal]
    assert live == []
    await until(lambda: len(running(world, "example")) == 3)
    assert len(running(world, "api")) == 2


async def test_scale_stop_and_restart(world: World) -> None:
    world.scale_job("example", "web", 5)
    await until(lambda: len(running(world, "example")) == 5)
    world.scale_job("example", "web", 2)
    await until(lambda: len(running(world, "example")) == 2)
    alloc = running(world, "example")[0]
    world.restart_alloc(alloc.id)
    assert alloc.task_states["server"].restarts == 1
    world.stop_job("example")
    # until the deregister evaluation has stopped the allocations, the job is running
    assert world.jobs["example"].status == "running" and running(world, "example")
    await until(lambda: world.jobs["example"].status == "dead")
    assert running(world, "example") == []
    assert "example" not in world.service_names()
    with pytest.raises(SimError):
        world.scale_job("example", "nope", 1)


async def test_stopped_alloc_is_replaced(world: World) -> None:
    alloc = running(world, "api")[0]
    world.stop_alloc(alloc.id)
    assert alloc.client_status == "complete" and alloc.next_allocation
    await until(lambda: len(running(world, "api")) == 2)


async def test_blocking_wait_wakes_on_change(world: World) -> None:
    start = asyncio.get_running_loop().time()
    waiter = asyncio.ensure_future(world.wait_change(5))
    await asyncio.sleep(0.05)
    world.kv_put("x", b"1")
    await waiter
    assert asyncio.get_running_loop().time() - start < 1


async def test_logs_append_and_truncate(world: World) -> None:
    alloc = running(world, "example")[0]
    world.log_line(alloc.id, "server", "hello world")
    log = alloc.logs[("server", "stdout")]
    assert log.data.endswith(b"hello world\n")
    world.truncate_log(alloc.id, "server")
    assert log.data == b"" and log.truncations == 1


async def test_tick_drifts_and_flaps() -> None:
    w = World(load_inventory(default_inventory_path()), seed=3, flap_rate=1.0, boot_delay=0.1)
    await w.start(tick=0)
    before = {v.vmid: v.cpu for v in w.vms.values() if v.status == "running"}
    w.tick()
    after = {v.vmid: v.cpu for v in w.vms.values() if v.status == "running"}
    assert before != after
    assert any(c.status != "passing" for c in w.checks.values() if c.service_id)
    await w.stop()
