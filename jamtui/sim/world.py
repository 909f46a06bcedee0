"""The embedded JamLab's world: one model that every simulated backend reads and changes.

Everything here runs on the lab's asyncio loop; the servers call it from their handlers and
tests reach it through `Lab.call`. Actions propagate as in a real lab: a stopped VM takes its
Consul agent and Nomad client with it, lost allocations are rescheduled, two of three `vb`
servers down means no leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import ipaddress
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from ..inventory import Inventory
from .model import (
    VM,
    Alloc,
    Check,
    ConsulNode,
    ConsulSession,
    Deployment,
    Evaluation,
    GiB,
    GroupSpec,
    Hypervisor,
    Intention,
    Job,
    KVEntry,
    LogFile,
    MiB,
    Namespace,
    NomadEvent,
    NomadNode,
    PveTask,
    ServiceInstance,
    ServiceSpec,
    Snapshot,
    Storage,
    TaskSpec,
    UpdateSpec,
)
from .scheduler import Scheduler, index_of, spec_key, task_event

TEMPLATE_VMID = 9000
LXC_VMID = 400  # the demo's container (ns1)
TEMPLATE_NAME = "debian-12-cloudinit"


class SimError(Exception):
    """An action the lab refuses, with the HTTP status the real backend answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Runtime(Protocol):
    """What runs an allocation's tasks for real (HTTP servers on loopback in the lab)."""

    async def start(self, alloc: Alloc, job: Job, group: GroupSpec) -> dict[str, int]: ...

    async def stop(self, alloc: Alloc) -> None: ...


class PortOnlyRuntime:
    """Hands out port numbers without listening: for worlds that need no real traffic."""

    def __init__(self) -> None:
        self._next = 20000

    async def start(self, alloc: Alloc, job: Job, group: GroupSpec) -> dict[str, int]:
        ports = {}
        for label in group.ports:
            self._next += 1
            ports[label] = self._next
        return ports

    async def stop(self, alloc: Alloc) -> None:
        return None


class IndexCounter:
    """A Raft-like index: one counter, and the index at which each table last changed."""

    def __init__(self) -> None:
        self.index = 1
        self.tables: dict[str, int] = {}

    def bump(self, *tables: str) -> int:
        self.index += 1
        for t in tables:
            self.tables[t] = self.index
        return self.index

    def of(self, *tables: str) -> int:
        return max([self.tables.get(t, 1) for t in tables] or [1])


def default_jobs() -> list[Job]:
    """The workloads of the realistic JamLab."""
    return [
        Job(
            id="example",
            type="service",
            groups=[
                GroupSpec(
                    name="web",
                    count=3,
                    ports=["http"],
                    tasks=[TaskSpec("server", config={"image": "nginx:1.27"})],
                    services=[
                        ServiceSpec("example", "http", tags=["urlprefix-example.jamfox.dev/"])
                    ],
                    update=UpdateSpec(max_parallel=1, canary=0),
                )
            ],
        ),
        Job(
            id="api",
            type="service",
            groups=[
                GroupSpec(
                    name="api",
                    count=2,
                    ports=["http"],
                    tasks=[TaskSpec("api", config={"image": "ghcr.io/jamfox/api:2.3"})],
                    update=UpdateSpec(max_parallel=1, canary=1, auto_promote=False),
                    services=[
                        ServiceSpec(
                            "api",
                            "http",
                            tags=["urlprefix-api.jamfox.dev/"],
                            connect=True,
                            upstreams=[("db", 5432)],
                        )
                    ],
                )
            ],
        ),
        Job(
            id="db",
            type="service",
            groups=[
                GroupSpec(
                    name="db",
                    count=1,
                    ports=["db"],
                    tasks=[TaskSpec("postgres", config={"image": "postgres:16"}, memory=512)],
                    services=[ServiceSpec("db", "db", connect=True, check_path=None)],
                )
            ],
        ),
        Job(
            id="backup",
            type="batch",
            groups=[
                GroupSpec(
                    name="backup",
                    count=1,
                    tasks=[
                        TaskSpec(
                            "restic",
                            driver="exec",
                            config={"command": "restic"},
                            behaviour="batch",
                        )
                    ],
                )
            ],
        ),
        Job(
            id="fabio",
            type="system",
            meta={"jamlab.role": "fabio"},
            groups=[
                GroupSpec(
                    name="fabio",
                    count=1,
                    ports=["lb", "ui"],
                    tasks=[TaskSpec("fabio", driver="exec", config={"command": "fabio"})],
                    services=[ServiceSpec("fabio", "ui", tags=["lb"])],
                )
            ],
        ),
        Job(
            id="web-staging",
            type="service",
            namespace="staging",
            groups=[
                GroupSpec(
                    name="web",
                    count=1,
                    ports=["http"],
                    tasks=[TaskSpec("server", config={"image": "nginx:1.27"})],
                    services=[ServiceSpec("web-staging", "http",
                                          tags=["staging"])],
                )
            ],
        ),
        Job(
            id="node-exporter",
            type="system",
            groups=[
                GroupSpec(
                    name="exporter",
                    count=1,
                    ports=["metrics"],
                    tasks=[
                        TaskSpec("node-exporter", config={"image": "prom/node-exporter:1.8"})
                    ],
                    services=[ServiceSpec("node-exporter", "metrics", tags=["metrics"])],
                )
            ],
        ),
    ]


def now_ns() -> int:
    return time.time_ns()


class World(Scheduler):
    """The whole simulated lab. Construct, then `await start()` on the lab's loop."""

    def __init__(
        self,
        inventory: Inventory,
        *,
        seed: int = 0,
        runtime: Runtime | None = None,
        flap_rate: float = 0.02,
        log_rate: float = 0.3,
        boot_delay: float = 3.0,
        heartbeat_grace: float = 2.0,
        task_delay: float = 1.0,
        jobs: Iterable[Job] | None = None,
        event_buffer_size: int = 100,
    ) -> None:
        self.inventory = inventory
        self.dns_hosts = inventory.hosts  # the records the `dns` role wrote
        self.rng = random.Random(seed)
        # containers draw from their own generator, so the rest of the lab (ids, load, log
        # chatter) is the same sequence for a seed as before containers existed
        self.ct_rng = random.Random(seed + 400)
        self.usage_rng = random.Random(seed + 7)  # stats drift apart from the world's dice
        self.runtime: Runtime = runtime or PortOnlyRuntime()
        self.flap_rate = flap_rate
        self.log_rate = log_rate
        self.boot_delay = boot_delay
        self.heartbeat_grace = heartbeat_grace
        self.task_delay = task_delay
        self.datacenter = str(inventory.vars.get("lab_datacenter", "jamlab"))
        self.domain = str(inventory.vars.get("lab_domain", "jamfox.dev"))
        subnet = inventory.vars.get("lab_subnet", "192.168.42.0/24")
        self.subnet = ipaddress.ip_network(str(subnet), strict=False)
        self.gateway = str(inventory.vars.get("lab_gateway", next(self.subnet.hosts())))

        self.hypervisors: dict[str, Hypervisor] = {}
        self.vms: dict[int, VM] = {}
        self.tasks: dict[str, PveTask] = {}
        self.containers: dict[int, VM] = {}  # LXC guests (kind "lxc"); vmids shared with VMs
        self.nomad = IndexCounter()
        self.consul = IndexCounter()
        self.nodes: dict[str, NomadNode] = {}
        self.jobs: dict[str, Job] = {}
        self.allocs: dict[str, Alloc] = {}
        self.evals: dict[str, Evaluation] = {}
        # Nomad's event buffer: the events of the last `event_buffer_size` indexes (the agent
        # option of that name, default 100); a subscription without `index` replays it
        self.events: deque[NomadEvent] = deque()
        self.event_buffer_size = event_buffer_size
        self._buffered_indexes = 0
        self.consul_nodes: dict[str, ConsulNode] = {}
        self.checks: dict[tuple[str, str], Check] = {}
        self.services: dict[tuple[str, str], ServiceInstance] = {}
        self.kv: dict[str, KVEntry] = {}
        self.intentions: dict[str, Intention] = {}
        self.sessions: dict[str, ConsulSession] = {}  # Consul sessions (consul_kv.py)
        self.kv_lock_delay: dict[str, float] = {}  # key -> monotonic end of its lock-delay
        self.server_names: list[str] = []  # the configured Consul/Nomad servers (vb)

        self._changed = asyncio.Event()
        self._events_out = asyncio.Event()  # the Nomad event streams' own wake (wait_events)
        self._tasks: set[asyncio.Future[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pve_pid = 4000
        self._initial_jobs = list(jobs) if jobs is not None else default_jobs()
        self._load: dict[str, list[int]] = {}  # node id -> [allocs, MHz, MiB] (node_load)
        self.deployments: dict[str, Deployment] = {}
        self.job_versions: dict[str, list[Job]] = {}  # each job's kept versions, oldest first
        self.namespaces: dict[str, Namespace] = {
            "default": Namespace("default", "Default shared namespace"),
            "staging": Namespace("staging", "Pre-production workloads"),
        }
        self._load_at: int | None = None
        self._starting: set[str] = set()  # allocations whose servers are starting

    # -- ids, time and change notification -------------------------------------------------

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def notify(self) -> None:
        """Wake every blocking query and stream: something changed."""
        self._changed.set()
        self._changed = asyncio.Event()
        self._wake_streams()

    def _wake_streams(self) -> None:
        """Wake the Nomad event streams. Set as each event is published, before `notify`
        wakes the blocking queries: the loop runs them in that order, so a stream's frame is
        written before the Consul reads the same change woke are rendered (5,000 checks:
        ~0.1 s each; real Nomad and Consul are separate servers, neither waits for the
        other)."""
        self._events_out.set()
        self._events_out = asyncio.Event()

    async def wait_events(self, timeout: float) -> None:
        """For the event streams: after the next event or change, or after `timeout`."""
        ev = self._events_out
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), timeout)

    async def wait_change(self, timeout: float) -> None:
        """Return after the next change, or after `timeout` seconds, whichever is first."""
        ev = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), timeout)

    def _later(self, delay: float, fn: Callable[[], Any]) -> None:
        """Run `fn` (plain or coroutine function) after `delay` seconds on the loop."""

        async def runner() -> None:
            await asyncio.sleep(delay)
            result = fn()
            if asyncio.iscoroutine(result):
                await result

        self._spawn(runner())

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- life cycle --------------------------------------------------------------------------

    async def start(self, tick: float = 1.0) -> None:
        """Build the lab from the inventory with everything up, and start it living."""
        self._loop = asyncio.get_running_loop()
        self._build()
        await self._start_pending_allocs()
        if tick > 0:
            self._ticker = asyncio.ensure_future(self._tick_forever(tick))

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(self.runtime.stop(a) for a in self.allocs.values() if a.ports),
                             return_exceptions=True)

    def _build(self) -> None:
        inv = self.inventory
        boot = time.time() - 86400 * 12
        for h in inv.group("hypervisors"):
            cores = int(h.vars.get("cores", 8))
            mem = int(h.vars.get("memory", 32768)) * MiB
            self.hypervisors[h.name] = Hypervisor(
                name=h.name,
                address=str(h.address),
                cores=cores,
                memory=mem,
                booted_at=boot,
                storages=[
                    Storage("local", "dir", "iso,vztmpl,backup", 100 * GiB, 21 * GiB),
                    Storage("local-lvm", "lvmthin", "images,rootdir", 800 * GiB, 0),
                    Storage("nfs-shared", "nfs", "images,backup", 4000 * GiB, 1300 * GiB, True),
                ],
            )
        first_hv = next(iter(self.hypervisors), "pve1")
        self.vms[TEMPLATE_VMID] = VM(
            vmid=TEMPLATE_VMID,
            name=TEMPLATE_NAME,
            node=first_hv,
            group=None,
            ip=None,
            cores=2,
            memory=2048,
            disk=16,
            template=True,
            tags="template",
        )
        for h in inv.hosts:
            if "vmid" not in h.vars:
                continue
            vm = VM(
                vmid=int(h.vars["vmid"]),
                name=h.name,
                node=str(h.vars.get("hypervisor", first_hv)),
                group=h.group,
                ip=h.address,
                cores=int(h.vars.get("cores", 2)),
                memory=int(h.vars.get("memory", 2048)),
                disk=int(h.vars.get("disk", 32)),
                tags=h.group or "",
            )
            self.vms[vm.vmid] = vm
            self._power_on(vm, booted=True, at=boot + 600 + self.rng.random() * 3600)
        self._build_pve_extras(boot)
        self.server_names = [vm.name for vm in self.vms.values() if vm.group == "vb"]
        for vm in self.vms.values():
            if vm.status == "running":
                self._agent_join(vm)
        self._seed_consul()
        for job in self._initial_jobs:
            self._register_job(copy.deepcopy(job), "job-register")
        self._recompute_usage()

    def _build_pve_extras(self, boot: float) -> None:
        """One LXC container (a small DNS resolver on the last hypervisor, pve2 in the demo),
        a snapshot on the first inventory VM, and the finished tasks that made them."""
        last_hv = list(self.hypervisors)[-1] if self.hypervisors else "pve1"
        ct = VM(vmid=LXC_VMID, name="ns1", node=last_hv, group=None, ip=None, cores=1,
                memory=512, disk=4, tags="dns", kind="lxc")
        self.containers[ct.vmid] = ct
        self._power_on(ct, booted=True, at=boot + 300)
        ct.cpu, ct.mem = 0.01, 96 * MiB
        self._seed_task(last_hv, "vzstart", str(ct.vmid), boot + 300, 1,
                        ["starting container ns1"])
        first = next((v for v in sorted(self.vms.values(), key=lambda v: v.vmid)
                      if not v.template), None)
        if first is not None:
            at = int(boot + 1800)
            first.snapshots["pre-upgrade"] = Snapshot(
                "pre-upgrade", "before the Nomad 1.8 upgrade", at, False, None)
            first.parent = "pre-upgrade"
            self._seed_task(first.node, "qmsnapshot", str(first.vmid), at, 2,
                            [f"snapshotting 'drive-scsi0' (local-lvm:vm-{first.vmid}-disk-0)"])

    def _seed_task(self, node: str, type_: str, id_: str, at: float, took: int,
                   log: list[str]) -> None:
        task = self._new_task(node, type_, id_, "root@pam")
        task.starttime = int(at)
        old = task.upid
        task.upid = ":".join([*old.split(":")[:4], f"{int(at):08X}", *old.split(":")[5:]])
        self.tasks.pop(old)
        self.tasks[task.upid] = task
        self._finish_task(task, "OK", log)
        task.endtime = int(at) + took

    def _seed_consul(self) -> None:
        self.kv_put("jamlab/domain", self.domain.encode())
        self.kv_put("jamlab/datacenter", self.datacenter.encode())
        self.intention_upsert("api", "db", "allow", "the API reads from its database")
        self.intention_upsert("*", "db", "deny", "nothing else reaches the database")

    # -- the living lab -------------------------------------------------------------------

    async def _tick_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.tick()

    def tick(self) -> None:
        """One second of life: load drifts, tasks log, a health check flaps now and then."""
        for vm in [*self.vms.values(), *self.containers.values()]:
            rng = self.ct_rng if vm.kind == "lxc" else self.rng
            if vm.status != "running":
                continue
            vm.cpu = min(0.95, max(0.005, vm.cpu + rng.uniform(-0.03, 0.03)))
            cap = vm.memory * MiB
            vm.mem = int(min(cap * 0.95, max(cap * 0.2, vm.mem + rng.uniform(-0.02, 0.02) * cap)))
            vm.netin += rng.randint(1000, 40000)
            vm.netout += rng.randint(1000, 60000)
        rng = self.rng
        self._recompute_usage()
        self.drift_usage()
        for alloc in self.allocs.values():
            if alloc.client_status != "running":
                continue
            for task in alloc.task_states:
                if rng.random() < self.log_rate:
                    self.log_line(alloc.id, task, self._chatter(alloc, task))
        if self.flap_rate and rng.random() < self.flap_rate:
            self._flap()

    def _chatter(self, alloc: Alloc, task: str) -> str:
        msgs = [
            "GET /health 200 0.4ms",
            "cache warm, 1284 keys",
            "worker heartbeat ok",
            "GET / 200 2.1ms",
            "connection pool: 4 idle, 1 busy",
        ]
        return f"{alloc.name} {task}: {self.rng.choice(msgs)}"

    def _flap(self) -> None:
        candidates = [
            c for c in self.checks.values()
            if c.service_id and c.status == "passing" and c.type != "ttl"  # TTL: the app's
        ]
        if not candidates:
            return
        check = self.rng.choice(candidates)
        status = self.rng.choice(["warning", "critical"])
        self.set_check(check.node, check.check_id, status, "HTTP GET: 503 Service Unavailable")
        key = (check.node, check.check_id)

        def recover() -> None:
            c = self.checks.get(key)
            if c is not None and c.status == status:
                self.set_check(c.node, c.check_id, "passing", "HTTP GET: 200 OK")

        self._later(self.rng.uniform(3, 8), recover)

    def _recompute_usage(self) -> None:
        for hv in self.hypervisors.values():
            vms = [v for v in [*self.vms.values(), *self.containers.values()]
                   if v.node == hv.name and v.status == "running"]
            load = sum(v.cpu * v.cores for v in vms) / max(hv.cores, 1)
            hv.cpu = min(1.0, 0.02 + load)
            hv.mem_used = hv.base_mem + sum(v.mem for v in vms)

    def log_line(self, alloc_id: str, task: str, line: str, stream: str = "stdout") -> None:
        alloc = self.allocs.get(alloc_id)
        if alloc is None or task not in alloc.task_states:
            return
        log = self.log_file(alloc, task, stream)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        log.data += f"{stamp} {line}\n".encode()
        self.notify_logs()

    def notify_logs(self) -> None:
        # Logs do not move any Raft index; followers wait on the same change signal.
        self._changed.set()
        self._changed = asyncio.Event()

    def log_file(self, alloc: Alloc, task: str, stream: str) -> LogFile:
        key = (task, stream)
        if key not in alloc.logs:
            alloc.logs[key] = LogFile(task=task, type=stream)
        return alloc.logs[key]

    def truncate_log(self, alloc_id: str, task: str, stream: str = "stdout") -> None:
        """Truncate a task's log file, as copytruncate log rotation does."""
        log = self.log_file(self.allocs[alloc_id], task, stream)
        log.data = bytearray()
        log.truncations += 1
        self.notify_logs()

    # -- Proxmox ---------------------------------------------------------------------------

    def vm(self, node: str, vmid: int) -> VM:
        vm = self.vms.get(int(vmid))
        if vm is None or vm.node != node:
            raise SimError(
                500, f"Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"
            )
        return vm

    def _power_on(self, vm: VM, booted: bool, at: float | None = None) -> None:
        rng = self.ct_rng if vm.kind == "lxc" else self.rng
        vm.status = "running"
        vm.started_at = at if at is not None else time.time()
        vm.booted = booted
        vm.cpu = 0.05 + rng.random() * 0.2
        vm.mem = int(vm.memory * MiB * (0.3 + rng.random() * 0.3))
        self._pve_pid += 1
        vm.pid = self._pve_pid

    def _new_task(self, node: str, type_: str, id_: str, user: str) -> PveTask:
        self._pve_pid += 1
        start = int(time.time())
        pstart = int(time.monotonic() * 100) & 0xFFFFFFFF
        upid = f"UPID:{node}:{self._pve_pid:08X}:{pstart:08X}:{start:08X}:{type_}:{id_}:{user}:"
        task = PveTask(upid, node, type_, id_, user, start, self._pve_pid, pstart)
        self.tasks[upid] = task
        return task

    def instant_task(self, node: str, type_: str, id_: str, user: str) -> str:
        """A task that is done as soon as it starts (a config change); returns its UPID."""
        task = self._new_task(node, type_, id_, user)
        self._finish_task(task)
        return task.upid

    def _finish_task(self, task: PveTask, exitstatus: str = "OK", log: Iterable[str] = ()) -> None:
        task.log.extend(log)
        task.log.append("TASK OK" if exitstatus == "OK" else f"TASK ERROR: {exitstatus}")
        task.status = "stopped"
        task.exitstatus = exitstatus
        task.endtime = int(time.time())

    def _power_task(
        self, node: str, vmid: int, type_: str, user: str, duration: float, act: Callable[[VM], str]
    ) -> str:
        vm = self.vm(node, vmid)
        task = self._new_task(node, type_, str(vmid), user)

        def done() -> None:
            err = act(vm)
            self._finish_task(task, err or "OK")
            self.notify()

        self._later(duration, done)
        return task.upid

    def vm_start(self, node: str, vmid: int, user: str = "root@pam") -> str:
        def act(vm: VM) -> str:
            if vm.template:
                return f"VM {vm.vmid} is a template"
            if vm.status == "running":
                return f"VM {vm.vmid} already running"
            self._power_on(vm, booted=False)
            self._recompute_usage()
            self._later(self.boot_delay, lambda: self._boot_complete(vm.vmid))
            return ""

        return self._power_task(node, vmid, "qmstart", user, 0.3, act)

    def vm_stop(self, node: str, vmid: int, user: str = "root@pam") -> str:
        return self._power_task(node, vmid, "qmstop", user, 0.3, self._power_off)

    def vm_shutdown(self, node: str, vmid: int, user: str = "root@pam") -> str:
        return self._power_task(node, vmid, "qmshutdown", user, 1.5, self._power_off)

    def vm_reboot(self, node: str, vmid: int, user: str = "root@pam") -> str:
        def act(vm: VM) -> str:
            if vm.status != "running":
                return f"VM {vm.vmid} not running"
            self._power_off(vm)
            self._power_on(vm, booted=False)
            self._later(self.boot_delay, lambda: self._boot_complete(vm.vmid))
            return ""

        return self._power_task(node, vmid, "qmreboot", user, 1.0, act)

    def vm_clone(
        self,
        node: str,
        vmid: int,
        newid: int,
        name: str | None = None,
        target: str | None = None,
        user: str = "root@pam",
    ) -> str:
        src = self.vm(node, vmid)
        if int(newid) in self.vms or int(newid) in self.containers:
            raise SimError(500, f"unable to create VM {newid}: config file already exists")
        target = target or node
        if target not in self.hypervisors:
            raise SimError(500, f"no such cluster node '{target}'")
        new = VM(
            vmid=int(newid),
            name=name or f"Copy-of-VM-{src.name}",
            node=target,
            group=_group_of(name or ""),
            ip=None,
            cores=src.cores,
            memory=src.memory,
            disk=src.disk,
            lock="clone",
            configured=False,
        )
        self.vms[new.vmid] = new
        task = self._new_task(node, "qmclone", str(vmid), user)

        def done() -> None:
            new.lock = None
            self._finish_task(task, "OK", [f"create full clone of drive scsi0 ({src.name})"])
            self.notify()

        self._later(1.5, done)
        self.notify()
        return task.upid

    def vm_set_config(self, node: str, vmid: int, values: dict[str, str]) -> None:
        vm = self.vm(node, vmid)
        if "name" in values:
            vm.name = values["name"]
            vm.group = _group_of(vm.name)
        if "cores" in values:
            vm.cores = int(values["cores"])
        if "memory" in values:
            vm.memory = int(values["memory"])
        if "tags" in values:
            vm.tags = values["tags"]
        if "description" in values:
            vm.description = values["description"]
        if "ipconfig0" in values:
            for part in values["ipconfig0"].split(","):
                if part.startswith("ip="):
                    vm.ip = part[3:].split("/")[0]

    def vm_delete(self, node: str, vmid: int, user: str = "root@pam") -> str:
        vm = self.vm(node, vmid)
        if vm.status == "running":
            raise SimError(500, f"VM {vmid} is running - destroy failed")
        task = self._new_task(node, "qmdestroy", str(vmid), user)

        def done() -> None:
            self.vms.pop(vm.vmid, None)
            self._forget_host(vm.name)
            self._finish_task(task)
            self.notify()

        self._later(0.5, done)
        return task.upid

    def _power_off(self, vm: VM) -> str:
        if vm.status != "running":
            return f"VM {vm.vmid} not running"
        vm.status = "stopped"
        vm.booted = False
        vm.cpu = 0.0
        vm.mem = 0
        vm.pid = 0
        self._recompute_usage()
        self._agent_leave(vm)
        return ""

    def _boot_complete(self, vmid: int) -> None:
        vm = self.vms.get(vmid)
        if vm is None or vm.status != "running" or vm.booted:
            return
        vm.booted = True
        self._agent_join(vm)
        self.reconcile()
        self.notify()

    # -- containers, snapshots, migration, the cluster's task list ---------------------------

    def ct(self, node: str, vmid: int) -> VM:
        ct = self.containers.get(int(vmid))
        if ct is None or ct.node != node:
            raise SimError(500, f"Configuration file 'nodes/{node}/lxc/{vmid}.conf' does not exist")
        return ct

    def ct_power(self, node: str, vmid: int, action: str, user: str = "root@pam") -> str:
        """`/nodes/{node}/lxc/{vmid}/status/{start|stop|shutdown|reboot}`: a vz* task."""
        ct = self.ct(node, vmid)
        task = self._new_task(node, f"vz{action}", str(vmid), user)

        def done() -> None:
            err = ""
            if action == "start":
                if ct.status == "running":
                    err = f"CT {vmid} already running"
                else:
                    self._power_on(ct, booted=True)
            elif ct.status != "running":
                err = f"CT {vmid} not running"
            elif action == "reboot":
                self._power_on(ct, booted=True)
            else:
                ct.status, ct.cpu, ct.mem, ct.pid, ct.booted = "stopped", 0.0, 0, 0, False
            self._recompute_usage()
            self._finish_task(task, err or "OK")
            self.notify()

        self._later({"start": 0.3, "stop": 0.3}.get(action, 0.8), done)
        return task.upid

    def guest(self, node: str, vmid: int, kind: str) -> VM:
        return self.ct(node, vmid) if kind == "lxc" else self.vm(node, vmid)

    def snapshot_create(self, node: str, vmid: int, name: str, description: str = "",
                        vmstate: bool = False, kind: str = "qemu",
                        user: str = "root@pam") -> str:
        guest = self.guest(node, vmid, kind)
        if name in guest.snapshots or name == "current":
            raise SimError(500, f"snapshot name '{name}' already used")
        if guest.lock:
            raise SimError(500, f"VM is locked ({guest.lock})")
        task = self._new_task(node, "qmsnapshot" if kind == "qemu" else "vzsnapshot",
                              str(vmid), user)
        guest.lock = "snapshot"
        with_ram = vmstate and guest.status == "running" and kind == "qemu"

        def done() -> None:
            guest.lock = None
            guest.snapshots[name] = Snapshot(name, description, task.starttime, with_ram,
                                             guest.parent)
            guest.parent = name
            log = [f"snapshotting 'drive-scsi0' (local-lvm:vm-{vmid}-disk-0)"]
            if with_ram:
                log.insert(0, "saving VM state and RAM using storage 'local-lvm'")
                log.insert(1, "completed saving the VM state in 1s, saved 256.00 MiB")
            self._finish_task(task, "OK", log)
            self.notify()

        self._later(0.8 if with_ram else 0.4, done)
        self.notify()
        return task.upid

    def _snapshot_task(self, node: str, vmid: int, name: str, kind: str, user: str,
                       lock: str) -> tuple[Any, Any, Any]:
        """The guest, its snapshot `name` and a new task for `lock` (rollback or
        snapshot-delete), the guest locked, as qemu-server and pve-container refuse: an
        unknown snapshot, a guest already locked."""
        guest = self.guest(node, vmid, kind)
        snap = guest.snapshots.get(name)
        if snap is None:
            raise SimError(500, f"snapshot '{name}' does not exist")
        if guest.lock:
            raise SimError(500, f"VM is locked ({guest.lock})")
        types = {"rollback": ("qmrollback", "vzrollback"),
                 "snapshot-delete": ("qmdelsnapshot", "vzdelsnapshot")}[lock]
        task = self._new_task(node, types[0] if kind == "qemu" else types[1], str(vmid), user)
        guest.lock = lock
        return guest, snap, task

    def snapshot_rollback(self, node: str, vmid: int, name: str, kind: str = "qemu",
                          user: str = "root@pam") -> str:
        guest, snap, task = self._snapshot_task(node, vmid, name, kind, user, "rollback")

        def done() -> None:
            guest.lock = None
            log = []
            if guest.status == "running":
                if kind == "qemu":
                    self._power_off(guest)
                guest.status, guest.cpu, guest.mem, guest.pid = "stopped", 0.0, 0, 0
                log.append(f"stopping VM {vmid}")
            guest.parent = name
            if snap.vmstate:
                self._power_on(guest, booted=True)
                log.append("resuming VM from the saved state")
            self._recompute_usage()
            self._finish_task(task, "OK", log)
            self.notify()

        self._later(0.6, done)
        self.notify()
        return task.upid

    def snapshot_delete(self, node: str, vmid: int, name: str, kind: str = "qemu",
                        user: str = "root@pam") -> str:
        guest, snap, task = self._snapshot_task(node, vmid, name, kind, user,
                                                "snapshot-delete")

        def done() -> None:
            guest.lock = None
            guest.snapshots.pop(name, None)
            for other in guest.snapshots.values():  # its children now hang from its parent
                if other.parent == name:
                    other.parent = snap.parent
            if guest.parent == name:
                guest.parent = snap.parent
            self._finish_task(task, "OK", [f"delete snapshot '{name}'"])
            self.notify()

        self._later(0.4, done)
        self.notify()
        return task.upid

    def vm_migrate(self, node: str, vmid: int, target: str, online: bool,
                   user: str = "root@pam") -> str:
        """qemu-server's migrate_vm: a running VM needs `online`; the VM's config moves to
        the target node when the task ends."""
        vm = self.vm(node, vmid)
        if target not in self.hypervisors:
            raise SimError(500, f"no such cluster node '{target}'")
        if vm.status == "running" and not online:
            raise SimError(500, "can't migrate running VM without --online")
        if vm.lock:
            raise SimError(500, f"VM is locked ({vm.lock})")
        task = self._new_task(node, "qmigrate", str(vmid), user)
        vm.lock = "migrate"
        task.log += [f"starting migration of VM {vmid} to node '{target}' "
                     f"({self.hypervisors[target].address})"]
        self._later(0.5, lambda: task.log.append(
            f"starting VM {vmid} on remote node '{target}'" if online
            and vm.status == "running" else "copying local disk images"))

        def done() -> None:
            vm.lock = None
            if self.hypervisors[target].status != "online":
                self._finish_task(task, f"migration aborted: no route to host {target}")
            else:
                vm.node = target
                self._recompute_usage()
                self._finish_task(task, "OK", ["migration finished successfully (duration "
                                               "00:00:02)"])
            self.notify()

        self._later(1.5, done)
        self.notify()
        return task.upid

    def next_vmid(self) -> int:
        used = set(self.vms) | set(self.containers)
        vmid = 100
        while vmid in used:
            vmid += 1
        return vmid

    # -- agents joining and leaving ----------------------------------------------------------

    def vm_create(self, node: str, vmid: int, name: str, cores: int = 1, memory: int = 512,
                  user: str = "root@pam") -> str:
        """`POST /nodes/{node}/qemu`: an empty VM (what Packer starts a template from)."""
        if node not in self.hypervisors:
            raise SimError(500, f"no such cluster node '{node}'")
        if int(vmid) in self.vms:
            raise SimError(500, f"unable to create VM {vmid}: config file already exists")
        self.vms[int(vmid)] = VM(vmid=int(vmid), name=name, node=node, group=None, ip=None,
                                 cores=cores, memory=memory, disk=16, configured=False)
        self.notify()
        return self.instant_task(node, "qmcreate", str(vmid), user)

    def vm_template(self, node: str, vmid: int, user: str = "root@pam") -> str:
        vm = self.vm(node, vmid)
        if vm.status == "running":
            raise SimError(500, f"VM {vmid} is running - cannot convert to a template")
        vm.template, vm.tags = True, "template"
        self.notify()
        return self.instant_task(node, "qmtemplate", str(vmid), user)

    def provision(self, name: str) -> str:
        """What Ansible does to a node: its agents installed and started. Returns "" when
        done, else why the host could not be reached."""
        vm = next((v for v in self.vms.values() if v.name == name and not v.template), None)
        if vm is None:
            return f"no VM named {name}"
        if vm.status != "running" or not vm.booted:
            return (f"Failed to connect to the host via ssh: ssh: connect to host "
                    f"{vm.ip or name} port 22: No route to host")
        if not vm.configured:
            vm.configured = True
            self._agent_join(vm)
            self.reconcile()
            self.notify()
        return ""

    def set_dns_inventory(self, inventory: Inventory) -> None:
        """The internal DNS's records, as the `dns` role last wrote them."""
        self.dns_hosts = inventory.hosts

    def agent_leave(self, name: str) -> bool:
        """`consul leave` on the node: it leaves gracefully (status left, checks gone)."""
        node = self.consul_nodes.get(name)
        if node is None:
            return False
        idx = self.consul.bump("nodes", "checks", "services", "members")
        node.alive = False
        node.left = True
        node.modify_index = idx
        self._end_sessions(name)
        for key in [k for k in self.checks if k[0] == name]:
            del self.checks[key]
        for key in [k for k in self.services if self.services[k].node == name]:
            del self.services[key]
        self.consul.tables["services"] = idx
        vm = next((v for v in self.vms.values() if v.name == name), None)
        if vm is not None:
            vm.configured = False  # its agent is stopped until something starts it again
        self.notify()
        return True

    def _agent_join(self, vm: VM) -> None:
        """The guest is up: its Consul agent joins, and on `vs` its Nomad client registers."""
        if (vm.group is None and not vm.name) or not vm.configured:
            return
        node = self.consul_nodes.get(vm.name)
        idx = self.consul.bump("nodes", "checks", "services", "members")
        if node is None:
            node = ConsulNode(
                id=self.new_id(),
                name=vm.name,
                vm=vm.name,
                address=vm.ip or "127.0.0.1",
                datacenter=self.datacenter,
                server=vm.group == "vb",
                meta={"consul-network-segment": "", "group": vm.group or ""},
                create_index=idx,
            )
            self.consul_nodes[vm.name] = node
        node.alive = True
        node.left = False
        node.address = vm.ip or node.address
        node.modify_index = idx
        self._upsert_check(Check(vm.name, "serfHealth", "Serf Health Status",
                                 "passing", output="Agent alive and reachable"), idx)
        if vm.group == "vb":
            self._register_static(vm, "consul", 8300, [], None)
            self._register_static(vm, "nomad", 4646, ["http"], "Nomad Server HTTP Check")
        if vm.group == "vs":
            self._register_static(vm, "nomad-client", 4646, ["http"], "Nomad Client HTTP Check")
            self._nomad_client_up(vm)
        # a returning node's Nomad client deregisters services of allocations it no longer runs
        for key, svc in list(self.services.items()):
            if svc.node == vm.name and svc.alloc_id:
                a = self.allocs.get(svc.alloc_id)
                if a is None or a.client_status != "running":
                    self._deregister_service(key, idx)

    def _agent_leave(self, vm: VM) -> None:
        node = self.consul_nodes.get(vm.name)
        if node is not None:
            idx = self.consul.bump("nodes", "checks", "members")
            node.alive = False
            node.modify_index = idx
            self._upsert_check(
                Check(vm.name, "serfHealth", "Serf Health Status", "critical",
                      output="Agent not live or unreachable"),
                idx,
            )
            self._end_sessions(vm.name)
        nnode = self._nomad_node_by_name(vm.name)
        if nnode is not None and nnode.status == "ready":
            self._later(self.heartbeat_grace, lambda: self._nomad_client_lost(vm.name))
        self.notify()

    def _end_sessions(self, node: str) -> None:
        """serfHealth critical (or the node gone) invalidates its sessions (docs: sessions)."""
        from .consul_kv import invalidate_node_sessions

        invalidate_node_sessions(self, node)

    def _forget_host(self, name: str) -> None:
        """A destroyed VM: Consul reaps its node, Nomad garbage-collects the down client."""
        if name in self.consul_nodes:
            idx = self.consul.bump("nodes", "checks", "services", "members")
            del self.consul_nodes[name]
            for key in [k for k in self.checks if k[0] == name]:
                del self.checks[key]
            for key in [k for k in self.services if self.services[k].node == name]:
                del self.services[key]
            self.consul.tables["services"] = idx
        nnode = self._nomad_node_by_name(name)
        if nnode is not None:
            self._nomad_client_lost(name)
            self.nomad.bump("nodes")
            del self.nodes[nnode.id]
            self._emit("Node", "NodeDeregistration", nnode.id, nnode, [])
        if name in self.server_names:
            self.server_names.remove(name)

    def _register_static(
        self, vm: VM, name: str, port: int, tags: list[str], check_name: str | None
    ) -> None:
        sid = name
        inst = ServiceInstance(sid, name, vm.name, vm.ip or "127.0.0.1", port, tags)
        idx = self.consul.bump("services", "checks")
        existing = self.services.get((vm.name, sid))
        inst.create_index = existing.create_index if existing else idx
        inst.modify_index = idx
        self.services[(vm.name, sid)] = inst
        if check_name:
            self._upsert_check(
                Check(vm.name, f"_{name}-http-{vm.name}", check_name, "passing",
                      output="HTTP GET: 200 OK", service_id=sid, service_name=name,
                      service_tags=list(tags), type="http", interval="10s"),
                idx,
            )

    def _upsert_check(self, check: Check, idx: int) -> None:
        key = (check.node, check.check_id)
        old = self.checks.get(key)
        check.create_index = old.create_index if old else idx
        check.modify_index = idx
        self.checks[key] = check

    def set_check(self, node: str, check_id: str, status: str, output: str = "") -> None:
        """Set a Consul check's status (flapping, tests, instance health)."""
        check = self.checks.get((node, check_id))
        if check is None:
            raise KeyError(f"no check {check_id} on {node}")
        if check.status == status and check.output == output:
            return
        idx = self.consul.bump("checks")
        check.status = status
        check.output = output or check.output
        check.modify_index = idx
        self.notify()

    def node_maintenance(self, node: str, enable: bool, reason: str = "") -> None:
        """`consul maint` on a node: a critical `_node_maintenance` check while it is on,
        which takes every service on the node out of `?passing` answers (and Fabio)."""
        if node not in self.consul_nodes:
            raise SimError(404, f"Unknown node {node!r}")
        key = (node, "_node_maintenance")
        if enable:
            idx = self.consul.bump("checks")
            self._upsert_check(Check(node, "_node_maintenance", "Node Maintenance Mode",
                                     "critical", notes=reason or "Maintenance mode is enabled "
                                     "for this node, but no reason was provided. This is a "
                                     "default message."), idx)
        elif key in self.checks:
            self.consul.bump("checks")
            del self.checks[key]
        self.notify()

    # -- Consul queries ----------------------------------------------------------------------

    def consul_leader(self) -> str | None:
        """The leader's name, or None when fewer than a majority of servers are alive."""
        alive = [
            n for n in self.server_names
            if n in self.consul_nodes and self.consul_nodes[n].alive
        ]
        if len(alive) * 2 > len(self.server_names):
            return alive[0]
        return None

    nomad_leader = consul_leader  # the vb nodes run both servers

    def service_names(self) -> dict[str, list[str]]:
        out: dict[str, set[str]] = {}
        for svc in self.services.values():
            out.setdefault(svc.name, set()).update(svc.tags)
        return {k: sorted(v) for k, v in sorted(out.items())}

    def service_entries(self, name: str) -> list[tuple[ConsulNode, ServiceInstance, list[Check]]]:
        """What /v1/health/service/<name> is made of: node, service and all relevant checks.
        Consul looks a service up by its name in an index; so does the lab (a pass over
        every instance and check for each service read made the lab, not the product, the
        bottleneck of a first picture at 5,000 instances: 50 reads, one core)."""
        out = []
        by_name, of_instance = self._consul_index()
        mine = sorted(by_name.get(name, ()), key=lambda s: (s.node, s.id))
        for svc in mine:
            node = self.consul_nodes.get(svc.node)
            if node is None:
                continue
            # the node's own checks and the instance's (by node and service ID: a pass over
            # every check of the node for each instance was a third of the lab's answer at
            # 5,000 instances, 50 on a node, and the tail of the product's snapshot)
            checks = of_instance.get((svc.node, ""), []) + of_instance.get((svc.node, svc.id), [])
            out.append((node, svc, sorted(checks, key=lambda c: (c.service_id, c.check_id))))
        return out

    def _consul_index(self) -> tuple[dict[str, list[ServiceInstance]],
                                     dict[tuple[str, str], list[Check]]]:
        """Instances by service name and checks by node and service ID ("": the node's own),
        rebuilt when the catalog moves (every change to `services`, `checks` or `nodes`
        bumps their Raft index first)."""
        key = (self.consul.of("services", "checks", "nodes"), len(self.services),
               len(self.checks))
        cached = getattr(self, "_consul_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        by_name: dict[str, list[ServiceInstance]] = {}
        for svc in self.services.values():
            by_name.setdefault(svc.name, []).append(svc)
        of_instance: dict[tuple[str, str], list[Check]] = {}
        for c in self.checks.values():
            of_instance.setdefault((c.node, c.service_id), []).append(c)
        self._consul_cache = (key, by_name, of_instance)
        return by_name, of_instance

    def kv_put(self, key: str, value: bytes, flags: int = 0, cas: int | None = None) -> bool:
        old = self.kv.get(key)
        if cas is not None and (old.modify_index if old else 0) != cas:
            return False
        idx = self.consul.bump("kvs")
        self.kv[key] = KVEntry(key, value, flags, old.create_index if old else idx, idx,
                               old.lock_index if old else 0, old.session if old else "")
        self.notify()
        return True

    def kv_delete(self, key: str, recurse: bool = False) -> None:
        keys = [k for k in self.kv if k.startswith(key)] if recurse else [key]
        if any(k in self.kv for k in keys):
            self.consul.bump("kvs")
            for k in keys:
                self.kv.pop(k, None)
            self.notify()

    def intention_upsert(
        self, source: str, dest: str, action: str, description: str = ""
    ) -> Intention:
        if action not in ("allow", "deny"):
            raise SimError(400, f"Intention action must be 'allow' or 'deny', got {action!r}")
        idx = self.consul.bump("intentions")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        for it in self.intentions.values():
            if it.source == source and it.destination == dest:
                it.action, it.description = action, description or it.description
                it.modify_index, it.updated_at = idx, stamp
                self.notify()
                return it
        it = Intention(self.new_id(), source, dest, action, description, idx, idx, stamp, stamp)
        self.intentions[it.id] = it
        self.notify()
        return it

    def intention_delete(self, source: str, dest: str) -> bool:
        for key, it in list(self.intentions.items()):
            if it.source == source and it.destination == dest:
                self.consul.bump("intentions")
                del self.intentions[key]
                self.notify()
                return True
        return False

    # -- Nomad: nodes ------------------------------------------------------------------------

    def _nomad_node_by_name(self, name: str) -> NomadNode | None:
        return next((n for n in self.nodes.values() if n.name == name), None)

    def _nomad_client_up(self, vm: VM) -> None:
        node = self._nomad_node_by_name(vm.name)
        idx = self.nomad.bump("nodes")
        if node is None:
            node = NomadNode(
                id=self.new_id(),
                name=vm.name,
                vm=vm.name,
                address=vm.ip or "127.0.0.1",
                datacenter=self.datacenter,
                create_index=idx,
                cores=vm.cores,
                memory_mb=vm.memory,
                # the lab's NFS shares, mounted on every client (jamlab: shared storage)
                host_volumes={"pgdata": "/mnt/nfs/nomad/pgdata",
                              "backups": "/mnt/nfs/backups"},
            )
            self.nodes[node.id] = node
            self._emit("Node", "NodeRegistration", node.id, node, [])
        node.status = "ready"
        node.status_description = ""
        node.status_updated_at = int(time.time())
        node.modify_index = idx
        node.events.append(_node_event("Cluster", "Node heartbeat received"))
        self._emit("Node", "NodeEvent", node.id, node, [])

    def _nomad_client_lost(self, name: str) -> None:
        node = self._nomad_node_by_name(name)
        vm = next((v for v in self.vms.values() if v.name == name), None)
        if node is None or node.status == "down" or (vm is not None and vm.booted):
            return
        idx = self.nomad.bump("nodes")
        node.status = "down"
        node.status_updated_at = int(time.time())
        node.modify_index = idx
        node.events.append(_node_event("Cluster", "Node heartbeat missed"))
        self._emit("Node", "NodeEvent", node.id, node, [])
        for alloc in self.node_allocs(node.id):
            if not alloc.terminal:
                self._finish_alloc(alloc, "lost", "alloc is lost since its node is down",
                                   desired="stop", runtime_gone=True)
        self.reconcile(trigger="node-update", node_id=node.id)
        self.notify()

    def node_allocs(self, node_id: str) -> list[Alloc]:
        return [a for a in self.allocs.values() if a.node_id == node_id]

    def get_node(self, node_id: str) -> NomadNode:
        node = self.nodes.get(node_id)
        if node is None:
            node = next((n for n in self.nodes.values() if n.id.startswith(node_id)), None)
        if node is None:
            raise SimError(404, "node not found")
        return node

    def node_eligibility(self, node_id: str, eligible: bool) -> Evaluation | None:
        node = self.get_node(node_id)
        if node.drain and eligible:
            # nomad/node_endpoint.go UpdateEligibility; an RPC error: HTTP 500 (agent/http.go)
            raise SimError(
                500, "can not set node's scheduling eligibility to eligible while it is draining"
            )
        node.eligibility = "eligible" if eligible else "ineligible"
        node.modify_index = self.nomad.bump("nodes")
        self._emit("Node", "NodeEligibility", node.id, node, [])
        ev = self.reconcile(trigger="node-update", node_id=node.id) if eligible else None
        self.notify()
        return ev

    def node_drain(self, node_id: str, enable: bool, deadline_ns: int = 3600 * 10**9,
                   mark_eligible: bool = False) -> None:
        node = self.get_node(node_id)
        idx = self.nomad.bump("nodes")
        node.modify_index = idx
        if not enable:
            if node.drain and node.last_drain is not None:  # a drain cancelled
                node.last_drain = (node.last_drain[0], now_ns(), "canceled")
            node.drain = False
            if mark_eligible:
                node.eligibility = "eligible"
            node.events.append(_node_event("Drain", "Node drain strategy cleared"))
            self._emit("Node", "NodeDrain", node.id, node, [])
            self.reconcile(trigger="node-update", node_id=node.id)
            self.notify()
            return
        if not node.drain or node.last_drain is None:
            node.last_drain = (now_ns(), now_ns(), "draining")
        node.drain = True
        node.drain_deadline_ns = deadline_ns
        node.eligibility = "ineligible"  # and it stays so when the drain completes
        node.events.append(_node_event("Drain", "Node drain strategy set"))
        self._emit("Node", "NodeDrain", node.id, node, [])
        for alloc in self.node_allocs(node.id):
            if not alloc.terminal and alloc.job_type == "service":
                alloc.migrate = True
        self.reconcile(trigger="node-drain", node_id=node.id)
        self._later(1.0, lambda: self._finish_drain(node.id))
        self.notify()

    def _finish_drain(self, node_id: str) -> None:
        node = self.nodes.get(node_id)
        if node is None or not node.drain:
            return
        for alloc in self.node_allocs(node_id):
            if not alloc.terminal and alloc.desired_status == "run":
                self._finish_alloc(alloc, "complete", "alloc is being migrated",
                                   desired="stop")
        node.drain = False  # DrainStrategy null; SchedulingEligibility stays ineligible
        if node.last_drain is not None:
            node.last_drain = (node.last_drain[0], now_ns(), "complete")
        node.modify_index = self.nomad.bump("nodes")
        node.events.append(_node_event("Drain", "Node drain complete"))
        self._emit("Node", "NodeDrain", node.id, node, [])
        self.notify()

    # -- Nomad: jobs ---------------------------------------------------------------------------

    def get_job(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise SimError(404, "job not found")
        return job

    def _register_job(self, job: Job, trigger: str) -> Evaluation:
        idx = self.nomad.bump("jobs")
        old = self.jobs.get(job.id)
        # an unchanged spec keeps its version (Nomad's Job.SpecChanged)
        # (the same object changed in place, as tests do through the world, is a change too)
        changed = old is None or old is job or spec_key(old) != spec_key(job)
        job.name = job.name or job.id
        job.submit_time = now_ns()
        job.create_index = old.create_index if old else idx
        job.version = ((old.version + 1) if changed else old.version) if old else 0
        job.modify_index = job.job_modify_index = idx
        job.status = "pending"
        job.stable = False if changed else (old.stable if old else False)
        self.jobs[job.id] = job
        if changed:
            self._remember_version(job)
        self._emit("Job", "JobRegistered", job.id, job, [])
        dep = self._new_deployment(job, old) if changed and not job.stop else None
        if old is not None and changed:
            # a changed job replaces its allocations (a destructive update), except where
            # canaries go first: those groups keep the old version until the promotion
            for alloc in self.job_allocs(job.id):
                state = dep.task_groups.get(alloc.task_group) if dep else None
                if state is not None and state.desired_canaries:
                    continue
                if not alloc.terminal and alloc.job_version != job.version:
                    self._finish_alloc(alloc, "complete", "alloc is being updated", desired="stop")
        return self.reconcile(trigger=trigger, job_id=job.id)

    def register_job(self, job: Job) -> Evaluation:
        ev = self._register_job(job, "job-register")
        self.notify()
        return ev

    def stop_job(self, job_id: str, purge: bool = False) -> Evaluation:
        job = self.get_job(job_id)
        job.stop = True
        job.modify_index = job.job_modify_index = self.nomad.bump("jobs")
        self._emit("Job", "JobDeregistered", job.id, job, [])
        ev = self._new_eval(job, "job-deregister")
        if purge:
            del self.jobs[job_id]
        self.notify()

        def stop_allocations() -> None:
            # the deregister evaluation tells each allocation to stop; until then the job
            # stays `running` (nomad/state getJobStatus: a non-terminal allocation)
            for alloc in self.job_allocs(job_id):
                if not alloc.terminal:
                    self._finish_alloc(alloc, "complete", "alloc not needed due to job update",
                                       desired="stop")
            self._update_job_status(job)
            self.notify()

        self._later(self.task_delay, stop_allocations)
        return ev

    def start_job(self, job_id: str) -> Evaluation:
        job = self.get_job(job_id)
        job.stop = False
        return self.register_job(job)

    def scale_job(self, job_id: str, group: str, count: int) -> Evaluation:
        job = self.get_job(job_id)
        tg = job.group(group)
        if tg is None:
            raise SimError(400, f'Task group "{group}" does not exist')
        if count < 0:
            raise SimError(400, "scaling action count can't be negative")
        tg.count = count
        job.version += 1
        job.modify_index = job.job_modify_index = self.nomad.bump("jobs")
        self._remember_version(job)
        for alloc in self.job_allocs(job_id):
            alloc.job_version = job.version if not alloc.terminal else alloc.job_version
        self._emit("Job", "JobRegistered", job.id, job, [])
        ev = self.reconcile(trigger="job-scaling", job_id=job_id)
        self.notify()
        return ev

    def job_allocs(self, job_id: str) -> list[Alloc]:
        return [a for a in self.allocs.values() if a.job_id == job_id]

    def _new_eval(self, job: Job, trigger: str, node_id: str = "") -> Evaluation:
        idx = self.nomad.bump("evals")
        ev = Evaluation(
            id=self.new_id(), job_id=job.id, triggered_by=trigger, type=job.type,
            namespace=job.namespace,
            priority=job.priority, node_id=node_id, create_index=idx, modify_index=idx,
            create_time=now_ns(), modify_time=now_ns(),
        )
        self.evals[ev.id] = ev
        self._emit("Evaluation", "EvaluationUpdated", ev.id, ev, [job.id])
        return ev

    async def _start_pending_allocs(self) -> None:
        await asyncio.gather(*[
            self._start_alloc(a.id) for a in list(self.allocs.values())
            if a.client_status == "pending"
        ])

    async def _start_alloc(self, alloc_id: str) -> None:
        # once per allocation: the lab's start and the placement's timer both call this, and
        # a second start would overwrite (then stop) the first one's servers
        if alloc_id in self._starting:
            return
        self._starting.add(alloc_id)
        try:
            await self._start_alloc_once(alloc_id)
        finally:
            self._starting.discard(alloc_id)

    async def _start_alloc_once(self, alloc_id: str) -> None:
        alloc = self.allocs.get(alloc_id)
        if alloc is None or alloc.client_status != "pending" or alloc.desired_status != "run":
            return
        job = self.jobs.get(alloc.job_id)
        group = job.group(alloc.task_group) if job else None
        node = self.nodes.get(alloc.node_id)
        if job is None or group is None or node is None or node.status != "ready":
            return
        alloc.ports = await self.runtime.start(alloc, job, group)
        if alloc.client_status != "pending" or alloc.desired_status != "run":
            await self.runtime.stop(alloc)  # stopped while its servers were starting
            return
        started = now_ns()
        for ts in alloc.task_states.values():
            ts.state = "running"
            ts.started_at = started
            ts.events += [
                _task_event("Task Setup", "Building Task Directory"),
                _task_event("Driver", "Downloading image"),
                _task_event("Started", "Task started by client"),
            ]
        self._set_client_status(alloc, "running", "Tasks are running")
        if alloc.deployment_id:  # healthy once its tasks run (min_healthy_time not modelled)
            self.deployment_alloc_health(alloc, True)
        for task in alloc.task_states:
            self.log_line(alloc.id, task, f"{alloc.name} {task}: started on {node.name}")
        self._register_alloc_services(alloc, job, group, node)
        self._update_job_status(job)
        if any(t.behaviour == "batch" for t in group.tasks):
            self._later(2.0, lambda: self._batch_done(alloc.id))
        # a migrating predecessor stops once its replacement runs
        prev = self.allocs.get(alloc.previous_allocation)
        if prev is not None and prev.migrate and not prev.terminal:
            self._finish_alloc(prev, "complete", "alloc was migrated", desired="stop")
        self.notify()

    def _batch_done(self, alloc_id: str) -> None:
        alloc = self.allocs.get(alloc_id)
        if alloc is None or alloc.client_status != "running":
            return
        for task in alloc.task_states:
            self.log_line(alloc.id, task, "snapshot saved, exit 0")
        self._finish_alloc(alloc, "complete", "All tasks have completed")
        job = self.jobs.get(alloc.job_id)
        if job:
            self._update_job_status(job)
        self.notify()

    def _set_client_status(self, alloc: Alloc, status: str, description: str) -> None:
        idx = self.nomad.bump("allocs")
        alloc.client_status = status
        alloc.client_description = description
        alloc.modify_index = idx
        alloc.modify_time = now_ns()
        self._emit("Allocation", "AllocationUpdated", alloc.id, alloc,
                   [alloc.job_id, alloc.eval_id])

    def _finish_alloc(self, alloc: Alloc, client_status: str, description: str,
                      desired: str | None = None, runtime_gone: bool = False) -> None:
        """Take an allocation to a terminal state, its tasks dead and its services gone."""
        finished = now_ns()
        if desired:
            alloc.desired_status = desired
            alloc.desired_description = description
        for ts in alloc.task_states.values():
            if ts.state != "dead":
                ts.state = "dead"
                ts.finished_at = finished
                ts.failed = client_status == "failed"
                ts.events.append(_task_event(
                    "Killed" if client_status != "complete" or desired else "Terminated",
                    description))
        self._set_client_status(alloc, client_status, description)
        if client_status == "failed":
            self.deployment_alloc_health(alloc, False)
        if alloc.ports:
            ports, alloc.ports = alloc.ports, {}
            self._spawn(self.runtime.stop(dataclasses.replace(alloc, ports=ports)))
        if not runtime_gone:
            # a lost node cannot deregister; its services stay with a critical serfHealth
            self._deregister_alloc_services(alloc)
        job = self.jobs.get(alloc.job_id)
        if job is not None:
            self._update_job_status(job)

    def stop_alloc(self, alloc_id: str) -> Evaluation:
        alloc = self.get_alloc(alloc_id)
        job = self.get_job(alloc.job_id)
        self._finish_alloc(alloc, "complete", "alloc was stopped by user", desired="stop")
        ev = self._new_eval(job, "alloc-stop")
        if job.type != "batch":
            self._reconcile_group(job, job.group(alloc.task_group) or job.groups[0], ev)
            # the stopped allocation is replaced, not merely lost
            for a in self.job_allocs(job.id):
                if a.previous_allocation == "" and a.eval_id == ev.id:
                    a.previous_allocation = alloc.id
                    alloc.next_allocation = a.id
        self.notify()
        return ev

    def restart_alloc(
        self, alloc_id: str, task: str | None = None, all_tasks: bool = False
    ) -> None:
        alloc = self.get_alloc(alloc_id)
        if alloc.client_status != "running":
            raise SimError(500, "Task not running")
        if task and task not in alloc.task_states:
            raise SimError(400, f"Failed to restart task {task!r}: task not found")
        names = [task] if task else list(alloc.task_states)
        stamp = now_ns()
        for name in names:
            ts = alloc.task_states[name]
            ts.restarts += 1
            ts.last_restart = stamp
            ts.started_at = stamp
            ts.events += [
                _task_event("Restart Signaled", "User requested task to restart"),
                _task_event("Restarting", "Task restarting in 0s"),
                _task_event("Started", "Task started by client"),
            ]
            self.log_line(alloc.id, name, f"{alloc.name} {name}: restarted by user")
        self._set_client_status(alloc, "running", "Tasks are running")
        self.notify()

    def get_alloc(self, alloc_id: str) -> Alloc:
        alloc = self.allocs.get(alloc_id)
        if alloc is None:
            matches = [a for a in self.allocs.values() if a.id.startswith(alloc_id)]
            alloc = matches[0] if len(matches) == 1 else None
        if alloc is None:
            raise SimError(404, "alloc not found")
        return alloc

    def _update_job_status(self, job: Job) -> None:
        allocs = self.job_allocs(job.id)
        if job.stop:
            live = any(not a.terminal and a.desired_status == "run" for a in allocs)
            status = "running" if live and job.type != "system" else "dead"
        elif any(a.client_status in ("running", "pending") for a in allocs):
            status = "running"
        elif job.type == "batch" and allocs and all(a.terminal for a in allocs):
            status = "dead"
        else:
            status = "pending"
        if status != job.status:
            job.status = status
            job.modify_index = self.nomad.bump("jobs")

    # -- Consul registrations of Nomad services ----------------------------------------------

    def _register_alloc_services(self, alloc: Alloc, job: Job, group: GroupSpec,
                                 node: NomadNode) -> None:
        idx = self.consul.bump("services", "checks")
        for spec in group.services:
            port = alloc.ports.get(spec.port_label, 0)
            sid = f"_nomad-task-{alloc.id}-group-{group.name}-{spec.name}-{spec.port_label}"
            self.services[(node.name, sid)] = ServiceInstance(
                sid, spec.name, node.name, "127.0.0.1", port, list(spec.tags),
                meta={"external-source": "nomad"}, alloc_id=alloc.id,
                create_index=idx, modify_index=idx,
            )
            if spec.check_path:
                self._upsert_check(
                    Check(node.name, f"_nomad-check-{alloc.id}-{spec.name}",
                          f'service: "{spec.name}" check', "passing",
                          output="HTTP GET: 200 OK", service_id=sid, service_name=spec.name,
                          service_tags=list(spec.tags), type="http", interval="10s"),
                    idx,
                )
            if spec.connect:
                proxy_id = f"{sid}-sidecar-proxy"
                self.services[(node.name, proxy_id)] = ServiceInstance(
                    proxy_id, f"{spec.name}-sidecar-proxy", node.name, "127.0.0.1",
                    21000 + self.rng.randint(0, 999), [], meta={"external-source": "nomad"},
                    kind="connect-proxy",
                    proxy={
                        "DestinationServiceName": spec.name,
                        "DestinationServiceID": sid,
                        "LocalServiceAddress": "127.0.0.1",
                        "LocalServicePort": port,
                        "Upstreams": [
                            {"DestinationType": "service", "DestinationName": up,
                             "LocalBindPort": bind}
                            for up, bind in spec.upstreams
                        ],
                    },
                    alloc_id=alloc.id, create_index=idx, modify_index=idx,
                )
                self._upsert_check(
                    Check(node.name, f"_nomad-check-{alloc.id}-{spec.name}-sidecar",
                          "Connect Sidecar Listening", "passing",
                          output="TCP connect: Success", service_id=proxy_id,
                          service_name=f"{spec.name}-sidecar-proxy", type="tcp",
                          interval="10s"),
                    idx,
                )

    def _deregister_alloc_services(self, alloc: Alloc) -> None:
        keys = [k for k, s in self.services.items() if s.alloc_id == alloc.id]
        if keys:
            idx = self.consul.bump("services", "checks")
            for key in keys:
                self._deregister_service(key, idx)

    def _deregister_service(self, key: tuple[str, str], idx: int) -> None:
        svc = self.services.pop(key, None)
        if svc is None:
            return
        node = key[0]
        for ck in [k for k, c in self.checks.items() if c.node == node and c.service_id == svc.id]:
            del self.checks[ck]
        self.consul.tables["services"] = self.consul.tables["checks"] = idx

    def instance_health(self, alloc_id: str, healthy: bool) -> None:
        """Make an allocation's service checks fail or pass (what a crashing app looks like)."""
        for c in list(self.checks.values()):
            svc = self.services.get((c.node, c.service_id))
            if svc is not None and svc.alloc_id == alloc_id:
                output = "HTTP GET: 200 OK" if healthy else "HTTP GET: 503 Service Unavailable"
                self.set_check(c.node, c.check_id, "passing" if healthy else "critical", output)

    # -- the Nomad event stream --------------------------------------------------------------

    def _emit(self, topic: str, type_: str, key: str, obj: Any, filter_keys: list[str]) -> None:
        snap = copy.copy(obj)
        if isinstance(obj, Alloc):
            snap.task_states = copy.deepcopy(obj.task_states)
            snap.logs = {}
        elif isinstance(obj, NomadNode):
            snap.events = list(obj.events)
        if not self.events or self.events[-1].index != self.nomad.index:
            self._buffered_indexes += 1
        elif isinstance(obj, Deployment):
            snap = copy.deepcopy(obj)
        self.events.append(
            NomadEvent(self.nomad.index, topic, type_, key,
                       getattr(obj, "namespace", "default") if topic != "Node" else "",
                       filter_keys, snap)
        )
        while self._buffered_indexes > self.event_buffer_size:
            oldest = self.events[0].index
            while self.events and self.events[0].index == oldest:
                self.events.popleft()
            self._buffered_indexes -= 1
        self._wake_streams()

    def gc_alloc(self, alloc_id: str) -> None:
        """Nomad's garbage collector: a terminal allocation leaves the state store. The
        table's index moves (it is a Raft write) but no event is published."""
        alloc = self.get_alloc(alloc_id)
        if not alloc.terminal:
            raise SimError(400, f"alloc {alloc_id} is not terminal; the GC leaves it")
        self.nomad.bump("allocs")
        del self.allocs[alloc.id]
        self.notify()


def _group_of(name: str) -> str | None:
    for g in ("vb", "vs"):
        if name.startswith(g) and name[len(g):].isdigit():
            return g
    return None


_index_of = index_of
_task_event = task_event


def _node_event(subsystem: str, message: str) -> dict[str, Any]:
    return {
        "Message": message,
        "Subsystem": subsystem,
        "Details": None,
        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "CreateIndex": 0,
    }
