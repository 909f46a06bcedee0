"""`jamtui lab` as a user runs it: a real subprocess that prints how to reach the lab, takes
faults at its prompt, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from jamtui.config import load_config

# no token in the environment: what the lab prints must work on its own
BARE_ENV = {k: v for k, v in os.environ.items()
            if not k.startswith(("NOMAD_", "CONSUL_", "PROXMOX_"))}


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "jamtui", "lab", "--workdir", str(tmp_path), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=BARE_ENV,
    )
    assert proc.stdout is not None
    out = ""
    deadline = time.monotonic() + 20
    for line in proc.stdout:
        out += line
        if "Ctrl-C stops the lab" in line or time.monotonic() > deadline:
            break
    return proc, out


def test_lab_prints_exports_and_config_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    proc, out = start(tmp_path, "--seed", "3")
    try:
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", out, re.M))
        assert {"NOMAD_ADDR", "NOMAD_TOKEN", "CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN",
                "PROXMOX_VE_ENDPOINT", "PROXMOX_VE_API_TOKEN"} <= exports.keys()
        config = tmp_path / "jamtui.toml"
        assert str(config) in out
        # settled before the ready lines: a trace typed at once finds the route (#14)
        traced = jamtui("--config", str(config), "trace", "example.jamfox.dev")
        assert traced.returncode == 0, traced.stdout + traced.stderr
        # the printed config line works with no env sourced: tokens from 0600 files
        status = jamtui("--config", str(config), "status")
        assert status.returncode == 0, status.stdout + status.stderr
        # (a port or a count may hold the digits: the status codes as words)
        assert not re.search(r"\b40[13]\b", status.stdout), status.stdout
        assert not any(token in status.stdout + status.stderr for token in (
            exports["NOMAD_TOKEN"], exports["CONSUL_HTTP_TOKEN"]))
        for name in ("nomad", "consul", "proxmox"):
            assert (tmp_path / "tokens" / f"{name}.token").stat().st_mode & 0o777 == 0o600
        said = out.index(f"`. {tmp_path / 'env.sh'}`")  # how to source the tokens
        assert said < out.index(f"#   jamtui --config {config}")  # said before the line
        assert "needs no environment" in out
        cfg = load_config(config, env=exports)
        assert cfg.nomad.address == exports["NOMAD_ADDR"]
        assert cfg.proxmox.ca_file and Path(cfg.proxmox.ca_file).is_file()
        assert (tmp_path / "env.sh").stat().st_mode & 0o077 == 0  # tokens: owner only
        # and a read-only token per backend, printed and in env-readonly.sh (owner only)
        read_only = dict(re.findall(r"^#   export (\w+)=(\S+)$", out, re.M))
        assert read_only.keys() == {"NOMAD_TOKEN", "CONSUL_HTTP_TOKEN", "PROXMOX_VE_API_TOKEN"}
        assert all(read_only[k] != exports[k] for k in read_only)
        ro_file = tmp_path / "env-readonly.sh"
        assert ro_file.stat().st_mode & 0o077 == 0
        assert f"export NOMAD_TOKEN={read_only['NOMAD_TOKEN']}" in ro_file.read_text()
        refused = requests.get(f"{cfg.nomad.address}/v1/operator/autopilot/health", timeout=5,
                               headers={"X-Nomad-Token": read_only["NOMAD_TOKEN"]})
        assert (refused.status_code, refused.text) == (403, "Permission denied")
        # the Proxmox API verifies against the lab's CA, and only against it
        version = requests.get(f"{cfg.proxmox.address}/api2/json/version",
                               verify=cfg.proxmox.ca_file, timeout=5)
        assert version.status_code == 401  # no token: refused, but TLS verified
        leader = requests.get(f"{cfg.nomad.address}/v1/status/leader", timeout=5)
        assert leader.status_code == 200 and leader.json().endswith(":4647")
        # a fault typed at the lab's prompt takes effect
        assert proc.stdin is not None
        proc.stdin.write("fault nomad error\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 5
        status = 200
        while time.monotonic() < deadline and status != 500:
            status = requests.get(f"{cfg.nomad.address}/v1/jobs", timeout=5,
                                  headers={"X-Nomad-Token": exports["NOMAD_TOKEN"]}).status_code
            time.sleep(0.1)
        assert status == 500
        port = int(cfg.nomad.address.rsplit(":", 1)[1])
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130  # Ctrl-C, as for every command
    assert "JamLab stopped" in (proc.stdout.read() if proc.stdout else "")
    # the port is free again: everything was shut down
    with socket.socket() as s:
        # SO_REUSEADDR tolerates TIME_WAIT from the requests above, never a live listener
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def jamtui(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "jamtui", *args], capture_output=True,
                          text=True, env=BARE_ENV, timeout=60)


def test_lab_refuses_an_unknown_fault(tmp_path: Path) -> None:
    proc, _ = start(tmp_path, "--fault", "nomad=meltdown")
    assert proc.wait(15) == 2
    assert proc.stderr is not None and "unknown fault 'meltdown'" in proc.stderr.read()
