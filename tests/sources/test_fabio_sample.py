"""Fabio without asking every instance every interval (issue #17): one instance in turn while
no view of routes is on screen, all of them when something moved or while routes are shown;
an instance that stops listening still shows within an interval. Counted at the lab's
Fabio instances."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
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
    """Flapping checks move Fabio's table often: each move must not cost every instance."""
    fabio.full_every = 3600.0
    inst = lab.call(lambda: next(c for c in lab.world.checks.values()
                                 if c.service_name == "example"))
    before = asked(lab)
    try:
        for status in ("critical", "passing", "critical", "passing"):
            lab.call(lab.world.set_check, inst.node, inst.check_id, status, "")
            time.sleep(2 * INTERVAL)
        count = {k: n - before.get(k, 0) for k, n in asked(lab).items()}
        assert sum(count.values()) <= 12, count  # one per interval, no fan-out per move
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
