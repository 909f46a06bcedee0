"""The lab's bastion over SSH (paramiko's server side): public-key login with the lab's client
key, and `direct-tcpip` forwarding to the lab's hosts. A VM that is running and booted (or a
hypervisor) answers on port 22 with an SSH server of its own (its own host key, so jamtui's
known_hosts check meets an unknown key the first time), which runs `journalctl` and `tail`
on the lab's logs; anything else is refused as an unreachable host would be. jamtui reaches
it exactly as it reaches a real host through a real bastion."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko

from ..sources.ssh import QuietChannel
from .context import SimContext

logging.getLogger("paramiko").addHandler(logging.NullHandler())

BANNER = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"


class _Server(paramiko.ServerInterface):
    def __init__(self, bastion: LabBastion) -> None:
        self.bastion = bastion
        self.forwards: dict[int, tuple[str, int]] = {}

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return self.bastion.authorise(key)

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_direct_tcpip_request(self, chanid: int, origin: tuple[str, int],
                                           destination: tuple[str, int]) -> int:
        address, port = destination
        if port != 22 or not self.bastion.host_at(address):
            return paramiko.OPEN_FAILED_CONNECT_FAILED
        self.forwards[chanid] = destination
        return paramiko.OPEN_SUCCEEDED


class _HostServer(paramiko.ServerInterface):
    """One lab host's sshd: the lab's key logs in; `exec` of journalctl or tail."""

    def __init__(self, bastion: LabBastion, host: str) -> None:
        self.bastion = bastion
        self.host = host
        self.commands: dict[int, str] = {}
        self.shells: set[int] = set()
        self.ptys: dict[int, tuple[int, int]] = {}  # channel → (rows, columns)
        self.terminals: dict[int, HostShell] = {}
        self.ready = threading.Condition()

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return self.bastion.authorise(key)

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else \
            paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        with self.ready:
            self.commands[channel.get_id()] = command.decode(errors="replace")
            self.ready.notify_all()
        return True

    def check_channel_pty_request(self, channel: paramiko.Channel, term: bytes, width: int,
                                  height: int, pixelwidth: int, pixelheight: int,
                                  modes: bytes) -> bool:
        self.ptys[channel.get_id()] = (height, width)
        return True

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        with self.ready:
            self.shells.add(channel.get_id())
            self.ready.notify_all()
        return True

    def check_channel_window_change_request(self, channel: paramiko.Channel, width: int,
                                            height: int, pixelwidth: int,
                                            pixelheight: int) -> bool:
        self.ptys[channel.get_id()] = (height, width)
        shell = self.terminals.get(channel.get_id())
        if shell is not None:
            shell.resize(height, width)
        return True


class LabBastion:
    """Listens on loopback; one thread per connection."""

    def __init__(self, ctx: SimContext, workdir: Path, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.ctx = ctx
        self.dir = workdir / "ssh"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.host_key = paramiko.ECDSAKey.generate()
        self.client_key = paramiko.ECDSAKey.generate()
        self.key_file = self.dir / "id_ecdsa"
        self.client_key.write_private_key_file(str(self.key_file))
        self.key_file.chmod(0o600)
        self.sock = socket.create_server((host, port))
        self.sock.settimeout(0.5)
        self.address = self.sock.getsockname()[:2]
        self.known_hosts = self.dir / "known_hosts"
        name = f"[{self.address[0]}]:{self.address[1]}"
        self.known_hosts.write_text(
            f"{name} {self.host_key.get_name()} {self.host_key.get_base64()}\n")
        self._stop = threading.Event()
        self._transports: list[paramiko.Transport] = []
        self._host_keys: dict[str, paramiko.PKey] = {}
        self._keys_lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="jamlab-ssh", daemon=True)

    @property
    def spec(self) -> str:
        return f"root@{self.address[0]}:{self.address[1]}"

    def authorise(self, key: paramiko.PKey) -> int:
        """The lab's one client key logs in, on the bastion and on every host behind it."""
        same = key.get_name() == self.client_key.get_name() and \
            key.asbytes() == self.client_key.asbytes()
        return paramiko.AUTH_SUCCESSFUL if same else paramiko.AUTH_FAILED

    def host_at(self, address: str) -> str | None:
        """The name of the running host at that address, if one answers."""
        w = self.ctx.world
        for vm in list(w.vms.values()):
            if vm.ip == address and vm.status == "running" and vm.booted:
                return vm.name
        return next((hv.name for hv in list(w.hypervisors.values()) if hv.address == address),
                    None)

    def key_of(self, host: str) -> paramiko.PKey:
        with self._keys_lock:
            if host not in self._host_keys:
                self._host_keys[host] = paramiko.ECDSAKey.generate()
            return self._host_keys[host]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):  # wakes accept() now, not at its 0.5 s timeout
            self.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self.sock.close()
        for t in self._transports:
            t.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: Any) -> None:
        transport = paramiko.Transport(conn)
        self._transports.append(transport)
        transport.add_server_key(self.host_key)
        server = _Server(self)
        try:
            transport.start_server(server=server)
        except (paramiko.SSHException, EOFError, OSError):
            transport.close()
            return
        while transport.is_active() and not self._stop.is_set():
            channel = transport.accept(0.5)
            if channel is None:
                continue
            destination = server.forwards.get(channel.get_id())
            if destination is not None:
                host = self.host_at(destination[0]) or destination[0]
                threading.Thread(target=self._host_session, args=(channel, host),
                                 daemon=True, name=f"jamlab-ssh:{host}").start()
        transport.close()

    def _host_session(self, channel: paramiko.Channel, host: str) -> None:
        """The host's own sshd, spoken over the forwarded channel."""
        transport = paramiko.Transport(QuietChannel(channel))  # type: ignore[arg-type]
        transport.local_version = BANNER.strip()
        self._transports.append(transport)
        transport.add_server_key(self.key_of(host))
        server = _HostServer(self, host)
        try:
            transport.start_server(server=server)
        except (paramiko.SSHException, EOFError, OSError):
            transport.close()  # a probe that read the banner and left
            return
        while transport.is_active() and not self._stop.is_set():
            chan = transport.accept(0.5)
            if chan is not None:
                threading.Thread(target=self._exec, args=(server, chan), daemon=True).start()
        transport.close()

    def _exec(self, server: _HostServer, chan: paramiko.Channel) -> None:
        cid = chan.get_id()
        with server.ready:
            server.ready.wait_for(
                lambda: cid in server.commands or cid in server.shells or chan.closed, 5)
        command = server.commands.get(cid, "")
        try:
            if cid in server.shells:
                shell = HostShell(self.dir.parent / "hosts" / _safe_name(server.host),
                                  server.host, server.ptys.get(cid))
                server.terminals[cid] = shell
                status = shell.run(chan, self._stop)
            else:
                status = run_command(self.ctx, server.host, command, chan, self._stop)
        except OSError:
            return  # the client went away
        try:
            chan.send_exit_status(status)
            chan.close()
        except OSError:
            pass


def _journal_lines(ctx: SimContext, host: str, unit: str) -> Iterator[str]:
    """What `journalctl -o short-iso -u UNIT` would show on a lab host, made from the world."""
    import itertools

    w = ctx.world
    pid = 700 + sum(map(ord, host + unit)) % 300
    for n in itertools.count():
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        if unit == "nomad":
            allocs = [a for a in list(w.allocs.values())
                      if w.nodes.get(a.node_id) and w.nodes[a.node_id].name == host]
            a = allocs[n % len(allocs)] if allocs else None
            msg = (f"client.alloc_runner.task_runner: task run loop: alloc_id={a.id} "
                   f"task={next(iter(a.task_states), 'main')} status={a.client_status}"
                   if a else "client: node registration complete")
            yield f"{stamp} {host} nomad[{pid}]:     [INFO]  {msg}"
        elif unit == "consul":
            checks = [c for (node, _), c in list(w.checks.items()) if node == host]
            c = checks[n % len(checks)] if checks else None
            msg = (f"agent: Check status: check={c.check_id} status={c.status}" if c
                   else "agent: Synced node info")
            yield f"{stamp} {host} consul[{pid}]: {msg}"
        else:
            yield f"{stamp} {host} {unit}[{pid}]: \x1b[32mok\x1b[0m heartbeat {n}"


def run_command(ctx: SimContext, host: str, command: str, chan: Any,
                stop: threading.Event) -> int:
    """`journalctl ... -u UNIT [-f]` and `tail -n N [-F] -- PATH`, the commands jamtui runs."""
    import shlex

    try:
        argv = shlex.split(command)
    except ValueError:
        argv = []
    if not argv or argv[0] not in ("journalctl", "tail"):
        chan.sendall_stderr(f"bash: {argv[0] if argv else ''}: command not found\n".encode())
        return 127
    count = int(argv[argv.index("-n") + 1]) if "-n" in argv else 10
    follow = "-f" in argv or "-F" in argv
    if argv[0] == "journalctl":
        unit = argv[argv.index("-u") + 1] if "-u" in argv else "systemd"
        lines = _journal_lines(ctx, host, unit)
    else:
        path = argv[-1]
        if path not in ("/var/log/syslog", "/var/log/jamlab.log"):
            chan.sendall_stderr(f"tail: cannot open '{path}' for reading: No such file or "
                                "directory\n".encode())
            if not follow:
                return 1
            while not stop.is_set() and not chan.closed:
                stop.wait(0.5)
            return 1
        lines = _journal_lines(ctx, host, "syslog")
    for _ in range(min(count, 50)):
        chan.sendall((next(lines) + "\n").encode())
    while follow and not stop.is_set() and not chan.closed:
        if stop.wait(1.0):
            break
        chan.sendall((next(lines) + "\n").encode())
    return 0


def _safe_name(host: str) -> str:
    """A host's name as a directory and prompt: nothing a shell or a path would interpret."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]", "_", host)[:63] or "host"


class HostShell:
    """A login shell on a lab host: a real `sh` under a PTY in the host's own directory (its
    home), bridged to the SSH channel; the channel's window-change resizes the PTY."""

    def __init__(self, home: Path, host: str, size: tuple[int, int] | None) -> None:
        self.home, self.host, self.size = home, host, size
        self.master = -1

    def resize(self, rows: int, cols: int) -> None:
        import fcntl
        import struct
        import termios

        if self.master >= 0:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.master, termios.TIOCSWINSZ,
                            struct.pack("HHHH", max(1, rows), max(1, cols), 0, 0))

    def run(self, chan: Any, stop: threading.Event) -> int:
        import fcntl
        import os
        import select
        import subprocess
        import termios

        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.master, slave = os.openpty()
        if self.size:
            self.resize(*self.size)
        name = _safe_name(self.host)
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": str(self.home), "TERM": "xterm-256color", "USER": "root",
               "HOSTNAME": name, "PS1": f"root@{name}:~# "}
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-i"], stdin=slave, stdout=slave, stderr=slave, cwd=self.home,
                env=env, start_new_session=True, close_fds=True,
                preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        finally:
            os.close(slave)
        try:
            while not stop.is_set():
                ready, _, _ = select.select([self.master, chan], [], [], 0.2)
                if self.master in ready:
                    try:
                        data = os.read(self.master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        break
                    chan.sendall(data)
                if chan in ready:
                    data = chan.recv(65536)
                    if not data:
                        break
                    os.write(self.master, data)
                if proc.poll() is not None and not select.select([self.master], [], [], 0)[0]:
                    break
        finally:
            if proc.poll() is None:
                proc.kill()
            code = proc.wait()
            os.close(self.master)
            self.master = -1
        return code if code >= 0 else 128 - code
