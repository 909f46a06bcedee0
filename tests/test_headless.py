"""`jamtui status`, `snapshot --json` and `doctor` against the lab, as separate processes
pointed at it the way an operator would (config file and environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.config import load_config
from jamtui.doctor import run_doctor
from jamtui.sim.lab import Lab
from tests.conftest import CLIENT_ENV, FAST
from tests.helpers import wait_for


@pytest.fixture
def lab_config(tmp_path: Path) -> Iterator[tuple[Lab, Path]]:
    # no background chatter: the logs tests read the last line they wrote (a chatty line
    # landing while the command starts made `-n 1` read that instead, by the dice's luck)
    with Lab(seed=4, tick=0.2, traffic=False, log_rate=0.0, **FAST) as lab:
        path = tmp_path / "jamtui.toml"
        path.write_text(lab.config_toml())
        yield lab, path


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    return subprocess.run([sys.executable, "-m", "jamtui", *args], env={**base, **env},
                          capture_output=True, text=True, timeout=60)


# what a one-shot command must not import (#17): the other commands' modules and their
# libraries (the workflows' paramiko and dnspython, exec's aiohttp), the TUI's Textual, the
# certificate reader's cryptography (no one-shot command prints certificates)
NOT_FOR_ONE_SHOT = ("textual", "paramiko", "dns", "aiohttp", "cryptography", "jamtui.ui",
                    "jamtui.node_cli", "jamtui.job_cli", "jamtui.exec_cli", "jamtui.workflows",
                    "jamtui.timeline", "jamtui.route_book")
_IMPORTS = ("import atexit, os, sys\n"
            "me = os.getpid()\n"  # not `snapshot`'s reader processes (`jamtui.apart`)
            "def said():\n"
            "    if os.getpid() == me:\n"
            "        print('IMPORTED', sorted({m.split('.')[0] if not m.startswith('jamtui')\n"
            "              else '.'.join(m.split('.')[:2]) for m in sys.modules}),\n"
            "              file=sys.stderr)\n"
            "atexit.register(said)\n"
            "end = os._exit\n"  # a one-shot command ends without the interpreter's teardown
            "os._exit = lambda code: (said(), os.getpid() == me and print(\n"
            "    'ENDED', code, file=sys.stderr), sys.stderr.flush(), end(code))\n"
            "sys.argv[0] = 'jamtui'\n"
            "from jamtui.cli import main\n"
            "sys.exit(main())\n")


def run_imports(args: list[str], env: dict[str, str]
                ) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`run`, and the top-level packages (jamtui's modules by name) the process imported."""
    base = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    out = subprocess.run([sys.executable, "-c", _IMPORTS, *args], env={**base, **env},
                         capture_output=True, text=True, timeout=60)
    said = [ln for ln in out.stderr.splitlines() if ln.startswith("IMPORTED ")]
    assert said, out.stderr
    return out, set(json.loads(said[-1][len("IMPORTED "):].replace("'", '"')))


def test_snapshot_json_schema(lab_config: tuple[Lab, Path]) -> None:
    lab, path = lab_config
    out, imported = run_imports(["snapshot", "--json", "--config", str(path)], lab.env())
    assert out.returncode == 0, out.stderr
    # nor Rich: the document is JSON, written by json's C encoder
    assert imported.isdisjoint({*NOT_FOR_ONE_SHOT, "rich"}), imported
    doc = json.loads(out.stdout)
    assert {"backends", "hypervisors", "vms", "services", "allocations", "routes"} <= doc.keys()
    alloc = doc["allocations"][0]
    assert {"id", "client_status", "desired_status", "task_group", "job_id", "node_name"} \
        <= alloc.keys()
    vm = next(v for v in doc["vms"] if v["name"] == "vb0")
    assert vm["vmid"] == 200  # an integer, as the inventory and Proxmox have it
    assert vm["group"] == "vb" and vm["type"] == "qemu"
    # the container is a guest with type lxc (#16); tasks from /cluster/tasks, newest first
    ct = next(v for v in doc["vms"] if v["type"] == "lxc")
    assert ct["name"] == "ns1" and ct["node"] == "pve2" and ct["status"] == "running"
    tasks = doc["pve_tasks"]
    assert {"upid", "node", "type", "object_id", "user", "starttime", "endtime", "status"} \
        <= tasks[0].keys()
    assert {t["type"] for t in tasks} >= {"vzstart", "qmsnapshot"}
    assert [t["starttime"] for t in tasks] == sorted((t["starttime"] for t in tasks),
                                                     reverse=True)
    example = next(s for s in doc["services"] if s["name"] == "example")
    assert len(example["instances"]) == 3 and example["instances"][0]["alloc_id"]
    assert {b["name"]: b["health"] for b in doc["backends"]}["nomad"] == "ok"
    for secret in (lab.secrets.nomad_token, lab.secrets.consul_token,
                   lab.secrets.proxmox_token_value):
        assert secret not in out.stdout and secret not in out.stderr


def test_snapshot_without_json_and_node_list_with_no_workflows(
        lab_config: tuple[Lab, Path]) -> None:
    """#14: `snapshot` alone prints the summary `status` prints and says how to get the
    document; `node list` with no workflow says so and lists the nodes with their state. No
    token in the environment: the config's token files are enough."""
    import argparse
    import dataclasses
    import io

    from jamtui.node_cli import run_node

    _, path = lab_config
    out = run(["snapshot", "--config", str(path)], {})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Backends" in out.stdout and "Nomad nodes  3 ready" in out.stdout
    assert "jamtui snapshot --json" in out.stderr
    assert not out.stdout.lstrip().startswith("{")

    cfg = dataclasses.replace(load_config(path, env={}), read_only=True)  # a read: allowed
    printed = io.StringIO()
    args = argparse.Namespace(node_command="list", timeout=10.0)
    assert run_node(cfg, args, out=printed, err=io.StringIO()) == 0
    text = printed.getvalue()
    assert text.startswith("no workflows yet")
    rows = {r.split()[0]: r for r in text.splitlines() if r.startswith(("vb", "vs"))}
    assert set(rows) == {"vb0", "vb1", "vb2", "vs0", "vs1", "vs2"}
    assert rows["vs0"].split()[1:5] == ["vs", "192.168.42.30", "300", "running"]
    assert "ready" in rows["vs0"] and "alive" in rows["vs0"]
    assert "not a client" in rows["vb0"]  # the Nomad servers run no client


def test_headless_with_read_only_tokens(lab_config: tuple[Lab, Path]) -> None:
    """A dashboard's tokens: the snapshot has every VM, allocation and service; Nomad and
    Consul are degraded (not down) naming what is off; the quorum says how it was checked;
    doctor prints the rules that would enable the rest, and calls nothing a failure."""
    lab, path = lab_config
    env = lab.read_only_env()
    out = run(["snapshot", "--json", "--config", str(path)], env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    vms, allocs = lab.call(lambda: (len(lab.world.vms) + len(lab.world.containers),
                                    len(lab.world.allocs)))
    assert len(doc["vms"]) == vms and len(doc["allocations"]) == allocs
    assert {s["name"] for s in doc["services"]} == set(lab.call(lab.world.service_names))
    backends = {b["name"]: b for b in doc["backends"]}
    assert backends["nomad"]["health"] == "degraded" and not backends["nomad"]["stale"]
    assert {r["feature"] for r in backends["nomad"]["refused"]} == {"quorum", "volumes"}
    assert {r["feature"] for r in backends["consul"]["refused"]} == {"quorum", "intentions"}
    quorum = {q["system"]: q for q in doc["quorum"]}
    for system in ("nomad", "consul"):
        q = quorum[system]
        assert q["checked"] and q["source"] == "gossip" and "operator:read" in q["note"]
        assert len(q["alive"]) == 3 and q["failure_tolerance"] == 1
    status = run(["status", "--config", str(path)], env)
    assert status.returncode == 0, status.stdout  # features refused: listed, not failed
    assert "operator:read" in status.stdout and "refused the token" not in status.stdout
    doctor = run(["doctor", "--config", str(path)], {**env, "COLUMNS": "200"})
    assert doctor.returncode == 0, doctor.stdout
    assert 'operator { policy = "read" }' in doctor.stdout
    assert 'intentions = "read"' in doctor.stdout and "VM.PowerMgmt" in doctor.stdout
    assert "token refused" not in doctor.stdout
    assert "! nomad: quorum: not permitted (operator:read)" in doctor.stdout  # a warning
    for secret in (lab.secrets.nomad_read_token, lab.secrets.consul_read_token,
                   lab.secrets.proxmox_read_token_value):
        for text in (out.stdout, status.stdout, doctor.stdout):
            assert secret not in text


def test_status_exit_codes(lab_config: tuple[Lab, Path]) -> None:
    lab, path = lab_config
    ok, imported = run_imports(["status", "--config", str(path)], lab.env())
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # nor the inventory (ruamel.yaml): `status` prints nothing it gives (#17)
    assert imported.isdisjoint({*NOT_FOR_ONE_SHOT, "ruamel", "jamtui.inventory"}), imported
    # its output out, it ends without the interpreter's teardown (0.1-0.3 s at 5k), its code
    # as it was
    assert "ENDED 0" in ok.stderr.splitlines()
    assert "Hypervisors" in ok.stdout and "pve1" in ok.stdout and "Allocations" in ok.stdout
    lab.set_fault("consul", "down")
    bad = run(["status", "--config", str(path)], lab.env())
    assert bad.returncode == 1
    assert "cannot reach" in " ".join(bad.stdout.split())  # the table wraps its cells


def test_doctor_names_each_failure_and_the_fix(lab_config: tuple[Lab, Path]) -> None:
    lab, path = lab_config
    good = run_doctor(load_config(path, env=lab.env()))
    assert all(f.ok for f in good), [f for f in good if not f.ok]

    env = {**lab.env(), "NOMAD_TOKEN": "wrong-token"}
    env.pop("PROXMOX_VE_CACERT")
    cfg_text = path.read_text().replace(f'ca_file = "{lab.ca_cert}"\n', "")
    path.write_text(cfg_text)
    findings = {f.backend: f for f in run_doctor(load_config(path, env=env))}
    assert not findings["nomad"].ok and "token" in findings["nomad"].fix.lower()
    assert not findings["proxmox"].ok and "TLS" in findings["proxmox"].detail
    assert findings["consul"].ok
    out = run(["doctor", "--config", str(path)], env)
    assert out.returncode == 1 and "wrong-token" not in out.stdout


def test_trace_whole_then_broken(lab_config: tuple[Lab, Path]) -> None:
    lab, path = lab_config
    ok = run(["trace", "example.jamfox.dev/", "--probe", "--json", "--config", str(path)],
             lab.env())
    assert ok.returncode == 0, ok.stdout + ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["whole"] and doc["probe"]["status"] == 200
    assert doc["probe"]["answered_by"].startswith("example.web[")
    assert doc["resolutions"][0]["addresses"] == ["192.168.42.5"]  # the bastion
    assert [h["layer"] for h in doc["hops"]][:2] == ["dns", "frontend"]

    lab.call(lab.world.stop_job, "example")
    wait_for(lambda: lab.world.jobs["example"].status == "dead")
    broken = run(["trace", "example.jamfox.dev", "--config", str(path)], lab.env())
    assert broken.returncode == 1
    assert "broken at" in broken.stdout and "no Fabio instance has a route" in \
        " ".join(broken.stdout.split())
    nxdomain = run(["trace", "nothing.jamfox.dev", "--json", "--config", str(path)],
                   lab.env())
    assert nxdomain.returncode == 1
    assert json.loads(nxdomain.stdout)["broken"]["layer"] == "dns"


def test_logs_of_an_allocation_and_of_a_job(lab_config: tuple[Lab, Path]) -> None:
    lab, path = lab_config
    allocs = lab.call(lambda: sorted((a.id, a.name) for a in lab.world.allocs.values()
                                     if a.job_id == "example"))
    for alloc_id, _ in allocs:
        lab.call(lab.world.log_line, alloc_id, "server", f"hello from {alloc_id[:8]}")
    # the ticking lab may log after our line: -n 1 is the newest line, so write it again
    # until ours is the newest when read (a few tries)
    for _ in range(5):
        one = run(["logs", allocs[0][0][:8], "-n", "1", "--config", str(path)], lab.env())
        assert one.returncode == 0, one.stderr
        assert len(one.stdout.strip().splitlines()) == 1
        if one.stdout.strip().endswith(f"hello from {allocs[0][0][:8]}"):
            break
        lab.call(lab.world.log_line, allocs[0][0], "server", f"hello from {allocs[0][0][:8]}")
    assert one.stdout.strip().endswith(f"hello from {allocs[0][0][:8]}"), one.stdout

    job = run(["logs", "example", "--config", str(path)], lab.env())
    assert job.returncode == 0, job.stderr
    tagged = [line for line in job.stdout.splitlines() if "hello from" in line]
    assert sorted({line.split(" | ")[0] for line in tagged}) == sorted(
        f"{name} server" for _, name in allocs)

    missing = run(["logs", "no-such-job", "--config", str(path)], lab.env())
    assert missing.returncode == 1 and "no running allocation" in missing.stderr
    bad_task = run(["logs", allocs[0][0], "--task", "nope", "--config", str(path)], lab.env())
    assert bad_task.returncode == 1 and "has no task 'nope'" in bad_task.stderr


def test_logs_follow_prints_new_lines(lab_config: tuple[Lab, Path]) -> None:
    lab, path = lab_config
    alloc = lab.call(lambda: next(a.id for a in lab.world.allocs.values()
                                  if a.job_id == "db"))
    base = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    proc = subprocess.Popen([sys.executable, "-m", "jamtui", "logs", alloc, "-f", "-n", "0",
                             "--config", str(path)], env={**base, **lab.env()},
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        time.sleep(1.0)
        lab.call(lab.world.log_line, alloc, "postgres", "followed-line")
        for line in proc.stdout:
            if "followed-line" in line:
                break
    finally:
        proc.terminate()
        proc.wait(10)


def test_doctor_names_each_missing_capability_and_its_rule(tmp_path: Path) -> None:
    """Only agent/self refused is not "token refused"; read-logs and the rest are checked one
    by one, each with the rule that grants it."""
    import uuid

    from jamtui.sim.context import LabSecrets

    secrets = LabSecrets(
        nomad_token=str(uuid.uuid4()), consul_token=str(uuid.uuid4()),
        proxmox_token_value=str(uuid.uuid4()), proxmox_password="pw",
        nomad_read_capabilities=frozenset({"node:read", "namespace:read-job"}),
        proxmox_read_privileges=frozenset({"Sys.Audit", "Datastore.Audit"}))
    with Lab(seed=4, tick=0.2, traffic=False, secrets_=secrets, **FAST) as lab:
        path = tmp_path / "jamtui.toml"
        path.write_text(lab.config_toml())
        found = run_doctor(load_config(path, env=lab.read_only_env()))
        nomad = {f.detail.split(":")[0]: f for f in found if f.backend == "nomad"}
        assert nomad["logs"].warning and 'capabilities = ["read-logs"]' in nomad["logs"].fix
        assert nomad["jobs"].ok and nomad["jobs"].warning  # the jobs view only
        assert nomad["agent"].warning and 'agent { policy = "read" }' in nomad["agent"].fix
        assert nomad["allocations"].ok and not nomad["allocations"].warning
        assert not any("token refused" in f.detail for f in found)
        proxmox = {f.detail.split(":")[0]: f for f in found if f.backend == "proxmox"}
        assert not proxmox["VMs"].ok and "--roles PVEAuditor" in proxmox["VMs"].fix
        assert "jamtui@pve!readonly" in proxmox["VMs"].fix


def test_status_marks_the_quorum_of_a_down_backend_stale() -> None:
    import io

    from rich.console import Console

    from jamtui.headless import render_status
    from jamtui.model import BackendStatus, Health, Kind, Quorum
    from jamtui.store import Store

    store = Store()
    servers = tuple(f"10.0.0.{i}:4647" for i in (1, 2, 3))
    store.upsert(Kind.QUORUM, Quorum("nomad", servers[0], servers, servers))
    store.set_backend(BackendStatus("nomad", Health.DOWN, last_error="cannot reach it"))
    console = Console(file=io.StringIO(), width=200, record=True)
    render_status(store, console, {"nomad"})
    text = console.export_text()
    assert "nomad: 3/3 servers when last seen (STALE: nomad is down)" in text
    assert "survives" not in text
