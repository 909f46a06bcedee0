"""Workflows never undo another's work, and "nothing applied" is true (issue #12 §2), against
the lab: proposals are taken under the inventory's lock (two adds at once get two nodes); a
rejected plan puts the inventory back byte for byte; a rollback undoes only what its own
journal records as its doing, refuses with the reason otherwise, stops only a VM that runs,
and is what a resume continues; a cancelled tool ends as the real one does (no traceback)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from jamtui.config import Config
from jamtui.engine import Engine
from jamtui.inventory import load_inventory, propose_node
from jamtui.sim.lab import Lab
from jamtui.workflows.journal import list_journals
from jamtui.workflows.node import NodeWorkflows
from jamtui.workflows.runner import StepFailed
from tests.conftest import CLIENT_ENV
from tests.helpers import wait_for
from tests.workflows.test_node_workflows import BLOCK, cli, engine, labcfg, vm_named

pytestmark = pytest.mark.integration
__all__ = ["engine", "labcfg"]  # fixtures, shared


def holds_open(pid: int, path: Path) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path)
                   for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def test_two_adds_at_once_get_two_nodes_and_rejected_plans_restore_the_inventory(
        labcfg: tuple[Lab, Config]) -> None:
    lab, cfg = labcfg
    inventory = Path(cfg.inventory)
    before = inventory.read_bytes()
    lock = inventory.with_name(f".{inventory.name}.lock")
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV or k.startswith(
        ("NOMAD_", "CONSUL_", "PROXMOX_"))}
    argv = [sys.executable, "-m", "jamtui", "--config", str(cfg.path), "node", "add",
            "--group", "vs"]
    # both wait on the inventory's lock (as when two operators press Enter together)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        procs = [subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        try:
            wait_for(lambda: all(holds_open(p.pid, lock) for p in procs), timeout=60, step=0.1)
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
    outs = [p.communicate("no\n", timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 1, err
        assert "plan rejected: nothing applied" in err, err
        assert "jamtui node rollback" not in err  # nothing of its own to undo
    names = sorted(s.params["name"] for s in list_journals(cfg.provisioning.state_dir))
    assert names == ["vs3", "vs4"]
    ips = {s.params["ip"] for s in list_journals(cfg.provisioning.state_dir)}
    vmids = {s.params["vmid"] for s in list_journals(cfg.provisioning.state_dir)}
    assert len(ips) == 2 and len(vmids) == 2
    # both rejected: the inventory is as it was and the next add proposes vs3 again
    assert inventory.read_bytes() == before
    assert propose_node(load_inventory(inventory), "vs").name == "vs3"
    assert vm_named(lab, "vs3") is None and vm_named(lab, "vs4") is None
    summary = list_journals(cfg.provisioning.state_dir)[0]
    out = cli(cfg, "rollback", summary.id, "--yes")
    assert out.returncode == 2 and "nothing to roll back" in out.stderr


def test_a_rollback_never_undoes_another_workflows_node(labcfg: tuple[Lab, Config],
                                                       engine: Engine) -> None:
    lab, cfg = labcfg
    spec = propose_node(load_inventory(cfg.inventory), "vs")
    # B: its plan rejected (its entry taken out again) ...
    b = NodeWorkflows(cfg, engine, lambda title, text: False).add(spec)
    assert b.run() == "cancelled"
    # ... A adds the same node meanwhile, to the end
    a = NodeWorkflows(cfg, engine, lambda title, text: True).add(spec)
    assert a.run() == "done", a.message
    after_a = Path(cfg.inventory).read_text()
    # B resumed: its first step fails, the name is A's now
    b = NodeWorkflows(cfg, engine, lambda title, text: True).resume(b.id)
    assert b.run() == "failed"
    assert "vs3 is already in the inventory" in b.states["inventory"].message
    # its rollback refuses, with the reason, and touches nothing of A's
    assert "nothing to roll back" in b.rollback_refusal()
    with pytest.raises(StepFailed, match="wrote no inventory entry and created no VM"):
        b.rollback()
    out = cli(cfg, "rollback", b.id, "--yes")
    assert out.returncode == 2 and "nothing to roll back" in out.stderr, out.stderr
    vm = vm_named(lab, "vs3")
    assert vm is not None and vm.status == "running"
    assert Path(cfg.inventory).read_text() == after_a


def test_rollback_of_a_stopped_vm_and_resume_continues_the_rollback(
        labcfg: tuple[Lab, Config], engine: Engine) -> None:
    lab, cfg = labcfg
    inventory = Path(cfg.inventory)
    before = inventory.read_text()
    flows = NodeWorkflows(cfg, engine, lambda title, text: True)
    wf = flows.add(propose_node(load_inventory(inventory), "vs"))
    gate = threading.Event()
    wf.observe(lambda what, step, data: gate.set() if step is not None and
               step.name == "ssh" and step.state == "running" else None)
    lab.call(setattr, lab.world, "boot_delay", 30.0)
    wf.start()
    assert gate.wait(60), "the ssh step never started"
    wf.cancel()
    wf.join(30)
    assert wf.state == "cancelled"
    vm = vm_named(lab, "vs3")
    assert vm is not None
    lab.call(lab.world.vm_stop, vm.node, vm.vmid)  # stopped by hand before the rollback
    wait_for(lambda: vm_named(lab, "vs3").status == "stopped", timeout=10)
    # someone edits vs3's entry meanwhile: the rollback destroys its VM, leaves the entry
    edited = before + BLOCK.replace("cores: 4", "cores: 2")
    assert inventory.read_text() == before + BLOCK
    inventory.write_text(edited)
    assert wf.rollback() == "failed"
    assert wf.states["destroy"].state == "done", wf.states["destroy"].message
    assert vm_named(lab, "vs3") is None  # a stopped VM is destroyed, not "not running"
    assert "not the entry this workflow wrote" in wf.states["uninventory"].message
    assert inventory.read_text() == edited
    summary = next(s for s in list_journals(cfg.provisioning.state_dir) if s.id == wf.id)
    assert summary.phase == "rollback" and summary.state == "failed"
    # the entry put back as it was written: a resume continues the rollback, not the add
    inventory.write_text(before + BLOCK)
    again = flows.resume(wf.id)
    assert again.phase == "rollback" and list(again.states) == ["destroy-plan", "destroy",
                                                                "uninventory"]
    assert again.run() == "rolled-back", again.message
    assert inventory.read_text() == before
    entries = again.journal.entries()
    start = max(i for i, e in enumerate(entries) if e["type"] == "rollback")
    assert {e["step"] for e in entries[start:] if e["type"] == "step"} <= {
        "destroy-plan", "destroy", "uninventory"}
    out = cli(cfg, "resume", wf.id, "--yes")
    assert out.returncode == 2 and "is rolled-back: nothing to resume" in out.stderr


def test_cancel_during_apply_ends_the_tool_as_terraform_does(labcfg: tuple[Lab, Config],
                                                            engine: Engine) -> None:
    lab, cfg = labcfg
    before = Path(cfg.inventory).read_text()
    flows = NodeWorkflows(cfg, engine, lambda title, text: True)
    wf = flows.add(propose_node(load_inventory(cfg.inventory), "vb"))
    wf.observe(lambda what, step, data: wf.cancel() if what == "event" and step is not None
               and step.name == "apply" and "Creating" in data.message else None)
    assert wf.run() == "cancelled"
    log = wf.journal.log_path("apply").read_text()
    assert "Interrupt received." in log and "Apply cancelled" in log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log
    assert "terraform cancelled (exit 1)" in wf.states["apply"].message
    # the tool's pid and start time were journalled (a resume after a killed jamtui finds it)
    tool = wf.journal.last("tool", step="apply")
    assert tool is not None and tool["tool"] == "terraform" and tool["start"] > 0
    assert wf.journal.last("tool-end", pid=tool["pid"], start=tool["start"]) is not None
    # the apply began: the rollback may destroy what it made, and does
    wait_for(lambda: (v := vm_named(lab, "vb3")) is None or v.lock is None, timeout=10)
    assert wf.rollback_refusal() == ""
    assert wf.rollback() == "rolled-back", wf.message
    assert vm_named(lab, "vb3") is None
    assert Path(cfg.inventory).read_text() == before


def test_ctrl_c_at_the_plan_question_applies_nothing(labcfg: tuple[Lab, Config]) -> None:
    lab, cfg = labcfg
    inventory = Path(cfg.inventory)
    before = inventory.read_bytes()
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV or k.startswith(
        ("NOMAD_", "CONSUL_", "PROXMOX_"))}
    proc = subprocess.Popen([sys.executable, "-m", "jamtui", "--config", str(cfg.path), "node",
                             "add", "--group", "vs"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(lambda: proc.stdout.read(1), "")),
                              daemon=True)
    reader.start()
    try:
        wait_for(lambda: "Apply this plan?" in "".join(seen), timeout=60, step=0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "plan rejected: nothing applied" in err
    assert inventory.read_bytes() == before
    assert vm_named(lab, "vs3") is None


def test_the_ca_bundle_is_never_seen_half_written(tmp_path: Path) -> None:
    """Two workflows at once each write the tools' CA bundle; a Terraform reading it meanwhile
    must find it whole (it once failed its plan with "[X509] PEM lib": a truncated file)."""
    import ssl
    from types import SimpleNamespace

    from jamtui.sim.tls import make_tls  # the lab's CA: a real PEM to append

    ca_file = make_tls(tmp_path / "ca", ["127.0.0.1"]).ca_cert
    me = SimpleNamespace(prov=SimpleNamespace(state_dir=str(tmp_path / "state")))
    bundle = NodeWorkflows._ca_bundle(me, ca_file)  # type: ignore[arg-type]
    stop, errors = threading.Event(), []

    def rewrite() -> None:
        while not stop.is_set():
            NodeWorkflows._ca_bundle(me, ca_file)  # type: ignore[arg-type]

    writers = [threading.Thread(target=rewrite) for _ in range(2)]
    for w in writers:
        w.start()
    try:
        for _ in range(40):
            try:
                ssl.create_default_context(cafile=str(bundle))
            except ssl.SSLError as exc:
                errors.append(exc)
    finally:
        stop.set()
        for w in writers:
            w.join()
    assert errors == []
    assert [p.name for p in bundle.parent.iterdir()] == ["ca-bundle.pem"]  # no temp left
