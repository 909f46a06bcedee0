"""The whole cockpit with the read-only tokens a dashboard gets: every VM, allocation and
service shows; the health bar says degraded with what is missing; the storage view says why
Nomad's CSI volumes are missing; a refused action names the privilege. And a quorum badge
beside a down backend is stale, not a green check."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.model import BackendStatus, Health, Kind, Quorum
from jamtui.sim.lab import Lab
from jamtui.store import Store
from jamtui.ui.app import JamApp
from jamtui.ui.widgets import HealthBar
from tests.conftest import FAST
from tests.helpers import fake_engine
from tests.ui.test_cockpit import detail_text, focus_row, pane, text_of, until


@pytest.fixture
def read_only_engine(tmp_path: Path) -> Iterator[tuple[Lab, Engine]]:
    with Lab(seed=5, tick=0.2, traffic=False, **FAST) as lab:
        path = tmp_path / "jamtui.toml"
        path.write_text("poll_interval = 0.5\n" + lab.config_toml())
        engine = Engine(load_config(path, env=lab.read_only_env()))
        try:
            yield lab, engine
        finally:
            engine.stop()


def bar_text(app: JamApp) -> str:
    return text_of(app.screen.query_one(HealthBar).render())


def title_of(p: Any) -> str:
    return text_of(p.query("Label").first().render())


async def test_cockpit_with_read_only_tokens(read_only_engine: tuple[Lab, Engine]) -> None:
    lab, engine = read_only_engine
    app = JamApp(engine)
    async with app.run_test(size=(200, 50)) as pilot:
        vms, allocs = lab.call(lambda: (len(lab.world.vms) + len(lab.world.containers),
                                        len(lab.world.allocs)))
        services = len(lab.call(lab.world.service_names))
        await until(pilot, lambda: pane(app, Kind.VM).table.row_count == vms)
        await until(pilot, lambda: pane(app, Kind.ALLOCATION).table.row_count == allocs)
        await until(pilot, lambda: pane(app, Kind.SERVICE).table.row_count == services)
        # each backend's whole first picture (Consul's services show as each is read; its
        # health says "waiting" until members, Raft and intentions are in too)
        await until(pilot, lambda: "operator:read" in bar_text(app)
                    and "nomad ! degraded" in bar_text(app)
                    and "consul ! degraded" in bar_text(app))
        text = bar_text(app)
        assert "down" not in text.split("\n")[0].replace("haproxy", "")
        assert "quorum: the token lacks operator:read" in text
        assert "consul ✓ leader" in text and "3/3" in text  # checked by gossip, said so
        # a service's detail says why it lists no intentions
        services_table = pane(app, Kind.SERVICE).table
        focus_row(services_table, "example")
        await pilot.press("enter")
        await until(pilot, lambda: "Consul intentions: not permitted" in detail_text(app))
        await pilot.press("escape")
        await pilot.press("colon", *"storage", "enter")
        await until(pilot, lambda: app.screen.name == "storage")
        await until(pilot, lambda: "Nomad volumes: not permitted" in title_of(
            pane(app, Kind.STORAGE)))
        assert pane(app, Kind.STORAGE).table.row_count == 12  # host volumes still there
        # an action the token may not do: the refusal names the privilege, nothing moves
        await pilot.press("colon", *"vms", "enter")
        await until(pilot, lambda: app.screen.name == "vms")
        vm = next(v for v in engine.store.items(Kind.VM) if v.name == "vs2")
        table = pane(app, Kind.VM).table
        await until(pilot, lambda: table.row_count == vms)
        focus_row(table, vm.id)
        await pilot.press("x")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await until(pilot, lambda: any("VM.PowerMgmt" in n.message
                                       for n in app._notifications), timeout=10)
        assert lab.call(lambda: lab.world.vms[vm.vmid].status) == "running"


async def test_quorum_badge_is_stale_beside_a_down_backend() -> None:
    store = Store()
    servers = tuple(f"10.0.0.{i}:4647" for i in (1, 2, 3))
    store.upsert(Kind.QUORUM, Quorum("nomad", servers[0], servers, servers))
    store.set_backend(BackendStatus("nomad", Health.OK, last_success=time.time()))
    app = JamApp(fake_engine(store))
    async with app.run_test(size=(160, 30)) as pilot:
        await until(pilot, lambda: "nomad ✓ leader 10.0.0.1 3/3" in bar_text(app))
        store.set_backend(BackendStatus("nomad", Health.DOWN, last_error="cannot reach it",
                                        last_success=time.time() - 42))
        await until(pilot, lambda: "STALE" in bar_text(app))
        text = bar_text(app)
        assert "✓ leader" not in text and "nomad ? 3/3 STALE 4" in text


def test_quorum_badge_never_claims_what_was_not_checked() -> None:
    from jamtui.ui.widgets import quorum_text

    servers = tuple(f"10.0.0.{i}:8300" for i in (1, 2, 3))
    # the Raft view and Serf both refused: the servers are known, their health is not
    blind = Quorum("consul", servers[0], servers, (), checked=False, source="peers",
                   note="the token lacks operator:read and node:read")
    text = str(quorum_text(blind))
    assert "health not checked" in text and "3 servers" in text
    assert "0/" not in text and "one more loss" not in text
    lost_one = Quorum("consul", servers[0], servers, servers[:2], source="gossip")
    assert "2/3 — one more loss loses quorum" in str(quorum_text(lost_one))
