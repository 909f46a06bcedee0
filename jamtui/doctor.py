"""`jamtui doctor`: check the configuration and every backend, and say what to do about each
failure. Plain HTTP on purpose: the checks must work even where a client library would hide
the reason (TLS, token, wrong service on the port)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


def run_doctor(cfg: Config, timeout: float = 5.0) -> list[Finding]:
    findings = list(_config_findings(cfg))
    for check in (_proxmox, _nomad, _consul, _fabio, _haproxy, _certificates):
        findings.extend(check(cfg, timeout))
    secrets = [cfg.nomad.token, cfg.consul.token, cfg.proxmox.token_secret]
    return [Finding(f.backend, f.ok, scrub(f.detail, secrets), scrub(f.fix, secrets))
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

    return [_probe("proxmox", f"{pve.address.rstrip('/')}/api2/json/version",
                   TLSSettings.of("proxmox", pve), timeout, headers,
                   "set PROXMOX_VE_API_TOKEN (USER@REALM!TOKENID=SECRET) to a token with "
                   "VM.Audit and Sys.Audit", "set [proxmox] ca_file or PROXMOX_VE_CACERT to "
                   "the CA of the Proxmox certificate (/etc/pve/pve-root-ca.pem)", read)]


def _nomad(cfg: Config, timeout: float) -> list[Finding]:
    n = cfg.nomad
    base = n.address.rstrip("/")

    def read(resp: requests.Response) -> str:
        data: dict[str, Any] = resp.json()
        version = (data.get("config") or {}).get("Version") or {}
        leader = _leader(f"{base}/v1/status/leader", TLSSettings.of("nomad", n),
                         timeout)
        return f"{n.address}: token accepted, Nomad {version.get('Version', '?')}, {leader}"

    return [_probe("nomad", f"{base}/v1/agent/self", TLSSettings.of("nomad", n),
                   timeout, _token_header("X-Nomad-Token", n.token),
                   "set NOMAD_TOKEN or [nomad] token to a token that can read nodes and jobs",
                   "set NOMAD_CACERT or [nomad] ca_file to the CA of the Nomad certificate",
                   read)]


def _consul(cfg: Config, timeout: float) -> list[Finding]:
    c = cfg.consul
    base = c.address.rstrip("/")

    def read(resp: requests.Response) -> str:
        data: dict[str, Any] = resp.json()
        version = (data.get("Config") or {}).get("Version", "?")
        leader = _leader(f"{base}/v1/status/leader",
                         TLSSettings.of("consul", c), timeout)
        return f"{c.address}: token accepted, Consul {version}, {leader}"

    return [_probe("consul", f"{base}/v1/agent/self",
                   TLSSettings.of("consul", c), timeout,
                   _token_header("X-Consul-Token", c.token),
                   "set CONSUL_HTTP_TOKEN or [consul] token to a token with agent, node and "
                   "service read", "set CONSUL_CACERT or [consul] ca_file to the CA of the "
                   "Consul certificate", read)]


def _leader(url: str, verify: bool | str, timeout: float) -> str:
    try:
        resp = _get(url, verify, timeout)
        leader = resp.json() if resp.ok else ""
    except (requests.RequestException, ValueError):
        leader = ""
    return f"leader {leader}" if leader else "NO CLUSTER LEADER (start the vb servers)"


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
