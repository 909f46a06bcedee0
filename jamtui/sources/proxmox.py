"""Proxmox VE: hypervisors, VMs and storage, through proxmoxer with an API token.

Proxmox has no change feed, so this polls `/cluster/resources` (one request covers every node,
VM and storage) at the configured interval. VM addresses come from the cloud-init config
(`ipconfig0`) read once per VM, else the inventory; groups come from the inventory.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import proxmoxer
from proxmoxer.core import AuthenticationError, ResourceException

from ..config import ProxmoxConfig
from ..inventory import Inventory
from ..model import VM, Hypervisor, Kind, Storage
from ..store import Store
from .base import BackendError, Source, http_problem, timed
from .tls import TLSSettings

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
    )


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
)
PRIVILEGE_CHECK_EVERY = 12  # polls between reads of the token's own privileges


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
                 inventory: Inventory | None = None, timeout: float = 10.0) -> None:
        super().__init__(store, cfg.address, [cfg.token_secret])
        self.cfg = cfg
        self.poll_interval = poll_interval
        self.inventory = inventory
        parts = urlsplit(cfg.address if "://" in cfg.address else f"https://{cfg.address}")
        self.tls = TLSSettings.of("proxmox", cfg)
        user, _, token_name = cfg.token_id.partition("!")
        self.api = proxmoxer.ProxmoxAPI(
            parts.hostname or "127.0.0.1", port=parts.port or 8006, user=user or "root@pam",
            token_name=token_name or None, token_value=cfg.token_secret.reveal() or None,
            verify_ssl=self.tls.verify, timeout=int(timeout),
            service="PVE",
        )
        self._ips: dict[int, str | None] = {}
        self._polls = 0
        # Proxmox has no feed: read every second while VMs or hypervisors are on screen, at
        # the configured interval otherwise, and at once after an action (see `nudge`)
        self.foreground = False
        self._wake = threading.Event()

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
        self._wake.clear()
        self.refresh()
        pause = min(FOREGROUND_INTERVAL, self.poll_interval) if self.foreground \
            else self.poll_interval
        end = time.monotonic() + pause
        while not self.stop_event.is_set() and not self._wake.is_set():
            left = end - time.monotonic()
            if left <= 0:
                break
            self._wake.wait(min(left, 0.25))  # stop_event is checked four times a second
        return None

    def refresh(self) -> None:
        if self._polls % PRIVILEGE_CHECK_EVERY == 0:
            self._check_privileges()
        self._polls += 1
        resources, latency = timed(lambda: self._get("cluster/resources"))
        if not isinstance(resources, list):  # proxmoxer hands back {"errors": body} for non-JSON
            raise BackendError(f"{self.address} sent a malformed answer (not the JSON list "
                               "/cluster/resources returns). Is it really Proxmox VE?")
        nodes = [decode_node(r) for r in resources if r.get("type") == "node"]
        storages = [decode_storage(r) for r in resources if r.get("type") == "storage"]
        qemu = [r for r in resources if r.get("type") == "qemu"]
        # what /cluster/resources says goes on screen at once; the addresses from each new
        # VM's config follow (read in parallel, bounded), instead of 100 reads first
        unknown = [(str(r.get("node", "")), int(r.get("vmid") or 0)) for r in qemu
                   if int(r.get("vmid") or 0) not in self._ips and r.get("status") == "running"]
        self._write(nodes, storages, qemu)
        self.report_ok(latency)
        if unknown:
            self._enrich(unknown)
            self._write(None, None, qemu)

    def _write(self, nodes: list[Hypervisor] | None, storages: list[Storage] | None,
               qemu: list[dict[str, Any]]) -> None:
        vms = [decode_vm(r, self.inventory, self._ips.get(int(r.get("vmid") or 0)))
               for r in qemu]
        with self.store.batch():
            if nodes is not None:
                self.store.replace(Kind.HYPERVISOR, nodes)
            self.store.replace(Kind.VM, vms)
            if storages is not None:
                self.store.replace(Kind.STORAGE, storages,
                                   scope=lambda s: s.backend == "proxmox")

    def _enrich(self, unknown: list[tuple[str, int]]) -> None:
        def read(item: tuple[str, int]) -> tuple[int, str | bool | None]:
            node, vmid = item
            try:
                return vmid, self._config_ip(node, vmid)
            except Exception:  # a timeout or reset on one config: read again next time
                return vmid, False

        if len(unknown) == 1:
            found = [read(unknown[0])]
        else:
            with ThreadPoolExecutor(min(CONFIG_READS, len(unknown)),
                                    thread_name_prefix="proxmox-config") as pool:
                found = list(pool.map(read, unknown))
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
            return ip_from_config(self._get(f"nodes/{node}/qemu/{vmid}/config"))
        except ResourceException:
            return None

    def _get(self, path: str) -> Any:
        self.requests_made += 1
        return self.api(path).get()

    # -- actions -------------------------------------------------------------------------------

    def vm_action(self, node: str, vmid: int, action: str) -> str:
        """start | stop | shutdown | reboot; returns the task's UPID."""
        if action not in ("start", "stop", "shutdown", "reboot"):
            raise ValueError(f"unknown VM action {action!r}")
        self.requests_made += 1
        try:
            return str(self.api.nodes(node).qemu(vmid).status(action).post())
        finally:
            self.nudge()

    def task_status(self, node: str, upid: str) -> tuple[str, str]:
        """(status, exitstatus): running/stopped and "OK" or the error when stopped."""
        self.requests_made += 1
        data = self.api.nodes(node).tasks(upid).status.get()
        if data.get("status") == "stopped":
            self.nudge()  # the task changed the VM: show it now, not at the next poll
        return data.get("status", ""), data.get("exitstatus", "") or ""

