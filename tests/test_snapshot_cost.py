"""`snapshot --json` at 5,000 allocations: the same document, made without deep copies and
written by the C encoder, one record per line (#17: it took seconds after the data was in)."""

from __future__ import annotations

import dataclasses
import io
import json
import time
from typing import Any

from jamtui.headless import SNAPSHOT_KINDS, snapshot, write_json
from jamtui.model import (
    Allocation,
    BackendStatus,
    CheckInfo,
    Health,
    Kind,
    Quorum,
    Refusal,
    Service,
    ServiceInstance,
    TaskEvent,
    TaskInfo,
)
from jamtui.store import Store


def filled(allocs: int) -> Store:
    store = Store()
    store.set_backend(BackendStatus("nomad", Health.DEGRADED, "http://n", "volumes off",
                                    refused=(Refusal("volumes", "csi-list-volume", "off",
                                                     "storages"),)))
    store.upsert(Kind.QUORUM, Quorum("nomad", leader="a", servers=("a", "b"), alive=("a",)))
    with store.batch():
        for i in range(allocs):
            store.upsert(Kind.ALLOCATION, Allocation(
                f"{i:08x}-0000", f"web[{i}]", "web", "web", "n1", "vs1", "running", "run",
                create_time=time.time(), tasks=(TaskInfo("server", "running", events=(
                    TaskEvent(1.0, "Started", "Task started by client \x1b[2J"),)),)))
            store.upsert(Kind.INSTANCE, ServiceInstance(
                f"vs1/web-{i}", "web", f"web-{i}", "vs1", "10.0.0.1", 8000 + i,
                tags=("urlprefix-/",), checks=(CheckInfo("c", "http", "passing", "ok"),)))
        store.upsert(Kind.SERVICE, Service("web", ("urlprefix-/",), passing=allocs))
    return store


def as_before(store: Store) -> dict[str, Any]:
    """The document as `dataclasses.asdict` made it (without the time it was taken)."""
    def record(obj: Any) -> dict[str, Any]:
        data = dataclasses.asdict(obj)
        data = data if "id" in data else {"id": obj.id, **data}
        if isinstance(obj, ServiceInstance):
            data["status"] = obj.status
        if isinstance(obj, Quorum):
            data["has_leader"] = obj.has_leader
            data["failure_tolerance"] = obj.failure_tolerance
        return data

    doc: dict[str, Any] = {"backends": [{**record(b), "stale": b.stale}
                                        for b in store.backends()]}
    for kind in SNAPSHOT_KINDS:
        recs = [record(o) for o in sorted(store.items(kind),
                                           key=lambda o: (getattr(o, "name", ""), str(o.id)))]
        if kind is Kind.SERVICE:
            for rec in recs:
                rec["instances"] = [record(i) for i in sorted(
                    store.instances_of(rec["name"]), key=lambda i: i.id)]
        doc[kind.value] = recs
    return json.loads(json.dumps(doc))


def test_the_document_is_the_one_asdict_made_and_is_one_json_document() -> None:
    store = filled(300)
    doc = snapshot(store)
    out = io.StringIO()
    write_json(doc, out)
    text = out.getvalue()
    parsed = json.loads(text)  # one document, as before
    parsed.pop("taken_at")
    assert parsed.pop("schema") == 1
    assert parsed == as_before(store)
    # one record per line under each key: a 5,000-allocation lab is 15,000 short lines,
    # grep-able, and each line was encoded by json's C encoder
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    alloc_lines = [ln for ln in lines if '"job_id": "web"' in ln]
    assert len(alloc_lines) == 300
    assert "\\u001b[2J" in text and "\x1b" not in text  # JSON escapes controls itself


def test_empty_kinds_and_scalars_stay_json() -> None:
    out = io.StringIO()
    write_json({"schema": 1, "vms": [], "x": {"a": [1, 2]}}, out)
    assert json.loads(out.getvalue()) == {"schema": 1, "vms": [], "x": {"a": [1, 2]}}
