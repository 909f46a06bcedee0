"""Nomad in depth, for the source, the cockpit and `jamtui job run`: namespaces,
deployments (promote, fail, pause, resume), job versions with readable diffs and revert,
parse → plan → run with `EnforceIndex`, evaluations and why a job is pending, allocation and
node statistics.

The pure functions (decoders, `pending_reasons`, `diff_lines`, `plan_lines`) take Nomad's
documented JSON; `NomadDepth` is a mixin of `NomadSource` for the requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests

from ..model import Deployment, DeploymentGroup, Kind, Namespace
from . import jsonload
from .base import BackendError, http_problem
from .tls import PlainGet

if TYPE_CHECKING:
    from ..config import NomadConfig
    from ..store import Store
    from .tls import TLSSettings

MIB = 1024 * 1024


# -- decoding (pure) -----------------------------------------------------------------------


def decode_deployment(d: dict[str, Any]) -> Deployment:
    """api-docs/deployments: a Deployment."""
    groups = tuple(
        DeploymentGroup(
            name=name,
            desired_total=int(s.get("DesiredTotal") or 0),
            desired_canaries=int(s.get("DesiredCanaries") or 0),
            placed_canaries=len(s.get("PlacedCanaries") or ()),
            placed=int(s.get("PlacedAllocs") or 0),
            healthy=int(s.get("HealthyAllocs") or 0),
            unhealthy=int(s.get("UnhealthyAllocs") or 0),
            promoted=bool(s.get("Promoted")),
            auto_promote=bool(s.get("AutoPromote")),
        )
        for name, s in sorted((d.get("TaskGroups") or {}).items())
    )
    return Deployment(
        id=str(d.get("ID", "")), job_id=str(d.get("JobID", "")),
        namespace=str(d.get("Namespace") or "default"),
        job_version=int(d.get("JobVersion") or 0), status=str(d.get("Status", "")),
        status_description=str(d.get("StatusDescription", "")), groups=groups,
        create_index=int(d.get("CreateIndex") or 0),
        modify_index=int(d.get("ModifyIndex") or 0),
    )


def decode_namespace(d: dict[str, Any]) -> Namespace:
    return Namespace(str(d.get("Name", "")), str(d.get("Description") or ""))


def _size(mib: float) -> str:
    if mib >= 1024 and mib % 1024 == 0:
        return f"{int(mib // 1024)} GiB"
    if mib >= 1024:
        return f"{mib / 1024:.1f} GiB"
    return f"{int(mib)} MiB"


def _nodes(n: int) -> str:
    return f"{n} node{'' if n == 1 else 's'}"


def pending_reasons(metric: dict[str, Any], need_mib: int | None = None,
                    need_mhz: int | None = None) -> list[str]:
    """A FailedTGAllocs metric (api-docs/evaluations: AllocMetric) in words: why the
    scheduler found no node. `need_*` are what one allocation of the group asks for."""
    out: list[str] = []
    evaluated = int(metric.get("NodesEvaluated") or 0)
    available = metric.get("NodesAvailable") or {}
    if evaluated == 0:
        empty = sorted(dc for dc, n in available.items() if not n)
        if empty:
            out.append("no node in datacenter " + ", ".join(empty))
        elif int(metric.get("NodesInPool") or 0) == 0:
            out.append("no ready, eligible node in the node pool")
        else:
            out.append("no node was evaluated")
    for constraint, n in sorted((metric.get("ConstraintFiltered") or {}).items()):
        if constraint == "missing drivers":
            out.append(f"{_nodes(int(n))} lack the task driver")
        else:
            out.append(f"constraint `{constraint}` filtered {_nodes(int(n))}")
    for klass, n in sorted((metric.get("ClassFiltered") or {}).items()):
        out.append(f"node class {klass} filtered {_nodes(int(n))}")
    dims = metric.get("DimensionExhausted") or {}
    for dim, n in sorted(dims.items()):
        n = int(n)
        if dim == "memory":
            what = f"{_size(need_mib)} of free memory" if need_mib else "enough free memory"
        elif dim == "cpu":
            what = f"{need_mhz} MHz of free CPU" if need_mhz else "enough free CPU"
        else:
            what = f"room for {dim}"
        out.append(f"no node has {what} ({_nodes(n)} exhausted on {dim})")
    exhausted = int(metric.get("NodesExhausted") or 0)
    if exhausted and not dims:
        out.append(f"{_nodes(exhausted)} exhausted")
    for quota in metric.get("QuotaExhausted") or []:
        out.append(f"quota exhausted: {quota}")
    if not out:
        out.append("the scheduler found no node (no reason given)")
    coalesced = int(metric.get("CoalescedFailures") or 0)
    if coalesced:
        out[-1] += f"; {coalesced + 1} allocations wait"
    return out


def group_needs(job: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Per group what one allocation asks for: (MiB, MHz), from a full Job."""
    out = {}
    for g in job.get("TaskGroups") or []:
        mib = mhz = 0
        for t in g.get("Tasks") or []:
            res = t.get("Resources") or {}
            mib += int(res.get("MemoryMB") or 0)
            mhz += int(res.get("CPU") or 0)
        out[str(g.get("Name", ""))] = (mib, mhz)
    return out


def why_pending(evals: list[dict[str, Any]], job: dict[str, Any] | None = None
                ) -> dict[str, list[str]]:
    """Per task group, why it has queued allocations: the newest evaluation that reported
    FailedTGAllocs while a blocked evaluation still waits (api-docs/jobs#list-job-
    evaluations)."""
    if not any(e.get("Status") == "blocked" for e in evals):
        return {}
    needs = group_needs(job or {})
    newest = sorted((e for e in evals if e.get("FailedTGAllocs")),
                    key=lambda e: int(e.get("ModifyIndex") or 0), reverse=True)
    if not newest:
        return {}
    out = {}
    for group, metric in sorted((newest[0].get("FailedTGAllocs") or {}).items()):
        mib, mhz = needs.get(group, (0, 0))
        out[group] = pending_reasons(metric, mib or None, mhz or None)
    return out


# -- diffs in words (as `nomad job history -p` / `nomad job plan`) ---------------------------

_MARK = {"Added": "+", "Deleted": "-", "Edited": "~", "None": " "}


def _field_line(f: dict[str, Any], indent: str) -> str:
    kind = str(f.get("Type", "Edited"))
    name = str(f.get("Name", ""))
    old, new = str(f.get("Old", "")), str(f.get("New", ""))
    if kind == "Added":
        text = f'{name}: "{new}"'
    elif kind == "Deleted":
        text = f'{name}: "{old}"'
    else:
        text = f'{name}: "{old}" => "{new}"'
    return f"{indent}{_MARK.get(kind, '~')} {text}"


def _object_lines(o: dict[str, Any], indent: str) -> list[str]:
    kind = str(o.get("Type", "Edited"))
    out = [f"{indent}{_MARK.get(kind, '~')} {o.get('Name', '')} {{"]
    for f in o.get("Fields") or []:
        out.append(_field_line(f, indent + "  "))
    for sub in o.get("Objects") or []:
        out.extend(_object_lines(sub, indent + "  "))
    out.append(f"{indent}  }}")
    return out


def diff_lines(diff: dict[str, Any] | None) -> list[str]:
    """A JobDiff (nomad/structs/diff.go) as the CLI prints it: `+/-/~` per field."""
    if not diff or diff.get("Type") == "None":
        return ["(no changes)"]
    out = [f'{_MARK.get(str(diff.get("Type")), "~")} Job: "{diff.get("ID", "")}"']
    for f in diff.get("Fields") or []:
        out.append(_field_line(f, ""))
    for o in diff.get("Objects") or []:
        out.extend(_object_lines(o, ""))
    for g in diff.get("TaskGroups") or []:
        kind = str(g.get("Type", "None"))
        updates = g.get("Updates") or {}
        tail = ""
        if updates:
            tail = " (" + ", ".join(f"{n} {k}" for k, n in sorted(updates.items())) + ")"
        out.append(f'{_MARK.get(kind, " ")} Task Group: "{g.get("Name", "")}"{tail}')
        for f in g.get("Fields") or []:
            out.append(_field_line(f, "  "))
        for o in g.get("Objects") or []:
            out.extend(_object_lines(o, "  "))
        for t in g.get("Tasks") or []:
            tkind = str(t.get("Type", "None"))
            notes = ", ".join(t.get("Annotations") or [])
            note = f" ({notes})" if notes else ""
            out.append(f'  {_MARK.get(tkind, " ")} Task: "{t.get("Name", "")}"{note}')
            for f in t.get("Fields") or []:
                out.append(_field_line(f, "    "))
            for o in t.get("Objects") or []:
                out.extend(_object_lines(o, "    "))
    return out


def plan_lines(plan: dict[str, Any], job: dict[str, Any] | None = None) -> list[str]:
    """A plan (api-docs/jobs#create-job-plan): the diff, then the scheduler's dry run."""
    out = diff_lines(plan.get("Diff"))
    out.append("")
    out.append("Scheduler dry-run:")
    failed = plan.get("FailedTGAllocs") or {}
    if not failed:
        out.append("- All tasks successfully allocated.")
    needs = group_needs(job or {})
    for group, metric in sorted(failed.items()):
        mib, mhz = needs.get(group, (0, 0))
        out.append(f'- WARNING: Failed to place all allocations of task group "{group}":')
        out.extend(f"    {r}" for r in pending_reasons(metric, mib or None, mhz or None))
    for group, u in sorted(((plan.get("Annotations") or {}).get("DesiredTGUpdates")
                            or {}).items()):
        parts = [f"{n} {k}" for k, n in (
            ("create", u.get("Place")), ("destroy", u.get("Stop")),
            ("in-place", u.get("InPlaceUpdate")),
            ("create/destroy", u.get("DestructiveUpdate")), ("canary", u.get("Canary")),
            ("migrate", u.get("Migrate")), ("ignore", u.get("Ignore"))) if n]
        out.append(f'  group "{group}": ' + (", ".join(parts) or "no change"))
    return out


def spec_text(job: dict[str, Any]) -> str:
    """A job's spec as HCL-like text (the parts a reader wants), for the detail and `s`."""
    def val(v: Any) -> str:
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return str(v)

    lines = [f'job {val(job.get("ID", ""))} {{']
    lines.append(f'  namespace   = {val(job.get("Namespace", "default"))}')
    lines.append(f'  type        = {val(job.get("Type", "service"))}')
    lines.append(f'  datacenters = {val(list(job.get("Datacenters") or []))}')
    for c in job.get("Constraints") or []:
        lines += ["  constraint {", f'    attribute = {val(c.get("LTarget", ""))}',
                  f'    operator  = {val(c.get("Operand", "="))}',
                  f'    value     = {val(c.get("RTarget", ""))}', "  }"]
    for k, v in sorted((job.get("Meta") or {}).items()):
        lines.append(f"  meta {{ {k} = {val(v)} }}")
    for g in job.get("TaskGroups") or []:
        lines.append(f'  group {val(g.get("Name", ""))} {{')
        lines.append(f'    count = {g.get("Count", 1)}')
        u = g.get("Update")
        if u:
            lines.append(f'    update {{ max_parallel = {u.get("MaxParallel", 1)}  canary = '
                         f'{u.get("Canary", 0)}  auto_promote = '
                         f'{val(bool(u.get("AutoPromote")))} }}')
        for s in g.get("Services") or []:
            lines.append(f'    service {{ name = {val(s.get("Name", ""))}  port = '
                         f'{val(s.get("PortLabel", ""))}  tags = {val(s.get("Tags") or [])} }}')
        for t in g.get("Tasks") or []:
            lines.append(f'    task {val(t.get("Name", ""))} {{')
            lines.append(f'      driver = {val(t.get("Driver", ""))}')
            cfg = t.get("Config") or {}
            if cfg:
                lines.append("      config {")
                lines += [f"        {k} = {val(v)}" for k, v in sorted(cfg.items())]
                lines.append("      }")
            res = t.get("Resources") or {}
            lines.append(f'      resources {{ cpu = {res.get("CPU", 0)}  memory = '
                         f'{res.get("MemoryMB", 0)} }}')
            lines.append("    }")
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def sparkline(values: Iterable[float]) -> str:
    bars = "▁▂▃▄▅▆▇█"
    vals = list(values)
    if not vals:
        return ""
    top = max(vals) or 1.0
    return "".join(bars[min(7, int(v / top * 7))] for v in vals)


def decode_alloc_stats(d: dict[str, Any]) -> dict[str, tuple[float, int]]:
    """api-docs/client#read-allocation-statistics: per task (CPU MHz, memory bytes); the
    memory is RSS where measured, else Usage (cgroups v2 reports Usage only)."""
    out = {}
    for name, t in sorted((d.get("Tasks") or {}).items()):
        ru = t.get("ResourceUsage") or {}
        mem = ru.get("MemoryStats") or {}
        cpu = ru.get("CpuStats") or {}
        measured = mem.get("Measured") or []
        rss = int(mem.get("RSS") or 0) if "RSS" in measured else int(mem.get("Usage") or 0)
        out[name] = (float(cpu.get("TotalTicks") or 0.0), rss)
    return out


# -- the mixin -----------------------------------------------------------------------------


class NomadDepth:
    """Requests of NomadSource for namespaces, deployments, versions, plans and stats."""

    if TYPE_CHECKING:  # what NomadSource (and its Source base) provides
        cfg: NomadConfig
        store: Store
        session: requests.Session
        verify: Any
        tls: TLSSettings
        timeout: float
        address: str
        hint: str
        requests_made: int

        def _get(self, path: str, params: dict[str, str] | None = None
                 ) -> requests.Response: ...
        def _check(self, resp: requests.Response, ok: tuple[int, ...] = (200,)) -> None: ...
        def refuse(self, feature: str, capability: str, message: str,
                   kind: str = "") -> None: ...
        def permit(self, feature: str) -> None: ...

    # -- plumbing ----------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.cfg.address.rstrip('/')}{path}"

    def _ns_for_job(self, job_id: str) -> str:
        """The namespace of a job: the store knows it; else the configured one."""
        job = self.store.get(Kind.JOB, job_id)
        if job is not None:
            return str(job.namespace)
        ns = self.cfg.namespace or "default"
        return "default" if ns == "*" else ns

    def _request(self, method: str, path: str, body: Any = None,
                 params: dict[str, str] | None = None, ok: tuple[int, ...] = (200,)) -> Any:
        self.requests_made += 1
        resp = self.session.request(method, self._url(path), json=body, params=params,
                                    headers=self.cfg.auth_headers(), verify=self.verify,
                                    cert=self.tls.cert, timeout=self.timeout)
        if resp.status_code not in ok:
            raise BackendError(http_problem("nomad", self.address, resp.status_code,
                                            resp.text, self.hint))
        return resp.json() if resp.content else {}

    def _list_ns(self) -> dict[str, str]:
        return {"namespace": self.cfg.namespace or "default"}

    # -- reads for the store -------------------------------------------------------------------

    def read_namespaces(self) -> None:
        """`GET /v1/namespaces`; a token without it turns off the namespace list only."""
        resp = self._get("/v1/namespaces")
        if resp.status_code == 403 and "not found" not in resp.text:
            self.refuse("namespaces", "namespace:list-jobs", "Nomad namespaces: not "
                        "permitted; the configured namespace only", Kind.NAMESPACE.value)
            return
        if resp.status_code == 404:  # a Nomad before 1.0
            self.store.replace(Kind.NAMESPACE, [Namespace("default")])
            return
        self._check(resp)
        self.permit("namespaces")
        self.store.replace(Kind.NAMESPACE, [decode_namespace(n) for n in resp.json() or []])

    def read_deployments(self) -> None:
        resp = self._get("/v1/deployments", params=self._list_ns())
        if resp.status_code == 403 and "not found" not in resp.text:
            self.refuse("deployments", "namespace:read-job", "Nomad deployments: not "
                        "permitted (the token lacks read-job)", Kind.DEPLOYMENT.value)
            return
        self._check(resp)
        self.permit("deployments")
        self.store.replace(Kind.DEPLOYMENT, [decode_deployment(d) for d in resp.json() or []])

    def apply_deployment(self, payload: dict[str, Any]) -> None:
        raw = payload.get("Deployment")
        if isinstance(raw, dict) and raw.get("ID"):
            dep = decode_deployment(raw)
            current = self.store.get(Kind.DEPLOYMENT, dep.id)
            if current is None or current.modify_index <= dep.modify_index:
                self.store.upsert(Kind.DEPLOYMENT, dep)

    # -- reads on demand ------------------------------------------------------------------------

    def job_spec(self, job_id: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/v1/job/{job_id}",
                                  params={"namespace": self._ns_for_job(job_id)}))

    def job_versions(self, job_id: str) -> dict[str, Any]:
        """`/v1/job/:id/versions?diffs=true`: Versions newest first, Diffs between them."""
        return dict(self._request("GET", f"/v1/job/{job_id}/versions", params={
            "diffs": "true", "namespace": self._ns_for_job(job_id)}))

    def job_evaluations(self, job_id: str) -> list[dict[str, Any]]:
        return list(self._request("GET", f"/v1/job/{job_id}/evaluations",
                                  params={"namespace": self._ns_for_job(job_id)}) or [])

    def job_pending_reasons(self, job_id: str) -> dict[str, list[str]]:
        evals = self.job_evaluations(job_id)
        if not any(e.get("Status") == "blocked" for e in evals):
            return {}
        return why_pending(evals, self.job_spec(job_id))

    def alloc_stats(self, alloc_id: str) -> dict[str, tuple[float, int]]:
        return decode_alloc_stats(self._small_json(f"/v1/client/allocation/{alloc_id}/stats"))

    def node_stats(self, node_id: str) -> dict[str, Any]:
        return dict(self._small_json("/v1/client/stats", {"node_id": node_id}))

    def _small_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        """`_request("GET", path, params=params)`'s answer, through `_small`."""
        self.requests_made += 1
        status, body = self._small(path, params)
        if status != 200:
            raise BackendError(http_problem("nomad", self.address, status,
                                            body.decode("utf-8", "replace"), self.hint))
        return jsonload.loads(body) if body else {}

    @cached_property
    def _plain(self) -> PlainGet | None:
        """The session's GETs with the token (`tls.PlainGet`), made once."""
        return PlainGet.of(self.session, self.cfg.address, verify=self.verify,
                           cert=self.tls.cert, headers=self.cfg.auth_headers(),
                           hooks_unneeded=True)

    def _small(self, path: str, params: dict[str, str] | None = None,
               timeout: float | None = None) -> tuple[int, bytes]:
        """(status, body) of a small GET asked again and again (the stats of the rows on
        screen, the liveness probe), as the session sends it with the token, through the
        session's own pool without requests' work around each request (`tls.PlainGet`:
        0.8 of its ~1 ms of CPU); else (a proxy, a redirect) through the session."""
        timeout = self.timeout if timeout is None else timeout
        got = self._plain.get(f"{path}?{urlencode(params)}" if params else path,
                              timeout) if self._plain else None
        if got is not None:
            return got[0], got[3]
        resp = self.session.get(self._url(path), params=params,  # (a redirect: it follows)
                                headers=self.cfg.auth_headers(), verify=self.verify,
                                cert=self.tls.cert, timeout=timeout)
        return resp.status_code, resp.content

    # -- actions ----------------------------------------------------------------------------

    def promote(self, dep_id: str, groups: list[str] | None = None
                ) -> dict[str, Any]:
        body: dict[str, Any] = {"DeploymentID": dep_id}
        body.update({"Groups": groups} if groups else {"All": True})
        return dict(self._request("POST", f"/v1/deployment/promote/{dep_id}", body))

    def fail_deployment(self, dep_id: str) -> dict[str, Any]:
        return dict(self._request("POST", f"/v1/deployment/fail/{dep_id}",
                                  {"DeploymentID": dep_id}))

    def pause_deployment(self, dep_id: str, pause: bool) -> dict[str, Any]:
        return dict(self._request("POST", f"/v1/deployment/pause/{dep_id}",
                                  {"DeploymentID": dep_id, "Pause": pause}))

    def revert(self, job_id: str, version: int, prior: int) -> dict[str, Any]:
        """`/v1/job/:id/revert` with EnforcePriorVersion: refused if the job moved on."""
        ns = self._ns_for_job(job_id)
        return dict(self._request("POST", f"/v1/job/{job_id}/revert", {
            "JobID": job_id, "JobVersion": version, "EnforcePriorVersion": prior,
            "Namespace": ns}, params={"namespace": ns}))

    # -- plan and run ------------------------------------------------------------------------

    def parse_job(self, hcl: str) -> dict[str, Any]:
        return dict(self._request("POST", "/v1/jobs/parse",
                                  {"JobHCL": hcl, "Canonicalize": True}))

    def plan_job(self, job: dict[str, Any]) -> dict[str, Any]:
        ns = str(job.get("Namespace") or "default")
        return dict(self._request("POST", f"/v1/job/{job['ID']}/plan",
                                  {"Job": job, "Diff": True}, params={"namespace": ns}))

    def run_checked(self, job: dict[str, Any], modify_index: int
                    ) -> dict[str, Any]:
        """Register with EnforceIndex (as `nomad job run -check-index`)."""
        ns = str(job.get("Namespace") or "default")
        self.requests_made += 1
        resp = self.session.post(self._url("/v1/jobs"), json={
            "Job": job, "EnforceIndex": True, "JobModifyIndex": modify_index},
            params={"namespace": ns}, headers=self.cfg.auth_headers(), verify=self.verify,
            cert=self.tls.cert, timeout=self.timeout)
        if "Enforcing job modify index" in resp.text and not resp.ok:
            raise BackendError(f"the job changed since it was planned, so it was not run "
                               f"(Nomad: {' '.join(resp.text.split())[:200]}); plan again")
        if not resp.ok:
            raise BackendError(http_problem("nomad", self.address, resp.status_code,
                                            resp.text, self.hint))
        return dict(resp.json())

    def follow_run(self, job_id: str, eval_id: str, namespace: str,
                   say: Callable[[str], None], timeout: float = 120.0,
                   stop: threading.Event | None = None) -> bool:
        """Follow the evaluation, then the deployment it made, to the end; True when the
        job's allocations were placed and any deployment succeeded. A placement that
        failed is said with its reasons and ends the follow (the allocations wait for room:
        a blocked evaluation places them when it comes)."""
        params = {"namespace": namespace}
        deadline = time.monotonic() + timeout
        stop = stop or threading.Event()
        status = ""
        ev: dict[str, Any] = {}
        while time.monotonic() < deadline:
            ev = self._request("GET", f"/v1/evaluation/{eval_id}", params=params)
            if ev.get("Status") != status:
                status = str(ev.get("Status"))
                say(f'evaluation {eval_id[:8]}: {status}')
            if status in ("complete", "failed", "canceled") or stop.wait(0.3):
                break
        if status != "complete":
            say(f"evaluation did not complete ({status or 'no answer'})")
            return False
        job = self.job_spec_ns(job_id, namespace)
        reasons = why_pending([ev] + ([{"Status": "blocked"}] if ev.get("BlockedEval")
                                      else []), job)
        for group, words in reasons.items():
            for w in words:
                say(f'group "{group}" is pending: {w}')
        if reasons:
            say("the allocations wait in a blocked evaluation until there is room")
            return False
        dep = self._request("GET", f"/v1/job/{job_id}/deployment", params=params)
        if not dep or int(dep.get("JobVersion", -1)) != int(job.get("Version", -2)):
            return not reasons
        seen = ""
        while time.monotonic() < deadline:
            dep = self._request("GET", f"/v1/deployment/{dep['ID']}", params=params)
            d = decode_deployment(dep)
            line = f"deployment {d.short_id}: {d.status}: {d.status_description}; " + "; ".join(
                f"{g.name} {g.healthy}/{g.desired_total} healthy"
                + (f", canaries {g.placed_canaries}/{g.desired_canaries}"
                   if g.desired_canaries else "") for g in d.groups)
            if line != seen:
                say(line)
                seen = line
            if not d.active:
                return d.status == "successful" and not reasons
            if d.needs_promotion and "requires manual promotion" in d.status_description:
                say(f"the canaries wait for promotion: jamtui's :deployments → p, or "
                    f"nomad deployment promote {d.short_id}")
                return not reasons
            if stop.wait(0.5):
                return False
        say("gave up waiting for the deployment")
        return False

    def job_spec_ns(self, job_id: str, namespace: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/v1/job/{job_id}", params={"namespace": namespace}))


def problem_text(exc: BaseException) -> str:
    if isinstance(exc, requests.RequestException):
        return f"{type(exc).__name__}: {exc}"
    return str(exc)
