"""One timeline (`:events`): what happened across the lab, newest first.

Pure derivations from what the store already holds, so no backend is asked for more:

- Nomad: allocation client-status changes (and the task events each allocation carries),
  deployments' status when the store has them, node drain / eligibility / status, job
  registrations and status;
- Consul: each check's status transitions (passing → critical …), from the instances' checks;
- Proxmox: `/cluster/tasks` (who did what to which guest; the task's log on Enter / `l`);
- jamtui: its own workflows' steps, from their journals.

`derive` compares one object before and after a store change; `Timeline` keeps the last copy of
each object (they are frozen), subscribes to the store and holds a bounded list of entries.
Every text here is raw backend text: the view makes it plain where it draws it.
"""

from __future__ import annotations

import heapq
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import Kind
from .store import Change, Store

KEEP = 2000  # entries kept (oldest dropped)
FIRST_FRAME_WAIT = 20.0  # seconds at most a first picture's past waits for the cockpit's frame


@dataclass(frozen=True)
class Entry:
    time: float  # unix seconds
    source: str  # nomad | consul | proxmox | jamtui
    kind: Kind | None  # the object's kind, for the cross-link (None: a workflow)
    object_id: str  # the store id of the object (a workflow's id for jamtui)
    label: str  # how the line names the object
    what: str  # what happened
    upid: str = ""  # a Proxmox task: its log is `node` + `upid`
    node: str = ""
    failed: bool = False  # drawn as a failure (a failed task, a critical check …)

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.time, self.source, self.object_id, self.what)

    def matches(self, needle: str) -> bool:
        needle = needle.lower()
        return any(needle in part.lower() for part in (self.source, self.label, self.what,
                                                        self.object_id))


TASK_WORDS = {
    "qmstart": "start", "qmstop": "stop", "qmshutdown": "shutdown", "qmreboot": "reboot",
    "qmclone": "clone", "qmcreate": "create", "qmdestroy": "destroy", "qmconfig": "config",
    "qmtemplate": "convert to template", "qmsnapshot": "snapshot", "qmrollback": "rollback",
    "qmdelsnapshot": "delete snapshot", "qmigrate": "migrate", "vzstart": "start",
    "vzstop": "stop", "vzshutdown": "shutdown", "vzreboot": "reboot", "vzsnapshot": "snapshot",
    "vzrollback": "rollback", "vzdelsnapshot": "delete snapshot", "vzmigrate": "migrate",
    "vzdump": "backup",
}


def task_entry(t: Any, ended: bool) -> Entry:
    """A Proxmox task's line: started (by whom), or ended with its exit status and time."""
    guest = f"{'CT' if t.type.startswith('vz') and t.type != 'vzdump' else 'VM'} {t.object_id}"
    label = guest if t.object_id else t.node
    verb = TASK_WORDS.get(t.type, t.type)
    if ended:
        took = max(0, (t.endtime or t.starttime) - t.starttime)
        what = f"{verb} {'OK' if t.ok else 'failed: ' + t.status} ({took} s, by {t.user})"
        return Entry(float(t.endtime or t.starttime), "proxmox", Kind.PVE_TASK, t.upid, label,
                     what, t.upid, t.node, failed=not t.ok)
    return Entry(float(t.starttime), "proxmox", Kind.PVE_TASK, t.upid, label,
                 f"{verb} started by {t.user} on {t.node}", t.upid, t.node)


def _alloc(before: Any, after: Any, now: float) -> list[Entry]:
    label = f"alloc {after.id[:8]} {after.name}"
    if before is None:
        return [Entry(after.create_time or now, "nomad", Kind.ALLOCATION, after.id, label,
                      f"placed on {after.node_name}: {after.client_status}")]
    out = []
    if before.client_status != after.client_status:
        why = f" ({after.client_description})" if after.client_description else ""
        out.append(Entry(after.modify_time or now, "nomad", Kind.ALLOCATION, after.id, label,
                         f"{before.client_status} → {after.client_status}{why}",
                         failed=after.client_status in ("failed", "lost")))
    elif before.desired_status != after.desired_status:
        out.append(Entry(after.modify_time or now, "nomad", Kind.ALLOCATION, after.id, label,
                         f"desired {before.desired_status} → {after.desired_status}"))
    return out


def _node(before: Any, after: Any, now: float) -> list[Entry]:
    label = f"node {after.name}"
    if before is None:
        return []
    out = []
    if before.drain != after.drain:
        out.append(Entry(now, "nomad", Kind.NOMAD_NODE, after.id, label,
                         "drain on" if after.drain else "drain off"))
    if before.eligibility != after.eligibility:
        out.append(Entry(now, "nomad", Kind.NOMAD_NODE, after.id, label,
                         f"eligibility {before.eligibility} → {after.eligibility}"))
    if before.status != after.status:
        out.append(Entry(now, "nomad", Kind.NOMAD_NODE, after.id, label,
                         f"{before.status} → {after.status}", failed=after.status == "down"))
    return out


def _job(before: Any, after: Any, now: float) -> list[Entry]:
    label = f"job {after.id}"
    version = getattr(after, "version", None)
    if before is None:
        return [Entry(now, "nomad", Kind.JOB, after.id, label, "registered")]
    out = []
    if version is not None and version != getattr(before, "version", None):
        out.append(Entry(now, "nomad", Kind.JOB, after.id, label, f"registered version {version}"))
    if before.stop != after.stop:
        out.append(Entry(now, "nomad", Kind.JOB, after.id, label,
                         "stopped" if after.stop else "started"))
    if before.status != after.status:
        out.append(Entry(now, "nomad", Kind.JOB, after.id, label,
                         f"{before.status} → {after.status}"))
    return out


def _deployment(before: Any, after: Any, now: float) -> list[Entry]:
    status = getattr(after, "status", "")
    if before is not None and getattr(before, "status", "") == status:
        return []
    kind = Kind.DEPLOYMENT
    job = getattr(after, "job_id", "")
    label = f"deployment {str(after.id)[:8]}" + (f" ({job})" if job else "")
    description = getattr(after, "status_description", "")
    what = status + (f": {description}" if description else "")
    return [Entry(now, "nomad", kind, str(after.id), label, what,
                  failed=status in ("failed", "cancelled"))]


def check_transitions(before: Any, after: Any, now: float) -> list[Entry]:
    """Consul: each check of an instance whose status changed (a new instance's checks are
    its first state, not a transition)."""
    if before is None or after is None:
        return []
    old = {c.check_id: c for c in before.checks}
    out = []
    for check in after.checks:
        prev = old.get(check.check_id)
        if prev is None or prev.status == check.status:
            continue
        output = check.output.strip().splitlines()[0] if check.output.strip() else ""
        out.append(Entry(now, "consul", Kind.INSTANCE, after.id,
                         f"{after.service} on {after.node}",
                         f"check {check.name}: {prev.status} → {check.status}"
                         + (f" ({output})" if output else ""),
                         failed=check.status == "critical"))
    return out


def _tasks(before: Any, after: Any, now: float) -> list[Entry]:
    if before is None:
        return [task_entry(after, ended=not after.running)]
    if before.running and not after.running:
        return [task_entry(after, ended=True)]
    return []


DERIVERS: dict[Kind, Callable[[Any, Any, float], list[Entry]]] = {
    Kind.ALLOCATION: _alloc,
    Kind.NOMAD_NODE: _node,
    Kind.JOB: _job,
    Kind.INSTANCE: check_transitions,
    Kind.PVE_TASK: _tasks,
    Kind.DEPLOYMENT: _deployment,
}


def derive(kind: Kind, before: Any, after: Any, now: float) -> list[Entry]:
    """What happened to one object between two store states (`after` None: removed)."""
    fn = DERIVERS.get(kind)
    if fn is None or after is None:
        return []
    return fn(before, after, now)


def history(kind: Kind, obj: Any) -> list[Entry]:
    """What an object already tells of its past when the timeline starts: a Proxmox task
    (its start or end), an allocation's task events (with their own times)."""
    if kind is Kind.PVE_TASK:
        return [task_entry(obj, ended=not obj.running)]
    if kind is Kind.ALLOCATION:
        return [_task_event(obj, t, e) for t in obj.tasks for e in t.events if e.time]
    return []


def _task_event(alloc: Any, task: Any, e: Any) -> Entry:
    return Entry(e.time, "nomad", Kind.ALLOCATION, alloc.id, f"alloc {alloc.id[:8]} {alloc.name}",
                 f"task {task.name}: {e.type}" + (f" ({e.message})" if e.message else ""),
                 failed=e.type in ("Driver Failure", "Killed", "Not Restarting"))


def first_history(objs: Iterable[tuple[Kind, Any]], keep: int) -> list[Entry]:
    """The past a first picture tells (`history` of each object), its newest `keep` entries,
    oldest first: the timeline keeps that many, and a first picture's order is the store's,
    not time's (kept in arrival order, the newest events could be the ones dropped). At 5,000
    allocations that is 20,000 task events: only the kept ones become entries, on the source
    thread that wrote the picture, before the cockpit hears of it."""
    out: list[Entry] = []
    events: list[tuple[float, int, Any, Any, Any]] = []
    for kind, obj in objs:
        if kind is Kind.ALLOCATION:
            events += [(e.time, len(events) + n, obj, t, e)
                       for n, (t, e) in enumerate((t, e) for t in obj.tasks for e in t.events)
                       if e.time]
        else:
            out += history(kind, obj)
    out += [_task_event(a, t, e) for _, _, a, t, e in heapq.nlargest(keep, events)]
    return sorted(out, key=lambda e: e.time)[-keep:] if keep else out


def workflow_entries(state_dir: str | Path) -> list[Entry]:
    """jamtui's own workflows: each step's start and end from the journals (cheap files)."""
    from .workflows.journal import Journal, JournalError, workflows_dir

    root = workflows_dir(state_dir)
    out: list[Entry] = []
    for directory in sorted(root.iterdir() if root.is_dir() else []):
        try:
            entries = Journal(directory).entries()
        except (JournalError, OSError):
            continue
        head = entries[0]
        name = str((head.get("params") or {}).get("name", ""))
        label = f"{head.get('kind', 'workflow')} {name}".strip()
        for e in entries[1:]:
            if e.get("type") == "step":
                message = str(e.get("message") or "")
                state = str(e.get("state", ""))
                out.append(Entry(float(e.get("at") or 0), "jamtui", None, directory.name, label,
                                 f"step {e.get('step', '')}: {state}"
                                 + (f" ({message})" if message else ""),
                                 failed=state == "failed"))
            elif e.get("type") == "end":
                state = str(e.get("state", ""))
                out.append(Entry(float(e.get("at") or 0), "jamtui", None, directory.name, label,
                                 f"workflow {state}", failed=state == "failed"))
    return out


class Timeline:
    """The store's changes as entries, newest first; listeners hear of each new batch."""

    def __init__(self, store: Store, keep: int = KEEP) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._keep = keep
        self._entries: deque[Entry] = deque(maxlen=keep)
        self._seen: set[tuple[Any, ...]] = set()
        self._last: dict[Kind, dict[str, Any]] = {k: {} for k in DERIVERS}
        self._loaded: set[Kind] = set()  # kinds whose first picture has arrived
        self._listeners: list[Callable[[list[Entry]], None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self.version = 0
        # the cockpit's first frame (`Engine.first_frame`): a first picture's past (20,000
        # task events at 5,000 allocations) is told once it is drawn, not while it is drawn
        # (the same GIL); None: at once
        self.first_frame: threading.Event | None = None
        self._deferred: list[tuple[Kind, Any]] = []  # first-picture objects, their past untold
        self._waiting = False  # a thread waits for the first frame to tell it

    def start(self) -> None:
        """Take what the store holds now (with its history) and follow its changes."""
        seed: list[tuple[Kind, Any]] = []
        with self._lock:
            for kind in self._last:
                for obj in self.store.items(kind):
                    self._last[kind][str(obj.id)] = obj
                    seed.append((kind, obj))
                    self._loaded.add(kind)
        self._add(first_history(seed, self._keep))
        self._unsubscribe = self.store.subscribe(self._changed)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def listen(self, fn: Callable[[list[Entry]], None]) -> Callable[[], None]:
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def _changed(self, changes: list[Change]) -> None:
        now = self.store.clock()
        new: list[Entry] = []
        first: list[tuple[Kind, Any]] = []  # objects of a first picture: their own past
        with self._lock:
            arrived = set()
            for change in changes:
                last = self._last.get(change.kind)
                if last is None:
                    continue
                after = self.store.get(change.kind, change.id)
                before = last.get(change.id)
                if before is None and after is not None and change.kind not in self._loaded:
                    first.append((change.kind, after))
                    arrived.add(change.kind)
                else:
                    new += derive(change.kind, before, after, now)
                if after is None:
                    last.pop(change.id, None)
                else:
                    last[change.id] = after
            self._loaded |= arrived
            later = bool(first) and self.first_frame is not None and \
                not self.first_frame.is_set()
            if later:
                self._deferred += first
                start, self._waiting = not self._waiting, True
        if later:
            if start:
                threading.Thread(target=self._tell_deferred, name="timeline:first",
                                 daemon=True).start()
            self._add(new)
            return
        self._add(first_history(first, self._keep) + new if first else new)

    def _tell_deferred(self) -> None:
        """Once the first frame is drawn: the first pictures' past, merged by time with what
        was told meanwhile (the newest `keep` of both kept, not the last to arrive)."""
        assert self.first_frame is not None
        self.first_frame.wait(FIRST_FRAME_WAIT)
        with self._lock:
            first, self._deferred, self._waiting = self._deferred, [], False
        if not first:
            return
        told = first_history(first, self._keep)
        with self._lock:
            fresh = [e for e in told if e.key not in self._seen]
            if not fresh:
                return
            merged = sorted([*self._entries, *fresh], key=lambda e: e.time)
            kept = merged[-self._keep:] if self._keep else merged
            self._entries = deque(kept, maxlen=self._entries.maxlen)
            self._seen = {e.key for e in kept}
            kept_ids = {id(e) for e in kept}
            fresh = [e for e in fresh if id(e) in kept_ids]
            self.version += 1
        for fn in list(self._listeners):
            fn(fresh)

    def add(self, entries: Iterable[Entry]) -> None:
        """Entries from elsewhere (workflow steps); duplicates are dropped."""
        self._add(list(entries))

    def _add(self, entries: list[Entry]) -> None:
        if not entries:
            return
        with self._lock:
            fresh = [e for e in entries if e.key not in self._seen]
            for e in fresh:
                if len(self._entries) == self._entries.maxlen:
                    self._seen.discard(self._entries[0].key)
                self._entries.append(e)
                self._seen.add(e.key)
            if fresh:
                self.version += 1
        if fresh:
            for fn in list(self._listeners):
                fn(fresh)

    def entries(self, needle: str = "") -> list[Entry]:
        """Newest first; `needle` keeps those whose source, object or text contain it."""
        with self._lock:
            items = list(self._entries)
        if needle:
            items = [e for e in items if e.matches(needle)]
        return sorted(items, key=lambda e: e.time, reverse=True)
