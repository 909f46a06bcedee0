"""Failures on the wire said in words (one function for requests/urllib3/ssl/socket), and
what to check said right for each backend: HAProxy and Fabio have no token."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from jamtui.config import HAProxyConfig
from jamtui.model import Health
from jamtui.sim.lab import Lab
from jamtui.sources.base import describe_error, http_problem
from jamtui.sources.haproxy import HAProxySource
from jamtui.sources.reasons import in_words
from jamtui.store import Store
from tests.helpers import wait_for


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    """A server whose behaviour the test picks: 'close' (accepts, closes, answers nothing)
    or 'silent' (accepts, never answers)."""
    sock = socket.create_server(("127.0.0.1", 0))
    mode = ["close"]
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.recv(4096)
            if mode[0] == "close":
                conn.close()
            else:
                held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", mode
    sock.close()
    for conn in held:
        conn.close()


def failure(url: str, timeout: float = 5.0, **kw: object) -> requests.RequestException:
    with pytest.raises(requests.RequestException) as info:
        requests.get(url, timeout=timeout, **kw)  # type: ignore[arg-type]
    return info.value


def test_closed_without_an_answer(server: tuple[str, list[str]]) -> None:
    url, _ = server
    exc = failure(url)
    assert in_words(exc) == "connection closed by the server without an answer"
    text = describe_error("nomad", url, exc)
    assert "RemoteDisconnected" not in text and "aborted.'" not in text and "(" not in text


def test_timed_out_after_n_seconds(server: tuple[str, list[str]]) -> None:
    url, mode = server
    mode[0] = "silent"
    exc = failure(url, timeout=0.5)
    assert in_words(exc) == "timed out after 0.5 s"
    assert describe_error("consul", url, exc).startswith(f"{url} did not answer: timed out")


def test_refused_and_name_not_found() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        assert in_words(failure(f"http://127.0.0.1:{port}/")) == "connection refused"
    nxdomain = requests.exceptions.ConnectionError(
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert in_words(nxdomain).startswith("name not found")


def test_untrusted_certificate(lab: Lab) -> None:
    exc = failure(lab.urls["proxmox"] + "/api2/json/version")  # the system CA store
    assert in_words(exc).startswith("the server's certificate is not trusted (")
    assert "SSLCertVerificationError" not in describe_error("proxmox", "pve", exc)


def test_haproxy_and_fabio_have_no_token() -> None:
    for backend, words in (("haproxy", "[haproxy] stats_url"), ("fabio", "no token")):
        text = http_problem(backend, "http://b:8404/stats;csv", 401, "401 Unauthorized",
                            "[haproxy] stats_url or socket")
        assert "Check the haproxy token" not in text and words in text
        assert "refused the token" not in text
    assert "Check the nomad token ([nomad] token)" in http_problem(
        "nomad", "n", 403, "ACL token not found", "[nomad] token")
    assert "lacks a permission" in http_problem(
        "nomad", "n", 403, "Permission denied", "[nomad] token")


def test_haproxy_refusing_its_stats_says_what_to_check(lab: Lab) -> None:
    lab.set_fault("haproxy", "forbidden")
    store = Store()
    source = HAProxySource(store, HAProxyConfig(stats_url=lab.urls["haproxy_stats"]
                                                + "/stats;csv"), poll_interval=0.5)
    source.start()
    try:
        status = wait_for(lambda: store.backend("haproxy").health is Health.DOWN
                          and store.backend("haproxy"), timeout=10)
    finally:
        source.stop()
    assert "token" not in status.last_error and "stats_url" in status.last_error
