"""The lab's Proxmox VE API (`/api2/json`), over HTTPS with the lab's CA.

Shapes follow the PVE API viewer (pve.proxmox.com/pve-docs/api-viewer): version, nodes,
nodes/{node}/status, cluster/resources, nodes/{node}/qemu (list, config, status/current,
status/{start,stop,shutdown,reboot}, clone, delete, agent/network-get-interfaces),
nodes/{node}/tasks/{upid}/{status,log}, access/ticket. Every answer is `{"data": ...}`; an
error is `{"data": null, "message": ..., "errors": {...}}` with the message also in the HTTP
reason phrase, which is where proxmoxer reads it. Booleans are exactly 1 and 0.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .acl import PVE_ALL, Grant, pve_privilege
from .context import SimContext
from .http import fault_middleware
from .model import VM, Hypervisor, PveTask, Snapshot
from .world import SimError, World

PREFIX = "/api2/json"
VERSION = {"version": "8.2.4", "release": "8.2", "repoid": "faa83925c9641325"}
CTX: web.AppKey[SimContext] = web.AppKey("pve_ctx", SimContext)
GRANT: web.RequestKey[Grant] = web.RequestKey("pve_grant", Grant)  # the token's privileges
TICKETS: web.AppKey[dict[str, str]] = web.AppKey("pve_tickets", dict)  # ticket -> CSRF token
# /cluster/resources takes its figures from the RRD data pvestatd broadcasts every 10 s
# (PVE::API2Tools::extract_vm_stats / extract_node_stats over rrd_dump()): between two of its
# cycles the answer is the same. The lab keeps each entry's figures per cycle.
PVESTATD_CYCLE = 10.0
STATS: web.AppKey[dict[str, Any]] = web.AppKey("pve_stats", dict)
FIGURES = ("cpu", "mem", "uptime", "netin", "netout", "disk", "diskread", "diskwrite")
BOOLEAN_PARAMS = {"full", "skiplock", "forceStop", "keepActive", "purge",
                  "destroy-unreferenced-disks", "start", "online", "overrule-shutdown"}


def error(status: int, message: str, errors: dict[str, str] | None = None) -> web.Response:
    """PVE's error: the message in the body and, on one line, as the reason phrase."""
    body: dict[str, Any] = {"data": None, "message": message + "\n"}
    if errors:
        body["errors"] = errors
    reason = message.splitlines()[0] if message else "error"
    return web.Response(status=status, reason=reason, text=json.dumps(body),
                        content_type="application/json")


def ok(data: Any) -> web.Response:
    return web.json_response({"data": data})


def build_app(ctx: SimContext) -> web.Application:
    app = web.Application(middlewares=[
        fault_middleware("proxmox", ctx.faults, error, "Permission check failed"),
        _auth_middleware(ctx),
    ])
    app[CTX] = ctx
    app[TICKETS] = {}
    app[STATS] = {}
    r = app.router
    p = PREFIX
    r.add_post(f"{p}/access/ticket", ticket)
    r.add_get(f"{p}/version", version)
    r.add_get(f"{p}/access/permissions", permissions)
    r.add_get(f"{p}/nodes", nodes)
    r.add_get(f"{p}/nodes/{{node}}/status", node_status)
    r.add_get(f"{p}/cluster/resources", cluster_resources)
    r.add_get(f"{p}/cluster/status", cluster_status)
    r.add_get(f"{p}/nodes/{{node}}/qemu", qemu_list)
    r.add_get(f"{p}/nodes/{{node}}/qemu/{{vmid}}/config", qemu_config)
    r.add_route("PUT", f"{p}/nodes/{{node}}/qemu/{{vmid}}/config", qemu_set_config)
    r.add_post(f"{p}/nodes/{{node}}/qemu/{{vmid}}/config", qemu_set_config)
    r.add_get(f"{p}/nodes/{{node}}/qemu/{{vmid}}/status/current", qemu_current)
    r.add_post(f"{p}/nodes/{{node}}/qemu/{{vmid}}/status/{{action}}", qemu_power)
    r.add_post(f"{p}/nodes/{{node}}/qemu/{{vmid}}/clone", qemu_clone)
    r.add_delete(f"{p}/nodes/{{node}}/qemu/{{vmid}}", qemu_delete)
    r.add_post(f"{p}/nodes/{{node}}/qemu", qemu_create)
    r.add_post(f"{p}/nodes/{{node}}/qemu/{{vmid}}/template", qemu_template)
    r.add_get(f"{p}/nodes/{{node}}/qemu/{{vmid}}/agent/network-get-interfaces", agent_net)
    r.add_get(f"{p}/nodes/{{node}}/qemu/{{vmid}}/snapshot", snapshot_list)
    r.add_post(f"{p}/nodes/{{node}}/qemu/{{vmid}}/snapshot", snapshot_create)
    r.add_get(f"{p}/nodes/{{node}}/qemu/{{vmid}}/snapshot/{{snapname}}", snapshot_index)
    r.add_delete(f"{p}/nodes/{{node}}/qemu/{{vmid}}/snapshot/{{snapname}}", snapshot_delete)
    r.add_get(f"{p}/nodes/{{node}}/qemu/{{vmid}}/snapshot/{{snapname}}/config",
              snapshot_config)
    r.add_post(f"{p}/nodes/{{node}}/qemu/{{vmid}}/snapshot/{{snapname}}/rollback",
               snapshot_rollback)
    r.add_get(f"{p}/nodes/{{node}}/qemu/{{vmid}}/migrate", migrate_check)
    r.add_post(f"{p}/nodes/{{node}}/qemu/{{vmid}}/migrate", migrate)
    r.add_get(f"{p}/nodes/{{node}}/qemu/{{vmid}}/pending", qemu_pending)
    r.add_get(f"{p}/nodes/{{node}}/qemu/{{vmid}}/status", _index("subdir", QEMU_STATUS))
    r.add_get(f"{p}/nodes/{{node}}/qemu/{{vmid}}", _index("subdir", QEMU_DIR))
    r.add_get(f"{p}/nodes/{{node}}/lxc", lxc_list)
    r.add_get(f"{p}/nodes/{{node}}/lxc/{{vmid}}", _index("subdir", LXC_DIR))
    r.add_get(f"{p}/nodes/{{node}}/lxc/{{vmid}}/config", lxc_config)
    r.add_get(f"{p}/nodes/{{node}}/lxc/{{vmid}}/status", _index("subdir", LXC_STATUS))
    r.add_get(f"{p}/nodes/{{node}}/lxc/{{vmid}}/status/current", lxc_current)
    r.add_post(f"{p}/nodes/{{node}}/lxc/{{vmid}}/status/{{action}}", lxc_power)
    r.add_get(f"{p}/nodes/{{node}}/lxc/{{vmid}}/snapshot", snapshot_list)
    r.add_get(f"{p}/nodes/{{node}}", _index("name", NODE_DIR))
    r.add_get(f"{p}/nodes/{{node}}/network", network)
    r.add_get(f"{p}/nodes/{{node}}/storage", node_storage)
    r.add_get(f"{p}/nodes/{{node}}/storage/{{storage}}", _index("subdir", STORAGE_DIR))
    r.add_get(f"{p}/nodes/{{node}}/storage/{{storage}}/status", storage_status)
    r.add_get(f"{p}/nodes/{{node}}/storage/{{storage}}/content", storage_content)
    r.add_get(f"{p}/storage", storage_list)
    r.add_get(f"{p}/pools", pools)
    r.add_get(f"{p}/pools/{{poolid}}", pool)
    r.add_get(f"{p}/cluster/nextid", nextid)
    r.add_get(f"{p}/cluster/tasks", cluster_tasks)
    r.add_get(f"{p}/nodes/{{node}}/tasks", task_list)
    r.add_get(f"{p}/nodes/{{node}}/tasks/{{upid}}/status", task_status)
    r.add_get(f"{p}/nodes/{{node}}/tasks/{{upid}}/log", task_log)
    r.add_route("*", "/{tail:.*}", not_implemented)
    return app


# -- authentication ---------------------------------------------------------------------------


def _auth_middleware(ctx: SimContext) -> Any:
    s = ctx.secrets

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[..., Awaitable[Any]]) -> Any:
        if request.path != f"{PREFIX}/access/ticket":
            auth = request.headers.get("Authorization", "")
            cookie = request.cookies.get("PVEAuthCookie", "")
            if auth:
                grant = s.proxmox_grant(auth)
                if grant is None:
                    return await unauthorized(_token_failure(ctx, auth))
                request[GRANT] = grant
                need = pve_privilege(request.method, request.path[len(PREFIX):])
                if need is not None and not grant.allows(need[1]):
                    return error(403, f"Permission check failed ({need[0]}, {need[1]})")
            elif cookie:
                csrf = request.app[TICKETS].get(cookie)
                if csrf is None:
                    return await unauthorized("invalid PVE ticket")
                if request.method != "GET" and request.headers.get(
                        "CSRFPreventionToken") != csrf:
                    return error(401, "Permission denied - invalid csrf token")
            else:
                return await unauthorized("No ticket")
        try:
            return await handler(request)
        except SimError as exc:
            return error(exc.status, exc.message)
        except _ParamError as exc:
            return error(400, "Parameter verification failed.", exc.errors)

    return middleware


# pveproxy delays every refused authentication by 3 s (PVE::APIServer::AnyEvent); the lab
# keeps this at 0 so tests stay quick (set it to 3.0 to feel what a client waits for)
AUTH_FAILURE_DELAY = 0.0
_TOKEN = re.compile(r"PVEAPIToken=([^!=\s]+)!([^=\s]+)=(\S+)")


def _token_failure(ctx: SimContext, authorization: str) -> str:
    """What pveproxy says of a token it refuses (pve-access-control's verify_token)."""
    m = _TOKEN.fullmatch(authorization.strip())
    if m is None:
        return "No ticket"  # not a token header pveproxy understands: no credentials at all
    known = {ctx.secrets.proxmox_token_id, ctx.secrets.proxmox_read_token_id}
    token_id = f"{m.group(1)}!{m.group(2)}"
    if token_id not in known:
        return f"no such token '{m.group(2)}' for user '{m.group(1)}'"
    return "invalid token value!"


async def unauthorized(reason: str) -> web.Response:
    """pveproxy's 401: the auth error as the reason phrase and no body (not the JSON error)."""
    if AUTH_FAILURE_DELAY:
        await asyncio.sleep(AUTH_FAILURE_DELAY)
    return web.Response(status=401, reason=reason)


class _ParamError(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("Parameter verification failed.")
        self.errors = errors


async def _params(request: web.Request) -> dict[str, str]:
    """Form-encoded (or JSON) body plus query, with PVE's boolean type check."""
    values: dict[str, str] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            raw = await request.json()
            values.update({k: str(v) for k, v in (raw or {}).items()})
        else:
            values.update({k: str(v) for k, v in (await request.post()).items()})
    bad = {k: f"type check ('boolean') failed - got '{v}'"
           for k, v in values.items() if k in BOOLEAN_PARAMS and v not in ("0", "1")}
    if bad:
        raise _ParamError(bad)
    return values


async def ticket(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    form = await _params(request)
    user, password = form.get("username", ""), form.get("password", "")
    if user == ctx.secrets.proxmox_user and password in request.app[TICKETS]:
        new_ticket = password  # renewing with a valid ticket, as proxmoxer does
    elif user == ctx.secrets.proxmox_user and hmac.compare_digest(
            password, ctx.secrets.proxmox_password):
        new_ticket = f"PVE:{user}:{int(time.time()):08X}::{secrets.token_urlsafe(32)}"
    else:
        return error(401, "authentication failure")
    csrf = f"{int(time.time()):08X}:{secrets.token_urlsafe(24)}"
    request.app[TICKETS][new_ticket] = csrf
    return ok({"ticket": new_ticket, "CSRFPreventionToken": csrf, "username": user,
               "cap": {"vms": {"VM.PowerMgmt": 1}, "nodes": {"Sys.Audit": 1}}})


async def not_implemented(request: web.Request) -> web.Response:
    path = request.path.removeprefix(PREFIX)
    return error(501, f"Method '{request.method} {path}' not implemented")


# -- renderers -------------------------------------------------------------------------------


def _world(request: web.Request) -> World:
    return request.app[CTX].world


def _hypervisor(w: World, name: str) -> Hypervisor:
    hv = w.hypervisors.get(name)
    if hv is None:
        raise SimError(500, f"hostname lookup '{name}' failed - failed to get address info "
                            f"for: {name}: Name or service not known")
    return hv


def _vm(request: web.Request) -> VM:
    return _guest(request, "qemu")


def _uptime(since: float) -> int:
    return max(0, int(time.time() - since)) if since else 0


def node_json(hv: Hypervisor) -> dict[str, Any]:
    online = hv.status == "online"
    disk_total = sum(s.total for s in hv.storages if not s.shared)
    disk_used = sum(s.used for s in hv.storages if not s.shared)
    return {
        "id": f"node/{hv.name}", "type": "node", "node": hv.name, "status": hv.status,
        "cpu": round(hv.cpu, 4) if online else 0, "maxcpu": hv.cores,
        "mem": hv.mem_used if online else 0, "maxmem": hv.memory,
        "disk": disk_used, "maxdisk": disk_total,
        "uptime": _uptime(hv.booted_at) if online else 0, "level": "",
        "ssl_fingerprint": "5A:AB:" + ":".join(f"{b:02X}" for b in hv.name.encode()[:6]),
    }


def vm_json(vm: VM, cluster: bool = False) -> dict[str, Any]:
    running = vm.status == "running"
    out: dict[str, Any] = {
        "vmid": vm.vmid, "name": vm.name, "status": vm.status,
        "cpu": round(vm.cpu, 4) if running else 0, "mem": vm.mem if running else 0,
        "maxmem": vm.memory * 1024 * 1024, "disk": 0, "maxdisk": vm.disk * 1024**3,
        "uptime": _uptime(vm.started_at) if running else 0,
        "netin": vm.netin, "netout": vm.netout, "diskread": 0, "diskwrite": 0,
    }
    if vm.tags:
        out["tags"] = vm.tags
    if vm.lock:
        out["lock"] = vm.lock
    if cluster:
        out.update({"id": f"qemu/{vm.vmid}", "type": "qemu", "node": vm.node,
                    "maxcpu": vm.cores, "template": 1 if vm.template else 0})
    else:
        out.update({"cpus": vm.cores, "qmpstatus": vm.status})
        if running:
            out["pid"] = vm.pid
        if vm.template:
            out["template"] = 1
    return out


def task_json(t: PveTask) -> dict[str, Any]:
    out: dict[str, Any] = {
        "upid": t.upid, "node": t.node, "pid": t.pid, "pstart": t.pstart,
        "starttime": t.starttime, "type": t.type, "id": t.id, "user": t.user,
        "status": t.status,
    }
    if t.status == "stopped":
        out["exitstatus"] = t.exitstatus
    return out


# -- reads ------------------------------------------------------------------------------------


async def version(_: web.Request) -> web.Response:
    return ok(VERSION)


async def permissions(request: web.Request) -> web.Response:
    """access/permissions: the caller's effective privileges by path (1: propagated)."""
    grant = request.get(GRANT)
    privileges = grant.capabilities if grant is not None else PVE_ALL  # a root ticket
    return ok({"/": dict.fromkeys(sorted(privileges), 1)})


async def nodes(request: web.Request) -> web.Response:
    w = _world(request)
    return ok([node_json(hv) for hv in w.hypervisors.values()])


async def node_status(request: web.Request) -> web.Response:
    hv = _hypervisor(_world(request), request.match_info["node"])
    if hv.status != "online":
        raise SimError(595, f"no route to host {hv.address}")
    load = hv.cpu * hv.cores
    root = next((s for s in hv.storages if s.storage == "local"), None)
    return ok({
        "cpu": round(hv.cpu, 4), "wait": 0.001, "uptime": _uptime(hv.booted_at),
        "loadavg": [f"{load:.2f}", f"{load * 0.9:.2f}", f"{load * 0.8:.2f}"],
        "memory": {"total": hv.memory, "used": hv.mem_used, "free": hv.memory - hv.mem_used},
        "swap": {"total": 0, "used": 0, "free": 0},
        "rootfs": {"total": root.total if root else 0, "used": root.used if root else 0,
                   "avail": (root.total - root.used) if root else 0,
                   "free": (root.total - root.used) if root else 0},
        "cpuinfo": {"cpus": hv.cores, "cores": hv.cores, "sockets": 1,
                    "model": "AMD Ryzen 7 5700G with Radeon Graphics", "mhz": "3800.000"},
        "pveversion": f"pve-manager/{VERSION['version']}/{VERSION['repoid']}",
        "kversion": "Linux 6.8.12-1-pve #1 SMP PREEMPT_DYNAMIC PMX 6.8.12-1",
    })


async def cluster_resources(request: web.Request) -> web.Response:
    w = _world(request)
    kind = request.query.get("type")
    if kind not in (None, "vm", "node", "storage", "sdn", "pool"):
        raise _ParamError({"type": f"value '{kind}' does not have a value in the enumeration "
                                   "'vm, storage, node, sdn, pool'"})
    out: list[dict[str, Any]] = []
    # filtered, not refused: each entry needs its audit privilege (a ticket is root's)
    grant = request.get(GRANT)

    def may(privilege: str) -> bool:
        return grant is None or grant.allows(privilege)

    figures = _pvestatd(request.app[STATS])
    if kind in (None, "node") and may("Sys.Audit"):
        out += [figures(node_json(hv)) for hv in w.hypervisors.values()]
    if kind in (None, "vm") and may("VM.Audit"):
        out += [figures(vm_json(vm, cluster=True))
                for vm in sorted(w.vms.values(), key=lambda v: v.vmid)]
        out += [figures(lxc_json(ct, cluster=True))
                for ct in sorted(w.containers.values(), key=lambda c: c.vmid)]
    if kind in (None, "storage") and may("Datastore.Audit"):
        for hv in w.hypervisors.values():
            for s in hv.storages:
                out.append({
                    "id": f"storage/{hv.name}/{s.storage}", "type": "storage",
                    "node": hv.name, "storage": s.storage, "plugintype": s.type,
                    "content": s.content, "disk": _storage_used(w, hv, s), "maxdisk": s.total,
                    "shared": 1 if s.shared else 0,
                    "status": "available" if hv.status == "online" else "unknown",
                })
    return ok(out)


def _pvestatd(stats: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """An entry with the figures of the current pvestatd cycle: taken when first asked in a
    cycle and kept until the next. The status stays live (a kinder lab: on Proxmox it too
    comes from the RRD data, up to a cycle late), and an entry whose status moved takes its
    figures afresh, so a stopped guest never shows a running one's uptime."""
    cycle = int(time.time() // PVESTATD_CYCLE)
    if stats.get("cycle") != cycle:
        stats.clear()
        stats["cycle"] = cycle

    def figures(entry: dict[str, Any]) -> dict[str, Any]:
        key = str(entry.get("id"))
        kept = stats.get(key)
        if kept is None or kept.get("status") != entry.get("status"):
            stats[key] = {"status": entry.get("status"),
                          **{f: entry[f] for f in FIGURES if f in entry}}
            return entry
        entry.update((f, v) for f, v in kept.items() if f != "status")
        return entry

    return figures


async def cluster_status(request: web.Request) -> web.Response:
    w = _world(request)
    members = [{"type": "node", "id": f"node/{hv.name}", "name": hv.name, "ip": hv.address,
                "online": 1 if hv.status == "online" else 0, "local": 1 if i == 0 else 0,
                "nodeid": i + 1, "level": ""}
               for i, hv in enumerate(w.hypervisors.values())]
    return ok([{"type": "cluster", "id": "cluster", "name": "jamlab", "nodes": len(members),
                "quorate": 1, "version": 2}, *members])


async def qemu_list(request: web.Request) -> web.Response:
    w = _world(request)
    node = request.match_info["node"]
    _hypervisor(w, node)
    return ok([vm_json(vm) for vm in sorted(w.vms.values(), key=lambda v: v.vmid)
               if vm.node == node])


async def qemu_config(request: web.Request) -> web.Response:
    vm = _vm(request)
    w = _world(request)
    out: dict[str, Any] = {
        "name": vm.name, "cores": vm.cores, "sockets": 1, "memory": str(vm.memory),
        "cpu": "x86-64-v2-AES", "ostype": "l26", "scsihw": "virtio-scsi-single",
        "scsi0": f"local-lvm:vm-{vm.vmid}-disk-0,iothread=1,size={vm.disk}G",
        "net0": f"virtio=BC:24:11:{vm.vmid % 256:02X}:{vm.vmid // 256 % 256:02X}:01,"
                "bridge=vmbr0",
        "boot": "order=scsi0", "agent": "1",
        "digest": f"{abs(hash((vm.vmid, vm.name, vm.cores, vm.memory))):040x}"[:40],
    }
    if vm.ip:
        out["ipconfig0"] = f"ip={vm.ip}/{w.subnet.prefixlen},gw={w.gateway}"
    if vm.tags:
        out["tags"] = vm.tags
    if vm.description:
        out["description"] = vm.description
    if vm.template:
        out["template"] = 1
    if vm.lock:
        out["lock"] = vm.lock
    return ok(out)


async def qemu_current(request: web.Request) -> web.Response:
    vm = _vm(request)
    out = vm_json(vm)
    out.update({"agent": 1, "ha": {"managed": 0}, "qmpstatus": vm.status})
    return ok(out)


async def agent_net(request: web.Request) -> web.Response:
    vm = _vm(request)
    if vm.status != "running" or not vm.booted:
        raise SimError(500, "QEMU guest agent is not running")
    ifaces = [{"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [
        {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}]}]
    if vm.ip:
        ifaces.append({"name": "eth0", "hardware-address": "bc:24:11:00:00:01",
                       "ip-addresses": [{"ip-address": vm.ip, "ip-address-type": "ipv4",
                                         "prefix": 24}]})
    return ok({"result": ifaces})


async def task_list(request: web.Request) -> web.Response:
    w = _world(request)
    node = request.match_info["node"]
    _hypervisor(w, node)
    limit = int(request.query.get("limit", "50") or 50)
    tasks = sorted((t for t in w.tasks.values() if t.node == node),
                   key=lambda t: t.starttime, reverse=True)[:limit]
    out = []
    for t in tasks:
        item = task_json(t)
        if t.status == "stopped":
            item["status"] = t.exitstatus
            item["endtime"] = t.endtime
        else:
            item.pop("status")
        out.append(item)
    return ok(out)


def _task(request: web.Request) -> PveTask:
    w = _world(request)
    upid = request.match_info["upid"]
    task = w.tasks.get(upid)
    if task is None or task.node != request.match_info["node"]:
        if not upid.startswith("UPID:") or upid.count(":") != 8:
            raise _ParamError({"upid": "unable to parse worker upid"})
        raise SimError(500, f"no such task '{upid}'")
    if not _may_see_task(request, task):
        raise SimError(403, f"Permission check failed (/nodes/{task.node}, Sys.Audit)")
    return task


async def task_status(request: web.Request) -> web.Response:
    return ok(task_json(_task(request)))


async def task_log(request: web.Request) -> web.Response:
    task = _task(request)
    start = int(request.query.get("start", "0") or 0)
    limit = int(request.query.get("limit", "50") or 50)
    lines = task.log or ["starting task"]
    data = [{"n": i + 1, "t": line} for i, line in enumerate(lines)][start:start + limit]
    return web.json_response({"data": data, "total": len(lines)})


# -- writes -----------------------------------------------------------------------------------


async def qemu_power(request: web.Request) -> web.Response:
    vm = _vm(request)
    await _params(request)
    action = request.match_info["action"]
    w = _world(request)
    user = _user(request)
    act = {"start": w.vm_start, "stop": w.vm_stop, "shutdown": w.vm_shutdown,
           "reboot": w.vm_reboot}.get(action)
    if act is None:
        return await not_implemented(request)
    if vm.template:
        raise SimError(500, f"VM {vm.vmid} is a template")
    if vm.lock:
        raise SimError(500, f"VM is locked ({vm.lock})")
    upid = act(vm.node, vm.vmid, user)
    w.notify()
    return ok(upid)


# PVE::JSONSchema's 'dns-name' format, which a VM's `name` must have (create, clone, config)
_DNS_LABEL = "([a-zA-Z0-9]([a-zA-Z0-9\\-]*[a-zA-Z0-9])?)"
_DNS_NAME = re.compile(f"^({_DNS_LABEL}\\.)*{_DNS_LABEL}$")


def _check_name(params: dict[str, str]) -> None:
    if "name" in params and not _DNS_NAME.match(params["name"]):
        raise _ParamError({"name": "invalid format - value does not look like a valid DNS "
                                   "name\n"})


async def qemu_clone(request: web.Request) -> web.Response:
    vm = _vm(request)
    params = await _params(request)
    _check_name(params)
    if "newid" not in params:
        raise _ParamError({"newid": "property is missing and it is not optional"})
    try:
        newid = int(params["newid"])
    except ValueError:
        raise _ParamError({"newid": f"type check ('integer') failed - got "
                                    f"'{params['newid']}'"}) from None
    if not 100 <= newid <= 999_999_999:
        raise _ParamError({"newid": f"invalid format - value {newid} out of range"})
    w = _world(request)
    upid = w.vm_clone(vm.node, vm.vmid, newid, params.get("name"), params.get("target"),
                      _user(request))
    return ok(upid)


async def qemu_set_config(request: web.Request) -> web.Response:
    vm = _vm(request)
    params = await _params(request)
    _check_name(params)
    w = _world(request)
    w.vm_set_config(vm.node, vm.vmid, params)
    w.notify()
    if request.method == "POST":  # the async variant answers with a task
        return ok(w.instant_task(vm.node, "qmconfig", str(vm.vmid), _user(request)))
    return ok(None)


async def qemu_create(request: web.Request) -> web.Response:
    params = await _params(request)
    _check_name(params)
    if "vmid" not in params:
        raise _ParamError({"vmid": "property is missing and it is not optional"})
    ints = {}
    for key, default in (("vmid", None), ("cores", "1"), ("memory", "512")):
        raw = params.get(key, default)
        try:
            ints[key] = int(raw)
        except (TypeError, ValueError):
            raise _ParamError({key: f"type check ('integer') failed - got '{raw}'"}) from None
    w = _world(request)
    return ok(w.vm_create(request.match_info["node"], ints["vmid"],
                          params.get("name", f"VM {ints['vmid']}"), ints["cores"],
                          ints["memory"], _user(request)))


async def qemu_template(request: web.Request) -> web.Response:
    vm = _vm(request)
    await _params(request)
    return ok(_world(request).vm_template(vm.node, vm.vmid, _user(request)))


async def qemu_delete(request: web.Request) -> web.Response:
    vm = _vm(request)
    await _params(request)
    w = _world(request)
    return ok(w.vm_delete(vm.node, vm.vmid, _user(request)))


def _user(request: web.Request) -> str:
    ctx = request.app[CTX]
    grant = request.get(GRANT)
    if grant is not None:
        return grant.name
    return ctx.secrets.proxmox_user


# -- directory indexes, containers, snapshots, migration, storage, pools, tasks ----------------

NODE_DIR = ("apt", "capabilities", "ceph", "certificates", "config", "disks", "dns", "firewall",
            "hosts", "lxc", "netstat", "network", "qemu", "query-url-metadata", "replication",
            "report", "rrd", "rrddata", "scan", "sdn", "services", "spiceshell", "status",
            "storage", "subscription", "syslog", "tasks", "termproxy", "time", "version",
            "vncshell", "vzdump", "wakeonlan")
QEMU_DIR = ("agent", "clone", "cloudinit", "config", "feature", "firewall", "migrate",
            "monitor", "move_disk", "pending", "resize", "rrd", "rrddata", "sendkey",
            "snapshot", "spiceproxy", "status", "template", "termproxy", "unlink",
            "vncproxy", "vncwebsocket")
QEMU_STATUS = ("current", "reboot", "reset", "resume", "shutdown", "start", "stop",
               "suspend")
LXC_DIR = ("clone", "config", "feature", "firewall", "migrate", "pending", "resize", "rrd",
           "rrddata", "snapshot", "spiceproxy", "status", "template", "termproxy",
           "vncproxy", "vncwebsocket")
LXC_STATUS = ("current", "reboot", "resume", "shutdown", "start", "stop", "suspend")
STORAGE_DIR = ("content", "download-url", "file-restore", "prunebackups", "rrd", "rrddata",
               "status", "upload")
SNAPSHOT_DIR = ("config", "rollback")
# PVE::JSONSchema 'pve-configid', the format of a snapshot's name
_CONFIGID = re.compile(r"^[a-z][a-z0-9_-]+$", re.IGNORECASE)


def _index(key: str, entries: tuple[str, ...]) -> Callable[[web.Request], Awaitable[Any]]:
    """A directory index (`GET /nodes/{node}`, `…/qemu/{vmid}/status`): one entry a child."""

    async def handler(request: web.Request) -> web.Response:
        w = _world(request)
        if "node" in request.match_info:
            _hypervisor(w, request.match_info["node"])
        if "vmid" in request.match_info:
            _guest(request, "lxc" if "/lxc/" in request.path else "qemu")
        return ok([{key: e} for e in entries])

    return handler


def _guest(request: web.Request, kind: str) -> VM:
    w = _world(request)
    node = request.match_info["node"]
    _hypervisor(w, node)
    try:
        vmid = int(request.match_info["vmid"])
    except ValueError:
        raise _ParamError({"vmid": "type check ('integer') failed - got "
                                   f"'{request.match_info['vmid']}'"}) from None
    return w.guest(node, vmid, kind)


def lxc_json(ct: VM, cluster: bool = False) -> dict[str, Any]:
    """`/nodes/{node}/lxc` (and `type: lxc` in /cluster/resources) per the API viewer."""
    running = ct.status == "running"
    out: dict[str, Any] = {
        "vmid": ct.vmid, "name": ct.name, "status": ct.status, "type": "lxc",
        "cpu": round(ct.cpu, 4) if running else 0, "mem": ct.mem if running else 0,
        "maxmem": ct.memory * 1024 * 1024, "disk": 700 * 1024 * 1024 if running else 0,
        "maxdisk": ct.disk * 1024**3, "swap": 0, "maxswap": 512 * 1024 * 1024,
        "uptime": _uptime(ct.started_at) if running else 0,
        "netin": ct.netin, "netout": ct.netout, "diskread": 0, "diskwrite": 0,
    }
    if ct.tags:
        out["tags"] = ct.tags
    if ct.lock:
        out["lock"] = ct.lock
    if cluster:
        out.update({"id": f"lxc/{ct.vmid}", "node": ct.node, "maxcpu": ct.cores,
                    "template": 1 if ct.template else 0})
        out.pop("swap")
        out.pop("maxswap")
    else:
        out["cpus"] = ct.cores
        if running:
            out["pid"] = ct.pid
        if ct.template:
            out["template"] = 1
    return out


async def lxc_list(request: web.Request) -> web.Response:
    w = _world(request)
    node = request.match_info["node"]
    _hypervisor(w, node)
    grant = request.get(GRANT)
    if grant is not None and not grant.allows("VM.Audit"):
        return ok([])  # filtered, as /nodes/{node}/qemu is
    return ok([lxc_json(ct) for ct in sorted(w.containers.values(), key=lambda c: c.vmid)
               if ct.node == node])


async def lxc_config(request: web.Request) -> web.Response:
    ct = _guest(request, "lxc")
    out: dict[str, Any] = {
        "hostname": ct.name, "arch": "amd64", "ostype": "debian", "cores": ct.cores,
        "memory": ct.memory, "swap": 512, "unprivileged": 1, "onboot": 1,
        "rootfs": f"local-lvm:vm-{ct.vmid}-disk-0,size={ct.disk}G",
        "net0": f"name=eth0,bridge=vmbr0,hwaddr=BC:24:11:{ct.vmid % 256:02X}:00:02,ip=dhcp,"
                "type=veth",
        "features": "nesting=1",
        "digest": f"{abs(hash((ct.vmid, ct.name, ct.cores, ct.memory))):040x}"[:40],
    }
    if ct.tags:
        out["tags"] = ct.tags
    if ct.parent:
        out["parent"] = ct.parent
    if ct.lock:
        out["lock"] = ct.lock
    return ok(out)


async def lxc_current(request: web.Request) -> web.Response:
    ct = _guest(request, "lxc")
    out = lxc_json(ct)
    out["ha"] = {"managed": 0}
    return ok(out)


async def lxc_power(request: web.Request) -> web.Response:
    ct = _guest(request, "lxc")
    await _params(request)
    action = request.match_info["action"]
    if action not in ("start", "stop", "shutdown", "reboot"):
        return await not_implemented(request)
    if ct.lock:
        raise SimError(500, f"CT is locked ({ct.lock})")
    w = _world(request)
    upid = w.ct_power(ct.node, ct.vmid, action, _user(request))
    w.notify()
    return ok(upid)


def snapshot_json(s: Snapshot, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": s.name, "description": s.description,
                           "snaptime": s.snaptime}
    if s.parent:
        out["parent"] = s.parent
    if kind == "qemu" and s.vmstate:
        out["vmstate"] = 1
    return out


async def snapshot_list(request: web.Request) -> web.Response:
    """qemu-server's snapshot_list: every snapshot plus `current` ("You are here!")."""
    kind = "lxc" if "/lxc/" in request.path else "qemu"
    guest = _guest(request, kind)
    out = [snapshot_json(s, kind) for s in sorted(guest.snapshots.values(),
                                                   key=lambda s: s.snaptime)]
    current: dict[str, Any] = {"name": "current", "description": "You are here!",
                               "running": 1 if guest.status == "running" else 0}
    if guest.parent:
        current["parent"] = guest.parent
    return ok([*out, current])


def _snapshot(request: web.Request) -> tuple[VM, Snapshot]:
    vm = _guest(request, "qemu")
    name = request.match_info["snapname"]
    snap = vm.snapshots.get(name)
    if snap is None:
        raise SimError(500, f"snapshot '{name}' does not exist")
    return vm, snap


async def snapshot_index(request: web.Request) -> web.Response:
    _snapshot(request)
    return ok([{"subdir": e} for e in SNAPSHOT_DIR])


async def snapshot_config(request: web.Request) -> web.Response:
    vm, snap = _snapshot(request)
    out: dict[str, Any] = {"name": vm.name, "cores": vm.cores, "memory": str(vm.memory),
                           "snaptime": snap.snaptime, "description": snap.description}
    if snap.parent:
        out["parent"] = snap.parent
    if snap.vmstate:
        out["vmstate"] = f"local-lvm:vm-{vm.vmid}-state-{snap.name}"
    return ok(out)


async def snapshot_create(request: web.Request) -> web.Response:
    vm = _guest(request, "qemu")
    params = await _params(request)
    name = params.get("snapname")
    if not name:
        raise _ParamError({"snapname": "property is missing and it is not optional"})
    if not _CONFIGID.match(name) or len(name) > 40:
        raise _ParamError({"snapname": f"invalid format - invalid configuration ID '{name}'\n"})
    if params.get("vmstate", "0") not in ("0", "1"):
        raise _ParamError({"vmstate": "type check ('boolean') failed - got "
                                      f"'{params['vmstate']}'"})
    return ok(_world(request).snapshot_create(
        vm.node, vm.vmid, name, params.get("description", ""), params.get("vmstate") == "1",
        user=_user(request)))


async def snapshot_rollback(request: web.Request) -> web.Response:
    vm, snap = _snapshot(request)
    await _params(request)
    return ok(_world(request).snapshot_rollback(vm.node, vm.vmid, snap.name,
                                                user=_user(request)))


async def snapshot_delete(request: web.Request) -> web.Response:
    vm, snap = _snapshot(request)
    await _params(request)
    return ok(_world(request).snapshot_delete(vm.node, vm.vmid, snap.name,
                                              user=_user(request)))


async def migrate_check(request: web.Request) -> web.Response:
    """The GUI's precondition check before migrating (`GET …/migrate`)."""
    vm = _guest(request, "qemu")
    w = _world(request)
    others = [n for n in w.hypervisors if n != vm.node]
    return ok({"running": 1 if vm.status == "running" else 0, "allowed_nodes": others,
               "not_allowed_nodes": {}, "local_disks": [], "local_resources": []})


async def migrate(request: web.Request) -> web.Response:
    vm = _guest(request, "qemu")
    params = await _params(request)
    target = params.get("target")
    if not target:
        raise _ParamError({"target": "property is missing and it is not optional"})
    if target == vm.node:
        raise _ParamError({"target": "target is local node."})
    return ok(_world(request).vm_migrate(vm.node, vm.vmid, target,
                                         params.get("online") == "1", _user(request)))


async def qemu_pending(request: web.Request) -> web.Response:
    """`…/pending`: the config as key/value, nothing pending in the lab."""
    config = (await qemu_config(request)).text
    values = json.loads(config)["data"]
    return ok([{"key": k, "value": v} for k, v in sorted(values.items()) if k != "digest"])


async def network(request: web.Request) -> web.Response:
    w = _world(request)
    hv = _hypervisor(w, request.match_info["node"])
    return ok([
        {"iface": "lo", "type": "loopback", "method": "loopback", "method6": "manual",
         "families": ["inet"], "autostart": 1, "active": 1, "priority": 3},
        {"iface": "eno1", "type": "eth", "method": "manual", "method6": "manual",
         "families": ["inet"], "active": 1, "exists": 1, "priority": 4},
        {"iface": "vmbr0", "type": "bridge", "method": "static", "method6": "manual",
         "families": ["inet"], "autostart": 1, "active": 1, "priority": 5,
         "address": hv.address, "netmask": str(w.subnet.prefixlen),
         "cidr": f"{hv.address}/{w.subnet.prefixlen}", "gateway": w.gateway,
         "bridge_ports": "eno1", "bridge_stp": "off", "bridge_fd": "0"},
    ])


def _storage_allowed(request: web.Request) -> bool:
    grant = request.get(GRANT)
    return grant is None or grant.allows("Datastore.Audit")


async def storage_list(request: web.Request) -> web.Response:
    """`/storage`: the cluster's storage configuration (storage.cfg), filtered."""
    if not _storage_allowed(request):
        return ok([])
    w = _world(request)
    seen: dict[str, dict[str, Any]] = {}
    for hv in w.hypervisors.values():
        for st in hv.storages:
            entry: dict[str, Any] = {"storage": st.storage, "type": st.type,
                                     "content": st.content, "digest": "d1c0e2a7" * 5}
            if st.type == "dir":
                entry["path"] = "/var/lib/vz"
            elif st.type == "lvmthin":
                entry.update({"thinpool": "data", "vgname": "pve"})
            elif st.type == "nfs":
                entry.update({"server": str(w.gateway), "export": "/export/pve",
                              "path": f"/mnt/pve/{st.storage}", "shared": 1})
            seen.setdefault(st.storage, entry)
    return ok(list(seen.values()))


def _storage(request: web.Request) -> tuple[Hypervisor, Any]:
    hv = _hypervisor(_world(request), request.match_info["node"])
    name = request.match_info["storage"]
    st = next((x for x in hv.storages if x.storage == name), None)
    if st is None:
        raise SimError(500, f"storage '{name}' does not exist")
    return hv, st


def storage_status_json(w: World, hv: Hypervisor, st: Any) -> dict[str, Any]:
    used = _storage_used(w, hv, st)
    active = 1 if hv.status == "online" else 0
    return {"storage": st.storage, "type": st.type, "content": st.content,
            "active": active, "enabled": 1, "shared": 1 if st.shared else 0,
            "total": st.total, "used": used, "avail": st.total - used,
            "used_fraction": round(used / st.total, 6) if st.total else 0}


async def node_storage(request: web.Request) -> web.Response:
    w = _world(request)
    hv = _hypervisor(w, request.match_info["node"])
    if not _storage_allowed(request):
        return ok([])
    content = request.query.get("content")
    return ok([storage_status_json(w, hv, st) for st in hv.storages
               if not content or content in st.content.split(",")])


async def storage_status(request: web.Request) -> web.Response:
    hv, st = _storage(request)
    return ok(storage_status_json(_world(request), hv, st))


def _volumes(w: World, hv: Hypervisor, st: Any) -> list[dict[str, Any]]:
    """What a storage holds, as `…/storage/{storage}/content` lists it."""
    base = 1_700_000_000
    out: list[dict[str, Any]] = []
    kinds = st.content.split(",")
    if st.type == "lvmthin":
        guests = [*w.vms.values(), *w.containers.values()]
        for g in sorted(guests, key=lambda g: g.vmid):
            if g.node != hv.name:
                continue
            disk = "base" if g.template else "vm"
            out.append({"volid": f"{st.storage}:{disk}-{g.vmid}-disk-0", "format": "raw",
                        "size": g.disk * 1024**3, "vmid": g.vmid,
                        "content": "rootdir" if g.kind == "lxc" else "images",
                        "ctime": base + g.vmid})
            for snap in g.snapshots.values():
                if snap.vmstate:
                    out.append({"volid": f"{st.storage}:vm-{g.vmid}-state-{snap.name}",
                                "format": "raw", "size": 2 * g.memory * 1024**2,
                                "vmid": g.vmid, "content": "images",
                                "ctime": snap.snaptime})
    if "iso" in kinds:
        out.append({"volid": f"{st.storage}:iso/debian-12.7.0-amd64-netinst.iso",
                    "format": "iso", "size": 661_651_456, "content": "iso",
                    "ctime": base})
    if "vztmpl" in kinds:
        out.append({"volid": f"{st.storage}:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
                    "format": "tzst", "size": 126_423_040, "content": "vztmpl",
                    "ctime": base})
    if "backup" in kinds and st.shared:
        for g in sorted(w.vms.values(), key=lambda g: g.vmid):
            if g.group == "vb":
                name = f"vzdump-qemu-{g.vmid}-2026_11_28-03_00_02.vma.zst"
                out.append({"volid": f"{st.storage}:backup/{name}", "format": "vma.zst",
                            "size": 1_288_490_188, "vmid": g.vmid, "content": "backup",
                            "ctime": base + 86400, "notes": f"{g.name} nightly",
                            "subtype": "qemu"})
    return out


def _storage_used(w: World, hv: Hypervisor, st: Any) -> int:
    if st.type == "lvmthin":
        return sum(v["size"] for v in _volumes(w, hv, st)) // 3  # thin: a third is written
    return st.used


async def storage_content(request: web.Request) -> web.Response:
    hv, st = _storage(request)
    vols = _volumes(_world(request), hv, st)
    want = request.query.get("content")
    if want:
        vols = [v for v in vols if v["content"] == want]
    if "vmid" in request.query:
        vols = [v for v in vols if str(v.get("vmid")) == request.query["vmid"]]
    return ok(vols)


POOL = "homelab"


def _pool_members(request: web.Request) -> list[dict[str, Any]]:
    w = _world(request)
    members = [vm_json(v, cluster=True) for v in sorted(w.vms.values(), key=lambda v: v.vmid)
               if not v.template]
    members += [lxc_json(c, cluster=True) for c in w.containers.values()]
    return members


async def pools(request: web.Request) -> web.Response:
    grant = request.get(GRANT)
    if grant is not None and not grant.allows("Pool.Audit"):
        return ok([])
    return ok([{"poolid": POOL, "comment": "the lab's guests"}])


async def pool(request: web.Request) -> web.Response:
    if request.match_info["poolid"] != POOL:
        raise SimError(500, f"pool '{request.match_info['poolid']}' does not exist")
    return ok({"comment": "the lab's guests", "members": _pool_members(request)})


async def nextid(request: web.Request) -> web.Response:
    """`/cluster/nextid`: the first free VMID, as a string (PVE answers "100", not 100)."""
    w = _world(request)
    if "vmid" in request.query:
        try:
            vmid = int(request.query["vmid"])
        except ValueError:
            raise _ParamError({"vmid": "type check ('integer') failed - got "
                                       f"'{request.query['vmid']}'"}) from None
        if vmid in w.vms or vmid in w.containers:
            raise _ParamError({"vmid": f"VM {vmid} already exists"})
        return ok(str(vmid))
    return ok(str(w.next_vmid()))


def _may_see_task(request: web.Request, t: PveTask) -> bool:
    """A user sees their own tasks; others' need Sys.Audit on /nodes/{node}."""
    grant = request.get(GRANT)
    if grant is None or grant.allows("Sys.Audit"):
        return True
    return t.user in (grant.name, grant.name.split("!")[0])


async def cluster_tasks(request: web.Request) -> web.Response:
    """`/cluster/tasks`: the cluster's recent tasks, newest first; a finished task carries its
    exit status in `status` and its `endtime`; a running one has neither."""
    w = _world(request)
    out = []
    for t in sorted(w.tasks.values(), key=lambda t: t.starttime, reverse=True):
        if not _may_see_task(request, t):
            continue
        item = task_json(t)
        item.pop("status")
        if t.status == "stopped":
            item["status"] = t.exitstatus
            item["endtime"] = t.endtime
        out.append(item)
    return ok(out)
