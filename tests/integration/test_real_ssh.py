"""Host logs over SSH against a real OpenSSH server (Debian's openssh-server, installed by
scripts/test), started on a loopback port with a generated host key and an authorised test
key: a file tailed as it is written; an unknown host key refused until accepted; a changed
host key refused."""

from __future__ import annotations

import getpass
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from jamtui.sources.ssh import (
    HostKeyChanged,
    HostKeyUnknown,
    RemoteTail,
    SSHPool,
    Target,
    fingerprint,
    journal_command,
    tail_command,
)


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[dict[str, Any]]:
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    assert Path(binary).exists(), "openssh-server is not installed: run scripts/test"
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege separation dir
    host_key, client_key = tmp_path / "host_ed25519", tmp_path / "client_ed25519"
    keygen(host_key)
    keygen(client_key)
    authorized = tmp_path / "authorized_keys"
    authorized.write_text((tmp_path / "client_ed25519.pub").read_text())
    authorized.chmod(0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
AuthorizedKeysFile {authorized}
PidFile {tmp_path / 'sshd.pid'}
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
""")
    proc = subprocess.Popen([binary, "-D", "-e", "-f", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield {"port": port, "host_key": host_key, "client_key": client_key,
               "tmp": tmp_path, "user": getpass.getuser()}
    finally:
        proc.terminate()
        proc.wait(10)


def pool_for(sshd: dict[str, Any], known: Path) -> tuple[SSHPool, Target]:
    return (SSHPool(known, key_file=str(sshd["client_key"]), timeout=5),
            Target("vs1", "127.0.0.1", sshd["port"], sshd["user"]))


def test_unknown_host_key_is_refused_until_accepted(sshd: dict[str, Any]) -> None:
    known = sshd["tmp"] / "known_hosts"
    pool, target = pool_for(sshd, known)
    with pytest.raises(HostKeyUnknown) as err:
        pool.connect(target)
    real = paramiko.Ed25519Key.from_private_key_file(str(sshd["host_key"]))
    assert fingerprint(err.value.key) == fingerprint(real)
    keygen_says = subprocess.run(["ssh-keygen", "-l", "-f", f"{sshd['host_key']}.pub"],
                                 capture_output=True, text=True, check=True).stdout
    assert fingerprint(real) in keygen_says  # the same form ssh-keygen prints
    assert fingerprint(real) in str(err.value)
    pool.trust(target, err.value.key)
    assert known.stat().st_mode & 0o077 == 0
    client = pool.connect(target)
    assert client.get_transport() is not None and client.get_transport().is_active()
    assert pool.connect(target) is client  # reused
    pool.close()


def test_a_changed_host_key_is_refused(sshd: dict[str, Any]) -> None:
    known = sshd["tmp"] / "known_hosts"
    pool, target = pool_for(sshd, known)
    other = paramiko.Ed25519Key.from_private_key_file(str(sshd["client_key"]))
    pool.trust(target, other)  # a different key recorded for this host
    with pytest.raises(HostKeyChanged, match="changed"):
        pool.connect(target)


def test_tail_a_file_as_it_is_written(sshd: dict[str, Any]) -> None:
    known = sshd["tmp"] / "known_hosts"
    pool, target = pool_for(sshd, known)
    with pytest.raises(HostKeyUnknown) as err:
        pool.connect(target)
    pool.trust(target, err.value.key)
    log = sshd["tmp"] / "app log.txt"  # a space: the path is quoted, not interpreted
    log.write_text("first\n")
    tail = RemoteTail(pool, target, tail_command(str(log), lines=5))
    got: queue.Queue[str] = queue.Queue()

    def run() -> None:
        for line in tail.lines():
            got.put(line)

    threading.Thread(target=run, daemon=True).start()
    assert got.get(timeout=10) == "first"
    with log.open("a") as f:
        for i in range(3):
            f.write(f"written-{i}\n")
            f.flush()
            os.fsync(f.fileno())
    assert [got.get(timeout=10) for _ in range(3)] == ["written-0", "written-1", "written-2"]
    tail.stop()
    pool.close()


def test_commands_quote_what_they_are_given() -> None:
    assert tail_command("/var/log/a b;rm -rf /", 3) == "tail -n 3 -F -- '/var/log/a b;rm -rf /'"
    assert journal_command("nomad", 20).endswith("-f -u nomad")
    with pytest.raises(ValueError):
        journal_command("nomad; reboot")


def test_jamtui_logs_host_file_asks_then_trusts(sshd: dict[str, Any]) -> None:
    import sys

    tmp = sshd["tmp"]
    inventory = tmp / "inventory.yml"
    inventory.write_text(f"""all:
  children:
    vs:
      hosts:
        vs9:
          ansible_host: 127.0.0.1
          ansible_port: {sshd['port']}
          ansible_user: {sshd['user']}
""")
    config = tmp / "jamtui.toml"
    config.write_text(f'inventory = "{inventory}"\n\n[ssh]\nkey_file = "{sshd["client_key"]}"\n'
                      f'known_hosts = "{tmp / "known"}"\n')
    log = tmp / "nomad.log"
    log.write_text("one\ntwo\nthree\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "CONSUL_"))}
    base = [sys.executable, "-m", "jamtui", "logs", "--config", str(config), "--host", "vs9",
            "--file", str(log), "-n", "2"]
    first = subprocess.run(base, capture_output=True, text=True, env=env, timeout=30)
    assert first.returncode == 1
    real = paramiko.Ed25519Key.from_private_key_file(str(sshd["host_key"]))
    assert f"--trust {fingerprint(real)}" in first.stderr and not first.stdout
    wrong = subprocess.run([*base, "--trust", "SHA256:not-it"], capture_output=True,
                           text=True, env=env, timeout=30)
    assert wrong.returncode == 1
    ok = subprocess.run([*base, "--trust", fingerprint(real)], capture_output=True, text=True,
                        env=env, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == ["two", "three"]
    again = subprocess.run(base, capture_output=True, text=True, env=env, timeout=30)
    assert again.returncode == 0 and again.stdout.splitlines() == ["two", "three"]
