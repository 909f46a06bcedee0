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
the command must make (Consul's whole picture; for `snapshot --json` the VM configs too). The
machine is shared: runs are interleaved so that every checkout sees the same load, and the
load average is printed.
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


def _get(session: requests.Session, url: str, **kw: Any) -> float:
    t0 = time.perf_counter()
    resp = session.get(url, timeout=30, **kw)
    resp.raise_for_status()
    _ = resp.content  # the whole body, as a client must read it
    return time.perf_counter() - t0


def answers(cfg: Config) -> dict[str, float]:
    """Seconds each backend took for its heaviest read (the one jamtui waits longest for)."""
    out: dict[str, float] = {}
    s = requests.Session()
    nomad = cfg.nomad.address.rstrip("/")
    hdr = cfg.nomad.auth_headers()
    tls: dict[str, Any] = {"verify": cfg.nomad.ca_file or True}
    if cfg.nomad.client_cert:  # a lab started with --tls
        tls["cert"] = (cfg.nomad.client_cert, cfg.nomad.client_key)
    out["nomad /v1/allocations"] = _get(s, f"{nomad}/v1/allocations?namespace=*", headers=hdr,
                                        **tls)
    out["nomad /v1/allocations?task_states=false"] = _get(
        s, f"{nomad}/v1/allocations?namespace=*&task_states=false", headers=hdr, **tls)
    consul = cfg.consul.address.rstrip("/")
    if "://" not in consul:
        consul = f"http://{consul}"
    chdr = {"X-Consul-Token": cfg.consul.token.reveal()} if cfg.consul.token else {}
    ctls: dict[str, Any] = {"verify": cfg.consul.ca_file or True}
    if cfg.consul.client_cert:
        ctls["cert"] = (cfg.consul.client_cert, cfg.consul.client_key)
    names = s.get(f"{consul}/v1/catalog/services", headers=chdr, timeout=30, **ctls).json()
    out["consul /v1/health/service/:name (largest)"] = max(
        _get(s, f"{consul}/v1/health/service/{n}", headers=chdr, **ctls) for n in sorted(names))
    # Consul's API has no bulk read of every service's instances: its whole answer is one
    # read per service (jamtui reads 8 at a time)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: _get(s, f"{consul}/v1/health/service/{n}", headers=chdr,
                                     **ctls), sorted(names)))
    out[WHOLE] = time.perf_counter() - t0
    if cfg.proxmox.address:
        base = cfg.proxmox.address.rstrip("/")
        if not base.endswith("/api2/json"):
            base += "/api2/json"
        token = f"PVEAPIToken={cfg.proxmox.token_id}={cfg.proxmox.token_secret.reveal()}"
        out["proxmox /cluster/resources"] = _get(
            s, f"{base}/cluster/resources", headers={"Authorization": token},
            verify=cfg.proxmox.ca_file or True)
        # `snapshot --json` also reads every VM's config (its address: Proxmox has no bulk
        # read of them), 8 at a time as jamtui does: inside jamtui at 5k this chain ended last
        # (~1 s: its reads wait for the GIL), by plain requests it takes ~0.15 s
        vms = s.get(f"{base}/cluster/resources?type=vm", headers={"Authorization": token},
                    verify=cfg.proxmox.ca_file or True, timeout=30).json()["data"]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda v: _get(s, f"{base}/nodes/{v['node']}/qemu/{v['vmid']}/config",
                                         headers={"Authorization": token},
                                         verify=cfg.proxmox.ca_file or True),
                          [v for v in vms if v.get("type") == "qemu"]))
        out[CONFIGS] = time.perf_counter() - t0
    if cfg.fabio.addresses:
        out["fabio /api/routes (one)"] = _get(s, f"{cfg.fabio.addresses[0].rstrip('/')}/api/routes")
    if cfg.haproxy.stats_url:
        out["haproxy stats"] = _get(s, cfg.haproxy.stats_url)
    # the backends' side of `status`: every read it makes, by plain requests side by side
    # (no decoding), the Consul services once the catalog has named them
    reads: list[tuple[str, dict[str, Any]]] = [
        (f"{nomad}{path}", {"headers": hdr, **tls}) for path in (
            "/v1/nodes", "/v1/jobs?namespace=*", "/v1/allocations?namespace=*&task_states=false",
            "/v1/volumes?namespace=*", "/v1/namespaces", "/v1/deployments?namespace=*",
            "/v1/status/leader", "/v1/operator/autopilot/health")]
    reads += [(f"{consul}{path}", {"headers": chdr, **ctls}) for path in (
        "/v1/agent/members", "/v1/status/leader", "/v1/status/peers",
        "/v1/operator/autopilot/health", "/v1/connect/intentions")]
    if cfg.proxmox.address:
        reads += [(f"{base}{path}", {"headers": {"Authorization": token},
                                      "verify": cfg.proxmox.ca_file or True})
                  for path in ("/cluster/resources", "/cluster/tasks", "/access/permissions")]
    if cfg.fabio.addresses:
        reads.append((f"{cfg.fabio.addresses[0].rstrip('/')}/api/routes", {}))
    if cfg.haproxy.stats_url:
        reads.append((cfg.haproxy.stats_url, {}))
    local = threading.local()

    def read(item: tuple[str, dict[str, Any]]) -> float:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return _get(local.session, item[0], **item[1])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        started = [pool.submit(read, r) for r in reads]
        listed = s.get(f"{consul}/v1/catalog/services", headers=chdr, timeout=30, **ctls).json()
        started += [pool.submit(read, (f"{consul}/v1/health/service/{n}",
                                       {"headers": chdr, **ctls})) for n in sorted(listed)]
        for f in started:
            f.result()
    out[FLOOR] = time.perf_counter() - t0
    return out


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
    print("| command | checkout | wall min/median/max | CPU median | over slowest | "
          "over its slowest chain | over status's reads | exit |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, checkout), rows in res.items():
        walls = [r[0] for r in rows]
        med = statistics.median(walls)
        print(f"| {name} | {checkout} | {min(walls):.2f}/{med:.2f}/{max(walls):.2f} s | "
              f"{statistics.median(r[1] for r in rows):.2f} s | {med - slow:+.2f} s | "
              f"{med - chains[name]:+.2f} s | {med - floor:+.2f} s | "
              f"{sorted({r[2] for r in rows})} |")


if __name__ == "__main__":
    main()
