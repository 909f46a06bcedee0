"""Nomad in depth in the cockpit: `:deployments` (promote, fail, pause, resume), `:ns`
(namespaces and the scope), a job's versions with readable diffs and revert, its spec (HCL-like
or JSON, saved with `s`), plan-and-run of a job file, and the statistics poller (allocation
CPU/MEM for rows on screen, node stats for the node detail).

Every request runs in a thread worker on the Nomad source; what a backend sent is drawn
through `plain`; changes are confirmed first.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, OptionList, Static
from textual.widgets.option_list import Option

from ..model import Deployment, Kind
from ..plain import line
from ..plain import text as safe_text
from ..sources.nomad_depth import diff_lines, plan_lines, sparkline, spec_text
from .nav_table import NavTable

if TYPE_CHECKING:
    from ..sources.nomad import NomadSource
    from ..store import Store

DIFF_STYLE = {"+": "green", "-": "red", "~": "yellow"}


def nomad_of(app: Any) -> NomadSource | None:
    return getattr(app.engine, "sources", {}).get("nomad")


def diff_text(lines: Iterable[str]) -> Text:
    out = Text()
    for raw in lines:
        stripped = raw.lstrip()
        style = DIFF_STYLE.get(stripped[:1], "")
        out.append_text(safe_text(raw, style))
        out.append("\n")
    return out


def _fail(app: Any, what: str, exc: BaseException) -> None:
    app.call_from_thread(app.notify, f"{what}: {line(str(exc))}", severity="error", timeout=12)


def _confirm(app: Any, question: str, then: Callable[[], None]) -> None:
    from .screens import ConfirmScreen

    app.push_screen(ConfirmScreen(question), lambda yes: then() if yes else None)


def _read_only(app: Any) -> bool:
    if getattr(app, "read_only", False):
        app.notify("read-only: started with --read-only; actions are off.", severity="warning")
        return True
    return False


# -- deployments -----------------------------------------------------------------------------


def deployment_row(d: Deployment) -> list[Any]:
    groups = "  ".join(
        f"{g.name} {g.healthy}/{g.desired_total}"
        + (f" c{g.placed_canaries}/{g.desired_canaries}" if g.desired_canaries else "")
        + (f" ✗{g.unhealthy}" if g.unhealthy else "") for g in d.groups)
    from .columns import status_text

    status = status_text(d.status)
    if d.needs_promotion:
        status.append(" ⇡ promote", style="bold yellow")
    return [d.short_id, safe_text(d.job_id), safe_text(d.namespace), str(d.job_version),
            status, safe_text(groups), safe_text(d.status_description, "dim")]


def deployment_lines(d: Deployment) -> Text:
    """Per group desired / placed / healthy / unhealthy / canaries."""
    out = Text()
    out.append_text(safe_text(f"deployment {d.short_id} of {d.job_id} v{d.job_version}: ",
                              "bold"))
    from .columns import status_text

    out.append_text(status_text(d.status))
    out.append_text(safe_text(f"  {d.status_description}\n", "dim"))
    for g in d.groups:
        canaries = (f"  canaries {g.placed_canaries}/{g.desired_canaries}"
                    + (" promoted" if g.promoted else " (not promoted)")
                    if g.desired_canaries else "")
        out.append_text(safe_text(
            f"  {g.name}: desired {g.desired_total}  placed {g.placed}  healthy {g.healthy}  "
            f"unhealthy {g.unhealthy}{canaries}\n"))
    return out


class DeploymentActions:
    """promote (all or one group), fail, pause, resume: confirmed, run in a worker."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def _run(self, what: str, fn: Callable[[], Any]) -> None:
        app = self.app

        def go() -> None:
            try:
                resp = fn()
            except Exception as exc:
                _fail(app, what, exc)
                return
            ev = str((resp or {}).get("EvalID") or "")
            app.call_from_thread(app.notify, f"{what}: done" + (
                f" (evaluation {ev[:8]})" if ev else ""), timeout=6)

        app.run_worker(go, thread=True, group="actions", exit_on_error=False)

    def promote(self, d: Deployment, group: str | None = None) -> None:
        src = nomad_of(self.app)
        if src is None or _read_only(self.app):
            return
        if not d.needs_promotion:
            self.app.notify(f"deployment {d.short_id} has no canaries waiting", severity="warning")
            return
        what = f"promote deployment {d.short_id} of {d.job_id}" + (
            f" (group {group})" if group else " (all groups)")
        _confirm(self.app, what + "?", lambda: self._run(
            what, lambda: src.promote(d.id, [group] if group else None)))

    def fail(self, d: Deployment) -> None:
        src = nomad_of(self.app)
        if src is None or _read_only(self.app):
            return
        what = f"fail deployment {d.short_id} of {d.job_id}"
        _confirm(self.app, what + "? Its canaries are stopped.",
                 lambda: self._run(what, lambda: src.fail_deployment(d.id)))

    def pause(self, d: Deployment, pause: bool) -> None:
        src = nomad_of(self.app)
        if src is None or _read_only(self.app):
            return
        what = f"{'pause' if pause else 'resume'} deployment {d.short_id} of {d.job_id}"
        _confirm(self.app, what + "?",
                 lambda: self._run(what, lambda: src.pause_deployment(d.id, pause)))


class DeploymentsScreen(Screen[None]):
    """`:deployments`: every deployment, live from the event stream's Deployment topic."""

    BINDINGS = [
        Binding("escape", "back", "back", id="deployments_back"),
        Binding("p", "promote", "promote all", id="deployment_promote_all"),
        Binding("g", "promote_group", "promote group", id="deployment_promote_group"),
        Binding("f", "fail", "fail", id="deployment_fail_one"),
        Binding("P", "pause(True)", "pause", id="deployment_pause"),
        Binding("u", "pause(False)", "resume", id="deployment_resume"),
    ]

    def __init__(self, job_id: str | None = None) -> None:
        super().__init__(name="deployments")
        self.job_id = job_id

    def compose(self) -> ComposeResult:
        title = f"Deployments of {self.job_id}" if self.job_id else "Deployments"
        yield Static(safe_text(title, "bold"), classes="pane-title")
        yield NavTable(id="deployments", cursor_type="row", zebra_stripes=True)
        yield Static(id="deployment-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("ID", "JOB", "NAMESPACE", "VER", "STATUS",
                          "GROUPS healthy/desired canaries", "DESCRIPTION")
        self.refresh_rows()
        table.focus()
        # a signal down: the store's changes, once per batch (ARCHITECTURE: the seams)
        self.app.store_changed.subscribe(self, self.apply_changes,  # type: ignore[attr-defined]
                                         immediate=True)

    def _deployments(self) -> list[Deployment]:
        store: Store = self.app.store  # type: ignore[attr-defined]
        deps = [d for d in store.items(Kind.DEPLOYMENT)
                if self.job_id is None or d.job_id == self.job_id]
        return sorted(deps, key=lambda d: -d.create_index)

    def refresh_rows(self, _kinds: Any = None) -> None:
        table = self.query_one(DataTable)
        deps = self._deployments()
        keep = table.cursor_row
        table.clear()
        for d in deps:
            table.add_row(*deployment_row(d), key=d.id)
        if deps:
            table.move_cursor(row=min(keep, len(deps) - 1))
        store: Store = self.app.store  # type: ignore[attr-defined]
        refused = [r.message for r in store.refusals(Kind.DEPLOYMENT)]
        detail = self.query_one("#deployment-detail", Static)
        current = self.current()
        if refused:
            detail.update(safe_text("; ".join(refused), "yellow"))
        elif current is not None:
            detail.update(deployment_lines(current))
        else:
            detail.update(Text("no deployments", style="dim"))

    def apply_changes(self, by_kind: dict[Kind, set[str]]) -> None:
        if Kind.DEPLOYMENT in by_kind:
            self.refresh_rows()

    def current(self) -> Deployment | None:
        table = self.query_one(DataTable)
        deps = self._deployments()
        if not deps or table.cursor_row < 0 or table.cursor_row >= len(deps):
            return None
        return deps[table.cursor_row]

    @on(DataTable.RowHighlighted)
    def highlighted(self, _: DataTable.RowHighlighted) -> None:
        d = self.current()
        if d is not None:
            self.query_one("#deployment-detail", Static).update(deployment_lines(d))

    def action_promote(self) -> None:
        if (d := self.current()) is not None:
            DeploymentActions(self.app).promote(d)

    def action_promote_group(self) -> None:
        d = self.current()
        if d is None:
            return
        waiting = [g.name for g in d.groups if g.desired_canaries and not g.promoted]
        if not waiting:
            self.app.notify("no group waits for promotion", severity="warning")
            return
        from .screens import PromptScreen

        def chosen(name: str | None) -> None:
            if name is None:
                return
            if name.strip() not in waiting:
                self.app.notify(f"no group {name.strip()!r} waits; one of: "
                                f"{', '.join(waiting)}", severity="error")
                return
            DeploymentActions(self.app).promote(d, name.strip())

        self.app.push_screen(PromptScreen(f"Promote which group? ({', '.join(waiting)})",
                                          waiting[0]), chosen)

    def action_fail(self) -> None:
        if (d := self.current()) is not None:
            DeploymentActions(self.app).fail(d)

    def action_pause(self, pause: bool) -> None:
        if (d := self.current()) is not None:
            DeploymentActions(self.app).pause(d, pause)

    def action_back(self) -> None:
        self.app.pop_screen()


# -- namespaces -------------------------------------------------------------------------------


class NamespacesScreen(Screen["str | None"]):
    """`:ns`: the namespaces; Enter scopes the views to one, `*` to all."""

    BINDINGS = [Binding("escape", "back", "back", id="namespaces_back")]

    def compose(self) -> ComposeResult:
        yield Static(Text("Namespaces: Enter scopes the views (* = every namespace)",
                          style="bold"), classes="pane-title")
        yield OptionList(id="namespaces")
        yield Footer()

    def on_mount(self) -> None:
        store: Store = self.app.store  # type: ignore[attr-defined]
        options = self.query_one(OptionList)
        scope = getattr(self.app, "namespace_scope", "*")
        jobs = store.items(Kind.JOB)
        entries = [("*", f"every namespace ({len(jobs)} jobs)")]
        for ns in sorted(store.items(Kind.NAMESPACE), key=lambda n: n.name):
            n = sum(1 for j in jobs if j.namespace == ns.name)
            desc = f" — {ns.description}" if ns.description else ""
            entries.append((ns.name, f"{ns.name} ({n} jobs){desc}"))
        for name, label in entries:
            mark = "● " if name == scope else "  "
            options.add_option(Option(safe_text(mark + label), id=name))
        options.highlighted = next((i for i, (name, _) in enumerate(entries)
                                    if name == scope), 0)
        options.focus()

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_back(self) -> None:
        self.dismiss(None)


# -- a job's versions, spec, and plan-and-run ---------------------------------------------------


class JobHistoryScreen(Screen[None]):
    """The job's versions (newest first) with what changed from the version before, as
    `nomad job history -p`; `r` reverts to the highlighted one (EnforcePriorVersion)."""

    BINDINGS = [Binding("escape", "back", "back", id="history_back"),
                Binding("r", "revert", "revert to this", id="history_revert")]

    def __init__(self, job_id: str) -> None:
        super().__init__(name=f"history:{job_id}")
        self.job_id = job_id
        self.versions: list[dict[str, Any]] = []
        self.diffs: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Static(safe_text(f"Versions of {self.job_id}", "bold"), classes="pane-title")
        with Horizontal():
            yield OptionList(id="versions")
            with VerticalScroll():
                yield Static(Text("reading…", style="dim"), id="version-diff")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="history")
    def load(self) -> None:
        src = nomad_of(self.app)
        if src is None:
            return
        try:
            body = src.job_versions(self.job_id)
        except Exception as exc:
            self.app.call_from_thread(self._show_error, exc)
            return
        self.app.call_from_thread(self._show, body)

    def _show_error(self, exc: BaseException) -> None:
        self.query_one("#version-diff", Static).update(safe_text(str(exc), "red"))

    def _show(self, body: dict[str, Any]) -> None:
        self.versions = list(body.get("Versions") or [])
        self.diffs = list(body.get("Diffs") or [])
        options = self.query_one(OptionList)
        options.clear_options()
        for v in self.versions:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S",
                                  time.localtime(int(v.get("SubmitTime") or 0) / 1e9))
            stable = "stable" if v.get("Stable") else "not stable"
            options.add_option(Option(safe_text(f"v{v.get('Version')}  {stamp}  {stable}"),
                                      id=str(v.get("Version"))))
        if self.versions:
            options.highlighted = 0
        options.focus()
        self._diff(0)

    def _diff(self, index: int) -> None:
        out = self.query_one("#version-diff", Static)
        if not self.versions:
            out.update(Text("no versions", style="dim"))
            return
        if index >= len(self.diffs):
            out.update(Text("the oldest version kept: nothing to compare with", style="dim"))
            return
        out.update(diff_text(diff_lines(self.diffs[index])))

    @on(OptionList.OptionHighlighted)
    def highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._diff(event.option_index)

    def action_revert(self) -> None:
        if _read_only(self.app):
            return
        options = self.query_one(OptionList)
        src = nomad_of(self.app)
        if src is None or options.highlighted is None or not self.versions:
            return
        target = int(self.versions[options.highlighted].get("Version") or 0)
        current = int(self.versions[0].get("Version") or 0)
        if target == current:
            self.app.notify(f"v{target} is the current version", severity="warning")
            return

        def go() -> None:
            try:
                resp = src.revert(self.job_id, target, current)
            except Exception as exc:
                _fail(self.app, f"revert {self.job_id} to v{target}", exc)
                return
            self.app.call_from_thread(self.app.notify, f"reverted {self.job_id} to v{target}"
                                      f" (evaluation {str(resp.get('EvalID', ''))[:8]})")
            self.load()

        def start() -> None:
            self.app.run_worker(go, thread=True, exit_on_error=False)

        _confirm(self.app, f"Revert job {self.job_id} from v{current} to v{target}? (refused "
                 "if it changed meanwhile)", start)

    def action_back(self) -> None:
        self.app.pop_screen()


class JobSpecScreen(Screen[None]):
    """The job's spec as HCL-like text (`j`: the JSON); `s` saves what is shown."""

    BINDINGS = [Binding("escape", "back", "back", id="spec_back"),
                Binding("j", "toggle_json", "HCL/JSON", id="spec_json"),
                Binding("s", "save", "save", id="spec_save")]

    def __init__(self, job_id: str) -> None:
        super().__init__(name=f"spec:{job_id}")
        self.job_id = job_id
        self.spec: dict[str, Any] | None = None
        self.as_json = False

    def compose(self) -> ComposeResult:
        yield Static(safe_text(f"Spec of {self.job_id}", "bold"), classes="pane-title")
        with VerticalScroll():
            yield Static(Text("reading…", style="dim"), id="spec")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="spec")
    def load(self) -> None:
        src = nomad_of(self.app)
        if src is None:
            return
        try:
            spec = src.job_spec(self.job_id)
        except Exception as exc:
            _fail(self.app, f"read {self.job_id}", exc)
            return
        self.app.call_from_thread(self._show, spec)

    def text(self) -> str:
        if self.spec is None:
            return ""
        return json.dumps(self.spec, indent=2, sort_keys=True) + "\n" if self.as_json \
            else spec_text(self.spec)

    def _show(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.query_one("#spec", Static).update(safe_text(self.text(), limit=None,
                                                         multiline=True))

    def action_toggle_json(self) -> None:
        self.as_json = not self.as_json
        if self.spec is not None:
            self._show(self.spec)

    def action_save(self) -> None:
        from .screens import PromptScreen

        if self.spec is None:
            return
        default = f"{self.job_id}.{'json' if self.as_json else 'nomad.hcl'}"

        def answered(path: str | None) -> None:
            if not path:
                return
            target = Path(path.strip()).expanduser()
            try:
                with target.open("x", encoding="utf-8") as f:  # never overwrites
                    f.write(self.text())
            except OSError as exc:
                self.app.notify(f"not saved: {line(str(exc))}", severity="error")
                return
            self.app.notify(f"saved {line(str(target))}")

        self.app.push_screen(PromptScreen("Save the spec to (a new file):", default), answered)

    def action_back(self) -> None:
        self.app.pop_screen()


class RunJobScreen(Screen[None]):
    """`n` on :jobs: a job file is parsed and planned (diff and placements), `y` runs it
    with EnforceIndex after a confirmation, then the evaluation and deployment are
    followed here."""

    BINDINGS = [Binding("escape", "back", "back", id="run_back"),
                Binding("y", "run", "run this plan", id="run_yes")]

    def __init__(self, path: str) -> None:
        super().__init__(name=f"run:{path}")
        self.path = path
        self.job: dict[str, Any] | None = None
        self.index = 0
        self.ran = False
        self.stopping = threading.Event()  # leaving the screen ends the follow

    def compose(self) -> ComposeResult:
        # imported here: RichLog's module imports rich.pretty and attrs (~50 ms of every
        # cockpit start, for a screen of a plan)
        from textual.widgets import RichLog

        yield Static(safe_text(f"Plan of {self.path}", "bold"), classes="pane-title")
        yield RichLog(id="plan", wrap=True, markup=False, highlight=False)
        yield Footer()

    def on_mount(self) -> None:
        self.plan()

    def say(self, text: str, style: str = "") -> None:
        from textual.widgets import RichLog  # imported by compose already

        self.query_one("#plan", RichLog).write(safe_text(text, style))

    @work(thread=True, exclusive=True, group="plan")
    def plan(self) -> None:
        src = nomad_of(self.app)
        if src is None:
            return
        try:
            hcl = Path(self.path).expanduser().read_text(encoding="utf-8")
            job = src.parse_job(hcl)
            plan = src.plan_job(job)
        except Exception as exc:
            self.app.call_from_thread(self.say, f"cannot plan: {exc}", "red")
            return
        self.job = job
        self.index = int(plan.get("JobModifyIndex") or 0)
        lines = plan_lines(plan, job)
        self.app.call_from_thread(self._show_plan, lines)

    def _show_plan(self, lines: list[str]) -> None:
        log: Any = self.query_one("#plan")
        log.write(diff_text(lines))
        log.write(Text(f"Job Modify Index: {self.index}. y: run it (refused if the job "
                       "changes first)", style="bold"))

    def action_run(self) -> None:
        if self.job is None or self.ran or _read_only(self.app):
            return
        job_id = str(self.job.get("ID", ""))
        _confirm(self.app, f"Run job {job_id} as planned?", self._go)

    def _go(self) -> None:
        self.ran = True
        self.follow()

    @work(thread=True, exclusive=True, group="plan")
    def follow(self) -> None:
        src = nomad_of(self.app)
        assert src is not None and self.job is not None
        ns = str(self.job.get("Namespace") or "default")
        try:
            resp = src.run_checked(self.job, self.index)
            self.app.call_from_thread(self.say, f"registered; evaluation "
                                      f"{str(resp.get('EvalID', ''))[:8]}")
            ok = src.follow_run(str(self.job["ID"]), str(resp.get("EvalID") or ""), ns,
                                lambda s: self.app.call_from_thread(self.say, s),
                                stop=self.stopping)
        except Exception as exc:
            self.app.call_from_thread(self.say, f"not run: {exc}", "red")
            return
        if not self.stopping.is_set():
            self.app.call_from_thread(self.say, "done" if ok else "did not finish well",
                                      "green" if ok else "yellow")

    def on_unmount(self) -> None:
        self.stopping.set()

    def action_back(self) -> None:
        self.stopping.set()
        self.app.pop_screen()


# -- statistics, polled only when asked ------------------------------------------------------


class StatsPoller:
    """Allocation CPU/MEM for the rows on screen and the open details, every few seconds,
    and the open node's stats; nothing is polled that nobody looks at."""

    def __init__(self, app: Any, interval: float = 3.0, keep: int = 40) -> None:
        self.app = app
        self.interval = interval
        self.keep = keep
        self.alloc_ids: set[str] = set()
        self.node_ids: set[str] = set()
        self.tasks: dict[str, dict[str, deque[tuple[float, int]]]] = {}
        self.nodes: dict[str, dict[str, Any]] = {}
        self.node_cpu: dict[str, deque[float]] = {}
        self.errors: dict[str, str] = {}
        self.jobs: set[str] = set()  # open job details with queued allocations
        self.pending: dict[str, dict[str, list[str]]] = {}  # job -> group -> reasons
        self._lock = threading.Lock()
        self._busy = False
        self.ticks = 0  # poll_tick's count, for the overview's slower pace
        self.read_at: dict[str, int] = {}  # allocation → the tick its stats were last read

    def watch(self, alloc_ids: Iterable[str] = (), node_ids: Iterable[str] = ()) -> None:
        with self._lock:
            self.alloc_ids = set(alloc_ids)
            self.node_ids = set(node_ids)

    def latest(self, alloc_id: str) -> tuple[float, int] | None:
        tasks = self.tasks.get(alloc_id)
        if not tasks:
            return None
        cpu = sum(s[-1][0] for s in tasks.values() if s)
        mem = sum(s[-1][1] for s in tasks.values() if s)
        return cpu, mem

    def task_lines(self, alloc_id: str) -> list[tuple[str, float, int, str, str]]:
        """(task, MHz, bytes, CPU sparkline, MEM sparkline) per task."""
        out = []
        for task, series in sorted(self.tasks.get(alloc_id, {}).items()):
            if series:
                cpu, mem = series[-1]
                out.append((task, cpu, mem, sparkline(c for c, _ in series),
                            sparkline(m for _, m in series)))
        return out

    def poll(self) -> None:
        """One round (from a worker thread)."""
        src = nomad_of(self.app)
        if src is None or self._busy:
            return
        self._busy = True
        try:
            with self._lock:
                allocs, nodes = set(self.alloc_ids), set(self.node_ids)
            for aid in allocs:
                try:
                    stats = src.alloc_stats(aid)
                except Exception as exc:
                    self.errors[aid] = str(exc)
                    continue
                self.errors.pop(aid, None)
                per = self.tasks.setdefault(aid, {})
                for task, sample in stats.items():
                    per.setdefault(task, deque(maxlen=self.keep)).append(sample)
            for nid in nodes:
                try:
                    self.nodes[nid] = src.node_stats(nid)
                except Exception as exc:
                    self.errors[nid] = str(exc)
                    continue
                cpus = self.nodes[nid].get("CPU") or []
                if cpus:
                    avg = sum(float(c.get("Total") or 0) for c in cpus) / len(cpus)
                    self.node_cpu.setdefault(nid, deque(maxlen=self.keep)).append(avg)
            for job_id in set(self.jobs):
                try:
                    self.pending[job_id] = src.job_pending_reasons(job_id)
                except Exception as exc:
                    self.errors[job_id] = str(exc)
            if len(self.tasks) > 500:  # forget what scrolled away long ago
                for gone in list(set(self.tasks) - allocs)[:250]:
                    self.tasks.pop(gone, None)
        finally:
            self._busy = False


# -- wiring: actions, views, detail sections, polling -----------------------------------------

NOMAD_ACTIONS = {"job_run", "job_history", "job_spec", "job_deployments",
                 "deployment_promote", "deployment_fail"}
READS = {"job_history", "job_spec", "job_deployments"}


def _active_deployment(app: Any, job_id: str) -> Deployment | None:
    deps = [d for d in app.store.items(Kind.DEPLOYMENT) if d.job_id == job_id and d.active]
    return max(deps, key=lambda d: d.create_index) if deps else None


def ask_job_file(app: Any) -> None:
    """`n`: the path of a job file, then its plan."""
    from .screens import PromptScreen

    if _read_only(app):
        return

    def answered(path: str | None) -> None:
        if path and path.strip():
            app.push_screen(RunJobScreen(path.strip()))

    app.push_screen(PromptScreen("Plan and run a Nomad job file (HCL):", ""), answered)


def handle_action(app: Any, name: str, obj: Any) -> bool:
    """The Nomad-in-depth actions; False for any other name."""
    if name not in NOMAD_ACTIONS:
        return False
    if name not in READS and _read_only(app):
        return True
    job_id = str(getattr(obj, "id", ""))
    if name == "job_run":
        ask_job_file(app)
    elif name == "job_history":
        app.push_screen(JobHistoryScreen(job_id))
    elif name == "job_spec":
        app.push_screen(JobSpecScreen(job_id))
    elif name == "job_deployments":
        app.push_screen(DeploymentsScreen(job_id))
    else:
        dep = _active_deployment(app, job_id)
        if dep is None:
            app.notify(f"job {line(job_id)} has no active deployment", severity="warning")
        elif name == "deployment_promote":
            DeploymentActions(app).promote(dep)
        else:
            DeploymentActions(app).fail(dep)
    return True


def view_screen(app: Any, name: str) -> tuple[Screen[Any], Any] | None:
    """`:deployments`, `:ns`: the screen, and what to do with its answer (or None)."""
    if name in ("deployments", "deploy", "deps"):
        return DeploymentsScreen(), None
    if name in ("ns", "namespaces", "namespace"):
        def chosen(ns: str | None) -> None:
            if ns is not None:
                set_scope(app, ns)

        return NamespacesScreen(), chosen
    return None


def set_scope(app: Any, namespace: str) -> None:
    """Show one namespace (or `*`) in every Nomad table."""
    app.namespace_scope = namespace
    for screen in app.screen_stack:
        for pane in getattr(screen, "panes", ()):
            table = getattr(pane, "table", None)
            if table is not None and getattr(table, "kind", None) in (Kind.JOB,
                                                                       Kind.ALLOCATION):
                table.reload()
                pane.refresh_title()
    app.notify("namespace: every namespace" if namespace == "*"
               else f"namespace: {line(namespace)}")


def in_scope(app: Any, obj: Any) -> bool:
    scope = getattr(app, "namespace_scope", "*")
    return scope == "*" or getattr(obj, "namespace", scope) == scope


def detail_extra(app: Any, kind: Kind, id_: str) -> Any:
    """What the detail adds for Nomad objects: a job's deployments and why it is pending,
    an allocation's CPU/memory per task, a node's stats."""
    from rich.console import Group

    poller: StatsPoller | None = getattr(app, "stats_poller", None)
    if kind is Kind.JOB:
        parts: list[Any] = []
        job = app.store.get(Kind.JOB, id_)
        if job is not None and any(g.queued for g in job.groups):
            reasons = poller.pending.get(id_) if poller else None
            parts.append(Text("\nWhy is it pending?", style="bold underline"))
            if reasons is None:
                parts.append(Text("reading the evaluations…", style="dim"))
            elif not reasons:
                parts.append(Text("no blocked evaluation: the scheduler is placing it",
                                  style="dim"))
            for group, words in sorted((reasons or {}).items()):
                for w in words:
                    parts.append(safe_text(f"group {group}: {w}", "yellow"))
        deps = sorted((d for d in app.store.items(Kind.DEPLOYMENT) if d.job_id == id_),
                      key=lambda d: -d.create_index)[:3]
        if deps:
            parts.append(Text("\nDeployments (p promote, f fail, d all)",
                              style="bold underline"))
            parts += [deployment_lines(d) for d in deps]
        parts.append(Text("\nh versions and diffs (revert)   v spec (save with s)   "
                          "n run a job file", style="dim"))
        return Group(*parts)
    if kind is Kind.ALLOCATION and poller is not None:
        rows = poller.task_lines(id_)
        if id_ in poller.errors:
            return safe_text(f"\nresource use: {poller.errors[id_]}", "yellow")
        if not rows:
            return Text("\nresource use: reading…", style="dim")
        out = Text("\nResource use (every few seconds)\n", style="bold underline")
        for task, mhz, mem, cpu_s, mem_s in rows:
            out.append_text(safe_text(f"  {task:<16} CPU {mhz:7.1f} MHz ", ""))
            out.append(cpu_s, style="cyan")
            out.append(f"   MEM {mem / 1024**2:7.1f} MiB ")
            out.append(mem_s, style="magenta")
            out.append("\n")
        return out
    if kind is Kind.NOMAD_NODE and poller is not None:
        stats = poller.nodes.get(id_)
        if id_ in poller.errors:
            return safe_text(f"\nnode stats: {poller.errors[id_]}", "yellow")
        if not stats:
            return Text("\nnode stats: reading…", style="dim")
        memory = stats.get("Memory") or {}
        total = int(memory.get("Total") or 0)
        used = int(memory.get("Used") or 0)
        cpus = stats.get("CPU") or []
        avg = sum(float(c.get("Total") or 0) for c in cpus) / len(cpus) if cpus else 0.0
        disk = (stats.get("DiskStats") or [{}])[0]
        out = Text("\nNode stats (/v1/client/stats)\n", style="bold underline")
        out.append(f"  CPU  {avg:5.1f}% of {len(cpus)} cores ")
        out.append(sparkline(poller.node_cpu.get(id_, ())), style="cyan")
        out.append(f"\n  MEM  {used / 1024**3:.1f} / {total / 1024**3:.1f} GiB\n")
        out.append(f"  DISK {float(disk.get('UsedPercent') or 0):.1f}% used\n")
        out.append(f"  up   {int(stats.get('Uptime') or 0) // 3600} h\n")
        return out
    return None


def visible_alloc_ids(app: Any, limit: int = 60) -> set[str]:
    """The allocations whose rows are on screen, and the one whose detail is open."""
    detail, first, rows = _shown_allocs(app, limit)
    return ({detail} if detail else set()) | set(first) | set(rows)


def _shown_allocs(app: Any, limit: int = 60) -> tuple[str, list[str], list[str]]:
    """(the open detail's allocation or "", the cursor's row, the other rows on screen in
    screen order): what a stats round chooses from, first things first."""
    screen = app.screen
    detail = str(getattr(screen, "object_id", "")) \
        if getattr(screen, "kind", None) is Kind.ALLOCATION else ""
    first: list[str] = []
    rows: list[str] = []
    for pane in getattr(screen, "panes", ()):
        table = getattr(pane, "table", None)
        if table is None or getattr(table, "kind", None) is not Kind.ALLOCATION \
                or not table.row_count:
            continue
        if "cpu" not in table.columns and "mem" not in table.columns:
            continue  # a pane too narrow for CPU and MEM (the overview's): nothing to show
        top = int(table.scroll_offset.y)
        shown = [str(row.key.value) for row in
                 table.ordered_rows[top:top + max(1, table.size.height)][:limit]
                 if row.key.value is not None]
        cursor = table.selected_id() if table.has_focus else None
        if cursor in shown:
            first.append(cursor)
        rows += shown
    first = [i for i in dict.fromkeys(first) if i and i != detail]
    return detail, first, [i for i in dict.fromkeys(rows) if i and i not in first]


OVERVIEW_EVERY = 5  # the overview's allocations pane: stats every 5th tick (15 s), a glance
# allocations whose stats one tick asks Nomad for (one request each: Nomad has no bulk stats
# endpoint), besides the open detail's, which is read every tick (its figures and sparklines
# are the point), and the cursor's row, which goes first. The rows on screen take turns,
# longest unread first: a row never read is read at the next tick that has room (a page's
# figures fill in at once), a row read before once its figures are `ROW_EVERY` ticks old
# (15 s, as metrics-server's resolution gives k9s). A page of 40 rows (`:allocs`, 48 lines)
# is then read over five ticks, and so is a page of a few rows: read every tick (the demo's
# 14 rows and the cursor's: a request a second) they were, with each tick's redraw, over
# half of `:allocs`' idle cost. Reading and redrawing every row on screen each tick (13
# requests a second) was most of it at 5,000 allocations.
STATS_PER_TICK = 8
ROW_EVERY = 5


def poll_tick(app: Any) -> None:
    """Every few seconds (on the loop): choose what to poll, then poll in a worker. On the
    overview only every `OVERVIEW_EVERY`th tick: there the CPU column is a glance, and its
    requests and redraws were most of the cockpit's idle cost (`:allocs` and the details,
    where the figures are the point, keep every tick)."""
    poller: StatsPoller | None = getattr(app, "stats_poller", None)
    if poller is None or poller._busy or not app.screen_stack:  # (none while it closes)
        return
    screen = app.screen
    poller.ticks += 1
    if getattr(screen, "name", None) == "overview" and poller.ticks % OVERVIEW_EVERY != 1:
        return
    kind = getattr(screen, "kind", None)
    nodes = {str(screen.object_id)} if kind is Kind.NOMAD_NODE else set()
    jobs: set[str] = set()
    if kind is Kind.JOB:
        job = app.store.get(Kind.JOB, str(screen.object_id))
        if job is not None and any(g.queued for g in job.groups):
            jobs.add(job.id)
    allocs = _choose(app, poller)
    if not (allocs or nodes or jobs):
        return
    poller.watch(allocs, nodes)
    poller.jobs = jobs

    def work() -> None:
        poller.poll()
        app.call_from_thread(_polled, app, allocs)

    app.run_worker(work, thread=True, group="stats", exit_on_error=False)


def _polled(app: Any, allocs: set[str]) -> None:
    poller: StatsPoller = app.stats_poller
    for aid in allocs:
        latest = poller.latest(aid)
        if latest is not None:
            app.history.add(f"acpu/{aid}", latest[0])
            app.history.add(f"amem/{aid}", float(latest[1]))
    # the tables showing them get their CPU and MEM cells made again, and only those (the
    # store did not change: the rest of each row is as it was); a detail redraws as on any
    # store change (signal down)
    for screen in app.screen_stack:
        for pane in getattr(screen, "panes", ()):
            table = getattr(pane, "table", None)
            if table is not None and getattr(table, "kind", None) is Kind.ALLOCATION \
                    and table.is_mounted:
                table.refresh_columns(STATS_KEYS, allocs)
    changed: dict[Kind, set[str]] = {}
    if getattr(app.screen, "kind", None) is Kind.ALLOCATION \
            and str(getattr(app.screen, "object_id", "")) in allocs:
        changed[Kind.ALLOCATION] = {str(app.screen.object_id)}
    if poller.node_ids:
        changed[Kind.NOMAD_NODE] = set(poller.node_ids)
    if poller.jobs:
        changed[Kind.JOB] = set(poller.jobs)
    if changed:
        app.store_changed.publish(changed)


STATS_KEYS = frozenset({"cpu", "mem"})


def _choose(app: Any, poller: StatsPoller) -> set[str]:
    """The running allocations this tick reads: the open detail's, then those on screen that
    were never read or were read `ROW_EVERY` ticks ago or more: the cursor's row, and up to
    `STATS_PER_TICK` more, longest unread first (never read: first)."""
    detail, first, shown = _shown_allocs(app)

    def running(aid: str) -> bool:
        obj = app.store.get(Kind.ALLOCATION, aid)
        return obj is not None and obj.client_status == "running"

    def due(aid: str) -> bool:
        read = poller.read_at.get(aid)
        return read is None or poller.ticks - read >= ROW_EVERY

    rows = [a for a in shown if running(a) and due(a)]
    rows.sort(key=lambda a: poller.read_at.get(a, -1))  # stable: screen order among equals
    chosen = [a for a in [detail] if a and running(a)] \
        + [a for a in first if running(a) and due(a)] + rows[:STATS_PER_TICK]
    for aid in chosen:
        poller.read_at[aid] = poller.ticks
    if len(poller.read_at) > 2000:  # forget what scrolled away long ago (not what is shown)
        keep = {detail, *first, *shown}
        poller.read_at = {a: t for a, t in poller.read_at.items() if a in keep}
    return set(chosen)
