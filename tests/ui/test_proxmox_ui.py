"""#16 Proxmox in the cockpit and #15's timeline, through Textual's pilot against the lab:
the TYPE column and a container's power action, migrate (`M`: target with free memory,
confirmed, the row moves), a VM's snapshot tree (`n` take, `b` roll back, `x` delete, each
confirmed naming the VM and snapshot), `:tasks` with Enter on a task's log, a hypervisor's
storage content, and `:events` with `/` and `l`."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Input, OptionList, RichLog, Static

from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.ui.app import JamApp

from .test_cockpit import focus_row, pane, ready, text_of, until


def screen_name(app: JamApp) -> str:
    return type(app.screen).__name__


def row_texts(table: Any) -> list[str]:
    return [" ".join(text_of(c).strip() for c in table.get_row_at(i))
            for i in range(table.row_count)]


async def test_type_column_container_action_and_migrate(lab_engine: tuple[Lab, Engine]
                                                        ) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(180, 50)) as pilot:
        await ready(pilot, app)
        table = pane(app, Kind.VM).table
        await until(pilot, lambda: table.row_count == len(engine.store.items(Kind.VM)))
        ct_row = next(r for r in row_texts(table) if "ns1" in r)
        assert ct_row.startswith("400 CT ns1")
        # `x` on a container: shutdown, confirmed naming the container, a vzshutdown task
        focus_row(table, "400")
        await pilot.press("x")
        await until(pilot, lambda: screen_name(app) == "ConfirmScreen")
        assert "container 400 (ns1) on pve2" in text_of(app.screen.query(Static).first()
                                                         .content)
        await pilot.press("y")
        await until(pilot, lambda: engine.store.get(Kind.VM, "400").status == "stopped",
                    timeout=15)

        vm = next(v for v in engine.store.items(Kind.VM) if v.name == "vs2")
        target = "pve1" if vm.node == "pve2" else "pve2"
        focus_row(table, vm.id)
        await pilot.press("M")
        await until(pilot, lambda: screen_name(app) == "MigrateScreen")
        targets = app.screen.query_one(OptionList)
        label = text_of(targets.get_option_at_index(0).prompt)
        assert label.startswith(target) and "free of" in label
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(app) == "ConfirmScreen")
        assert f"live Migrate VM {vm.vmid} (vs2) on {vm.node} to {target}?" in text_of(
            app.screen.query(Static).first().content)
        await pilot.press("y")
        await until(pilot, lambda: engine.store.get(Kind.VM, vm.id).node == target, timeout=15)
        assert lab.call(lambda: lab.world.vms[vm.vmid].node) == target

        # :tasks lists it (type, user, status); Enter shows its log
        await pilot.press("colon", *"tasks", "enter")
        await until(pilot, lambda: app.screen.name == "tasks")
        tasks = pane(app, Kind.PVE_TASK).table
        await until(pilot, lambda: any("qmigrate" in r for r in row_texts(tasks)))
        migrate = next(t for t in engine.store.items(Kind.PVE_TASK) if t.type == "qmigrate")
        focus_row(tasks, migrate.upid)
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(app) == "TaskLogScreen")
        await until(pilot, lambda: any("TASK OK" in line for line in app.screen.lines))
        assert app.screen.lines[0].startswith(f"starting migration of VM {vm.vmid}")
        assert app.screen.state == "ended: OK"
        assert app.screen.query_one(RichLog).lines


async def test_snapshot_tree_take_rollback_delete(lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(180, 60)) as pilot:
        await ready(pilot, app)
        first = min((v for v in engine.store.items(Kind.VM)
                     if not v.template and not v.is_container), key=lambda v: v.vmid)
        app.open_detail(Kind.VM, first.id)
        panel = await until(pilot, lambda: app.screen.query("SnapshotPanel").first()
                            if app.screen.query("SnapshotPanel") else None)
        tree = panel.query_one(OptionList)
        await until(pilot, lambda: tree.option_count == 2)
        rows = [text_of(tree.get_option_at_index(i).prompt) for i in range(2)]
        assert rows[0].startswith("pre-upgrade") and "before the Nomad 1.8 upgrade" in rows[0]
        assert "└ ● you are here (running)" in rows[1]

        tree.focus()
        await pilot.press("n")
        await until(pilot, lambda: screen_name(app) == "SnapshotForm")
        await pilot.press(*"bad name")
        await pilot.press("enter")
        assert screen_name(app) == "SnapshotForm"  # refused in words, nothing lost
        app.screen.query_one("#snap-name", Input).value = "nightly-1"
        await pilot.press("enter")
        await until(pilot, lambda: tree.option_count == 3, timeout=15)
        assert lab.call(lambda: lab.world.vms[first.vmid].parent) == "nightly-1"

        tree.focus()
        tree.highlighted = 0  # pre-upgrade
        await pilot.press("b")
        await until(pilot, lambda: screen_name(app) == "ConfirmScreen")
        question = text_of(app.screen.query(Static).first().content)
        assert f"VM {first.vmid} ({first.name})" in question and "'pre-upgrade'" in question
        await pilot.press("y")
        await until(pilot, lambda: lab.call(lambda: lab.world.vms[first.vmid].parent)
                    == "pre-upgrade", timeout=15)
        await until(pilot, lambda: not panel.busy, timeout=15)  # the task followed to its end

        tree.focus()
        tree.highlighted = next(i for i in range(tree.option_count)
                                if tree.get_option_at_index(i).id == "nightly-1")
        await pilot.press("x")  # on the tree: delete the snapshot, not shut the VM down
        await until(pilot, lambda: screen_name(app) == "ConfirmScreen")
        assert "Delete snapshot 'nightly-1'" in text_of(app.screen.query(Static).first()
                                                          .content)
        await pilot.press("y")
        await until(pilot, lambda: tree.option_count == 2, timeout=15)
        assert lab.call(lambda: set(lab.world.vms[first.vmid].snapshots)) == {"pre-upgrade"}


async def test_storage_content_tasks_and_events(lab_engine: tuple[Lab, Engine]) -> None:
    _lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(180, 60)) as pilot:
        await ready(pilot, app)
        app.open_detail(Kind.HYPERVISOR, "pve1")
        content = await until(pilot, lambda: app.screen.query("#storage-content").first()
                              if app.screen.query("#storage-content") else None)
        await until(pilot, lambda: "debian-12.7.0-amd64-netinst.iso" in text_of(
            content.content), timeout=10)
        text = text_of(content.content)
        assert "vzdump-qemu-" in text and "base-9000-disk-0" in text
        app.pop_screen()

        await pilot.press("colon", *"events", "enter")
        await until(pilot, lambda: screen_name(app) == "EventsScreen")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count > 3)
        assert {r.source for r in app.screen.rows} >= {"nomad", "proxmox"}
        times = [r.time for r in app.screen.rows]
        assert times == sorted(times, reverse=True)
        await pilot.press("slash", *"snapshot")
        await until(pilot, lambda: app.screen.rows and all(
            "snapshot" in r.what for r in app.screen.rows))
        await pilot.press("enter")  # keep the filter, back to the table
        await pilot.press("l")
        await until(pilot, lambda: screen_name(app) == "TaskLogScreen")
        await until(pilot, lambda: "TASK OK" in app.screen.lines)
