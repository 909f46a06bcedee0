"""Small GETs asked again and again (Nomad's allocation and node stats, the Nomad and Consul
liveness probes, #17) through the session's own pool (`tls.PlainGet`), against the embedded
lab: one kept connection, a new one for a connection the server closed, TLS as the sessions
speak it (CA, client certificate, server name), a proxy from the environment honoured, and
every failure in the same words as the requests path they replaced."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import consul
import pytest
from consul.callback import CB

from jamtui.config import Config, NomadConfig, load_config
from jamtui.model import Kind, Quorum
from jamtui.sim import tls as simtls
from jamtui.sim.lab import Lab
from jamtui.sources.base import BackendError, http_problem
from jamtui.sources.consul import ConsulSource
from jamtui.sources.nomad import NomadSource
from jamtui.sources.reasons import in_words
from jamtui.store import Store
from tests.conftest import FAST
from tests.helpers import proxy_server

# -- labs, one per module ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Config]]:
    with Lab(seed=1, tick=0.2, traffic=False, **FAST) as lab:
        path = tmp_path_factory.mktemp("quick") / "jamtui.toml"
        path.write_text(lab.config_toml())
        yield lab, load_config(path, env={})


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Config]]:
    with Lab(seed=6, tick=0.2, traffic=False, tls=True, **FAST) as lab:
        path = tmp_path_factory.mktemp("quick-tls") / "jamtui.toml"
        path.write_text(lab.config_toml())
        yield lab, load_config(path, env={})


@pytest.fixture(autouse=True)
def _no_proxy_or_netrc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy",
                 "https_proxy", "all_proxy", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


def running_alloc(lab: Lab) -> str:
    return str(lab.call(lambda: next(a.id for a in lab.world.allocs.values()
                                     if a.client_status == "running")))


def served(lab: Lab) -> int:
    return lab.faults.requests.get("nomad", 0)



@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ports of the TCP connections this process opens (requests' and ours)."""
    ports: list[int] = []
    connect = socket.socket.connect

    def counting(sock: socket.socket, address: Any) -> None:
        if isinstance(address, tuple):
            ports.append(int(address[1]))
        connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", counting)
    return ports


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].rstrip("/"))


# -- the requests path as it was (before PlainGet), for the words -------------------------


def old_nomad_probe(src: NomadSource, timeout: float) -> None:
    resp = src.session.get(f"{src.cfg.address.rstrip('/')}/v1/status/leader",
                           headers=src.cfg.auth_headers(), verify=src.verify, timeout=timeout)
    if resp.status_code == 500 and "leader" in resp.text.lower():
        return
    if resp.status_code != 200:
        raise BackendError(http_problem("nomad", src.address, resp.status_code, resp.text,
                                        src.hint))
    resp.json()


def old_alloc_stats(src: NomadSource, alloc_id: str) -> Any:
    return src._request("GET", f"/v1/client/allocation/{alloc_id}/stats")  # requests' path


def old_consul_probe(src: ConsulSource, timeout: float) -> None:
    http = src.client.http
    resp = http.session.get(http.uri("/v1/status/leader"),
                            headers=src.client.prepare_headers(), verify=http.verify,
                            cert=http.cert, timeout=timeout)
    try:
        CB.json()(http.response(resp))
    except consul.ConsulException as exc:
        raise src._words(exc) from exc


def failure(fn: Callable[[], Any]) -> BaseException:
    with pytest.raises(Exception) as info:
        fn()
    return info.value


def words(src: Any, exc: BaseException) -> tuple[str, str]:
    """What the health bar says (the probe's words) and the short reason."""
    return src._describe(exc, "liveness probe"), in_words(exc)


def same_words(src: Any, old: Callable[[], Any], new: Callable[[], Any]) -> str:
    old_exc, new_exc = failure(old), failure(new)
    assert words(src, new_exc) == words(src, old_exc), (old_exc, new_exc)
    assert type(new_exc) is type(old_exc)  # requests' kind of failure, or BackendError
    return words(src, new_exc)[0]


# -- one kept connection --------------------------------------------------------------------


def test_stats_and_probes_keep_one_connection(plain: tuple[Lab, Config],
                                              connects: list[int]) -> None:
    """Every stats read and probe of a source goes over one kept connection per backend,
    from several threads in turn (a stats tick runs on whichever executor thread is free)."""
    lab, cfg = plain
    nomad, consul_src = NomadSource(Store(), cfg.nomad), ConsulSource(Store(), cfg.consul)
    alloc = running_alloc(lab)
    node = str(lab.call(lambda: lab.world.allocs[alloc].node_id))
    before = nomad.requests_made
    for _ in range(3):
        reads = [lambda: nomad.alloc_stats(alloc), lambda: nomad.node_stats(node),
                 lambda: nomad.probe(5.0), lambda: consul_src.probe(5.0)]
        for read in reads:  # each from a thread of its own, one after the other
            thread = threading.Thread(target=read)
            thread.start()
            thread.join(10)
    assert nomad.alloc_stats(alloc)  # per task: (MHz, bytes)
    assert nomad.requests_made == before + 7  # the probe loop counts its own
    assert connects.count(port_of(cfg.nomad.address)) == 1, connects
    assert connects.count(port_of(cfg.consul.address)) == 1, connects


def test_a_connection_the_server_closed_is_opened_again(plain: tuple[Lab, Config],
                                                        connects: list[int]) -> None:
    lab, cfg = plain
    src = NomadSource(Store(), cfg.nomad)
    alloc = running_alloc(lab)
    assert src.alloc_stats(alloc)
    server = lab.servers["nomad"]

    async def bounce() -> None:  # every open connection cut, then listening again
        await server.go_down()
        await server.come_up()

    lab.call(bounce)
    assert src.alloc_stats(alloc)
    assert connects.count(port_of(cfg.nomad.address)) == 2


# -- the same words as requests ----------------------------------------------------------------


def test_failures_say_the_same_words_as_requests(plain: tuple[Lab, Config]) -> None:
    lab, cfg = plain
    alloc = running_alloc(lab)
    nomad, consul_src = NomadSource(Store(), cfg.nomad), ConsulSource(Store(), cfg.consul)

    # nothing listens there
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    refused = NomadSource(Store(), replace(cfg.nomad, address=closed))
    said = same_words(refused, lambda: old_nomad_probe(refused, 5.0),
                      lambda: refused.probe(5.0))
    assert "connection refused" in said
    same_words(refused, lambda: old_alloc_stats(refused, alloc),
               lambda: refused.alloc_stats(alloc))

    # refused tokens and failing servers, with their bodies
    for kind, status in (("forbidden", "403"), ("error", "500")):
        try:
            lab.set_fault("nomad", kind)
            lab.set_fault("consul", kind)
            said = same_words(nomad, lambda: old_nomad_probe(nomad, 5.0),
                              lambda: nomad.probe(5.0))
            assert status in said, said
            said = same_words(nomad, lambda: old_alloc_stats(nomad, alloc),
                              lambda: nomad.alloc_stats(alloc))
            assert status in said, said
            said = same_words(consul_src, lambda: old_consul_probe(consul_src, 5.0),
                              lambda: consul_src.probe(5.0))
            assert status in said, said
        finally:
            lab.clear_fault()
    # an allocation the client no longer runs: Nomad's 500 and its words
    gone = "00000000-0000-0000-0000-000000000000"
    said = same_words(nomad, lambda: old_alloc_stats(nomad, gone),
                      lambda: nomad.alloc_stats(gone))
    assert "404" in said or "500" in said, said

    # a server that takes the request and never answers
    slow = NomadSource(Store(), cfg.nomad, timeout=0.5)
    try:
        lab.set_fault("nomad", "hang")
        said = same_words(slow, lambda: old_nomad_probe(slow, 0.5), lambda: slow.probe(0.5))
        assert "timed out after 0.5 s" in said, said
        said = same_words(slow, lambda: old_alloc_stats(slow, alloc),
                          lambda: slow.alloc_stats(alloc))
        assert "timed out after 0.5 s" in said, said
    finally:
        lab.clear_fault("nomad")


class _NoLeader(BaseHTTPRequestHandler):
    """A Nomad without a leader: `/v1/status/leader` is a 500 (as real Nomad answers it)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"No cluster leader"
        self.send_response(500)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def test_the_probe_hears_no_leader_as_an_answer() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoLeader)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        store = Store()
        src = NomadSource(store, NomadConfig(address=f"http://127.0.0.1:{server.server_port}"))
        store.upsert(Kind.QUORUM, Quorum("nomad", "10.0.0.1:4647", (), ()))
        src.probe(5.0)  # no raise: it answered
        assert src._quorum_wake.is_set()  # the quorum's story: read it now
    finally:
        server.shutdown()
        server.server_close()


# -- TLS as the sessions speak it ------------------------------------------------------------


def test_tls_with_the_server_name_and_a_client_certificate(mtls: tuple[Lab, Config],
                                                           connects: list[int]) -> None:
    """The lab's certificates name server.global.nomad (and 127.0.0.1): the configured
    server name is the one sent and checked, a wrong one fails as requests fails."""
    lab, cfg = mtls
    assert cfg.nomad.tls_server_name == "server.global.nomad" and cfg.nomad.client_cert
    nomad, consul_src = NomadSource(Store(), cfg.nomad), ConsulSource(Store(), cfg.consul)
    alloc = running_alloc(lab)
    for _ in range(3):
        nomad.probe(5.0)
        assert nomad.alloc_stats(alloc)
        consul_src.probe(5.0)
    assert connects.count(port_of(cfg.nomad.address)) == 1, connects

    wrong = NomadSource(Store(), replace(cfg.nomad, tls_server_name="wrong.example"))
    said = same_words(wrong, lambda: old_nomad_probe(wrong, 5.0), lambda: wrong.probe(5.0))
    assert "not valid for 'wrong.example'" in said and "NOMAD_TLS_SERVER_NAME" in said, said
    wrong_consul = ConsulSource(Store(), replace(cfg.consul, tls_server_name="wrong.example"))
    said = same_words(wrong_consul, lambda: old_consul_probe(wrong_consul, 5.0),
                      lambda: wrong_consul.probe(5.0))
    assert "not valid for 'wrong.example'" in said, said


def test_tls_with_a_ca_that_did_not_sign_it(mtls: tuple[Lab, Config], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    lab, cfg = mtls
    other = simtls.CA(name="Some other CA").write(tmp_path / "other.pem")
    src = NomadSource(Store(), replace(cfg.nomad, ca_file=str(other)))
    alloc = running_alloc(lab)
    said = same_words(src, lambda: old_nomad_probe(src, 5.0), lambda: src.probe(5.0))
    assert "signed by a CA jamtui does not trust" in said, said
    same_words(src, lambda: old_alloc_stats(src, alloc), lambda: src.alloc_stats(alloc))
    # a CA file that is not there: requests' own words (the GET is left to it)
    missing = NomadSource(Store(), replace(cfg.nomad, ca_file=str(tmp_path / "gone.pem")))
    said = same_words(missing, lambda: old_nomad_probe(missing, 5.0),
                      lambda: missing.probe(5.0))
    assert "gone.pem" in said, said
    # the CA from REQUESTS_CA_BUNDLE (none configured): requests verifies with it, and so
    # do the session's pool's reads (the system's CAs would not verify the lab)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(lab.ca_cert))
    bundled = NomadSource(Store(), replace(cfg.nomad, ca_file=""))
    bundled.probe(5.0)
    assert bundled.alloc_stats(alloc)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    # no client certificate: the server's refusal, in the same words
    bare = NomadSource(Store(), replace(cfg.nomad, client_cert="", client_key=""))
    said = same_words(bare, lambda: old_nomad_probe(bare, 5.0), lambda: bare.probe(5.0))
    assert "client certificate" in said, said


# -- the environment: requests' own path ------------------------------------------------------


def test_a_proxy_in_the_environment_is_honoured(
        plain: tuple[Lab, Config], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lab, cfg = plain
    alloc = running_alloc(lab)
    with proxy_server() as (address, seen):
        monkeypatch.setenv("HTTP_PROXY", address)
        src = NomadSource(Store(), cfg.nomad)
        src.probe(5.0)
        assert [url for url, _ in seen] == [f"{cfg.nomad.address}/v1/status/leader"]
        assert src._small(f"/v1/client/allocation/{alloc}/stats")[0] == 200  # the proxy's
        assert seen[-1][0] == f"{cfg.nomad.address}/v1/client/allocation/{alloc}/stats"

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the host is excepted: straight there
        src = NomadSource(Store(), cfg.nomad)
        src.probe(5.0)
        assert src.alloc_stats(alloc) and len(seen) == 2


def test_stats_and_probes_go_through_the_pool_without_requests_work(
        plain: tuple[Lab, Config], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each went through requests' whole send (preparing, merging settings, hooks, cookies,
    a Response): ~0.8 ms of CPU of a small read's ~1 ms, three reads a second on `:allocs`."""
    import requests

    lab, cfg = plain
    nomad, consul_src = NomadSource(Store(), cfg.nomad), ConsulSource(Store(), cfg.consul)
    alloc = running_alloc(lab)
    node = str(lab.call(lambda: lab.world.allocs[alloc].node_id))
    sent: list[str] = []
    real = requests.Session.send

    def send(self: requests.Session, request: Any, **kw: Any) -> Any:
        sent.append(str(request.url))
        return real(self, request, **kw)

    monkeypatch.setattr(requests.Session, "send", send)
    assert nomad.alloc_stats(alloc) and nomad.node_stats(node)
    nomad.probe(5.0)
    consul_src.probe(5.0)
    assert sent == []
