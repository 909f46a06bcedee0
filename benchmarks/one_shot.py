"""`jamtui status` / `snapshot --json` against a running lab, with each backend's heaviest
answer timed in the same run (issue #17's goal: each command ≤ 0.5 s over the slowest).

    .venv/bin/python benchmarks/one_shot.py --config /tmp/lab5k/jamtui.toml [--runs 5]
                                            [--jamtui-root DIR ...]

Each run times, one after another: every backend's heaviest read with plain `requests` (as
`curl` would: one request, the whole body; Nomad's allocation list with and without task
states, Consul's largest `/v1/health/service/:name` of all services read one by one, Proxmox's
`/cluster/resources`, one Fabio's `/api/routes`, HAProxy's stats; Consul's whole picture,
one read per service 8 at a time, as jamtui must read it; every VM's config 8 at a time, as
`snapshot --json` reads them for the addresses; and every read `status` makes, side
by side with nothing decoded: the backends' own share of its time), then `status` and
`snapshot --json` of each checkout (`--jamtui-root`, repeatable: e.g. a worktree of main for
the "before" figures, and this checkout; by default this checkout), as fresh processes
(`python -P -m jamtui`, bytecode compiled first, as an installed jamtui's is). Printed per
command and checkout: wall min/median/max, its CPU (user+system) median, the exit codes, the
median wall over the slowest answer of the same runs, and over the slowest chain of reads
the command must make (Consul's whole picture; for `snapshot --json` the VM configs too), and
over every read it makes side by side (`status`'s as above; `snapshot --json`'s, chains and
all, timed apart by `snapshot_reads`: a lab serves every backend from one process, so the
chains share its CPU and end later together than the slowest alone). The machine is
shared: runs are interleaved so that every checkout sees the same load, and the load
average is printed.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from jamtui.config import Config, load_config  # noqa: E402

WHOLE = "consul: every /v1/health/service/:name, 8 at a time"
CONFIGS = "proxmox: every VM's /config, 8 at a time (snapshot --json only)"
FLOOR = "every read `status` makes (plain requests, 16 at a time)"
SNAPSHOT_READS = ("every read `snapshot --json` makes (plain requests, side by side as jamtui "
                  "makes them; not in scale.py's reference)")


def _get(session: requests.Session, url: str, **kw: Any) -> float:
    t0 = time.perf_counter()
    resp = session.get(url, timeout=30, **kw)
    resp.raise_for_status()
    _ = resp.content  # the whole body, as a client must read it
    return time.perf_counter() - t0


class _Backends:
    """Where each backend answers and what every request to it carries."""

    def __init__(self, cfg: Config) -> None:
        self.nomad = cfg.nomad.address.rstrip("/")
        self.hdr = cfg.nomad.auth_headers()
        self.tls: dict[str, Any] = {"verify": cfg.nomad.ca_file or True}
        if cfg.nomad.client_cert:  # a lab started with --tls
            self.tls["cert"] = (cfg.nomad.client_cert, cfg.nomad.client_key)
        consul = cfg.consul.address.rstrip("/")
        self.consul = consul if "://" in consul else f"http://{consul}"
        self.chdr = {"X-Consul-Token": cfg.consul.token.reveal()} if cfg.consul.token else {}
        self.ctls: dict[str, Any] = {"verify": cfg.consul.ca_file or True}
        if cfg.consul.client_cert:
            self.ctls["cert"] = (cfg.consul.client_cert, cfg.consul.client_key)
        self.base = ""
        self.pve: dict[str, Any] = {}
        if cfg.proxmox.address:
            base = cfg.proxmox.address.rstrip("/")
            self.base = base if base.endswith("/api2/json") else base + "/api2/json"
            token = f"PVEAPIToken={cfg.proxmox.token_id}={cfg.proxmox.token_secret.reveal()}"
            self.pve = {"headers": {"Authorization": token}, "verify": cfg.proxmox.ca_file or True}
        self.fabio = cfg.fabio.addresses[0].rstrip("/") if cfg.fabio.addresses else ""
        self.haproxy = cfg.haproxy.stats_url

    def names(self, s: requests.Session) -> list[str]:
        """Consul's services, sorted."""
        return sorted(s.get(f"{self.consul}/v1/catalog/services", headers=self.chdr,
                            timeout=30, **self.ctls).json())

    def vms(self, s: requests.Session) -> list[dict[str, Any]]:
        """Proxmox's QEMU guests (whose configs `snapshot --json` reads)."""
        listed = s.get(f"{self.base}/cluster/resources?type=vm", timeout=30,
                       **self.pve).json()["data"]
        return [v for v in listed if v.get("type") == "qemu"]

    def config(self, v: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return f"{self.base}/nodes/{v['node']}/qemu/{v['vmid']}/config", self.pve

    def service(self, name: str) -> tuple[str, dict[str, Any]]:
        return f"{self.consul}/v1/health/service/{name}", {"headers": self.chdr, **self.ctls}

    def reads(self, allocations: str) -> list[tuple[str, dict[str, Any]]]:
        """Every single read `status` makes (`snapshot --json` too, with `allocations`
        asked with task states), but the Consul services and the VM configs."""
        out: list[tuple[str, dict[str, Any]]] = [
            (f"{self.nomad}{path}", {"headers": self.hdr, **self.tls}) for path in (
                "/v1/nodes", "/v1/jobs?namespace=*", allocations,
                "/v1/volumes?namespace=*", "/v1/namespaces", "/v1/deployments?namespace=*",
                "/v1/status/leader", "/v1/operator/autopilot/health")]
        out += [(f"{self.consul}{path}", {"headers": self.chdr, **self.ctls}) for path in (
            "/v1/agent/members", "/v1/status/leader", "/v1/status/peers",
            "/v1/operator/autopilot/health", "/v1/connect/intentions")]
        if self.base:
            out += [(f"{self.base}{path}", self.pve)
                    for path in ("/cluster/resources", "/cluster/tasks", "/access/permissions")]
        if self.fabio:
            out.append((f"{self.fabio}/api/routes", {}))
        if self.haproxy:
            out.append((self.haproxy, {}))
        return out


def _reader() -> Any:
    """A read on a session of the calling thread's own (as each reader of jamtui's holds
    its connections)."""
    local = threading.local()

    def read(item: tuple[str, dict[str, Any]]) -> float:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return _get(local.session, item[0], **item[1])

    return read


def answers(cfg: Config) -> dict[str, float]:
    """Seconds each backend took for its heaviest read (the one jamtui waits longest for)."""
    out: dict[str, float] = {}
    s = requests.Session()
    b = _Backends(cfg)
    out["nomad /v1/allocations"] = _get(s, f"{b.nomad}/v1/allocations?namespace=*",
                                        headers=b.hdr, **b.tls)
    out["nomad /v1/allocations?task_states=false"] = _get(
        s, f"{b.nomad}/v1/allocations?namespace=*&task_states=false", headers=b.hdr, **b.tls)
    names = b.names(s)
    out["consul /v1/health/service/:name (largest)"] = max(
        _get(s, url, **kw) for url, kw in map(b.service, names))
    # Consul's API has no bulk read of every service's instances: its whole answer is one
    # read per service (jamtui reads 8 at a time)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda item: _get(s, item[0], **item[1]), map(b.service, names)))
    out[WHOLE] = time.perf_counter() - t0
    if b.base:
        out["proxmox /cluster/resources"] = _get(s, f"{b.base}/cluster/resources", **b.pve)
        # `snapshot --json` also reads every VM's config (its address: Proxmox has no bulk
        # read of them), 8 at a time as jamtui does: inside jamtui at 5k this chain ended last
        # (~1 s: its reads wait for the GIL), by plain requests it takes ~0.15 s
        vms = b.vms(s)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda item: _get(s, item[0], **item[1]), map(b.config, vms)))
        out[CONFIGS] = time.perf_counter() - t0
    if b.fabio:
        out["fabio /api/routes (one)"] = _get(s, f"{b.fabio}/api/routes")
    if b.haproxy:
        out["haproxy stats"] = _get(s, b.haproxy)
    # the backends' side of `status`: every read it makes, by plain requests side by side
    # (no decoding), the Consul services once the catalog has named them
    reads = b.reads("/v1/allocations?namespace=*&task_states=false")
    read = _reader()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        started = [pool.submit(read, r) for r in reads]
        started += [pool.submit(read, b.service(n)) for n in b.names(s)]
        for f in started:
            f.result()
    out[FLOOR] = time.perf_counter() - t0
    return out


def snapshot_reads(cfg: Config) -> float:
    """Seconds the backends take to answer every read `snapshot --json` makes, side by side
    as jamtui makes them (nothing decoded): the single reads at once; Consul's services 8 at
    a time once the catalog has named them; the VM configs 8 at a time once the guests are
    listed. One process serves every backend of the lab (one GIL): these chains then
    share its CPU, so together they take longer than the slowest of them alone. Not part
    of `answers` (scale.py's reference stays the slowest single chain)."""
    b = _Backends(cfg)
    read = _reader()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(16) as pool, ThreadPoolExecutor(8) as services, \
            ThreadPoolExecutor(8) as configs:
        started = [pool.submit(read, r) for r in b.reads("/v1/allocations?namespace=*")]

        def consul_chain() -> None:
            list(services.map(read, map(b.service, b.names(requests.Session()))))

        def proxmox_chain() -> None:
            if b.base:
                list(configs.map(read, map(b.config, b.vms(requests.Session()))))

        started += [pool.submit(consul_chain), pool.submit(proxmox_chain)]
        for f in started:
            f.result()
    return time.perf_counter() - t0


def run_jamtui(root: Path, config: str, args: list[str]) -> tuple[float, float, int]:
    """(wall, CPU user+system, exit code) of one fresh `python -P -m jamtui` process."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-P", "-m", "jamtui", "--config", config, *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                          cwd="/tmp")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="a running lab's jamtui.toml")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--jamtui-root", action="append", default=[],
                    help="a checkout to run jamtui from (repeatable; default this one)")
    args = ap.parse_args()
    roots = [Path(r).resolve() for r in args.jamtui_root] or [ROOT]
    for root in roots:  # compiled first, as pip compiles an installed jamtui
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "jamtui")],
                       check=True, stdout=subprocess.DEVNULL)
    cfg = load_config(args.config)
    commands = {"status": ["status"], "snapshot --json": ["snapshot", "--json"]}
    slowest: list[float] = []
    per_backend: dict[str, list[float]] = {}
    res: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    loads = []
    for _ in range(args.runs):
        timed = answers(cfg)
        for k, v in timed.items():
            per_backend.setdefault(k, []).append(v)
        per_backend.setdefault(SNAPSHOT_READS, []).append(snapshot_reads(cfg))
        slowest.append(max(v for k, v in timed.items() if k not in (WHOLE, CONFIGS, FLOOR)))
        for name, cargs in commands.items():
            for root in roots:
                res.setdefault((name, str(root)), []).append(
                    run_jamtui(root, args.config, cargs))
        loads.append(os.getloadavg()[0])
    slow = statistics.median(slowest)
    print(f"{args.runs} runs against {args.config}; load average {min(loads):.2f}-"
          f"{max(loads):.2f} (shared machine)")
    for what, times in per_backend.items():
        print(f"  {what}: median {statistics.median(times):.3f} s (max {max(times):.3f})")
    print(f"slowest backend answer (one request): median {slow:.3f} s")
    floor = statistics.median(per_backend[FLOOR])
    chains = {"status": statistics.median(per_backend[WHOLE]),
              "snapshot --json": statistics.median(
                  max(w, c) for w, c in zip(per_backend[WHOLE],
                                            per_backend.get(CONFIGS, per_backend[WHOLE]),
                                            strict=True))}
    own = {"status": floor, "snapshot --json": statistics.median(per_backend[SNAPSHOT_READS])}
    print("| command | checkout | wall min/median/max | CPU median | over slowest | "
          "over its slowest chain | over status's reads | over its own reads | exit |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, checkout), rows in res.items():
        walls = [r[0] for r in rows]
        med = statistics.median(walls)
        print(f"| {name} | {checkout} | {min(walls):.2f}/{med:.2f}/{max(walls):.2f} s | "
              f"{statistics.median(r[1] for r in rows):.2f} s | {med - slow:+.2f} s | "
              f"{med - chains[name]:+.2f} s | {med - floor:+.2f} s | {med - own[name]:+.2f} s | "
              f"{sorted({r[2] for r in rows})} |")


if __name__ == "__main__":
    main()
