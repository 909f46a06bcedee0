"""The lab's Nomad scheduler: placement, bin packing on CPU and memory, constraints,
blocked evaluations with their placement metrics, deployments with canaries, job versions,
plans and the usage the client stats report.

It is a mixin of `World` (world.py keeps the cluster's life; this module decides where
allocations go). Shapes of what it records follow the Nomad API docs: evaluations
(`FailedTGAllocs` is an AllocMetric), deployments (TaskGroups states) and jobs (plan
annotations `DesiredTGUpdates`).
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import re
import time
from typing import TYPE_CHECKING, Any

from .model import (
    Alloc,
    Constraint,
    Deployment,
    DeploymentState,
    Evaluation,
    GroupSpec,
    Job,
    NomadNode,
    TaskState,
    UpdateSpec,
)

if TYPE_CHECKING:
    from .world import World

MHZ_PER_CORE = 2400  # what the lab's node_full reports as CpuShares per core
VERSIONS_KEPT = 6  # Nomad's JobTrackedVersions
DEPLOYMENT_EVENT = "Deployment"


def now_ns() -> int:
    return time.time_ns()


def index_of(alloc_name: str) -> int:
    try:
        return int(alloc_name.rsplit("[", 1)[1].rstrip("]"))
    except (IndexError, ValueError):
        return 0


def task_event(type_: str, message: str) -> dict[str, Any]:
    return {
        "Type": type_,
        "Time": now_ns(),
        "DisplayMessage": message,
        "Details": {},
        "Message": "",
        "FailsTask": False,
        "RestartReason": "",
    }


def node_attributes(node: NomadNode) -> dict[str, str]:
    """The attributes a constraint may name (`${attr.…}`), as node_full reports them."""
    return {
        "unique.hostname": node.name,
        "unique.network.ip-address": node.address,
        "cpu.numcores": str(node.cores),
        "memory.totalbytes": str(node.memory_mb * 1024 * 1024),
        "nomad.version": node.version,
        "kernel.name": "linux",
        "os.name": "debian",
        "os.version": "12",
    }


def _resolve(target: str, node: NomadNode) -> str | None:
    """A constraint target: `${attr.x}`, `${node.datacenter}`, … or a literal."""
    m = re.fullmatch(r"\$\{(\w+)\.(.+)\}", target.strip())
    if not m:
        return target
    scope, name = m.groups()
    if scope == "attr":
        return node_attributes(node).get(name)
    if scope == "node":
        return {"datacenter": node.datacenter, "unique.name": node.name,
                "unique.id": node.id, "class": node.node_class, "pool": node.node_pool
                }.get(name)
    if scope == "meta":
        return {"connect.log_level": "info"}.get(name)
    return None


def constraint_holds(c: Constraint, node: NomadNode) -> bool:
    """The operands the lab's jobs use (job-specification/constraint)."""
    left = _resolve(c.ltarget, node)
    right = _resolve(c.rtarget, node)
    op = c.operand
    if op in ("is_set",):
        return left is not None
    if op in ("is_not_set",):
        return left is None
    if left is None or right is None:
        return False
    if op in ("=", "==", "is"):
        return left == right
    if op in ("!=", "not"):
        return left != right
    if op == "regexp":
        return re.search(right, left) is not None
    if op == "set_contains":
        return set(right.split(",")) <= {s.strip() for s in left.split(",")}
    if op in ("<", "<=", ">", ">="):
        try:
            lv, rv = float(left), float(right)
        except ValueError:
            lv, rv = left, right  # type: ignore[assignment]
        return {"<": lv < rv, "<=": lv <= rv, ">": lv > rv, ">=": lv >= rv}[op]
    return False


def new_metric() -> dict[str, Any]:
    """api-docs/evaluations: an AllocMetric (FailedTGAllocs' values)."""
    return {
        "NodesEvaluated": 0, "NodesFiltered": 0, "NodesInPool": 0, "NodesAvailable": {},
        "ClassFiltered": None, "ConstraintFiltered": None, "NodesExhausted": 0,
        "ClassExhausted": None, "DimensionExhausted": None, "QuotaExhausted": None,
        "ResourcesExhausted": None, "Scores": None, "ScoreMetaData": None,
        "AllocationTime": 0, "CoalescedFailures": 0,
    }


def _bump(metric: dict[str, Any], key: str, name: str) -> None:
    metric[key] = metric[key] or {}
    metric[key][name] = metric[key].get(name, 0) + 1


def spec_key(job: Job) -> Any:
    """What makes two registrations the same job version (Nomad's Job.SpecChanged)."""
    return (job.type, job.namespace, tuple(job.datacenters), job.node_pool, job.priority,
            sorted(job.meta.items()), job.periodic, job.parameterized, job.stop,
            [dataclasses.astuple(c) for c in job.constraints],
            dataclasses.astuple(job.update) if job.update else None,
            [dataclasses.astuple(g) for g in job.groups])


def group_update(job: Job, group: GroupSpec) -> UpdateSpec | None:
    return group.update or job.update


class Scheduler:
    """Mixin of World: everything that decides where allocations go."""

    def _error(self, status: int, message: str) -> Exception:
        from .world import SimError
        return SimError(status, message)

    # -- nodes and their room ---------------------------------------------------------------

    def _eligible_nodes(self: World) -> list[NomadNode]:
        return [
            n for n in self.nodes.values()
            if n.status == "ready" and n.eligibility == "eligible" and not n.drain
        ]

    def _usage_table(self: World) -> dict[str, list[int]]:
        """node id -> [live allocations, MHz asked, MiB asked], counted once per change
        rather than per placement: placing thousands must not rescan all of them each time."""
        if self._load_at != self.nomad.tables.get("allocs"):
            self._load.clear()
            for a in self.allocs.values():
                if not a.terminal:
                    row = self._load.setdefault(a.node_id, [0, 0, 0])
                    row[0] += 1
                    row[1] += a.cpu
                    row[2] += a.memory
            self._load_at = self.nomad.tables.get("allocs")
        return self._load

    def node_load(self: World, node_id: str) -> int:
        """Live allocations on a node."""
        return self._usage_table().get(node_id, [0, 0, 0])[0]

    def node_reserved(self: World, node_id: str) -> tuple[int, int]:
        """(MHz, MiB) the node's live allocations asked for."""
        row = self._usage_table().get(node_id, [0, 0, 0])
        return row[1], row[2]

    def _pick_node(self: World, nodes: list[NomadNode], exclude: str = "") -> NomadNode | None:
        candidates = [n for n in nodes if n.id != exclude]
        if not candidates:
            return None
        return min(candidates, key=lambda n: (self.node_load(n.id), n.name))

    def _select(self: World, job: Job, group: GroupSpec, exclude: str = "",
                extra: dict[str, list[int]] | None = None
                ) -> tuple[NomadNode | None, dict[str, Any]]:
        """Feasibility then bin packing, as Nomad's stack: nodes of the job's datacenters
        and pool, filtered by constraints and drivers, exhausted on cpu or memory; the least
        loaded fit wins. The metric is what a failed placement reports."""
        started = time.perf_counter_ns()
        metric = new_metric()
        ready = self._eligible_nodes()
        pool = [n for n in ready if n.node_pool == job.node_pool or job.node_pool == "all"]
        metric["NodesInPool"] = len(pool)
        available: dict[str, int] = {}
        for dc in job.datacenters:
            if not any(ch in dc for ch in "*?["):
                available[dc] = 0
        in_dc = []
        for n in pool:
            if any(fnmatch.fnmatchcase(n.datacenter, dc) for dc in job.datacenters):
                in_dc.append(n)
                available[n.datacenter] = available.get(n.datacenter, 0) + 1
        metric["NodesAvailable"] = available
        cpu = sum(t.cpu for t in group.tasks)
        mem = sum(t.memory for t in group.tasks)
        drivers = {t.driver for t in group.tasks}
        best: NomadNode | None = None
        best_key: tuple[int, str] | None = None
        for node in in_dc:
            if node.id == exclude:
                continue
            metric["NodesEvaluated"] += 1
            failed = next((c for c in [*job.constraints, *group.constraints]
                           if not constraint_holds(c, node)), None)
            if failed is not None:
                metric["NodesFiltered"] += 1
                _bump(metric, "ConstraintFiltered", str(failed))
                continue
            if not drivers <= set(node.drivers):
                metric["NodesFiltered"] += 1
                _bump(metric, "ConstraintFiltered", "missing drivers")
                continue
            used_cpu, used_mem = self.node_reserved(node.id)
            if extra and node.id in extra:
                used_cpu += extra[node.id][0]
                used_mem += extra[node.id][1]
            if used_cpu + cpu > node.cores * MHZ_PER_CORE:
                metric["NodesExhausted"] += 1
                _bump(metric, "DimensionExhausted", "cpu")
                continue
            if used_mem + mem > node.memory_mb:
                metric["NodesExhausted"] += 1
                _bump(metric, "DimensionExhausted", "memory")
                continue
            key = (self.node_load(node.id) + (extra or {}).get(node.id, [0, 0, 0])[2] // 10**6,
                   node.name)
            if best_key is None or key < best_key:
                best, best_key = node, key
        metric["AllocationTime"] = time.perf_counter_ns() - started
        return best, metric

    # -- the reconciler ------------------------------------------------------------------------

    def reconcile(self: World, trigger: str = "reconcile", job_id: str | None = None,
                  node_id: str = "") -> Evaluation | None:
        """Place and stop allocations until every job has what it asks for."""
        first: Evaluation | None = None
        for job in list(self.jobs.values()):
            if job_id is not None and job.id != job_id:
                continue
            ev = self._new_eval(job, trigger, node_id) if job_id == job.id else None
            first = first or ev
            if job.stop:
                continue
            for group in job.groups:
                self._reconcile_group(job, group, ev)
            self._settle_blocked(job)
            self._update_job_status(job)
        if job_id is None and trigger != "reconcile":
            return None
        return first

    def _reconcile_group(self: World, job: Job, group: GroupSpec, ev: Evaluation | None
                         ) -> None:
        allocs = [a for a in self.job_allocs(job.id) if a.task_group == group.name]
        live = [a for a in allocs if a.desired_status == "run" and not a.terminal]
        nodes = self._eligible_nodes()
        if job.type == "system":
            have = {a.node_id for a in live}
            for node in nodes:
                if node.id not in have:
                    self._place(job, group, node, 0, ev, None)
            return
        if job.type == "batch" and any(
            a.client_status in ("complete", "running", "pending") for a in allocs
        ):
            return
        dep = self.active_deployment(job.id)
        state = dep.task_groups.get(group.name) if dep else None
        if dep is not None and state is not None and state.desired_canaries \
                and not state.promoted:
            # canaries first, next to the old version; the rest waits for the promotion
            if dep.status != "running":
                return
            placed = [a for a in live if a.canary and a.deployment_id == dep.id]
            for i in range(len(placed), state.desired_canaries):
                node, metric = self._select(job, group)
                if node is None:
                    self._note_failure(job, group, ev, metric, state.desired_canaries - i)
                    return
                alloc = self._place(job, group, node, i, ev, None)
                alloc.canary = True
                state.placed_canaries.append(alloc.id)
            job.queued[group.name] = 0
            return
        for a in live:
            if a.migrate and not a.next_allocation:
                target = self._pick_node(nodes, exclude=a.node_id)
                if target is not None:
                    live.append(self._place(job, group, target, index_of(a.name), ev, a))
        # a migrating allocation with a replacement is counted once, through the replacement
        staying = [a for a in live if not (a.migrate and a.next_allocation)]
        want = group.count
        if len(staying) > want:
            for a in sorted(staying, key=lambda a: (not a.canary, index_of(a.name)))[want:]:
                self._finish_alloc(a, "complete", "alloc not needed due to job update",
                                   desired="stop")
            job.queued[group.name] = 0
            return
        used = {index_of(a.name) for a in live}
        lost = [a for a in allocs if a.client_status == "lost" and not a.next_allocation]
        missing = want - len(staying)
        for placed in range(missing):
            node, metric = self._select(job, group)
            if node is None:
                job.status_description = "no eligible nodes"
                self._note_failure(job, group, ev, metric, missing - placed)
                return
            previous = lost.pop(0) if lost else None
            i = index_of(previous.name) if previous else 0
            while i in used:
                i += 1
            used.add(i)
            self._place(job, group, node, i, ev, previous)
        job.queued[group.name] = 0

    def _place(self: World, job: Job, group: GroupSpec, node: NomadNode, index: int,
               ev: Evaluation | None, previous: Alloc | None) -> Alloc:
        ev = ev or self._new_eval(job, "reconcile")
        counts_fresh = self._load_at == self.nomad.tables.get("allocs")
        idx = self.nomad.bump("allocs")
        alloc = Alloc(
            id=self.new_id(), eval_id=ev.id, name=f"{job.id}.{group.name}[{index}]",
            job_id=job.id, task_group=group.name, node_id=node.id, namespace=job.namespace,
            job_type=job.type, job_version=job.version, create_index=idx, modify_index=idx,
            alloc_modify_index=idx, create_time=now_ns(), modify_time=now_ns(),
            previous_allocation=previous.id if previous else "",
            task_states={t.name: TaskState(events=[task_event("Received",
                         "Task received by client")]) for t in group.tasks},
            cpu=sum(t.cpu for t in group.tasks), memory=sum(t.memory for t in group.tasks),
        )
        dep = self.active_deployment(job.id)
        if dep is not None and group.name in dep.task_groups and dep.job_version == job.version:
            alloc.deployment_id = dep.id
            dep.task_groups[group.name].placed_allocs += 1
        self.allocs[alloc.id] = alloc
        if counts_fresh:  # keep the per-node counts current without a rescan
            row = self._load.setdefault(node.id, [0, 0, 0])
            row[0] += 1
            row[1] += alloc.cpu
            row[2] += alloc.memory
            self._load_at = idx
        if previous is not None:
            previous.next_allocation = alloc.id
            previous.modify_index = idx
        self._emit("Allocation", "PlanResult", alloc.id, alloc, [job.id, ev.id])
        if self._loop is not None:
            self._later(self.task_delay, lambda: self._start_alloc(alloc.id))
        return alloc

    # -- blocked evaluations -------------------------------------------------------------------

    def _blocked_eval(self: World, job: Job) -> Evaluation | None:
        return next((e for e in self.evals.values()
                     if e.job_id == job.id and e.status == "blocked"), None)

    def _note_failure(self: World, job: Job, group: GroupSpec, ev: Evaluation | None,
                      metric: dict[str, Any], remaining: int) -> None:
        """A group that could not be placed: the evaluation keeps the metric in
        FailedTGAllocs and a blocked evaluation waits for room (one per job)."""
        job.queued[group.name] = remaining
        metric["CoalescedFailures"] = max(0, remaining - 1)
        blocked = self._blocked_eval(job)
        parent = ev
        if parent is None:
            parent = self.evals.get(blocked.previous_eval) if blocked else None
        if parent is None:
            parent = self._new_eval(job, "queued-allocs")
        parent.failed_tg_allocs[group.name] = metric
        parent.queued_allocations[group.name] = remaining
        parent.status_description = ""
        if blocked is None:
            blocked = self._new_eval(job, parent.triggered_by)
            blocked.status = "blocked"
            blocked.previous_eval = parent.id
            blocked.status_description = "created to place remaining allocations"
            blocked.queued_allocations = dict(parent.queued_allocations)
        parent.blocked_eval = blocked.id
        parent.modify_index = self.nomad.bump("evals")

    def _settle_blocked(self: World, job: Job) -> None:
        """Everything placed: the blocked evaluation is done."""
        if any(job.queued.values()):
            return
        blocked = self._blocked_eval(job)
        if blocked is not None:
            blocked.status = "complete"
            blocked.status_description = ""
            blocked.modify_index = self.nomad.bump("evals")
            blocked.modify_time = now_ns()
            self._emit("Evaluation", "EvaluationUpdated", blocked.id, blocked, [job.id])

    # -- deployments ---------------------------------------------------------------------------

    def active_deployment(self: World, job_id: str) -> Deployment | None:
        return next((d for d in reversed(list(self.deployments.values()))
                     if d.job_id == job_id and d.active), None)

    def _new_deployment(self: World, job: Job, old: Job | None) -> Deployment | None:
        """A deployment for each new version of a service job with an `update` block;
        canaries only where an older version runs (Nomad places none on a new job)."""
        if job.type != "service":
            return None
        groups = [(g, group_update(job, g)) for g in job.groups]
        if not any(u for _, u in groups):
            return None
        for d in self.deployments.values():
            if d.job_id == job.id and d.active:
                self._set_deployment(d, "cancelled", "Cancelled due to newer version of job")
        states: dict[str, DeploymentState] = {}
        for g, upd in groups:
            if upd is None:
                continue
            has_old = old is not None and any(
                a for a in self.job_allocs(job.id)
                if a.task_group == g.name and not a.terminal and a.desired_status == "run")
            states[g.name] = DeploymentState(
                desired_total=g.count, desired_canaries=upd.canary if has_old else 0,
                auto_promote=upd.auto_promote, auto_revert=upd.auto_revert,
                progress_deadline_ns=upd.progress_deadline_ns,
                require_progress_by=now_ns() + upd.progress_deadline_ns)
        idx = self.nomad.bump("deployment")
        dep = Deployment(id=self.new_id(), job_id=job.id, namespace=job.namespace,
                         job_version=job.version, job_modify_index=job.job_modify_index,
                         job_create_index=job.create_index, task_groups=states,
                         create_index=idx, modify_index=idx, create_time=now_ns(),
                         modify_time=now_ns())
        self.deployments[dep.id] = dep
        self._emit(DEPLOYMENT_EVENT, "DeploymentStatusUpdate", dep.id, dep, [job.id])
        return dep

    def _set_deployment(self: World, dep: Deployment, status: str, description: str,
                        event: str = "DeploymentStatusUpdate") -> None:
        dep.status = status
        dep.status_description = description
        dep.modify_index = self.nomad.bump("deployment")
        dep.modify_time = now_ns()
        self._emit(DEPLOYMENT_EVENT, event, dep.id, dep, [dep.job_id])

    def deployment_alloc_health(self: World, alloc: Alloc, healthy: bool) -> None:
        """The allocation's health as the deployment watcher sees it (healthy once its
        tasks run; unhealthy when it fails), then the deployment's progress."""
        if not alloc.deployment_id or alloc.healthy is not None:
            return
        alloc.healthy = healthy
        alloc.modify_index = self.nomad.bump("allocs")
        dep = self.deployments.get(alloc.deployment_id)
        if dep is None:
            return
        state = dep.task_groups.get(alloc.task_group)
        if state is not None:
            if healthy:
                state.healthy_allocs += 1
            else:
                state.unhealthy_allocs += 1
        self._deployment_progress(dep)

    def _deployment_progress(self: World, dep: Deployment) -> None:
        if dep.status != "running":
            dep.modify_index = self.nomad.bump("deployment")
            self._emit(DEPLOYMENT_EVENT, "DeploymentAllocHealth", dep.id, dep, [dep.job_id])
            return
        states = dep.task_groups
        if any(s.unhealthy_allocs for s in states.values()):
            self._set_deployment(dep, "failed", "Failed due to unhealthy allocations")
            return
        waiting = [n for n, s in states.items() if s.desired_canaries and not s.promoted]
        if waiting:
            ready = all(self._healthy_canaries(dep, n) >= states[n].desired_canaries
                        for n in waiting)
            if ready and all(states[n].auto_promote for n in waiting):
                self.promote_deployment(dep.id, None)
                return
            desc = ("Deployment is running but requires manual promotion" if ready
                    else "Deployment is running")
            self._set_deployment(dep, "running", desc, "DeploymentAllocHealth")
            return
        if all(s.healthy_allocs >= s.desired_total for s in states.values()):
            self._set_deployment(dep, "successful", "Deployment completed successfully")
            job = self.jobs.get(dep.job_id)
            if job is not None and job.version == dep.job_version:
                job.stable = True
                for v in self.job_versions.get(job.id, []):
                    if v.version == job.version:
                        v.stable = True
            return
        self._set_deployment(dep, "running", "Deployment is running", "DeploymentAllocHealth")

    def _healthy_canaries(self: World, dep: Deployment, group: str) -> int:
        state = dep.task_groups[group]
        return sum(1 for aid in state.placed_canaries
                   if (a := self.allocs.get(aid)) is not None and a.healthy and not a.terminal)

    def get_deployment(self: World, dep_id: str) -> Deployment:
        dep = self.deployments.get(dep_id)
        if dep is None:
            matches = [d for d in self.deployments.values() if d.id.startswith(dep_id)]
            dep = matches[0] if len(matches) == 1 and dep_id else None
        if dep is None:
            raise self._error(404, "deployment not found")
        return dep

    def promote_deployment(self: World, dep_id: str, groups: list[str] | None
                           ) -> Evaluation:
        """nomad/deploymentwatcher: promote the canaries of all (or some) groups; the old
        version's allocations make way for the rest of the new one."""
        dep = self.get_deployment(dep_id)
        if not dep.active:
            raise self._error(500, "can't promote terminal deployment")
        if dep.status == "paused":
            raise self._error(500, "can't promote deployment that is paused")
        names = groups or [n for n, s in dep.task_groups.items() if s.desired_canaries]
        if not any(dep.task_groups.get(n) and dep.task_groups[n].desired_canaries
                   for n in names):
            raise self._error(500, "no canaries to promote")
        for n in names:
            state = dep.task_groups.get(n)
            if state is None:
                raise self._error(500, f'Deployment does not include task group "{n}"')
            healthy = self._healthy_canaries(dep, n)
            if healthy < state.desired_canaries:
                raise self._error(500, f'Task group "{n}" has {healthy}/'
                                       f"{state.desired_canaries} healthy allocations")
        job = self.get_job(dep.job_id)
        for n in names:
            dep.task_groups[n].promoted = True
            for a in self.job_allocs(job.id):
                if a.task_group == n and not a.terminal and a.job_version != dep.job_version:
                    self._finish_alloc(a, "complete", "alloc not needed due to job update",
                                       desired="stop")
        self._set_deployment(dep, "running", "Deployment is running", "DeploymentPromotion")
        ev = self.reconcile(trigger="deployment-watcher", job_id=job.id)
        assert ev is not None
        ev.deployment_id = dep.id
        self._deployment_progress(dep)
        self.notify()
        return ev

    def fail_deployment(self: World, dep_id: str) -> Evaluation:
        dep = self.get_deployment(dep_id)
        if not dep.active:
            raise self._error(500, "can't fail terminal deployment")
        self._set_deployment(dep, "failed", "Deployment marked as failed")
        # the reconciler stops the canaries of a failed deployment
        for state in dep.task_groups.values():
            if state.promoted:
                continue
            for aid in state.placed_canaries:
                a = self.allocs.get(aid)
                if a is not None and not a.terminal:
                    self._finish_alloc(a, "complete", "alloc not needed due to job update",
                                       desired="stop")
        job = self.get_job(dep.job_id)
        ev = self._new_eval(job, "deployment-watcher")
        ev.deployment_id = dep.id
        self.notify()
        return ev

    def pause_deployment(self: World, dep_id: str, pause: bool) -> Evaluation | None:
        dep = self.get_deployment(dep_id)
        if not dep.active:
            raise self._error(500, "can't pause terminal deployment" if pause
                              else "can't resume terminal deployment")
        if pause:
            self._set_deployment(dep, "paused", "Deployment is paused")
            self.notify()
            return None
        self._set_deployment(dep, "running", "Deployment is running")
        ev = self.reconcile(trigger="deployment-watcher", job_id=dep.job_id)
        if ev is not None:
            ev.deployment_id = dep.id
        self._deployment_progress(dep)
        self.notify()
        return ev

    # -- versions --------------------------------------------------------------------------

    def _remember_version(self: World, job: Job) -> None:
        versions = self.job_versions.setdefault(job.id, [])
        snap = copy.deepcopy(job)
        snap.queued = {}
        versions[:] = [v for v in versions if v.version != job.version] + [snap]
        del versions[:-VERSIONS_KEPT]

    def revert_job(self: World, job_id: str, version: int, enforce_prior: int | None
                   ) -> Evaluation:
        """nomad/job_endpoint.go Revert (its error texts)."""
        cur = self.get_job(job_id)
        if version == cur.version:
            raise self._error(500, "can't revert to current version")
        old = next((v for v in self.job_versions.get(job_id, []) if v.version == version),
                   None)
        if old is None:
            raise self._error(500, f'job "{job_id}" at version {version} not found')
        if enforce_prior is not None and cur.version != enforce_prior:
            raise self._error(500, f"Current job has version {cur.version}; enforcing "
                                   f"version {enforce_prior}")
        job = copy.deepcopy(old)
        job.stable = False
        return self.register_job(job)

    # -- plans -----------------------------------------------------------------------------

    def plan_job(self: World, job: Job) -> dict[str, Any]:
        """What registering `job` would do, without doing it: per group the scheduler's
        DesiredTGUpdates and the placements that would fail (api-docs/jobs#create-job-plan)."""
        old = self.jobs.get(job.id)
        changed = old is None or spec_key(old) != spec_key(job) or old.stop
        updates: dict[str, dict[str, int]] = {}
        job_level_same = old is not None and not old.stop and spec_key(
            dataclasses.replace(old, groups=[])) == spec_key(dataclasses.replace(job, groups=[]))
        failed: dict[str, dict[str, Any]] = {}
        extra: dict[str, list[int]] = {}
        for g in job.groups:
            u = dict.fromkeys(("Ignore", "Place", "Migrate", "Stop", "InPlaceUpdate",
                               "DestructiveUpdate", "Canary", "Preemptions"), 0)
            live = [a for a in self.job_allocs(job.id) if a.task_group == g.name
                    and not a.terminal and a.desired_status == "run"] if old else []
            og = old.group(g.name) if old else None
            same = og is not None and job_level_same and dataclasses.replace(
                og, count=g.count) == g
            new_allocs = 0
            if job.type == "system":
                if same:
                    u["Ignore"] = len(live)
                else:
                    u["DestructiveUpdate"] = len(live)
                u["Place"] = max(0, len(self._eligible_nodes()) - len(live))
                new_allocs = u["Place"]
            elif same:
                u["Ignore"] = min(len(live), g.count)
                u["Place"] = max(0, g.count - len(live))
                u["Stop"] = max(0, len(live) - g.count)
                new_allocs = u["Place"]
            else:
                upd = group_update(job, g)
                canary = upd.canary if (upd and live and job.type == "service") else 0
                if canary:
                    u["Canary"] = canary
                    u["Ignore"] = len(live)
                    new_allocs = canary
                else:
                    u["DestructiveUpdate"] = min(len(live), g.count)
                    u["Place"] = max(0, g.count - len(live))
                    u["Stop"] = max(0, len(live) - g.count)
                    new_allocs = u["Place"]
                    # a destructive update frees what it replaces
                    for a in live:
                        row = extra.setdefault(a.node_id, [0, 0, 0])
                        row[0] -= a.cpu
                        row[1] -= a.memory
                    new_allocs += u["DestructiveUpdate"]
            for placed in range(new_allocs if job.type != "system" else 0):
                node, metric = self._select(job, g, extra=extra)
                if node is None:
                    metric["CoalescedFailures"] = new_allocs - placed - 1
                    failed[g.name] = metric
                    break
                row = extra.setdefault(node.id, [0, 0, 0])
                row[0] += sum(t.cpu for t in g.tasks)
                row[1] += sum(t.memory for t in g.tasks)
            updates[g.name] = u
        if old is not None:
            for og in old.groups:
                if job.group(og.name) is None:
                    n = sum(1 for a in self.job_allocs(job.id) if a.task_group == og.name
                            and not a.terminal)
                    updates[og.name] = dict.fromkeys(
                        ("Ignore", "Place", "Migrate", "InPlaceUpdate", "DestructiveUpdate",
                         "Canary", "Preemptions"), 0) | {"Stop": n}
        return {"changed": changed, "updates": updates, "failed": failed,
                "job_modify_index": old.job_modify_index if old else 0}

    # -- usage: what the client's stats report ---------------------------------------------

    def drift_usage(self: World) -> None:
        """Each running task's CPU and memory wander within what it asked for."""
        for alloc in self.allocs.values():
            if alloc.client_status != "running":
                if alloc.usage:
                    alloc.usage = {}
                continue
            self.measure_usage(alloc, drift=True)

    def measure_usage(self: World, alloc: Alloc, drift: bool = False) -> None:
        """A running task's usage from its start on (a fifth of its CPU, two fifths of its
        memory), wandering at each tick: a client reports RSS from the first stats read, not
        zero until the lab's next tick."""
        rng = self.usage_rng
        job = self.jobs.get(alloc.job_id)
        group = job.group(alloc.task_group) if job else None
        tasks = {t.name: t for t in group.tasks} if group else {}
        for name in alloc.task_states:
            if not drift and name in alloc.usage:
                continue
            spec = tasks.get(name)
            cap_cpu = float(spec.cpu if spec else 100)
            cap_mem = (spec.memory if spec else 128) * 1024 * 1024
            cpu, mem = alloc.usage.get(name, (cap_cpu * 0.2, int(cap_mem * 0.4)))
            if drift:
                cpu = min(cap_cpu * 0.95, max(cap_cpu * 0.01, cpu + rng.uniform(-0.1, 0.1)
                                              * cap_cpu))
                mem = int(min(cap_mem * 0.95, max(cap_mem * 0.1, mem + rng.uniform(
                    -0.03, 0.03) * cap_mem)))
            alloc.usage[name] = (cpu, mem)
