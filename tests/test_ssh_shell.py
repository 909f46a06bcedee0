"""`s` on a host, without the UI: an interactive shell on a lab host through the lab's bastion,
with Debian's OpenSSH client (`ssh -F … -J jamtui-bastion`) and with paramiko's channel, on a
real PTY. The host key policy is the log tails': unknown → asked, changed → refused."""

from __future__ import annotations

import fcntl
import os
import pty
import shutil
import struct
import sys
import termios
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.config import load_config
from jamtui.inventory import load_inventory
from jamtui.sim.lab import Lab
from jamtui.sources.ssh import Target
from jamtui.sources.ssh_shell import (
    ShellError,
    openssh_command,
    ssh_config_text,
    targets,
)
from tests.conftest import FAST
from tests.test_exec import finish, read_until


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=1, tick=0.2, traffic=False, **FAST) as running:
        yield running


def lab_config(lab: Lab):  # type: ignore[no-untyped-def]
    path = lab.workdir / "ssh-test.toml"
    path.write_text(lab.config_toml())
    return load_config(path, env=lab.env())


def test_the_openssh_command_is_an_argv_with_jamtuis_host_key_policy(lab: Lab) -> None:
    cfg = lab_config(lab)
    target, jump = targets(cfg, load_inventory(cfg.inventory), "vb0")
    assert (target.address, target.port) == ("192.168.42.20", 22)
    assert jump is not None
    with openssh_command(cfg, target, jump, "ssh") as argv:
        assert argv[:2] == ["ssh", "-F"] and argv[3:] == ["-J", "jamtui-bastion", "-t",
                                                           "jamtui-target"]
        text = Path(argv[2]).read_text()
        assert oct(Path(argv[2]).stat().st_mode & 0o777) == "0o600"
    assert not Path(argv[2]).exists()
    assert f'UserKnownHostsFile "{cfg.ssh.known_hosts}"' in text
    assert "StrictHostKeyChecking ask" in text
    assert "HostName 192.168.42.20" in text and f"Port {jump.port}" in text


@pytest.mark.parametrize("address,user", [("10.0.0.1\n  ProxyCommand touch /tmp/x", "root"),
                                          ("-oProxyCommand=x", "root"),
                                          ("10.0.0.1", "root ProxyCommand")])
def test_hostile_inventory_values_never_reach_the_ssh_config(lab: Lab, address: str,
                                                             user: str) -> None:
    cfg = lab_config(lab)
    with pytest.raises(ShellError):
        ssh_config_text(cfg, Target("evil", address, 22, user), None, Path("/nonexistent"))


@pytest.mark.skipif(shutil.which("ssh") is None,
                    reason="openssh-client is not installed (scripts/test installs it)")
def test_a_shell_on_a_lab_host_with_openssh_through_the_bastion(lab: Lab) -> None:
    cfg = lab_config(lab)
    target, jump = targets(cfg, load_inventory(cfg.inventory), "vb0")
    known = Path(cfg.ssh.known_hosts)
    before = known.read_text()
    env = {**os.environ, "HOME": str(lab.workdir), "TERM": "xterm"}
    with openssh_command(cfg, target, jump, shutil.which("ssh") or "ssh") as argv:
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(argv[0], argv, env)
        seen = read_until(fd, b"(yes/no")  # vb0's key is unknown: the operator is asked
        assert b"192.168.42.20" in seen, seen
        os.write(fd, b"yes\r")
        assert b"root@vb0:~# " in read_until(fd, b"root@vb0:~# ")
        # a resize reaches the host's PTY (SIGWINCH → window-change)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
        time.sleep(0.3)
        os.write(fd, b"stty size\r")
        assert b"33 111" in read_until(fd, b"33 111")
        os.write(fd, b"echo h''i; exit 4\r")
        code, rest = finish(pid, fd)
    assert code == 4
    assert b"hi" in rest.replace(b"h''i", b"")
    # accepted into jamtui's known_hosts, the file the log tails check
    assert "192.168.42.20" not in before and "192.168.42.20 " in known.read_text()


def test_a_shell_on_a_lab_host_with_paramikos_channel(lab: Lab) -> None:
    cfg_path = lab.workdir / "ssh-test.toml"
    cfg_path.write_text(lab.config_toml())
    script = textwrap.dedent(f"""
        import os, sys
        from jamtui.config import load_config
        from jamtui.inventory import load_inventory
        from jamtui.sources.ssh_shell import paramiko_shell, targets
        cfg = load_config({str(cfg_path)!r})
        t, j = targets(cfg, load_inventory(cfg.inventory), "pve2")
        sys.exit(paramiko_shell(cfg, t, j))
    """)
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-c", script])
    seen = read_until(fd, b"[y/N]")
    if b"[y/N]" in seen:  # pve2 not met before in this module
        os.write(fd, b"y\r")
    assert b"root@pve2:~# " in read_until(fd, b"root@pve2:~# ")
    os.write(fd, b"stty size; exit 6\r")
    code, rest = finish(pid, fd)
    assert code == 6, rest
