"""`snapshot --json` is encoded from the records (msgspec), not from dicts through the stdlib
encoder (#17: 0.4-0.6 s of a 5,000-allocation snapshot): the bytes stay those
`write_json(snapshot(store))` writes, hostile strings escaped as `json.dumps` escapes them."""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import replace

from jamtui.headless import SnapshotWriter, snapshot, write_json
from jamtui.model import (
    VM,
    Allocation,
    BackendStatus,
    CheckInfo,
    Health,
    Hypervisor,
    Kind,
    PveTask,
    Quorum,
    Refusal,
    Route,
    Service,
    ServiceInstance,
    TaskEvent,
    TaskInfo,
)
from jamtui.store import Store

HOSTILE = "x\x1b]0;PWNED\x07\u202etxt.exe\x7f\u00e9\U0001F600\"\\/\n\t\x00\b\f"


def lab_store() -> Store:
    store = Store()
    store.set_backend(BackendStatus("nomad", Health.OK, "http://n:4646", last_success=1.5,
                                    latency_ms=12.25))
    store.set_backend(BackendStatus(
        "consul", Health.DEGRADED, "http://c:8500", last_error=HOSTILE,
        refused=(Refusal("intentions", "intentions:read", "not permitted", "intentions"),)))
    store.set_backend(BackendStatus("proxmox", Health.DOWN, waiting_since=3.0))
    store.upsert(Kind.HYPERVISOR, Hypervisor("pve1", "online", 0.000031, 8, 2**40, 2**41))
    store.upsert(Kind.VM, VM(101, "vb1", "pve1", "running", 0.25, 2, 1, 2, ip="10.0.0.5",
                             tags=("a", HOSTILE)))
    store.upsert(Kind.VM, VM(102, f"vs{HOSTILE}", "pve1", "stopped", 0.0, 2, 1, 2))
    store.upsert(Kind.PVE_TASK, PveTask("UPID:1", "pve1", "qmstart", "101", "root@pam", 5))
    store.upsert(Kind.PVE_TASK, PveTask("UPID:2", "pve1", "qmstop", "101", "root@pam", 9,
                                        endtime=10, status="OK"))
    events = (TaskEvent(1764470000.123456, "Started", HOSTILE),)
    store.upsert(Kind.ALLOCATION, Allocation(
        "a1", "web.web[0]", "web", "web", "n1", "c1", "running", "run",
        tasks=(TaskInfo("t", "running", started_at=1764470000.5, events=events),),
        create_time=1764470000.9876542, modify_time=1e20))
    store.upsert(Kind.ALLOCATION, Allocation("a2", HOSTILE, "web", "web", "n1", "c1",
                                             "pending", "run"))
    store.upsert(Kind.SERVICE, Service("web", ("urlprefix-/",), passing=1, critical=1))
    store.upsert(Kind.SERVICE, Service("empty", ()))
    for n, status in enumerate(("passing", "critical")):
        store.upsert(Kind.INSTANCE, ServiceInstance(
            f"c{n}/web-{n}", "web", f"web-{n}", f"c{n}", "10.0.0.9", 8080 + n,
            checks=(CheckInfo("c", "http", status, output=HOSTILE),)))
    store.upsert(Kind.QUORUM, Quorum("consul", "10.0.0.1:8300", ("a", "b", "c"), ("a", "b")))
    store.upsert(Kind.QUORUM, Quorum("nomad", "", ("a",), (), checked=False))
    store.upsert(Kind.ROUTE, Route("", "web", "web.lab", "/", "http://10.0.0.9:8080", 0.5,
                                   fabios=("f2", "f1"), read=("f1", "f2"), unread=("f3",)))
    store.upsert(Kind.ROUTE, Route("f1", "api", "api.lab", "/v1", "http://10.0.0.9:9", 1.0))
    return store


def _documents(store: Store) -> tuple[bytes, bytes]:
    text = io.StringIO()
    write_json(snapshot(store), text)
    out = io.BytesIO()
    SnapshotWriter(store).write(out)
    old, new = text.getvalue().encode("ascii"), out.getvalue()
    stamp = b'  "taken_at": '  # the second may tick between the two
    return (b"\n".join(x for x in old.split(b"\n") if not x.startswith(stamp)),
            b"\n".join(x for x in new.split(b"\n") if not x.startswith(stamp)))


def test_encoded_snapshot_is_the_documents_bytes() -> None:
    old, new = _documents(lab_store())
    # the same keys in the same order with the same values, every line byte for byte but
    # the one with a float msgspec spells otherwise (0.000031, not 3.1e-05)
    assert json.loads(new, object_pairs_hook=list) == json.loads(old, object_pairs_hook=list)
    differ = [n for o, n in zip(old.split(b"\n"), new.split(b"\n"), strict=True) if o != n]
    assert len(differ) == 1 and b'"cpu": 0.000031,' in differ[0]
    assert new.isascii() and b"\x7f" not in new  # DEL, bidi and the rest as \uXXXX
    assert b"\\u202e" in new and b"\\u001b]0;PWNED\\u0007" in new
    doc = json.loads(new)
    assert {b["name"]: b for b in doc["backends"]}["consul"]["last_error"] == HOSTILE
    assert [r["fabio"] for r in doc["routes"]] == ["f1", "f1", "f2"]
    assert "fabios" not in doc["routes"][0]
    assert [i["status"] for i in doc["services"][1]["instances"]] == ["passing", "critical"]
    assert doc["quorum"][0]["failure_tolerance"] == 0 and not doc["quorum"][1]["has_leader"]


def test_encoded_snapshot_of_an_empty_store_and_odd_numbers() -> None:
    old, new = _documents(Store())
    assert new == old
    store = Store()  # beyond msgspec's integers: written by json.dumps, as before
    store.upsert(Kind.HYPERVISOR, Hypervisor("pve1", "online", 0.5, 8, 2**70, 2**71))
    old, new = _documents(store)
    assert new == old and str(2**70).encode() in new


def test_a_kind_encoded_early_is_encoded_again_when_it_changed() -> None:
    """`SnapshotWriter.follow` encodes a backend's part as it answers; what changes after
    (or answers late) is in the document as the store holds it at the end."""
    store = lab_store()
    writer = SnapshotWriter(store)

    class Answered:
        def __init__(self) -> None:
            self.ready = threading.Event()

    nomad, consul = Answered(), Answered()
    end = writer.follow({"nomad": nomad, "consul": consul})
    nomad.ready.set()
    deadline = time.monotonic() + 10
    while Kind.ALLOCATION not in writer._done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert Kind.ALLOCATION in writer._done and Kind.SERVICE not in writer._done
    first = store.get(Kind.ALLOCATION, "a1")
    store.upsert(Kind.ALLOCATION, replace(first, client_status="failed"))  # after it
    store.upsert(Kind.INSTANCE, ServiceInstance("c9/web-9", "web", "web-9", "c9", "h", 1))
    consul.ready.set()
    end()
    out = io.BytesIO()
    writer.write(out)
    text = io.StringIO()
    write_json(snapshot(store), text)
    doc, want = json.loads(out.getvalue()), json.loads(text.getvalue())
    doc.pop("taken_at"), want.pop("taken_at")
    assert doc == want
    assert {a["id"]: a["client_status"] for a in doc["allocations"]}["a1"] == "failed"
    assert len(doc["services"][1]["instances"]) == 3


def test_a_kind_encoded_early_is_written_as_it_was_joined() -> None:
    """A kind encoded while the others are read is kept as its whole section: the write
    after the last answer joins nothing again (10 MB into fresh memory at 5k, ~10 ms of
    the time after the last answer), and the bytes are still the document's."""
    from jamtui import headless
    from jamtui.headless import SNAPSHOT_KINDS
    from tests.helpers import spy

    store = lab_store()
    writer = SnapshotWriter(store)
    for kind in SNAPSHOT_KINDS:
        writer.prepare(kind)
    real = headless._section
    joined = spy(headless, "_section")
    try:
        out = io.BytesIO()
        writer.write(out)
    finally:
        headless._section = real
    assert [args[0] for args in joined] == ["backends"]  # written last, from the final state
    fresh = io.BytesIO()
    SnapshotWriter(store).write(fresh)
    stamp = b'  "taken_at": '
    assert [x for x in out.getvalue().split(b"\n") if not x.startswith(stamp)] == \
        [x for x in fresh.getvalue().split(b"\n") if not x.startswith(stamp)]


def test_routes_and_big_kinds_are_encoded_without_a_record_or_call_of_ours_each() -> None:
    """At 5k the document holds 4,800 route records (one per instance carrying a route)
    and 5,000 allocations (#17): the routes are written without a `Route` made for each
    (`per_instance`), the records of a kind encoded and spaced by `map`, not by one `line`
    call each. The bytes are the document's: hostile strings escaped, the same order (two
    routes whose records share an id stay in `_ordered`'s stable order)."""
    import pytest

    from jamtui import headless

    store = Store()
    store.upsert(Kind.ROUTE, Route("", "web", "web.lab", "/", "http://10.0.0.9:8080", 0.5,
                                   fabios=("f2", "f1"), read=("f1", "f2")))
    store.upsert(Kind.ROUTE, Route("", "zeta", "web.lab", "/", "http://10.0.0.9:8080", 0.25,
                                   fabios=("f1",), read=("f1", "f2")))
    store.upsert(Kind.ROUTE, Route("", "api", HOSTILE, "/v1", "http://10.0.0.9:9", 1.0,
                                   opts=HOSTILE, fabios=("f1", "f3"), read=("f1", "f3")))
    for n in range(20):
        store.upsert(Kind.ALLOCATION, Allocation(
            f"a{n:02}", HOSTILE if n == 3 else f"web.web[{n}]", "web", "web", "n1", "c1",
            "running", "run", modify_index=2**70 if n == 7 else n,
            create_time=0.000031 if n == 9 else 1764470000.5))
    calls: list[object] = []
    with pytest.MonkeyPatch.context() as m:
        m.setattr(headless._Encoder, "line", lambda *a: calls.append(a))
        m.setattr(Route, "per_instance", lambda self: pytest.fail("a record per instance"))
        out = io.BytesIO()
        SnapshotWriter(store).write(out)
    assert not calls
    old, _ = _documents(store)
    new_lines = [x for x in out.getvalue().split(b"\n") if not x.startswith(b'  "taken_at": ')]
    differ = [n for o, n in zip(old.split(b"\n"), new_lines, strict=True) if o != n]
    assert len(differ) == 1 and b'"create_time": 0.000031,' in differ[0]  # as msgspec spells it
    doc = json.loads(out.getvalue())
    assert [(r["fabio"], r["service"]) for r in doc["routes"]] == [
        ("f1", "web"), ("f1", "zeta"), ("f1", "api"), ("f2", "web"), ("f3", "api")]
    assert doc["routes"][2]["host"] == HOSTILE and b"\\u202e" in out.getvalue()
    assert {a["id"]: a["name"] for a in doc["allocations"]}["a03"] == HOSTILE


def test_each_service_is_encoded_as_it_answers_not_after_the_last_answer() -> None:
    """Consul's services are 3.9 MB of the document at 5k (#17), and Consul's first picture
    (55 reads) usually answers last: each service's line is encoded as its answer is
    written (a service with its instances, in one batch), so the write after the last
    answer encodes none of them again. A service whose records changed after (an instance
    more, a check flipped) is encoded again: the bytes are the store's at the end."""
    import pytest

    from jamtui import headless

    store = Store()
    writer = SnapshotWriter(store)

    class Answered:
        def __init__(self) -> None:
            self.ready = threading.Event()

    consul = Answered()
    end = writer.follow({"consul": consul})

    def answer(name: str, count: int, status: str = "passing") -> None:
        with store.batch():  # as ConsulSource._take_first writes one service's answer
            for n in range(count):
                store.upsert(Kind.INSTANCE, ServiceInstance(
                    f"c{n}/{name}-{n}", name, f"{name}-{n}", f"c{n}", "10.0.0.9", 8080 + n,
                    checks=(CheckInfo("c", "http", status, output=HOSTILE),)))
            store.upsert(Kind.SERVICE, Service(name, ("urlprefix-/",), passing=count))

    for name in ("web", "api", HOSTILE):
        answer(name, 3)
    deadline = time.monotonic() + 10
    while len(writer._service_lines) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(writer._service_lines) == 3  # encoded while Consul is still being read
    answer("api", 4, "critical")  # changed after it was encoded: encoded again
    consul.ready.set()
    end()
    encoded: list[object] = []
    with pytest.MonkeyPatch.context() as m:
        real = headless._Encoder.service
        m.setattr(headless._Encoder, "service",
                  lambda self, s, i: encoded.append(s.name) or real(self, s, i))
        out = io.BytesIO()
        writer.write(out)
    assert encoded == ["api"]
    fresh = io.BytesIO()
    SnapshotWriter(store).write(fresh)
    stamp = b'  "taken_at": '
    assert [x for x in out.getvalue().split(b"\n") if not x.startswith(stamp)] == \
        [x for x in fresh.getvalue().split(b"\n") if not x.startswith(stamp)]
    old, new = _documents(store)
    assert new == old
    doc = json.loads(out.getvalue())
    assert [len(s["instances"]) for s in doc["services"]] == [4, 3, 3]
