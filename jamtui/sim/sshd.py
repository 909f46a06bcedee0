"""The lab's bastion over SSH (paramiko's server side): public-key login with the lab's client
key, and `direct-tcpip` forwarding to the lab's hosts: a VM that is running and booted
answers on port 22 with an OpenSSH identification line; anything else is refused as an
unreachable host would be. Enough for "wait until the new VM answers on SSH" through the
bastion, exactly as jamtui does it against a real one."""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Any

import paramiko

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
        if key.get_name() == self.bastion.client_key.get_name() and \
                key.asbytes() == self.bastion.client_key.asbytes():
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_direct_tcpip_request(self, chanid: int, origin: tuple[str, int],
                                           destination: tuple[str, int]) -> int:
        address, port = destination
        if port != 22 or not self.bastion.answers(address):
            return paramiko.OPEN_FAILED_CONNECT_FAILED
        self.forwards[chanid] = destination
        return paramiko.OPEN_SUCCEEDED


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
        self._thread = threading.Thread(target=self._serve, name="jamlab-ssh", daemon=True)

    @property
    def spec(self) -> str:
        return f"root@{self.address[0]}:{self.address[1]}"

    def answers(self, address: str) -> bool:
        return any(vm.ip == address and vm.status == "running" and vm.booted
                   for vm in list(self.ctx.world.vms.values()))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
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
            if channel.get_id() in server.forwards:
                try:
                    channel.sendall(BANNER.encode())
                finally:
                    channel.shutdown_write()
                    channel.close()
        transport.close()
