"""`snapshot --json` reads Nomad and Consul in processes of their own (`jamtui.apart`): the
document is the one a single process writes, and a reader process that fails or hangs is its
backend down, in words, with the rest of the document still written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jamtui.sim.lab import Lab
from tests.conftest import CLIENT_ENV, FAST

# runs `jamtui snapshot --json` with `jamtui.apart` changed as the test says (PATCH), and says
# on stderr which backends were read apart (a fork that returned a reader)
_RUN = """
import os, sys, time
import jamtui.apart as apart
PATCH = os.environ["PATCH"]
if PATCH == "one-process":
    apart.APART = ()
elif PATCH == "child-dies":
    apart._child = lambda *a: os._exit(3)
elif PATCH == "child-hangs":
    apart._child = lambda *a: time.sleep(120)
fork = apart.fork_reader
def told(engine, name, timeout):
    got = fork(engine, name, timeout)
    if got is not None:
        print("APART", name, file=sys.stderr, flush=True)
    return got
apart.fork_reader = told
sys.argv[0] = "jamtui"
from jamtui.cli import main
sys.exit(main())
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    # no tick (drift, flapping) between the reads compared
    with Lab(seed=6, tick=3600, traffic=False, log_rate=0.0, **FAST) as running:
        running.wait_settled()
        yield running


@pytest.fixture
def config(lab: Lab, tmp_path: Path) -> Path:
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    return path


def snapshot(lab: Lab, config: Path, patch: str, *args: str
             ) -> tuple[subprocess.CompletedProcess[str], set[str], float]:
    env = {**{k: v for k, v in os.environ.items() if k not in CLIENT_ENV}, **lab.env(),
           "PATCH": patch}
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", _RUN, "snapshot", "--json", "--config",
                          str(config), *args], env=env, capture_output=True, text=True,
                         timeout=60)
    apart = {ln.split()[1] for ln in out.stderr.splitlines() if ln.startswith("APART ")}
    return out, apart, time.monotonic() - t0


def _steady(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without what moves between two reads of a still lab: when it was taken,
    how each backend answered (its times; a slow answer on a loaded machine is "degraded":
    the health of a reader process is tested below), HAProxy's traffic counters (its own
    health checks), and what is counted in seconds of a clock: a guest's and a hypervisor's
    uptime, the time since a server's last change."""
    doc = dict(doc)
    del doc["taken_at"]
    doc["backends"] = [{"name": b["name"], "address": b["address"]} for b in doc["backends"]]
    moving = {"haproxy": ("sessions_total", "request_rate", "requests_total", "last_change"),
              "vms": ("uptime",), "hypervisors": ("uptime",)}  # (in seconds, from a clock)
    for key, names in moving.items():
        doc[key] = [{k: v for k, v in r.items() if k not in names and not k.startswith("hrsp_")}
                    for r in doc[key]]
    return doc


def test_the_document_is_the_one_a_single_process_writes(lab: Lab, config: Path) -> None:
    # read apart between two reads in one process; compared once the lab held still for all
    # three (a guest's agent may still report its address as the lab settles)
    for _ in range(5):
        before, none_apart, _ = snapshot(lab, config, "one-process")
        alone, apart, _ = snapshot(lab, config, "none")
        after, _, _ = snapshot(lab, config, "one-process")
        assert before.returncode == alone.returncode == after.returncode == 0, alone.stderr
        assert none_apart == set() and apart == {"nomad", "consul"}
        one = json.loads(before.stdout)
        if _steady(one) == _steady(json.loads(after.stdout)):
            break
    else:
        pytest.fail("the lab did not hold still for three snapshots in a row")
    doc = json.loads(alone.stdout)
    assert doc["allocations"] and doc["services"] and doc["quorum"]
    assert {q["id"] for q in doc["quorum"]} == {"nomad", "consul"}
    assert _steady(doc) == _steady(one)
    # and the text itself: each record on its line, as one process writes it
    lines = [ln for ln in alone.stdout.splitlines() if '"taken_at"' not in ln]
    assert len(lines) == len([ln for ln in before.stdout.splitlines() if '"taken_at"' not in ln])
    assert next(ln for ln in lines if '"allocations"' in ln) == '  "allocations": ['


def test_a_reader_process_that_dies_is_its_backend_down(lab: Lab, config: Path) -> None:
    out, apart, _ = snapshot(lab, config, "child-dies")
    assert apart == {"nomad", "consul"}
    assert out.returncode == 1  # a backend down: its part of the document is missing
    doc = json.loads(out.stdout)
    backends = {b["name"]: b for b in doc["backends"]}
    for name in ("nomad", "consul"):
        assert backends[name]["health"] == "down"
        assert "ended without an answer" in backends[name]["last_error"]
    assert doc["allocations"] == [] and doc["services"] == []
    # what the command read itself is all there
    assert backends["proxmox"]["health"] == "ok" and doc["vms"] and doc["routes"]


def test_a_reader_process_that_hangs_is_ended_at_the_timeout(lab: Lab, config: Path) -> None:
    out, apart, took = snapshot(lab, config, "child-hangs", "--timeout", "1")
    assert apart == {"nomad", "consul"}
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    backends = {b["name"]: b for b in doc["backends"]}
    assert backends["nomad"]["health"] == "down"
    assert backends["nomad"]["last_error"].startswith("no answer in 1 s from ")
    assert "ended" in backends["nomad"]["last_error"]
    assert doc["vms"]
    assert took < 20  # the timeout and its grace, not the child's two minutes
