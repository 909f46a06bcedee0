"""The lab's Nomad HTTP API, as documented at developer.hashicorp.com/nomad/api-docs.

Shapes follow the pages named on each renderer (jobs, allocations, nodes, client fs logs,
events, status, operator/raft). Errors are plain text like Nomad's; the ACL token comes in
`X-Nomad-Token` or `Authorization: Bearer`; reads block with `index` and `wait`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from . import nomad_reads
from .acl import NOMAD_IN_BAND, NOMAD_TOPIC_CAPABILITY, nomad_capability
from .context import SimContext
from .http import (
    BlockingParams,
    KeptBodies,
    StreamReset,
    block_until,
    blocking_params,
    fault_middleware,
    go_bool,
    text_error,
)
from .model import Alloc, Evaluation, GroupSpec, Job, NomadNode, ServiceSpec, TaskSpec, TaskState
from .world import SimError, World

ZERO_TIME = "0001-01-01T00:00:00Z"
DEFAULT_WAIT = 300.0
MAX_WAIT = 300.0
LOG_FRAME_MAX = 64 * 1024
LOG_BATCH = 0.2  # Nomad batches log frames over 200 ms

CTX: web.AppKey[SimContext] = web.AppKey("ctx", SimContext)
SETTINGS: web.AppKey[dict[str, float]] = web.AppKey("settings", dict)

def parse_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """Go's strconv.ParseBool, as Nomad reads query flags; a bare `?plain` means true."""
    if name not in request.query:
        return default
    raw = request.query[name]
    value = True if raw == "" else go_bool(raw)
    if value is not None:
        return value
    raise web.HTTPBadRequest(text=f'strconv.ParseBool: parsing "{raw}": invalid syntax',
                             content_type="text/plain")


def _seconds(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 10**9))


def rfc3339(ns: int | None) -> str:
    if not ns:
        return ZERO_TIME
    secs, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


# -- renderers ------------------------------------------------------------------------------


def task_state_json(ts: TaskState) -> dict[str, Any]:
    """api-docs/allocations: TaskStates entries."""
    return {
        "State": ts.state,
        "Failed": ts.failed,
        "Restarts": ts.restarts,
        "LastRestart": rfc3339(ts.last_restart),
        "StartedAt": rfc3339(ts.started_at),
        "FinishedAt": rfc3339(ts.finished_at),
        "Events": list(ts.events),
        "TaskHandle": None,
    }


def alloc_stub(world: World, a: Alloc, task_states: bool = True) -> dict[str, Any]:
    """api-docs/allocations#list-allocations: AllocListStub."""
    node = world.nodes.get(a.node_id)
    return {
        "ID": a.id,
        "EvalID": a.eval_id,
        "Name": a.name,
        "Namespace": a.namespace,
        "NodeID": a.node_id,
        "NodeName": node.name if node else "",
        "JobID": a.job_id,
        "JobType": a.job_type,
        "JobVersion": a.job_version,
        "TaskGroup": a.task_group,
        "AllocatedResources": None,
        "DesiredStatus": a.desired_status,
        "DesiredDescription": a.desired_description,
        "ClientStatus": a.client_status,
        "ClientDescription": a.client_description,
        "DesiredTransition": {"Migrate": True} if a.migrate else {},
        "TaskStates": (
            {name: task_state_json(ts) for name, ts in a.task_states.items()}
            if task_states else None
        ),
        "DeploymentStatus": _deployment_status(a),
        "FollowupEvalID": a.followup_eval_id,
        "NextAllocation": a.next_allocation,
        "PreviousAllocation": a.previous_allocation,
        "RescheduleTracker": (
            {"Events": [{"PrevAllocID": a.previous_allocation, "PrevNodeID": "",
                         "RescheduleTime": a.create_time, "Delay": 0}]}
            if a.previous_allocation else None
        ),
        "PreemptedAllocations": None,
        "PreemptedByAllocation": "",
        "CreateIndex": a.create_index,
        "ModifyIndex": a.modify_index,
        "CreateTime": a.create_time,
        "ModifyTime": a.modify_time,
    }


def _deployment_status(a: Alloc) -> dict[str, Any] | None:
    from .nomad_depth import deployment_status
    return deployment_status(a)


def alloc_full(world: World, a: Alloc, with_job: bool = True) -> dict[str, Any]:
    """api-docs/allocations#read-allocation: the Allocation object."""
    out = alloc_stub(world, a)
    for k in ("JobType", "JobVersion", "AllocatedResources"):
        out.pop(k)
    job = world.jobs.get(a.job_id)
    node = world.nodes.get(a.node_id)
    out.update({
        "Job": job_json(world, job) if (job is not None and with_job) else None,
        "AllocModifyIndex": a.alloc_modify_index,
        "AllocatedResources": {
            "Shared": {
                "Networks": [{
                    "Mode": "host",
                    "IP": node.address if node else "127.0.0.1",
                    "DynamicPorts": [
                        {"Label": label, "Value": port, "To": 0, "HostNetwork": "default"}
                        for label, port in sorted(a.ports.items())
                    ],
                }],
                "Ports": [
                    {"Label": label, "Value": port, "To": 0, "HostIP": "127.0.0.1"}
                    for label, port in sorted(a.ports.items())
                ],
            },
        },
        "Metrics": {"NodesEvaluated": len(world.nodes), "NodesFiltered": 0},
    })
    return out


def node_stub(n: NomadNode) -> dict[str, Any]:
    """api-docs/nodes#list-nodes: NodeListStub."""
    return {
        "Address": n.address,
        "ID": n.id,
        "Datacenter": n.datacenter,
        "Name": n.name,
        "NodeClass": n.node_class,
        "NodePool": n.node_pool,
        "Version": n.version,
        "Drain": n.drain,
        "SchedulingEligibility": n.eligibility,
        "Status": n.status,
        "StatusDescription": n.status_description,
        "Drivers": {
            d: {"Attributes": None, "Detected": True, "Healthy": True,
                "HealthDescription": "Healthy", "UpdateTime": ZERO_TIME}
            for d in n.drivers
        },
        "HostVolumes": {name: {"Name": name, "Path": path, "ReadOnly": False}
                        for name, path in sorted(n.host_volumes.items())},
        "LastDrain": None if n.last_drain is None else {  # whole seconds (time.Unix(s, 0))
            "StartedAt": _seconds(n.last_drain[0]), "UpdatedAt": _seconds(n.last_drain[1]),
            "Status": n.last_drain[2], "AccessorID": "", "Meta": None},
        "CreateIndex": n.create_index,
        "ModifyIndex": n.modify_index,
    }


def node_full(n: NomadNode) -> dict[str, Any]:
    """api-docs/nodes#read-node."""
    out = node_stub(n)
    out.update({
        "HTTPAddr": f"{n.address}:4646",
        "TLSEnabled": False,
        "Attributes": {
            "unique.hostname": n.name,
            "unique.network.ip-address": n.address,
            "cpu.numcores": str(n.cores),
            "memory.totalbytes": str(n.memory_mb * 1024 * 1024),
            "nomad.version": n.version,
            "kernel.name": "linux",
            "os.name": "debian",
            "os.version": "12",
        },
        "NodeResources": {
            "Cpu": {"CpuShares": n.cores * 2400, "TotalCpuCores": n.cores},
            "Memory": {"MemoryMB": n.memory_mb},
        },
        "DrainStrategy": (
            {"Deadline": n.drain_deadline_ns, "IgnoreSystemJobs": False, "ForceDeadline": ZERO_TIME}
            if n.drain else None
        ),
        "Events": list(n.events),
        "Meta": {"connect.log_level": "info"},
        "StatusUpdatedAt": n.status_updated_at,
    })
    return out


def job_summary(world: World, job: Job) -> dict[str, Any]:
    """api-docs/jobs#read-job-summary: per group counts."""
    groups: dict[str, dict[str, int]] = {
        g.name: {"Queued": 0, "Complete": 0, "Failed": 0, "Running": 0, "Starting": 0,
                 "Lost": 0, "Unknown": 0}
        for g in job.groups
    }
    key = {"complete": "Complete", "failed": "Failed", "running": "Running",
           "pending": "Starting", "lost": "Lost", "unknown": "Unknown"}
    for a in world.job_allocs(job.id):
        g = groups.setdefault(a.task_group, dict.fromkeys(
            ("Queued", "Complete", "Failed", "Running", "Starting", "Lost", "Unknown"), 0))
        g[key.get(a.client_status, "Unknown")] += 1
    for name, queued in job.queued.items():  # what the blocked evaluation waits to place
        if name in groups:
            groups[name]["Queued"] = queued
    return {
        "JobID": job.id,
        "Namespace": job.namespace,
        "Summary": groups,
        "Children": {"Pending": 0, "Running": 0, "Dead": 0},
        "CreateIndex": job.create_index,
        "ModifyIndex": job.modify_index,
    }


def job_stub(world: World, job: Job) -> dict[str, Any]:
    """api-docs/jobs#list-jobs: JobListStub."""
    return {
        "ID": job.id,
        "ParentID": "",
        "Name": job.name or job.id,
        "Namespace": job.namespace,
        "Datacenters": list(job.datacenters),
        "NodePool": job.node_pool,
        "Multiregion": None,
        "Type": job.type,
        "Priority": job.priority,
        "Periodic": job.periodic,
        "ParameterizedJob": job.parameterized,
        "Stop": job.stop,
        "Status": job.status,
        "StatusDescription": job.status_description,
        "JobSummary": job_summary(world, job),
        "CreateIndex": job.create_index,
        "ModifyIndex": job.modify_index,
        "JobModifyIndex": job.job_modify_index,
        "SubmitTime": job.submit_time,
        "Meta": dict(job.meta) or None,
    }


def _service_json(s: ServiceSpec) -> dict[str, Any]:
    connect = None
    if s.connect:
        connect = {"SidecarService": {"Proxy": {"Upstreams": [
            {"DestinationName": up, "LocalBindPort": port} for up, port in s.upstreams
        ]}}}
    checks = []
    if s.check_path:
        checks.append({"Name": f'service: "{s.name}" check', "Type": "http",
                       "Path": s.check_path, "Interval": 10_000_000_000,
                       "Timeout": 2_000_000_000})
    return {"Name": s.name, "PortLabel": s.port_label, "Tags": list(s.tags),
            "Provider": "consul", "Connect": connect, "Checks": checks}


def job_json(world: World, job: Job) -> dict[str, Any]:
    """api-docs/jobs#read-job: the Job object (the parts the lab models)."""
    from .nomad_depth import constraints_json, update_json
    return {
        "Region": "global",
        "Namespace": job.namespace,
        "ID": job.id,
        "ParentID": "",
        "Name": job.name or job.id,
        "Type": job.type,
        "Priority": job.priority,
        "AllAtOnce": False,
        "Datacenters": list(job.datacenters),
        "NodePool": job.node_pool,
        "Constraints": constraints_json(job.constraints),
        "Update": update_json(job.update),
        "TaskGroups": [
            {
                "Name": g.name,
                "Count": g.count,
                "Constraints": constraints_json(g.constraints),
                "Update": update_json(g.update or job.update),
                "Networks": [{"Mode": "host", "DynamicPorts": [
                    {"Label": p, "Value": 0, "To": 0, "HostNetwork": "default"}
                    for p in g.ports
                ]}] if g.ports else None,
                "Services": [_service_json(s) for s in g.services] or None,
                "Tasks": [
                    {"Name": t.name, "Driver": t.driver, "Config": dict(t.config),
                     "Resources": {"CPU": t.cpu, "MemoryMB": t.memory}}
                    for t in g.tasks
                ],
            }
            for g in job.groups
        ],
        "Periodic": {"Enabled": True} if job.periodic else None,
        "ParameterizedJob": {} if job.parameterized else None,
        "Stop": job.stop,
        "Status": job.status,
        "StatusDescription": job.status_description,
        "Stable": job.stable,
        "Version": job.version,
        "SubmitTime": job.submit_time,
        "CreateIndex": job.create_index,
        "ModifyIndex": job.modify_index,
        "JobModifyIndex": job.job_modify_index,
        "Meta": dict(job.meta) or None,
    }


def eval_json(ev: Evaluation) -> dict[str, Any]:
    """api-docs/evaluations#read-evaluation."""
    from .nomad_depth import eval_extra
    return {
        "ID": ev.id, "Namespace": ev.namespace, "Priority": ev.priority, "Type": ev.type,
        "TriggeredBy": ev.triggered_by, "JobID": ev.job_id, "NodeID": ev.node_id,
        "Status": ev.status, "StatusDescription": "", "CreateIndex": ev.create_index,
        "ModifyIndex": ev.modify_index, "CreateTime": ev.create_time,
        "ModifyTime": ev.modify_time, **eval_extra(ev),
    }


def job_from_spec(spec: dict[str, Any]) -> Job:
    """Read a submitted `{"Job": {...}}` body (api-docs/jobs#create-job) into the lab's Job."""
    if not isinstance(spec, dict) or not spec.get("ID"):
        raise SimError(400, "Job ID does not exist")
    jtype = spec.get("Type") or "service"
    if jtype not in ("service", "batch", "system", "sysbatch"):
        raise SimError(400, f'1 error occurred:\n\t* Invalid job type: "{jtype}"\n\n')
    groups = []
    for g in spec.get("TaskGroups") or []:
        ports = [
            p.get("Label", "") for net in g.get("Networks") or []
            for p in (net.get("DynamicPorts") or []) + (net.get("ReservedPorts") or [])
        ]
        services = []
        for s in g.get("Services") or []:
            connect = s.get("Connect") or {}
            ups = (((connect.get("SidecarService") or {}).get("Proxy") or {})
                   .get("Upstreams") or [])
            services.append(ServiceSpec(
                s.get("Name", ""), s.get("PortLabel", ""), list(s.get("Tags") or []),
                connect=bool(connect),
                upstreams=[(u.get("DestinationName", ""), int(u.get("LocalBindPort", 0)))
                           for u in ups],
                check_path=next((c.get("Path") for c in s.get("Checks") or []
                                 if c.get("Type") == "http"), None),
            ))
        tasks = []
        for t in g.get("Tasks") or []:
            res = t.get("Resources") or {}
            behaviour = "batch" if jtype in ("batch", "sysbatch") else (
                "serve" if ports else "run")
            tasks.append(TaskSpec(t.get("Name", "task"), t.get("Driver", "docker"),
                                  dict(t.get("Config") or {}), int(res.get("CPU") or 100),
                                  int(res.get("MemoryMB") or 128), behaviour))
        if not tasks:
            raise SimError(400, f'1 error occurred:\n\t* Task group {g.get("Name")} '
                                'validation failed: Missing tasks for task group\n\n')
        groups.append(GroupSpec(g.get("Name", "group"), int(g.get("Count", 1)), tasks,
                                ports, services))
    if not groups:
        raise SimError(400, "1 error occurred:\n\t* Missing job task groups\n\n")
    return Job(
        id=spec["ID"], type=jtype, groups=groups, name=spec.get("Name") or spec["ID"],
        namespace=spec.get("Namespace") or "default",
        datacenters=list(spec.get("Datacenters") or ["*"]),
        priority=int(spec.get("Priority") or 50), meta=dict(spec.get("Meta") or {}),
        spec=spec,
    )


# -- the application ------------------------------------------------------------------------


def build_app(ctx: SimContext, heartbeat: float = 30.0, log_heartbeat: float = 1.0
              ) -> web.Application:
    """The Nomad API app; `heartbeat` is the event stream's keep-alive period."""
    app = web.Application(middlewares=[
        _count_middleware(ctx),
        fault_middleware("nomad", ctx.faults, text_error),
        _acl_middleware(ctx),
        nomad_reads.middleware(ctx),  # what real clients read (sim/nomad_reads.py)
    ])
    app[CTX] = ctx
    app[SETTINGS] = {"heartbeat": heartbeat, "log_heartbeat": log_heartbeat}
    r = app.router
    r.add_get("/v1/jobs", list_jobs)
    r.add_route("PUT", "/v1/jobs", register_job)
    r.add_post("/v1/jobs", register_job)
    r.add_get("/v1/job/{id}", read_job)
    r.add_route("PUT", "/v1/job/{id}", register_job)
    r.add_post("/v1/job/{id}", register_job)
    r.add_delete("/v1/job/{id}", stop_job)
    r.add_get("/v1/job/{id}/allocations", job_allocations)
    r.add_get("/v1/job/{id}/summary", read_job_summary)
    r.add_route("PUT", "/v1/job/{id}/scale", scale_job)
    r.add_post("/v1/job/{id}/scale", scale_job)
    r.add_get("/v1/allocations", list_allocs)
    r.add_get("/v1/allocation/{id}", read_alloc)
    for method in ("PUT", "POST"):
        r.add_route(method, "/v1/allocation/{id}/stop", stop_alloc)
        r.add_route(method, "/v1/client/allocation/{id}/restart", restart_alloc)
        r.add_route(method, "/v1/node/{id}/drain", drain_node)
        r.add_route(method, "/v1/node/{id}/eligibility", node_eligibility)
    r.add_get("/v1/nodes", list_nodes)
    r.add_get("/v1/node/{id}", read_node)
    r.add_get("/v1/node/{id}/allocations", node_allocations)
    r.add_get("/v1/evaluation/{id}", read_eval)
    r.add_get("/v1/volumes", list_volumes)
    r.add_get("/v1/client/fs/logs/{id}", logs)
    r.add_get("/v1/event/stream", event_stream)
    r.add_get("/v1/status/leader", status_leader)
    r.add_get("/v1/status/peers", status_peers)
    r.add_get("/v1/operator/raft/configuration", raft_configuration)
    r.add_get("/v1/operator/autopilot/health", autopilot_health)
    r.add_get("/v1/agent/self", agent_self)
    r.add_get("/v1/agent/members", agent_members)
    r.add_get("/v1/regions", regions)
    from . import exec as alloc_exec

    alloc_exec.add_routes(app, ctx)

    from . import nomad_depth  # namespaces, deployments, versions, plans, evaluations, stats
    nomad_depth.add_routes(app)
    return app


def _count_middleware(ctx: SimContext) -> Any:
    """What the lab was asked, for tests that measure what a client costs the server: by
    method, path and the names of the query parameters (`GET /v1/jobs?prefix`)."""
    @web.middleware
    async def middleware(request: web.Request, handler: Callable[..., Awaitable[Any]]) -> Any:
        names = "&".join(sorted(set(request.query)))
        ctx.requests[f"{request.method} {request.path}{'?' + names if names else ''}"] += 1
        return await handler(request)

    return middleware


def _acl_middleware(ctx: SimContext) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Callable[..., Awaitable[Any]]) -> Any:
        token = request.headers.get("X-Nomad-Token", "")
        auth = request.headers.get("Authorization", "")
        if not token and auth.startswith("Bearer "):
            token = auth[len("Bearer "):]
        # each endpoint's "ACL Required" from api-docs (sim/acl.py); status needs none
        needs = [nomad_capability(request.method, request.path)]
        if request.path == "/v1/event/stream":
            needs = [NOMAD_TOPIC_CAPABILITY.get(t, "management")
                     for t in _topic_filter(request) if t != "*"] or ["management"]
        if NOMAD_IN_BAND.fullmatch(request.path):
            needs = [None]  # sim/exec.py checks the token after the upgrade
        if any(n is not None for n in needs):
            grant = ctx.secrets.nomad_grant(token)
            if grant is None:
                return text_error(403, "ACL token not found")
            if not all(grant.allows(n) for n in needs):
                return text_error(403, "Permission denied")
        try:
            return await handler(request)
        except SimError as exc:
            return text_error(exc.status, exc.message)

    return middleware


def _world(request: web.Request) -> World:
    return request.app[CTX].world


def _meta_headers(world: World, index: int) -> dict[str, str]:
    return {
        "X-Nomad-Index": str(max(index, 1)),
        "X-Nomad-KnownLeader": "true" if world.nomad_leader() else "false",
        "X-Nomad-LastContact": "0",
    }


def _require_leader(world: World) -> None:
    if world.nomad_leader() is None:
        raise SimError(500, "No cluster leader")


async def _blocking_read(
    request: web.Request, tables: tuple[str, ...], render: Callable[[World], Any]
) -> web.Response:
    """A read that honours `index` and `wait`, answering with `X-Nomad-Index`."""
    world = _world(request)
    params: BlockingParams = blocking_params(request, DEFAULT_WAIT, MAX_WAIT)
    _require_leader(world)
    await block_until(params, lambda: world.nomad.of(*tables), world.wait_change)
    _require_leader(world)
    body = render(world)
    return web.json_response(body, headers=_meta_headers(world, world.nomad.of(*tables)))


def _prefix_filter(request: web.Request, items: Iterable[Any], key: Callable[[Any], str]
                   ) -> list[Any]:
    prefix = request.query.get("prefix", "")
    namespace = request.query.get("namespace", "default")
    out = [i for i in items if key(i).startswith(prefix)]
    if namespace != "*":
        out = [i for i in out if getattr(i, "namespace", namespace) == namespace]
    return out


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise SimError(400, f"Request body could not be parsed: {exc}") from None
    if not isinstance(body, dict):
        raise SimError(400, "Request body could not be parsed: expected an object")
    return body


def _write_response(world: World, body: dict[str, Any]) -> web.Response:
    index = world.nomad.index
    body.setdefault("Index", index)
    body.setdefault("LastContact", 0)
    body.setdefault("KnownLeader", True)
    return web.json_response(body, headers=_meta_headers(world, index))


# jobs

async def list_jobs(request: web.Request) -> web.Response:
    return await _blocking_read(request, ("jobs", "allocs"), lambda w: [
        job_stub(w, j) for j in sorted(_prefix_filter(request, w.jobs.values(), lambda j: j.id),
                                       key=lambda j: j.id)
    ])


def _job_in_namespace(request: web.Request, w: World) -> Job:
    """A job is read in its namespace (`namespace`, default "default"); the wildcard `*`
    is for lists only: Nomad looks the job up in a namespace named "*" and finds none."""
    job = w.get_job(request.match_info["id"])
    wanted = request.query.get("namespace", "default")
    if wanted != job.namespace:
        raise SimError(404, "job not found")
    return job


async def read_job(request: web.Request) -> web.Response:
    return await _blocking_read(request, ("jobs",),
                                lambda w: job_json(w, _job_in_namespace(request, w)))


async def read_job_summary(request: web.Request) -> web.Response:
    job_id = request.match_info["id"]
    return await _blocking_read(request, ("jobs", "allocs"),
                                lambda w: job_summary(w, w.get_job(job_id)))


async def job_allocations(request: web.Request) -> web.Response:
    job_id = request.match_info["id"]
    return await _blocking_read(request, ("allocs",), lambda w: [
        alloc_stub(w, a) for a in sorted(w.job_allocs(job_id), key=lambda a: a.create_index)
    ])


async def register_job(request: web.Request) -> web.Response:
    world = _world(request)
    _require_leader(world)
    from .nomad_depth import canonical, enforce_index, job_from_api
    body = canonical(await _json_body(request))  # Go's encoding/json: keys in any case
    job = job_from_api(body.get("Job"))
    if "id" in request.match_info and request.match_info["id"] != job.id:
        raise SimError(400, "Job ID does not match name")
    enforce_index(world, job, body)
    ev = world.register_job(job)
    return _write_response(world, {
        "EvalID": ev.id if ev else "", "EvalCreateIndex": ev.create_index if ev else 0,
        "JobModifyIndex": job.job_modify_index, "Warnings": "",
    })


async def stop_job(request: web.Request) -> web.Response:
    world = _world(request)
    _require_leader(world)
    ev = world.stop_job(request.match_info["id"], purge=parse_bool(request, "purge"))
    return _write_response(world, {
        "EvalID": ev.id, "EvalCreateIndex": ev.create_index,
        "JobModifyIndex": world.nomad.of("jobs"),
    })


async def scale_job(request: web.Request) -> web.Response:
    world = _world(request)
    _require_leader(world)
    body = await _json_body(request)
    group = (body.get("Target") or {}).get("Group")
    if not group:
        raise SimError(400, "missing task group name in scaling request")
    count = body.get("Count")
    if count is None:
        raise SimError(400, "scaling action without count is not supported by the lab")
    ev = world.scale_job(request.match_info["id"], group, int(count))
    return _write_response(world, {
        "EvalID": ev.id if ev else "", "EvalCreateIndex": ev.create_index if ev else 0,
        "JobModifyIndex": world.get_job(request.match_info["id"]).job_modify_index,
        "Warnings": "",
    })


# allocations

# the allocation lists asked for, by query: 5,000 allocations are 8 MB of JSON, 0.3-0.9 s of
# the lab's CPU to make and encode on this 2-core machine (Nomad's Go answers from its state
# store in a fraction of that); a few queries kept (the cockpit's full list, `status`'s
# without task states, …)
_ALLOC_LISTS = KeptBodies(4)


async def list_allocs(request: web.Request) -> web.Response:
    with_states = parse_bool(request, "task_states", True)
    world = _world(request)
    params: BlockingParams = blocking_params(request, DEFAULT_WAIT, MAX_WAIT)
    _require_leader(world)
    await block_until(params, lambda: world.nomad.of("allocs"), world.wait_change)
    _require_leader(world)
    # an allocation's stub changes only with the allocations' index (its node's name with
    # the nodes')
    made_at = (world.nomad.of("allocs"), world.nomad.of("nodes"))
    body = _ALLOC_LISTS.body(world, request, made_at, lambda: json.dumps([
        alloc_stub(world, a, with_states)
        for a in sorted(_prefix_filter(request, world.allocs.values(), lambda a: a.id),
                        key=lambda a: a.create_index)
    ]).encode())
    return web.Response(body=body, content_type="application/json",
                        headers=_meta_headers(world, made_at[0]))


async def read_alloc(request: web.Request) -> web.Response:
    alloc_id = request.match_info["id"]
    return await _blocking_read(request, ("allocs",),
                                lambda w: alloc_full(w, w.get_alloc(alloc_id)))


async def stop_alloc(request: web.Request) -> web.Response:
    world = _world(request)
    _require_leader(world)
    ev = world.stop_alloc(request.match_info["id"])
    return _write_response(world, {"EvalID": ev.id})


async def restart_alloc(request: web.Request) -> web.Response:
    world = _world(request)
    body = await _json_body(request)
    world.restart_alloc(request.match_info["id"], body.get("TaskName") or None,
                        bool(body.get("AllTasks")))
    return web.json_response({}, headers=_meta_headers(world, world.nomad.index))


# nodes

async def list_nodes(request: web.Request) -> web.Response:
    prefix = request.query.get("prefix", "")
    return await _blocking_read(request, ("nodes",), lambda w: [
        node_stub(n) for n in sorted(w.nodes.values(), key=lambda n: n.name)
        if n.id.startswith(prefix)
    ])


async def read_node(request: web.Request) -> web.Response:
    node_id = request.match_info["id"]
    return await _blocking_read(request, ("nodes",), lambda w: node_full(w.get_node(node_id)))


async def node_allocations(request: web.Request) -> web.Response:
    node_id = request.match_info["id"]
    return await _blocking_read(request, ("allocs",), lambda w: [
        alloc_full(w, a, with_job=False) for a in w.node_allocs(w.get_node(node_id).id)
    ])


async def drain_node(request: web.Request) -> web.Response:
    """api-docs/nodes#drain-node: `DrainSpec` null turns draining off."""
    world = _world(request)
    _require_leader(world)
    body = await _json_body(request)
    spec = body.get("DrainSpec")
    node = world.get_node(request.match_info["id"])
    before = world.nomad.of("evals")
    if spec:
        deadline = int(spec.get("Deadline") or 3600 * 10**9)
        world.node_drain(node.id, True, deadline)
    else:
        world.node_drain(node.id, False, mark_eligible=bool(body.get("MarkEligible")))
    evals = [e.id for e in world.evals.values() if e.create_index > before]
    return _write_response(world, {
        "EvalIDs": evals, "EvalCreateIndex": world.nomad.of("evals") if evals else 0,
        "NodeModifyIndex": node.modify_index,
    })


async def node_eligibility(request: web.Request) -> web.Response:
    world = _world(request)
    _require_leader(world)
    body = await _json_body(request)
    value = body.get("Eligibility")
    if value not in ("eligible", "ineligible"):
        raise SimError(400, f"invalid scheduling eligibility {value!r}")
    node = world.get_node(request.match_info["id"])
    ev = world.node_eligibility(node.id, value == "eligible")
    return _write_response(world, {
        "EvalIDs": [ev.id] if ev else [], "EvalCreateIndex": ev.create_index if ev else 0,
        "NodeModifyIndex": node.modify_index,
    })


async def read_eval(request: web.Request) -> web.Response:
    eval_id = request.match_info["id"]

    def render(w: World) -> dict[str, Any]:
        ev = w.evals.get(eval_id)
        if ev is None:
            raise SimError(404, "eval not found")
        return eval_json(ev)

    return await _blocking_read(request, ("evals",), render)


async def list_volumes(request: web.Request) -> web.Response:
    """api-docs/volumes#list-volumes: CSI volume stubs; `type=csi` is required."""
    if request.query.get("type") != "csi":
        raise SimError(400, "unsupported volume type")

    def render(w: World) -> list[dict[str, Any]]:
        ready = [n for n in w.nodes.values() if n.status == "ready"]
        return [{
            "ID": "media", "Name": "media", "ExternalID": "nfs-media", "Namespace": "default",
            "Topologies": None, "AccessMode": "multi-node-multi-writer",
            "AttachmentMode": "file-system", "CurrentReaders": 0, "CurrentWriters": 0,
            "Schedulable": bool(ready), "PluginID": "nfs", "Provider": "nfs.csi.k8s.io",
            "ControllerRequired": False, "ControllersHealthy": 0, "ControllersExpected": 0,
            "NodesHealthy": len(ready), "NodesExpected": len(w.nodes),
            "ResourceExhausted": None, "CreateIndex": 10, "ModifyIndex": 10,
        }]

    return await _blocking_read(request, ("nodes",), render)


# status and operator

def _server_addresses(world: World, port: int) -> list[tuple[str, str]]:
    out = []
    for name in world.server_names:
        vm = next((v for v in world.vms.values() if v.name == name), None)
        out.append((name, f"{vm.ip if vm and vm.ip else '127.0.0.1'}:{port}"))
    return out


async def status_leader(request: web.Request) -> web.Response:
    """api-docs/status: the leader's RPC address, or "" when there is none."""
    world = _world(request)
    leader = world.nomad_leader()
    addr = dict(_server_addresses(world, 4647)).get(leader or "", "")
    return web.json_response(addr)


async def status_peers(request: web.Request) -> web.Response:
    world = _world(request)
    return web.json_response([addr for _, addr in _server_addresses(world, 4647)])


async def raft_configuration(request: web.Request) -> web.Response:
    """api-docs/operator/raft#read-raft-configuration."""
    world = _world(request)
    _require_leader(world)
    leader = world.nomad_leader()
    servers = [
        {"ID": world.consul_nodes[name].id if name in world.consul_nodes else name,
         "Node": f"{name}.global", "Address": addr, "Leader": name == leader, "Voter": True,
         "RaftProtocol": "3"}
        for name, addr in _server_addresses(world, 4647)
    ]
    return web.json_response({"Index": world.nomad.index, "Servers": servers})


def _server_alive(world: World, name: str) -> bool:
    node = world.consul_nodes.get(name)  # a vb VM runs both servers: one gossip fate
    return bool(node is not None and node.alive)


async def autopilot_health(request: web.Request) -> web.Response:
    """api-docs/operator/autopilot#read-health: each server's health from the leader's view
    and the cluster's FailureTolerance; HTTP 429 (same body) while anything is unhealthy."""
    world = _world(request)
    _require_leader(world)
    leader = world.nomad_leader()
    servers = []
    for name, addr in _server_addresses(world, 4647):
        alive = _server_alive(world, name)
        node = world.consul_nodes.get(name)
        servers.append({
            "ID": node.id if node else name, "Name": f"{name}.global", "Address": addr,
            "SerfStatus": "alive" if alive else "failed", "Version": "1.8.4",
            "Leader": name == leader, "LastContact": "0s" if name == leader else (
                "12.5ms" if alive else "10.000000001s"),
            "LastTerm": 2, "LastIndex": world.nomad.index if alive else 0,
            "Healthy": alive, "Voter": True, "StableSince": "2024-01-01T00:00:00Z",
        })
    healthy = sum(1 for s in servers if s["Healthy"])
    body = {"Healthy": healthy == len(servers),
            "FailureTolerance": max(0, healthy - (len(servers) // 2 + 1)), "Servers": servers}
    return web.json_response(body, status=200 if body["Healthy"] else 429,
                             headers=_meta_headers(world, world.nomad.index))


async def agent_members(request: web.Request) -> web.Response:
    """api-docs/agent#list-members: the servers' gossip pool, from this agent's view (it
    answers without a leader)."""
    world = _world(request)
    members = []
    for name, addr in _server_addresses(world, 4647):
        node = world.consul_nodes.get(name)
        ip = addr.rsplit(":", 1)[0]
        members.append({
            "Name": f"{name}.global", "Addr": ip, "Port": 4648,
            "Tags": {"role": "nomad", "region": "global", "dc": world.datacenter,
                     "port": "4647", "rpc_addr": ip, "build": "1.8.4", "vsn": "1",
                     "mvn": "1", "raft_vsn": "3", "expect": str(len(world.server_names)),
                     "id": node.id if node else name},
            "Status": "alive" if _server_alive(world, name) else "failed",
            "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
            "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
        })
    first = world.server_names[0] if world.server_names else "vb0"
    return web.json_response({"ServerName": first, "ServerRegion": "global",
                              "ServerDC": world.datacenter, "Members": members})


async def regions(_: web.Request) -> web.Response:
    return web.json_response(["global"])


async def agent_self(request: web.Request) -> web.Response:
    world = _world(request)
    return web.json_response({
        "config": {"Datacenter": world.datacenter, "Region": "global", "Version": {
            "Version": "1.8.4", "VersionPrerelease": "", "Revision": "jamlab"}},
        "member": {"Name": "vb0.global", "Tags": {"region": "global", "dc": world.datacenter,
                                                   "build": "1.8.4"}, "Status": "alive"},
        "stats": {},
    })


# -- logs -------------------------------------------------------------------------------------


async def logs(request: web.Request) -> web.StreamResponse:
    """api-docs/client#stream-logs: framed JSON (or plain bytes), optionally followed."""
    world = _world(request)
    q = request.query
    task = q.get("task", "")
    if not task:
        raise SimError(400, "must provide task name")
    log_type = q.get("type", "")
    if log_type not in ("stdout", "stderr"):
        raise SimError(400, "must provide log type (stdout/stderr)")
    origin = q.get("origin", "start")
    if origin not in ("start", "end"):
        raise SimError(400, "origin must be start or end")
    try:
        offset = int(q.get("offset", "0") or 0)
    except ValueError:
        raise SimError(400, f'strconv.ParseInt: parsing "{q["offset"]}": invalid syntax'
                       ) from None
    follow = parse_bool(request, "follow")
    plain = parse_bool(request, "plain")
    alloc = world.get_alloc(request.match_info["id"])
    if task not in alloc.task_states:
        raise SimError(400, f'unknown task name "{task}"')
    ts = alloc.task_states[task]
    if ts.state == "pending" and ts.started_at is None:
        raise SimError(404, f'task "{task}" not started yet. No logs available')
    log = world.log_file(alloc, task, log_type)
    pos = max(0, len(log.data) - offset) if origin == "end" else min(offset, len(log.data))

    resp = web.StreamResponse(headers={
        "Content-Type": "text/plain; charset=utf-8" if plain else "application/json",
    })
    await resp.prepare(request)
    settings = request.app[SETTINGS]
    ctx = request.app[CTX]
    truncations = log.truncations
    last_write = time.monotonic()

    async def send(data: bytes, event: str = "") -> None:
        nonlocal last_write
        if plain:
            if data:
                await resp.write(data)
        elif data or event:
            frame: dict[str, Any] = {"Offset": pos, "File": log.name}
            if data:
                frame["Data"] = base64.b64encode(data).decode()
            if event:
                frame["FileEvent"] = event
            await resp.write(json.dumps(frame, separators=(",", ":")).encode())
        last_write = time.monotonic()

    try:
        while True:
            if log.truncations != truncations:
                truncations = log.truncations
                pos = 0
                await send(b"", "file truncated")
            while pos < len(log.data):
                chunk = bytes(log.data[pos:pos + LOG_FRAME_MAX])
                pos += len(chunk)
                await send(chunk)
            if not follow:
                break
            fault = ctx.faults.get("nomad")
            if fault is not None and fault.kind in ("reset", "down"):
                raise StreamReset()
            if not plain and time.monotonic() - last_write >= settings["log_heartbeat"]:
                await resp.write(b"{}")
                last_write = time.monotonic()
            if alloc.terminal and pos >= len(log.data):
                break
            await world.wait_change(settings["log_heartbeat"])
            await asyncio.sleep(LOG_BATCH if len(log.data) - pos < LOG_FRAME_MAX else 0)
    except ConnectionResetError:
        return resp  # the follower went away
    await resp.write_eof()
    return resp


# -- the event stream ----------------------------------------------------------------------


def _topic_filter(request: web.Request) -> dict[str, set[str]]:
    topics: dict[str, set[str]] = {}
    for raw in request.query.getall("topic", []):
        topic, _, key = raw.partition(":")
        topics.setdefault(topic, set()).add(key or "*")
    return topics or {"*": {"*"}}


def _wanted(topics: dict[str, set[str]], topic: str, key: str, filter_keys: list[str]) -> bool:
    keys = topics.get(topic) or topics.get("*")
    if not keys:
        return False
    return "*" in keys or key in keys or any(k in keys for k in filter_keys)


def _payload(world: World, topic: str, obj: Any) -> dict[str, Any]:
    if topic == "Allocation":
        return {"Allocation": alloc_full(world, obj, with_job=False)}
    if topic == "Node":
        return {"Node": node_full(obj)}
    if topic == "Job":
        return {"Job": job_json(world, obj)}
    if topic == "Evaluation":
        return {"Evaluation": eval_json(obj)}
    if topic == "Deployment":  # api-docs/events: the Deployment topic
        from .nomad_depth import deployment_json
        return {"Deployment": deployment_json(obj)}
    return {}


async def event_stream(request: web.Request) -> web.StreamResponse:
    """api-docs/events: NDJSON batches by index, `{}` at connect and every heartbeat."""
    world = _world(request)
    ctx = request.app[CTX]
    _require_leader(world)
    try:
        since = int(request.query.get("index", "0") or 0)
    except ValueError:
        raise SimError(400, "Invalid index") from None
    topics = _topic_filter(request)
    namespace = request.query.get("namespace", "default")
    heartbeat = request.app[SETTINGS]["heartbeat"]
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    with contextlib.suppress(ConnectionResetError):  # the client went away: nothing to say
        await _stream_events(resp, world, ctx, since, topics, namespace, heartbeat)
    return resp


async def _stream_events(resp: web.StreamResponse, world: World,
                         ctx: SimContext, since: int, topics: dict[str, set[str]],
                         namespace: str, heartbeat: float) -> None:
    await resp.write(b"{}\n")
    # As Nomad's event broker (nomad/stream/event_broker.go Subscribe, StartAtClosest):
    # without `index` the subscription starts at the oldest event still in the buffer; with
    # one it starts there (inclusive) or at the closest buffered index after it; asked for an
    # index beyond the newest, it starts at the newest buffered one.
    newest = world.events[-1].index if world.events else 0
    last = 0 if since <= 0 else (newest - 1 if since > newest else since - 1)
    last_write = time.monotonic()
    while True:
        fault = ctx.faults.get("nomad")
        if fault is not None and fault.kind == "hang":
            await asyncio.sleep(0.1)  # wedged: no events, no heartbeats
            continue
        batch: dict[int, list[dict[str, Any]]] = {}
        for ev in list(world.events):
            if ev.index <= last:
                continue
            if ev.namespace and namespace != "*" and ev.namespace != namespace:
                continue
            if not _wanted(topics, ev.topic, ev.key, ev.filter_keys):
                continue
            batch.setdefault(ev.index, []).append({
                "Topic": ev.topic, "Type": ev.type, "Key": ev.key,
                "Namespace": ev.namespace, "FilterKeys": ev.filter_keys or None,
                "Index": ev.index, "Payload": _payload(world, ev.topic, ev.obj),
            })
        last = max(last, world.events[-1].index if world.events else last)
        for index in sorted(batch):
            line = json.dumps({"Index": index, "Events": batch[index]}, separators=(",", ":"))
            await resp.write(line.encode() + b"\n")
            last_write = time.monotonic()
        fault = ctx.faults.get("nomad")
        if fault is not None and fault.kind in ("reset", "down"):
            raise StreamReset()
        if fault is not None and fault.kind in ("forbidden", "error"):
            break  # Nomad ends a subscription whose token is revoked; the retry meets the fault
        if time.monotonic() - last_write >= heartbeat:
            await resp.write(b"{}\n")
            last_write = time.monotonic()
        await world.wait_events(max(0.05, heartbeat - (time.monotonic() - last_write)))
    await resp.write_eof()
