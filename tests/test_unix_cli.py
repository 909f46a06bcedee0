"""Headless commands as Unix tools, as real processes: a reader that leaves early (`| head`)
ends the command quietly with its usual status, and Ctrl-C ends any command with 130 and no
traceback. The lab's own prompt stays free of tracebacks when faults are injected."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.sim.lab import Lab
from tests.conftest import CLIENT_ENV, FAST
from tests.helpers import wait_for


def env_with(extra: dict[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in CLIENT_ENV}, **extra}


@pytest.fixture(scope="module")
def lab_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Path]]:
    with Lab(seed=4, tick=0.2, traffic=False, **FAST) as lab:
        path = tmp_path_factory.mktemp("unix") / "jamtui.toml"
        path.write_text(lab.config_toml())
        yield lab, path


def closed_early(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose reader is gone before the first line: `cmd | head -0`."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "jamtui", *args], stdout=write,
                              stderr=subprocess.PIPE, env=env, text=True, timeout=60)
    finally:
        os.close(write)
    return proc


@pytest.mark.parametrize("args", [
    ["snapshot", "--json"],
    ["trace", "example.jamfox.dev", "--json"],
    ["trace", "example.jamfox.dev"],
    ["status"],
    ["doctor"],
])
def test_a_reader_that_leaves_ends_the_command_quietly_with_its_status(
        lab_config: tuple[Lab, Path], args: list[str]) -> None:
    lab, path = lab_config
    out = closed_early([*args, "--config", str(path)], env_with(lab.env()))
    assert "Traceback" not in out.stderr and "Broken pipe" not in out.stderr, out.stderr
    assert out.stderr == ""
    assert out.returncode == 0  # every backend answers, the chain is whole


def test_logs_into_head_exits_0(lab_config: tuple[Lab, Path]) -> None:
    lab, path = lab_config
    alloc = lab.call(lambda: next(a.id for a in lab.world.allocs.values()
                                  if a.job_id == "example"))
    for n in range(50):
        lab.call(lab.world.log_line, alloc, "server", f"line {n}")
    out = closed_early(["logs", alloc, "--config", str(path)], env_with(lab.env()))
    assert (out.returncode, out.stderr) == (0, "")


def interrupted(args: list[str], env: dict[str, str], ready: threading.Event,
                ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen([sys.executable, "-m", "jamtui", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert ready.wait(30), "the command never got to its work"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture
def silent_server() -> Iterator[tuple[str, threading.Event]]:
    """Accepts connections and never answers: every command waits on it until Ctrl-C."""
    server = socket.create_server(("127.0.0.1", 0))
    connected = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            connected.set()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", connected
    server.close()
    for conn in held:
        conn.close()


@pytest.mark.parametrize("args", [
    ["status"], ["snapshot", "--json"], ["doctor"], ["trace", "example.jamfox.dev"],
    ["node", "add", "--group", "vs", "--yes"],
])
def test_ctrl_c_ends_any_command_with_130_and_no_traceback(
        tmp_path: Path, silent_server: tuple[str, threading.Event], args: list[str]) -> None:
    url, connected = silent_server
    config = tmp_path / "jamtui.toml"
    config.write_text(f'[nomad]\naddress = "{url}"\n[consul]\naddress = "{url}"\n'
                      f'[provisioning]\nstate_dir = "{tmp_path / "state"}"\n')
    out = interrupted(["--config", str(config), *args], env_with({}), connected)
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == 130, out.stderr


def test_ctrl_c_ends_logs_follow_with_130(lab_config: tuple[Lab, Path]) -> None:
    lab, path = lab_config
    alloc = lab.call(lambda: next(a.id for a in lab.world.allocs.values()
                                  if a.job_id == "db"))
    printed = threading.Event()

    def keep_logging() -> None:  # until the follower has printed one: it is following
        while not printed.wait(0.3):
            lab.call(lab.world.log_line, alloc, "postgres", "before-ctrl-c")

    proc = subprocess.Popen([sys.executable, "-m", "jamtui", "logs", alloc, "-f", "-n", "1",
                             "--config", str(path)], env=env_with(lab.env()),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    threading.Thread(target=keep_logging, daemon=True).start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "before-ctrl-c" in line:
                printed.set()
                break
        assert printed.is_set()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        printed.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr


def test_the_lab_prompt_shows_no_traceback_when_faults_hit_clients(tmp_path: Path) -> None:
    """`jamtui lab` with a client following it (event stream, blocking queries): `fault nomad
    down` and `fault consul reset` at its prompt print their line and nothing else. Secrets
    files are owner-only from the start (chmod is disabled: only the creation mode counts)."""
    out_file = tmp_path / "lab.out"
    no_chmod = ("import os, pathlib, sys; os.umask(0o022); "
                "pathlib.Path.chmod = lambda *a, **k: None; "
                "from jamtui.cli import main; sys.exit(main())")
    with out_file.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", no_chmod, "lab", "--workdir",
                                 str(tmp_path / "lab"), "--tick", "0.2"],
                                stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT,
                                text=True, env=env_with({}))
    engine = None
    try:
        wait_for(lambda: "Ctrl-C stops the lab" in out_file.read_text(), timeout=30)
        assert (tmp_path / "lab" / "env.sh").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "lab" / "tls" / "server-key.pem").stat().st_mode & 0o777 == 0o600
        exports = dict(line.removeprefix("export ").split("=", 1)
                       for line in out_file.read_text().splitlines()
                       if line.startswith("export "))
        engine = Engine(load_config(tmp_path / "lab" / "jamtui.toml",
                                    env={k: v.strip("'") for k, v in exports.items()}))
        engine.start()
        engine.wait_ready(15)
        assert engine.store.backend("nomad").health.value == "ok"
        assert proc.stdin is not None
        for fault, backend in (("fault nomad down", "nomad"), ("fault consul reset",
                                                               "consul")):
            proc.stdin.write(fault + "\n")
            proc.stdin.flush()
            wait_for(lambda b=backend: engine.store.backend(b).health.value == "down",
                     timeout=30)
        time.sleep(1.0)  # let the clients' retries meet the faults
        proc.stdin.write("clear\n")
        proc.stdin.flush()
        wait_for(lambda: "faults cleared" in out_file.read_text(), timeout=10)
    finally:
        if engine is not None:
            engine.stop()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
    text = out_file.read_text()
    assert "fault: nomad is now down" in text and "fault: consul is now reset" in text
    assert "Traceback" not in text and "Error handling request" not in text, text
    assert code == 130 and "JamLab stopped" in text
