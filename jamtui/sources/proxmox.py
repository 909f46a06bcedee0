"""Proxmox VE: hypervisors, VMs and storage, through proxmoxer with an API token.

Proxmox has no change feed, so this polls `/cluster/resources` (one request covers every node,
VM and storage) at the configured interval. VM addresses come from the cloud-init config
(`ipconfig0`) read once per VM, else the inventory; groups come from the inventory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import cached_property, partial
from http.client import responses as HTTP_STATUS
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import proxmoxer
import requests
from proxmoxer.backends.https import JsonSerializer, ProxmoxHTTPApiTokenAuth
from proxmoxer.core import ANYEVENT_HTTP_STATUS_CODES, AuthenticationError, ResourceException

from ..config import ProxmoxConfig
from ..model import VM, Hypervisor, Kind, PveTask, Snapshot, Storage, Volume
from ..store import Store
from . import jsonload
from .base import BackendError, Source, http_problem, timed
from .side import Ahead, side_by_side
from .tls import PlainGet, TLSSettings, environment_once, with_mixin

if TYPE_CHECKING:  # the inventory's module (ruamel.yaml) loads when it is read
    from ..inventory import Inventory

CONFIG_READS = 8  # VM configs read at once when new VMs appear
FOREGROUND_INTERVAL = 1.0  # seconds between reads while the screen shows VMs or hypervisors


def _bool(value: Any) -> bool:
    return str(value) in ("1", "true", "True")


def decode_node(r: dict[str, Any]) -> Hypervisor:
    return Hypervisor(
        name=r.get("node", ""), status=r.get("status", "unknown"),
        cpu=float(r.get("cpu") or 0), maxcpu=int(r.get("maxcpu") or 0),
        mem=int(r.get("mem") or 0), maxmem=int(r.get("maxmem") or 0),
        disk=int(r.get("disk") or 0), maxdisk=int(r.get("maxdisk") or 0),
        uptime=int(r.get("uptime") or 0),
    )


def decode_vm(r: dict[str, Any], inventory: Inventory | None, ip: str | None) -> VM:
    name = r.get("name", "") or f"VM {r.get('vmid')}"
    host = inventory.host(name) if inventory is not None else None
    tags = tuple(t for t in str(r.get("tags") or "").replace(",", ";").split(";") if t)
    return VM(
        vmid=int(r.get("vmid") or 0), name=name, node=r.get("node", ""),
        status=r.get("status", "unknown"), cpu=float(r.get("cpu") or 0),
        cpus=int(r.get("maxcpu") or r.get("cpus") or 0), mem=int(r.get("mem") or 0),
        maxmem=int(r.get("maxmem") or 0), uptime=int(r.get("uptime") or 0),
        ip=ip or (host.address if host else None),
        group=host.group if host else None,
        template=_bool(r.get("template", 0)), tags=tags, lock=r.get("lock") or None,
        type="lxc" if r.get("type") == "lxc" else "qemu",
    )


GUEST_TYPES = ("qemu", "lxc")


def decode_task(r: dict[str, Any]) -> PveTask:
    """A `/cluster/tasks` entry: `status` (the exit status) and `endtime` once it ended."""
    end = r.get("endtime")
    return PveTask(
        upid=str(r.get("upid", "")), node=str(r.get("node", "")), type=str(r.get("type", "")),
        object_id=str(r.get("id", "") or ""), user=str(r.get("user", "")),
        starttime=int(r.get("starttime") or 0),
        endtime=int(end) if end is not None else None,
        status=str(r.get("status") or "running") if end is not None else "running",
    )


def decode_snapshots(rows: list[dict[str, Any]]) -> list[Snapshot]:
    """`…/snapshot`: every snapshot plus `current` (the guest itself, "You are here!")."""
    return [Snapshot(name=str(r.get("name", "")), description=str(r.get("description") or ""),
                     snaptime=int(r.get("snaptime") or 0), vmstate=_bool(r.get("vmstate", 0)),
                     parent=str(r["parent"]) if r.get("parent") else None,
                     running=_bool(r.get("running", 0)))
            for r in rows if isinstance(r, dict)]


def snapshot_tree(snaps: list[Snapshot]) -> list[tuple[int, Snapshot]]:
    """(depth, snapshot) in tree order: roots by time, each followed by its children; a
    snapshot whose parent is unknown is a root. `current` sits under its parent."""
    names = {s.name for s in snaps}
    children: dict[str | None, list[Snapshot]] = {}
    for snap in snaps:
        parent = snap.parent if snap.parent in names else None
        children.setdefault(parent, []).append(snap)
    out: list[tuple[int, Snapshot]] = []
    seen: set[str] = set()

    def walk(parent: str | None, depth: int) -> None:
        for snap in sorted(children.get(parent, []),
                           key=lambda s: (s.name == "current", s.snaptime, s.name)):
            if snap.name in seen:
                continue
            seen.add(snap.name)
            out.append((depth, snap))
            walk(snap.name, depth + 1)

    walk(None, 0)
    return out


def decode_volume(r: dict[str, Any]) -> Volume:
    vmid = r.get("vmid")
    return Volume(volid=str(r.get("volid", "")), content=str(r.get("content", "")),
                  format=str(r.get("format", "")), size=int(r.get("size") or 0),
                  vmid=int(vmid) if vmid not in (None, "") else None,
                  ctime=int(r.get("ctime") or 0), notes=str(r.get("notes") or ""))


def decode_storage(r: dict[str, Any]) -> Storage:
    return Storage(
        node=r.get("node", ""), storage=r.get("storage", ""),
        type=r.get("plugintype", ""), status=r.get("status", "unknown"),
        used=int(r.get("disk") or 0), total=int(r.get("maxdisk") or 0),
        shared=_bool(r.get("shared", 0)), content=r.get("content", ""),
    )


def ip_from_config(config: dict[str, Any]) -> str | None:
    """`ipconfig0: ip=192.168.42.21/24,gw=192.168.42.1` -> 192.168.42.21 (not dhcp)."""
    for part in str(config.get("ipconfig0") or "").split(","):
        if part.startswith("ip=") and part[3:] not in ("dhcp", "auto"):
            return part[3:].split("/")[0]
    return None


# What /cluster/resources shows only with a privilege (Proxmox filters, it does not refuse):
# (feature, privilege, ACL path, the kind whose pane says it, the words)
AUDIT_PRIVILEGES = (
    ("vms", "VM.Audit", "/vms", Kind.VM,
     "Proxmox VMs: not permitted (the token lacks VM.Audit on /vms); none are listed"),
    ("hypervisors", "Sys.Audit", "/nodes", Kind.HYPERVISOR,
     "Proxmox hypervisors: not permitted (the token lacks Sys.Audit on /nodes)"),
    ("storage", "Datastore.Audit", "/storage", Kind.STORAGE,
     "Proxmox storage: not permitted (the token lacks Datastore.Audit on /storage)"),
    ("tasks", "Sys.Audit", "/nodes", Kind.PVE_TASK,
     "Proxmox tasks: only the token's own are listed (it lacks Sys.Audit on /nodes)"),
)
TASKS_KEPT = 200  # the newest /cluster/tasks entries the store keeps
PRIVILEGE_CHECK_EVERY = 12  # poll intervals between reads of the token's own privileges


def held_privileges(paths: dict[str, dict[str, Any]], path: str) -> set[str]:
    """The privileges `/access/permissions` shows on `path`, on `/`, or anywhere under it."""
    out: set[str] = set()
    for p, privileges in paths.items():
        if p in ("/", path) or p.startswith(path + "/"):
            out.update(privileges or {})
    return out


class ProxmoxSource(Source):
    name = "proxmox"
    hint = "[proxmox] token_id and token / PROXMOX_VE_API_TOKEN, [proxmox] ca_file"

    def __init__(self, store: Store, cfg: ProxmoxConfig, *, poll_interval: float = 5.0,
                 inventory: Inventory | Callable[[], Inventory | None] | None = None,
                 timeout: float = 10.0) -> None:
        super().__init__(store, cfg.address, [cfg.token_secret])
        self.cfg = cfg
        self.poll_interval = poll_interval
        self._inventory = inventory  # or how to read it: when the first VMs are written
        parts = urlsplit(cfg.address if "://" in cfg.address else f"https://{cfg.address}")
        self.tls = TLSSettings.of("proxmox", cfg)
        user, _, token_name = cfg.token_id.partition("!")
        self.api = proxmoxer.ProxmoxAPI(
            parts.hostname or "127.0.0.1", port=parts.port or 8006, user=user or "root@pam",
            token_name=token_name or None, token_value=cfg.token_secret.reveal() or None,
            verify_ssl=self.tls.verify, timeout=int(timeout),
            service="PVE",
        )
        environment_once(self.api._store["session"])  # proxies, netrc: once, not each second
        prepared_once(self.api._store["session"])  # the same GET each second: prepared once
        serializer = self.api._store["serializer"] = SameBody()  # the same answer decoded once
        self._same = serializer.last  # ... through proxmoxer or not (`_get_plain`)
        self._ips: dict[int, str | None] = {}
        self._last_resources: list[Any] | None = None  # the last answer written to the store
        self._privileges_next = 0.0  # monotonic time of the next /access/permissions read
        self._task_marks: dict[str, str] = {}  # upid -> status last seen
        # Proxmox has no feed: read every second while VMs or hypervisors are on screen, at
        # the configured interval otherwise, and at once after an action (see `nudge`)
        self.foreground = False
        self._wake = threading.Event()
        self._tasks_next = 0.0  # monotonic time of the next /cluster/tasks read (`_tasks_due`)

    def set_foreground(self, on: bool) -> None:
        """The screen shows (or stops showing) VMs or hypervisors: poll fast (or slow)."""
        if on and not self.foreground:
            self._wake.set()  # what is on screen now may be a whole interval old
        self.foreground = on

    def nudge(self) -> None:
        """Read /cluster/resources now (after an action, or a new task seen)."""
        self._wake.set()

    def start(self) -> None:
        self.spawn(lambda: self.loop(self._poll, "cluster resources"), "poll")

    def stop(self, timeout: float = 1.0) -> None:
        self.stop_event.set()
        self._wake.set()  # the poll's pause ends now, not at its next quarter second
        super().stop(timeout)

    def report_failure(self, exc: BaseException, what: str = "") -> None:
        super().report_failure(self._words(exc), what)

    def _words(self, exc: BaseException) -> BaseException:
        if isinstance(exc, AuthenticationError):
            return BackendError(http_problem("proxmox", self.address, 401, str(exc), self.hint))
        if isinstance(exc, ResourceException):
            # pveproxy's reason phrase (proxmoxer's `content`) names what failed, e.g.
            # "Permission check failed (/vms/100, VM.PowerMgmt)"
            return BackendError(http_problem("proxmox", self.address, exc.status_code,
                                             exc.content or exc.status_message or str(exc),
                                             self.hint))
        return exc

    def _poll(self) -> float | None:
        woken = self._wake.is_set()
        self._wake.clear()
        # the task list beside the guests (and their addresses), not after them; read at
        # the configured interval, not on every fast foreground read (`_tasks_due`)
        reads: list[Callable[[], Any]] = [partial(self.refresh, report=False)]
        if self._tasks_due(woken):
            reads.append(self._tasks)
        latency, *tasks = side_by_side(reads, 2, self.stop_event, f"{self.name}:tasks")
        news = bool(tasks and tasks[0])
        # answered once the whole picture is in (guests, their addresses, the tasks): a
        # one-shot `snapshot` takes the store when every source has answered
        self.report_ok(latency)
        if news:  # a task began or ended: its guest has likely changed
            self.refresh()
        pause = min(FOREGROUND_INTERVAL, self.poll_interval) if self.foreground \
            else self.poll_interval
        if not self.stop_event.is_set():
            self._wake.wait(pause)  # `stop` sets it too (it looked four times a second)
        return None

    def _tasks_due(self, woken: bool) -> bool:
        """/cluster/tasks at the configured interval, and at once after an action or when the
        screen turns to VMs (`woken`): the fast foreground read is /cluster/resources alone
        (it shows a guest's new state itself; both each second were twice the requests)."""
        now = time.monotonic()
        if woken or now >= self._tasks_next:
            self._tasks_next = now + self.poll_interval
            return True
        return False

    def _tasks(self) -> bool:
        try:
            return self.refresh_tasks()
        except ResourceException as exc:  # the task list is one feature, not the backend
            self.refuse("tasks", "Sys.Audit", f"Proxmox tasks: not read ({exc.status_code} "
                        f"{exc.content or exc.status_message})", Kind.PVE_TASK.value)
            return False

    def reread(self) -> None:
        """After an action's task ended: the guests and the task list at once."""
        self.refresh()
        self.refresh_tasks()

    def refresh_tasks(self) -> bool:
        """Read `/cluster/tasks` (one request, the whole cluster) into the store; True when a
        task appeared or ended since the last read. Kept apart from `refresh` so the poll can
        schedule it on its own cadence."""
        rows = self._get_plain("cluster/tasks")
        if not isinstance(rows, list):
            raise BackendError(f"{self.address} sent a malformed answer (not the JSON list "
                               "/cluster/tasks returns).")
        tasks = [decode_task(r) for r in rows[:TASKS_KEPT] if isinstance(r, dict)]
        marks = {t.upid: t.status for t in tasks}
        news = bool(self._task_marks) and any(
            self._task_marks.get(upid) != status for upid, status in marks.items())
        self._task_marks = marks
        self.store.replace(Kind.PVE_TASK, tasks)
        return news

    def refresh(self, report: bool = True) -> float:
        """Read `/cluster/resources` (and new VMs' addresses) into the store; the answer's
        latency, reported as the backend's health unless `report` is False."""
        reads: list[Callable[[], Any]] = [
            partial(timed, partial(self._get_plain, "cluster/resources"))]
        now = time.monotonic()
        if now >= self._privileges_next:  # beside it, not before it
            # on the clock, not every 12th read: the fast foreground read made it each 12 s
            self._privileges_next = now + PRIVILEGE_CHECK_EVERY * self.poll_interval
            reads.append(self._check_privileges)
        ahead = None
        if self.once and not self.summary and not self._ips:
            # a one-shot `snapshot` reads every VM's config next: its readers start while
            # /cluster/resources is read, not one after the other once it has answered
            ahead = Ahead(CONFIG_READS + 1, self.stop_event, f"{self.name}:config")
            reads.append(ahead.start)
        try:
            return self._refresh(reads, report, ahead)
        finally:
            if ahead is not None:
                ahead.close()

    def _refresh(self, reads: list[Callable[[], Any]], report: bool,
                 ahead: Ahead | None) -> float:
        resources, latency = side_by_side(reads, len(reads), self.stop_event,
                                          f"{self.name}:read")[0]
        if not isinstance(resources, list):  # proxmoxer hands back {"errors": body} for non-JSON
            raise BackendError(f"{self.address} sent a malformed answer (not the JSON list "
                               "/cluster/resources returns). Is it really Proxmox VE?")
        guests = [r for r in resources if r.get("type") in GUEST_TYPES]
        # what /cluster/resources says goes on screen at once; the addresses from each new
        # VM's config follow (read in parallel, bounded), instead of 100 reads first
        unknown = [(str(r.get("node", "")), int(r.get("vmid") or 0)) for r in guests
                   if r.get("type") == "qemu" and int(r.get("vmid") or 0) not in self._ips
                   and r.get("status") == "running"]
        first: Callable[[], None] | None = None
        if (resources is not self._last_resources
                and resources != self._last_resources) or unknown:
            # Proxmox's figures move with pvestatd's 10 s cycle: read every second, most
            # answers are the last one again, and cost no records, no store change, no paint
            first = partial(
                self._write, [decode_node(r) for r in resources if r.get("type") == "node"],
                [decode_storage(r) for r in resources if r.get("type") == "storage"], guests)
            self._last_resources = resources
        # `status` prints no addresses; the cockpit reads them once its first frame is drawn
        # (the next poll: 104 config reads at 5k took the one GIL from it), the inventory's
        # address shown meanwhile as before
        frame = self.first_frame
        if unknown and not self.summary and (frame is None or frame.is_set()):
            if first is not None and not self.once:
                first()  # on screen before the addresses
                first = None
            # a one-shot command shows nothing before the end: its first write (the
            # inventory's read for the groups, 0.1-0.2 s at 5k) goes beside the config
            # reads, its longest wait, not before them
            self._enrich(unknown, first, ahead)
            self._write(None, None, guests)
        elif first is not None:
            first()
        if report:
            self.report_ok(latency)
        return latency

    @property
    def inventory(self) -> Inventory | None:
        """The inventory the VMs' groups come from; none for `status`, which prints
        neither groups nor addresses (the inventory is not read for it)."""
        if self.summary:
            return None
        inventory = self._inventory
        return inventory() if callable(inventory) else inventory

    @inventory.setter
    def inventory(self, inventory: Inventory | None) -> None:  # a workflow changed it
        self._inventory = inventory

    def _write(self, nodes: list[Hypervisor] | None, storages: list[Storage] | None,
               qemu: list[dict[str, Any]]) -> None:
        inventory = self.inventory
        vms = [decode_vm(r, inventory, self._ips.get(int(r.get("vmid") or 0))) for r in qemu]
        with self.store.batch():
            if nodes is not None:
                self.store.replace(Kind.HYPERVISOR, nodes)
            self.store.replace(Kind.VM, vms)
            if storages is not None:
                self.store.replace(Kind.STORAGE, storages,
                                   scope=lambda s: s.backend == "proxmox")

    def _enrich(self, unknown: list[tuple[str, int]],
                meanwhile: Callable[[], None] | None = None,
                ahead: Ahead | None = None) -> None:
        """The addresses of these VMs from their configs, `CONFIG_READS` at a time (on the
        readers started `ahead`, if any); with `meanwhile` run beside them (its failure is
        raised)."""
        def read(item: tuple[str, int]) -> tuple[int, str | bool | None]:
            node, vmid = item
            try:
                return vmid, self._config_ip(node, vmid)
            except Exception:  # a timeout or reset on one config: read again next time
                return vmid, False

        def beside() -> tuple[int, bool]:
            if meanwhile is not None:
                meanwhile()
            return 0, False

        jobs: list[Callable[[], tuple[int, str | bool | None]]] = [
            partial(read, item) for item in unknown]
        if meanwhile is not None:
            jobs.insert(0, beside)
        # daemon threads (side_by_side), not a pool: a one-shot command that stops
        # listening must not wait at exit for the configs still queued
        found = ahead.run(jobs) if ahead is not None else side_by_side(
            jobs, CONFIG_READS + (meanwhile is not None), self.stop_event, f"{self.name}:config")
        for vmid, ip in found:
            if ip is not False:
                self._ips[vmid] = ip if isinstance(ip, str) else None

    def _check_privileges(self) -> None:
        """Proxmox answers a token without VM.Audit with no VMs, not a refusal: ask it what
        the token holds (any token may read its own) so an empty view says why."""
        try:
            paths = self._get("access/permissions")
        except ResourceException:
            return  # not said either way: nothing is claimed
        if not isinstance(paths, dict):
            return
        for feature, privilege, path, kind, message in AUDIT_PRIVILEGES:
            if privilege in held_privileges(paths, path):
                self.permit(feature)
            else:
                self.refuse(feature, privilege, message, kind.value)

    def _config_ip(self, node: str, vmid: int) -> str | None:
        try:
            return ip_from_config(self._get_plain(f"nodes/{node}/qemu/{vmid}/config"))
        except ResourceException:
            return None

    def _get_plain(self, path: str) -> Any:
        """`_get(path)`, sent through `tls.PlainGet` (the session's own pool, headers and
        TLS, without requests' work around each request: 1.25 -> 0.5 ms of CPU a read) when
        the session allows it; proxmoxer's answer (its `data`, or `{"errors": body}` for a
        body that is not JSON) and its `ResourceException` for a refusal. The reads made
        each second (`SAME_BODY_PATHS`) give their last answer again for the same body."""
        got = self._plain.get(path) if self._plain else None
        if got is None:  # (a redirect: as requests follows it)
            return self._get(path)
        self.requests_made += 1
        status, reason, _, body = got
        if status >= 400:
            raise ResourceException(status, HTTP_STATUS.get(status, ANYEVENT_HTTP_STATUS_CODES.get(
                status)), reason, errors=_errors(body))
        return self._same.decoded("/" + path, body, partial(_data, body))

    @cached_property
    def _plain(self) -> PlainGet | None:
        """proxmoxer's session's GETs (`tls.PlainGet`), made at the first read."""
        session = self.api._store["session"]
        auth = session.auth
        # an API token's header is the same on every request (a ticket renews itself)
        if type(auth) is not ProxmoxHTTPApiTokenAuth:
            return None
        return PlainGet.of(session, self.api._store["base_url"], verify=auth.verify_ssl,
                           proxies=auth.proxies, timeout=auth.timeout)

    def _get(self, path: str) -> Any:
        self.requests_made += 1
        return self.api(path).get()

    # -- actions -------------------------------------------------------------------------------

    def vm_action(self, node: str, vmid: int, action: str, guest: str = "qemu") -> str:
        """start | stop | shutdown | reboot of a VM (`qemu`) or container (`lxc`); returns
        the task's UPID."""
        if action not in ("start", "stop", "shutdown", "reboot"):
            raise ValueError(f"unknown VM action {action!r}")
        if guest not in GUEST_TYPES:
            raise ValueError(f"unknown guest type {guest!r}")
        self.requests_made += 1
        try:
            return str(getattr(self.api.nodes(node), guest)(vmid).status(action).post())
        finally:
            self.nudge()

    def snapshots(self, node: str, vmid: int, guest: str = "qemu") -> list[Snapshot]:
        """`GET /nodes/{node}/{qemu|lxc}/{vmid}/snapshot` (VM.Audit)."""
        rows = self._get(f"nodes/{node}/{guest}/{vmid}/snapshot")
        return decode_snapshots(rows if isinstance(rows, list) else [])

    def snapshot_create(self, node: str, vmid: int, name: str, description: str = "",
                        vmstate: bool = False) -> str:
        """`POST …/qemu/{vmid}/snapshot` (VM.Snapshot); returns the task's UPID."""
        params: dict[str, Any] = {"snapname": name, "vmstate": 1 if vmstate else 0}
        if description:
            params["description"] = description
        self.requests_made += 1
        return str(self.api.nodes(node).qemu(vmid).snapshot.post(**params))

    def snapshot_rollback(self, node: str, vmid: int, name: str) -> str:
        """`POST …/qemu/{vmid}/snapshot/{snapname}/rollback` (VM.Snapshot)."""
        self.requests_made += 1
        return str(self.api.nodes(node).qemu(vmid).snapshot(name).rollback.post())

    def snapshot_delete(self, node: str, vmid: int, name: str) -> str:
        """`DELETE …/qemu/{vmid}/snapshot/{snapname}` (VM.Snapshot)."""
        self.requests_made += 1
        return str(self.api.nodes(node).qemu(vmid).snapshot(name).delete())

    def migrate(self, node: str, vmid: int, target: str, online: bool) -> str:
        """`POST …/qemu/{vmid}/migrate` with `target` and `online=1` for a running VM
        (VM.Migrate); returns the task's UPID."""
        self.requests_made += 1
        return str(self.api.nodes(node).qemu(vmid).migrate.post(
            target=target, online=1 if online else 0))

    def task_log(self, node: str, upid: str, start: int = 0,
                 limit: int = 500) -> tuple[list[str], int]:
        """(lines from `start`, total) of `/nodes/{node}/tasks/{upid}/log`; Sys.Audit, or the
        token's own task."""
        self.requests_made += 1
        resource = self.api.nodes(node).tasks(upid).log
        rows = resource.get(start=start, limit=limit)
        lines = [str(r.get("t", "")) for r in rows if isinstance(r, dict)] \
            if isinstance(rows, list) else []
        return lines, start + len(lines)

    def storage_content(self, node: str, storage: str) -> list[Volume]:
        """`/nodes/{node}/storage/{storage}/content` (Datastore.Audit on /storage/{id})."""
        rows = self._get(f"nodes/{node}/storage/{storage}/content")
        return [decode_volume(r) for r in rows if isinstance(r, dict)] \
            if isinstance(rows, list) else []

    def task_status(self, node: str, upid: str) -> tuple[str, str]:
        """(status, exitstatus): running/stopped and "OK" or the error when stopped."""
        self.requests_made += 1
        data = self.api.nodes(node).tasks(upid).status.get()
        if data.get("status") == "stopped":
            self.nudge()  # the task changed the VM: show it now, not at the next poll
        return data.get("status", ""), data.get("exitstatus", "") or ""


# -- the one-second read's cost (issue #17: ~1.3 ms CPU a read, most of it in requests) -------

# what is read every second (or interval) and mostly answers as last time
SAME_BODY_PATHS = ("/cluster/resources", "/cluster/tasks")


def _data(body: bytes) -> Any:
    """proxmoxer's serializer's answer for an accepted `body`: its `data`, or
    `{"errors": body}` for a body that is not JSON (or not UTF-8)."""
    try:
        return jsonload.loads(body)["data"]
    except ValueError:
        return {"errors": body}


def _errors(body: bytes) -> Any:
    """proxmoxer's `loads_errors`: the `errors` of a refusal's JSON body."""
    try:
        data = jsonload.loads(body)
    except ValueError:
        return {"errors": body}
    return data.get("errors") if isinstance(data, dict) else None


class LastBody:
    """A body of `/cluster/resources` or `/cluster/tasks` identical to the last one is not
    decoded again: its last decoding is handed back (the same object, so `refresh` knows it
    unchanged without comparing it). Pvestatd moves the figures every 10 s: most of the
    foreground reads each second are the last answer."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[bytes, Any]] = {}

    def decoded(self, where: str, body: bytes, decode: Callable[[], Any]) -> Any:
        """`decode()` of `body`, read from `where` (a URL or path); the last one's when
        `where` is read each second and `body` is the same as last time."""
        if not where.endswith(SAME_BODY_PATHS):
            return decode()
        last = self._last.get(where)
        if last is not None and last[0] == body:
            return last[1]
        data = decode()
        self._last[where] = (body, data)
        return data


class SameBody(JsonSerializer):
    """proxmoxer's JSON serializer, with the same answer decoded once (`LastBody`): the
    reads that go through proxmoxer (a ticket's session, a redirect)."""

    def __init__(self) -> None:
        self.last = LastBody()

    def loads(self, response: requests.Response) -> Any:
        return self.last.decoded(str(response.url or ""), response.content,
                                 partial(super().loads, response))


class _PreparedOnce(requests.Session):
    """A session that prepares a plain GET (no parameters, body, cookies or headers of its
    own) once per URL and sends a copy of it after: requests' preparing (URL parsing and
    quoting, merging the session's headers, cookies, hooks and auth) was a quarter of the
    one-second read's CPU. The session's headers and auth are part of the key."""

    _prepared: dict[tuple[Any, ...], requests.PreparedRequest]

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        if (request.method != "GET" or request.params or request.data or request.files
                or request.json is not None or request.cookies or self.cookies
                or request.headers or request.auth):
            return super().prepare_request(request)
        prepared = self.__dict__.setdefault("_prepared", {})
        key = (request.url, id(self.auth), tuple(self.headers.items()))
        hit = prepared.get(key)
        if hit is None:
            if len(prepared) >= 64:  # each VM's config is read once: no hoard
                prepared.clear()
            hit = prepared[key] = super().prepare_request(request)
        return hit.copy()


def prepared_once(session: requests.Session) -> requests.Session:
    """`session` (proxmoxer's) made to prepare a plain GET once per URL (`_PreparedOnce`)."""
    return with_mixin(session, _PreparedOnce)
