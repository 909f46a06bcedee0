"""`jamtui doctor`: check the configuration and every backend, and say what to do about each
failure. Plain HTTP on purpose: the checks must work even where a client library would hide
the reason (TLS, token, wrong service on the port)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import requests

from .config import Config, Secret
from .inventory import InventoryError, inventory_problems, load_inventory
from .sources.base import scrub
from .sources.reasons import in_words
from .sources.tls import (
    EXPIRY_WARNING_DAYS,
    TLSSettings,
    endpoints_of,
    expiry_words,
    read_peer_cert,
    tls_failure,
    tls_kind,
    when,
)


@dataclass(frozen=True)
class Finding:
    backend: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # ok, but a feature is off (a capability the token lacks)


@dataclass(frozen=True)
class Capability:
    """One read jamtui makes, the ACL capability it needs, and the rule that grants it."""

    feature: str
    path: str
    capability: str
    rule: str  # the policy line (HCL) or Proxmox privilege that would grant it
    turns_off: str  # what a refusal turns off
    core: bool = False  # refused, the backend shows nothing: a failure, not a warning
    answers: tuple[int, ...] = (200,)  # autopilot health answers 429 while unhealthy


def nomad_capabilities(namespace: str = "default") -> tuple[Capability, ...]:
    ns = f'namespace "{namespace or "default"}"'
    return (
        Capability("nodes", "/v1/nodes", "node:read", 'node { policy = "read" }',
                   "Nomad nodes and the event stream (Nomad shows nothing)", core=True),
        Capability("jobs", "/v1/jobs", "list-jobs",
                   f'{ns} {{ capabilities = ["list-jobs", "read-job"] }}',
                   "the jobs view (allocations still show)"),
        Capability("allocations", "/v1/allocations", "read-job",
                   f'{ns} {{ capabilities = ["list-jobs", "read-job"] }}',
                   "allocations and the event stream (Nomad shows nothing)", core=True),
        Capability("deployments", "/v1/deployments", "read-job",
                   f'{ns} {{ capabilities = ["read-job"] }}',
                   ":deployments, job versions, why a job is pending, CPU/MEM"),
        Capability("namespaces", "/v1/namespaces", "list-jobs",
                   f'{ns} {{ capabilities = ["list-jobs"] }}',
                   "the namespace list (:ns; the configured namespace still shows)"),
        Capability("volumes", "/v1/volumes?type=csi", "csi-list-volume",
                   f'{ns} {{ capabilities = ["csi-list-volume"] }}',
                   "CSI volumes in the storage view"),
        Capability("quorum", "/v1/operator/autopilot/health", "operator:read",
                   'operator { policy = "read" }',
                   "servers' health and failure tolerance (gossip is used instead)",
                   answers=(200, 429)),
        Capability("server members", "/v1/agent/members", "node:read",
                   'node { policy = "read" }', "the quorum's gossip fallback"),
        Capability("agent", "/v1/agent/self", "agent:read", 'agent { policy = "read" }',
                   "the version doctor prints (nothing else)"),
    )


CONSUL_CAPABILITIES = (
    Capability("services", "/v1/catalog/services", "service:read",
               'service_prefix "" { policy = "read" }',
               "services and their instances (Consul shows nothing)", core=True),
    Capability("members", "/v1/agent/members", "node:read", 'node_prefix "" { policy = "read" }',
               "Consul members and the quorum's Serf fallback"),
    Capability("intentions", "/v1/connect/intentions", "intentions:read",
               'service_prefix "" { policy = "read"  intentions = "read" }', "intentions"),
    Capability("quorum", "/v1/operator/autopilot/health", "operator:read", 'operator = "read"',
               "servers' health and failure tolerance (Serf is used instead)",
               answers=(200, 429)),
    Capability("agent", "/v1/agent/self", "agent:read", 'agent_prefix "" { policy = "read" }',
               "the version doctor prints (nothing else)"),
    Capability("key/value", "/v1/kv/?keys&separator=/", "key:read",
               'key_prefix "" { policy = "read" }', "the :kv view",
               answers=(200, 404)),  # 404: an empty store
    Capability("sessions", "/v1/session/list", "session:read",
               'session_prefix "" { policy = "read" }', "the lock holder's name in :kv"),
)

# (feature, privilege, ACL path, what a refusal turns off, core, a built-in role that has it)
PROXMOX_PRIVILEGES = (
    ("VMs", "VM.Audit", "/vms", "VMs (Proxmox lists none)", True, "PVEAuditor"),
    ("hypervisors", "Sys.Audit", "/nodes", "hypervisors' load and task status", True,
     "PVEAuditor"),
    ("storage", "Datastore.Audit", "/storage", "Proxmox storage in the storage view and "
     "each storage's content in the hypervisor detail", False, "PVEAuditor"),
    ("tasks", "Sys.Audit", "/nodes", "other users' tasks in :tasks and :events (the "
     "token's own stay)", False, "PVEAuditor"),
    ("VM power", "VM.PowerMgmt", "/vms", "start, stop, shutdown, reboot (VMs and "
     "containers)", False, "PVEVMUser"),
    ("snapshots", "VM.Snapshot", "/vms", "take, roll back and delete snapshots", False,
     "PVEVMAdmin"),
    ("migrate", "VM.Migrate", "/vms", "migrating a VM to another hypervisor", False,
     "PVEVMAdmin"),
    ("node add/remove", "VM.Clone", "/vms", "node add (Terraform clones the template)", False,
     "PVEVMAdmin"),
)


def run_doctor(cfg: Config, timeout: float = 5.0) -> list[Finding]:
    findings = list(_config_findings(cfg))
    for check in (_proxmox, _nomad, _consul, _fabio, _haproxy, _certificates):
        findings.extend(check(cfg, timeout))
    secrets = [cfg.nomad.token, cfg.consul.token, cfg.proxmox.token_secret]
    return [replace(f, detail=scrub(f.detail, secrets), fix=scrub(f.fix, secrets))
            for f in findings]


def _config_findings(cfg: Config) -> Iterator[Finding]:
    if cfg.path is None:
        yield Finding("config", True, "no config file; using defaults and the environment")
    else:
        yield Finding("config", True, f"read {cfg.path}")
    try:
        inv = load_inventory(cfg.inventory)
    except InventoryError as exc:
        yield Finding("inventory", False, str(exc),
                      "fix the file, or set `inventory = ...` in the config to the right one")
    else:
        # the same check `jamtui node add` and the cockpit's `a` make before using it
        problems = inventory_problems(inv)
        for problem in problems:
            yield Finding("inventory", False, problem,
                          "fix the value in the inventory (node add refuses until then)")
        if not problems:
            groups = {g: len(inv.group(g)) for g in ("vb", "vs")}
            yield Finding("inventory", True,
                          f"{cfg.inventory}: {len(inv.hosts)} hosts ({groups['vb']} vb, "
                          f"{groups['vs']} vs)")
    for name, section in (("proxmox", cfg.proxmox), ("nomad", cfg.nomad),
                          ("consul", cfg.consul)):
        if section.ca_file and not Path(section.ca_file).is_file():
            yield Finding(name, False, f"ca_file {section.ca_file} does not exist",
                          f"point [{name}] ca_file at the CA certificate (PEM)")
        if section.insecure:
            yield Finding(name, False, "TLS verification is turned off (insecure = true)",
                          "remove `insecure`, and set ca_file to the CA that signed it")
        for key in ("client_cert", "client_key"):
            path = getattr(section, key, "")
            if path and not Path(path).is_file():
                yield Finding(name, False, f"{key} {path} does not exist",
                              f"point [{name}] {key} at the client certificate's PEM file")
        yield from _client_cert_expiry(name, getattr(section, "client_cert", ""))


def _client_cert_expiry(backend: str, path: str) -> Iterator[Finding]:
    """jamtui's own client certificate ends too (the CLI ones last a year by default)."""
    if not path or not Path(path).is_file():
        return
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        yield Finding(backend, False, f"client_cert {path} is not a PEM certificate: {exc}",
                      "point it at the certificate (PEM), and client_key at its key")
        return
    not_after = cert.not_valid_after_utc.timestamp()
    if not_after - time.time() < EXPIRY_WARNING_DAYS * 86400:
        yield Finding(backend, False, f"the client certificate {path} "
                      f"{expiry_words(not_after)}", "issue a new one (nomad tls cert create "
                      "-cli / consul tls cert create -client) before then")


# What the checks verify with: a backend's TLSSettings (CA, client certificate, server name),
# or as before a CA path / True / False.
Verify = bool | str | TLSSettings


def _tls(verify: Verify) -> TLSSettings:
    if isinstance(verify, TLSSettings):
        return verify
    return TLSSettings("backend", ca_file=verify if isinstance(verify, str) else "",
                       insecure=verify is False)


def _get(url: str, verify: Verify, timeout: float, headers: dict[str, str] | None = None,
         ) -> requests.Response:
    tls = _tls(verify)
    with tls.session() as session:  # verify per request: REQUESTS_CA_BUNDLE must not win
        return session.get(url, headers=headers or {}, verify=tls.verify, timeout=timeout)


def _probe(backend: str, url: str, verify: Verify, timeout: float,
           headers: dict[str, str], token_fix: str, ca_fix: str,
           read: Callable[[requests.Response], str]) -> Finding:
    """Reachable → TLS verifies → token accepted → the version it reports."""
    try:
        resp = _get(url, verify, timeout, headers)
    except requests.exceptions.SSLError as exc:
        return _tls_finding(backend, exc, _tls(verify), url, timeout) or Finding(
            backend, False, f"TLS does not verify for {url}: {_short(exc)}", ca_fix)
    except requests.exceptions.ConnectionError as exc:  # a TLS alert can arrive as one
        return _tls_finding(backend, exc, _tls(verify), url, timeout) or Finding(
            backend, False, f"cannot reach {url}: {_short(exc)}",
            f"check that {backend} runs there and the address is right")
    except requests.exceptions.Timeout:
        return Finding(backend, False, f"{url} did not answer within {timeout:g} s",
                       "check the network path and the server's load")
    if resp.status_code in (401, 403):
        return Finding(backend, False, f"token refused ({resp.status_code} "
                       f"{resp.text.strip()[:80] or resp.reason})", token_fix)
    if not resp.ok:
        return Finding(backend, False, f"{url} answered {resp.status_code} "
                       f"{resp.text.strip()[:120]}", f"check {backend}'s own logs")
    try:
        return Finding(backend, True, read(resp))
    except (ValueError, KeyError, TypeError) as exc:
        return Finding(backend, False, f"{url} does not look like {backend}: {_short(exc)}",
                       f"is the [{backend}] address pointing at the right port?")


def _tls_finding(backend: str, exc: BaseException, tls: TLSSettings, url: str,
                 timeout: float) -> Finding | None:
    """A TLS failure in words (unknown CA, name mismatch, expired or not yet valid, client
    certificate asked for or refused), with the certificate's names and dates where they
    tell; None when `exc` was not about TLS."""
    peer = None
    if tls_kind(exc) in ("unknown-ca", "name-mismatch", "expired", "not-yet-valid"):
        try:
            peer = read_peer_cert(url, tls, verify=False, timeout=timeout)
        except (OSError, ValueError):
            peer = None
    words = tls_failure(exc, tls, url, peer)
    return Finding(backend, False, *words) if words else None


def _certificates(cfg: Config, timeout: float) -> list[Finding]:
    """How long each HTTPS certificate jamtui talks to has left (Proxmox, Nomad, Consul, and
    HAProxy's frontend, the one certbot renews); a warning within EXPIRY_WARNING_DAYS. One
    that does not verify was already named by its backend's check (the frontend has none)."""
    found = []
    for e in endpoints_of(cfg):
        label = (f"the frontend's certificate ({e.url})" if e.backend == "haproxy" else
                 f"the certificate of {e.url}")
        try:
            peer = read_peer_cert(e.url, e.settings, timeout=timeout)
        except (OSError, ValueError) as exc:
            if e.backend == "haproxy":
                found.append(_tls_finding(e.backend, exc, e.settings, e.url, timeout) or
                             Finding(e.backend, False, f"cannot read {label}: {_short(exc)}",
                                     "check that the frontend serves HTTPS there"))
            continue
        if peer.not_after - time.time() < EXPIRY_WARNING_DAYS * 86400:
            found.append(Finding(e.backend, False, f"{label} {expiry_words(peer.not_after)}",
                                 "renew it before then (certbot renew / nomad tls cert create "
                                 "/ consul tls cert create), and reload the server"))
        else:
            found.append(Finding(e.backend, True, f"{label} is valid until "
                                 f"{when(peer.not_after)}"))
    return found


def _short(exc: BaseException) -> str:
    return in_words(exc)


def _token_header(name: str, token: Secret) -> dict[str, str]:
    return {name: token.reveal()} if token else {}


def _proxmox(cfg: Config, timeout: float) -> list[Finding]:
    pve = cfg.proxmox
    if not pve.address:
        return [Finding("proxmox", True, "not configured (skipped)")]
    headers = {}
    if pve.token_id and pve.token_secret:
        headers["Authorization"] = f"PVEAPIToken={pve.token_id}={pve.token_secret.reveal()}"

    def read(resp: requests.Response) -> str:
        data = resp.json()["data"]
        return f"{pve.address}: TLS verified, token accepted, Proxmox VE {data['version']}"

    verify = TLSSettings.of("proxmox", pve)
    base = f"{pve.address.rstrip('/')}/api2/json"
    first = _probe("proxmox", f"{base}/version", verify, timeout, headers,
                   "set PROXMOX_VE_API_TOKEN (USER@REALM!TOKENID=SECRET) to a token with "
                   "VM.Audit and Sys.Audit", "set [proxmox] ca_file or PROXMOX_VE_CACERT to "
                   "the CA of the Proxmox certificate (/etc/pve/pve-root-ca.pem)", read)
    if not first.ok:
        return [first]
    return [first, *_proxmox_privileges(base, verify, timeout, headers, pve.token_id)]


def _proxmox_privileges(base: str, verify: Verify, timeout: float,
                        headers: dict[str, str], token_id: str) -> list[Finding]:
    """The token's effective privileges (`/access/permissions`, any token may read its own)."""
    try:
        resp = _get(f"{base}/access/permissions", verify, timeout, headers)
        paths: dict[str, dict[str, Any]] = resp.json()["data"] if resp.ok else {}
    except (requests.RequestException, ValueError, KeyError, TypeError):
        paths = {}
    if not paths:
        return [Finding("proxmox", True, "could not read the token's privileges "
                        "(/access/permissions); not checked", warning=True)]
    out = []
    for feature, privilege, path, turns_off, core, role in PROXMOX_PRIVILEGES:
        held = any(privilege in (paths.get(p) or {}) for p in ("/", path))
        if held:
            out.append(Finding("proxmox", True, f"{feature}: permitted ({privilege} on {path})"))
        else:
            out.append(Finding(
                "proxmox", not core,
                f"{feature}: not permitted ({privilege} on {path}); turns off {turns_off}",
                f"grant {privilege} on {path}: pveum acl modify {path} --tokens "
                f"'{token_id or 'USER@REALM!TOKENID'}' --roles {role}", warning=not core))
    return out


def _nomad(cfg: Config, timeout: float) -> list[Finding]:
    n = cfg.nomad
    verify = TLSSettings.of("nomad", n)
    headers = _token_header("X-Nomad-Token", n.token)
    findings = _acl_backend(
        "nomad", n.address.rstrip("/"), verify, timeout, headers,
        nomad_capabilities(n.namespace),
        "set NOMAD_TOKEN or [nomad] token to a valid token (README: ACL policies)",
        "set NOMAD_CACERT or [nomad] ca_file to the CA of the Nomad certificate",
        lambda data: ((data.get("config") or {}).get("Version") or {}).get("Version", "?"))
    if len(findings) > 1:  # reachable and the token known: can it read a task's log?
        logs = _nomad_logs(n.address.rstrip("/"), verify, timeout, headers, n.namespace)
        if logs is not None:
            findings.append(logs)
    return findings


def _nomad_logs(base: str, verify: Verify, timeout: float, headers: dict[str, str],
                namespace: str) -> Finding | None:
    """read-logs needs a task to ask about: the first running allocation's, zero bytes."""
    ns = namespace or "default"
    try:
        allocs = _get(f"{base}/v1/allocations", verify, timeout, headers)
        running = [a for a in (allocs.json() if allocs.ok else []) or []
                   if a.get("ClientStatus") == "running" and a.get("TaskStates")]
        if not running:
            return None  # nothing to ask about (or no read-job: said above)
        alloc = running[0]
        task = sorted(alloc["TaskStates"])[0]
        resp = _get(f"{base}/v1/client/fs/logs/{alloc['ID']}?task={task}&type=stdout"
                    f"&origin=end&offset=0&plain=true&namespace={ns}", verify, timeout,
                    headers)
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None
    if resp.status_code == 403:
        return Finding("nomad", True, "logs: not permitted (read-logs); turns off the log "
                       "viewer for allocations", f'add to the token\'s policy: namespace "{ns}" '
                       '{ capabilities = ["read-logs"] }', warning=True)
    return Finding("nomad", True, "logs: permitted (read-logs)")


def _consul(cfg: Config, timeout: float) -> list[Finding]:
    c = cfg.consul
    verify = TLSSettings.of("consul", c)
    return _acl_backend(
        "consul", c.address.rstrip("/"), verify, timeout,
        _token_header("X-Consul-Token", c.token), CONSUL_CAPABILITIES,
        "set CONSUL_HTTP_TOKEN or [consul] token to a valid token (README: ACL policies)",
        "set CONSUL_CACERT or [consul] ca_file to the CA of the Consul certificate",
        lambda data: (data.get("Config") or {}).get("Version", "?"))


def _acl_backend(backend: str, base: str, verify: Verify, timeout: float,
                 headers: dict[str, str], capabilities: tuple[Capability, ...],
                 token_fix: str, ca_fix: str, version_of: Callable[[Any], str]
                 ) -> list[Finding]:
    """Reachable (the status endpoint needs no ACL) → the token is known → each capability."""
    leader_text = ""

    def read_leader(resp: requests.Response) -> str:
        nonlocal leader_text
        leader = resp.json()
        leader_text = f"leader {leader}" if leader else "NO CLUSTER LEADER (start the vb servers)"
        return leader_text

    reach = _probe(backend, f"{base}/v1/status/leader", verify, timeout, {}, token_fix, ca_fix,
                   read_leader)
    if not reach.ok:
        return [reach]
    findings: list[Finding] = []
    version = "? (agent:read not granted)"
    for cap in capabilities:
        try:
            resp = _get(f"{base}{cap.path}", verify, timeout, headers)
        except requests.RequestException as exc:
            findings.append(Finding(backend, False, f"{cap.path}: {_short(exc)}",
                                    f"check {backend}'s own logs"))
            continue
        text = resp.text.strip()[:160]
        if resp.status_code in (401, 403) and "not found" in text.lower():
            return [Finding(backend, False, f"token refused ({resp.status_code} {text})",
                            token_fix)]
        filtered = resp.headers.get("X-Consul-Results-Filtered-By-ACLs", "") == "true"
        refused = resp.status_code == 403 or (filtered and resp.ok and not resp.json())
        if refused:
            findings.append(Finding(
                backend, not cap.core,
                f"{cap.feature}: not permitted ({cap.capability}); turns off {cap.turns_off}",
                f"add to the token's policy: {cap.rule}", warning=not cap.core))
        elif resp.status_code not in cap.answers:
            findings.append(Finding(backend, False, f"{cap.path} answered {resp.status_code} "
                                    f"{text}", f"check {backend}'s own logs"))
        else:
            if cap.feature == "agent":
                with contextlib.suppress(ValueError, AttributeError):
                    version = str(version_of(resp.json()))
            findings.append(Finding(backend, True, f"{cap.feature}: permitted ({cap.capability})"
                                    + (" (some results hidden by ACLs)" if filtered else "")))
    summary = Finding(backend, True, f"{base}: reachable, token accepted, {backend.title()} "
                      f"{version}, {leader_text}")
    return [summary, *findings]


def _fabio(cfg: Config, timeout: float) -> list[Finding]:
    if not cfg.fabio.addresses:
        return [Finding("fabio", True, "not configured (skipped)")]

    def read(resp: requests.Response) -> str:
        routes = resp.json() or []
        return f"{resp.url.rsplit('/api', 1)[0]}: {len(routes)} routes"

    return [_probe("fabio", f"{a.rstrip('/')}/api/routes", True, timeout, {},
                   "Fabio's API needs no token", "Fabio's API is plain HTTP here", read)
            for a in cfg.fabio.addresses]


def _haproxy(cfg: Config, timeout: float) -> list[Finding]:
    h = cfg.haproxy
    if not h.stats_url:
        detail = "stats over the runtime socket" if h.socket else "not configured (skipped)"
        return [Finding("haproxy", True, detail)]

    def read(resp: requests.Response) -> str:
        header = resp.text.splitlines()[0] if resp.text else ""
        if not header.startswith("# pxname"):
            raise ValueError("no CSV stats header (does the URL end in ;csv?)")
        return f"{h.stats_url}: {len(resp.text.splitlines()) - 1} stats rows"

    return [_probe("haproxy", h.stats_url, True, timeout, {},
                   "HAProxy has no token: check the stats page's user and password in "
                   "[haproxy] stats_url (http://user:password@host:port/stats;csv), or set "
                   "[haproxy] socket", "check the stats page's certificate", read)]
