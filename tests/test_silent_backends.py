"""A backend that does not answer is never "all is well": `status` and `snapshot --json` list it
as down ("no answer in N s") and exit 1; a failing Consul or Nomad shows within seconds even
while the watches are long-held requests (the liveness probe)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.headless import exit_code, render_status, snapshot, snapshot_exit_code
from jamtui.model import Health
from jamtui.sim.lab import Lab
from tests.conftest import FAST
from tests.helpers import wait_for
from tests.test_headless import run


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=5, tick=0.2, traffic=False, **FAST) as running:
        yield running


@pytest.fixture
def config(lab: Lab, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    yield path
    lab.clear_fault()


@pytest.fixture
def silent_socket() -> Iterator[str]:
    """A port that accepts connections (the kernel completes them) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def _backends(doc: dict) -> dict[str, dict]:
    return {b["name"]: b for b in doc["backends"]}


@pytest.mark.parametrize("kind", ["hang", "slow"])
def test_status_and_snapshot_list_a_backend_that_did_not_answer_as_down(
        lab: Lab, config: Path, kind: str) -> None:
    # slow: each answer takes 1 s, so Consul's first whole read takes far more than 3 s
    lab.set_fault("consul", kind)
    out = run(["status", "--timeout", "3", "--config", str(config)], lab.env())
    assert out.returncode == 1, out.stdout + out.stderr
    row = out.stdout[out.stdout.index("consul"):]
    assert "down" in row.split("\n")[0]
    assert "no answer in 3 s" in " ".join(out.stdout.split())
    if kind == "hang":
        snap = run(["snapshot", "--json", "--timeout", "3", "--config", str(config)],
                   lab.env())
        assert snap.returncode == 1, snap.stderr
        consul = _backends(json.loads(snap.stdout))["consul"]
        assert consul["health"] == "down" and "no answer in 3 s" in consul["last_error"]
        assert consul["waiting_since"] is not None


def test_a_socket_that_never_answers_is_down_not_missing(
        lab: Lab, config: Path, silent_socket: str) -> None:
    text = config.read_text().replace(f'[consul]\naddress = "{lab.urls["consul"]}"',
                                      f'[consul]\naddress = "{silent_socket}"')
    config.write_text(text)
    env = {k: v for k, v in lab.env().items() if k != "CONSUL_HTTP_ADDR"}
    engine = Engine(load_config(config, env=env))
    assert engine.sources["consul"].address == silent_socket
    engine.start()
    try:
        # before any answer the backend is listed as waiting, not left out
        assert engine.store.backend("consul").waiting
        # the others answer first, however loaded the machine: the 2 s are the silent one's
        wait_for(lambda: all(s.ready.is_set() for n, s in engine.sources.items()
                             if n != "consul"), timeout=30)
        assert engine.settle(2) == {"consul"}
        configured = set(engine.sources)
        consul = engine.store.backend("consul")
        assert consul.health is Health.DOWN and "no answer in 2 s" in consul.last_error
        assert exit_code(engine.store, configured) == 1
        assert snapshot_exit_code(engine.store, configured) == 1
        assert _backends(snapshot(engine.store))["consul"]["health"] == "down"
        console = Console(record=True, width=200)
        render_status(engine.store, console, configured)
        printed = console.export_text().splitlines()
        line = next(x for x in printed if x.startswith("consul"))
        assert "down" in line and "no answer in 2 s" in line
        # not "Services none": nobody said there were none
        services = next(x for x in printed if x.startswith("Services"))
        assert "unknown: consul has not answered" in services
        assert "none" not in next(x for x in printed if x.startswith("Allocations"))
        # the ones that did answer are not blamed
        assert engine.store.backend("nomad").health is Health.OK
    finally:
        engine.stop()


def test_all_answering_exits_0(lab: Lab, config: Path) -> None:
    engine = Engine(load_config(config, env=lab.env()))
    engine.start()
    try:
        assert engine.settle(10) == set()
        configured = set(engine.sources)
        assert exit_code(engine.store, configured) == 0
        assert snapshot_exit_code(engine.store, configured) == 0
        assert not any(b.waiting for b in engine.store.backends())
    finally:
        engine.stop()


@pytest.fixture
def watching(lab: Lab, config: Path) -> Iterator[Engine]:
    """The cockpit's engine, settled; the probe runs every poll interval (at most 5 s)."""
    config.write_text("poll_interval = 2.0\n" + config.read_text())
    engine = Engine(load_config(config, env=lab.env()))
    engine.start()
    try:
        assert engine.wait_ready(10)
        wait_for(lambda: engine.store.backend("consul").health is Health.OK, timeout=10)
        yield engine
    finally:
        engine.stop()


def test_a_failing_consul_shows_within_seconds_despite_held_queries(
        lab: Lab, watching: Engine) -> None:
    store = watching.store
    time.sleep(0.5)  # every watch is now a held query (60 s)
    for kind, words in (("error", "failed (500"), ("malformed", "malformed answer")):
        lab.set_fault("consul", kind)
        start = time.monotonic()
        wait_for(lambda: store.backend("consul").health is Health.DOWN, timeout=15)
        took = time.monotonic() - start
        assert took < 8, f"{kind}: noticed after {took:.1f} s"
        assert words in store.backend("consul").last_error
        lab.clear_fault("consul")
        wait_for(lambda: store.backend("consul").health is Health.OK, timeout=15)


def test_a_wedged_consul_and_nomad_show_as_down(lab: Lab, watching: Engine) -> None:
    store = watching.store
    wait_for(lambda: store.backend("nomad").health is Health.OK, timeout=10)
    time.sleep(0.5)
    lab.set_fault("consul", "hang")
    lab.set_fault("nomad", "hang")
    start = time.monotonic()
    wait_for(lambda: store.backend("consul").health is Health.DOWN
             and store.backend("nomad").health is Health.DOWN, timeout=20)
    took = time.monotonic() - start
    assert took < 14, f"noticed after {took:.1f} s"
    assert "did not answer" in store.backend("nomad").last_error
    lab.clear_fault()
    wait_for(lambda: store.backend("consul").health is Health.OK
             and store.backend("nomad").health is Health.OK, timeout=20)


def test_doctor_says_a_silent_backend_did_not_answer(lab: Lab, config: Path) -> None:
    from jamtui.doctor import run_doctor

    lab.set_fault("consul", "hang")
    findings = [f for f in run_doctor(load_config(config, env=lab.env()), timeout=1)
                if f.backend == "consul"]
    assert findings and not all(f.ok for f in findings)
    assert any("did not answer" in f.detail for f in findings), findings
