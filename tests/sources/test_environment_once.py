"""Every HTTP session looks at the environment (proxies, ~/.netrc) once per host, not on every
request, and still honours it as requests would: HTTP_PROXY, NO_PROXY, ~/.netrc."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from jamtui.config import FabioConfig, HAProxyConfig, ProxmoxConfig, Secret
from jamtui.sources.fabio import FabioSource
from jamtui.sources.haproxy import HAProxySource
from jamtui.sources.proxmox import ProxmoxSource
from jamtui.sources.tls import TLSSettings
from jamtui.store import Store
from tests.helpers import proxy_server

BACKEND = "http://backend.invalid:4646/v1/status/leader"  # resolvable only through the proxy


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    with proxy_server() as served:
        yield served


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy",
                 "https_proxy", "all_proxy", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


def test_proxy_and_netrc_from_the_environment_are_honoured(
        clean_env: None, proxy: tuple[str, list[tuple[str, str]]],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    address, seen = proxy
    netrc = tmp_path / "netrc"
    netrc.write_text("machine backend.invalid login ops password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", address)
    session = TLSSettings("nomad").session()
    assert session.get(BACKEND, timeout=5).json() == "10.0.0.1:4647"
    assert seen and seen[0][0] == BACKEND  # through the proxy
    assert seen[0][1].startswith("Basic ")  # ~/.netrc's login for that host

    # NO_PROXY names the host: a new session goes straight there (and finds no such host)
    monkeypatch.setenv("NO_PROXY", "backend.invalid")
    with pytest.raises(requests.ConnectionError):
        TLSSettings("nomad").session().get(BACKEND, timeout=5)
    assert len(seen) == 1


def test_the_environment_is_read_once_per_host_not_per_request(
        clean_env: None, proxy: tuple[str, list[tuple[str, str]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    address, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", address)
    session = TLSSettings("consul").session()
    session.get(BACKEND, timeout=5)
    # requests looked again on every request (a quarter of a small poll's CPU); the session
    # keeps what it found for the host, as it keeps its connections
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    for _ in range(3):
        session.get(BACKEND, timeout=5)
    assert len(seen) == 4


def test_every_polling_source_reads_the_environment_once(
        clean_env: None, proxy: tuple[str, list[tuple[str, str]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxmox (proxmoxer's own session), HAProxy and Fabio poll each second or few: their
    sessions keep the environment too."""
    address, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", address)
    store = Store()
    sessions = [
        ProxmoxSource(store, ProxmoxConfig(
            address="https://pve.invalid:8006", token_id="root@pam!jamtui",
            token_secret=Secret("x"))).api._store["session"],
        HAProxySource(store, HAProxyConfig(stats_url="http://lb.invalid/stats")).session,
        FabioSource(store, FabioConfig(addresses=("http://fabio.invalid:9998",))).session,
    ]
    for session in sessions:
        session.get(BACKEND, timeout=5)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    for session in sessions:
        session.get(BACKEND, timeout=5)
    assert len(seen) == 2 * len(sessions)
