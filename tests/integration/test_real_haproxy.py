"""Real HAProxy (Debian's package; scripts/test installs it) in front of the lab's Fabio
instances: real requests with Host headers go HAProxy → Fabio → instances; jamtui reads the
real stats (CSV over HTTP and the runtime socket) and names the broken hop when something
fails, and the chain recovers when it is lifted."""

from __future__ import annotations

import contextlib
import csv
import io
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from jamtui.config import FabioConfig, HAProxyConfig, load_config
from jamtui.model import Kind
from jamtui.routing import trace
from jamtui.sim.lab import Lab
from jamtui.sources.consul import ConsulSource
from jamtui.sources.fabio import FabioSource
from jamtui.sources.haproxy import HAProxySource, read_socket
from jamtui.sources.nomad import NomadSource
from jamtui.store import Store
from tests.conftest import FAST
from tests.helpers import wait_for

HOST = "example.jamfox.dev"


def free_ports(count: int) -> list[int]:
    """Ports free now, all different (each held until all are picked: one at a time, the
    kernel may hand out the same one twice, and haproxy binds both frontends to it)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def haproxy_config(lab: Lab, front: int, stats: int, sock: Path) -> str:
    """provisioners/' haproxy.cfg.j2 on loopback: the same frontend, backend and server
    names and the same `option httpchk GET /health` on Fabio's UI port (`check port`);
    only the check timings are quicker."""
    servers = "\n".join(
        f"  server {name.split(':')[1]} {lab.servers[name].host}:{lab.servers[name].port}"
        f" check port {lab.servers[name.removesuffix(':lb')].port} inter 300ms fall 1 rise 1"
        for name in sorted(lab.servers) if name.startswith("fabio:") and name.endswith(":lb"))
    return f"""global
  stats socket {sock} mode 600 level admin
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend http
  bind 127.0.0.1:{front}
  default_backend fabio
frontend stats
  bind 127.0.0.1:{stats}
  stats enable
  stats uri /stats
backend fabio
  balance roundrobin
  option httpchk GET /health
{servers}
"""


@pytest.fixture
def real(tmp_path: Path) -> Iterator[dict[str, Any]]:
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    assert Path(binary).exists(), "haproxy is not installed: run scripts/test (it installs it)"
    with Lab(seed=6, tick=0.2, traffic=False, **FAST) as lab:
        front, stats = free_ports(2)
        sock = tmp_path / "admin.sock"
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(haproxy_config(lab, front, stats, sock))
        proc = subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(lambda: _up(f"http://127.0.0.1:{stats}/stats;csv"), timeout=10)
            yield {"lab": lab, "front": f"http://127.0.0.1:{front}",
                   "stats": f"http://127.0.0.1:{stats}/stats;csv", "socket": str(sock)}
        finally:
            proc.terminate()
            proc.wait(10)


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


def rows(store: Store) -> dict[str, Any]:
    return {r.id: r for r in store.items(Kind.HAPROXY)}


def test_requests_flow_and_the_counts_match(real: dict[str, Any]) -> None:
    store = Store()
    source = HAProxySource(store, HAProxyConfig(stats_url=real["stats"]))
    wait_for(lambda: all(r.status == "UP" for r in _refresh(source, store).values()
                         if r.type == "server"), timeout=10)
    before = rows(store)["http/FRONTEND"].sessions_total
    answered = set()
    for _ in range(12):
        resp = requests.get(real["front"] + "/", headers={"Host": HOST}, timeout=5)
        assert resp.status_code == 200 and resp.text.startswith("Hello from example.web[")
        answered.add(resp.headers["X-Jamlab-Instance"])
    assert len(answered) >= 2
    after = _refresh(source, store)
    assert after["http/FRONTEND"].sessions_total - before == 12
    assert after["http/FRONTEND"].hrsp_2xx >= 12
    servers = [r for r in after.values() if r.type == "server"]
    assert sum(r.sessions_total for r in servers) >= 12
    # the runtime socket tells the same story
    via_socket = HAProxySource(Store(), HAProxyConfig(socket=real["socket"]))
    via_socket.refresh()
    assert rows(via_socket.store)["http/FRONTEND"].sessions_total == \
        after["http/FRONTEND"].sessions_total
    assert "fabio" in read_socket(real["socket"], "show servers state")


def test_the_lab_and_the_real_haproxy_agree(real: dict[str, Any]) -> None:
    """The lab's stand-in and the real HAProxy, configured as provisioners/ does, print the
    same header, the same rows and the same check results (L7OK from `option httpchk`)."""
    lab: Lab = real["lab"]

    def table(url: str) -> tuple[str, dict[tuple[str, str], dict[str, str]]]:
        text = requests.get(url, timeout=5).text
        return text.splitlines()[0], {(r["pxname"], r["svname"]): r
                                      for r in csv.DictReader(io.StringIO(text[2:]))}

    wait_for(lambda: all(r["check_status"] == "L7OK" for k, r in table(real["stats"])[1].items()
                         if k[1] not in ("FRONTEND", "BACKEND")), timeout=10)
    real_head, real_rows = table(real["stats"])
    lab_head, lab_rows = wait_for(lambda: _with(
        table(lab.urls["haproxy_stats"] + "/stats;csv"),
        lambda t: all(r["status"] == "UP" for k, r in t[1].items() if k[0] == "fabio")))
    assert lab_head == real_head
    assert list(lab_rows) == list(real_rows)
    for key, row in real_rows.items():
        for col in ("status", "check_status", "check_code", "check_desc", "type", "mode"):
            assert lab_rows[key][col] == row[col], (key, col)


def _refresh(source: HAProxySource, store: Store) -> dict[str, Any]:
    source.refresh()
    return rows(store)


def live_store(lab: Lab, real: dict[str, Any], tmp: Path) -> tuple[Store, list[Any]]:
    path = tmp / "jamtui.toml"
    path.write_text(lab.config_toml())
    cfg = load_config(path, env=lab.env())
    store = Store()
    sources = [HAProxySource(store, HAProxyConfig(stats_url=real["stats"]), poll_interval=0.3),
               FabioSource(store, FabioConfig(addresses=cfg.fabio.addresses),
                           poll_interval=0.3),
               ConsulSource(store, cfg.consul), NomadSource(store, cfg.nomad)]
    for s in sources:
        s.start()
    for s in sources:
        s.ready.wait(10)
    return store, sources


def test_broken_hops_are_named_and_recover(real: dict[str, Any], tmp_path: Path) -> None:
    lab: Lab = real["lab"]
    store, sources = live_store(lab, real, tmp_path)
    try:
        wait_for(lambda: trace(store, HOST).whole, timeout=10)

        # one Fabio down: its HAProxy server turns red, the chain stays whole
        lab.set_fault("fabio:vs1", "down")
        chain = wait_for(lambda: _with(trace(store, HOST), lambda c: any(
            not s.ok for h in c.hops if h.layer == "backend" for s in h.children)))
        assert chain.whole
        server = next(s for h in chain.hops if h.layer == "backend" for s in h.children
                      if not s.ok)
        assert server.name == "vs1" and "DOWN" in server.problem
        lab.clear_fault()
        wait_for(lambda: all(s.ok for h in trace(store, HOST).hops if h.layer == "backend"
                             for s in h.children), timeout=10)

        # every Fabio down: the chain breaks at HAProxy's backend
        lab.set_fault("fabio", "down")
        chain = wait_for(lambda: _with(trace(store, HOST), lambda c: not c.whole))
        assert chain.broken.layer == "backend" and "no server up" in chain.broken.problem
        assert requests.get(real["front"] + "/", headers={"Host": HOST}, timeout=5
                            ).status_code == 503
        lab.clear_fault()
        wait_for(lambda: trace(store, HOST).whole, timeout=15)

        # the route tag removed: no Fabio route for the host
        def untag() -> None:
            job = lab.world.jobs["example"]
            job.groups[0].services[0].tags = []
            lab.world.register_job(job)

        lab.call(untag)
        chain = wait_for(lambda: _with(trace(store, HOST + "/"), lambda c: not c.whole
                                       and c.broken.layer in ("route", "service")),
                         timeout=15)
        assert requests.get(real["front"] + "/", headers={"Host": HOST}, timeout=5
                            ).status_code == 404  # Fabio: no route

        # an instance stopped (its check fails): the service hop names it
        lab.call(lambda: _retag(lab))
        wait_for(lambda: trace(store, HOST).whole, timeout=15)
        alloc_ids = [a.id for a in store.items(Kind.ALLOCATION)
                     if a.job_id == "example" and a.client_status == "running"]
        for alloc_id in alloc_ids:
            lab.call(lab.world.instance_health, alloc_id, False)
        chain = wait_for(lambda: _with(trace(store, HOST), lambda c: not c.whole))
        assert chain.broken.layer in ("route", "service")
        for alloc_id in alloc_ids:
            lab.call(lab.world.instance_health, alloc_id, True)
        wait_for(lambda: trace(store, HOST).whole, timeout=15)
    finally:
        for s in sources:
            s.stop(0.5)


def _retag(lab: Lab) -> None:
    job = lab.world.jobs["example"]
    job.groups[0].services[0].tags = [f"urlprefix-{HOST}/"]
    lab.world.register_job(job)


def _with(value: Any, cond: Any) -> Any:
    return value if cond(value) else None

