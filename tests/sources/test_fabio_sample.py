"""Fabio without asking every instance every interval (issue #17): one instance in turn while
no view of routes is on screen, all of them when something moved or while routes are shown;
an instance that stops listening still shows within an interval. Counted at the lab's
Fabio instances."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import consul
import pytest

from jamtui.config import load_config
from jamtui.model import Health, Kind
from jamtui.sim.lab import Lab
from jamtui.sources.fabio import FabioSource, instance_name
from jamtui.store import Store
from tests.conftest import FAST
from tests.helpers import wait_for

INTERVAL = 0.3


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=5, tick=0.2, traffic=False, **FAST) as running:
        yield running


@pytest.fixture
def fabio(lab: Lab, tmp_path: Path) -> Iterator[FabioSource]:
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    cfg = load_config(path, env=lab.env())
    assert len(cfg.fabio.addresses) >= 3
    src = FabioSource(Store(), cfg.fabio, poll_interval=INTERVAL)
    src.start()
    try:
        wait_for(lambda: src.store.backend("fabio").health is Health.OK, timeout=10)
        wait_for(lambda: not src.reading(), timeout=10)  # the others, in the background
        yield src
    finally:
        src.stop()
        lab.clear_fault()


def asked(lab: Lab) -> dict[str, int]:
    """/api/routes served per Fabio instance (HAProxy's checks ask for `/health`)."""
    assert lab.ctx is not None
    return dict(lab.ctx.fabio_routes)


def carriers(store: Store, service: str | None = None) -> set[str]:
    """The Fabio instances carrying any route (of `service`), as the store says."""
    return {f for r in store.items(Kind.ROUTE) if service in (None, r.service)
            for f in r.carriers}


def served(lab: Lab, seconds: float) -> dict[str, int]:
    before = asked(lab)
    time.sleep(seconds)
    after = asked(lab)
    return {k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)}


def test_one_instance_in_turn_while_routes_are_not_shown(lab: Lab, fabio: FabioSource) -> None:
    n = len(fabio.addresses)
    count = served(lab, 10 * INTERVAL)
    # about one request per interval in all, spread over the instances in turn
    assert 0 < sum(count.values()) <= 14, count
    assert len(count) >= 2, count  # round robin, not always the first
    fabio.set_foreground(True)
    time.sleep(2 * INTERVAL)
    count = served(lab, 10 * INTERVAL)
    assert len(count) == n and min(count.values()) >= 5, count  # every one, every interval
    fabio.set_foreground(False)


def test_a_fabio_that_stops_listening_shows_within_an_interval(
        lab: Lab, fabio: FabioSource) -> None:
    store = fabio.store
    victim = fabio.addresses[1]
    node = next(k for k, u in lab.urls.items() if u.rstrip("/") == victim)
    lab.set_fault(node, "down")
    wait_for(lambda: store.backend("fabio").health is Health.DEGRADED, timeout=3)
    assert instance_name(victim) in store.backend("fabio").last_error
    # its last routes stay (stale, said so by the health), the others' too
    assert carriers(store) == {instance_name(a) for a in fabio.addresses}
    lab.clear_fault(node)
    wait_for(lambda: store.backend("fabio").health is Health.OK, timeout=5)


def test_every_fabio_down_is_down(lab: Lab, fabio: FabioSource) -> None:
    lab.set_fault("fabio", "down")
    wait_for(lambda: fabio.store.backend("fabio").health is Health.DOWN, timeout=3)
    assert "no Fabio instance answers" in fabio.store.backend("fabio").last_error
    lab.clear_fault("fabio")
    wait_for(lambda: fabio.store.backend("fabio").health is Health.OK, timeout=5)


def test_a_new_urlprefix_tag_reaches_every_instance_s_routes(
        lab: Lab, fabio: FabioSource) -> None:
    """Fabio builds its table from the tags of passing instances; one instance read in turn
    sees the new route, and then every instance is read."""
    store = fabio.store
    u = urlsplit(lab.urls["consul"])
    c = consul.Consul(host=u.hostname, port=u.port, token=lab.secrets.consul_token)
    c.agent.service.register("grafana", service_id="grafana-1", address="127.0.0.1",
                             port=3000, tags=["urlprefix-grafana.jamfox.dev/"],
                             check=consul.Check.ttl("30s"))
    try:
        time.sleep(3 * INTERVAL)
        assert not [r for r in store.items(Kind.ROUTE) if r.service == "grafana"]  # critical
        c.agent.check.ttl_pass("service:grafana-1")
        wanted = {instance_name(a) for a in fabio.addresses}
        wait_for(lambda: carriers(store, "grafana") == wanted, timeout=5)
        route = next(r for r in store.items(Kind.ROUTE) if r.service == "grafana")
        assert (route.host, route.path, route.dst) == ("grafana.jamfox.dev", "/",
                                                       "http://127.0.0.1:3000/")
    finally:
        with contextlib.suppress(consul.ConsulException):
            c.agent.service.deregister("grafana-1")
    wait_for(lambda: not [r for r in store.items(Kind.ROUTE) if r.service == "grafana"],
             timeout=5)


def test_a_moving_table_reads_every_instance_at_most_every_full_every(
        lab: Lab, fabio: FabioSource) -> None:
    """Flapping checks move Fabio's table often: each move must not cost every instance.
    The tables read at the start count as read: a move a minute after start made a pass over
    every instance at once (100 MB at 100 Fabios), as if none had been read (#17)."""
    fabio.full_every = 3600.0
    inst = lab.call(lambda: next(c for c in lab.world.checks.values()
                                 if c.service_name == "example"))
    before, passes = asked(lab), fabio.passes
    try:
        for status in ("critical", "passing", "critical", "passing"):
            lab.call(lab.world.set_check, inst.node, inst.check_id, status, "")
            time.sleep(2 * INTERVAL)
        count = {k: n - before.get(k, 0) for k, n in asked(lab).items()}
        assert sum(count.values()) <= 12, count  # one per interval, no fan-out per move
        assert fabio._stale and fabio.passes == passes  # moved, and no pass over all
        # every instance's routes still follow, each in its turn
        wait_for(lambda: carriers(fabio.store, "example") == {
            instance_name(a) for a in fabio.addresses}, timeout=5)
    finally:
        lab.call(lab.world.set_check, inst.node, inst.check_id, "passing", "HTTP GET: 200 OK")


def test_the_engine_asks_every_fabio_while_routes_are_shown(lab: Lab, tmp_path: Path) -> None:
    from jamtui.engine import Engine

    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    engine = Engine(load_config(path, env=lab.env()))  # not started: no thread, no request
    fabio = engine.sources["fabio"]
    assert isinstance(fabio, FabioSource) and not fabio.foreground
    engine.showing({"routes", "services", "vms"})  # :routes, or :fabio
    assert fabio.foreground and fabio._wake.is_set()  # read them all now, not in 5 s
    engine.showing({"hypervisors", "vms", "services", "allocations"})  # the overview
    assert not fabio.foreground


# -- at scale: the first picture from one table, the others in the background (issue #17) ---


def _source(lab: Lab, tmp_path: Path) -> FabioSource:
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    return FabioSource(Store(), load_config(path, env=lab.env()).fabio,
                       poll_interval=INTERVAL)


def _route_hop(store: Store, target: str = "example.jamfox.dev/") -> Any:
    from jamtui.routing import trace

    return next(h for h in trace(store, target).hops if h.layer == "route")


def test_the_first_picture_is_one_instance_s_table_said_so(lab: Lab, tmp_path: Path) -> None:
    """One interval reads one table: published at once, with the health, `:fabio` and the
    trace saying which instance it came from and that the others were not read yet (not
    that they lack the routes); a pass then reads them all."""
    from jamtui.route_book import RouteBook
    from jamtui.ui.columns import fabio_carriers

    src = _source(lab, tmp_path)
    store = src.store
    names = sorted(instance_name(a) for a in src.addresses)
    before = asked(lab)
    src.sample()
    count = {k: n - before.get(k, 0) for k, n in asked(lab).items() if n > before.get(k, 0)}
    assert sum(count.values()) == 1, count  # one table, not three
    routes = store.items(Kind.ROUTE)
    assert routes and len({r.fabios for r in routes}) == 1
    (first,) = routes[0].fabios
    others = [n for n in names if n != first]
    assert routes[0].unread == tuple(others) and routes[0].read == (first,)
    status = store.backend("fabio")
    assert status.health is Health.OK
    assert status.last_error == f"routes as read from {first}; 2 instances not read yet"
    assert fabio_carriers(routes[0]) == f"{first} (2 not read yet)"
    for hop in (_route_hop(store), next(h for h in next(
            r for r in RouteBook(store).rows() if r.id == "example.jamfox.dev/").chain.hops
            if h.layer == "route")):
        assert hop.ok and f"routes as read from {first}" in hop.detail
        assert "2 Fabio instances not read yet" in hop.detail
        assert "no route on" not in str(hop.to_dict())  # unread is not lacking
        unread = next(c for c in hop.children if "not read yet" in c.detail)
        assert unread.ok and all(n in unread.name for n in others)
    src.full_pass()
    routes = store.items(Kind.ROUTE)
    assert {r.fabios for r in routes} == {tuple(names)} and not routes[0].unread
    assert store.backend("fabio").health is Health.OK and not store.backend("fabio").last_error
    hop = _route_hop(store)
    assert "route on 3/3 Fabios" in hop.detail and "not read" not in str(hop.to_dict())
    assert fabio_carriers(routes[0]) == "all 3"


def test_the_others_are_read_in_the_background(lab: Lab, tmp_path: Path) -> None:
    src = _source(lab, tmp_path)
    src.start()
    try:
        wait_for(lambda: src.ready.is_set(), timeout=10)
        wait_for(lambda: not src.reading(), timeout=10)
        assert src.passes >= 1
        routes = src.store.items(Kind.ROUTE)
        # identical tables: each route held once, carried by every instance
        assert {r.fabios for r in routes} == {tuple(sorted(src.names.values()))}
        assert len(routes) == len({(r.host, r.path, r.dst) for r in routes})
    finally:
        src.stop()


def test_the_background_pass_waits_for_the_cockpit_s_first_frame(
        lab: Lab, tmp_path: Path) -> None:
    """At 100 instances the pass read 99 tables while the cockpit drew its first frame, in the
    same process (#17). Until `first_frame` is set, one table only (the first picture, read
    at once); then the others; routes on screen do not wait."""
    import threading

    src = _source(lab, tmp_path)
    src.first_frame = threading.Event()
    src.start()
    try:
        wait_for(lambda: src.ready.is_set(), timeout=10)
        time.sleep(6 * INTERVAL)  # polls: one table each (in turn), no pass
        assert src.passes == 0
        src.first_frame.set()  # (the polls may have read all three in turn meanwhile)
        wait_for(lambda: not src.reading(), timeout=10)
    finally:
        src.stop()
    src = _source(lab, tmp_path)
    src.first_frame = threading.Event()
    src.start()
    try:
        wait_for(lambda: src.ready.is_set(), timeout=10)
        src.set_foreground(True)  # `:routes` opened before the first frame: read at once
        wait_for(lambda: src.passes >= 1 and not src.reading(), timeout=10)
    finally:
        src.stop()


def test_a_one_shot_command_reads_one_table_and_says_so(lab: Lab, tmp_path: Path) -> None:
    """`status`/`snapshot` (`Source.once`) print the first picture: the others' tables (1 MB
    each at 100 instances) are not read meanwhile, where they took the CPU and the lab's
    time the answer waited for (#17); the health says what was not read."""
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    # the next poll (another instance in turn) far off: what is read is the first picture
    src = FabioSource(Store(), load_config(path, env=lab.env()).fabio, poll_interval=60)
    src.once = True
    before = sum(asked(lab).values())
    src.start()
    try:
        wait_for(lambda: src.ready.is_set(), timeout=10)
        time.sleep(1.5)  # a pass would have read the others by now (it starts at once)
        assert [t.name for t in src._threads] == ["fabio:poll"]
        assert src.passes == 0 and sum(asked(lab).values()) - before == 1
        # its table decoded as it came, not digested twice first (with and without its
        # metrics: 10-15 ms of CPU for the 1 MB table at 5k) for a sharing it has no use for
        assert src.decoded == 1 and not src._digests and not src._digest_of
        unread = len(src.addresses) - 1
        assert f"{unread} instances not read yet" in src.store.backend("fabio").last_error
    finally:
        src.stop()


def test_an_instance_down_from_the_start_is_down_not_lacking(lab: Lab, tmp_path: Path) -> None:
    src = _source(lab, tmp_path)
    victim = src.addresses[2]
    node = next(k for k, u in lab.urls.items() if u.rstrip("/") == victim)
    lab.set_fault(node, "down")
    try:
        src.sample()
        src.full_pass()
        status = src.store.backend("fabio")
        assert status.health is Health.DEGRADED and instance_name(victim) in status.last_error
        assert "1 instance not read yet" in status.last_error
        route = src.store.items(Kind.ROUTE)[0]
        assert route.unread == (instance_name(victim),)
        hop = _route_hop(src.store)
        assert hop.ok and "route on 2/2 Fabios read" in hop.detail
        assert "1 Fabio instance not read yet" in hop.detail
    finally:
        lab.clear_fault(node)


def test_an_instance_with_another_table_disagrees_once_read(lab: Lab, tmp_path: Path) -> None:
    """A Fabio whose Consul watch lags keeps its old table: read in the pass, it is named as
    lacking the new route (it was read), while before that it was only not read yet."""
    src = _source(lab, tmp_path)
    lagging = src.addresses[2]
    node = next(k for k, u in lab.urls.items() if u.rstrip("/") == lagging).split(":")[1]
    u = urlsplit(lab.urls["consul"])
    c = consul.Consul(host=u.hostname, port=u.port, token=lab.secrets.consul_token)
    lab.freeze_fabio(node)
    try:
        c.agent.service.register("grafana", service_id="grafana-1", address="127.0.0.1",
                                 port=3000, tags=["urlprefix-grafana.jamfox.dev/"],
                                 check=consul.Check.ttl("30s"))
        c.agent.check.ttl_pass("service:grafana-1")
        from jamtui.sim.fabio import targets

        wait_for(lambda: lab.call(lambda: any(t.service == "grafana"
                                              for t in targets(lab.world))), timeout=5)
        src.sample()  # the first instance (in turn): it has the route
        assert any(r.service == "grafana" for r in src.store.items(Kind.ROUTE))
        hop = _route_hop(src.store, "grafana.jamfox.dev/")
        assert hop.ok and "no route on" not in str(hop.to_dict())
        src.full_pass()
        hop = _route_hop(src.store, "grafana.jamfox.dev/")
        assert "route on 2/3 Fabios" in hop.detail
        lacking = next(h for h in hop.children if not h.ok)
        assert lacking.name == instance_name(lagging) and "no route on 1/3" in lacking.detail
        assert src.decoded >= 2  # two different tables, each decoded once
    finally:
        lab.freeze_fabio(node, False)
        with contextlib.suppress(consul.ConsulException):
            c.agent.service.deregister("grafana-1")


def test_identical_tables_are_held_once_whatever_their_metrics() -> None:
    """Real Fabio puts each instance's own metrics in every route (rate1, pct99) and joins a
    route's options from a Go map: bodies differ where the tables do not."""
    import json

    from jamtui.config import FabioConfig

    src = FabioSource(Store(), FabioConfig(addresses=("http://a:9998", "http://b:9998")))

    def body(rate: float, opts: str) -> bytes:
        return json.dumps([{"service": "web", "host": "w.dev", "path": "/", "src": "w.dev/",
                            "dst": "http://10.0.0.1:80/", "opts": opts, "weight": 1,
                            "cmd": "route add", "rate1": rate, "pct99": rate * 2}]).encode()

    one = src._table("a:9998", body(0.0, "strip=/x proto=https"))
    two = src._table("b:9998", body(3.5, "proto=https strip=/x"))
    assert one is two and src.decoded == 2
    assert src._table("b:9998", body(3.5, "proto=https strip=/x")) is one  # not decoded
    # the same table with other metrics: not decoded either (compared without them)
    assert src._table("b:9998", body(7.25e-05, "proto=https strip=/x")) is one
    assert src.decoded == 2 and one[0][5] == "proto=https strip=/x"
    changed = src._table("b:9998", body(7.25e-05, "proto=http"))  # what routing needs moved
    assert changed is not one and src.decoded == 3 and changed[0][5] == "proto=http"


def test_a_pass_waits_a_multiple_of_its_own_duration() -> None:
    """A pass over every instance costs a share of a core at most: after one that took 10 s,
    the next waits 200 s in the background (an unread instance or not), 50 s on screen; and
    passes read `WIRE_BUDGET` bytes a second at most."""
    from jamtui.config import FabioConfig
    from jamtui.sources.fabio import BACKGROUND_PACE, FOREGROUND_PACE, WIRE_BUDGET

    src = FabioSource(Store(), FabioConfig(addresses=("http://a:9998", "http://b:9998")))
    src._tables["a:9998"] = ()  # b not read yet: a pass is wanted (of b alone)
    now = time.monotonic()
    src._pass_took, src._pass_at = 10.0, now - 10.0
    src._pass_end = src._full_at = now
    assert src._pass_wanted() == "unread" and not src._pass_due()
    src._pass_end = now - BACKGROUND_PACE * 10.0 - 1
    assert src._pass_due()
    src._tables["b:9998"] = ()  # every one read, nothing moved: no pass, however long ago
    assert not src._pass_wanted() and not src._pass_due()
    src.foreground = True  # on screen: every interval, paced at its own multiple
    src._pass_end = src._full_at = now - FOREGROUND_PACE * 10.0 + 1
    assert src._pass_wanted() == "all" and not src._pass_due()
    src._pass_end = now - FOREGROUND_PACE * 10.0 - 1
    assert src._pass_due()
    src._pass_bytes = 100 * WIRE_BUDGET  # 100 tables of 2 MB: the wire's budget sets it
    assert not src._pass_due()
    src._pass_end = now - 101
    assert src._pass_due()
    src._pass_took, src._pass_bytes, src._pass_end = 0.001, 0, now  # a pass of a millisecond
    assert not src._pass_due()  # the next waits an interval all the same, not 20 ms


def test_an_instance_failing_its_reads_does_not_keep_the_others_unread(
        lab: Lab, fabio: FabioSource) -> None:
    """One instance answering 500 for good: the interval's read still goes round the
    others (it used to stay on the failing one, "back" every interval)."""
    node = next(k for k, u in lab.urls.items() if u.rstrip("/") == fabio.addresses[0])
    lab.set_fault(node, "error")
    try:
        wait_for(lambda: fabio.store.backend("fabio").health is Health.DEGRADED, timeout=5)
        count = served(lab, 6 * INTERVAL)
        others = sum(n for k, n in count.items() if k != node.split(":")[1])
        assert others >= 2, count
    finally:
        lab.clear_fault(node)


def test_the_first_picture_comes_from_another_instance_when_one_fails(
        lab: Lab, tmp_path: Path) -> None:
    src = _source(lab, tmp_path)
    node = next(k for k, u in lab.urls.items() if u.rstrip("/") == src.addresses[0])
    lab.set_fault(node, "error")
    try:
        src.sample()
        route = src.store.items(Kind.ROUTE)[0]
        assert route.fabios == (instance_name(src.addresses[1]),)
        status = src.store.backend("fabio")
        assert status.health is Health.DEGRADED and "failed (500" in status.last_error
        assert "routes as read from" in status.last_error
    finally:
        lab.clear_fault(node)


def test_the_port_probe_is_one_thread_and_one_name_lookup_per_host(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue #17 (idle CPU): every interval each instance's port is tried; 100 instances took
    8 threads made each time and a name lookup per port. Now: in the calling thread, one
    lookup per host, and still the words for a closed port and "" for a listening one."""
    import socket
    import threading

    from jamtui.config import FabioConfig

    listening = [socket.socket() for _ in range(6)]
    closed = socket.socket()
    for s in [*listening, closed]:
        s.bind(("127.0.0.1", 0))
    for s in listening:
        s.listen(8)
    refused = closed.getsockname()[1]
    closed.close()  # (bound once, then let go: nothing listens there)
    addresses = [f"http://127.0.0.1:{s.getsockname()[1]}" for s in listening]
    addresses.append(f"http://127.0.0.1:{refused}")
    src = FabioSource(Store(), FabioConfig(addresses=addresses))
    lookups: list[Any] = []
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda *a, **k: lookups.append(a[0]) or real(*a, **k))
    threads = threading.active_count()
    started: list[Any] = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start",
                        lambda self: started.append(self) or real_start(self))
    try:
        verdicts = src._connect_all(src.addresses)
    finally:
        for s in listening:
            s.close()
    assert verdicts[:-1] == [""] * len(listening)
    assert "connection refused" in verdicts[-1] and addresses[-1] in verdicts[-1]
    assert lookups == ["127.0.0.1"]
    assert not started and threading.active_count() == threads


def test_a_moved_table_writes_only_the_routes_that_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue #17 (idle CPU at 5k): one instance's table moving by one route rebuilt and
    compared every route (4,800 records, 40-80 ms each time the interval's read found a moved
    table). Only the routes an instance gained or lost are made and written, and the store
    ends as a whole new picture would make it."""
    from jamtui import model
    from jamtui.config import FabioConfig
    from jamtui.sources import fabio as fabio_module

    made: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> model.Route:
        made.append(1)
        return model.Route(*args, **kwargs)

    monkeypatch.setattr(fabio_module, "Route", counted)
    addresses = ("http://a:9998", "http://b:9998", "http://c:9998")
    src = FabioSource(Store(), FabioConfig(addresses=addresses))
    rows = tuple((f"s{n}", f"s{n}.dev", "/", f"http://10.0.0.{n}:80/", 1.0, "")
                 for n in range(200))
    for name in ("a:9998", "b:9998", "c:9998"):
        src._tables[name] = rows
    src._publish_routes()
    seen: list[tuple[str, str]] = []
    src.store.subscribe(lambda changes: seen.extend((c.id, c.op) for c in changes))
    moved = (*rows[:-1], ("s199", "s199.dev", "/", "http://10.0.9.9:80/", 1.0, ""))
    made.clear()
    src._tables["b:9998"] = moved  # b's table moved: one target replaced
    src._publish_routes()
    old, new = (model.Route("", *r, fabios=("x",)).id for r in (rows[-1], moved[-1]))
    assert sorted(seen) == sorted([(old, "changed"), (new, "added")]) and len(made) == 2
    assert src.store.get(Kind.ROUTE, old).fabios == ("a:9998", "c:9998")
    assert src.store.get(Kind.ROUTE, new).fabios == ("b:9998",)
    src._tables["a:9998"] = src._tables["c:9998"] = moved  # the others follow: old one gone
    src._tables["b:9998"] = rows[:-1]  # and b lost it again
    src._publish_routes()

    whole = FabioSource(Store(), FabioConfig(addresses=addresses))  # a picture made anew
    whole._tables = dict(src._tables)
    whole._publish_routes()
    assert src.store.get(Kind.ROUTE, old) is None
    assert {r.id: r for r in src.store.items(Kind.ROUTE)} == {
        r.id: r for r in whole.store.items(Kind.ROUTE)}


def test_the_pass_thread_sleeps_until_a_pass_is_due(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue #17 (idle CPU): the pass thread looked four times a second, over every instance,
    for passes due every few minutes; it sleeps until one can be due (an interval at most),
    is woken at once by a view of routes, and by a stop."""
    import threading

    from jamtui.config import FabioConfig

    src = FabioSource(Store(), FabioConfig(addresses=("http://a:9998", "http://b:9998")),
                      poll_interval=5.0)
    src._tables = {"a:9998": (), "b:9998": ()}  # every instance read, nothing moved
    looks: list[float] = []
    passes: list[bool] = []
    wanted = src._pass_wanted
    monkeypatch.setattr(src, "_pass_wanted", lambda: looks.append(1) or wanted())
    monkeypatch.setattr(src, "full_pass", lambda *a, **k: passes.append(src.foreground)
                        or src.set_foreground(False))  # (a pass's clock is not moved)
    thread = threading.Thread(target=lambda: src.loop(src._passes, "routes"), daemon=True)
    thread.start()
    time.sleep(1.0)
    assert len(looks) <= 3 and not passes, looks  # it looked 8 times
    src.set_foreground(True)
    wait_for(lambda: passes == [True], timeout=2)
    started = time.monotonic()
    src.stop()
    thread.join(2)
    assert not thread.is_alive() and time.monotonic() - started < 1
