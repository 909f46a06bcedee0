"""Every source against the running lab, through the engine, as `jamtui status` uses them:
the first picture, changes arriving through the change feeds, cross-links, failures as
health in words, stale data kept, and tokens never leaking."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.config import Config, load_config
from jamtui.engine import Engine
from jamtui.model import Health, Kind
from jamtui.sim.lab import Lab
from tests.conftest import FAST
from tests.helpers import wait_for


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Lab, Engine]]:
    with Lab(seed=2, tick=0.2, traffic=False, **FAST) as lab:
        path = tmp_path / "jamtui.toml"
        path.write_text("poll_interval = 0.5\n" + lab.config_toml())
        cfg = load_config(path, env=lab.env())
        engine = Engine(cfg)
        engine.start()
        try:
            assert engine.wait_ready(10)
            yield lab, engine
        finally:
            engine.stop()



def test_the_first_picture_is_whole_and_linked(live: tuple[Lab, Engine]) -> None:
    _lab, engine = live
    store = engine.store
    assert {b.name: b.health for b in store.backends()} == dict.fromkeys(
        ("consul", "fabio", "haproxy", "nomad", "proxmox"), Health.OK)
    assert sorted(h.name for h in store.items(Kind.HYPERVISOR)) == ["pve1", "pve2"]
    vms = {v.name: v for v in store.items(Kind.VM)}
    assert vms["vb0"].group == "vb" and vms["vs1"].group == "vs"
    assert vms["vs1"].ip is not None and vms["vs1"].ip.startswith("192.168.42.")
    allocs = [a for a in store.items(Kind.ALLOCATION) if a.job_id == "example"]
    assert len(allocs) == 3 and all(a.client_status == "running" for a in allocs)
    node, vm, hv = store.chain_of(allocs[0])
    assert node is not None and vm is not None and hv is not None
    assert vm.name == node.name and hv.name == vm.node
    instances = store.instances_of_alloc(allocs[0].id)
    assert [i.service for i in instances] == ["example"]
    assert store.alloc_of(instances[0]) == allocs[0]
    routes = store.items(Kind.ROUTE)
    assert {r.host for r in routes} >= {"example.jamfox.dev", "api.jamfox.dev"}
    rows = {r.id: r for r in store.items(Kind.HAPROXY)}
    assert rows["http/FRONTEND"].type == "frontend" and rows["fabio/BACKEND"].type == "backend"
    quorum = {q.system: q for q in store.items(Kind.QUORUM)}
    assert quorum["consul"].failure_tolerance == 1 and quorum["nomad"].has_leader
    assert {i.destination for i in store.items(Kind.INTENTION)} == {"db"}
    volumes = {s.id: s for s in store.items(Kind.STORAGE) if s.backend == "nomad"}
    assert volumes["vs0/pgdata"].content == "/mnt/nfs/nomad/pgdata"
    assert volumes["nomad/media"].type == "nomad csi volume"
    assert {s.backend for s in store.items(Kind.STORAGE)} == {"proxmox", "nomad"}


def test_changes_arrive_through_the_feeds_quickly(live: tuple[Lab, Engine]) -> None:
    lab, engine = live
    store = engine.store
    victim = next(a for a in store.items(Kind.ALLOCATION) if a.job_id == "example")
    started = time.monotonic()
    lab.call(lab.world.stop_alloc, victim.id)
    wait_for(lambda: store.get(Kind.ALLOCATION, victim.id).desired_status == "stop")
    assert time.monotonic() - started < 1.0  # the Nomad event stream, not a poll

    inst = next(i for i in store.items(Kind.INSTANCE) if i.service == "api")
    check = next(c for c in inst.checks if c.service_id)
    started = time.monotonic()
    lab.call(lab.world.set_check, inst.node, check.check_id, "critical", "HTTP GET: 503")
    wait_for(lambda: store.get(Kind.INSTANCE, inst.id).status == "critical")
    assert time.monotonic() - started < 1.0  # a Consul blocking query, not a poll


def test_a_down_backend_is_stale_not_empty_and_comes_back(live: tuple[Lab, Engine]) -> None:
    lab, engine = live
    store = engine.store
    before = store.count(Kind.SERVICE)
    lab.set_fault("consul", "down")
    try:
        wait_for(lambda: store.backend("consul").health is Health.DOWN, timeout=10)
        status = store.backend("consul")
        assert "cannot reach" in status.last_error and "consul" in status.last_error
        assert store.count(Kind.SERVICE) == before and store.is_stale(Kind.SERVICE)
    finally:
        lab.clear_fault()
    wait_for(lambda: store.backend("consul").health is Health.OK, timeout=20)


@pytest.mark.parametrize(("backend", "kind", "words"), [
    ("nomad", "forbidden", "refused the token"),
    ("proxmox", "forbidden", "refused the token"),
    ("fabio", "error", "failed (500"),
    ("haproxy", "malformed", "CSV is malformed"),
    ("proxmox", "malformed", "malformed answer"),
    ("consul", "malformed", "malformed answer"),
])
def test_failures_are_words_without_tokens(live: tuple[Lab, Engine], backend: str, kind: str,
                                          words: str) -> None:
    lab, engine = live
    store = engine.store
    lab.set_fault(backend, kind)
    try:
        if backend == "consul":
            # Consul's watches are held queries: the fault shows in the next answer, which
            # a change brings (as it would with a real server going bad)
            check = lab.call(lambda: next(iter(lab.world.checks.values())))
            lab.call(lab.world.set_check, check.node, check.check_id, "warning", "poke")
        wait_for(lambda: words in store.backend(backend).last_error, timeout=10)
        error = store.backend(backend).last_error
        assert store.backend(backend).health is not Health.OK
        for secret in (lab.secrets.nomad_token, lab.secrets.consul_token,
                       lab.secrets.proxmox_token_value):
            assert secret not in error
    finally:
        lab.clear_fault()


def test_status_exit_code_follows_health(live: tuple[Lab, Engine]) -> None:
    from jamtui.headless import exit_code

    lab, engine = live
    configured = set(engine.sources)
    assert exit_code(engine.store, configured) == 0
    lab.set_fault("haproxy", "down")
    try:
        wait_for(lambda: engine.store.backend("haproxy").health is Health.DOWN, timeout=10)
        assert exit_code(engine.store, configured) == 1
    finally:
        lab.clear_fault()


def test_engine_without_optional_backends(tmp_path: Path) -> None:
    cfg = Config()
    engine = Engine(cfg)
    assert "proxmox" not in engine.sources
    assert "not configured" in engine.store.backend("proxmox").last_error


def test_a_stopped_vm_reaches_the_store_and_others_keep_updating(
        live: tuple[Lab, Engine]) -> None:
    lab, engine = live
    store = engine.store
    lab.set_fault("consul", "down")
    try:
        vm = next(v for v in store.items(Kind.VM) if v.name == "vs2")
        lab.call(lab.world.vm_stop, vm.node, vm.vmid)
        # Proxmox (a poll) and Nomad (the event stream) go on while Consul is down
        wait_for(lambda: store.get(Kind.VM, vm.id).status == "stopped", timeout=5)
        node = next(n for n in store.items(Kind.NOMAD_NODE) if n.name == "vs2")
        wait_for(lambda: store.get(Kind.NOMAD_NODE, node.id).status == "down", timeout=5)
        assert store.backend("consul").health is Health.DOWN
    finally:
        lab.clear_fault()


def test_slow_backend_is_degraded_then_ok(live: tuple[Lab, Engine]) -> None:
    lab, engine = live
    store = engine.store
    lab.set_fault("proxmox", "slow", latency=2.2)
    try:
        wait_for(lambda: store.backend("proxmox").health is Health.DEGRADED, timeout=10)
        assert "slowly" in store.backend("proxmox").last_error
    finally:
        lab.clear_fault()
    wait_for(lambda: store.backend("proxmox").health is Health.OK, timeout=10)
