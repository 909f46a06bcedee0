"""Nomad: nodes, jobs and allocations through python-nomad, kept live by the event stream.

python-nomad covers the reads and actions. Its event-stream helper runs its own thread and
dies on a blank line, and none of its calls take `index`, so the stream is read here with
plain requests on python-nomad's own session (same token, TLS settings and connection pool).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import msgspec
import nomad
import nomad.api.exceptions as nomad_errors
import requests

from ..config import NomadConfig
from ..model import (
    Allocation,
    GroupSummary,
    Job,
    Kind,
    NomadNode,
    Quorum,
    Storage,
    TaskEvent,
    TaskInfo,
)
from ..store import Store
from . import jsonload
from .base import BackendError, Source, http_problem, timed
from .nomad_depth import NomadDepth
from .side import side_by_side
from .tls import TLSSettings

ZERO_TIME = "0001-01-01T00:00:00Z"
TOPICS = ("Node", "Job", "Allocation", "Deployment")


# -- decoding (pure) -----------------------------------------------------------------------


TASK_EVENTS = 10  # the task events an allocation keeps in the store
# Raft state has no blocking query or event: while the leader is there and every server is
# healthy it is read every QUORUM_CALM seconds (at most 3 poll intervals), as Consul's every
# 60 s; while anything is wrong at the poll interval; and at once when the probe's leader
# read (every 4 s) or a Node event says something moved
QUORUM_CALM = 15.0
DRAIN_DEADLINE_S = 3600  # a drain from jamtui: allocations have an hour to migrate


def rfc3339(value: str | None) -> float | None:
    """Nomad's RFC 3339 times (nanosecond precision; the zero value means never) → unix s."""
    if not value or value.startswith("0001-01-01"):
        return None
    try:  # Python 3.11 reads Go's form itself (`Z`, nanoseconds cut to microseconds)
        return datetime.fromisoformat(value).timestamp()
    except (ValueError, TypeError):
        pass
    text = value.replace("Z", "+00:00")
    if "." in text:  # Python takes at most microseconds
        head, rest = text.split(".", 1)
        n = len(rest) - len(rest.lstrip("0123456789"))
        digits, zone = rest[:n], rest[n:]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def decode_task(name: str, state: dict[str, Any]) -> TaskInfo:
    events = state.get("Events") or []
    last = events[-1] if events else {}
    return TaskInfo(
        name=name,
        state=state.get("State", ""),
        failed=bool(state.get("Failed")),
        restarts=int(state.get("Restarts") or 0),
        started_at=rfc3339(state.get("StartedAt")),
        finished_at=rfc3339(state.get("FinishedAt")),
        last_event=last.get("DisplayMessage") or last.get("Type", ""),
        events=tuple(
            TaskEvent(time=(int(e.get("Time") or 0)) / 1e9, type=e.get("Type", ""),
                      message=e.get("DisplayMessage") or e.get("Message") or "")
            for e in events[-TASK_EVENTS:]
        ),
    )


def decode_alloc(d: dict[str, Any]) -> Allocation:
    """An AllocationListStub, or the full Allocation that events and /allocation/<id> carry."""
    tasks = tuple(
        decode_task(name, state) for name, state in sorted((d.get("TaskStates") or {}).items())
    )
    return Allocation(
        id=d["ID"],
        name=d.get("Name", ""),
        job_id=d.get("JobID", ""),
        task_group=d.get("TaskGroup", ""),
        node_id=d.get("NodeID", ""),
        node_name=d.get("NodeName", ""),
        client_status=d.get("ClientStatus", ""),
        desired_status=d.get("DesiredStatus", ""),
        namespace=d.get("Namespace") or "default",
        job_version=int(d.get("JobVersion") or 0),
        tasks=tasks,
        client_description=d.get("ClientDescription", ""),
        desired_description=d.get("DesiredDescription", ""),
        create_time=(d.get("CreateTime") or 0) / 1e9,
        modify_time=(d.get("ModifyTime") or 0) / 1e9,
        modify_index=int(d.get("ModifyIndex") or 0),
        next_allocation=d.get("NextAllocation") or "",
        previous_allocation=d.get("PreviousAllocation") or "",
    )


# The allocation list (8.3 MB at 5,000 allocations) is decoded straight from its body into
# these structs (jsonload.typed): the fields `decode_alloc` reads, nothing else. `Any` where
# `decode_alloc` takes what comes; a default where it has one. Both must give equal records
# (tests/sources/test_decode_fast.py compares them on a real list).


class _WireEvent(msgspec.Struct, gc=False):
    Time: Any = None
    Type: Any = ""
    DisplayMessage: Any = None
    Message: Any = None


class _WireTask(msgspec.Struct, gc=False):
    State: Any = ""
    Failed: Any = None
    Restarts: Any = None
    StartedAt: Any = None
    FinishedAt: Any = None
    Events: list[_WireEvent] | None = None


class _WireAlloc(msgspec.Struct, gc=False):
    ID: Any
    Name: Any = ""
    JobID: Any = ""
    TaskGroup: Any = ""
    NodeID: Any = ""
    NodeName: Any = ""
    ClientStatus: Any = ""
    DesiredStatus: Any = ""
    Namespace: Any = None
    JobVersion: Any = None
    TaskStates: dict[str, _WireTask] | None = None
    ClientDescription: Any = ""
    DesiredDescription: Any = ""
    CreateTime: Any = None
    ModifyTime: Any = None
    ModifyIndex: Any = None
    NextAllocation: Any = None
    PreviousAllocation: Any = None


# The model's records are built with positional arguments here (a third cheaper than
# keywords, 35,000 records at 5,000 allocations): in the order of the dataclass fields, which
# test_decode_fast.py checks by setting every field to a value of its own. An allocation and
# its tasks are made without the dataclass's `__init__` (which sets each field of a frozen
# record through `object.__setattr__`, 18 for an allocation): the instance's `__dict__` is
# filled with every field by name, in the fields' order: the same record (equal, same hash
# and repr) at half the CPU (`decode_allocs` at 5k: 81-91 -> 72-79 ms). Only for plain
# records (no `__post_init__`, no slots, every field given); a 3-field `TaskEvent` gains
# nothing and keeps its `__init__`.

_new = object.__new__


def _task_info(name: str, state: str, failed: bool, restarts: int, started_at: float | None,
               finished_at: float | None, last_event: str, events: tuple[TaskEvent, ...]
               ) -> TaskInfo:
    task = _new(TaskInfo)
    task.__dict__.update(name=name, state=state, failed=failed, restarts=restarts,
                         started_at=started_at, finished_at=finished_at,
                         last_event=last_event, events=events)
    return task


def _allocation(id: str, name: str, job_id: str, task_group: str, node_id: str,
                node_name: str, client_status: str, desired_status: str, namespace: str,
                job_version: int, tasks: tuple[TaskInfo, ...], client_description: str,
                desired_description: str, create_time: float, modify_time: float,
                modify_index: int, next_allocation: str, previous_allocation: str
                ) -> Allocation:
    alloc = _new(Allocation)
    alloc.__dict__.update(
        id=id, name=name, job_id=job_id, task_group=task_group, node_id=node_id,
        node_name=node_name, client_status=client_status, desired_status=desired_status,
        namespace=namespace, job_version=job_version, tasks=tasks,
        client_description=client_description, desired_description=desired_description,
        create_time=create_time, modify_time=modify_time, modify_index=modify_index,
        next_allocation=next_allocation, previous_allocation=previous_allocation)
    return alloc


def _wire_task(name: str, s: _WireTask) -> TaskInfo:
    events = s.Events or []
    last = events[-1] if events else None
    return _task_info(
        name, s.State, bool(s.Failed), int(s.Restarts or 0),
        rfc3339(s.StartedAt), rfc3339(s.FinishedAt),  # started_at, finished_at
        (last.DisplayMessage or last.Type) if last is not None else "",  # last_event
        tuple([TaskEvent((int(e.Time or 0)) / 1e9, e.Type, e.DisplayMessage or e.Message or "")
               for e in events[-TASK_EVENTS:]]),
    )


def _wire_alloc(d: _WireAlloc) -> Allocation:
    states = d.TaskStates
    if not states:
        tasks: tuple[TaskInfo, ...] = ()
    elif len(states) == 1:
        tasks = tuple([_wire_task(n, s) for n, s in states.items()])
    else:
        tasks = tuple([_wire_task(n, s) for n, s in sorted(states.items())])
    return _allocation(
        d.ID, d.Name, d.JobID, d.TaskGroup, d.NodeID, d.NodeName,
        d.ClientStatus, d.DesiredStatus, d.Namespace or "default", int(d.JobVersion or 0),
        tasks, d.ClientDescription, d.DesiredDescription,
        (d.CreateTime or 0) / 1e9, (d.ModifyTime or 0) / 1e9, int(d.ModifyIndex or 0),
        d.NextAllocation or "", d.PreviousAllocation or "",
    )


def decode_allocs(body: bytes | str) -> list[Allocation]:
    """`/v1/allocations` (AllocationListStubs) from its body: what
    `[decode_alloc(a) for a in json.loads(body)]` gives, at a third of the CPU."""
    wire: list[_WireAlloc] | None = jsonload.typed(body, list[_WireAlloc] | None)  # null: none
    return [_wire_alloc(a) for a in wire or ()]


def decode_node(d: dict[str, Any]) -> NomadNode:
    """A NodeListStub or a full Node (whose Drain is a bool in both)."""
    return NomadNode(
        id=d["ID"],
        name=d.get("Name", ""),
        address=d.get("Address") or d.get("HTTPAddr", "").split(":")[0],
        status=d.get("Status", ""),
        eligibility=d.get("SchedulingEligibility", ""),
        drain=bool(d.get("Drain")),
        last_drain=str((d.get("LastDrain") or {}).get("Status") or ""),
        datacenter=d.get("Datacenter", ""),
        node_class=d.get("NodeClass", ""),
        node_pool=d.get("NodePool", ""),
        version=d.get("Version") or (d.get("Attributes") or {}).get("nomad.version", ""),
        modify_index=int(d.get("ModifyIndex") or 0),
    )


def decode_volumes(nodes: list[dict[str, Any]], csi: list[dict[str, Any]] | None
                   ) -> list[Storage]:
    """Host volumes from each node (NodeListStub.HostVolumes) and the cluster's CSI volumes
    (`/v1/volumes?type=csi`), as rows of the storage view."""
    out = []
    for n in nodes:
        for name, vol in sorted((n.get("HostVolumes") or {}).items()):
            out.append(Storage(node=n.get("Name", ""), storage=name, type="nomad host volume",
                               status="available" if n.get("Status") == "ready" else
                               "unavailable", used=0, total=0, shared=False,
                               content=(vol or {}).get("Path", ""), backend="nomad"))
    for v in csi or []:
        healthy = v.get("Schedulable") and v.get("NodesHealthy", 0) > 0
        out.append(Storage(node="nomad", storage=v.get("ID", ""), type="nomad csi volume",
                           status="available" if healthy else "unavailable", used=0,
                           total=int(v.get("Capacity") or 0), shared=True,
                           content=f"plugin {v.get('PluginID', '')} ({v.get('Provider', '')}"
                                   f"), {v.get('AccessMode', '') or 'unclaimed'}",
                           backend="nomad"))
    return out


def decode_job(d: dict[str, Any]) -> Job:
    """A JobListStub (the summary counts come with it; a full Job has none)."""
    summary = ((d.get("JobSummary") or {}).get("Summary")) or {}
    groups = tuple(
        GroupSummary(
            name=name,
            queued=int(s.get("Queued") or 0),
            starting=int(s.get("Starting") or 0),
            running=int(s.get("Running") or 0),
            complete=int(s.get("Complete") or 0),
            failed=int(s.get("Failed") or 0),
            lost=int(s.get("Lost") or 0),
            unknown=int(s.get("Unknown") or 0),
        )
        for name, s in sorted(summary.items())
    )
    return Job(
        id=d["ID"],
        name=d.get("Name") or d["ID"],
        type=d.get("Type", ""),
        status=d.get("Status", ""),
        stop=bool(d.get("Stop")),
        priority=int(d.get("Priority") or 0),
        namespace=d.get("Namespace") or "default",
        datacenters=tuple(d.get("Datacenters") or ()),
        groups=groups,
        periodic=bool(d.get("Periodic")),
        parameterized=bool(d.get("ParameterizedJob")),
        modify_index=int(d.get("ModifyIndex") or 0),
    )


def decode_quorum(leader: str, peers: list[str], health: dict[str, Any] | None = None,
                  members: list[dict[str, Any]] | None = None, note: str = "") -> Quorum:
    """Raft quorum from the best view the token allows: autopilot health (operator:read:
    each server's Healthy and the cluster's FailureTolerance), else the servers' gossip pool
    (`/v1/agent/members`, node:read) over the Raft peers, else the peers alone (no ACL), whose
    health is then not known and not claimed."""
    if health is not None:
        voters = [s for s in health.get("Servers") or [] if s.get("Voter", True)]
        return Quorum("nomad", leader, tuple(s.get("Address", "") for s in voters),
                      tuple(s.get("Address", "") for s in voters if s.get("Healthy")),
                      reported_tolerance=int(health.get("FailureTolerance") or 0),
                      source="autopilot", note=note)
    servers = tuple(peers)
    if members is not None:
        alive_ips = {m.get("Addr", "") for m in members if m.get("Status") == "alive"
                     and (m.get("Tags") or {}).get("role", "nomad") == "nomad"}
        alive = tuple(p for p in servers if p.rsplit(":", 1)[0] in alive_ips)
        return Quorum("nomad", leader, servers, alive, source="gossip", note=note)
    return Quorum("nomad", leader, servers, (), checked=False, source="peers", note=note)


def split_stream(buffer: str) -> tuple[list[dict[str, Any]], str]:
    """Split NDJSON text into complete objects and the unfinished rest."""
    out = []
    *lines, rest = buffer.split("\n")
    for line in lines:
        line = line.strip()
        if line:
            out.append(json.loads(line))
    return out, rest


class LineReader:
    """NDJSON bytes, in chunks as they come, to whole lines. Only each new chunk is looked
    at: a frame of megabytes (a job of thousands of allocations) in many chunks is joined
    once, when its newline comes, rather than the growing rest being concatenated and split
    again for every chunk (quadratic). A newline byte never occurs inside a UTF-8 sequence,
    so lines are cut on bytes and each decoded whole (json.loads takes UTF-8 bytes)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []  # the unfinished line, as it came

    def feed(self, chunk: bytes) -> list[bytes]:
        """The lines this chunk completes (without their newline), oldest first."""
        if b"\n" not in chunk:
            if chunk:
                self._parts.append(chunk)
            return []
        *lines, rest = chunk.split(b"\n")
        if self._parts:
            self._parts.append(lines[0])
            lines[0] = b"".join(self._parts)
            self._parts = []
        if rest:
            self._parts.append(rest)
        return lines

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held."""
        return sum(len(p) for p in self._parts)


# -- the source ----------------------------------------------------------------------------


LONG_LIVED = 5.0  # seconds; a stream closed sooner than this is retried with backoff
FIRST_READS = 6  # full reads at once: nodes, jobs, allocations, volumes, namespaces, deployments


class NomadSource(NomadDepth, Source):
    name = "nomad"
    hint = "[nomad] token / NOMAD_TOKEN, [nomad] ca_file / NOMAD_CACERT"

    def __init__(self, store: Store, cfg: NomadConfig, *, poll_interval: float = 5.0,
                 quorum_interval: float = 15.0, resync_interval: float = 300.0,
                 timeout: float = 10.0) -> None:
        super().__init__(store, cfg.address, [cfg.token])
        self.cfg = cfg
        self.poll_interval = poll_interval
        self.quorum_interval = max(min(quorum_interval, poll_interval), 0.2)
        self.quorum_calm = max(self.quorum_interval, min(QUORUM_CALM, 3 * poll_interval))
        self.resync_interval = resync_interval
        self.timeout = timeout
        self.tls = TLSSettings.of("nomad", cfg)
        self.session = self.tls.session()  # CA, client certificate, server name
        self.verify = self.tls.verify
        parts = urlsplit(cfg.address)
        self.client = nomad.Nomad(
            address=cfg.address.rstrip("/"),
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 4646,
            secure=parts.scheme == "https",
            token=cfg.token.reveal() or None,
            namespace=cfg.namespace or None,
            region=cfg.region or None,
            verify=self.verify,
            cert=self.tls.cert or (),
            timeout=int(timeout),
            session=self.session,
        )
        # jobs whose summary counts are to be read again (a Job or Allocation event named
        # them), by the job reader thread: the stream never waits on a request
        self._job_refresh: set[str] = set()
        self._job_wake = threading.Event()
        self._quorum_wake = threading.Event()  # a Node event: read the quorum again now
        self._quorum_tried = threading.Event()  # `ready` includes the first quorum read
        self._job_lock = threading.Lock()
        self._stream: requests.Response | None = None
        # Nomad replays its event buffer to a new subscription: events at or below the index
        # of the full read that covers their topic are already in the store (and may name
        # allocations garbage-collected since, which no event removes). X-Nomad-Index of
        # every list read is noted by a session hook, as python-nomad returns bodies only.
        self._read_index: dict[str, int] = {}
        self._seen: dict[str, int] = {}  # topic -> events at or below this are in the store
        self.stream_index = 0  # the newest index the stream delivered; a reconnect resumes
        self.session.hooks["response"].append(self._note_index)

    def start(self) -> None:
        if self.once:  # nothing to follow: the full reads alone, side by side
            self.spawn(lambda: self.loop(self._read_once, "first read"), "read")
        else:
            self.spawn(lambda: self.loop(self._follow, "event stream"), "events")
            self.spawn(lambda: self.loop(self._jobs_step, "job summaries"), "jobs")
        self.spawn(lambda: self.loop(self._quorum_step, "quorum"), "quorum")
        self.spawn_probe(self.poll_interval)

    def probe(self, timeout: float) -> None:
        """`/v1/status/leader` (no ACL needed): the event stream only proves itself every
        30 s, so a Nomad that fails or falls silent would otherwise show that late."""
        status, body = self._small("/v1/status/leader", timeout=timeout)
        text = body.decode("utf-8", "replace")
        if status == 500 and "leader" in text.lower():
            self._leader_seen("")  # it answered: no leader is the quorum's story
            return
        if status != 200:
            raise BackendError(http_problem("nomad", self.address, status, text, self.hint))
        leader = jsonload.loads(body)
        self._leader_seen(leader if isinstance(leader, str) else "")

    def _leader_seen(self, leader: str) -> None:
        """The probe's leader: a leader other than the quorum's (or none) reads it now."""
        quorum = self.store.get(Kind.QUORUM, "nomad")
        if quorum is not None and quorum.leader != leader:
            self._quorum_wake.set()

    def stop(self, timeout: float = 1.0) -> None:
        self.stop_event.set()
        self._quorum_wake.set()
        self._job_wake.set()
        stream = self._stream
        if stream is not None:
            # close() would wait for the reader's lock (until the next heartbeat, up to 30 s);
            # shutting the socket down ends the read at once
            sock = getattr(getattr(stream.raw, "_connection", None), "sock", None)
            with contextlib.suppress(OSError):
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
        super().stop(timeout)

    # -- failures in python-nomad's wrapping, put in words ------------------------------------

    def report_failure(self, exc: BaseException, what: str = "") -> None:
        super().report_failure(self._unwrap(exc), what)

    def _unwrap(self, exc: BaseException) -> BaseException:
        if isinstance(exc, nomad_errors.BaseNomadException):
            inner = exc.nomad_resp
            if isinstance(inner, BaseException):
                return inner
            if isinstance(inner, requests.Response):
                return BackendError(http_problem("nomad", self.address, inner.status_code,
                                                 inner.text, self.hint))
        return exc

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        self.requests_made += 1
        return fn(*args, **kw)

    # -- full reads ----------------------------------------------------------------------------

    def _note_index(self, resp: requests.Response, *_args: Any, **_kw: Any) -> None:
        index = resp.headers.get("X-Nomad-Index", "")
        path = urlsplit(resp.url).path
        if index.isdigit() and "/v1/" in path:
            self._read_index[path[path.find("/v1/"):]] = int(index)

    def sync(self) -> None:
        """Read nodes, jobs and allocations whole and make the store exactly that. The six
        reads are independent: side by side, each decoded as it answers, so the picture
        waits for the slowest (the allocations) rather than for their sum; `ready` includes
        the first quorum read, made meanwhile by its own thread."""
        for path in ("/v1/nodes", "/v1/jobs", "/v1/allocations", "/v1/deployments"):
            self._read_index.pop(path, None)
        took: list[float] = []

        def read(fn: Any, decode: Any = None) -> Any:
            answer, seconds = timed(fn)
            took.append(seconds)
            return decode(answer) if decode is not None else answer

        nodes, jobs, allocs, csi, _, _ = side_by_side([
            partial(read, partial(self._call, self.client.nodes.get_nodes)),
            partial(read, self._jobs, lambda js: [decode_job(j) for j in js]),
            partial(read, partial(self._call, self._allocations,
                                  task_states=False if self.summary else None)),
            partial(read, self._csi_volumes),
            self.read_namespaces,
            self.read_deployments,
        ], FIRST_READS, self.stop_event, f"{self.name}:read")
        read_index = self._read_index
        self._seen = {"Node": read_index.get("/v1/nodes", 0),
                      "Job": read_index.get("/v1/jobs", 0),
                      "Allocation": read_index.get("/v1/allocations", 0),
                      "Deployment": read_index.get("/v1/deployments", 0)}
        with self.store.batch():
            self.store.replace(Kind.NOMAD_NODE, [decode_node(n) for n in nodes])
            self.store.replace(Kind.STORAGE, decode_volumes(nodes, csi),
                               scope=lambda s: s.backend == "nomad")
            self.store.replace(Kind.JOB, jobs)
            self.store.replace(Kind.ALLOCATION, allocs)
        self._quorum_tried.wait(self.timeout)  # so `ready` is the whole first picture
        # how long Nomad takes to answer: its quickest list, not the 8 MB one at 5,000
        # allocations (a big answer is not a slow Nomad; a slow Nomad is slow in each)
        self.report_ok(min(took, default=0.0))

    def _allocations(self, task_states: bool | None = None) -> list[Allocation]:
        """python-nomad's get_allocations, its body read in big pieces (`whole_body`) and
        decoded here (decode_allocs): 8.3 MB at 5,000 allocations."""
        resp = self.client.allocations.request(method="get", stream=True,
                                               params={"task_states": task_states})
        return decode_allocs(jsonload.whole_body(resp))

    def _jobs(self, prefix: str | None = None) -> list[dict[str, Any]]:
        """The job list; a token with read-job but not list-jobs turns off the jobs view only
        (allocations and their events need read-job alone)."""
        try:
            jobs = self._call(self.client.jobs.get_jobs, prefix=prefix)
        except nomad_errors.URLNotAuthorizedNomadException as exc:
            resp = exc.nomad_resp
            if not isinstance(resp, requests.Response) or "not found" in resp.text:
                raise
            self.refuse("jobs", "namespace:list-jobs", "Nomad jobs: not permitted (the token "
                        "lacks list-jobs); allocations still show", Kind.JOB.value)
            return []
        self.permit("jobs")
        return jobs or []

    def _csi_volumes(self) -> list[dict[str, Any]] | None:
        # python-nomad has no volumes call; Nomad requires `type=csi` on it. A token without
        # csi-list-volume turns off the CSI rows only (host volumes come with the nodes).
        resp = self._get("/v1/volumes", params={"type": "csi"})
        if resp.status_code == 403 and "not found" not in resp.text:
            self.refuse("volumes", "namespace:csi-list-volume",
                        "Nomad volumes: not permitted (the token lacks csi-list-volume); host "
                        "volumes still show", Kind.STORAGE.value)
            return None
        self._check(resp)
        self.permit("volumes")
        return resp.json() or []

    def _get(self, path: str, params: dict[str, str] | None = None) -> requests.Response:
        self.requests_made += 1
        return self.session.get(f"{self.cfg.address.rstrip('/')}{path}", params=params,
                                headers=self.cfg.auth_headers(), verify=self.verify,
                                cert=self.tls.cert, timeout=self.timeout)

    def _check(self, resp: requests.Response, ok: tuple[int, ...] = (200,)) -> None:
        if resp.status_code not in ok:
            raise BackendError(http_problem("nomad", self.address, resp.status_code,
                                            resp.text, self.hint))

    # -- the event stream ----------------------------------------------------------------------

    def _follow(self) -> float | None:
        """Connect the stream, read everything whole, then apply events as they come."""
        url = f"{self.cfg.address.rstrip('/')}/v1/event/stream"
        params = [("topic", f"{t}:*") for t in TOPICS]
        if self.cfg.namespace:
            params.append(("namespace", self.cfg.namespace))
        if self.stream_index:  # resume: Nomad replays from there, not its whole buffer
            params.append(("index", str(self.stream_index + 1)))
        headers = self.cfg.auth_headers()
        self.requests_made += 1
        # the read timeout must outlast the 30 s heartbeat: a silent minute means a dead peer
        resp = self.session.get(url, params=params, headers=headers, stream=True,
                                verify=self.verify, cert=self.tls.cert,
                                timeout=(self.timeout, 65))
        self._stream = resp
        connected = time.monotonic()
        try:
            if resp.status_code != 200:
                raise BackendError(http_problem("nomad", self.address, resp.status_code,
                                                resp.text, self.hint))
            events = self._events(resp)
            # the connect heartbeat proves the stream is live before the full read, so no
            # change can fall between the two; events the read already holds are skipped
            # (_apply), whether replayed from Nomad's buffer or sent during the read
            next(events)
            self.sync()
            last_sync = time.monotonic()
            for batch in events:
                if self.stop_event.is_set():
                    return None
                self._apply(batch)
                self.report_ok()
                if time.monotonic() - last_sync > self.resync_interval:
                    self.sync()  # catches what has no event: garbage-collected allocations
                    last_sync = time.monotonic()
        finally:
            self._stream = None
            resp.close()
        if self.stop_event.is_set():
            return None
        if time.monotonic() - connected > LONG_LIVED:
            return 0.1  # a stream that lived a while and ended: reconnect, nothing is wrong
        raise BackendError(f"{self.address} closed the event stream at once; reconnecting.")

    def _read_once(self) -> float | None:
        """For a one-shot command: the picture once (a failure is retried with backoff by
        `loop` until the command stops listening)."""
        self.sync()
        self.stop_event.wait()
        return None

    def _events(self, resp: requests.Response) -> Iterator[dict[str, Any]]:
        reader = LineReader()
        for chunk in resp.iter_content(chunk_size=None):
            for line in reader.feed(chunk):
                if not line.strip():
                    continue
                try:
                    yield jsonload.loads(line)
                except ValueError as exc:  # NotJSON (invalid UTF-8 too)
                    raise BackendError(f"{self.address} sent a malformed event: "
                                       f"{exc}") from exc

    def _apply(self, message: dict[str, Any]) -> None:
        events = message.get("Events") or []
        if not events:
            return  # heartbeat
        index = int(message.get("Index") or 0)
        self.stream_index = max(self.stream_index, index)
        jobs: set[str] = set()
        with self.store.batch():
            for ev in events:
                topic, payload = ev.get("Topic"), ev.get("Payload") or {}
                at = int(ev.get("Index") or index)
                if at <= self._seen.get(str(topic), 0):
                    # already in the full read (replayed from Nomad's buffer); the job list,
                    # read beside the allocations, may be older than this allocation: its
                    # job's summary (counts by status) is read again
                    if topic == "Allocation" and at > self._seen.get("Job", 0):
                        jobs.add(str((payload.get("Allocation") or {}).get("JobID") or ""))
                    continue
                if topic == "Allocation" and "Allocation" in payload:
                    alloc = decode_alloc(payload["Allocation"])
                    self._upsert_newer(Kind.ALLOCATION, alloc)
                    jobs.add(alloc.job_id)
                elif topic == "Node" and "Node" in payload:
                    self._quorum_wake.set()  # a server's VM may have gone with it
                    if ev.get("Type") == "NodeDeregistration":
                        self.store.remove(Kind.NOMAD_NODE, payload["Node"]["ID"])
                    else:
                        raw = payload["Node"]
                        self._upsert_newer(Kind.NOMAD_NODE, decode_node(raw))
                        name = raw.get("Name", "")
                        self.store.replace(
                            Kind.STORAGE, decode_volumes([raw], None),
                            scope=lambda s, n=name: s.backend == "nomad" and s.node == n)  # type: ignore[misc]
                elif topic == "Job":
                    jobs.add(ev.get("Key", ""))
                elif topic == "Deployment":
                    self.apply_deployment(payload)
        self._refresh_jobs(jobs - {""})

    def _refresh_jobs(self, job_ids: set[str]) -> None:
        """Have these jobs' summaries read again by the job reader; the stream goes on at once
        (a read per batch held every next event behind it: 0.1-0.7 s at 5,000 allocations)."""
        if not job_ids:
            return
        with self._job_lock:
            self._job_refresh |= job_ids
        self._job_wake.set()

    def _jobs_step(self) -> float | None:
        """The job reader: each job named since its last pass, read once (events for a job
        that come meanwhile make one read after, never none)."""
        self._job_wake.wait(60)  # set by an event's job, and by stop
        self._job_wake.clear()
        with self._job_lock:
            due, self._job_refresh = self._job_refresh, set()
        try:
            for job_id in sorted(due):
                if self.stop_event.is_set():
                    break
                self._refresh_job(job_id)
                due.discard(job_id)
        finally:
            if due:  # a read failed: the rest are read again after the loop's backoff
                with self._job_lock:
                    self._job_refresh |= due
                self._job_wake.set()
        return None

    def _upsert_newer(self, kind: Kind, obj: Any) -> None:
        current = self.store.get(kind, obj.id)
        if current is None or current.modify_index <= obj.modify_index:
            self.store.upsert(kind, obj)

    def _refresh_job(self, job_id: str) -> None:
        """Job events carry the full Job, which has no summary counts: read its stub."""
        stubs = self._jobs(prefix=job_id)
        if "jobs" in self._refused:
            return
        stub = next((j for j in stubs if j["ID"] == job_id), None)
        if stub is None:
            self.store.remove(Kind.JOB, job_id)
        else:
            self.store.upsert(Kind.JOB, decode_job(stub))

    # -- quorum --------------------------------------------------------------------------------

    def _quorum_step(self) -> None:
        # Raft state has no blocking query or event: see QUORUM_CALM
        try:
            quorum = self.read_quorum()
        finally:
            self._quorum_tried.set()
        calm = quorum.has_leader and quorum.checked and not quorum.note and \
            set(quorum.servers) <= set(quorum.alive)
        self._quorum_wake.wait(self.quorum_calm if calm else self.quorum_interval)
        self._quorum_wake.clear()

    def read_quorum(self) -> Quorum:
        try:
            leader = self._call(self.client.status.leader.get_leader) or ""
        except nomad_errors.BaseNomadException as exc:
            inner = self._unwrap(exc)
            if not isinstance(inner, BackendError) or "leader" not in str(inner).lower():
                raise
            leader = ""
        health = None
        note = ""
        if leader:
            resp = self._get("/v1/operator/autopilot/health")
            if resp.status_code == 403:
                note = "the token lacks operator:read"
            else:
                self._check(resp, ok=(200, 429))  # 429: read fine, something is unhealthy
                health = resp.json()
        members = None
        peers: list[str] = []
        if health is None:
            peers = self._call(self.client.status.peers.get_peers) or []  # needs no ACL
            resp = self._get("/v1/agent/members")
            if resp.status_code == 403:
                note = "the token lacks operator:read and node:read" if note else (
                    "the token lacks node:read")
            else:
                self._check(resp)
                members = resp.json().get("Members") or []
        if note and health is None:
            partial = ("servers' health from gossip (agent/members)" if members is not None
                       else "servers from status/peers only, their health NOT checked")
            self.refuse("quorum", "operator:read" if "operator" in note else "node:read",
                        f"quorum: {note}; {partial}", Kind.QUORUM.value)
            note = f"{note}: {partial}"
        else:
            self.permit("quorum")
        quorum = decode_quorum(leader, peers, health, members, note)
        self.store.upsert(Kind.QUORUM, quorum)
        if not leader:
            self.report_ok(problem=f"Nomad has no cluster leader: the majority of its "
                           f"{len(quorum.servers)} servers is gone. Start the vb servers.")
        return quorum

    # -- actions (called from workers; each returns what Nomad answered) -----------------------

    def restart_alloc(self, alloc_id: str, task: str | None = None) -> dict[str, Any]:
        body = {"TaskName": task} if task else {}  # no task: Nomad restarts the running ones
        return self._action("post", f"client/allocation/{alloc_id}/restart", body)

    def stop_alloc(self, alloc_id: str) -> dict[str, Any]:
        return self._call(self.client.allocation.stop_allocation, alloc_id)

    def stop_job(self, job_id: str, purge: bool = False) -> dict[str, Any]:
        params = {"namespace": self._ns_for_job(job_id)}  # a job lives in one namespace
        if purge:
            params["purge"] = "true"
        return dict(self._request("DELETE", f"/v1/job/{job_id}", params=params))

    def start_job(self, job_id: str) -> dict[str, Any]:
        """Nomad has no 'start': re-register the stopped job's own spec with Stop unset."""
        job = self.job_spec(job_id)
        job["Stop"] = False
        return dict(self._request("POST", f"/v1/job/{job_id}", {"Job": job},
                                  params={"namespace": self._ns_for_job(job_id)}))

    def scale(self, job_id: str, group: str, count: int, message: str = "") -> dict[str, Any]:
        body = {"Count": count, "Target": {"Group": group}, "Message": message or "jamtui"}
        return dict(self._request("POST", f"/v1/job/{job_id}/scale", body,
                                  params={"namespace": self._ns_for_job(job_id)}))

    def drain(self, node_id: str, enable: bool, deadline_s: int = DRAIN_DEADLINE_S,
              mark_eligible: bool | None = None) -> dict[str, Any]:
        """`MarkEligible` with a drain turned off makes the node eligible again (as `nomad
        node drain -disable` does unless -keep-ineligible)."""
        spec = {"Deadline": deadline_s * 10**9, "IgnoreSystemJobs": False} if enable else None
        return self._call(self.client.node.drain_node_with_spec, node_id, spec, mark_eligible)

    def eligibility(self, node_id: str, eligible: bool) -> dict[str, Any]:
        return self._call(self.client.node.eligible_node, node_id,
                          eligible=eligible or None, ineligible=(not eligible) or None)

    def evaluation_status(self, eval_id: str) -> str:
        return str(self._call(self.client.evaluation.get_evaluation, eval_id).get("Status", ""))

    def _action(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.cfg.address.rstrip('/')}/v1/{path}"
        headers = self.cfg.auth_headers()
        self.requests_made += 1
        resp = self.session.request(method, url, json=body, headers=headers,
                                    verify=self.verify, cert=self.tls.cert,
                                    timeout=self.timeout)
        if not resp.ok:
            raise BackendError(http_problem("nomad", self.address, resp.status_code,
                                            resp.text, self.hint))
        return resp.json() if resp.content else {}
