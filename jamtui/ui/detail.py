"""What the detail view of each kind shows, and where its cross-links lead.

Each function takes the object and the store and returns a Rich renderable and a list of
links (label, kind, id): allocation → node → VM → hypervisor and back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..check_history import CheckHistory
from ..model import (
    VM,
    Allocation,
    Hypervisor,
    Job,
    Kind,
    NomadNode,
    Service,
    ServiceInstance,
    Storage,
)
from ..plain import BLOCK_LIMIT, cells, line
from ..plain import text as safe_text
from ..store import Store
from .check_view import check_link, history_rows
from .columns import age, bar, gib, since, status_text, task_status

Link = tuple[str, Kind, str]
Rendered = tuple[RenderableType, list[Link]]


def _fields(rows: list[tuple[str, Any]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for name, value in rows:
        table.add_row(name, safe_text(value))  # a backend's strings, shown literally
    return table


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def _small_table(headers: list[str], rows: list[list[Any]]) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold dim")
    for h in headers:
        table.add_column(h)
    for row in rows:
        table.add_row(*cells(row))
    return table


def hypervisor_detail(hv: Hypervisor, store: Store) -> Rendered:
    vms = sorted((v for v in store.vms() if v.node == hv.name), key=lambda v: v.vmid)
    storages = sorted((s for s in store.storages() if s.node == hv.name),
                      key=lambda s: s.storage)
    body = Group(
        _fields([("hypervisor", hv.name), ("status", status_text(hv.status)),
                 ("cpu", Text.assemble(bar(hv.cpu, 12), f" of {hv.maxcpu} cores")),
                 ("memory", Text.assemble(bar(hv.mem / hv.maxmem if hv.maxmem else 0, 12),
                                          f" {gib(hv.mem)} / {gib(hv.maxmem)}")),
                 ("uptime", age(hv.uptime))]),
        _section(f"Guests ({len(vms)})"),
        _small_table(["ID", "TYPE", "NAME", "STATUS", "GROUP", "IP"],
                     [[v.vmid, "CT" if v.is_container else "VM", v.name, status_text(v.status),
                       v.group or "-", v.ip or "-"] for v in vms]),
        _section("Storage"),
        _small_table(["STORAGE", "TYPE", "USED", "SIZE"],
                     [[s.storage, s.type, bar(s.used / s.total if s.total else 0, 8),
                       gib(s.total)] for s in storages]),
    )
    return body, [(f"VM {v.vmid} {v.name}", Kind.VM, v.id) for v in vms]


def vm_detail(vm: VM, store: Store) -> Rendered:
    node = next((n for n in store.nomad_nodes() if n.name == vm.name), None)
    allocs = sorted(store.allocs_on(node.id), key=lambda a: a.name) if node else []
    instances = [i for i in store.instances() if i.node == vm.name]
    checks = {c.check_id: c for i in instances for c in i.checks}
    tasks = guest_tasks(vm, store)
    body = Group(
        _fields([("container" if vm.is_container else "VM", f"{vm.vmid} {vm.name}"),
                 ("type", "LXC container" if vm.is_container else "QEMU VM"),
                 ("status", status_text(vm.status)),
                 ("hypervisor", vm.node), ("group", vm.group or "-"), ("ip", vm.ip or "-"),
                 ("cpu", Text.assemble(bar(vm.cpu, 12), f" of {vm.cpus} cores")),
                 ("memory", Text.assemble(bar(vm.mem / vm.maxmem if vm.maxmem else 0, 12),
                                          f" {gib(vm.mem)} / {gib(vm.maxmem)}")),
                 ("uptime", age(vm.uptime)), ("tags", ", ".join(vm.tags) or "-"),
                 ("Nomad node", f"{node.name} ({node.status})" if node else "none")]),
        _section(f"Allocations ({len(allocs)})"),
        _small_table(["ID", "NAME", "STATUS"],
                     [[a.short_id, a.name, status_text(a.client_status)] for a in allocs]),
        _section("Consul checks"),
        _small_table(["CHECK", "STATUS", "OUTPUT"],
                     [[c.name, status_text(c.status), c.output[:60]] for c in checks.values()]),
        _section(f"Proxmox tasks ({len(tasks)})"),
        _small_table(["STARTED", "TYPE", "USER", "STATUS", "DURATION"],
                     [[time.strftime("%m-%d %H:%M:%S", time.localtime(t.starttime)), t.type,
                       t.user, task_status(t), age(t.duration(time.time()))]
                      for t in tasks]),
    )
    links: list[Link] = [(f"hypervisor {vm.node}", Kind.HYPERVISOR, vm.node)]
    if node:
        links.append((f"Nomad node {node.name}", Kind.NOMAD_NODE, node.id))
    links += [(f"allocation {a.short_id} {a.name}", Kind.ALLOCATION, a.id) for a in allocs]
    links += [(f"task {t.type} {time.strftime('%H:%M:%S', time.localtime(t.starttime))} log",
               Kind.PVE_TASK, t.upid) for t in tasks]
    return body, links


def guest_tasks(vm: VM, store: Store, limit: int = 8) -> list[Any]:
    """The newest Proxmox tasks on this guest (`/cluster/tasks` entries with its VMID)."""
    tasks = [t for t in store.items(Kind.PVE_TASK) if t.object_id == str(vm.vmid)]
    return sorted(tasks, key=lambda t: t.starttime, reverse=True)[:limit]


def node_detail(node: NomadNode, store: Store) -> Rendered:
    vm = store.vm_of_node(node)
    allocs = sorted(store.allocs_on(node.id), key=lambda a: a.name)
    body = Group(
        _fields([("Nomad node", node.name), ("id", node.id), ("status", status_text(node.status)),
                 ("eligibility", status_text(node.eligibility)),
                 ("drain", "draining" if node.drain else f"no (last drain: {node.last_drain})"
                  if node.last_drain else "no"), ("address", node.address),
                 ("datacenter", node.datacenter), ("version", node.version),
                 ("VM", f"{vm.vmid} on {vm.node}" if vm else "unknown")]),
        _section(f"Allocations ({len(allocs)})"),
        _small_table(["ID", "NAME", "STATUS", "AGE"],
                     [[a.short_id, a.name, status_text(a.client_status),
                       since(a.create_time, store.clock())]
                      for a in allocs]),
    )
    links: list[Link] = []
    if vm:
        links.append((f"VM {vm.vmid} {vm.name}", Kind.VM, vm.id))
    links += [(f"allocation {a.short_id} {a.name}", Kind.ALLOCATION, a.id) for a in allocs]
    return body, links


def alloc_detail(a: Allocation, store: Store) -> Rendered:
    node, vm, hv = store.chain_of(a)
    instances = store.instances_of_alloc(a.id)
    tasks = _small_table(
        ["TASK", "STATE", "RESTARTS", "STARTED", "LAST EVENT"],
        [[t.name, status_text("failed" if t.failed else t.state), t.restarts,
          since(t.started_at, store.clock()) + " ago" if t.started_at else "-", t.last_event]
         for t in a.tasks])
    body = Group(
        _fields([("allocation", f"{a.id}"), ("name", a.name), ("job", f"{a.job_id} "
                 f"(group {a.task_group}, v{a.job_version})"),
                 ("client status", Text.assemble(status_text(a.client_status),
                                                 f"  {a.client_description}")),
                 ("desired", f"{a.desired_status} {a.desired_description}".strip()),
                 ("age", since(a.create_time, store.clock())),
                 ("runs on", " → ".join(x for x in (
                     f"node {node.name if node else a.node_name}",
                     f"VM {vm.vmid} {vm.name}" if vm else "",
                     f"hypervisor {hv.name}" if hv else "") if x)),
                 ("replaces", a.previous_allocation[:8] or "-"),
                 ("replaced by", a.next_allocation[:8] or "-")]),
        _section("Tasks"), tasks,
        _section("Task events"),
        _small_table(["TIME", "TASK", "EVENT", "MESSAGE"],
                     [[time.strftime("%H:%M:%S", time.localtime(e.time)) if e.time else "-",
                       t.name, e.type, e.message]
                      for t in a.tasks for e in reversed(t.events)]),
        _section("Services"),
        _small_table(["SERVICE", "ADDRESS", "HEALTH"],
                     [[i.service, f"{i.address}:{i.port}", status_text(i.status)]
                      for i in instances]),
    )
    links: list[Link] = []
    if node:
        links.append((f"Nomad node {node.name}", Kind.NOMAD_NODE, node.id))
    if vm:
        links.append((f"VM {vm.vmid} {vm.name}", Kind.VM, vm.id))
    if hv:
        links.append((f"hypervisor {hv.name}", Kind.HYPERVISOR, hv.name))
    links.append((f"job {a.job_id}", Kind.JOB, a.job_id))
    links += [(f"service {i.service}", Kind.SERVICE, i.service) for i in instances]
    for other in (a.previous_allocation, a.next_allocation):
        if other and store.get(Kind.ALLOCATION, other):
            links.append((f"allocation {other[:8]}", Kind.ALLOCATION, other))
    return body, links


def service_detail(s: Service, store: Store, checks: CheckHistory | None = None) -> Rendered:
    instances = sorted(store.instances_of(s.name), key=lambda i: i.id)
    sidecars = [i for i in store.instances() if i.kind == "connect-proxy"
                and i.service == f"{s.name}-sidecar-proxy"]
    intentions = [i for i in store.intentions()
                  if i.destination in (s.name, "*") or i.source == s.name]
    rows = []
    for inst in instances:
        rows.append([inst.node, f"{inst.address}:{inst.port}", status_text(inst.status),
                     inst.alloc_id[:8] or "-"])
        for c in inst.checks:
            rows.append([safe_text(f"  {c.name}", "dim"), "", status_text(c.status),
                         safe_text(c.output[:50], "dim")])
            seen = checks.of(inst.id, c.check_id) if checks is not None else []
            for when, change, output in history_rows(seen, limit=3):
                if len(seen) > 1:  # a change was seen, not only the first state
                    rows.append([Text(f"    {when}", style="dim"), "", change, output])
    body = Group(
        _fields([("service", s.name), ("tags", ", ".join(s.tags) or "-"),
                 ("instances", f"{s.passing} passing, {s.warning} warning, "
                  f"{s.critical} critical"),
                 ("Connect sidecar", f"{len(sidecars)} proxies" if sidecars else "none")]),
        _section("Instances and checks"),
        _small_table(["NODE", "ADDRESS", "HEALTH", "ALLOC / OUTPUT"], rows),
        _section("Intentions"),
        *[Text(r.message, style="yellow") for r in store.refusals(Kind.INTENTION)],
        _small_table(["SOURCE", "→", "DESTINATION", "ACTION", "PRECEDENCE"],
                     [[i.source, "→", i.destination, _action_text(i.action), i.precedence]
                      for i in sorted(intentions, key=lambda i: -i.precedence)]),
    )
    links = [(f"allocation {i.alloc_id[:8]} on {i.node}", Kind.ALLOCATION, i.alloc_id)
             for i in instances if i.alloc_id and store.get(Kind.ALLOCATION, i.alloc_id)]
    links += [(f"check {c.name} on {i.node}: changes, full output", Kind.INSTANCE,
               check_link(i.id, c.check_id)) for i in instances for c in i.checks]
    return body, links


def _action_text(action: str) -> Text:
    return Text("✓ allow", style="green") if action == "allow" else Text(
        f"✗ {action}", style="bold red")


def job_detail(j: Job, store: Store) -> Rendered:
    allocs = sorted((a for a in store.allocations() if a.job_id == j.id),
                    key=lambda a: (a.client_status != "running", a.name))
    body = Group(
        _fields([("job", j.id), ("type", j.type), ("status", status_text(j.status)),
                 ("priority", j.priority), ("datacenters", ", ".join(j.datacenters)),
                 ("stopped", "yes" if j.stop else "no")]),
        _section("Groups"),
        _small_table(["GROUP", "RUNNING", "STARTING", "QUEUED", "FAILED", "LOST", "COMPLETE"],
                     [[g.name, g.running, g.starting, g.queued, g.failed, g.lost, g.complete]
                      for g in j.groups]),
        _section(f"Allocations ({len(allocs)})"),
        _small_table(["ID", "NAME", "STATUS", "NODE", "AGE"],
                     [[a.short_id, a.name, status_text(a.client_status), a.node_name,
                       since(a.create_time, store.clock())] for a in allocs[:50]]),
    )
    return body, [(f"allocation {a.short_id} {a.name}", Kind.ALLOCATION, a.id)
                  for a in allocs[:50]]


def storage_detail(s: Storage, store: Store) -> Rendered:
    body = _fields([("storage", s.storage), ("hypervisor", s.node), ("type", s.type),
                    ("shared", "yes (NFS)" if s.shared else "no"), ("content", s.content),
                    ("used", Text.assemble(bar(s.used / s.total if s.total else 0, 12),
                                           f" {gib(s.used)} / {gib(s.total)}"))])
    return body, [(f"hypervisor {s.node}", Kind.HYPERVISOR, s.node)]


def instance_detail(i: ServiceInstance, store: Store, checks: CheckHistory | None = None
                    ) -> Rendered:
    svc = store.get(Kind.SERVICE, i.service)
    return service_detail(svc, store, checks) if svc else (Text(i.id), [])


RENDER: dict[Kind, Callable[[Any, Store], Rendered]] = {
    Kind.HYPERVISOR: hypervisor_detail,
    Kind.VM: vm_detail,
    Kind.NOMAD_NODE: node_detail,
    Kind.ALLOCATION: alloc_detail,
    Kind.SERVICE: service_detail,
    Kind.JOB: job_detail,
    Kind.STORAGE: storage_detail,
    Kind.INSTANCE: instance_detail,
}


def render(kind: Kind, id_: str, store: Store, checks: CheckHistory | None = None
           ) -> Rendered:
    obj = store.get(kind, id_)
    if obj is None:
        return Text(f"This {kind.value.rstrip('s')} ({line(id_)}) is gone from the lab.",
                    style="yellow"), []
    fn = RENDER.get(kind)
    if fn is None:
        return safe_text(repr(obj), limit=BLOCK_LIMIT), []
    if kind is Kind.SERVICE:  # these two show each check's history too
        body, links = service_detail(obj, store, checks)
    elif kind is Kind.INSTANCE:
        body, links = instance_detail(obj, store, checks)
    else:
        body, links = fn(obj, store)
    stamp = Text(f"\nas of {time.strftime('%H:%M:%S', time.localtime(store.clock()))}",
                 style="dim")
    return Group(body, stamp), links
