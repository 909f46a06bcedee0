"""`jamtui doctor`: check the configuration and every backend, and say what to do about each
failure. Plain HTTP on purpose: the checks must work even where a client library would hide
the reason (TLS, token, wrong service on the port)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .config import Config, Secret
from .inventory import InventoryError, inventory_problems, load_inventory
from .sources.base import scrub, tls_verify
from .sources.reasons import in_words


@dataclass(frozen=True)
class Finding:
    backend: str
    ok: bool
    detail: str
    fix: str = ""


def run_doctor(cfg: Config, timeout: float = 5.0) -> list[Finding]:
    findings = list(_config_findings(cfg))
    for check in (_proxmox, _nomad, _consul, _fabio, _haproxy):
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


def _get(url: str, verify: bool | str, timeout: float, headers: dict[str, str] | None = None,
         ) -> requests.Response:
    return requests.get(url, headers=headers or {}, verify=verify, timeout=timeout)


def _probe(backend: str, url: str, verify: bool | str, timeout: float,
           headers: dict[str, str], token_fix: str, ca_fix: str,
           read: Callable[[requests.Response], str]) -> Finding:
    """Reachable → TLS verifies → token accepted → the version it reports."""
    try:
        resp = _get(url, verify, timeout, headers)
    except requests.exceptions.SSLError as exc:
        return Finding(backend, False, f"TLS does not verify for {url}: {_short(exc)}", ca_fix)
    except requests.exceptions.ConnectionError as exc:
        return Finding(backend, False, f"cannot reach {url}: {_short(exc)}",
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
                   tls_verify("proxmox", pve.ca_file, pve.insecure), timeout, headers,
                   "set PROXMOX_VE_API_TOKEN (USER@REALM!TOKENID=SECRET) to a token with "
                   "VM.Audit and Sys.Audit", "set [proxmox] ca_file or PROXMOX_VE_CACERT to "
                   "the CA of the Proxmox certificate (/etc/pve/pve-root-ca.pem)", read)]


def _nomad(cfg: Config, timeout: float) -> list[Finding]:
    n = cfg.nomad
    base = n.address.rstrip("/")

    def read(resp: requests.Response) -> str:
        data: dict[str, Any] = resp.json()
        version = (data.get("config") or {}).get("Version") or {}
        leader = _leader(f"{base}/v1/status/leader", tls_verify("nomad", n.ca_file, n.insecure),
                         timeout)
        return f"{n.address}: token accepted, Nomad {version.get('Version', '?')}, {leader}"

    return [_probe("nomad", f"{base}/v1/agent/self", tls_verify("nomad", n.ca_file, n.insecure),
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
                         tls_verify("consul", c.ca_file, c.insecure), timeout)
        return f"{c.address}: token accepted, Consul {version}, {leader}"

    return [_probe("consul", f"{base}/v1/agent/self",
                   tls_verify("consul", c.ca_file, c.insecure), timeout,
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
