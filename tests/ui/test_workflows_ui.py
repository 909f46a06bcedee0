"""Node add and remove through the cockpit (Pilot) against the lab: the form is prefilled and
checked as you type, the plan is shown before anything is applied, the workflow screen follows
the steps to the end, and the lab and the inventory change accordingly."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, DataTable, Input, Label, Static

from jamtui.engine import Engine
from jamtui.inventory import add_proposed, load_inventory, propose_node
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.ui.app import JamApp
from jamtui.ui.log_view import LogLines, LogScreen
from jamtui.ui.workflow_view import NodeAddScreen, PlanScreen, WorkflowScreen, WorkflowsScreen
from jamtui.workflows.journal import list_journals
from jamtui.workflows.node import NodeWorkflows
from tests.ui.test_cockpit import focus_row, pane, ready, text_of, until


def label(screen: NodeAddScreen, field: str) -> str:
    return str(screen.query_one(f"#e-{field}", Label).content)


async def test_node_add_then_remove_through_the_cockpit(lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    inventory = Path(engine.config.inventory)
    before = inventory.read_text()
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        pane(app, Kind.VM).table.focus()
        await pilot.press("a")
        form = await until(pilot, lambda: isinstance(app.screen, NodeAddScreen)
                           and app.screen.query("#f-hypervisor") and app.screen)
        values = {f: form.query_one(f"#f-{f}", Input).value for f in ("group", "name", "ip",
                                                                      "vmid", "hypervisor")}
        assert values == {"group": "vs", "name": "vs3", "ip": "192.168.42.33", "vmid": "303",
                          "hypervisor": "pve1"}
        # checked as you type: a taken name and a bad IP are named, and Plan is off
        form.query_one("#f-name", Input).value = "vs1"
        form.query_one("#f-ip", Input).value = "192.168.42.300"
        await pilot.pause(0.1)
        assert "vs1 is already in the inventory" in label(form, "name")
        assert "not an IP address" in label(form, "ip")
        assert form.query_one("#submit", Button).disabled
        # switching the group proposes that group's next node
        form.query_one("#f-group", Input).value = "vb"
        await pilot.pause(0.1)
        assert form.query_one("#f-name", Input).value == "vb3"
        form.query_one("#f-group", Input).value = "vs"
        await pilot.pause(0.1)
        assert form.query_one("#f-name", Input).value == "vs3"
        assert not form.query_one("#submit", Button).disabled
        await pilot.press("ctrl+s")
        plan = await until(pilot, lambda: isinstance(app.screen, PlanScreen)
                           and app.screen.query("#plan-text") and app.screen,
                           timeout=20)
        shown = text_of(plan.query_one("#plan-text", Static).content)
        assert 'create  proxmox_vm_qemu.node["vs3"]' in shown
        assert lab.call(lambda: [v for v in lab.world.vms.values() if v.name == "vs3"]) == []
        await pilot.press("y")
        screen = await until(pilot, lambda: isinstance(app.screen, WorkflowScreen)
                             and app.screen)
        wf = screen.workflow
        await until(pilot, lambda: wf.state != "running" and wf.state != "pending", timeout=60)
        assert wf.state == "done", wf.message
        await pilot.pause(0.3)
        steps = text_of(screen.query_one("#wf-steps", Static).content)
        assert "verify it joined" in steps and "vs3: Consul alive, Nomad ready" in steps
        assert "[apply]" in "\n".join(screen.query_one("#wf-log").lines)
        assert load_inventory(inventory).host("vs3").vars["vmid"] == 303
        await until(pilot, lambda: engine.store.vm_named("vs3") is not None, timeout=10)
        # l: every step's log in the viewer, tagged by step
        await pilot.press("l")
        logs = await until(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen)
        entries = logs.query_one(LogLines).entries
        await until(pilot, lambda: {"inventory", "plan", "apply", "ansible"}
                    <= {e.source for e in entries})
        assert any(e.source == "apply" and '"type": "apply_complete"' in e.text
                   for e in entries)
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, WorkflowScreen))

        # D on the new VM: typed confirmation, the destroy plan, then it is gone
        await pilot.press("escape")
        vm = engine.store.vm_named("vs3")
        await until(pilot, lambda: pane(app, Kind.VM).table.get_row_index(vm.id) >= 0)
        focus_row(pane(app, Kind.VM).table, vm.id)
        await pilot.press("D")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptScreen")
        await pilot.press(*"vs2", "enter")  # the wrong name: nothing happens
        await pilot.pause(0.2)
        assert not isinstance(app.screen, WorkflowScreen)
        focus_row(pane(app, Kind.VM).table, vm.id)
        await pilot.press("D")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptScreen")
        await pilot.press(*"vs3", "enter")
        plan = await until(pilot, lambda: isinstance(app.screen, PlanScreen)
                           and app.screen.query("#plan-text") and app.screen,
                           timeout=60)  # after the drain and the leave
        assert 'delete  proxmox_vm_qemu.node["vs3"]' in text_of(
            plan.query_one("#plan-text", Static).content)
        await pilot.press("y")
        screen = await until(pilot, lambda: isinstance(app.screen, WorkflowScreen)
                             and app.screen)
        wf = screen.workflow
        await until(pilot, lambda: wf.state not in ("running", "pending"), timeout=60)
        assert wf.state == "done", wf.message
        assert inventory.read_text() == before
        assert lab.call(lambda: [v for v in lab.world.vms.values() if v.name == "vs3"]) == []

        # both are in :workflows, and open from there
        await pilot.press("escape", "colon", *"workflows", "enter")
        await until(pilot, lambda: isinstance(app.screen, WorkflowsScreen)
                    and app.screen.query_one("#wf-list", DataTable).row_count)
        await pilot.press("enter")
        opened = await until(pilot, lambda: isinstance(app.screen, WorkflowScreen)
                             and app.screen)
        assert opened.workflow.kind == "node-remove" and opened.workflow.state == "done"


async def test_a_rejected_plan_leaves_the_lab_alone(lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    before = Path(engine.config.inventory).read_bytes()
    app = JamApp(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        pane(app, Kind.VM).table.focus()
        # another editor takes vs3 while the form proposes it: refused when written, said
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, NodeAddScreen))
        add_proposed(engine.config.inventory, "vs")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any("vs3 is already in the inventory" in str(n.message)
                                       for n in app._notifications), timeout=10)
        assert not isinstance(app.screen, WorkflowScreen)
        assert list_journals(engine.config.provisioning.state_dir) == []
        Path(engine.config.inventory).write_bytes(before)
        pane(app, Kind.VM).table.focus()
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, NodeAddScreen))
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen), timeout=20)
        await pilot.press("n")
        screen = await until(pilot, lambda: isinstance(app.screen, WorkflowScreen)
                             and app.screen)
        await until(pilot, lambda: screen.workflow.state == "cancelled", timeout=10)
        assert lab.call(lambda: [v for v in lab.world.vms.values() if v.name == "vs3"]) == []
        # "nothing applied" is true: the entry is gone again, the file as it was, on its own
        assert Path(engine.config.inventory).read_bytes() == before
        assert load_inventory(engine.config.inventory).host("vs3") is None
        # so there is nothing to roll back: `b` is not offered, `r` (plan again) is
        await until(pilot, lambda: "r" in screen.active_bindings)
        assert "b" not in screen.active_bindings and "c" not in screen.active_bindings
        await pilot.press("b")
        await pilot.pause(0.2)
        assert app.screen is screen


def pane_lines(screen: WorkflowScreen) -> list[str]:
    return list(screen.query_one("#wf-log").lines)


async def test_the_workflow_screen_follows_the_journal_and_resumes_cleanly(
        lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    cfg = engine.config
    lab.call(setattr, lab.world, "boot_delay", 60.0)  # the new VM does not answer on SSH
    # a workflow this screen does not run (as in another jamtui): followed by its journal
    elsewhere = NodeWorkflows(cfg, engine, lambda title, text: True).add(
        propose_node(load_inventory(cfg.inventory), "vb"))
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        await pilot.press("colon", *"workflows", "enter")
        await until(pilot, lambda: isinstance(app.screen, WorkflowsScreen)
                    and app.screen.query_one("#wf-list", DataTable).row_count)
        listing = app.screen
        table = listing.query_one("#wf-list", DataTable)
        assert [c.label.plain for c in table.columns.values()][:5] == [
            "STATE", "KIND", "NODE", "STARTED", "DURATION"]
        assert "pending" in text_of(table.get_row(elsewhere.id)[0])
        elsewhere.start()
        # live: the row follows the workflow as it runs, without reopening the view
        await until(pilot, lambda: "running" in text_of(table.get_row(elsewhere.id)[0]),
                    timeout=15)
        took = text_of(table.get_row(elsewhere.id)[4]).strip()
        await until(pilot, lambda: text_of(table.get_row(elsewhere.id)[4]).strip() != took,
                    timeout=15)  # the duration ticks while it runs
        await pilot.press("enter")
        screen = await until(pilot, lambda: isinstance(app.screen, WorkflowScreen)
                             and app.screen)
        assert screen.workflow is not elsewhere

        def steps() -> str:
            return text_of(screen.query_one("#wf-steps", Static).content)

        await until(pilot, lambda: "Creation complete" in steps()
                    or screen.workflow.states["ssh"].state == "running", timeout=60)
        await until(pilot, lambda: screen.workflow.states["ssh"].state == "running",
                    timeout=30)
        assert screen.workflow.states["apply"].state == "done"
        await until(pilot, lambda: any(line.startswith("[apply] ") for line in
                                       pane_lines(screen)))
        # not running here: it cannot be cancelled, resumed or rolled back from this screen
        assert not {"c", "r", "b"} & set(screen.active_bindings)
        elsewhere.cancel()
        elsewhere.join(30)
        await until(pilot, lambda: screen.workflow.state == "cancelled", timeout=10)
        await until(pilot, lambda: {"r", "b"} <= set(screen.active_bindings))
        assert "c" not in screen.active_bindings
        history = pane_lines(screen)
        assert history and not any('"@level"' in line for line in history)

        # r: resumed here; the pane shows the history once, then the new lines
        await pilot.press("r")
        resumed = await until(pilot, lambda: isinstance(app.screen, WorkflowScreen)
                              and app.screen is not screen and app.screen)
        await until(pilot, lambda: resumed.workflow.states["ssh"].state == "running",
                    timeout=60)
        await until(pilot, lambda: "c" in resumed.active_bindings)
        assert not {"r", "b"} & set(resumed.active_bindings)
        await pilot.press("c")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await until(pilot, lambda: resumed.workflow.state == "cancelled", timeout=30)
        await pilot.pause(0.3)
        lines = pane_lines(resumed)
        assert lines[:len(history)] == history
        assert sum(line.startswith("[inventory] vb3: ") for line in lines) == 1
        assert not any('"@level"' in line for line in lines)

        # b: the rollback destroys the VM this workflow made and its entry
        await until(pilot, lambda: "b" in resumed.active_bindings)
        await pilot.press("b")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        plan = await until(pilot, lambda: isinstance(app.screen, PlanScreen)
                           and app.screen.query("#plan-text") and app.screen, timeout=30)
        assert 'delete  proxmox_vm_qemu.node["vb3"]' in text_of(
            plan.query_one("#plan-text", Static).content)
        await pilot.press("y")
        await until(pilot, lambda: resumed.workflow.state == "rolled-back", timeout=60)
        assert lab.call(lambda: [v for v in lab.world.vms.values() if v.name == "vb3"]) == []
        assert load_inventory(cfg.inventory).host("vb3") is None
        await until(pilot, lambda: not {"c", "r", "b"} & set(resumed.active_bindings))
