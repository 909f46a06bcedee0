"""What an idle cockpit asks and draws (#17): nothing polled for columns nobody sees."""

from __future__ import annotations

import time
from typing import Any

from jamtui.model import Allocation, Kind, TaskInfo
from jamtui.store import Store
from jamtui.ui import nomad_views
from jamtui.ui.app import JamApp
from tests.helpers import allocs_view, fake_engine


def alloc(i: int) -> Allocation:
    # a name as long as the lab's (node-exporter.exporter[0]): the overview's half-width
    # pane has no room left for CPU and MEM
    return Allocation(f"{i:08x}-0000-4000-8000-000000000000",
                      f"node-exporter-with-a-longer-name.exporter[{i}]", "node-exporter",
                      "exporter", "n", "vs0", "running", "run", create_time=time.time() - 3600,
                      tasks=(TaskInfo("server", "running"),))


async def test_a_pane_without_cpu_and_mem_polls_no_allocation_stats() -> None:
    """The overview asked Nomad for the stats of every allocation it shows (every 15 s), and
    redrew their rows, while its pane was too narrow to show CPU or MEM."""
    store = Store()
    with store.batch():
        for i in range(12):
            store.upsert(Kind.ALLOCATION, alloc(i))
    app = JamApp(fake_engine(store), start_engine=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        pane = next(p.table for p in app.screen.panes if p.kind is Kind.ALLOCATION)
        assert pane.row_count == 12
        assert "cpu" not in pane.columns and "mem" not in pane.columns
        assert nomad_views.visible_alloc_ids(app) == set()
        started: list[set[str]] = []
        real_watch = app.stats_poller.watch

        def watch(allocs: Any = (), nodes: Any = ()) -> None:
            started.append(set(allocs))
            real_watch(allocs, nodes)

        app.stats_poller.watch = watch  # type: ignore[method-assign]
        for _ in range(nomad_views.OVERVIEW_EVERY * 2):
            nomad_views.poll_tick(app)
            await pilot.pause(0.02)
        assert started == []
        # `:allocs` (the whole width) shows them: its rows are polled
        _, table = await allocs_view(pilot, app)
        await pilot.pause(0.2)
        assert "cpu" in table.columns
        nomad_views.poll_tick(app)
        await pilot.pause(0.05)
        assert started and len(started[-1]) == 12
