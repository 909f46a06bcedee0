"""The cockpit's `a` with an inventory as people write it: hosts by name (resolved through the
internal DNS for the proposal), and a defective value said in words, never a crash."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.ui.app import JamApp
from jamtui.ui.workflow_view import NodeAddScreen
from tests.ui.test_cockpit import pane, ready, until


async def test_a_with_hosts_written_by_name_opens_the_form(lab_engine: tuple[Lab, Engine]
                                                           ) -> None:
    _lab, engine = lab_engine
    inventory = Path(engine.config.inventory)
    text = inventory.read_text()
    for host, ip in (("vs0", "192.168.42.30"), ("vs2", "192.168.42.32")):
        text = text.replace(f"ansible_host: {ip}", f"ansible_host: {host}.jamfox.dev")
    inventory.write_text(text)
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        pane(app, Kind.VM).table.focus()
        await pilot.press("a")
        form = await until(pilot, lambda: isinstance(app.screen, NodeAddScreen) and app.screen)
        # vs2.jamfox.dev is 192.168.42.32 by the lab's DNS: the next free one is .33
        assert form.query_one("#f-ip", Input).value == "192.168.42.33"
        assert form.query_one("#f-name", Input).value == "vs3"
        assert not form.errors
        await pilot.press("escape")
    assert app.return_code in (None, 0)


async def test_a_with_a_defective_inventory_says_which_field(lab_engine: tuple[Lab, Engine]
                                                            ) -> None:
    _lab, engine = lab_engine
    inventory = Path(engine.config.inventory)
    inventory.write_text(inventory.read_text().replace("memory: 8192", "memory: 64G", 1))
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        pane(app, Kind.VM).table.focus()
        await pilot.press("a")
        note = await until(pilot, lambda: next(
            (n.message for n in app._notifications if "memory" in n.message), None))
        assert "'64G' is not a whole number of MiB" in note
        assert not isinstance(app.screen, NodeAddScreen)
