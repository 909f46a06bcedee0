"""Node add and remove end to end against the lab, through the same workflow code that runs
the real tools (the lab's stand-ins speak their output and act on it): the inventory changes
exactly as intended, the node appears, joins and goes away; failures stop the workflow with
the tool's words; a killed run resumes from its journal; a rejected plan applies nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.config import Config, load_config
from jamtui.engine import Engine
from jamtui.inventory import load_inventory, propose_node
from jamtui.sim.lab import Lab
from jamtui.sources.dns import resolve
from jamtui.workflows.journal import Journal, list_journals
from jamtui.workflows.node import NodeWorkflows
from tests.conftest import CLIENT_ENV, FAST
from tests.helpers import wait_for

pytestmark = pytest.mark.integration

BLOCK = """\
        vs3:
          ansible_host: 192.168.42.33
          vmid: 303
          cores: 4
          memory: 8192
          disk: 64
          hypervisor: pve1
"""


@pytest.fixture
def labcfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Lab, Config]]:
    with Lab(seed=5, tick=0.2, traffic=False, **FAST) as lab:
        path = tmp_path / "jamtui.toml"
        path.write_text("poll_interval = 0.5\n" + lab.config_toml())
        for k, v in lab.env().items():
            monkeypatch.setenv(k, v)
        yield lab, load_config(path)


@pytest.fixture
def engine(labcfg: tuple[Lab, Config]) -> Iterator[Engine]:
    _, cfg = labcfg
    eng = Engine(cfg)
    eng.start()
    eng.wait_ready(10)
    yield eng
    eng.stop()


def vm_named(lab: Lab, name: str) -> object | None:
    return lab.call(lambda: next((v for v in lab.world.vms.values() if v.name == name), None))


def cli(cfg: Config, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV or k.startswith(
        ("NOMAD_", "CONSUL_", "PROXMOX_"))}
    return subprocess.run([sys.executable, "-m", "jamtui", "--config", str(cfg.path), "node",
                           *args], env=env, input=stdin, capture_output=True, text=True,
                          timeout=120)


def test_cli_add_then_remove_changes_exactly_the_inventory_and_the_lab(
        labcfg: tuple[Lab, Config]) -> None:
    lab, cfg = labcfg
    inv_path = Path(cfg.inventory)
    before = inv_path.read_text()
    out = cli(cfg, "add", "--group", "vs", "--yes")
    assert out.returncode == 0, out.stderr
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in out.stderr
    assert "verify it joined: done: vs3: Consul alive, Nomad ready, vs3.jamfox.dev → " \
           "192.168.42.33" in out.stderr
    after = inv_path.read_text()
    assert after == before + BLOCK  # the vs group is last: the entry appended, nothing else
    vm = vm_named(lab, "vs3")
    assert vm is not None and vm.vmid == 303 and vm.node == "pve1" and vm.status == "running"
    assert lab.call(lambda: lab.world.consul_nodes["vs3"].alive)
    assert any(n.name == "vs3" and n.status == "ready"
               for n in lab.call(lambda: list(lab.world.nodes.values())))
    assert resolve("vs3.jamfox.dev", cfg.dns.server).addresses == ("192.168.42.33",)
    # stdout carries every step's log (the tools' own lines), stderr the progress
    assert 'proxmox_vm_qemu.node["vs3"]: Creation complete after' in out.stdout
    assert "[ansible] vs3: changed: consul : configure" in out.stdout

    out = cli(cfg, "remove", "vs3", "--yes")
    assert out.returncode == 0, out.stderr
    assert "Plan: 0 to add, 0 to change, 1 to destroy." in out.stderr
    assert inv_path.read_text() == before
    assert vm_named(lab, "vs3") is None
    assert resolve("vs3.jamfox.dev", cfg.dns.server).error.startswith("NXDOMAIN")
    assert not any(n.name == "vs3" for n in lab.call(lambda: list(lab.world.nodes.values())))
    states = [s.state for s in list_journals(cfg.provisioning.state_dir)]
    assert states == ["done", "done"]


def test_remove_needs_the_typed_name_and_add_refuses_bad_values(
        labcfg: tuple[Lab, Config]) -> None:
    lab, cfg = labcfg
    before = Path(cfg.inventory).read_text()
    out = cli(cfg, "remove", "vs2", stdin="vs1\n")
    assert out.returncode == 2 and "not confirmed: nothing done" in out.stderr
    out = cli(cfg, "add", "--group", "vs", "--name", "Bad_Name", "--ip", "10.1.1.1")
    assert out.returncode == 2
    assert "name: not a valid host name" in out.stderr
    assert "ip: 10.1.1.1 is not a host address in the lab's subnet" in out.stderr
    assert Path(cfg.inventory).read_text() == before
    assert vm_named(lab, "vs2") is not None
    assert list_journals(cfg.provisioning.state_dir) == []


def test_malformed_inventory_is_refused_with_file_and_line(labcfg: tuple[Lab, Config]) -> None:
    _, cfg = labcfg
    path = Path(cfg.inventory)
    broken = path.read_text().replace("        vs2:\n", "        vs2: [\n")
    path.write_text(broken)
    out = cli(cfg, "add", "--group", "vs", "--yes")
    assert out.returncode == 2
    assert f"{path}, line " in out.stderr and "invalid YAML" in out.stderr
    assert path.read_text() == broken


def test_a_failing_tool_stops_the_workflow_with_its_own_words(
        labcfg: tuple[Lab, Config], engine: Engine) -> None:
    lab, cfg = labcfg
    # a VM outside the inventory holds VMID 303: Proxmox refuses the clone
    lab.call(lab.world.vm_create, "pve2", 303, "stray")
    spec = propose_node(load_inventory(cfg.inventory), "vs")
    assert spec.vmid == 303
    wf = NodeWorkflows(cfg, engine, lambda title, text: True).add(spec)
    assert wf.run() == "failed"
    apply = wf.states["apply"]
    assert apply.state == "failed"
    assert "unable to create VM 303: config file already exists" in apply.message
    assert wf.states["ssh"].state == "pending"
    entries = wf.journal.entries()
    assert entries[-1] == {**entries[-1], "type": "end", "state": "failed"}
    assert "config file already exists" in wf.journal.log_path("apply").read_text()
    # rolled back: nothing to destroy (the clone never happened), the entry removed
    assert wf.rollback() == "rolled-back"
    assert load_inventory(cfg.inventory).host("vs3") is None
    assert vm_named(lab, "stray") is not None  # not ours: untouched


def test_a_rejected_plan_applies_nothing(labcfg: tuple[Lab, Config], engine: Engine) -> None:
    lab, cfg = labcfg
    shown: list[str] = []

    def reject(title: str, text: str) -> bool:
        shown.append(text)
        return False

    before = Path(cfg.inventory).read_bytes()
    wf = NodeWorkflows(cfg, engine, reject).add(propose_node(load_inventory(cfg.inventory), "vb"))
    assert wf.run() == "cancelled"
    assert shown and 'create  proxmox_vm_qemu.node["vb3"]' in shown[0]
    assert wf.states["plan"].message.startswith("plan rejected: nothing applied; vb3 taken out "
                                                "of the inventory again")
    assert vm_named(lab, "vb3") is None
    # "nothing applied" is true: the inventory is as it was, byte for byte, on its own
    assert Path(cfg.inventory).read_bytes() == before
    assert propose_node(load_inventory(cfg.inventory), "vb").name == "vb3"
    assert "nothing to roll back" in wf.rollback_refusal()


def test_cancel_interrupts_the_running_tool(labcfg: tuple[Lab, Config],
                                           engine: Engine) -> None:
    lab, cfg = labcfg
    gate = threading.Event()
    wf = NodeWorkflows(cfg, engine, lambda title, text: True).add(
        propose_node(load_inventory(cfg.inventory), "vs"))
    wf.observe(lambda what, step, data: gate.set() if step is not None and
               step.name == "ssh" and step.state == "running" else None)
    lab.call(setattr, lab.world, "boot_delay", 30.0)  # the new VM stays unreachable
    wf.start()
    assert gate.wait(30), "the ssh step never started"
    t0 = time.monotonic()
    wf.cancel()
    wf.join(15)
    assert wf.state == "cancelled" and time.monotonic() - t0 < 5
    assert wf.states["ssh"].state == "cancelled"
    assert Journal.open(cfg.provisioning.state_dir, wf.id).summary().state == "cancelled"


def test_killed_in_the_middle_resumes_from_the_journal(labcfg: tuple[Lab, Config]) -> None:
    lab, cfg = labcfg
    lab.call(setattr, lab.world, "boot_delay", 3.0)
    env = {k: v for k, v in os.environ.items()}
    proc = subprocess.Popen([sys.executable, "-m", "jamtui", "--config", str(cfg.path), "node",
                             "add", "--group", "vs", "--yes"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = Path(cfg.provisioning.state_dir).expanduser() / "workflows"

    def ssh_running() -> bool:
        for j in root.glob("*/journal.jsonl") if root.is_dir() else []:
            lines = [json.loads(x) for x in j.read_text().splitlines()]
            if {"step": "ssh", "state": "running"}.items() <= lines[-1].items():
                return True
        return False

    try:
        wait_for(ssh_running, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    (summary,) = list_journals(cfg.provisioning.state_dir)
    assert summary.state == "interrupted" and summary.step == "ssh"
    out = cli(cfg, "resume", summary.id, "--yes")
    assert out.returncode == 0, out.stderr
    assert "add vs3 to the inventory" not in out.stderr  # done steps are not run again
    assert "wait for SSH: done" in out.stderr and "verify it joined: done" in out.stderr
    assert Path(cfg.inventory).read_text().count("vs3:") == 1
    assert lab.call(lambda: lab.world.consul_nodes["vs3"].alive)
    out = cli(cfg, "resume", summary.id, "--yes")
    assert out.returncode == 2 and "is done: nothing to resume" in out.stderr
