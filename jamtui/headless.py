"""`jamtui status` and `jamtui snapshot`: the store, printed for people and for scripts."""

from __future__ import annotations

import dataclasses
import json
import operator
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from .model import BackendStatus, Health, Kind, Quorum, ServiceInstance
from .store import OWNER, Store

if TYPE_CHECKING:  # Rich is imported by what prints with it: `snapshot --json` does not
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

SCHEMA_VERSION = 1

# The snapshot's top-level keys, in order; services carry their instances.
SNAPSHOT_KINDS = (
    Kind.HYPERVISOR, Kind.VM, Kind.STORAGE, Kind.NOMAD_NODE, Kind.JOB, Kind.ALLOCATION,
    Kind.SERVICE, Kind.MEMBER, Kind.INTENTION, Kind.QUORUM, Kind.ROUTE, Kind.HAPROXY,
    Kind.PVE_TASK,
)


_FIELDS: dict[type, tuple[str, ...] | None] = {}  # a record type's fields; None: no record
_ATOMS = (str, int, float, bool, type(None))
_ATOM_TYPES = frozenset(_ATOMS)


def _data(value: Any) -> Any:
    """`dataclasses.asdict` without its deep copies (a 5,000-allocation snapshot spent seconds
    copying strings that are immutable anyway): records become dicts, lists and tuples keep
    their type, everything else is returned as it is."""
    cls = type(value)
    if cls in _ATOM_TYPES:
        return value
    try:
        names = _FIELDS[cls]
    except KeyError:  # first of its type (a type's answer is kept: 35,000 asked at 5k)
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(value)) if (
            dataclasses.is_dataclass(value) and not isinstance(value, type)) else None
    if names is not None:
        own = getattr(value, "__dict__", None)
        if own is not None and len(own) == len(names):
            # its fields, as its __init__ set them (in their order): copied at C speed,
            # then only what is not plain data converted
            out = own.copy()
            for name, item in own.items():
                if type(item) not in _ATOM_TYPES:
                    out[name] = _data(item)
            return out
        out = {}
        for name in names:
            item = getattr(value, name)
            out[name] = item if type(item) in _ATOM_TYPES else _data(item)
        return out
    if cls is tuple or cls is list:
        return cls([v if type(v) in _ATOM_TYPES else _data(v) for v in value])
    if isinstance(value, _ATOMS):  # str subclasses (Health): as they are
        return value
    if isinstance(value, list | tuple):
        return cls(_data(v) for v in value)
    if isinstance(value, dict):
        return {k: _data(v) for k, v in value.items()}
    return value


def _record(obj: Any) -> dict[str, Any]:
    data = _data(obj)
    if "id" not in data:
        data = {"id": obj.id, **data}
    if isinstance(obj, ServiceInstance):
        data["status"] = obj.status
    if isinstance(obj, Quorum):
        data["has_leader"] = obj.has_leader
        data["failure_tolerance"] = obj.failure_tolerance
    for key, value in data.items():
        if type(value) is Health:
            data[key] = value.value
    return data


def _sort_key(obj: Any) -> Any:
    return (getattr(obj, "name", ""), str(obj.id))


def snapshot(store: Store) -> dict[str, Any]:
    """One JSON-ready document of the whole lab (schema in README.md; keep it stable)."""
    doc: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backends": [_backend_record(b) for b in store.backends()],
    }
    instances = _grouped(store.instances())
    for kind in SNAPSHOT_KINDS:
        items = _ordered(kind, store.items(kind))
        if kind is Kind.ROUTE:
            doc[kind.value] = [_route_record(o) for o in items]
        elif kind is Kind.SERVICE:
            doc[kind.value] = [_service_record(o, instances) for o in items]
        else:
            doc[kind.value] = [_record(o) for o in items]
    return doc


def _backend_record(b: BackendStatus) -> dict[str, Any]:
    return {**_record(b), "stale": b.stale}


def _grouped(instances: list[ServiceInstance]) -> dict[str, list[ServiceInstance]]:
    by_service: dict[str, list[ServiceInstance]] = {}  # one pass, not one per service
    for inst in instances:
        by_service.setdefault(inst.service, []).append(inst)
    for insts in by_service.values():
        insts.sort(key=_instance_id)
    return by_service


def _instance_id(inst: ServiceInstance) -> str:
    return inst.id


def _ordered(kind: Kind, items: list[Any]) -> list[Any]:
    """A kind's records in the snapshot's order."""
    if kind is Kind.PVE_TASK:  # newest first, as /cluster/tasks lists them
        return sorted(items, key=lambda t: (-t.starttime, t.upid))
    items = sorted(items, key=_sort_key)
    if kind is Kind.ROUTE:  # one record per instance that has it, as it always was
        items = sorted((r for o in items for r in o.per_instance()), key=_sort_key)
    return items


def _route_record(route: Any) -> dict[str, Any]:
    return {k: v for k, v in _record(route).items() if k not in ("fabios", "read", "unread")}


def _service_record(service: Any, instances: dict[str, list[ServiceInstance]]) -> dict[str, Any]:
    rec = _record(service)
    rec["instances"] = [_record(i) for i in instances.get(rec["name"], ())]
    return rec


def write_json(doc: dict[str, Any], out: Any) -> None:
    """The snapshot as JSON, one record per line under each indented key. `json.dump` with
    `indent` runs Python's own encoder (3 s for a 5,000-allocation lab, over three times the
    C encoder's time); each record here is encoded by the C encoder, and the whole stays one
    JSON document (`jq`, `json.load`). Written piece by piece: a reader that leaves early
    stops it at once."""
    keys = list(doc)
    out.write("{\n")
    for n, key in enumerate(keys):
        value = doc[key]
        comma = "," if n < len(keys) - 1 else ""
        if isinstance(value, list) and value:
            out.write(f"  {json.dumps(key)}: [\n")
            last = len(value) - 1
            for i, record in enumerate(value):
                out.write(f"    {json.dumps(record)}{',' if i < last else ''}\n")
            out.write(f"  ]{comma}\n")
        else:
            out.write(f"  {json.dumps(key)}: {json.dumps(value)}{comma}\n")
    out.write("}\n")


# -- snapshot --json, encoded from the records ---------------------------------------------
# The document `write_json(snapshot(store))` writes, without the dicts: msgspec encodes each
# record (a frozen dataclass: its fields in order) straight to bytes, the few derived keys
# are spliced in, and `msgspec.json.format` spaces it as `json.dumps` does (", ", ": "). At
# 5,000 allocations the dicts and the stdlib encoder took 0.4-0.6 s. A line that is not pure
# printable ASCII (msgspec writes UTF-8 and DEL as they are; `json.dumps` escapes them as
# \uXXXX, so no bidi override or other non-ASCII control reaches a terminal that shows the
# document) or that msgspec cannot encode is written by `json.dumps` from the record's dict,
# as before. The one difference: a float below 1e-4 or from 1e16 up is spelt as msgspec
# spells it (`0.000031`, `2.5e-7`, `1e16`; `repr` gives `3.1e-05`, `2.5e-07`, `1e+16`): the
# same number to any JSON reader (finding such floats in the bytes cost 55 ms at 5k).

_ROUTE_TAIL = b',"fabios":[],"read":[],"unread":[]}'


class _Encoder:
    def __init__(self) -> None:
        import msgspec

        self.encode = msgspec.json.Encoder().encode
        self.format = msgspec.json.format
        self.spaced = cast(Callable[[bytes], bytes], partial(msgspec.json.format, indent=0))
        self.failed = (msgspec.EncodeError, TypeError, ValueError, OverflowError)
        self._has_id: dict[type, bool] = {}
        self._status: dict[str, bytes] = {}  # an instance's status, as its record's end

    def raw(self, obj: Any) -> bytes:
        """A record as `_record` makes it, compact: the id first, the derived keys last."""
        body = self.encode(obj)
        cls = type(obj)
        has_id = self._has_id.get(cls)
        if has_id is None:
            has_id = self._has_id[cls] = "id" in {f.name for f in dataclasses.fields(obj)}
        if not has_id:
            body = b'{"id":' + self.encode(obj.id) + b"," + body[1:]
        if cls is ServiceInstance:
            body = body[:-1] + self._status_end(obj.status)
        elif cls is Quorum:
            body = (body[:-1] + b',"has_leader":' + self.encode(obj.has_leader)
                    + b',"failure_tolerance":' + self.encode(obj.failure_tolerance) + b"}")
        return body

    def line(self, raw: Any, fallback: Any) -> bytes:
        """One record's text as `json.dumps` writes it; `raw()` gives its compact bytes,
        `fallback()` its dict (when those bytes will not do)."""
        try:
            body = self.format(raw(), indent=0)
        except self.failed:
            body = b""
        if not _as_json_dumps(body):
            body = json.dumps(fallback()).encode("ascii")
        return body

    def lines(self, items: list[Any], raw: Callable[[Any], bytes],
              fallback: Callable[[Any], Any]) -> list[bytes]:
        """`line(partial(raw, item), partial(fallback, item))` of each item, encoded and
        spaced by `map` (no Python frame of ours per record: 5,000 allocations); if any
        will not encode, each is encoded on its own by `line`."""
        try:
            out = list(map(self.spaced, map(raw, items)))
        except self.failed:
            return [self.line(partial(raw, o), partial(fallback, o)) for o in items]
        for n, body in enumerate(out):
            if not _as_json_dumps(body):
                out[n] = json.dumps(fallback(items[n])).encode("ascii")
        return out

    def plain(self, items: list[Any]) -> Callable[[Any], bytes]:
        """What encodes each of `items` as `raw` does: the encoder itself when each is a
        record with its own id and nothing derived."""
        kinds = set(map(type, items))
        if len(kinds) == 1:
            (cls,) = kinds
            if cls is not ServiceInstance and cls is not Quorum and dataclasses.is_dataclass(
                    cls) and "id" in {f.name for f in dataclasses.fields(cls)}:
                return self.encode
        return self.raw

    def instance(self, inst: ServiceInstance) -> bytes:
        """`raw(inst)` of a service instance."""
        return self.encode(inst)[:-1] + self._status_end(inst.status)

    def _status_end(self, status: str) -> bytes:
        """The end of an instance's record: its derived status (a few words, made once)."""
        end = self._status.get(status)
        if end is None:
            end = self._status[status] = b',"status":' + self.encode(status) + b"}"
        return end

    def route_lines(self, routes: list[Any]) -> list[bytes]:
        """The lines of `routes[]` (`_ordered`: one record per instance carrying a route,
        ordered by id) without making a record for each (4,800 at 5k)."""
        rows: list[tuple[str, str, Any]] = []
        for r in sorted(routes, key=_sort_key):
            if r.fabio:  # its own record (by `line`, below)
                rows.append((r.id, "", r))
            else:
                rows.extend((f"{f}|{r.host}{r.path}|{r.dst}", f, r) for f in r.fabios)
        rows.sort(key=operator.itemgetter(0))  # stable, as `_ordered`'s second sort
        if any(not f for _, f, _ in rows):
            return [self.line(partial(self.route, o), partial(_route_record, o))
                    for o in (r if not f else _one_route(r, f) for _, f, r in rows)]
        encode = self.encode

        def raw(row: tuple[str, str, Any]) -> bytes:
            i, f, r = row
            return encode({"id": i, "fabio": f, "service": r.service, "host": r.host,
                           "path": r.path, "dst": r.dst, "weight": r.weight, "opts": r.opts})

        return self.lines(rows, raw, lambda row: _route_record(_one_route(row[2], row[1])))

    def route(self, route: Any) -> bytes:
        body = self.raw(route)
        if not body.endswith(_ROUTE_TAIL):  # per_instance() records carry none of them
            raise ValueError("a route with carriers")
        return body[:-len(_ROUTE_TAIL)] + b"}"

    def service(self, service: Any, instances: list[ServiceInstance]) -> bytes:
        return (self.raw(service)[:-1] + b',"instances":['
                + b",".join(list(map(self.instance, instances))) + b"]}")


class SnapshotWriter:
    """`snapshot --json` from a store still being filled: each source's kinds are encoded
    once it has answered (`follow`), while the slower backends are still read (the Nomad
    allocations, 6 MB of the document at 5k, are usually in first); `write` encodes what was
    not, or what changed since (the same records, by identity, or it is encoded again), and
    writes the document, kind by kind: a reader that leaves early stops it. A kind is kept
    as its whole section of the document (joined when encoded, not when written: joining
    10 MB into fresh memory was 10 ms of the time after the last answer at 5k)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._enc = _Encoder()
        self._done: dict[Kind, tuple[tuple[list[Any], ...], bytes]] = {}
        # a service's line, with the records it was encoded from (the service, then its
        # instances by id): encoded as each service answers (`follow`), kept while they are
        # the same records (by identity). Consul's services (3.9 MB of the document at 5k,
        # ~35 ms to encode) were encoded after its last answer, the usual last.
        self._service_lines: dict[str, tuple[list[Any], bytes]] = {}
        self._instances: dict[str, dict[str, ServiceInstance]] = {}  # as the changes said
        # sections encoded elsewhere (`apart`: a backend read in a process of its own)
        self.given: dict[Kind, bytes] = {}

    def _inputs(self, kind: Kind) -> tuple[list[Any], ...]:
        if kind is Kind.SERVICE:  # a service's record carries its instances
            return self.store.items(kind), self.store.items(Kind.INSTANCE)
        return (self.store.items(kind),)

    def prepare(self, kind: Kind) -> None:
        """Encode `kind` as the store holds it now."""
        inputs = self._inputs(kind)
        self._done[kind] = inputs, self._section(kind, inputs)

    def section(self, kind: Kind) -> bytes:
        """`kind`'s part of the document, as the store holds it now (or as `given`)."""
        given = self.given.get(kind)
        if given is not None:
            return given
        inputs = self._inputs(kind)
        done = self._done.get(kind)
        if done is not None and all(map(_same, done[0], inputs)):
            return done[1]
        return self._section(kind, inputs)

    def _section(self, kind: Kind, inputs: tuple[list[Any], ...]) -> bytes:
        return _section(kind.value, self._lines(kind, inputs), last=kind is SNAPSHOT_KINDS[-1])

    def _lines(self, kind: Kind, inputs: tuple[list[Any], ...]) -> list[bytes]:
        enc = self._enc
        if kind is Kind.ROUTE:
            return enc.route_lines(inputs[0])
        items = _ordered(kind, inputs[0])
        if kind is Kind.SERVICE:
            instances = _grouped(inputs[1])
            return [self._service_line(o, instances) for o in items]
        return enc.lines(items, enc.plain(items), _record)

    def _service_line(self, service: Any, instances: dict[str, list[ServiceInstance]]
                      ) -> bytes:
        """A service's line, encoded again only if it or its instances are not the records
        it was encoded from."""
        records = [service, *instances.get(service.name, ())]
        kept = self._service_lines.get(service.name)
        if kept is not None and _same(kept[0], records):
            return kept[1]
        enc = self._enc
        line = enc.line(partial(enc.service, service, records[1:]),
                        partial(_service_record, service, instances))
        self._service_lines[service.name] = records, line
        return line

    def _services_answered(self, changes: list[Any]) -> None:
        """Encode the lines of the services these store changes wrote (with their
        instances: Consul's first picture writes a service and its instances together)."""
        store, known = self.store, self._instances
        named: list[str] = []
        for change in changes:
            if change.kind is Kind.INSTANCE:
                inst = store.get(Kind.INSTANCE, change.id)
                if inst is None:
                    for insts in known.values():
                        insts.pop(change.id, None)
                else:
                    known.setdefault(inst.service, {})[change.id] = inst
            elif change.kind is Kind.SERVICE:
                named.append(change.id)
        for name in named:
            service = store.get(Kind.SERVICE, name)
            if service is not None:
                self._service_line(service, {name: sorted(known.get(name, {}).values(),
                                                          key=_instance_id)})

    def follow(self, sources: Mapping[str, Any]) -> Callable[[], None]:
        """Encode each source's kinds (`OWNER`) once its `ready` is set, and each Consul
        service as it answers (`_services_answered`), in a thread of its own; the function
        returned ends that (after the kind under way)."""
        stop = threading.Event()
        written: queue.SimpleQueue[list[Any]] = queue.SimpleQueue()  # the store's changes
        unsubscribe = self.store.subscribe(written.put)

        def run() -> None:
            pending = dict(sources)
            while pending and not stop.is_set():
                for name, source in list(pending.items()):
                    if source.ready.is_set():
                        del pending[name]
                        for kind in SNAPSHOT_KINDS:
                            if OWNER.get(kind) == name and not stop.is_set():
                                self.prepare(kind)
                while "consul" in pending and not stop.is_set():
                    try:
                        self._services_answered(written.get_nowait())
                    except queue.Empty:
                        break
                stop.wait(0.01)

        thread = threading.Thread(target=run, name="snapshot:encode", daemon=True)
        thread.start()

        def end() -> None:
            stop.set()
            unsubscribe()
            thread.join()

        return end

    def write(self, out: Any) -> None:
        """The document to `out`, a binary stream."""
        enc = self._enc
        head = {"schema": SCHEMA_VERSION,
                "taken_at": datetime.now(UTC).isoformat(timespec="seconds")}
        parts = [f"  {json.dumps(k)}: {json.dumps(v)}".encode() for k, v in head.items()]
        out.write(b"{\n" + b",\n".join(parts) + b",\n")
        lines = [enc.line(partial(_encode_backend, enc, b), partial(_backend_record, b))
                 for b in self.store.backends()]
        out.write(_section("backends", lines, last=False))
        for kind in SNAPSHOT_KINDS:
            out.write(self.section(kind))
        out.write(b"}\n")


def _same(old: list[Any], new: list[Any]) -> bool:
    return len(old) == len(new) and all(map(operator.is_, old, new))


def _as_json_dumps(body: bytes) -> bool:
    """msgspec's bytes are what `json.dumps` writes: some, ASCII (msgspec leaves non-ASCII
    as UTF-8, json.dumps writes \\uXXXX) and no DEL (msgspec leaves it raw)."""
    return bool(body) and body.isascii() and b"\x7f" not in body


def _one_route(route: Any, fabio: str) -> Any:
    """One instance's record of a route (`Route.per_instance`)."""
    if not fabio:
        return route
    return type(route)(fabio, route.service, route.host, route.path, route.dst, route.weight,
                       route.opts)


def _encode_backend(enc: _Encoder, b: BackendStatus) -> bytes:
    return enc.raw(b)[:-1] + b',"stale":' + enc.encode(b.stale) + b"}"


def _section(key: str, lines: list[bytes], last: bool) -> bytes:
    comma = b"" if last else b","
    name = json.dumps(key).encode()
    if not lines:
        return b"  " + name + b": []" + comma + b"\n"
    return (b"  " + name + b": [\n    " + b",\n    ".join(lines) + b"\n  ]" + comma + b"\n")


# -- status --------------------------------------------------------------------------------

HEALTH_STYLE = {Health.OK: "green", Health.DEGRADED: "yellow", Health.DOWN: "red",
                Health.UNKNOWN: "dim"}
HEALTH_MARK = {Health.OK: "✓", Health.DEGRADED: "!", Health.DOWN: "✗", Health.UNKNOWN: "?"}


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def quorum_line(q: Quorum, stale: bool = False) -> Text:
    from rich.text import Text

    from .plain import line

    alive, total = len(q.alive), len(q.servers)
    if stale:
        return Text(f"{q.system}: {alive}/{total} servers when last seen (STALE: "
                    f"{q.system} is down)", style="dim")
    if not q.has_leader:
        return Text(f"{q.system}: NO LEADER ({alive}/{total} servers)", style="bold red")
    left = q.failure_tolerance
    if left is None:
        return Text(f"{q.system}: leader {line(q.leader)} ({total} servers, health not "
                    f"checked: {line(q.note)})", style="yellow")
    text = f"{q.system}: leader {line(q.leader)} ({alive}/{total} servers"
    if q.note:  # checked, but not as fully as autopilot would: say how
        text += f", {line(q.note)}"
    if left <= 0:
        return Text(text + ", one more loss loses quorum)", style="bold yellow")
    return Text(text + f", survives {left} more loss{'es' if left > 1 else ''})", style="green")


def exit_code(store: Store, configured: set[str]) -> int:
    """0 when every configured backend is ok, 1 when any is degraded or down. Features the
    token may not read (`refused`) are listed, not failed: a least-privilege token is a
    choice, as `doctor` too calls them warnings."""
    bad = [b for b in store.backends() if b.name in configured and b.health is not Health.OK
           and not _only_refused(b)]
    return 1 if bad else 0


def _only_refused(b: BackendStatus) -> bool:
    return (b.health is Health.DEGRADED and bool(b.refused)
            and b.last_error == "; ".join(r.message for r in b.refused))


def snapshot_exit_code(store: Store, configured: set[str]) -> int:
    """0 when every configured backend's data is in and current; 1 when one is down (its
    part of the document is stale, or missing because it never answered)."""
    bad = [b for b in store.backends() if b.name in configured and b.health is Health.DOWN]
    return 1 if bad else 0


def render_status(store: Store, console: Console, configured: set[str]) -> None:
    from rich.text import Text

    console.print(_backends_table(store, configured))
    quorums = sorted(store.items(Kind.QUORUM), key=lambda q: q.system)
    if quorums:
        console.print(Text("Quorum  ", style="bold") + Text("   ").join(
            quorum_line(q, store.backend(q.system).stale) for q in quorums))
    console.print(_hypervisors_table(store))
    vms = store.items(Kind.VM)
    states = Counter(v.status for v in vms if not v.template)
    console.print(Text.assemble(("VMs  ", "bold"), _counts(states, {"running": "green",
                                                                    "stopped": "red"},
                                                           _empty(store, Kind.VM))))
    nodes = store.items(Kind.NOMAD_NODE)
    console.print(Text.assemble(("Nomad nodes  ", "bold"), _counts(
        Counter(n.status + (" (draining)" if n.drain else "") for n in nodes),
        {"ready": "green", "down": "red"}, _empty(store, Kind.NOMAD_NODE))))
    console.print(_services_line(store))
    allocs = store.items(Kind.ALLOCATION)
    live = Counter(a.client_status for a in allocs if a.desired_status == "run")
    console.print(Text.assemble(("Allocations  ", "bold"), _counts(live, {
        "running": "green", "pending": "yellow", "failed": "red", "lost": "red"},
        _empty(store, Kind.ALLOCATION))))
    stale = [k.value for k in SNAPSHOT_KINDS if store.is_stale(k) and store.count(k)]
    if stale:
        console.print(Text(f"stale (backend down, last known data shown): {', '.join(stale)}",
                           style="yellow"))


def _empty(store: Store, kind: Kind) -> Text:
    """"none" only when the backend said so, never when it has not answered at all."""
    from rich.text import Text

    owner = OWNER.get(kind, "")
    backend = store.backend(owner)
    if backend.waiting or (backend.health is Health.DOWN and backend.last_success is None):
        return Text(f"unknown: {owner} has not answered", style="red")
    return Text("none", style="dim")


def _counts(counter: Counter[str], styles: dict[str, str], empty: Text | None = None) -> Text:
    from rich.text import Text

    from .plain import line

    if not counter:
        return empty or Text("none", style="dim")
    parts = [Text(f"{n} {line(state)}", style=styles.get(state.split(" ")[0], ""))
             for state, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]
    return Text(", ").join(parts)


def _backends_table(store: Store, configured: set[str]) -> Table:
    from rich.table import Table
    from rich.text import Text

    from .plain import BLOCK_LIMIT
    from .plain import text as plain_text

    table = Table(title="Backends", title_justify="left", box=None, pad_edge=False)
    for col in ("backend", "health", "address", "detail"):
        table.add_column(col)
    now = time.time()
    for b in store.backends():
        if b.name not in configured and b.health is Health.UNKNOWN:
            table.add_row(Text(b.name), Text("- off", style="dim"), "",
                          plain_text(b.last_error, "dim", limit=BLOCK_LIMIT, multiline=True))
            continue
        detail = plain_text(b.last_error, limit=BLOCK_LIMIT, multiline=True)
        if b.waiting:
            detail = Text(f"waiting for its first answer ({now - (b.waiting_since or now):.0f} s)")
        if b.health is Health.DOWN and b.last_success:
            detail.append(f" (last good answer {now - b.last_success:.0f} s ago)")
        table.add_row(Text(b.name), Text(f"{HEALTH_MARK[b.health]} {b.health.value}",
                                         style=HEALTH_STYLE[b.health]),
                      plain_text(b.address), detail)
    return table


def _hypervisors_table(store: Store) -> Table:
    from rich.table import Table

    from .plain import text as plain_text

    table = Table(title="Hypervisors", title_justify="left", box=None, pad_edge=False)
    for col in ("name", "status", "cpu", "mem", "vms"):
        table.add_column(col)
    vms = store.items(Kind.VM)
    for hv in sorted(store.items(Kind.HYPERVISOR), key=lambda h: h.name):
        running = sum(1 for v in vms if v.node == hv.name and v.status == "running")
        total = sum(1 for v in vms if v.node == hv.name and not v.template)
        table.add_row(plain_text(hv.name), plain_text(
            hv.status, "green" if hv.status == "online" else "red"),
                      pct(hv.cpu, 1), pct(hv.mem, hv.maxmem), f"{running}/{total} running")
    return table


def _services_line(store: Store) -> Text:
    from rich.text import Text

    from .plain import line

    services = sorted(store.items(Kind.SERVICE), key=lambda s: s.name)
    parts = []
    for s in services:
        total = s.passing + s.warning + s.critical
        style = "red" if s.critical else "yellow" if s.warning else "green"
        parts.append(Text(f"{line(s.name)} {s.passing}/{total}", style=style))
    return Text.assemble(("Services  ", "bold"), Text("  ").join(parts) if parts else
                         _empty(store, Kind.SERVICE))
