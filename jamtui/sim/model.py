"""The embedded lab's state: plain mutable records, one per thing a real lab has.

The servers in this package render these into each backend's wire format; nothing here
knows about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GiB = 1024**3
MiB = 1024**2


# -- Proxmox -------------------------------------------------------------------------------


@dataclass
class Storage:
    storage: str
    type: str
    content: str
    total: int
    used: int
    shared: bool = False


@dataclass
class Hypervisor:
    name: str
    address: str
    cores: int
    memory: int  # bytes
    status: str = "online"
    cpu: float = 0.02
    base_mem: int = 2 * GiB
    mem_used: int = 0
    booted_at: float = 0.0
    storages: list[Storage] = field(default_factory=list)


@dataclass
class Snapshot:
    """A guest's snapshot (`/qemu/{vmid}/snapshot`): `parent` links make the tree."""

    name: str
    description: str = ""
    snaptime: int = 0
    vmstate: bool = False  # with the guest's RAM (only a running VM's snapshot has it)
    parent: str | None = None


@dataclass
class VM:
    vmid: int
    name: str
    node: str
    group: str | None
    ip: str | None
    cores: int
    memory: int  # MiB, as Proxmox configures it
    disk: int  # GiB
    status: str = "stopped"
    cpu: float = 0.0
    mem: int = 0
    started_at: float = 0.0
    template: bool = False
    tags: str = ""
    netin: int = 0
    netout: int = 0
    pid: int = 0
    booted: bool = False  # the guest OS is up and its agents have joined
    configured: bool = True  # Ansible has installed its agents (a fresh clone: not yet)
    lock: str | None = None
    description: str = ""
    kind: str = "qemu"  # "lxc": a container (its own dict in the world, /nodes/{n}/lxc)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    parent: str | None = None  # the snapshot "current" (the running state) descends from


@dataclass
class PveTask:
    upid: str
    node: str
    type: str
    id: str
    user: str
    starttime: int
    pid: int
    pstart: int
    status: str = "running"
    exitstatus: str | None = None
    endtime: int | None = None
    log: list[str] = field(default_factory=list)


# -- Nomad ---------------------------------------------------------------------------------


@dataclass
class ServiceSpec:
    name: str
    port_label: str
    tags: list[str] = field(default_factory=list)
    connect: bool = False
    upstreams: list[tuple[str, int]] = field(default_factory=list)
    check_path: str | None = "/health"


@dataclass
class TaskSpec:
    name: str
    driver: str = "docker"
    config: dict[str, Any] = field(default_factory=dict)
    cpu: int = 100
    memory: int = 128
    # what the simulated task does: "serve" answers HTTP, "run" runs forever quietly,
    # "batch" runs a few seconds then exits 0
    behaviour: str = "serve"


@dataclass
class UpdateSpec:
    """A group's `update` block (job-specification/update); the lab models canaries."""

    max_parallel: int = 1
    canary: int = 0
    auto_promote: bool = False
    auto_revert: bool = False
    min_healthy_time_ns: int = 10 * 10**9
    healthy_deadline_ns: int = 5 * 60 * 10**9
    progress_deadline_ns: int = 10 * 60 * 10**9


@dataclass
class Constraint:
    """job-specification/constraint: `${attr.kernel.name} = linux`."""

    ltarget: str
    rtarget: str
    operand: str = "="

    def __str__(self) -> str:  # nomad/structs Constraint.String
        return f"{self.ltarget} {self.operand} {self.rtarget}"


@dataclass
class GroupSpec:
    name: str
    count: int
    tasks: list[TaskSpec]
    ports: list[str] = field(default_factory=list)
    services: list[ServiceSpec] = field(default_factory=list)
    update: UpdateSpec | None = None
    constraints: list[Constraint] = field(default_factory=list)


@dataclass
class Job:
    id: str
    type: str  # service | batch | system
    groups: list[GroupSpec]
    name: str = ""
    namespace: str = "default"
    datacenters: list[str] = field(default_factory=lambda: ["jamlab"])
    node_pool: str = "default"
    priority: int = 50
    status: str = "pending"
    status_description: str = ""
    stop: bool = False
    version: int = 0
    submit_time: int = 0
    create_index: int = 0
    modify_index: int = 0
    job_modify_index: int = 0
    meta: dict[str, str] = field(default_factory=dict)
    periodic: bool = False
    parameterized: bool = False
    spec: dict[str, Any] = field(default_factory=dict)  # the submitted Job JSON, if any
    constraints: list[Constraint] = field(default_factory=list)
    update: UpdateSpec | None = None  # the job-level update block (groups inherit it)
    stable: bool = False
    queued: dict[str, int] = field(default_factory=dict)  # group -> allocations not placed

    def group(self, name: str) -> GroupSpec | None:
        return next((g for g in self.groups if g.name == name), None)


@dataclass
class TaskState:
    state: str = "pending"
    failed: bool = False
    restarts: int = 0
    last_restart: int | None = None  # unix ns
    started_at: int | None = None  # unix ns
    finished_at: int | None = None  # unix ns
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LogFile:
    """One task log file, as Nomad's logmon writes it (alloc/logs/<task>.<type>.<n>)."""

    task: str
    type: str  # stdout | stderr
    index: int = 0
    data: bytearray = field(default_factory=bytearray)
    truncations: int = 0  # bumped when the file is truncated, so followers notice

    @property
    def name(self) -> str:
        return f"alloc/logs/{self.task}.{self.type}.{self.index}"


@dataclass
class Alloc:
    id: str
    eval_id: str
    name: str
    job_id: str
    task_group: str
    node_id: str
    namespace: str = "default"
    job_type: str = "service"
    job_version: int = 0
    desired_status: str = "run"
    desired_description: str = ""
    client_status: str = "pending"
    client_description: str = ""
    task_states: dict[str, TaskState] = field(default_factory=dict)
    create_index: int = 0
    modify_index: int = 0
    alloc_modify_index: int = 0
    create_time: int = 0
    modify_time: int = 0
    ports: dict[str, int] = field(default_factory=dict)
    previous_allocation: str = ""
    next_allocation: str = ""
    followup_eval_id: str = ""
    migrate: bool = False
    logs: dict[tuple[str, str], LogFile] = field(default_factory=dict)
    deployment_id: str = ""
    canary: bool = False
    healthy: bool | None = None  # the deployment's health verdict, None while unknown
    cpu: int = 100  # what its tasks asked for (MHz, MiB): the scheduler's bin packing
    memory: int = 128
    usage: dict[str, tuple[float, int]] = field(default_factory=dict)  # task -> (MHz, bytes)

    @property
    def terminal(self) -> bool:
        return self.client_status in ("complete", "failed", "lost")


@dataclass
class NomadNode:
    id: str
    name: str
    vm: str
    address: str
    datacenter: str = "jamlab"
    node_pool: str = "default"
    node_class: str = ""
    version: str = "1.8.4"
    status: str = "initializing"
    status_description: str = ""
    eligibility: str = "eligible"
    drain: bool = False
    drain_deadline_ns: int = 0
    # the last drain (nomad/structs DrainMetadata): started, updated (ns), status draining |
    # complete | canceled; None until the first (state_store updateNodeDrainImpl)
    last_drain: tuple[int, int, str] | None = None
    create_index: int = 0
    modify_index: int = 0
    status_updated_at: int = 0
    drivers: tuple[str, ...] = ("docker", "exec", "raw_exec")
    cores: int = 4
    memory_mb: int = 8192
    events: list[dict[str, Any]] = field(default_factory=list)
    host_volumes: dict[str, str] = field(default_factory=dict)  # name -> path


@dataclass
class Evaluation:
    id: str
    job_id: str
    triggered_by: str
    namespace: str = "default"
    type: str = "service"
    priority: int = 50
    status: str = "complete"
    node_id: str = ""
    create_index: int = 0
    modify_index: int = 0
    create_time: int = 0
    modify_time: int = 0
    status_description: str = ""
    previous_eval: str = ""
    blocked_eval: str = ""
    deployment_id: str = ""
    failed_tg_allocs: dict[str, dict[str, Any]] = field(default_factory=dict)
    queued_allocations: dict[str, int] = field(default_factory=dict)


@dataclass
class DeploymentState:
    """One group's progress in a deployment (api-docs/deployments: TaskGroups)."""

    desired_total: int
    desired_canaries: int = 0
    auto_promote: bool = False
    auto_revert: bool = False
    promoted: bool = False
    placed_canaries: list[str] = field(default_factory=list)
    placed_allocs: int = 0
    healthy_allocs: int = 0
    unhealthy_allocs: int = 0
    progress_deadline_ns: int = 10 * 60 * 10**9
    require_progress_by: int = 0  # unix ns


@dataclass
class Deployment:
    id: str
    job_id: str
    namespace: str
    job_version: int
    job_modify_index: int
    job_create_index: int
    task_groups: dict[str, DeploymentState]
    status: str = "running"
    status_description: str = "Deployment is running"
    create_index: int = 0
    modify_index: int = 0
    create_time: int = 0
    modify_time: int = 0

    @property
    def active(self) -> bool:
        return self.status in ("running", "paused", "pending", "blocked", "unblocking")


@dataclass
class Namespace:
    name: str
    description: str = ""
    create_index: int = 1
    modify_index: int = 1


@dataclass
class NomadEvent:
    index: int
    topic: str
    type: str
    key: str
    namespace: str
    filter_keys: list[str]
    obj: Any  # a snapshot of the object at the time of the event


# -- Consul --------------------------------------------------------------------------------


@dataclass
class ConsulNode:
    id: str
    name: str
    vm: str
    address: str
    datacenter: str = "jamlab"
    server: bool = False
    alive: bool = True
    left: bool = False  # left gracefully (`consul leave`): out of the catalog, member "left"
    meta: dict[str, str] = field(default_factory=dict)
    create_index: int = 0
    modify_index: int = 0


@dataclass
class Check:
    node: str
    check_id: str
    name: str
    status: str = "passing"
    notes: str = ""
    output: str = ""
    service_id: str = ""
    service_name: str = ""
    service_tags: list[str] = field(default_factory=list)
    type: str = ""
    interval: str = ""
    create_index: int = 0
    modify_index: int = 0


@dataclass
class ServiceInstance:
    id: str
    name: str
    node: str
    address: str
    port: int
    tags: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    kind: str = ""
    proxy: dict[str, Any] | None = None
    alloc_id: str = ""
    create_index: int = 0
    modify_index: int = 0


@dataclass
class KVEntry:
    key: str
    value: bytes
    flags: int = 0
    create_index: int = 0
    modify_index: int = 0
    lock_index: int = 0
    session: str = ""  # the session holding the lock (api-docs/kv: `Session`)


@dataclass
class ConsulSession:
    """A session (api-docs/session): what a KV lock is held by."""

    id: str
    name: str
    node: str
    lock_delay_ns: int = 15 * 10**9
    behavior: str = "release"  # release | delete: what happens to its locks when it ends
    ttl: str = ""
    node_checks: list[str] = field(default_factory=lambda: ["serfHealth"])
    service_checks: list[dict[str, str]] | None = None
    create_index: int = 0
    modify_index: int = 0
    renewed: float = 0.0  # time.monotonic() of its creation or last renewal (TTL sessions)


@dataclass
class Intention:
    id: str
    source: str
    destination: str
    action: str  # allow | deny
    description: str = ""
    create_index: int = 0
    modify_index: int = 0
    created_at: str = ""
    updated_at: str = ""

    @property
    def precedence(self) -> int:
        # Consul's precedence table: exact/exact 9, exact dest + wildcard source 8,
        # wildcard dest + exact source 6, wildcard/wildcard 5.
        if self.destination != "*":
            return 9 if self.source != "*" else 8
        return 6 if self.source != "*" else 5
