"""Consul's watches cost what changed (issue #17, "requests grow with the lab"): one blocking
query over every check's state applies a check change to its instance, nothing re-read; a
new service or instance reads only that service; members and Raft keep their own cadence.
Counted at the lab's Consul, with py-consul (the source's client) against it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import consul
import pytest

from jamtui.config import load_config
from jamtui.model import Kind, ServiceInstance
from jamtui.sim.lab import Lab
from jamtui.sources.consul import READS, ConsulSource, Watch, jittered
from jamtui.store import Change, Store
from tests.conftest import FAST
from tests.helpers import wait_for

# what a check change must not cause: the catalog, every service, members, Raft
REREADS = ("GET /v1/catalog/services", "GET /v1/health/service/", "GET /v1/agent/members",
           "GET /v1/status/peers", "GET /v1/operator/")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=4, tick=0.2, traffic=False, **FAST) as running:
        yield running


@pytest.fixture
def watched(lab: Lab, tmp_path: Path) -> Iterator[tuple[ConsulSource, list[list[Change]]]]:
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    cfg = load_config(path, env=lab.env())
    store = Store()
    batches: list[list[Change]] = []
    store.subscribe(batches.append)
    src = ConsulSource(store, cfg.consul, poll_interval=0.5)
    src.start()
    try:
        assert src.ready.wait(10) and src._first_read.wait(10)
        wait_for(lambda: src._checks_loaded and src._checks_index > 0, timeout=10)
        time.sleep(0.5)  # the first picture settles (the member read after the first one)
        yield src, batches
    finally:
        src.stop()


def counts(lab: Lab) -> dict[str, int]:
    assert lab.ctx is not None
    return dict(lab.ctx.consul_requests)


def asked(before: dict[str, int], after: dict[str, int], *prefixes: str) -> dict[str, int]:
    """Requests made between two counts whose key starts with one of `prefixes`."""
    return {k: n - before.get(k, 0) for k, n in after.items()
            if n > before.get(k, 0) and k.startswith(prefixes)}


def agent(lab: Lab) -> consul.Consul:
    u = urlsplit(lab.urls["consul"])
    return consul.Consul(host=u.hostname, port=u.port, token=lab.secrets.consul_token)


def test_a_check_change_is_one_store_change_and_no_reread(
        lab: Lab, watched: tuple[ConsulSource, list[list[Change]]]) -> None:
    src, batches = watched
    store = src.store
    inst = next(i for i in store.items(Kind.INSTANCE) if i.service == "api")
    check = next(c for c in inst.checks if c.service_id)
    before, seen = counts(lab), len(batches)
    lab.call(lab.world.set_check, inst.node, check.check_id, "critical", "HTTP GET: 503")
    wait_for(lambda: store.get(Kind.INSTANCE, inst.id).status == "critical", timeout=5)
    time.sleep(0.5)  # anything else it would do, it does now
    after = counts(lab)
    assert asked(before, after, *REREADS) == {}, after
    assert asked(before, after, "GET /v1/health/state/any") == {
        "GET /v1/health/state/any?index&wait": 1}
    new = [b for b in batches[seen:] if any(c.kind is not Kind.BACKEND for c in b)]
    assert len(new) == 1, new  # one batch: the instance and its service's counts
    assert {(c.kind, c.id) for c in new[0]} == {(Kind.INSTANCE, inst.id), (Kind.SERVICE, "api")}
    assert store.get(Kind.SERVICE, "api").critical == 1
    moved = next(c for c in store.get(Kind.INSTANCE, inst.id).checks
                 if c.check_id == check.check_id)
    assert moved.output == "HTTP GET: 503"
    lab.call(lab.world.set_check, inst.node, check.check_id, "passing", "HTTP GET: 200 OK")
    wait_for(lambda: store.get(Kind.INSTANCE, inst.id).status == "passing", timeout=5)


def test_a_check_change_decodes_only_the_changed_check(
        lab: Lab, watched: tuple[ConsulSource, list[list[Change]]]) -> None:
    """Each change of any check brings the whole check list back (2.5 MB at 5,000
    instances); every entry was decoded again and compared field by field. An unchanged
    entry is now the record held (the same object), and only the changed check is new, in
    the check map and in its node's index."""
    src, _ = watched
    store = src.store
    inst = next(i for i in store.items(Kind.INSTANCE) if i.service == "api")
    check = next(c for c in inst.checks if c.service_id)
    before = dict(src._check_map)
    held = len(before)
    assert held > 5
    key = (inst.node, check.check_id)
    try:
        lab.call(lab.world.set_check, inst.node, check.check_id, "warning", "slow")
        wait_for(lambda: store.get(Kind.INSTANCE, inst.id).status == "warning", timeout=5)
        after = dict(src._check_map)
        assert after[key] is not before[key] and after[key].info.output == "slow"
        rebuilt = [k for k in before if k != key and after.get(k) is not before[k]]
        assert rebuilt == []  # none of the other checks was made again
        on_node = src._checks_by_node[inst.node][check.service_id]
        assert after[key] in on_node and before[key] not in on_node
        moved = next(c for c in store.get(Kind.INSTANCE, inst.id).checks
                     if c.check_id == check.check_id)
        assert moved.output == "slow"
        others = [i for i in store.items(Kind.INSTANCE)
                  if i.node == inst.node and i.id != inst.id]
        assert all(i.status != "warning" for i in others)
    finally:
        lab.call(lab.world.set_check, inst.node, check.check_id, "passing", "HTTP GET: 200 OK")
    wait_for(lambda: store.get(Kind.INSTANCE, inst.id).status == "passing", timeout=5)
    assert len(src._check_map) == held


def test_a_node_check_reaches_every_instance_on_the_node(
        lab: Lab, watched: tuple[ConsulSource, list[list[Change]]]) -> None:
    src, _ = watched
    store = src.store
    agent(lab).agent.check.register("disk", check=consul.Check.ttl("30s"), check_id="disk")
    node = lab.call(lambda: next(c.node for c in lab.world.checks.values()
                                 if c.check_id == "disk"))
    try:
        mine = [i for i in store.items(Kind.INSTANCE) if i.node == node]
        assert len(mine) > 1, node
        wait_for(lambda: all(any(c.check_id == "disk" for c in store.get(Kind.INSTANCE, i.id)
                                 .checks) for i in mine), timeout=5)
        assert all(store.get(Kind.INSTANCE, i.id).status == "critical" for i in mine)
    finally:
        agent(lab).agent.check.deregister("disk")
    wait_for(lambda: not any(c.check_id == "disk" for i in store.items(Kind.INSTANCE)
                             for c in i.checks), timeout=5)


def test_a_new_service_and_a_new_instance_read_only_that_service(
        lab: Lab, watched: tuple[ConsulSource, list[list[Change]]]) -> None:
    src, _ = watched
    store = src.store
    c = agent(lab)
    before = counts(lab)
    c.agent.service.register("grafana", service_id="grafana-1", port=3000,
                             tags=["urlprefix-grafana.jamfox.dev/"],
                             check=consul.Check.ttl("30s"))
    try:
        wait_for(lambda: store.get(Kind.SERVICE, "grafana") is not None, timeout=5)
        svc = store.get(Kind.SERVICE, "grafana")
        assert svc.tags == ("urlprefix-grafana.jamfox.dev/",)
        wait_for(lambda: [i.service_id for i in store.instances_of("grafana")]
                 == ["grafana-1"], timeout=5)
        time.sleep(0.5)
        reads = asked(before, counts(lab), "GET /v1/health/service/")
        assert set(reads) == {"GET /v1/health/service/grafana"}, reads
        # a second instance of it: that service again, no other
        before = counts(lab)
        c.agent.service.register("grafana", service_id="grafana-2", port=3001,
                                 tags=["urlprefix-grafana.jamfox.dev/"],
                                 check=consul.Check.ttl("30s"))
        wait_for(lambda: len(store.instances_of("grafana")) == 2, timeout=5)
        time.sleep(0.5)
        reads = asked(before, counts(lab), "GET /v1/health/service/")
        assert set(reads) == {"GET /v1/health/service/grafana"}, reads
        c.agent.check.ttl_pass("service:grafana-2")
        wait_for(lambda: store.get(Kind.SERVICE, "grafana").passing == 1, timeout=5)
        # one goes: its checks go with it, and it leaves the store
        c.agent.service.deregister("grafana-2")
        wait_for(lambda: len(store.instances_of("grafana")) == 1, timeout=5)
    finally:
        for sid in ("grafana-1", "grafana-2"):
            with contextlib.suppress(consul.ConsulException):
                c.agent.service.deregister(sid)
    wait_for(lambda: store.get(Kind.SERVICE, "grafana") is None, timeout=5)
    assert not store.instances_of("grafana")


def test_a_failed_member_still_shows_without_a_reread_per_check(
        lab: Lab, watched: tuple[ConsulSource, list[list[Change]]]) -> None:
    """serfHealth is the one check that wakes the members' read (at most every 2 s)."""
    src, _ = watched
    store = src.store
    vm = lab.call(lambda: next(v for v in lab.world.vms.values() if v.name == "vs2"))
    lab.call(lab.world.vm_stop, vm.node, vm.vmid)
    try:
        wait_for(lambda: store.get(Kind.MEMBER, "vs2").status == "failed", timeout=10)
    finally:
        lab.call(lab.world.vm_start, vm.node, vm.vmid)
    wait_for(lambda: store.get(Kind.MEMBER, "vs2").status == "alive", timeout=15)


def _fresh(lab: Lab, tmp_path: Path) -> ConsulSource:
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    return ConsulSource(Store(), load_config(path, env=lab.env()).consul, poll_interval=0.5)


@pytest.mark.parametrize("checks_first", [False, True])
def test_the_first_picture_reads_each_service_once(lab: Lab, tmp_path: Path,
                                                   checks_first: bool) -> None:
    """The check watch's first answer, in before or while the services are read, must not
    read again the services whose instances it has not seen read yet (at the demo, 9 of 11
    twice)."""
    src = _fresh(lab, tmp_path)
    if checks_first:  # the check watch answers before the service list does
        first_picture = src._first_picture

        def after_checks(names: dict[str, list[str]], *rest: object) -> None:
            wait_for(lambda: src._checks_loaded, timeout=10)
            first_picture(names, *rest)  # type: ignore[arg-type]
        src._first_picture = after_checks  # type: ignore[method-assign]
    before = counts(lab)
    src.start()
    try:
        assert src.ready.wait(15) and src._first_read.is_set()
        wait_for(lambda: src._checks_loaded, timeout=10)
        time.sleep(0.5)  # a second read, if any, would be under way by now
        names = {s.name for s in src.store.items(Kind.SERVICE)}
        assert names and src.store.count(Kind.INSTANCE)
    finally:
        src.stop()
    reads = asked(before, counts(lab), "GET /v1/health/service/")
    assert reads == {f"GET /v1/health/service/{n}": 1 for n in names}


def test_the_first_picture_reads_services_side_by_side(lab: Lab, tmp_path: Path) -> None:
    """Each request answered `delay` late: services read one after another would take
    N * delay for their reads alone; read 8 at a time the whole picture takes well under."""
    delay = 0.5
    src = _fresh(lab, tmp_path)
    lab.set_fault("consul", "slow", latency=delay)
    try:
        started = time.monotonic()
        src.start()
        assert src.ready.wait(30)
        took = time.monotonic() - started
        assert src._first_read.is_set()
        n = src.store.count(Kind.SERVICE)
    finally:
        lab.clear_fault("consul")
        src.stop()
    assert n >= 8
    assert took < 0.8 * n * delay, f"{n} services with {delay} s each took {took:.1f} s"
    assert src.store.backend("consul").health.value == "ok"


def test_a_stopped_first_picture_starts_no_more_reads(lab: Lab, tmp_path: Path) -> None:
    """`status` stops listening after `--timeout`: the reads still queued must not go on
    (a thread pool's queue ran to its end, and the process waited for it at exit)."""
    src = _fresh(lab, tmp_path)
    started: list[str] = []
    read = src._read_service

    def counted(name: str) -> list[ServiceInstance]:
        started.append(name)
        return read(name)
    src._read_service = counted  # type: ignore[method-assign]
    lab.set_fault("consul", "slow", latency=0.5)
    try:
        src.start()
        wait_for(lambda: started, timeout=10)
        src.stop()
        time.sleep(1.5)  # the reads under way end; none may begin
    finally:
        lab.clear_fault("consul")
    n = len(lab.call(lambda: {s.name for s in lab.world.services.values()}))
    assert len(started) <= READS < n


def test_a_one_shot_starts_its_readers_while_the_service_list_is_read(
        lab: Lab, tmp_path: Path) -> None:
    """`status`/`snapshot` (#17): the first picture's readers are started while
    /v1/catalog/services is read (`side.Ahead`), not one after the other once it is in
    (each start waited for the one GIL: at 5k the eighth began up to 0.2 s after the
    first). The picture is the same, each service read once, and no reader is left."""
    src = _fresh(lab, tmp_path)
    src.once = True
    raw = src._raw
    running: list[set[str]] = []
    read: list[str] = []
    service = src._read_service

    def listing(path: str, params: list[tuple[str, str]] | None = None) -> object:
        answer = raw(path, params)
        if path == "/v1/catalog/services" and not running:
            wanted = {f"consul:read{i}" for i in range(READS)}
            deadline = time.monotonic() + 5
            names: set[str] = set()
            while time.monotonic() < deadline and not wanted <= names:
                names = {t.name for t in threading.enumerate()}
                time.sleep(0.01)
            running.append(names)
        return answer

    def counted(name: str) -> list[ServiceInstance]:
        read.append(name)
        return service(name)

    src._raw = listing  # type: ignore[method-assign]
    src._read_service = counted  # type: ignore[method-assign]
    try:
        src.start()
        assert src.ready.wait(30)
        assert src.store.backend("consul").health.value == "ok"
    finally:
        src.stop()
    assert running and {f"consul:read{i}" for i in range(READS)} <= running[0], running
    services = lab.call(lambda: {s.name for s in lab.world.services.values()})
    assert sorted(read) == sorted(services)
    assert {s.name for s in src.store.items(Kind.SERVICE)} == services
    wait_for(lambda: not [t for t in threading.enumerate()
                          if t.name.startswith("consul:read")], timeout=5)


def test_blocking_query_rules() -> None:
    """api-docs/features/blocking, "implementation details"."""
    w = Watch()
    assert w.param() is None and w.answered("7") and w.param() == "7"
    assert not w.answered("7")  # the wait ran out, nothing new
    assert w.answered("3") and w.param() is None  # backwards: start again, not blocking
    assert w.answered("3") and w.param() == "3"
    zero = Watch()
    assert zero.answered("0") and zero.param() == "1"  # never 0: that would not block
    assert not zero.answered(None) and zero.param() == "1"
    waits = {jittered("60s") for _ in range(50)}
    assert len(waits) > 1
    assert all(56250 <= int(x[:-2]) <= 60000 and x.endswith("ms") for x in waits)
    paced = Watch(min_gap=0.2)
    stop = threading.Event()
    started = time.monotonic()
    for _ in range(3):
        paced.pace(stop)
    assert time.monotonic() - started >= 0.39  # immediate answers do not become a storm


def test_a_costly_answer_paces_the_next_call_by_its_cost() -> None:
    """At 5,000 instances every change of a check brings back all of them (2.5 MB, ~35 ms
    of CPU each): with checks moving all the time the watch answered ten times a second.
    The next call waits `cost_ratio` times the CPU the last one took; a cheap one does not."""
    stop = threading.Event()
    costly = Watch(min_gap=0.05, cost_ratio=20)
    costly.pace(stop)
    spent = time.thread_time()
    while time.thread_time() - spent < 0.02:  # 20 ms of this thread's CPU on the answer
        sum(range(1000))
    started = time.monotonic()
    costly.pace(stop)
    assert time.monotonic() - started >= 0.3  # 20 x 20 ms from the last call's start
    started = time.monotonic()
    costly.pace(stop)  # that call cost nothing: only the minimum gap
    assert time.monotonic() - started < 0.2


def test_the_check_watch_starts_once_the_cockpit_s_first_frame_is_drawn(
        lab: Lab, tmp_path: Path) -> None:
    """Its first answer is every check (2.5 MB at 5k), which the first frame does not need:
    each service's read carries its instances' checks (#17)."""
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    src = ConsulSource(Store(), load_config(path, env=lab.env()).consul, poll_interval=0.5)
    src.first_frame = threading.Event()

    def watched() -> int:
        return sum(n for k, n in counts(lab).items() if k.startswith("GET /v1/health/state/"))

    before = watched()
    src.start()
    try:
        assert src.ready.wait(10) and src._first_read.wait(10)
        time.sleep(0.3)
        assert watched() == before and not src._checks_loaded
        src.first_frame.set()
        wait_for(lambda: src._checks_loaded, timeout=10)
        assert watched() > before
    finally:
        src.stop()


def test_service_reads_go_through_the_sessions_pool_with_requests_failures(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`snapshot --json` at 5k reads 55 services one by one (#17): each straight through
    py-consul's session's own pool (`tls.PlainGet`: its token, TLS and timeout), not
    through requests' work around each request. The instances are those py-consul's own
    read gives; a Consul that refuses or does not answer fails with the exception requests
    raises, in the same words."""
    import dataclasses
    import socket

    import requests

    from jamtui.sources import consul as consul_source
    from jamtui.sources.base import describe_error

    sent: list[str] = []
    send = requests.Session.send

    def sending(self: object, request: requests.PreparedRequest, **kw: object) -> object:
        sent.append(str(request.url))
        return send(self, request, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(requests.Session, "send", sending)
    src = _fresh(lab, tmp_path)
    names = sorted(lab.call(lambda: {s.name for s in lab.world.services.values()}))
    theirs = {n: src.client.health.service(n)[1] for n in names}  # py-consul's own reads
    sent.clear()
    for name in names:
        assert src._read_service(name) == [consul_source.decode_instance(e)
                                           for e in theirs[name]]
    assert not sent, sent

    def failure(address: str, plain: bool) -> BaseException:
        cfg = dataclasses.replace(src.cfg, address=address)
        with monkeypatch.context() as m:
            if not plain:  # as before: through requests
                m.setattr(consul_source.PlainGet, "of", classmethod(lambda *_a, **_k: None))
            gone = ConsulSource(Store(), cfg, timeout=0.5)
            with pytest.raises(requests.RequestException) as caught:
                gone._read_service(names[0])
        return caught.value

    with socket.socket() as silent:  # takes connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        refused = socket.socket()
        refused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{refused.getsockname()[1]}"
        refused.close()
        for address in (closed, f"http://127.0.0.1:{silent.getsockname()[1]}"):
            plain, before = failure(address, True), failure(address, False)
            assert type(plain) is type(before), (plain, before)
            assert describe_error("consul", address, plain) == \
                describe_error("consul", address, before)


def test_the_first_picture_writes_each_service_s_instances_at_once(
        lab: Lab, tmp_path: Path) -> None:
    """100 instances a service at 5k (#17): each service's answer is written with one store
    call for its instances (one lock, one list of changes), not one upsert each."""
    from tests.helpers import spy

    src = _fresh(lab, tmp_path)
    store = src.store
    one = spy(store, "upsert")
    many = spy(store, "upsert_many")
    src.once = True
    src.start()
    try:
        assert src.ready.wait(15) and src._first_read.is_set()
    finally:
        src.stop()
    names = {s.name for s in store.items(Kind.SERVICE)}
    assert store.count(Kind.INSTANCE) > len(names) > 3
    assert not [args for args in one if args[0] is Kind.INSTANCE]
    assert sorted(args[1][0].service for args in many if args[1]) == sorted(names)
    assert sum(len(args[1]) for args in many) == store.count(Kind.INSTANCE)


def test_a_check_watch_whose_wait_ran_out_decodes_nothing(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A blocking query answers at the index held when its wait runs out, with the same
    result (api-docs/features/blocking): every check (2.5 MB at 5,000 instances) was decoded
    again each minute for nothing. Not now; a change after it is decoded and applied."""
    from jamtui.sources import consul as source

    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    src = ConsulSource(Store(), load_config(path, env=lab.env()).consul, wait="300ms")
    decoded: list[int] = []
    real = source.decode_node_checks
    here = threading.get_ident()  # the steps below; other tests' sources may still be about

    def counting(body: bytes | str, previous: Any = None) -> Any:
        if threading.get_ident() == here:
            decoded.append(len(body))
        return real(body, previous)

    monkeypatch.setattr(source, "decode_node_checks", counting)
    src._checks_step()  # the first answer: every check
    assert len(decoded) == 1 and src._checks_watch.index
    index = src._checks_watch.index
    for _ in range(2):
        t0 = time.monotonic()
        src._checks_step()  # held 300 ms, then the same index
        assert time.monotonic() - t0 >= 0.2
    assert len(decoded) == 1 and src._checks_watch.index == index
    node, check = next((c.node, c.check_id) for c in lab.world.checks.values()
                       if c.service_id and c.status == "passing")
    lab.call(lab.world.set_check, node, check, "critical", "HTTP GET: 503")
    try:
        src._checks_step()
        assert len(decoded) == 2 and src._checks_watch.index > index
        assert src._check_map[(node, check)].info.status == "critical"
    finally:
        lab.call(lab.world.set_check, node, check, "passing", "HTTP GET: 200 OK")
