"""Hosts over SSH (paramiko): `tail -F` of a file or `journalctl -f` of a unit, through the
bastion when configured. Host keys are checked against known_hosts: an unknown key is
refused with its fingerprint (the UI asks the operator, then `trust()` records it), a changed
key is refused outright. Connections are pooled per host and closed together.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import re
import shlex
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko

# paramiko logs refused channels and resets at ERROR; with no handler Python would print them
# on stderr, over the TUI. jamtui says what failed in its own words instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from ..config import Config
    from ..inventory import Inventory

UNIT = re.compile(r"[A-Za-z0-9@._:-]+")


class HostKeyUnknown(Exception):
    """The host's key is not in known_hosts: ask the operator, then trust() it."""

    def __init__(self, host: str, key: paramiko.PKey) -> None:
        self.host = host
        self.key = key
        super().__init__(f"{host} is not a known host; its {key.get_name()} key is "
                         f"{fingerprint(key)}. Check it against the host, then accept it.")


class HostKeyChanged(Exception):
    """The host's key differs from the one known: refused (it may be an attack)."""


def fingerprint(key: paramiko.PKey) -> str:
    """The SHA256 form `ssh-keygen -l` prints."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


@dataclass(frozen=True)
class Target:
    host: str  # the inventory name, for messages
    address: str
    port: int = 22
    user: str = "root"


class _Refuse(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        raise HostKeyUnknown(hostname, key)


class QuietChannel:
    """A channel used as the socket of an SSH connection inside it (a host reached through the
    bastion). paramiko closes that socket from its own thread when the connection ends; if
    the bastion's side is already gone the close would raise there, in a thread nobody
    joins, and print a traceback over the screen. Here it is simply closed."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self._channel = channel

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)

    def close(self) -> None:
        with contextlib.suppress(EOFError, OSError, paramiko.SSHException):
            self._channel.close()


class SSHPool:
    """Connections by (address, port, user), opened through `jump` when given."""

    def __init__(self, known_hosts: str | Path, key_file: str = "",
                 jump: Target | None = None, timeout: float = 10.0) -> None:
        self.known_hosts = Path(known_hosts).expanduser()
        self.key_file = key_file
        self.jump = jump
        self.timeout = timeout
        self._clients: dict[tuple[str, int, str], paramiko.SSHClient] = {}
        self._lock = threading.Lock()

    def _client(self, target: Target, sock: Any = None
                ) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(_Refuse())
        try:
            client.connect(target.address, port=target.port, username=target.user,
                           key_filename=self.key_file or None, allow_agent=True,
                           look_for_keys=not self.key_file, timeout=self.timeout,
                           banner_timeout=self.timeout, auth_timeout=self.timeout, sock=sock)
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyChanged(
                f"the host key of {target.host} ({known_name(target.address, target.port)}) "
                f"changed: it is now {fingerprint(exc.key)}, known_hosts says "
                f"{fingerprint(exc.expected_key)}. Refused: if the host was rebuilt, remove "
                f"its line from {self.known_hosts}.") from None
        except BaseException:
            client.close()
            raise
        return client

    def connect(self, target: Target) -> paramiko.SSHClient:
        """A logged-in client (pooled). Host-key problems raise HostKeyUnknown/Changed; every
        other SSH failure is an OSError in words (unreachable, refused, auth failed)."""
        try:
            return self._connect(target)
        except (HostKeyUnknown, HostKeyChanged):
            raise
        except paramiko.ChannelException as exc:
            raise OSError(f"{target.host} ({target.address}:{target.port}) cannot be reached "
                          f"through the bastion: {exc.text or 'connect failed'}") from None
        except paramiko.AuthenticationException:
            raise OSError(f"{target.host}: SSH login as {target.user} refused (key not "
                          "authorised)") from None
        except paramiko.SSHException as exc:
            raise OSError(f"{target.host}: SSH failed: {exc}") from None

    def _connect(self, target: Target) -> paramiko.SSHClient:
        key = (target.address, target.port, target.user)
        with self._lock:
            client = self._clients.get(key)
            transport = client.get_transport() if client else None
            if client is not None and transport is not None and transport.is_active():
                return client
            sock = None
            if self.jump is not None:
                bastion = self._clients.get((self.jump.address, self.jump.port,
                                             self.jump.user)) or self._client(self.jump)
                self._clients[(self.jump.address, self.jump.port, self.jump.user)] = bastion
                jump_transport = bastion.get_transport()
                assert jump_transport is not None
                sock = QuietChannel(jump_transport.open_channel(
                    "direct-tcpip", (target.address, target.port), ("127.0.0.1", 0)))
            client = self._client(target, sock)
            self._clients[key] = client
            return client

    def banner(self, target: Target, timeout: float = 5.0) -> str:
        """Whether the host's SSH server answers: its identification line (`SSH-2.0-...`),
        reached directly or through the bastion (a direct-tcpip channel). No login."""
        import socket

        if self.jump is None:
            sock: Any = socket.create_connection((target.address, target.port), timeout=timeout)
        else:
            with self._lock:
                bastion = self._clients.get((self.jump.address, self.jump.port,
                                             self.jump.user)) or self._client(self.jump)
                self._clients[(self.jump.address, self.jump.port, self.jump.user)] = bastion
            transport = bastion.get_transport()
            assert transport is not None
            try:
                sock = transport.open_channel("direct-tcpip", (target.address, target.port),
                                              ("127.0.0.1", 0), timeout=timeout)
            except paramiko.ChannelException as exc:
                raise OSError(f"{target.host} ({target.address}:{target.port}) cannot be "
                              f"reached through the bastion: {exc.text or 'connect failed'}"
                              ) from None
        try:
            sock.settimeout(timeout)
            data = b""
            while b"\n" not in data and len(data) < 256:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
        finally:
            sock.close()
        line = data.split(b"\n")[0].decode(errors="replace").strip()
        if not line.startswith("SSH-"):
            raise OSError(f"{target.host} answered on port {target.port}, but not as SSH")
        return line

    def trust(self, target: Target, key: paramiko.PKey) -> None:
        """Record a key the operator accepted in known_hosts (created 0600 if missing)."""
        keys = paramiko.HostKeys()
        if self.known_hosts.exists():
            keys.load(str(self.known_hosts))
        keys.add(known_name(target.address, target.port), key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        self.known_hosts.touch(mode=0o600, exist_ok=True)
        keys.save(str(self.known_hosts))

    def whose_key(self, target: Target, asked: str) -> Target:
        """The target whose key paramiko asked about: the host's, or the bastion's on the
        way to it (so an accepted key is recorded under the name it belongs to)."""
        if self.jump is not None and asked in (self.jump.address,
                                               known_name(self.jump.address, self.jump.port)):
            return self.jump
        return target

    def release(self, target: Target) -> None:
        """Close the host's connection (the bastion's stays for the others)."""
        with self._lock:
            client = self._clients.pop((target.address, target.port, target.user), None)
        if client is not None:
            client.close()

    def close(self) -> None:
        """Every connection; the hosts' before the bastion's they run through."""
        with self._lock:
            jump = (self.jump.address, self.jump.port, self.jump.user) if self.jump else None
            for key in sorted(self._clients, key=lambda k: k == jump):
                self._clients[key].close()
            self._clients.clear()


class RemoteTail:
    """The lines a remote command prints (`tail -F`, `journalctl -f`), until stopped."""

    def __init__(self, pool: SSHPool, target: Target, command: str) -> None:
        self.pool = pool
        self.target = target
        self.command = command
        self._channel: paramiko.Channel | None = None

    def lines(self) -> Iterator[str]:
        client = self.pool.connect(self.target)
        transport = client.get_transport()
        assert transport is not None
        channel = transport.open_session()
        self._channel = channel
        channel.exec_command(self.command)
        buffer = b""
        while True:
            data = channel.recv(65536)
            if not data:
                break
            buffer += data
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                yield raw.decode(errors="replace")
        if buffer:
            yield buffer.decode(errors="replace")
        status = channel.recv_exit_status()
        if status not in (0, -1):
            error = channel.recv_stderr(4096).decode(errors="replace").strip()
            raise OSError(f"{self.command.split()[0]} on {self.target.host} exited with "
                          f"{status}: {error or 'no message'}")

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()


Accept = Callable[[str, paramiko.PKey], bool]


def open_host_tail(pool: SSHPool, target: Target, command: str,
                   accept: Accept) -> RemoteTail | None:
    """The one connect-and-trust loop (the cockpit's and `jamtui logs --host`'s): connect to
    the target, through the bastion when configured; each unknown key on the way (the
    bastion's, then the host's) is put to `accept(host, key)` and, if accepted, recorded in
    known_hosts under the name it belongs to. None when a key is refused; a changed key
    raises HostKeyChanged, every other failure OSError in words."""
    accepted: set[tuple[str, str]] = set()
    while True:
        try:
            pool.connect(target)
            return RemoteTail(pool, target, command)
        except HostKeyUnknown as exc:
            seen = (exc.host, fingerprint(exc.key))
            if seen in accepted:  # recorded, yet unknown again: known_hosts is not written
                raise OSError(f"{exc.host}: the accepted key could not be recorded in "
                              f"{pool.known_hosts}") from None
            if not accept(exc.host, exc.key):
                return None
            accepted.add(seen)
            pool.trust(pool.whose_key(target, exc.host), exc.key)


def tail_command(path: str, lines: int = 10, follow: bool = True) -> str:
    """`tail` of one file; the path is quoted, never interpreted by the remote shell."""
    return f"tail -n {int(lines)} {'-F ' if follow else ''}-- {shlex.quote(path)}"


def journal_command(unit: str, lines: int = 10, follow: bool = True) -> str:
    if not UNIT.fullmatch(unit):
        raise ValueError(f"not a systemd unit name: {unit!r}")
    return (f"journalctl --no-pager -o short-iso -n {int(lines)} "
            f"{'-f ' if follow else ''}-u {shlex.quote(unit)}")


def host_target(inventory: Inventory, name: str, cfg: Config) -> Target:
    """An inventory host as an SSH target (ansible_host, ansible_port, ansible_user)."""
    host = inventory.host(name)
    if host is None or not host.address:
        known = ", ".join(h.name for h in inventory.hosts if h.address)
        raise LookupError(f"no host {name!r} with an address in {inventory.path} "
                          f"(hosts: {known})")
    return Target(host.name, str(host.address), int(host.vars.get("ansible_port", 22)),
                  str(host.vars.get("ansible_user") or cfg.ssh.user))


def bastion_target(inventory: Inventory | None, cfg: Config) -> Target | None:
    """`[ssh] bastion`: an inventory host's name, or an address `[user@]host[:port]`."""
    spec = cfg.ssh.bastion
    if not spec:
        return None
    if inventory is not None and inventory.host(spec) is not None:
        return host_target(inventory, spec, cfg)
    user, _, rest = spec.rpartition("@")
    address, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "22")
    if not port.isdigit():
        raise LookupError(f"[ssh] bastion {spec!r} is neither an inventory host nor "
                          "[user@]address[:port]")
    return Target("bastion", address, int(port), user or cfg.ssh.user)


def pool_for(cfg: Config, inventory: Inventory | None) -> SSHPool:
    return SSHPool(cfg.ssh.known_hosts, key_file=cfg.ssh.key_file,
                   jump=bastion_target(inventory, cfg))
