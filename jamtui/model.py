"""The lab as jamtui sees it: frozen, plain records that every layer shares.

Sources build these from wire data; the store holds them keyed by `Kind` and id; the UI and the
headless commands only read them. Field names are the `jamtui snapshot --json` schema: keep
them stable (add, don't rename).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """Every kind of object in the store, named as the snapshot's top-level keys."""

    HYPERVISOR = "hypervisors"
    VM = "vms"
    STORAGE = "storages"
    NOMAD_NODE = "nomad_nodes"
    JOB = "jobs"
    ALLOCATION = "allocations"
    SERVICE = "services"
    INSTANCE = "service_instances"
    MEMBER = "consul_members"
    INTENTION = "intentions"
    ROUTE = "routes"
    HAPROXY = "haproxy"
    QUORUM = "quorum"
    BACKEND = "backends"
    TLS = "tls"  # per backend: verification off, the peer certificate's expiry
    PVE_TASK = "pve_tasks"  # Proxmox's /cluster/tasks: who did what to which guest
    DEPLOYMENT = "deployments"  # Nomad deployments (live through the Deployment topic)
    NAMESPACE = "namespaces"  # Nomad namespaces


class Health(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"  # not heard from yet


# -- Proxmox -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hypervisor:
    name: str
    status: str  # online | offline | unknown
    cpu: float  # fraction of all cores, 0..1
    maxcpu: int
    mem: int  # bytes
    maxmem: int
    disk: int = 0
    maxdisk: int = 0
    uptime: int = 0  # seconds

    @property
    def id(self) -> str:
        return self.name


@dataclass(frozen=True)
class VM:
    vmid: int
    name: str
    node: str  # the hypervisor
    status: str  # running | stopped | ...
    cpu: float  # fraction of its cores, 0..1
    cpus: int
    mem: int
    maxmem: int
    uptime: int = 0
    ip: str | None = None  # from the guest agent, else the cloud-init config
    group: str | None = None  # the inventory group: vb, vs, bastion ...
    template: bool = False
    tags: tuple[str, ...] = ()
    lock: str | None = None
    type: str = "qemu"  # qemu | lxc (a container), as /cluster/resources says

    @property
    def id(self) -> str:
        return str(self.vmid)

    @property
    def is_container(self) -> bool:
        return self.type == "lxc"


@dataclass(frozen=True)
class PveTask:
    """One of `/cluster/tasks`: a finished task's `status` is its exit status ("OK" or the
    error), a running one's is "running"."""

    upid: str
    node: str
    type: str  # qmstart, qmsnapshot, qmigrate, vzstart ...
    object_id: str  # the task's `id`: a VMID for guest tasks, else a storage or ""
    user: str
    starttime: int
    endtime: int | None = None
    status: str = "running"

    @property
    def id(self) -> str:
        return self.upid

    @property
    def running(self) -> bool:
        return self.endtime is None

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    def duration(self, now: float) -> float:
        return max(0.0, (self.endtime if self.endtime is not None else now) - self.starttime)


@dataclass(frozen=True)
class Snapshot:
    """A guest's snapshot (`/qemu/{vmid}/snapshot`); `current` is the guest's own state."""

    name: str
    description: str = ""
    snaptime: int = 0
    vmstate: bool = False
    parent: str | None = None
    running: bool = False  # only for `current`


@dataclass(frozen=True)
class Volume:
    """One of a storage's `…/storage/{storage}/content`."""

    volid: str
    content: str  # images | rootdir | iso | vztmpl | backup | snippets
    format: str
    size: int
    vmid: int | None = None
    ctime: int = 0
    notes: str = ""


@dataclass(frozen=True)
class Storage:
    node: str
    storage: str
    type: str
    status: str
    used: int
    total: int
    shared: bool = False
    content: str = ""  # Proxmox content types; for Nomad volumes, the path or plugin
    backend: str = "proxmox"  # proxmox storages; nomad host and CSI volumes

    @property
    def id(self) -> str:
        return f"{self.node}/{self.storage}"


# -- Nomad ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NomadNode:
    id: str
    name: str
    address: str
    status: str  # initializing | ready | down | disconnected
    eligibility: str  # eligible | ineligible
    drain: bool
    datacenter: str = ""
    node_class: str = ""
    node_pool: str = ""
    version: str = ""
    modify_index: int = 0
    last_drain: str = ""  # LastDrain.Status: draining | complete | canceled; "" none known


@dataclass(frozen=True)
class GroupSummary:
    name: str
    queued: int = 0
    starting: int = 0
    running: int = 0
    complete: int = 0
    failed: int = 0
    lost: int = 0
    unknown: int = 0


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    type: str  # service | batch | system | sysbatch
    status: str  # pending | running | dead
    stop: bool = False
    priority: int = 50
    namespace: str = "default"
    datacenters: tuple[str, ...] = ()
    groups: tuple[GroupSummary, ...] = ()
    periodic: bool = False
    parameterized: bool = False
    modify_index: int = 0


@dataclass(frozen=True)
class TaskEvent:
    time: float  # unix seconds
    type: str  # Received, Started, Restarting, Killed ...
    message: str


@dataclass(frozen=True)
class TaskInfo:
    name: str
    state: str  # pending | running | dead
    failed: bool = False
    restarts: int = 0
    started_at: float | None = None  # unix seconds
    finished_at: float | None = None
    last_event: str = ""
    events: tuple[TaskEvent, ...] = ()  # the most recent, oldest first


@dataclass(frozen=True)
class Allocation:
    id: str
    name: str  # job.group[index]
    job_id: str
    task_group: str
    node_id: str
    node_name: str
    client_status: str  # pending | running | complete | failed | lost | unknown
    desired_status: str  # run | stop | evict
    namespace: str = "default"
    job_version: int = 0
    tasks: tuple[TaskInfo, ...] = ()
    client_description: str = ""
    desired_description: str = ""
    create_time: float = 0.0  # unix seconds
    modify_time: float = 0.0
    modify_index: int = 0
    next_allocation: str = ""
    previous_allocation: str = ""

    @property
    def short_id(self) -> str:
        return self.id[:8]


@dataclass(frozen=True)
class DeploymentGroup:
    """One task group's progress in a deployment."""

    name: str
    desired_total: int = 0
    desired_canaries: int = 0
    placed_canaries: int = 0
    placed: int = 0
    healthy: int = 0
    unhealthy: int = 0
    promoted: bool = False
    auto_promote: bool = False


@dataclass(frozen=True)
class Deployment:
    id: str
    job_id: str
    namespace: str = "default"
    job_version: int = 0
    status: str = ""  # running | paused | successful | failed | cancelled | pending | ...
    status_description: str = ""
    groups: tuple[DeploymentGroup, ...] = ()
    create_index: int = 0
    modify_index: int = 0

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def active(self) -> bool:
        return self.status in ("running", "paused", "pending", "blocked", "unblocking")

    @property
    def needs_promotion(self) -> bool:
        return self.active and any(g.desired_canaries and not g.promoted for g in self.groups)


@dataclass(frozen=True)
class Namespace:
    name: str
    description: str = ""

    @property
    def id(self) -> str:
        return self.name


# -- Consul --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckInfo:
    check_id: str
    name: str
    status: str  # passing | warning | critical | maintenance
    output: str = ""
    service_id: str = ""  # empty for node checks such as serfHealth


@dataclass(frozen=True)
class ServiceInstance:
    id: str  # "<node>/<service id>": a service id is only unique on its node
    service: str
    service_id: str
    node: str
    address: str
    port: int
    tags: tuple[str, ...] = ()
    checks: tuple[CheckInfo, ...] = ()
    kind: str = ""  # "" or connect-proxy, mesh-gateway ...
    alloc_id: str = ""  # the Nomad allocation behind it, when Nomad registered it

    @property
    def status(self) -> str:
        """The worst of its checks (node checks included), as Consul's ?passing judges."""
        return worst(c.status for c in self.checks)


@dataclass(frozen=True)
class Service:
    name: str
    tags: tuple[str, ...]
    passing: int = 0
    warning: int = 0
    critical: int = 0

    @property
    def id(self) -> str:
        return self.name


@dataclass(frozen=True)
class Member:
    name: str
    address: str
    status: str  # alive | leaving | left | failed
    role: str  # server | client
    maintenance: bool = False  # node maintenance mode (`consul maint`) is on

    @property
    def id(self) -> str:
        return self.name


@dataclass(frozen=True)
class Intention:
    source: str
    destination: str
    action: str  # allow | deny
    precedence: int = 0
    description: str = ""

    @property
    def id(self) -> str:
        return f"{self.source}->{self.destination}"


@dataclass(frozen=True)
class Quorum:
    """A Raft cluster's state: the failure that hurt the original lab most."""

    system: str  # consul | nomad
    leader: str  # address, "" when there is none
    servers: tuple[str, ...]  # configured voters
    alive: tuple[str, ...]  # voters known alive (healthy, when autopilot said so)
    checked: bool = True  # False: no server's health could be read; `alive` means nothing
    reported_tolerance: int | None = None  # FailureTolerance as autopilot reported it
    source: str = ""  # how it was read: autopilot | gossip | peers
    note: str = ""  # what could not be checked, and why, in words

    @property
    def id(self) -> str:
        return self.system

    @property
    def has_leader(self) -> bool:
        return bool(self.leader)

    @property
    def failure_tolerance(self) -> int | None:
        """How many more servers can be lost before the cluster has no majority; None when
        the servers' health was not checked."""
        if not self.checked:
            return None
        if self.reported_tolerance is not None:
            return self.reported_tolerance
        majority = len(self.servers) // 2 + 1
        return len(self.alive) - majority  # negative: the majority is already gone


# -- Traffic -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A Fabio route to one target. Either one instance's (`fabio` names it), or, as the
    Fabio source publishes them, one route however many instances carry it: `fabio` is ""
    and `fabios` names the instances whose table has it, `read` every instance whose table is
    held (so one read that lacks it is known to), `unread` those not read yet (nothing is
    known of them). These tuples are shared by every route of one picture: 100 Fabios with
    identical tables are 1 record per route, not 100."""

    fabio: str  # which Fabio instance reported it ("": see fabios)
    service: str
    host: str
    path: str
    dst: str
    weight: float
    opts: str = ""
    fabios: tuple[str, ...] = ()  # the instances carrying it (when fabio is "")
    read: tuple[str, ...] = ()  # every instance whose table was read (when fabio is "")
    unread: tuple[str, ...] = ()  # instances whose table was not read yet

    @property
    def id(self) -> str:
        if self.fabio or not self.fabios:
            return f"{self.fabio}|{self.host}{self.path}|{self.dst}"
        return f"{self.host}{self.path}|{self.dst}|{self.service}|{self.weight!r}|{self.opts}"

    @property
    def carriers(self) -> tuple[str, ...]:
        """The Fabio instances that have it, as read."""
        return self.fabios or ((self.fabio,) if self.fabio else ())

    def per_instance(self) -> list[Route]:
        """One record per carrying instance (the snapshot's `routes[]`, as it always was)."""
        if self.fabio:
            return [self]
        return [Route(f, self.service, self.host, self.path, self.dst, self.weight, self.opts)
                for f in self.fabios]


@dataclass(frozen=True)
class HAProxyRow:
    proxy: str  # pxname
    name: str  # svname: FRONTEND, BACKEND or the server
    type: str  # frontend | backend | server
    status: str  # OPEN, UP, DOWN, MAINT, no check ...
    sessions: int = 0  # scur
    sessions_total: int = 0  # stot
    request_rate: int = 0  # req_rate (frontends) or rate
    requests_total: int = 0  # req_tot
    hrsp_2xx: int = 0
    hrsp_4xx: int = 0
    hrsp_5xx: int = 0
    check_status: str = ""
    last_change: int = 0  # seconds since the last status change

    @property
    def id(self) -> str:
        return f"{self.proxy}/{self.name}"


# -- backend health ------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A capability the token lacks: one feature off, said in words where it would show."""

    feature: str  # what the operator loses: quorum, volumes, intentions, members ...
    capability: str  # the ACL capability or Proxmox privilege, e.g. operator:read, VM.Audit
    message: str  # e.g. "Nomad volumes: not permitted (the token lacks csi-list-volume)"
    kind: str = ""  # the Kind whose panes say it, when there is one


@dataclass(frozen=True)
class BackendStatus:
    name: str  # proxmox | nomad | consul | fabio | haproxy
    health: Health
    address: str = ""
    last_error: str = ""  # what failed and what to do, in words
    last_success: float | None = None  # unix seconds
    latency_ms: float | None = None
    # configured and started, no answer yet: since when (unix s); None once it has answered
    waiting_since: float | None = None
    refused: tuple[Refusal, ...] = ()  # features off because the token may not read them

    @property
    def id(self) -> str:
        return self.name

    @property
    def waiting(self) -> bool:
        """Configured and asked, but nothing heard back yet (not the same as fine)."""
        return self.health is Health.UNKNOWN and self.waiting_since is not None

    @property
    def stale(self) -> bool:
        return self.health is Health.DOWN


_SEVERITY = {"passing": 0, "maintenance": 1, "warning": 2, "critical": 3}


def worst(statuses: object) -> str:
    """The worst of Consul check statuses; passing when there are none."""
    result = "passing"
    for status in statuses:  # type: ignore[attr-defined]
        if _SEVERITY.get(status, 3) > _SEVERITY[result]:
            result = status
    return result


@dataclass(frozen=True)
class TLSInfo:
    """What jamtui knows of one backend's TLS: whether it verifies, and the certificate the
    server presented (proxmox | nomad | consul | haproxy, the last its HTTPS frontend)."""

    backend: str
    address: str = ""
    insecure: bool = False  # verification turned off by the operator
    not_before: float | None = None  # unix seconds
    not_after: float | None = None
    names: tuple[str, ...] = ()  # the certificate's DNS names and IP addresses
    checked_at: float | None = None
    error: str = ""  # why the certificate could not be read

    @property
    def id(self) -> str:
        return self.backend
