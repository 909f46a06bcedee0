"""jamtui's Proxmox source and actions against the lab, as the cockpit uses them: containers
in the VMs with their type, /cluster/tasks in the store (and `refresh_tasks` saying when one
appeared), snapshots as a tree, taken / rolled back / deleted and migration, each task
followed to its end; a task's log and a storage's content read on demand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jamtui.actions import ActionError, find
from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.model import Kind, Snapshot
from jamtui.sim.lab import Lab
from jamtui.sources.proxmox import ProxmoxSource, snapshot_tree
from jamtui.store import Store
from tests.conftest import FAST
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Engine]]:
    with Lab(seed=3, tick=0.2, traffic=False, **FAST) as lab:
        path = tmp_path_factory.mktemp("pve") / "jamtui.toml"
        path.write_text("poll_interval = 0.5\n" + lab.config_toml())
        engine = Engine(load_config(path, env=lab.env()))
        engine.start()
        try:
            assert engine.wait_ready(10)
            yield lab, engine
        finally:
            engine.stop()


def run(action_name: str, engine: Engine, obj: object, **params: object) -> list[str]:
    action = find(action_name)
    assert action is not None and action.applies(obj)
    return list(action.run(engine, obj, {"poll": 0.1, **params}))


def vm(engine: Engine, name: str):  # type: ignore[no-untyped-def]
    return next(v for v in engine.store.items(Kind.VM) if v.name == name)


def test_containers_and_tasks_reach_the_store(live: tuple[Lab, Engine]) -> None:
    _lab, engine = live
    ct = vm(engine, "ns1")
    assert ct.type == "lxc" and ct.is_container and ct.node == "pve2" and ct.ip is None
    assert vm(engine, "vb0").type == "qemu"
    tasks = engine.store.items(Kind.PVE_TASK)
    assert {t.type for t in tasks} >= {"vzstart", "qmsnapshot"}
    assert all(not t.running and t.ok for t in tasks)

    lines = run("vm_shutdown", engine, ct)
    assert lines[0] == "Proxmox task vzshutdown started"
    assert lines[-1] == "shutdown of container 400 (ns1) on pve2: OK"
    wait_for(lambda: vm(engine, "ns1").status == "stopped")
    run("vm_start", engine, vm(engine, "ns1"))
    wait_for(lambda: vm(engine, "ns1").status == "running")
    mine = wait_for(lambda: [t for t in engine.store.items(Kind.PVE_TASK)
                             if t.type == "vzstart" and t.user.endswith("!jamtui")])
    assert mine[0].object_id == "400" and mine[0].ok

    pve = engine.sources["proxmox"]
    # a source of its own (no poll thread beside it reading /cluster/tasks first)
    alone = ProxmoxSource(Store(), engine.config.proxmox, poll_interval=30)
    assert alone.refresh_tasks() is False  # the first read: nothing to compare with
    assert alone.refresh_tasks() is False  # nothing new since the last read
    upid = pve.vm_action("pve2", 400, "reboot", "lxc")
    assert alone.refresh_tasks() is True  # a task appeared: the poll re-reads the resources
    lines, total = wait_for(lambda: (r := pve.task_log("pve2", upid)) and
                            r[0][-1:] == ["TASK OK"] and r)
    assert total == len(lines)


def test_snapshots_take_rollback_delete_as_a_tree(live: tuple[Lab, Engine]) -> None:
    _lab, engine = live
    pve = engine.sources["proxmox"]
    target = vm(engine, "vs1")
    assert [s.name for s in pve.snapshots(target.node, target.vmid)] == ["current"]
    lines = run("vm_snapshot", engine, target, name="before", description="a test")
    assert lines[-1] == f"snapshot 'before' of VM {target.vmid} (vs1) on {target.node}: OK"
    run("vm_snapshot", engine, target, name="after", vmstate=True)
    tree = snapshot_tree(pve.snapshots(target.node, target.vmid))
    assert [(depth, s.name) for depth, s in tree] == [(0, "before"), (1, "after"),
                                                       (2, "current")]
    assert tree[1][1].vmstate and tree[0][1].description == "a test"
    with pytest.raises(ActionError, match="snapshot name 'after' already used"):
        run("vm_snapshot", engine, target, name="after")

    run("snapshot_rollback", engine, target, snapshot="before")
    tree = snapshot_tree(pve.snapshots(target.node, target.vmid))
    assert [(d, s.name) for d, s in tree] == [(0, "before"), (1, "after"), (1, "current")]
    wait_for(lambda: vm(engine, "vs1").status == "stopped")  # no RAM in it: stopped
    run("snapshot_delete", engine, vm(engine, "vs1"), snapshot="before")
    names = [s.name for _, s in snapshot_tree(pve.snapshots(target.node, target.vmid))]
    assert names == ["after", "current"]


def test_migrate_moves_the_row(live: tuple[Lab, Engine]) -> None:
    _lab, engine = live
    before = vm(engine, "vs0")
    target = "pve1" if before.node == "pve2" else "pve2"
    with pytest.raises(ActionError, match="other than"):
        run("vm_migrate", engine, before, target=before.node)
    lines = run("vm_migrate", engine, before, target=target)
    assert lines[-1].startswith(f"live migration of VM {before.vmid} (vs0)")
    wait_for(lambda: vm(engine, "vs0").node == target)  # the row moves at once (refresh)
    migrations = [t for t in engine.store.items(Kind.PVE_TASK) if t.type == "qmigrate"]
    assert migrations and migrations[0].object_id == str(before.vmid)


def test_storage_content_and_tree_edge_cases(live: tuple[Lab, Engine]) -> None:
    _lab, engine = live
    pve = engine.sources["proxmox"]
    vols = pve.storage_content("pve2", "local-lvm")
    assert any(v.vmid == 400 and v.content == "rootdir" for v in vols)
    assert {v.content for v in pve.storage_content("pve1", "local")} == {"iso", "vztmpl"}
    # an orphan (its parent deleted elsewhere) is a root; a cycle does not hang
    tree = snapshot_tree([Snapshot("a", parent="gone"), Snapshot("b", parent="c"),
                          Snapshot("c", parent="b"), Snapshot("current", parent="a")])
    assert [(d, s.name) for d, s in tree] == [(0, "a"), (1, "current")]
