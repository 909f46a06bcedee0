"""The lab's Nomad API beyond lists and restarts: namespaces, deployments, job versions and
revert, parse / plan / validate, evaluations and client statistics.

Each handler names the developer.hashicorp.com/nomad/api-docs page whose shapes it follows.
Request bodies are read as Go's encoding/json reads them: struct field names match
case-insensitively (`{"job": …}` is `{"Job": …}`); map keys (Meta, Config) stay as sent.
"""

from __future__ import annotations

import re
import time
from typing import Any

from aiohttp import web

from .model import (
    Alloc,
    Constraint,
    Deployment,
    Evaluation,
    Job,
    Namespace,
    NomadNode,
    UpdateSpec,
)
from .scheduler import MHZ_PER_CORE
from .world import SimError, World

# the fields of api.Job and its parts the lab reads, by their Go names
_FIELDS = re.findall(r"\S+", (
    "Job ID Name Type Namespace Region Datacenters NodePool Priority Meta Constraints "
    "TaskGroups Tasks Count Networks DynamicPorts ReservedPorts Label Value To Services "
    "PortLabel Tags Connect SidecarService Proxy Upstreams DestinationName LocalBindPort "
    "Checks Path Type Interval Timeout Driver Config Resources CPU MemoryMB Update "
    "MaxParallel Canary AutoPromote AutoRevert MinHealthyTime HealthyDeadline "
    "ProgressDeadline LTarget RTarget Operand Periodic ParameterizedJob Stop "
    "EnforceIndex JobModifyIndex PolicyOverride Diff JobHCL Canonicalize HCLv1 Variables "
    "JobID JobVersion EnforcePriorVersion Groups All Pause PreserveCounts Mode"
))
_CANON = {f.lower(): f for f in _FIELDS}
_MAPS = {"Meta", "Config"}  # map[string]…: keys kept as sent


def canonical(value: Any, parent: str = "") -> Any:
    """Go encoding/json: an object's keys match struct fields whatever their case."""
    if isinstance(value, dict):
        if parent in _MAPS:
            return dict(value)
        out: dict[str, Any] = {}
        for k, v in value.items():
            name = _CANON.get(str(k).lower(), k) if isinstance(k, str) else k
            if name not in out or k == name:
                out[name] = canonical(v, name)
        return out
    if isinstance(value, list):
        return [canonical(v, parent) for v in value]
    return value


def job_from_api(spec: Any) -> Job:
    """An api.Job (canonical keys) into the lab's Job, with constraints and update."""
    from .nomad import job_from_spec
    if not isinstance(spec, dict) or not spec:
        raise SimError(400, "Job must be specified")
    if not spec.get("ID"):
        raise SimError(400, "Job ID hasn't been provided")
    job = job_from_spec(spec)
    job.constraints = _constraints(spec.get("Constraints"))
    job.update = _update(spec.get("Update"))
    job.periodic = bool(spec.get("Periodic"))
    job.parameterized = bool(spec.get("ParameterizedJob"))
    for g, raw in zip(job.groups, spec.get("TaskGroups") or [], strict=False):
        g.update = _update(raw.get("Update"))
        g.constraints = _constraints(raw.get("Constraints")) + [
            c for t in raw.get("Tasks") or [] for c in _constraints(t.get("Constraints"))]
    return job


def _constraints(raw: Any) -> list[Constraint]:
    return [Constraint(str(c.get("LTarget") or ""), str(c.get("RTarget") or ""),
                       str(c.get("Operand") or "=")) for c in raw or [] if isinstance(c, dict)]


def _update(raw: Any) -> UpdateSpec | None:
    if not isinstance(raw, dict) or not raw:
        return None
    d = UpdateSpec()
    return UpdateSpec(
        max_parallel=int(raw.get("MaxParallel", d.max_parallel) or 0),
        canary=int(raw.get("Canary") or 0), auto_promote=bool(raw.get("AutoPromote")),
        auto_revert=bool(raw.get("AutoRevert")),
        min_healthy_time_ns=int(raw.get("MinHealthyTime") or d.min_healthy_time_ns),
        healthy_deadline_ns=int(raw.get("HealthyDeadline") or d.healthy_deadline_ns),
        progress_deadline_ns=int(raw.get("ProgressDeadline") or d.progress_deadline_ns))


def update_json(u: UpdateSpec | None) -> dict[str, Any] | None:
    """job-specification/update as api.UpdateStrategy."""
    if u is None:
        return None
    return {"Stagger": 30 * 10**9, "MaxParallel": u.max_parallel, "HealthCheck": "checks",
            "MinHealthyTime": u.min_healthy_time_ns, "HealthyDeadline": u.healthy_deadline_ns,
            "ProgressDeadline": u.progress_deadline_ns, "AutoRevert": u.auto_revert,
            "AutoPromote": u.auto_promote, "Canary": u.canary}


def constraints_json(cs: list[Constraint]) -> list[dict[str, str]] | None:
    return [{"LTarget": c.ltarget, "RTarget": c.rtarget, "Operand": c.operand}
            for c in cs] or None


# -- HCL: the subset of the job specification the lab's jobs use ---------------------------


def _unquote(v: Any) -> Any:
    if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"':
        return v[1:-1]
    if isinstance(v, list):
        return [_unquote(x) for x in v]
    if isinstance(v, dict):
        return {_unquote(k): _unquote(x) for k, x in v.items() if k != "__is_block__"}
    return v


def _duration(v: Any) -> int:
    """Go's time.ParseDuration for what job files write ("30s", "5m", "1h30m")."""
    if isinstance(v, int | float):
        return int(v)
    units = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
    total = 0
    parts = re.findall(r"([0-9.]+)(ns|us|ms|s|m|h)", str(v))
    if not parts or "".join(a + b for a, b in parts) != str(v):
        raise SimError(400, f'time: invalid duration "{v}"')
    for num, unit in parts:
        total += int(float(num) * units[unit])
    return total


def _blocks(body: dict[str, Any], name: str) -> list[tuple[str, dict[str, Any]]]:
    """Labelled blocks (`group "web" { … }`) as (label, body)."""
    out = []
    for item in body.get(name) or []:
        for label, inner in item.items():
            if label != "__is_block__":
                out.append((label, inner if isinstance(inner, dict) else {}))
    return out


def _block(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    items = body.get(name) or []
    return items[0] if items else None


def _hcl_constraints(body: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for c in body.get("constraint") or []:
        out.append({"LTarget": str(c.get("attribute", "")), "RTarget": str(c.get("value", "")),
                    "Operand": str(c.get("operator", "="))})
    return out


def _hcl_update(body: dict[str, Any] | None) -> dict[str, Any] | None:
    if body is None:
        return None
    d = UpdateSpec()
    return {"MaxParallel": int(body.get("max_parallel", d.max_parallel)),
            "Canary": int(body.get("canary", 0)),
            "AutoPromote": bool(body.get("auto_promote", False)),
            "AutoRevert": bool(body.get("auto_revert", False)),
            "MinHealthyTime": _duration(body.get("min_healthy_time", d.min_healthy_time_ns)),
            "HealthyDeadline": _duration(body.get("healthy_deadline", d.healthy_deadline_ns)),
            "ProgressDeadline": _duration(body.get("progress_deadline",
                                                   d.progress_deadline_ns))}


def parse_hcl(text: str) -> dict[str, Any]:
    """A job file (HCL2) into an api.Job, for the blocks the lab models: job, group, task,
    network/port, service/check, resources, update, constraint, meta, config."""
    import hcl2
    try:
        raw = _unquote(hcl2.loads(text))
    except Exception as exc:  # the parser's own words
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SimError(400, f"error parsing: {first}") from None
    jobs = _blocks(raw, "job")
    if len(jobs) != 1:
        raise SimError(400, "error parsing: 'job' block: expected exactly one job block"
                       if jobs else "error parsing: 'job' block: missing job block")
    job_id, body = jobs[0]
    groups = []
    for gname, g in _blocks(body, "group"):
        net = _block(g, "network") or {}
        dynamic, reserved = [], []
        for label, p in _blocks(net, "port"):
            if "static" in p:
                reserved.append({"Label": label, "Value": int(p["static"]), "To": 0})
            else:
                dynamic.append({"Label": label, "Value": 0, "To": int(p.get("to", 0))})
        services = []
        for s in g.get("service") or []:
            checks = [{"Type": c.get("type", ""), "Path": c.get("path", ""),
                       "Interval": _duration(c.get("interval", "10s")),
                       "Timeout": _duration(c.get("timeout", "2s"))}
                      for c in s.get("check") or []]
            services.append({"Name": s.get("name", ""), "PortLabel": s.get("port", ""),
                             "Tags": list(s.get("tags") or []), "Checks": checks or None})
        tasks = []
        for tname, t in _blocks(g, "task"):
            res = _block(t, "resources") or {}
            tasks.append({"Name": tname, "Driver": t.get("driver", ""),
                          "Config": _block(t, "config") or {},
                          "Constraints": _hcl_constraints(t) or None,
                          "Resources": {"CPU": int(res.get("cpu", 100)),
                                        "MemoryMB": int(res.get("memory", 300))}})
        groups.append({
            "Name": gname, "Count": int(g.get("count", 1)),
            "Constraints": _hcl_constraints(g) or None,
            "Update": _hcl_update(_block(g, "update")),
            "Networks": [{"Mode": net.get("mode", "host"), "DynamicPorts": dynamic or None,
                          "ReservedPorts": reserved or None}] if net else None,
            "Services": services or None, "Tasks": tasks,
        })
    return {
        "ID": job_id, "Name": job_id, "Type": body.get("type", "service"),
        "Namespace": body.get("namespace", "default"), "Region": body.get("region", "global"),
        "Datacenters": list(body.get("datacenters") or ["*"]),
        "NodePool": body.get("node_pool", "default"),
        "Priority": int(body.get("priority", 50)),
        "Constraints": _hcl_constraints(body) or None,
        "Update": _hcl_update(_block(body, "update")),
        "Meta": _block(body, "meta"), "TaskGroups": groups,
    }


# -- diffs (nomad/structs/diff.go: JobDiff, TaskGroupDiff, TaskDiff, ObjectDiff, FieldDiff) --

_SKIP = {"Status", "StatusDescription", "Stable", "Version", "SubmitTime", "CreateIndex",
         "ModifyIndex", "JobModifyIndex", "TaskGroups", "Tasks"}


def _flat(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def _kind(old: Any, new: Any) -> str:
    if old is None or old == {} or old == []:
        return "None" if new in (None, {}, []) else "Added"
    if new is None or new == {} or new == []:
        return "Deleted"
    return "Edited" if old != new else "None"


def _object_diff(name: str, old: dict[str, Any] | None, new: dict[str, Any] | None
                 ) -> dict[str, Any] | None:
    fields: list[dict[str, Any]] = []
    objects: list[dict[str, Any]] = []
    old, new = old or {}, new or {}
    for key in sorted(set(old) | set(new)):
        if key in _SKIP:
            continue
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) or isinstance(b, dict):
            sub = _object_diff(key, a if isinstance(a, dict) else None,
                               b if isinstance(b, dict) else None)
            if sub:
                objects.append(sub)
        elif isinstance(a, list) or isinstance(b, list):
            la, lb = list(a or []), list(b or [])
            if all(not isinstance(x, dict | list) for x in la + lb):
                for x in la:
                    if x not in lb:
                        fields.append(_field("Deleted", key, x, None))
                for x in lb:
                    if x not in la:
                        fields.append(_field("Added", key, None, x))
            else:
                for i in range(max(len(la), len(lb))):
                    sub = _object_diff(key, la[i] if i < len(la) else None,
                                       lb[i] if i < len(lb) else None)
                    if sub:
                        objects.append(sub)
        else:
            fields.append(_field(_kind(a, b), key, a, b))
    if not fields and not objects:
        return None
    return {"Type": _kind(old, new) if _kind(old, new) != "None" else "Edited", "Name": name,
            "Fields": fields or None, "Objects": objects or None}


def _field(kind: str, name: str, old: Any, new: Any) -> dict[str, Any]:
    return {"Type": kind if kind != "None" else "Edited", "Name": name, "Old": _flat(old),
            "New": _flat(new), "Annotations": None}


def _named(items: list[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    return {i.get("Name", ""): i for i in items or []}


def job_diff(old: dict[str, Any] | None, new: dict[str, Any] | None,
             updates: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """Two api.Job objects' differences; with a plan's updates, each group's Updates and
    each task's annotations (scheduler/annotate.go)."""
    top = _object_diff("Job", old, new) or {"Fields": None, "Objects": None}
    groups = []
    og, ng = _named((old or {}).get("TaskGroups")), _named((new or {}).get("TaskGroups"))
    for name in sorted(set(og) | set(ng)):
        a, b = og.get(name), ng.get(name)
        d = _object_diff(name, a, b) or {"Type": "None", "Fields": None, "Objects": None}
        tasks = []
        ot, nt = _named((a or {}).get("Tasks")), _named((b or {}).get("Tasks"))
        for tname in sorted(set(ot) | set(nt)):
            td = _object_diff(tname, ot.get(tname), nt.get(tname))
            kind = td["Type"] if td else "None"
            tasks.append({"Type": kind, "Name": tname, "Fields": td and td["Fields"],
                          "Objects": td and td["Objects"],
                          "Annotations": ["forces create/destroy update"]
                          if kind == "Edited" else None})
        kind = "Added" if a is None else "Deleted" if b is None else (
            "Edited" if d["Type"] != "None" or any(t["Type"] != "None" for t in tasks)
            else "None")
        entry = {"Type": kind, "Name": name, "Fields": d["Fields"], "Objects": d["Objects"],
                 "Tasks": tasks or None, "Updates": None}
        if updates is not None and name in updates:
            u = updates[name]
            words = {"Ignore": "ignore", "Place": "create", "Stop": "destroy",
                     "Migrate": "migrate", "Canary": "canary",
                     "InPlaceUpdate": "in-place update",
                     "DestructiveUpdate": "create/destroy update"}
            entry["Updates"] = {words[k]: v for k, v in u.items() if v and k in words} or None
        groups.append(entry)
    kind = "Added" if old is None else "Deleted" if new is None else (
        "Edited" if top.get("Fields") or top.get("Objects")
        or any(g["Type"] != "None" for g in groups) else "None")
    return {"Type": kind, "ID": (new or old or {}).get("ID", ""), "Fields": top["Fields"],
            "Objects": top["Objects"], "TaskGroups": groups or None}


# -- renderers -----------------------------------------------------------------------------


def namespace_json(ns: Namespace) -> dict[str, Any]:
    """api-docs/namespaces#list-namespaces."""
    return {"Name": ns.name, "Description": ns.description, "Quota": "", "Meta": None,
            "Capabilities": None, "NodePoolConfiguration": None,
            "CreateIndex": ns.create_index, "ModifyIndex": ns.modify_index}


def deployment_json(d: Deployment) -> dict[str, Any]:
    """api-docs/deployments#read-deployment."""
    return {
        "ID": d.id, "Namespace": d.namespace, "JobID": d.job_id, "JobVersion": d.job_version,
        "JobModifyIndex": d.job_modify_index, "JobSpecModifyIndex": d.job_modify_index,
        "JobCreateIndex": d.job_create_index, "IsMultiregion": False,
        "TaskGroups": {
            name: {
                "AutoRevert": s.auto_revert, "AutoPromote": s.auto_promote,
                "ProgressDeadline": s.progress_deadline_ns,
                "RequireProgressBy": _rfc3339(s.require_progress_by),
                "Promoted": s.promoted, "PlacedCanaries": list(s.placed_canaries) or None,
                "DesiredCanaries": s.desired_canaries, "DesiredTotal": s.desired_total,
                "PlacedAllocs": s.placed_allocs, "HealthyAllocs": s.healthy_allocs,
                "UnhealthyAllocs": s.unhealthy_allocs,
            }
            for name, s in d.task_groups.items()
        },
        "Status": d.status, "StatusDescription": d.status_description,
        "CreateIndex": d.create_index, "ModifyIndex": d.modify_index,
        "CreateTime": d.create_time, "ModifyTime": d.modify_time,
    }


def eval_extra(ev: Evaluation) -> dict[str, Any]:
    """api-docs/evaluations: the placement fields of an Evaluation."""
    return {
        "StatusDescription": ev.status_description, "PreviousEval": ev.previous_eval,
        "BlockedEval": ev.blocked_eval, "DeploymentID": ev.deployment_id,
        "FailedTGAllocs": ev.failed_tg_allocs or None,
        "QueuedAllocations": ev.queued_allocations or None,
        "ClassEligibility": None, "EscapedComputedClass": False, "AnnotatePlan": False,
        "SnapshotIndex": ev.modify_index, "Wait": 0, "WaitUntil": None, "NextEval": "",
    }


def deployment_status(a: Alloc) -> dict[str, Any] | None:
    """An allocation's DeploymentStatus (api-docs/allocations)."""
    if not a.deployment_id:
        return None
    return {"Healthy": a.healthy, "Canary": a.canary, "Timestamp": _rfc3339(a.modify_time),
            "ModifyIndex": a.modify_index}


def _rfc3339(ns: int) -> str:
    from .nomad import rfc3339
    return rfc3339(ns)


def _usage(cpu_mhz: float, mem: int) -> dict[str, Any]:
    """api-docs/client#read-allocation-statistics: a ResourceUsage."""
    return {
        "MemoryStats": {"RSS": mem, "Cache": 0, "Swap": 0, "MappedFile": 0, "Usage": mem,
                        "MaxUsage": mem, "KernelUsage": 0, "KernelMaxUsage": 0,
                        "Measured": ["RSS", "Cache", "Swap", "Usage", "Max Usage"]},
        "CpuStats": {"SystemMode": round(cpu_mhz * 0.02, 3), "UserMode": round(cpu_mhz * 0.08, 3),
                     "TotalTicks": round(cpu_mhz, 3),
                     "ThrottledPeriods": 0, "ThrottledTime": 0,
                     "Percent": round(cpu_mhz / MHZ_PER_CORE * 100, 3),
                     "Measured": ["Throttled Periods", "Throttled Time", "Percent"]},
        "DeviceStats": None,
    }


def alloc_stats_json(a: Alloc) -> dict[str, Any]:
    stamp = time.time_ns()
    tasks = {name: {"ResourceUsage": _usage(*a.usage.get(name, (0.0, 0))),
                    "Timestamp": stamp, "Pids": None} for name in a.task_states}
    cpu = sum(c for c, _ in a.usage.values())
    mem = sum(m for _, m in a.usage.values())
    return {"ResourceUsage": _usage(cpu, mem), "Tasks": tasks, "Timestamp": stamp}


def client_stats_json(world: World, node: NomadNode) -> dict[str, Any]:
    """api-docs/client#read-stats: the host's CPU, memory and disk."""
    live = [a for a in world.node_allocs(node.id) if a.client_status == "running"]
    mhz = sum(c for a in live for c, _ in a.usage.values())
    used_mem = 512 * 1024**2 + sum(m for a in live for _, m in a.usage.values())
    total_mem = node.memory_mb * 1024**2
    busy = min(99.0, 1.5 + mhz / (node.cores * MHZ_PER_CORE) * 100)
    cpus = []
    for i in range(node.cores):
        total = min(99.0, max(0.1, busy + world.usage_rng.uniform(-1.0, 1.0)))
        cpus.append({"CPU": f"cpu{i}", "User": round(total * 0.7, 2),
                     "System": round(total * 0.3, 2), "Idle": round(100 - total, 2),
                     "Total": round(total, 2)})
    disk_size = 32 * 1024**3
    disk_used = 6 * 1024**3 + sum(a.memory for a in live) * 1024**2 // 4
    disk = {"Device": "/dev/sda1", "Mountpoint": "/", "Size": disk_size, "Used": disk_used,
            "Available": disk_size - disk_used,
            "UsedPercent": round(disk_used / disk_size * 100, 2),
            "InodesUsedPercent": 3.1}
    return {
        "CPU": cpus, "CPUTicksConsumed": round(busy / 100 * node.cores * MHZ_PER_CORE, 2),
        "Memory": {"Total": total_mem, "Available": total_mem - used_mem,
                   "Used": used_mem, "Free": total_mem - used_mem},
        "DiskStats": [disk],
        "AllocDirStats": dict(disk, Mountpoint="/opt/nomad/data/alloc"),
        "Uptime": max(1, int(time.time()) - node.status_updated_at + 86400),
        "Timestamp": time.time_ns(),
    }


# -- handlers --------------------------------------------------------------------------------


def _ns_of(request: web.Request) -> str:
    return request.query.get("namespace", "default")


def _in_ns(request: web.Request, namespace: str) -> bool:
    wanted = _ns_of(request)
    return wanted == "*" or wanted == namespace


def _world(request: web.Request) -> World:
    from .nomad import CTX
    return request.app[CTX].world


async def _read(request: web.Request, tables: tuple[str, ...], render: Any) -> web.Response:
    from .nomad import _blocking_read
    return await _blocking_read(request, tables, render)


async def _body(request: web.Request) -> dict[str, Any]:
    from .nomad import _json_body
    body = canonical(await _json_body(request))
    assert isinstance(body, dict)
    return body


def _write(world: World, body: dict[str, Any]) -> web.Response:
    from .nomad import _write_response
    return _write_response(world, body)


def _job_in_ns(request: web.Request, w: World) -> Job:
    job = w.get_job(request.match_info["id"])
    if _ns_of(request) != job.namespace:  # `*` is for lists only
        raise SimError(404, "job not found")
    return job


async def list_namespaces(request: web.Request) -> web.Response:
    """api-docs/namespaces#list-namespaces (open source since Nomad 1.0)."""
    prefix = request.query.get("prefix", "")
    return await _read(request, ("namespaces",), lambda w: [
        namespace_json(ns) for name, ns in sorted(w.namespaces.items())
        if name.startswith(prefix)])


async def read_namespace(request: web.Request) -> web.Response:
    name = request.match_info["name"]

    def render(w: World) -> dict[str, Any]:
        ns = w.namespaces.get(name)
        if ns is None:
            raise SimError(404, "namespace not found")
        return namespace_json(ns)

    return await _read(request, ("namespaces",), render)


async def list_deployments(request: web.Request) -> web.Response:
    """api-docs/deployments#list-deployments."""
    prefix = request.query.get("prefix", "")
    return await _read(request, ("deployment",), lambda w: [
        deployment_json(d) for d in sorted(w.deployments.values(),
                                           key=lambda d: -d.create_index)
        if d.id.startswith(prefix) and _in_ns(request, d.namespace)])


async def read_deployment(request: web.Request) -> web.Response:
    """api-docs/deployments#read-deployment."""
    dep_id = request.match_info["id"]
    return await _read(request, ("deployment",),
                       lambda w: deployment_json(w.get_deployment(dep_id)))


async def deployment_allocations(request: web.Request) -> web.Response:
    """api-docs/deployments#list-allocations-for-deployment."""
    from .nomad import alloc_stub
    dep_id = request.match_info["id"]

    def render(w: World) -> list[dict[str, Any]]:
        dep = w.get_deployment(dep_id)
        out = []
        for a in sorted(w.allocs.values(), key=lambda a: a.create_index):
            if a.deployment_id == dep.id:
                stub = alloc_stub(w, a)
                stub["DeploymentStatus"] = deployment_status(a)
                out.append(stub)
        return out

    return await _read(request, ("allocs", "deployment"), render)


async def job_deployments(request: web.Request) -> web.Response:
    """api-docs/jobs#list-job-deployments."""
    return await _read(request, ("deployment",), lambda w: [
        deployment_json(d) for d in sorted(w.deployments.values(),
                                           key=lambda d: -d.create_index)
        if d.job_id == _job_in_ns(request, w).id])


async def job_latest_deployment(request: web.Request) -> web.Response:
    """api-docs/jobs#read-job-39-s-most-recent-deployment (null when there is none)."""
    def render(w: World) -> dict[str, Any] | None:
        job = _job_in_ns(request, w)
        deps = [d for d in w.deployments.values() if d.job_id == job.id]
        return deployment_json(max(deps, key=lambda d: d.create_index)) if deps else None

    return await _read(request, ("deployment",), render)


def _deployment_update(world: World, ev: Evaluation | None, dep: Deployment
                       ) -> web.Response:
    """api-docs/deployments: DeploymentUpdateResponse."""
    return _write(world, {"EvalID": ev.id if ev else "",
                          "EvalCreateIndex": ev.create_index if ev else 0,
                          "DeploymentModifyIndex": dep.modify_index,
                          "RevertedJobVersion": None})


def _dep_id(request: web.Request, body: dict[str, Any]) -> str:
    dep_id = request.match_info["id"]
    given = body.get("DeploymentID")
    if given and given != dep_id:
        raise SimError(400, "Deployment ID does not match")
    return dep_id


async def promote_deployment(request: web.Request) -> web.Response:
    """api-docs/deployments#promote-deployment: `All` or `Groups`."""
    world = _world(request)
    body = await _body(request)
    dep = world.get_deployment(_dep_id(request, body))
    groups = None if body.get("All") else list(body.get("Groups") or [])
    if groups == []:
        raise SimError(400, "must specify a group to promote or All")
    ev = world.promote_deployment(dep.id, groups)
    return _deployment_update(world, ev, dep)


async def fail_deployment(request: web.Request) -> web.Response:
    """api-docs/deployments#fail-deployment."""
    world = _world(request)
    body = await _body(request)
    dep = world.get_deployment(_dep_id(request, body))
    ev = world.fail_deployment(dep.id)
    return _deployment_update(world, ev, dep)


async def pause_deployment(request: web.Request) -> web.Response:
    """api-docs/deployments#pause-deployment: `Pause` true or false (resume)."""
    world = _world(request)
    body = await _body(request)
    dep = world.get_deployment(_dep_id(request, body))
    ev = world.pause_deployment(dep.id, bool(body.get("Pause")))
    return _deployment_update(world, ev, dep)


async def job_versions(request: web.Request) -> web.Response:
    """api-docs/jobs#list-job-versions: newest first; with `diffs=true` each version's
    difference from the one before it."""
    from .nomad import job_json, parse_bool
    diffs = parse_bool(request, "diffs")

    def render(w: World) -> dict[str, Any]:
        job = _job_in_ns(request, w)
        versions = [job_json(w, v) for v in reversed(w.job_versions.get(job.id, []))]
        for v in versions:
            v["Stable"] = next((x.stable for x in w.job_versions[job.id]
                                if x.version == v["Version"]), False)
        body: dict[str, Any] = {"Versions": versions, "Diffs": None}
        if diffs:
            body["Diffs"] = [job_diff(versions[i + 1], versions[i])
                             for i in range(len(versions) - 1)]
        body.update({"Index": w.nomad.of("jobs"), "KnownLeader": True, "LastContact": 0})
        return body

    return await _read(request, ("jobs",), render)


async def revert_job(request: web.Request) -> web.Response:
    """api-docs/jobs#revert-to-older-job-version."""
    world = _world(request)
    body = await _body(request)
    job_id = request.match_info["id"]
    if body.get("JobID") and body["JobID"] != job_id:
        raise SimError(400, "Job ID does not match")
    if "JobVersion" not in body:
        raise SimError(400, "missing job version")
    prior = body.get("EnforcePriorVersion")
    ev = world.revert_job(job_id, int(body["JobVersion"]),
                          None if prior is None else int(prior))
    job = world.get_job(job_id)
    return _write(world, {"EvalID": ev.id, "EvalCreateIndex": ev.create_index,
                          "JobModifyIndex": job.job_modify_index, "Warnings": ""})


async def parse_job(request: web.Request) -> web.Response:
    """api-docs/jobs#parse-job: `JobHCL` into the api.Job JSON."""
    body = await _body(request)
    text = body.get("JobHCL")
    if not text:
        raise SimError(400, "Job spec is empty")
    return web.json_response(parse_hcl(str(text)))


def enforce_index(world: World, job: Job, body: dict[str, Any]) -> None:
    """nomad/job_endpoint.go Register with EnforceIndex (`nomad job run -check-index`);
    the server's error is a plain RPC error: HTTP 500."""
    if not body.get("EnforceIndex"):
        return
    want = int(body.get("JobModifyIndex") or 0)
    cur = world.jobs.get(job.id)
    prefix = f"Enforcing job modify index {want}"
    if want == 0 and cur is not None:
        raise SimError(500, f"{prefix}: job already exists")
    if want and cur is None:
        raise SimError(500, f"{prefix}: job does not exist")
    if cur is not None and cur.job_modify_index != want:
        raise SimError(500, f"{prefix}: job exists with conflicting job modify index: "
                            f"{cur.job_modify_index}")


async def plan_job(request: web.Request) -> web.Response:
    """api-docs/jobs#create-job-plan: Annotations.DesiredTGUpdates, FailedTGAllocs,
    JobModifyIndex and, with `Diff`, the JobDiff with its annotations."""
    from .nomad import _require_leader, job_json
    world = _world(request)
    _require_leader(world)
    body = await _body(request)
    job = job_from_api(body.get("Job"))
    if job.id != request.match_info["id"]:
        raise SimError(400, "Job ID does not match")
    plan = world.plan_job(job)
    old = world.jobs.get(job.id)
    out: dict[str, Any] = {
        "Annotations": {"DesiredTGUpdates": plan["updates"], "PreemptedAllocs": None},
        "FailedTGAllocs": plan["failed"] or None,
        "JobModifyIndex": plan["job_modify_index"],
        "CreatedEvals": None, "Diff": None, "NextPeriodicLaunch": "0001-01-01T00:00:00Z",
        "Warnings": "",
    }
    if body.get("Diff"):
        preview = job_json(world, job)
        preview["Version"] = old.version + 1 if old else 0
        out["Diff"] = job_diff(job_json(world, old) if old else None, preview,
                               plan["updates"])
    return _write(world, out)


async def validate_job(request: web.Request) -> web.Response:
    """api-docs/validate#validate-job."""
    body = await _body(request)
    errors: list[str] = []
    try:
        job = job_from_api(body.get("Job"))
        for g in job.groups:
            if g.count < 0:
                errors.append(f'Task group {g.name} validation failed: Task group count '
                              "can't be negative")
            names = [t.name for t in g.tasks]
            if len(set(names)) != len(names):
                errors.append(f"Task group {g.name} validation failed: duplicate task name")
    except SimError as exc:
        if exc.message == "Job must be specified":
            raise
        errors.append(exc.message.strip().replace("1 error occurred:\n\t* ", ""))
    text = ""
    if errors:
        text = f"{len(errors)} error{'s' if len(errors) > 1 else ''} occurred:\n" + "".join(
            f"\t* {e}\n" for e in errors) + "\n"
    return web.json_response({"DriverConfigValidated": not errors,
                              "ValidationErrors": errors or None, "Error": text,
                              "Warnings": ""})


async def list_evaluations(request: web.Request) -> web.Response:
    """api-docs/evaluations#list-evaluations (`prefix`, `job`, `status`, `namespace`)."""
    from .nomad import eval_json
    prefix = request.query.get("prefix", "")
    job = request.query.get("job", "")
    status = request.query.get("status", "")
    return await _read(request, ("evals",), lambda w: [
        eval_json(e) for e in sorted(w.evals.values(), key=lambda e: -e.create_index)
        if e.id.startswith(prefix) and _in_ns(request, e.namespace)
        and (not job or e.job_id == job) and (not status or e.status == status)])


async def job_evaluations(request: web.Request) -> web.Response:
    """api-docs/jobs#list-job-evaluations."""
    from .nomad import eval_json

    def render(w: World) -> list[dict[str, Any]]:
        job = _job_in_ns(request, w)
        return [eval_json(e) for e in sorted(w.evals.values(), key=lambda e: -e.create_index)
                if e.job_id == job.id]

    return await _read(request, ("evals",), render)


async def alloc_stats(request: web.Request) -> web.Response:
    """api-docs/client#read-allocation-statistics."""
    world = _world(request)
    alloc = world.get_alloc(request.match_info["id"])
    if alloc.client_status != "running":
        raise SimError(500, "unknown allocation ID")  # the client no longer runs it
    world.measure_usage(alloc)
    return web.json_response(alloc_stats_json(alloc))


async def client_stats(request: web.Request) -> web.Response:
    """api-docs/client#read-stats: through a server, `node_id` names the client."""
    world = _world(request)
    node_id = request.query.get("node_id", "")
    if not node_id:
        raise SimError(400, "No local Node and node_id not provided")
    node = world.get_node(node_id)
    if node.status != "ready":
        raise SimError(500, "Unknown node")
    return web.json_response(client_stats_json(world, node))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/namespaces", list_namespaces)
    r.add_get("/v1/namespace/{name}", read_namespace)
    r.add_get("/v1/deployments", list_deployments)
    r.add_get("/v1/deployment/{id}", read_deployment)
    r.add_get("/v1/deployment/allocations/{id}", deployment_allocations)
    r.add_get("/v1/job/{id}/deployments", job_deployments)
    r.add_get("/v1/job/{id}/deployment", job_latest_deployment)
    r.add_get("/v1/job/{id}/versions", job_versions)
    r.add_get("/v1/job/{id}/evaluations", job_evaluations)
    r.add_get("/v1/evaluations", list_evaluations)
    r.add_get("/v1/client/allocation/{id}/stats", alloc_stats)
    r.add_get("/v1/client/stats", client_stats)
    for method in ("PUT", "POST"):
        r.add_route(method, "/v1/deployment/promote/{id}", promote_deployment)
        r.add_route(method, "/v1/deployment/fail/{id}", fail_deployment)
        r.add_route(method, "/v1/deployment/pause/{id}", pause_deployment)
        r.add_route(method, "/v1/job/{id}/revert", revert_job)
        r.add_route(method, "/v1/job/{id}/plan", plan_job)
        r.add_route(method, "/v1/jobs/parse", parse_job)
        r.add_route(method, "/v1/validate/job", validate_job)

