"""TLS as the JamLab runs it: Nomad and Consul that require client certificates (`jamtui lab
--tls`), the whole cockpit and the headless commands over mutual TLS, server names, every TLS
failure in words, certificate expiry and verification turned off in the health bar."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from jamtui.actions import find
from jamtui.config import Config, ConfigError, load_config
from jamtui.doctor import Finding, run_doctor
from jamtui.engine import Engine
from jamtui.model import BackendStatus, Health, Kind, TLSInfo
from jamtui.sim import tls as simtls
from jamtui.sim.lab import Lab
from jamtui.sources.logs import LogFollower
from jamtui.sources.tls import CertWatch, Endpoint, TLSSettings, expiring
from jamtui.store import Store
from jamtui.ui.app import JamApp
from tests.conftest import CLIENT_ENV, FAST
from tests.helpers import fake_engine, wait_for
from tests.ui.test_cockpit import pane, text_of, until

NO_CLIENT_CERT = ("the server asked for a client certificate: set NOMAD_CLIENT_CERT and "
                  "NOMAD_CLIENT_KEY")


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Path]]:
    with Lab(seed=6, tick=0.2, traffic=False, tls=True, **FAST) as lab:
        path = tmp_path_factory.mktemp("tls") / "jamtui.toml"
        path.write_text("poll_interval = 0.5\n" + lab.config_toml())
        yield lab, path


def started(cfg: Config) -> Engine:
    engine = Engine(cfg)
    engine.start()
    engine.wait_ready(15)
    return engine


def without_client_cert(lab: Lab, path: Path, tmp_path: Path) -> Config:
    text = "".join(line + "\n" for line in path.read_text().splitlines()
                   if not line.startswith(("client_cert", "client_key")))
    bare = tmp_path / "no-client-cert.toml"
    bare.write_text(text)
    env = {k: v for k, v in lab.env().items() if not k.startswith("NOMAD_CLIENT_")}
    return load_config(bare, env=env)


# -- configuration ----------------------------------------------------------------------------


def test_config_takes_client_certificates_and_server_names(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[nomad]\naddress = "https://vb0:4646"\nclient_cert = "/n.pem"\n'
                    'client_key = "/n-key.pem"\ntls_server_name = "server.global.nomad"\n\n'
                    '[consul]\nclient_cert = "/c.pem"\nclient_key = "/c-key.pem"\n')
    cfg = load_config(path, env={})
    assert (cfg.nomad.client_cert, cfg.nomad.client_key, cfg.nomad.tls_server_name) == (
        "/n.pem", "/n-key.pem", "server.global.nomad")
    assert cfg.consul.client_cert == "/c.pem" and cfg.consul.tls_server_name == ""
    env = {"NOMAD_CLIENT_CERT": "/e.pem", "NOMAD_CLIENT_KEY": "/e-key.pem",
           "NOMAD_TLS_SERVER_NAME": "server.dc2.nomad", "NOMAD_CACERT": "/ca.pem",
           "CONSUL_HTTP_ADDR": "https://vb1:8501", "CONSUL_CLIENT_CERT": "/cc.pem",
           "CONSUL_CLIENT_KEY": "/cc-key.pem", "CONSUL_TLS_SERVER_NAME": "server.dc1.consul",
           "CONSUL_CAPATH": "/etc/consul.d/ca"}
    cfg = load_config(path, env=env)
    settings = TLSSettings.of("nomad", cfg.nomad)
    assert settings.cert == ("/e.pem", "/e-key.pem") and settings.verify == "/ca.pem"
    assert settings.server_name == "server.dc2.nomad"
    consul = TLSSettings.of("consul", cfg.consul)
    assert cfg.consul.address == "https://vb1:8501"
    assert consul.cert == ("/cc.pem", "/cc-key.pem") and consul.verify == "/etc/consul.d/ca"
    assert consul.server_name == "server.dc1.consul"
    half = tmp_path / "half.toml"
    half.write_text('[nomad]\nclient_cert = "/x.pem"\n')
    with pytest.raises(ConfigError, match="NOMAD_CLIENT_CERT and NOMAD_CLIENT_KEY"):
        load_config(half, env={})


# -- the engine, actions and logs over mutual TLS ---------------------------------------------


def test_sources_logs_and_actions_over_mutual_tls(tls_lab: tuple[Lab, Path]) -> None:
    lab, path = tls_lab
    cfg = load_config(path, env=lab.env())
    assert cfg.nomad.address.startswith("https://") and cfg.nomad.client_cert
    engine = started(cfg)
    try:
        store = engine.store
        health = {b.name: b.health for b in store.backends()}
        assert health["nomad"] is Health.OK and health["consul"] is Health.OK, \
            [b.last_error for b in store.backends()]
        assert store.count(Kind.ALLOCATION) == 14 and store.count(Kind.SERVICE) > 3
        wait_for(lambda: store.items(Kind.QUORUM) and len(store.items(Kind.QUORUM)) == 2)
        nomad_tls = wait_for(lambda: (t := store.get(Kind.TLS, "nomad")) and t.checked_at
                             and t)
        assert "server.global.nomad" in nomad_tls.names and not nomad_tls.error
        assert not nomad_tls.insecure and not expiring(nomad_tls)

        # the log follower, on its own session
        alloc = next(a for a in store.items(Kind.ALLOCATION)
                     if a.job_id == "example" and a.client_status == "running")
        follower = LogFollower(cfg.nomad, alloc.id, alloc.tasks[0].name, follow=False)
        assert list(follower.lines())

        # an action through python-nomad's session, and one through a node's own agent
        restart = find("alloc_restart")
        assert restart is not None
        assert list(restart.run(engine, alloc, {}))
        member = next(m for m in store.items(Kind.MEMBER) if m.name == "vs1")
        maintenance = find("node_maintenance")
        assert maintenance is not None
        assert "maintenance mode on" in list(maintenance.run(engine, member, {}))[-1]
        assert lab.call(lambda: ("vs1", "_node_maintenance") in lab.world.checks)
        lab.call(lab.world.node_maintenance, "vs1", False)
    finally:
        engine.stop()


def test_the_handshakes_wait_for_the_cockpit_s_first_frame(tls_lab: tuple[Lab, Path]) -> None:
    """The certificates are read once the cockpit's first frame is drawn (#17): whether
    verification is off is known from the start, the expiry a moment after the frame."""
    lab, path = tls_lab
    engine = Engine(load_config(path, env=lab.env()))
    drawn = engine.expect_first_frame()
    engine.start()
    try:
        assert engine.wait_ready(15)
        time.sleep(0.5)
        assert not engine.store.get(Kind.TLS, "nomad").checked_at
        drawn.set()
        wait_for(lambda: engine.store.get(Kind.TLS, "nomad").checked_at, timeout=10)
    finally:
        engine.stop()


def test_without_a_client_certificate_doctor_and_health_say_so(
        tls_lab: tuple[Lab, Path], tmp_path: Path) -> None:
    lab, path = tls_lab
    cfg = without_client_cert(lab, path, tmp_path)
    findings = [f for f in run_doctor(cfg) if f.backend == "nomad"]
    assert [f.detail for f in findings] == [NO_CLIENT_CERT]
    assert not findings[0].ok and "NOMAD_CLIENT_CERT" in findings[0].fix
    engine = started(cfg)
    try:
        nomad = wait_for(lambda: (b := engine.store.backend("nomad")).health is Health.DOWN
                         and b)
        assert NO_CLIENT_CERT in nomad.last_error
        assert engine.store.backend("consul").health is Health.OK  # it has its certificate
    finally:
        engine.stop()


# -- every TLS failure in words, with certificates made here ------------------------------------


def serve_nomad(lab: Lab, cert: tuple[Path, Path], client_ca: Path,
                backend: str = "nomad") -> None:
    """Restart the lab's Nomad (or Consul) with this server certificate, trusting clients of
    `client_ca`."""
    import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = lab.servers[backend]

    async def swap() -> None:
        await server.go_down()
        server.ssl_context = ctx
        await server.come_up()

    lab.call(swap)


def nomad_findings(cfg: Config) -> list[Finding]:
    return [f for f in run_doctor(cfg, timeout=5) if f.backend == "nomad"]


def test_doctor_names_each_tls_failure(tls_lab: tuple[Lab, Path], tmp_path: Path) -> None:
    lab, path = tls_lab
    base = load_config(path, env=lab.env())
    ours, other = simtls.CA(name="Our test CA"), simtls.CA(name="Some other CA")
    ours_pem, other_pem = ours.write(tmp_path / "ours.pem"), other.write(tmp_path / "other.pem")
    cfg = replace(base, nomad=replace(base.nomad, ca_file=str(ours_pem), tls_server_name=""))
    names = ["server.global.nomad", "localhost", "127.0.0.1"]

    def issued(ca: simtls.CA, tag: str, names: list[str], **kw: Any) -> tuple[Path, Path]:
        return ca.issue(names, tmp_path / f"{tag}.pem", tmp_path / f"{tag}-key.pem", **kw)

    try:
        # all well, then a certificate from a CA the client does not know
        serve_nomad(lab, issued(ours, "good", names), lab.ca_cert)
        assert all(f.ok for f in nomad_findings(cfg)), nomad_findings(cfg)
        serve_nomad(lab, issued(other, "stranger", names), lab.ca_cert)
        [f] = nomad_findings(cfg)
        assert "signed by a CA jamtui does not trust" in f.detail and "Some other CA" in f.detail
        assert "NOMAD_CACERT" in f.fix

        # a certificate for the cluster's name only: a mismatch listing it, then the
        # server name override makes it verify (SNI and the name matched)
        serve_nomad(lab, issued(ours, "named", ["server.global.nomad"]), lab.ca_cert)
        [f] = nomad_findings(cfg)
        assert "not valid for '127.0.0.1'" in f.detail and "server.global.nomad" in f.detail
        assert "NOMAD_TLS_SERVER_NAME" in f.fix
        named = replace(cfg, nomad=replace(cfg.nomad, tls_server_name="server.global.nomad"))
        assert all(f.ok for f in nomad_findings(named)), nomad_findings(named)
        engine = started(named)
        try:
            assert engine.store.backend("nomad").health is Health.OK
            assert engine.store.count(Kind.ALLOCATION) == 14  # every namespace
        finally:
            engine.stop()

        # expired, and not valid yet, each with its date
        serve_nomad(lab, issued(ours, "old", names, days=-2), lab.ca_cert)
        [f] = nomad_findings(cfg)
        assert re.search(r"its certificate expired on \d{4}-\d\d-\d\d", f.detail), f.detail
        serve_nomad(lab, issued(ours, "early", names, not_before_days=2), lab.ca_cert)
        [f] = nomad_findings(cfg)
        assert re.search(r"not valid yet until \d{4}-\d\d-\d\d", f.detail), f.detail

        # the server trusts another CA for its clients: our client certificate is refused
        serve_nomad(lab, issued(ours, "picky", names), other_pem)
        [f] = nomad_findings(cfg)
        assert "refused the client certificate" in f.detail, f.detail

        # a client certificate of our own near its end is said too
        ending = issued(ours, "cli-ending", ["cli.global.nomad"], days=5, client=True,
                        server=False)
        soon = replace(cfg, nomad=replace(cfg.nomad, client_cert=str(ending[0]),
                                          client_key=str(ending[1])))
        assert any(re.search(r"the client certificate \S+ expires in 4 days", f.detail)
                   for f in nomad_findings(soon))

        # three days left: doctor and the certificate watch warn, with the date
        serve_nomad(lab, issued(ours, "short", names, days=3), lab.ca_cert)
        findings = nomad_findings(cfg)
        assert findings[0].ok
        [ending_soon] = [f for f in findings if "expires in" in f.detail]
        assert not ending_soon.ok and re.search(
            r"expires in 2 days \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)", ending_soon.detail)
        watch = CertWatch(engine.store, [Endpoint("nomad", cfg.nomad.address,
                                                  TLSSettings.of("nomad", cfg.nomad))])
        assert watch.check(watch.endpoints[0])
        info = engine.store.get(Kind.TLS, "nomad")
        assert expiring(info) and not info.insecure and info.not_after - time.time() < 3 * 86400
    finally:
        serve_nomad(lab, lab.ctx.tls.servers["nomad"], lab.ca_cert)


def test_consul_server_name_reaches_py_consul_and_the_agents(
        tls_lab: tuple[Lab, Path], tmp_path: Path) -> None:
    lab, path = tls_lab
    ours = simtls.CA(name="Our test CA")
    cfg = load_config(path, env=lab.env())
    cfg = replace(cfg, consul=replace(cfg.consul, ca_file=str(ours.write(tmp_path / "o.pem"))))
    named = ours.issue(["server.dc1.consul"], tmp_path / "c.pem", tmp_path / "c-key.pem")
    try:
        serve_nomad(lab, named, lab.ca_cert, "consul")
        assert cfg.consul.tls_server_name == "server.dc1.consul"
        engine = started(cfg)
        try:
            assert engine.store.backend("consul").health is Health.OK
            assert engine.store.count(Kind.SERVICE) > 3
        finally:
            engine.stop()
        unnamed = replace(cfg, consul=replace(cfg.consul, tls_server_name=""))
        engine = started(unnamed)
        try:
            consul = wait_for(lambda: (b := engine.store.backend("consul")).health
                              is Health.DOWN and b)
            assert "not valid for '127.0.0.1'" in consul.last_error
            assert "CONSUL_TLS_SERVER_NAME" in consul.last_error
        finally:
            engine.stop()
    finally:
        serve_nomad(lab, lab.ctx.tls.servers["consul"], lab.ca_cert, "consul")


# -- the whole cockpit ---------------------------------------------------------------------------


async def test_cockpit_over_mutual_tls(tls_lab: tuple[Lab, Path]) -> None:
    lab, path = tls_lab
    engine = Engine(load_config(path, env=lab.env()))
    app = JamApp(engine)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            for kind in (Kind.HYPERVISOR, Kind.VM, Kind.SERVICE, Kind.ALLOCATION):
                await until(pilot, lambda k=kind: pane(app, k).table.row_count > 0, 15)
            assert pane(app, Kind.ALLOCATION).table.row_count == 14
            # Consul's services show as each answers; it is ok once the last has (Nomad's
            # first picture, side by side now, can be whole before that)
            bar = lambda: text_of(app.screen.query_one("HealthBar").render())  # noqa: E731
            await until(pilot, lambda: "nomad ✓ ok" in bar() and "consul ✓ ok" in bar(), 15)
            assert "TLS verification off" not in bar()
    finally:
        engine.stop()


async def test_health_bar_shows_verification_off_for_as_long_as_it_lasts(
        tls_lab: tuple[Lab, Path]) -> None:
    lab, path = tls_lab
    env = {**lab.env(), "PROXMOX_VE_INSECURE": "true", "NOMAD_SKIP_VERIFY": "1"}
    engine = Engine(load_config(path, env=env))
    app = JamApp(engine)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            bar = lambda: text_of(app.screen.query_one("HealthBar").render())  # noqa: E731
            await until(pilot, lambda: "nomad ✓ ok" in bar() and "proxmox ✓ ok" in bar(), 15)
            assert "proxmox ✓ ok TLS verification off" in bar()
            assert "nomad ✓ ok TLS verification off" in bar()
            assert "consul ✓ ok TLS verification off" not in bar()
            await pilot.pause(1.5)  # still there a refresh later, not only at start or exit
            assert bar().count("TLS verification off") == 2
    finally:
        engine.stop()


async def test_health_bar_warns_of_a_certificate_near_its_end() -> None:
    store = Store()
    now = time.time()
    for name in ("nomad", "consul", "haproxy"):
        store.set_backend(BackendStatus(name, Health.OK, address=f"https://{name}"))
    store.upsert(Kind.TLS, TLSInfo("nomad", "https://vb0:4646", not_after=now + 3.5 * 86400))
    store.upsert(Kind.TLS, TLSInfo("consul", "https://vb0:8501", not_after=now + 90 * 86400))
    store.upsert(Kind.TLS, TLSInfo("haproxy", "https://bastion", not_after=now - 3600))
    app = JamApp(fake_engine(store))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.1)
        bar = " ".join(text_of(app.screen.query_one("HealthBar").render()).split())
        assert "nomad ✓ ok cert ends in 3 d" in bar  # beside it, and said in full below
        assert re.search(r"nomad: the certificate of https://vb0:4646 expires in 3 days "
                         r"\(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)", bar), bar
        assert "haproxy ✓ ok cert expired" in bar and "EXPIRED 60 minutes ago" in bar
        assert "consul ✓ ok " in bar and "vb0:8501" not in bar


# -- jamtui lab --tls, as a user runs it ---------------------------------------------------------


def test_lab_tls_prints_client_certificates_and_warns_of_a_short_certificate(
        tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jamtui", "lab", "--tls", "--cert-days", "nomad=3",
         "--cert-days", "haproxy=5", "--workdir", str(tmp_path)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=base)
    assert proc.stdout is not None
    out = ""
    try:
        deadline = time.monotonic() + 30
        for line in proc.stdout:
            out += line
            if "Ctrl-C stops the lab" in line or time.monotonic() > deadline:
                break
        exports = {k: shlex.split(v)[0]
                   for k, v in re.findall(r"^export (\w+)=(\S+)$", out, re.M)}
        for name in ("NOMAD_CLIENT_CERT", "NOMAD_CLIENT_KEY", "NOMAD_CACERT",
                     "CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY", "CONSUL_CACERT"):
            assert Path(exports[name]).is_file(), name
        assert exports["NOMAD_ADDR"].startswith("https://")
        assert exports["CONSUL_HTTP_ADDR"].startswith("https://")
        assert Path(exports["NOMAD_CLIENT_KEY"]).stat().st_mode & 0o077 == 0
        assert exports["NOMAD_CLIENT_CERT"] in (tmp_path / "env.sh").read_text()
        config = (tmp_path / "jamtui.toml").read_text()
        assert f'client_cert = "{exports["CONSUL_CLIENT_CERT"]}"' in config
        # the config file alone (tokens aside) reaches both over mutual TLS
        env = {**base, **{k: v for k, v in exports.items() if k.endswith("TOKEN")
                          or k.startswith("PROXMOX")}}
        doctor = subprocess.run([sys.executable, "-m", "jamtui", "doctor", "--config",
                                 str(tmp_path / "jamtui.toml")], env=env, capture_output=True,
                                text=True, timeout=60)
        text = " ".join(doctor.stdout.split())
        assert "nomad: https" in text and "consul: https" in text, text
        assert re.search(r"nomad: the certificate of https://\S+ expires in 2 days", text), text
        # HAProxy's HTTPS frontend (the certificate certbot renews) is watched too
        assert re.search(r"haproxy: the frontend's certificate \(https://\S+\) expires in 4 "
                         r"days", text), text
        assert doctor.returncode == 1  # the warning is a finding to act on
        snap = subprocess.run([sys.executable, "-m", "jamtui", "snapshot", "--json",
                               "--config", str(tmp_path / "jamtui.toml")], env=env,
                              capture_output=True, text=True, timeout=60)
        doc = json.loads(snap.stdout)
        health = {b["name"]: b["health"] for b in doc["backends"]}
        assert health["nomad"] == "ok" and health["consul"] == "ok", doc["backends"]
        assert doc["allocations"] and doc["services"]
        status = subprocess.run([sys.executable, "-m", "jamtui", "status", "--config",
                                 str(tmp_path / "jamtui.toml")], env=env, capture_output=True,
                                text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        logs = subprocess.run([sys.executable, "-m", "jamtui", "logs", "example", "--config",
                               str(tmp_path / "jamtui.toml")], env=env, capture_output=True,
                              text=True, timeout=60)
        assert logs.returncode == 0 and logs.stdout.strip(), logs.stderr
        trace = subprocess.run([sys.executable, "-m", "jamtui", "trace", "example.jamfox.dev/",
                                "--probe", "--json", "--config", str(tmp_path / "jamtui.toml")],
                               env=env, capture_output=True, text=True, timeout=60)
        probe = json.loads(trace.stdout)["probe"]
        assert probe["url"].startswith("https://") and probe["status"] == 200, probe
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
