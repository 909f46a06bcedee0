"""`n` on a Nomad node says what it will do (#14): start a drain (with its deadline), stop
one, or, once a drain has completed (Nomad leaves the node ineligible), make the node
eligible again instead of draining it once more."""

from __future__ import annotations

import asyncio
from typing import Any

from jamtui.actions import find
from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.ui.app import JamApp
from jamtui.ui.screens import ConfirmScreen
from tests.ui.test_cockpit import focus_row, pane, ready, until


def question(app: JamApp) -> str:
    screen = app.screen
    return screen.question if isinstance(screen, ConfirmScreen) else ""


async def test_drain_asks_in_words_and_after_completion_offers_eligible(
        lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)

    def lab_node() -> Any:
        return lab.call(lambda: next(n for n in lab.world.nodes.values() if n.name == "vs1"))

    def stored() -> Any:
        return next(n for n in engine.store.items(Kind.NOMAD_NODE) if n.name == "vs1")

    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        await pilot.press("colon", *"no", "enter")
        await until(pilot, lambda: app.screen.name == "nodes")
        table = pane(app, Kind.NOMAD_NODE).table
        await until(pilot, lambda: table.row_count == 3)
        focus_row(table, stored().id)
        await pilot.press("n")
        await until(pilot, lambda: question(app))
        assert question(app).startswith("Drain Nomad node vs1 (deadline 1h)?")
        await pilot.press("y")
        # the lab completes the drain: not draining, still ineligible, LastDrain complete
        await until(pilot, lambda: not stored().drain and stored().last_drain == "complete"
                    and stored().eligibility == "ineligible", timeout=20)
        assert lab_node().eligibility == "ineligible"

        await pilot.press("n")  # not a second drain: the way back
        await until(pilot, lambda: question(app))
        assert "ineligible (its drain is complete)" in question(app)
        assert "Make it eligible for new allocations again?" in question(app)
        await pilot.press("y")
        await until(pilot, lambda: lab_node().eligibility == "eligible", timeout=20)
        assert not lab_node().drain
        await until(pilot, lambda: stored().eligibility == "eligible", timeout=20)

        # stopping a drain (as `nomad node drain -disable`): MarkEligible, eligible again
        node_id = lab_node().id
        lab.call(lambda: lab.world.node_drain(node_id, True, 600 * 10**9))
        action = find("node_drain")
        assert action is not None
        said = await asyncio.to_thread(lambda: list(action.run(engine, stored(),
                                                               {"mode": "stop"})))
        assert said[-1] == "drain stopped Nomad node vs1: done"
        assert (lab_node().drain, lab_node().eligibility) == (False, "eligible")


def test_the_question_follows_the_node() -> None:
    from jamtui.actions import ask
    from jamtui.model import NomadNode

    drain = find("node_drain")
    assert drain is not None

    def node(eligibility: str, draining: bool, last: str = "") -> NomadNode:
        return NomadNode("n1", "vs1", "192.168.42.31", "ready", eligibility, draining,
                         last_drain=last)

    assert ask(drain, node("eligible", False)) == (
        "Drain Nomad node vs1 (deadline 1h)? Its allocations move to other nodes; it stays "
        "ineligible afterwards.", {"mode": "start"})
    assert ask(drain, node("ineligible", True, "draining")) == (
        "Stop draining vs1? It becomes eligible for new allocations again.", {"mode": "stop"})
    question, params = ask(drain, node("ineligible", False, "canceled"))
    assert "its drain was stopped" in question and params == {"mode": "eligible"}
