"""Nomad in depth in the cockpit, through Textual's pilot against the lab: namespaces and the
scope, deployments live with promote, a job's versions with revert, its spec saved, plan and
run of a job file, why a job is pending, and CPU/MEM from the client stats."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from textual.widgets import DataTable, OptionList, RichLog, Static

from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.sim.nomad_depth import job_from_api, parse_hcl
from jamtui.ui.app import JamApp
from jamtui.ui.nomad_views import (
    DeploymentsScreen,
    JobHistoryScreen,
    JobSpecScreen,
    NamespacesScreen,
    RunJobScreen,
)
from jamtui.ui.screens import DetailScreen, PromptScreen
from tests.ui.test_cockpit import detail_text, pane, text_of
from tests.ui.test_cockpit import until as wait

WHOAMI = Path(__file__).resolve().parents[2] / "examples" / "whoami.nomad.hcl"


async def until(pilot: Any, cond: Any, timeout: float = 20.0) -> Any:
    """Generous: the whole suite runs on two cores."""
    return await wait(pilot, cond, timeout)


async def command(pilot: Any, app: JamApp, view: str) -> None:
    await pilot.press("colon")
    await until(pilot, lambda: app.screen.query("#command"))
    await pilot.press(*view, "enter")


def new_image(lab: Lab, job_id: str, image: str) -> None:
    def change() -> None:
        job = copy.deepcopy(lab.world.jobs[job_id])
        job.groups[0].tasks[0].config["image"] = image
        lab.world.register_job(job)

    lab.call(change)


async def test_namespaces_deployments_versions_and_spec(lab_engine: tuple[Lab, Engine],
                                                        tmp_path: Path) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: engine.store.count(Kind.NAMESPACE) == 2)
        await command(pilot, app, "jobs")
        await until(pilot, lambda: pane(app, Kind.JOB).table.row_count == 7)
        table = pane(app, Kind.JOB).table
        assert "NAMESPACE" in [str(c.label) for c in table.columns.values()]

        # :ns lists both and scopes the tables to one
        await command(pilot, app, "ns")
        await until(pilot, lambda: isinstance(app.screen, NamespacesScreen))
        options = app.screen.query_one(OptionList)
        assert [o.id for o in options.options] == ["*", "default", "staging"]
        options.highlighted = 2
        await pilot.press("enter")
        await until(pilot, lambda: pane(app, Kind.JOB).table.row_count == 1)
        assert app.namespace_scope == "staging"
        await command(pilot, app, "ns")
        await until(pilot, lambda: isinstance(app.screen, NamespacesScreen))
        assert app.screen.query_one(OptionList).highlighted == 2  # the current scope
        app.screen.query_one(OptionList).highlighted = 0
        await pilot.press("enter")  # `*`
        await until(pilot, lambda: pane(app, Kind.JOB).table.row_count == 7)

        # a new image for api: its canary waits; :deployments shows it live; p promotes
        new_image(lab, "api", "ghcr.io/jamfox/api:2.4")
        await command(pilot, app, "deployments")
        await until(pilot, lambda: isinstance(app.screen, DeploymentsScreen))

        def waiting() -> bool:
            return any(d.needs_promotion and "manual promotion" in d.status_description
                       for d in engine.store.items(Kind.DEPLOYMENT))

        await until(pilot, waiting, timeout=30)
        await until(pilot, lambda: "⇡ promote" in text_of(
            app.screen.query_one("#deployment-detail", Static).content) or
            "promote" in str(app.screen.query_one(DataTable).get_row_at(0)))
        await pilot.press("p")
        await until(pilot, lambda: app.screen.query("#dialog"))
        await pilot.press("y")
        await until(pilot, lambda: lab.call(lambda: any(
            d.status == "successful" and d.job_version == 1
            for d in lab.world.deployments.values() if d.job_id == "api")), timeout=30)
        await until(pilot, lambda: any(d.status == "successful" and d.job_version == 1
                                       for d in engine.store.items(Kind.DEPLOYMENT)))
        await pilot.press("escape")

        # the job detail: its deployments; h: versions with the diff; r reverts (confirmed)
        app.open_detail(Kind.JOB, "api")
        await until(pilot, lambda: "Deployments" in detail_text(app))
        assert "healthy 2" in detail_text(app)
        await pilot.press("h")
        await until(pilot, lambda: isinstance(app.screen, JobHistoryScreen))
        edit = 'image: "ghcr.io/jamfox/api:2.3" => "ghcr.io/jamfox/api:2.4"'
        await until(pilot, lambda: edit in text_of(
            app.screen.query_one("#version-diff", Static).content))
        versions = app.screen.query_one(OptionList)
        versions.highlighted = 1
        await pilot.press("r")
        await until(pilot, lambda: app.screen.query("#dialog"))
        await pilot.press("y")
        await until(pilot, lambda: lab.call(
            lambda: lab.world.jobs["api"].groups[0].tasks[0].config["image"]) ==
            "ghcr.io/jamfox/api:2.3")
        assert lab.call(lambda: lab.world.jobs["api"].version) == 2
        await pilot.press("escape")

        # v: the spec as HCL-like text; s saves it to a new file
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, JobSpecScreen))
        await until(pilot, lambda: 'job "api"' in text_of(
            app.screen.query_one("#spec", Static).content))
        target = tmp_path / "api.nomad.hcl"
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one("Input").value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: target.exists())
        saved = target.read_text()
        assert 'image = "ghcr.io/jamfox/api:2.3"' in saved
        # what it saved is a job file Nomad parses back to the same job
        assert job_from_api(parse_hcl(saved)).groups[0].count == 2


async def test_plan_and_run_a_job_file_why_pending_and_stats(lab_engine: tuple[Lab, Engine],
                                                             tmp_path: Path) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await command(pilot, app, "jobs")
        await until(pilot, lambda: pane(app, Kind.JOB).table.row_count == 7)
        hungry = tmp_path / "hungry.nomad.hcl"
        hungry.write_text(WHOAMI.read_text().replace('job "whoami"', 'job "hungry"').replace(
            "memory = 64", "memory = 16384"))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one("Input").value = str(hungry)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunJobScreen))

        def log_text() -> str:
            return "\n".join(s.text for s in app.screen.query_one(RichLog).lines)

        await until(pilot, lambda: "Job Modify Index" in log_text(), timeout=30)
        assert '+ Job: "hungry"' in log_text()
        assert "no node has 16 GiB of free memory" in log_text()
        await pilot.press("y")
        await until(pilot, lambda: app.screen.query("#dialog"))
        await pilot.press("y")
        await until(pilot, lambda: "is pending: no node has 16 GiB" in log_text(), timeout=30)
        assert lab.call(lambda: "hungry" in lab.world.jobs)
        await pilot.press("escape")

        # the job detail says why it is pending, from the blocked evaluation's metrics
        await until(pilot, lambda: (j := engine.store.get(Kind.JOB, "hungry")) is not None
                    and any(g.queued for g in j.groups))
        app.open_detail(Kind.JOB, "hungry")
        await until(pilot, lambda: "group web: no node has 16 GiB of free memory" in
                    detail_text(app), timeout=30)
        await pilot.press("escape")
        await pilot.press("escape")

        # :allocs shows CPU/MEM for the rows on screen; the detail per task with sparklines
        await command(pilot, app, "allocs")
        await until(pilot, lambda: pane(app, Kind.ALLOCATION).table.row_count > 0)
        alloc_table = pane(app, Kind.ALLOCATION).table

        def cpu_shown() -> bool:
            col = [str(c.label) for c in alloc_table.columns.values()].index("CPU")
            return any("MHz" in str(alloc_table.get_row_at(r)[col])
                       for r in range(alloc_table.row_count))

        await until(pilot, cpu_shown, timeout=30)
        alloc = next(a for a in engine.store.items(Kind.ALLOCATION)
                     if a.client_status == "running" and a.job_id == "db")
        app.open_detail(Kind.ALLOCATION, alloc.id)
        await until(pilot, lambda: "postgres" in detail_text(app) and "MHz" in
                    detail_text(app), timeout=30)
        await pilot.press("escape")
        node = next(n for n in engine.store.items(Kind.NOMAD_NODE))
        app.open_detail(Kind.NOMAD_NODE, node.id)
        await until(pilot, lambda: "Node stats" in detail_text(app) and "GiB" in
                    detail_text(app), timeout=30)
