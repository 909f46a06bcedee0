"""Every source against the lab with the read-only tokens a dashboard gets: everything shows,
what the token may not read turns off only its feature (in words, the backend degraded, not
down), and the quorum says what it could check. And a stopped `vb` VM shows as 2 of 3 alive
with failure tolerance 0 in both Raft clusters, with either token."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.headless import snapshot
from jamtui.model import Health, Kind
from jamtui.sim.context import LabSecrets
from jamtui.sim.lab import Lab
from tests.conftest import FAST
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=2, tick=0.2, traffic=False, **FAST) as running:
        yield running


def engine_for(lab: Lab, tmp_path: Path, env: dict[str, str], fast: bool = True) -> Engine:
    path = tmp_path / "jamtui.toml"
    path.write_text(("poll_interval = 0.5\n" if fast else "") + lab.config_toml())
    engine = Engine(load_config(path, env=env))
    engine.start()
    assert engine.wait_ready(10)
    return engine


def test_read_only_tokens_show_everything_and_say_what_is_off(lab: Lab, tmp_path: Path
                                                               ) -> None:
    engine = engine_for(lab, tmp_path, lab.read_only_env())
    store = engine.store
    try:
        wait_for(lambda: {"quorum", "intentions"} <= {
            r.feature for r in store.backend("consul").refused}, timeout=10)
        wait_for(lambda: {"quorum", "volumes"} <= {
            r.feature for r in store.backend("nomad").refused}, timeout=10)
        world = lab.world
        assert store.count(Kind.VM) == lab.call(lambda: len(world.vms) + len(world.containers))
        assert store.count(Kind.ALLOCATION) == lab.call(lambda: len(world.allocs)) > 0
        assert {s.name for s in store.items(Kind.SERVICE)} == set(
            lab.call(world.service_names))
        assert store.count(Kind.NOMAD_NODE) == 3 and store.count(Kind.JOB) > 0
        assert store.count(Kind.MEMBER) == 7
        health = {b.name: b.health for b in store.backends()}
        assert health["nomad"] is Health.DEGRADED and health["consul"] is Health.DEGRADED
        assert health["proxmox"] is Health.OK  # PVEAuditor reads all jamtui shows
        nomad = store.backend("nomad")
        assert "quorum: the token lacks operator:read" in nomad.last_error
        assert "Nomad volumes: not permitted" in nomad.last_error
        # the storage view says why Nomad's CSI rows are missing; host volumes stay
        [volumes] = store.refusals(Kind.STORAGE)
        assert volumes.capability == "namespace:csi-list-volume"
        ids = {s.id for s in store.items(Kind.STORAGE)}
        assert "vs0/pgdata" in ids and "nomad/media" not in ids
        assert [r.capability for r in store.refusals(Kind.INTENTION)] == ["intentions:read"]
        quorum = {q.system: q for q in store.items(Kind.QUORUM)}
        for system in ("nomad", "consul"):
            q = quorum[system]
            assert q.source == "gossip" and "operator:read" in q.note
            assert len(q.alive) == 3 and q.failure_tolerance == 1  # gossip checked them
        doc = snapshot(store)
        nomad_doc = next(b for b in doc["backends"] if b["name"] == "nomad")
        assert nomad_doc["health"] == "degraded"
        assert {r["feature"] for r in nomad_doc["refused"]} == {"quorum", "volumes"}
        for secret in (lab.secrets.nomad_read_token, lab.secrets.consul_read_token,
                       lab.secrets.proxmox_read_token_value):
            assert all(secret not in b.last_error for b in store.backends())
    finally:
        engine.stop()


@pytest.mark.parametrize("tokens", ["management", "read-only"])
def test_a_stopped_vb_vm_shows_two_of_three_and_no_tolerance(lab: Lab, tmp_path: Path,
                                                            tokens: str) -> None:
    env = lab.env() if tokens == "management" else lab.read_only_env()
    engine = engine_for(lab, tmp_path, env, fast=False)  # the default 5 s poll interval
    store = engine.store
    vm = lab.call(lambda: next(v for v in lab.world.vms.values() if v.name == "vb2"))
    try:
        wait_for(lambda: {q.system for q in store.items(Kind.QUORUM)} == {"nomad", "consul"},
                 timeout=10)
        started = time.monotonic()
        lab.call(lab.world.vm_stop, vm.node, vm.vmid)

        def both_lost_one() -> bool:
            qs = snapshot(store)["quorum"]
            return len(qs) == 2 and all(
                len(q["alive"]) == 2 and q["failure_tolerance"] == 0 for q in qs)

        wait_for(both_lost_one, timeout=20, step=0.2)
        assert time.monotonic() - started < 20
        for q in snapshot(store)["quorum"]:
            assert len(q["servers"]) == 3 and q["has_leader"]
            assert q["source"] == ("autopilot" if tokens == "management" else "gossip")
            assert not any(a.startswith(vm.ip + ":") for a in q["alive"])
    finally:
        engine.stop()
        lab.call(lab.world.vm_start, vm.node, vm.vmid)
        wait_for(lambda: lab.call(lambda: lab.world.consul_nodes["vb2"].alive), timeout=15)


def test_narrower_tokens_say_what_they_cannot_check(tmp_path: Path) -> None:
    """Consul without node:read (Serf filtered to nothing) and without operator:read: the
    servers come from status/peers and their health is "not checked", never a false
    `consul 0/0 — one more loss loses quorum`. Proxmox without VM.Audit: it lists no VMs
    rather than refusing, and the source says why."""
    secrets = LabSecrets(
        nomad_token=str(uuid.uuid4()), consul_token=str(uuid.uuid4()),
        proxmox_token_value=str(uuid.uuid4()), proxmox_password="pw",
        consul_read_capabilities=frozenset({"service:read"}),
        proxmox_read_privileges=frozenset({"Sys.Audit", "Datastore.Audit"}))
    with Lab(seed=2, tick=0.2, traffic=False, secrets_=secrets, **FAST) as narrow:
        engine = engine_for(narrow, tmp_path, narrow.read_only_env())
        store = engine.store
        try:
            wait_for(lambda: store.get(Kind.QUORUM, "consul") is not None, timeout=10)
            q = store.get(Kind.QUORUM, "consul")
            assert len(q.servers) == 3 and not q.checked and q.failure_tolerance is None
            assert "NOT checked" in q.note
            assert {"members", "quorum"} <= {r.feature for r in store.backend("consul").refused}
            assert store.count(Kind.SERVICE) > 0  # services still show
            wait_for(lambda: store.refusals(Kind.VM), timeout=10)
            [vms] = store.refusals(Kind.VM)
            assert vms.capability == "VM.Audit" and "none are listed" in vms.message
            assert store.count(Kind.VM) == 0 and store.count(Kind.HYPERVISOR) == 2
            assert store.backend("proxmox").health is Health.DEGRADED
        finally:
            engine.stop()


def test_a_consul_token_without_service_read_says_so(tmp_path: Path) -> None:
    """Consul filters the service list to nothing rather than refusing: the empty services
    view says why instead of looking like a lab without services."""
    secrets = LabSecrets(
        nomad_token=str(uuid.uuid4()), consul_token=str(uuid.uuid4()),
        proxmox_token_value=str(uuid.uuid4()), proxmox_password="pw",
        consul_read_capabilities=frozenset({"node:read"}))
    with Lab(seed=2, tick=0.2, traffic=False, secrets_=secrets, **FAST) as narrow:
        engine = engine_for(narrow, tmp_path, narrow.read_only_env())
        try:
            wait_for(lambda: engine.store.refusals(Kind.SERVICE), timeout=10)
            [refusal] = engine.store.refusals(Kind.SERVICE)
            assert refusal.capability == "service:read"
            assert engine.store.count(Kind.SERVICE) == 0
            assert engine.store.count(Kind.MEMBER) == 7  # node:read still reads Serf
            assert engine.store.backend("consul").health is Health.DEGRADED
        finally:
            engine.stop()


def test_the_issue_s_dashboard_token_node_read_and_read_job(tmp_path: Path) -> None:
    """Nomad `node:read` + namespace `read-job` (no list-jobs, no operator:read): the jobs
    view says why it is empty; nodes, allocations and their events stay live."""
    secrets = LabSecrets(
        nomad_token=str(uuid.uuid4()), consul_token=str(uuid.uuid4()),
        proxmox_token_value=str(uuid.uuid4()), proxmox_password="pw",
        nomad_read_capabilities=frozenset({"node:read", "namespace:read-job"}))
    with Lab(seed=2, tick=0.2, traffic=False, secrets_=secrets, **FAST) as narrow:
        engine = engine_for(narrow, tmp_path, narrow.read_only_env())
        store = engine.store
        try:
            wait_for(lambda: store.refusals(Kind.JOB), timeout=10)
            assert [r.capability for r in store.refusals(Kind.JOB)] == ["namespace:list-jobs"]
            assert store.backend("nomad").health is Health.DEGRADED
            assert store.count(Kind.ALLOCATION) == narrow.call(lambda: len(narrow.world.allocs))
            assert store.count(Kind.NOMAD_NODE) == 3 and store.count(Kind.JOB) == 0
            victim = next(a for a in store.items(Kind.ALLOCATION) if a.job_id == "example")
            narrow.call(narrow.world.stop_alloc, victim.id)  # events still arrive
            wait_for(lambda: store.get(Kind.ALLOCATION, victim.id).desired_status == "stop")
            assert store.backend("nomad").health is Health.DEGRADED  # a Job event: no crash
        finally:
            engine.stop()


def test_a_node_event_rereads_the_nomad_quorum_at_once(lab: Lab, tmp_path: Path) -> None:
    """Raft has no change feed: between polls, a Node event (a VM went down with its client)
    makes the source read the servers' health again at once."""
    path = tmp_path / "jamtui.toml"
    path.write_text("poll_interval = 60\n" + lab.config_toml())  # quorum poll: 15 s
    engine = Engine(load_config(path, env=lab.env()))
    engine.start()
    store = engine.store
    vb, vs = lab.call(lambda: [next(v for v in lab.world.vms.values() if v.name == n)
                               for n in ("vb2", "vs1")])
    try:
        assert engine.wait_ready(10)
        wait_for(lambda: store.get(Kind.QUORUM, "nomad") is not None, timeout=10)
        time.sleep(0.5)
        lab.call(lab.world.vm_stop, vb.node, vb.vmid)  # no Nomad event: only the poll sees it
        time.sleep(1.0)
        assert len(store.get(Kind.QUORUM, "nomad").alive) == 3  # not polled yet
        started = time.monotonic()
        lab.call(lab.world.vm_stop, vs.node, vs.vmid)  # its Nomad node goes down: an event
        wait_for(lambda: len(store.get(Kind.QUORUM, "nomad").alive) == 2, timeout=8)
        assert time.monotonic() - started < 8  # well before the 15 s poll
    finally:
        engine.stop()
        for vm in (vb, vs):
            lab.call(lab.world.vm_start, vm.node, vm.vmid)
        wait_for(lambda: lab.call(lambda: lab.world.consul_nodes["vb2"].alive), timeout=15)
        wait_for(lambda: lab.call(lambda: lab.world.consul_nodes["vs1"].alive), timeout=15)
