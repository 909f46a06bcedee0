"""The actions an operator takes on objects: what they are called, what they need, what
they do. No terminal here: the TUI confirms and shows progress; this runs them (in a worker
thread) and yields progress lines. Each raises ActionError with the backend's words."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .engine import Engine
from .model import VM, Allocation, Job, Kind, Member, NomadNode
from .sources.base import BackendError, describe_error
from .sources.nomad import DRAIN_DEADLINE_S


class ActionError(Exception):
    """An action that failed, in words the operator can act on."""


Progress = Iterator[str]


@dataclass(frozen=True)
class Action:
    name: str  # the keymap's name for it
    label: str  # what the footer and the palette say
    kind: Kind
    destructive: bool
    applies: Callable[[Any], bool]
    run: Callable[[Engine, Any, dict[str, Any]], Progress]
    asks: str = ""  # a parameter the user gives (e.g. "count" for scale)


def describe(obj: Any) -> str:
    """How a confirmation names the object."""
    if isinstance(obj, VM):
        what = "container" if obj.is_container else "VM"
        return f"{what} {obj.vmid} ({obj.name}) on {obj.node}"
    if isinstance(obj, Allocation):
        return f"allocation {obj.short_id} ({obj.name}) on {obj.node_name}"
    if isinstance(obj, Job):
        return f"job {obj.id}"
    if isinstance(obj, NomadNode):
        return f"Nomad node {obj.name}"
    if isinstance(obj, Member):
        return (f"Consul node {obj.name}: maintenance "
                f"{'off' if obj.maintenance else 'on (its services leave the routes)'}")
    return f"{type(obj).__name__} {getattr(obj, 'id', '')}"


def _source(engine: Engine, name: str) -> Any:
    source = engine.sources.get(name)
    if source is None:
        raise ActionError(f"{name} is not configured, so this action is not available.")
    return source


def _guard(engine: Engine, backend: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except BackendError as exc:
        raise ActionError(str(exc)) from exc
    except Exception as exc:  # the backend's failure, put in words
        source = engine.sources.get(backend)
        address = source.address if source else backend
        # each source's own words for its client library's errors (a 403 names the privilege)
        unwrap = getattr(source, "_unwrap", None) or getattr(source, "_words", None)
        raise ActionError(describe_error(backend, address, unwrap(exc) if unwrap else exc,
                                         tls=getattr(source, "tls", None))) from exc


# -- Proxmox ---------------------------------------------------------------------------------


def follow_task(engine: Engine, node: str, upid: str, what: str,
                params: dict[str, Any]) -> Progress:
    """Follow a Proxmox task to its end (`/nodes/{node}/tasks/{upid}/status`), yielding
    progress; raises ActionError with the task's exit status when it failed."""
    pve = _source(engine, "proxmox")
    kind = upid.split(":")[5] if upid.count(":") > 5 else upid
    yield f"Proxmox task {kind} started"
    deadline = time.monotonic() + params.get("timeout", 180)
    while time.monotonic() < deadline:
        status, exitstatus = _guard(engine, "proxmox", lambda: pve.task_status(node, upid))
        if status == "stopped":
            if exitstatus != "OK":
                raise ActionError(f"Proxmox task {kind} failed: {exitstatus}")
            yield f"{what}: OK"
            reread = getattr(pve, "reread", None)
            if reread is not None:  # the new state at once, not at the next poll
                _guard(engine, "proxmox", reread)
            return
        yield f"task {status}…"
        time.sleep(params.get("poll", 0.5))
    raise ActionError(f"the Proxmox task did not finish in time ({upid})")


def _vm_power(action: str) -> Callable[[Engine, Any, dict[str, Any]], Progress]:
    def run(engine: Engine, vm: VM, params: dict[str, Any]) -> Progress:
        pve = _source(engine, "proxmox")
        upid = _guard(engine, "proxmox", lambda: pve.vm_action(vm.node, vm.vmid, action,
                                                                vm.type))
        yield from follow_task(engine, vm.node, upid, f"{action} of {describe(vm)}", params)

    return run


def _snapshot_take(engine: Engine, vm: VM, params: dict[str, Any]) -> Progress:
    """params: name, description, vmstate (with RAM)."""
    pve = _source(engine, "proxmox")
    name = str(params.get("name") or "").strip()
    if not name:
        raise ActionError("a snapshot needs a name (a letter, then letters, digits, - or _)")
    upid = _guard(engine, "proxmox", lambda: pve.snapshot_create(
        vm.node, vm.vmid, name, str(params.get("description") or ""),
        bool(params.get("vmstate"))))
    yield from follow_task(engine, vm.node, upid, f"snapshot {name!r} of {describe(vm)}",
                           params)


def _snapshot_rollback(engine: Engine, vm: VM, params: dict[str, Any]) -> Progress:
    pve = _source(engine, "proxmox")
    name = str(params["snapshot"])
    upid = _guard(engine, "proxmox", lambda: pve.snapshot_rollback(vm.node, vm.vmid, name))
    yield from follow_task(engine, vm.node, upid,
                           f"roll back {describe(vm)} to snapshot {name!r}", params)


def _snapshot_delete(engine: Engine, vm: VM, params: dict[str, Any]) -> Progress:
    pve = _source(engine, "proxmox")
    name = str(params["snapshot"])
    upid = _guard(engine, "proxmox", lambda: pve.snapshot_delete(vm.node, vm.vmid, name))
    yield from follow_task(engine, vm.node, upid,
                           f"delete snapshot {name!r} of {describe(vm)}", params)


def _migrate(engine: Engine, vm: VM, params: dict[str, Any]) -> Progress:
    """params: target (a hypervisor); online when the VM runs (a live migration)."""
    pve = _source(engine, "proxmox")
    target = str(params.get("target") or "")
    if not target or target == vm.node:
        raise ActionError(f"pick a hypervisor other than {vm.node} to migrate to")
    online = vm.status == "running"
    upid = _guard(engine, "proxmox", lambda: pve.migrate(vm.node, vm.vmid, target, online))
    yield from follow_task(engine, vm.node, upid,
                           f"{'live ' if online else ''}migration of {describe(vm)} to "
                           f"{target}", params)


# -- Nomad -----------------------------------------------------------------------------------


def _nomad_call(method: str, *arg_names: str, what: str = "") -> Callable[..., Progress]:
    def run(engine: Engine, obj: Any, params: dict[str, Any]) -> Progress:
        nomad = _source(engine, "nomad")
        args = [params[a] if a in params else getattr(obj, a) for a in arg_names]
        answer = _guard(engine, "nomad", lambda: getattr(nomad, method)(*args)) or {}
        eval_id = answer.get("EvalID") or next(iter(answer.get("EvalIDs") or []), "")
        if eval_id:
            yield f"evaluation {eval_id[:8]} created"
            for status in _follow_eval(engine, nomad, eval_id):
                yield f"evaluation {eval_id[:8]}: {status}"
        yield f"{what or method} {describe(obj)}: done"

    return run


def _follow_eval(engine: Engine, nomad: Any, eval_id: str, timeout: float = 30) -> Progress:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _guard(engine, "nomad", lambda: nomad.evaluation_status(eval_id))
        if status in ("complete", "failed", "canceled", "blocked"):
            if status == "failed":
                raise ActionError(f"Nomad evaluation {eval_id[:8]} failed")
            yield status
            return
        time.sleep(0.3)
    yield "still pending (Nomad will keep working on it)"


def drain_mode(node: NomadNode) -> str:
    """What `n` does to a Nomad node as it is: `stop` a drain; make a node `eligible` again
    (a completed drain leaves it ineligible: DrainStrategy null, SchedulingEligibility
    ineligible, LastDrain.Status complete); else `start` a drain."""
    if node.drain:
        return "stop"
    return "eligible" if node.eligibility == "ineligible" else "start"


def _drain(engine: Engine, node: NomadNode, params: dict[str, Any]) -> Progress:
    mode = params.get("mode") or drain_mode(node)
    if mode == "eligible":
        yield from _nomad_call("eligibility", "id", "eligible", what="made eligible")(
            engine, node, {"eligible": True})
    elif mode == "stop":  # as `nomad node drain -disable`: eligible again
        yield from _nomad_call("drain", "id", "enable", "deadline_s", "mark_eligible",
                               what="drain stopped")(
            engine, node, {"enable": False, "deadline_s": 0, "mark_eligible": True})
    else:
        yield from _nomad_call("drain", "id", "enable", what="drain started")(
            engine, node, {"enable": True})


def _hours(seconds: int) -> str:
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m"


def ask(action: Action, obj: Any) -> tuple[str, dict[str, Any]]:
    """The confirmation's question, saying what the action will do to this object, and the
    parameters that hold it to that (the object may change while the question is open)."""
    if action.name == "node_drain":
        mode = drain_mode(obj)
        if mode == "stop":
            return (f"Stop draining {obj.name}? It becomes eligible for new allocations "
                    "again."), {"mode": mode}
        if mode == "eligible":
            why = {"complete": "its drain is complete",
                   "canceled": "its drain was stopped"}.get(obj.last_drain, "no new allocations")
            return (f"Nomad node {obj.name} is ineligible ({why}). Make it eligible for new "
                    "allocations again?"), {"mode": mode}
        return (f"Drain Nomad node {obj.name} (deadline {_hours(DRAIN_DEADLINE_S)})? Its "
                "allocations move to other nodes; it stays ineligible afterwards."), \
            {"mode": mode}
    return f"{action.label}: {describe(obj)}?", {}


# -- Consul ----------------------------------------------------------------------------------


def _maintenance(engine: Engine, member: Member, params: dict[str, Any]) -> Progress:
    source = _source(engine, "consul")
    enable = not member.maintenance
    _guard(engine, "consul", lambda: source.node_maintenance(
        member.name, member.address, enable, params.get("reason", "set from jamtui")))
    yield f"maintenance mode {'on' if enable else 'off'} for Consul node {member.name}"



ACTIONS: tuple[Action, ...] = (
    Action("vm_start", "Start VM", Kind.VM, False,
           lambda v: v.status != "running" and not v.template, _vm_power("start")),
    Action("vm_shutdown", "Shut down VM", Kind.VM, True,
           lambda v: v.status == "running", _vm_power("shutdown")),
    Action("vm_stop", "Stop VM (hard)", Kind.VM, True,
           lambda v: v.status == "running", _vm_power("stop")),
    Action("vm_reboot", "Reboot VM", Kind.VM, True,
           lambda v: v.status == "running", _vm_power("reboot")),
    Action("vm_snapshot", "Take snapshot", Kind.VM, False,
           lambda v: not v.is_container and not v.template and not v.lock, _snapshot_take,
           asks="snapshot"),
    Action("snapshot_rollback", "Roll back to snapshot", Kind.VM, True,
           lambda v: not v.is_container and not v.lock, _snapshot_rollback, asks="snapshot"),
    Action("snapshot_delete", "Delete snapshot", Kind.VM, True,
           lambda v: not v.is_container and not v.lock, _snapshot_delete, asks="snapshot"),
    Action("vm_migrate", "Migrate VM", Kind.VM, True,
           lambda v: not v.is_container and not v.template and not v.lock, _migrate,
           asks="target"),
    Action("alloc_restart", "Restart allocation", Kind.ALLOCATION, True,
           lambda a: a.client_status == "running", _nomad_call("restart_alloc", "id",
                                                                what="restart")),
    Action("alloc_stop", "Stop allocation", Kind.ALLOCATION, True,
           lambda a: a.desired_status == "run", _nomad_call("stop_alloc", "id", what="stop")),
    Action("job_stop", "Stop job", Kind.JOB, True,
           lambda j: not j.stop, _nomad_call("stop_job", "id", what="stop")),
    Action("job_start", "Start job", Kind.JOB, False,
           lambda j: j.stop or j.status == "dead", _nomad_call("start_job", "id", what="start")),
    Action("job_scale", "Scale group", Kind.JOB, False,
           lambda j: j.type == "service", _nomad_call("scale", "id", "group", "count",
                                                      what="scale"), asks="count"),
    Action("node_drain", "Drain node on/off", Kind.NOMAD_NODE, True, lambda n: True, _drain),
    Action("node_eligibility", "Toggle eligibility", Kind.NOMAD_NODE, False,
           lambda n: True, lambda e, n, p: _nomad_call("eligibility", "id", "eligible",
                                                       what="eligibility")(
               e, n, {"eligible": n.eligibility != "eligible", **p})),
    Action("node_maintenance", "Maintenance on/off", Kind.MEMBER, True,
           lambda m: m.status == "alive", _maintenance),
)


def actions_for(kind: Kind) -> list[Action]:
    return [a for a in ACTIONS if a.kind is kind]


def find(name: str) -> Action | None:
    return next((a for a in ACTIONS if a.name == name), None)
