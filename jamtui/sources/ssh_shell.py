"""An interactive SSH session on a lab host, through `[ssh] bastion`, on this terminal.

The system's OpenSSH client when it is installed (the user's agent and ~/.ssh/config apply):
an argv list, never a shell string, with a private ssh_config file (`-F`) naming the host and
the bastion (`-J`), jamtui's known_hosts as `UserKnownHostsFile` and
`StrictHostKeyChecking ask`, the same policy as the log tails (an unknown key is shown and
the operator decides; a changed key is refused). Without OpenSSH, an interactive channel of
our own through paramiko (`SSHPool`, the tails' connections) with the same known_hosts check.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import termios
import threading
import tty as ttymod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ssh import (
    HostKeyChanged,
    SSHPool,
    Target,
    bastion_target,
    fingerprint,
    host_target,
    open_host_tail,
)

if TYPE_CHECKING:
    from ..config import Config
    from ..inventory import Inventory

_ADDRESS = re.compile(r"[A-Za-z0-9._:-]+|\[[0-9A-Fa-f:.]+\]")
_USER = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]*")
TARGET_ALIAS = "jamtui-target"
BASTION_ALIAS = "jamtui-bastion"


class ShellError(Exception):
    """The session could not start: the reason in words."""


def _address(value: str, what: str) -> str:
    if not _ADDRESS.fullmatch(value) or value.startswith("-"):
        raise ShellError(f"{what} address {value!r} is not a host name or IP address")
    return value


def _user(value: str, what: str) -> str:
    if not _USER.fullmatch(value):
        raise ShellError(f"{what} user {value!r} is not a user name")
    return value


def _path(value: str, what: str) -> str:
    """A path as an ssh_config value: quoted, its `%` tokens escaped; refused if it would
    break out of the quotes."""
    if any(c in value for c in '"\n\r\0'):
        raise ShellError(f"{what} path {value!r} cannot be used in an ssh_config")
    return '"' + value.replace("%", "%%") + '"'


def _host_block(alias: str, t: Target, what: str) -> str:
    return (f"Host {alias}\n  HostName {_address(t.address, what)}\n  Port {int(t.port)}\n"
            f"  User {_user(t.user, what)}\n")


def ssh_config_text(cfg: Config, target: Target, jump: Target | None,
                    user_config: Path | None = None) -> str:
    """The private ssh_config: our two hosts first (first value wins), then the user's own."""
    known = str(Path(cfg.ssh.known_hosts).expanduser())
    aliases = TARGET_ALIAS + (f" {BASTION_ALIAS}" if jump else "")
    text = _host_block(TARGET_ALIAS, target, target.host)
    if jump is not None:
        text += _host_block(BASTION_ALIAS, jump, "bastion")
    text += (f"Host {aliases}\n  UserKnownHostsFile {_path(known, 'known_hosts')}\n"
             "  StrictHostKeyChecking ask\n  HashKnownHosts no\n")
    if cfg.ssh.key_file:
        text += f"  IdentityFile {_path(str(Path(cfg.ssh.key_file).expanduser()), 'key')}\n"
    user_config = user_config if user_config is not None else Path("~/.ssh/config").expanduser()
    if user_config.is_file():
        text += f"Host *\n  Include {_path(str(user_config), 'ssh config')}\n"
    return text


def ssh_argv(config_file: Path, jump: bool, ssh: str = "ssh") -> list[str]:
    """The OpenSSH command: `ssh -F FILE [-J jamtui-bastion] -t jamtui-target`."""
    argv = [ssh, "-F", str(config_file)]
    if jump:
        argv += ["-J", BASTION_ALIAS]
    return [*argv, "-t", TARGET_ALIAS]


def targets(cfg: Config, inventory: Inventory | None, name: str, address: str = ""
            ) -> tuple[Target, Target | None]:
    """The host (an inventory host, else `address` as given by the backend) and the bastion."""
    try:
        if inventory is None:
            raise LookupError(f"no inventory to find {name!r} in")
        target = host_target(inventory, name, cfg)
    except LookupError:
        if not address:
            raise
        target = Target(name, address, 22, cfg.ssh.user)
    return target, bastion_target(inventory, cfg)


@contextlib.contextmanager
def openssh_command(cfg: Config, target: Target, jump: Target | None,
                    ssh: str = "ssh") -> Iterator[list[str]]:
    """The argv to run, with its ssh_config in a private directory removed afterwards."""
    text = ssh_config_text(cfg, target, jump)
    folder = Path(tempfile.mkdtemp(prefix="jamtui-ssh-"))
    try:
        conf = folder / "ssh_config"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        yield ssh_argv(conf, jump is not None, ssh)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def system_ssh() -> str | None:
    return shutil.which("ssh")


def run_shell(cfg: Config, target: Target, jump: Target | None, *,
              prefer_openssh: bool = True,
              runner: Callable[[list[str]], int] | None = None) -> int:
    """An interactive session on this terminal; the remote shell's exit status.
    `runner` runs the OpenSSH argv (tests observe it); the default is subprocess.call."""
    ssh = system_ssh() if prefer_openssh else None
    if ssh is not None:
        with openssh_command(cfg, target, jump, ssh) as argv:
            return (runner or _call)(argv)
    return paramiko_shell(cfg, target, jump)


def _call(argv: list[str]) -> int:
    return subprocess.call(argv)  # an argv list: no shell


# -- paramiko's interactive channel ------------------------------------------------------------


def _ask_trust(target: Target, key: Any, stdin: int, stdout: int) -> bool:
    os.write(stdout, (f"The host key of {target.host} ({target.address}:{target.port}) is not "
                      f"known.\r\nIts fingerprint is {fingerprint(key)}.\r\n"
                      "Trust it and connect? [y/N] ").encode())
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = os.read(stdin, 1)
        if not chunk:
            break
        answer += chunk
    return answer.strip().lower() in (b"y", b"yes")


def paramiko_shell(cfg: Config, target: Target, jump: Target | None, *,
                   stdin: int = 0, stdout: int = 1) -> int:
    """The interactive channel of our own: a PTY of this terminal's size, the shell, raw mode
    while it runs, SIGWINCH → window-change."""
    from .exec import terminal_size

    pool = SSHPool(cfg.ssh.known_hosts, key_file=cfg.ssh.key_file, jump=jump)
    try:
        # the one connect-and-trust loop (ssh.open_host_tail): each unknown key on the way is
        # asked about here, on the terminal, and recorded under the name it belongs to
        if open_host_tail(pool, target, "", lambda host, key: _ask_trust(
                pool.whose_key(target, host), key, stdin, stdout)) is None:
            raise ShellError(f"{target.host}: host key not trusted; nothing was sent")
        client = pool.connect(target)
        transport = client.get_transport()
        assert transport is not None
        chan = transport.open_session()
        rows, cols = terminal_size(stdout)
        chan.get_pty(term=os.environ.get("TERM", "xterm-256color"), width=cols, height=rows)
        chan.invoke_shell()
        saved = termios.tcgetattr(stdin) if os.isatty(stdin) else None
        main = threading.current_thread() is threading.main_thread()
        old: Any = None
        if main:
            old = signal.signal(signal.SIGWINCH, lambda *_: chan.resize_pty(
                *reversed(terminal_size(stdout))))
        try:
            if saved is not None:
                ttymod.setraw(stdin)
            while True:
                ready, _, _ = select.select([chan, stdin], [], [], 0.2)
                if chan in ready:
                    data = chan.recv(65536)
                    if not data:
                        break
                    os.write(stdout, data)
                if stdin in ready:
                    data = os.read(stdin, 65536)
                    if not data:
                        chan.shutdown_write()
                    else:
                        chan.sendall(data)
                if chan.exit_status_ready() and not chan.recv_ready():
                    break
        finally:
            if main:
                signal.signal(signal.SIGWINCH, old if old is not None else signal.SIG_DFL)
            if saved is not None:
                termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        status = chan.recv_exit_status() if chan.exit_status_ready() else 255
        chan.close()
        return status
    except (OSError, HostKeyChanged) as exc:
        raise ShellError(str(exc)) from None
    finally:
        pool.close()
