"""What the lab's servers share: the world, the faults, the secrets and each other's addresses."""

from __future__ import annotations

import hmac
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .acl import CONSUL_READ_ONLY, MANAGEMENT, NOMAD_READ_ONLY, PVE_ALL, PVE_AUDITOR, Grant
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
    # the read-only tokens: a dashboard's least privilege (sim/acl.py has their policies)
    nomad_read_token: str = field(default_factory=lambda: str(uuid.uuid4()))
    consul_read_token: str = field(default_factory=lambda: str(uuid.uuid4()))
    proxmox_read_token_value: str = field(default_factory=lambda: str(uuid.uuid4()))
    proxmox_read_token_id: str = "jamtui@pve!readonly"
    # what the read-only tokens may do (a test narrows them to try one refusal at a time)
    nomad_read_capabilities: frozenset[str] = NOMAD_READ_ONLY
    consul_read_capabilities: frozenset[str] = CONSUL_READ_ONLY
    proxmox_read_privileges: frozenset[str] = PVE_AUDITOR

    @property
    def proxmox_token_id(self) -> str:
        return f"{self.proxmox_user}!{self.proxmox_token_name}"

    @property
    def proxmox_api_token(self) -> str:
        """The form PROXMOX_VE_API_TOKEN takes: USER@REALM!TOKENID=SECRET."""
        return f"{self.proxmox_token_id}={self.proxmox_token_value}"

    @property
    def proxmox_read_api_token(self) -> str:
        return f"{self.proxmox_read_token_id}={self.proxmox_read_token_value}"

    def nomad_grant(self, secret: str) -> Grant | None:
        """What a Nomad secret may do; None when Nomad knows no such token."""
        read_only = Grant("readonly", self.nomad_read_capabilities, "readonly")
        return _grant(secret, {self.nomad_token: Grant("management", MANAGEMENT, "mgmt"),
                               self.nomad_read_token: read_only})

    def consul_grant(self, secret: str) -> Grant | None:
        return _grant(secret, {self.consul_token: Grant("management", MANAGEMENT, "mgmt"),
                               self.consul_read_token: Grant(
                                   "readonly", self.consul_read_capabilities,
                                   str(uuid.uuid5(uuid.NAMESPACE_OID, self.consul_read_token)))})

    def proxmox_grant(self, authorization: str) -> Grant | None:
        """The `PVEAPIToken=ID=SECRET` header's privileges on /; None when it is not valid."""
        tokens = {
            f"PVEAPIToken={self.proxmox_token_id}={self.proxmox_token_value}":
                Grant(self.proxmox_token_id, PVE_ALL),
            f"PVEAPIToken={self.proxmox_read_api_token}":
                Grant(self.proxmox_read_token_id, self.proxmox_read_privileges),
        }
        for header, grant in tokens.items():
            if hmac.compare_digest(authorization, header):
                return grant
        return None


def _grant(secret: str, known: dict[str, Grant]) -> Grant | None:
    if not secret:
        return Grant("anonymous", frozenset(), "00000000-0000-0000-0000-000000000002")  # deny
    for value, grant in known.items():
        if hmac.compare_digest(secret, value):
            return grant
    return None


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
    # the same for Consul's API (see sim/consul.py)
    consul_requests: Counter[str] = field(default_factory=Counter)
    # `/api/routes` asked of each Fabio instance, by node (HAProxy's checks ask `/health`)
    fabio_routes: Counter[str] = field(default_factory=Counter)
    # Fabio instances whose Consul watch lags (by node): each serves the table it had then
    fabio_frozen: dict[str, bytes] = field(default_factory=dict)
    # the lab's work directory (allocation directories for exec and fs live under it)
    workdir: Path | None = None
