"""What the lab's servers share: the world, the faults, the secrets and each other's addresses."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .http import BackendServer, Faults
from .world import World


@dataclass(frozen=True)
class LabSecrets:
    """Credentials the lab accepts; generated per run, never printed except as `export` lines."""

    nomad_token: str
    consul_token: str
    proxmox_token_value: str
    proxmox_password: str
    proxmox_user: str = "root@pam"
    proxmox_token_name: str = "jamtui"

    @property
    def proxmox_token_id(self) -> str:
        return f"{self.proxmox_user}!{self.proxmox_token_name}"

    @property
    def proxmox_api_token(self) -> str:
        """The form PROXMOX_VE_API_TOKEN takes: USER@REALM!TOKENID=SECRET."""
        return f"{self.proxmox_token_id}={self.proxmox_token_value}"


@dataclass
class TLSFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    # with mutual TLS (jamtui lab --tls): backend -> (certificate, key)
    servers: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    clients: dict[str, tuple[Path, Path]] = field(default_factory=dict)


@dataclass
class SimContext:
    world: World
    faults: Faults
    secrets: LabSecrets
    tls: TLSFiles
    host: str = "127.0.0.1"
    # filled in as servers start: backend name -> base URL
    urls: dict[str, str] = field(default_factory=dict)
    # every listening backend server by name; Fabio instances are `fabio:<node>` (UI and API)
    # and `fabio:<node>:lb` (the proxy), added and removed as their allocations come and go
    servers: dict[str, BackendServer] = field(default_factory=dict)
    # requests the Nomad API was asked, "GET /v1/jobs?prefix" → count (see sim/nomad.py)
    requests: Counter[str] = field(default_factory=Counter)
