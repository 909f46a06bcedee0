"""What one connected cockpit costs the servers: requests per minute per backend (issue #17).

    .venv/bin/python benchmarks/requests_per_min.py [--labs demo,5000] [--seconds 60]
                                                    [--jamtui-root DIR] [--view overview]

For each lab (`jamtui lab`, `jamtui lab --scale 100,5000,50`, from this checkout, as
`benchmarks/scale.py` builds them; started with a patient timeout) the lab's own traffic is
counted first for `--seconds` with no client (HAProxy's checks of every Fabio, ...), then one
jamtui engine (what the TUI runs, from `--jamtui-root` when given: e.g. `git worktree add
/tmp/main main` for the "before" figures) is started with the view's kinds on screen
(`Engine.showing`, as the cockpit's overview tells it), waited for until every source has
answered (the first picture; its requests are printed too) and 15 s more, and counted for
`--seconds`. Printed: requests/min per backend the
client caused (with minus without; `fabio /api/routes` apart from `fabio`, which counts
HAProxy's checks too), Consul's by path, and the lab's own. Counts come from the lab's `requests`
prompt and are robust on a shared machine, where CPU figures are not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import LABS, LabProc  # benchmarks/ is not a package

VIEWS = {"overview": {"hypervisors", "vms", "services", "allocations"},
         "routes": {"routes", "services", "service_instances", "haproxy", "allocations",
                    "nomad_nodes", "vms", "hypervisors", "intentions"}}

CLIENT = """
import sys, threading
from jamtui.config import load_config
from jamtui.engine import Engine
engine = Engine(load_config(sys.argv[1]))
engine.start()
engine.showing(set(sys.argv[2].split(",")))
print("started", flush=True)
engine.wait_ready(900)
print("ready", flush=True)
threading.Event().wait()
"""


# `jamtui lab` with a longer start timeout: on the shared 2-core machine (load 10+) the
# 5,000-allocation lab did not start within the 76 s `jamtui lab` gives it
# and whose `requests` also counts what the lab counts by path: `/api/routes` per Fabio
# (HAProxy's checks of every Fabio are most of a Fabio's requests, and they vary with the
# load), and Consul's requests by path
LAB = """
import json, sys
import jamtui.cli as cli
from jamtui.sim.lab import Lab
start = Lab.start
Lab.start = lambda self, timeout=15.0: start(self, max(timeout, float(sys.argv[1])))

def console(lab, stop):
    for line in sys.stdin:
        if line.split() == ["requests"]:
            counts = dict(lab.faults.requests)
            counts.update({"fabio /api/routes:" + k: n for k, n in lab.ctx.fabio_routes.items()})
            counts.update({"consul " + k: n for k, n in lab.ctx.consul_requests.items()})
            print(json.dumps(counts), flush=True)

cli._lab_console = console
sys.exit(cli.main(sys.argv[2:]))
"""


class PatientLab(LabProc):
    """`LabProc` (benchmarks/scale.py) whose lab may take `start_timeout` to start."""

    def __init__(self, scale: str | None, start_timeout: float) -> None:
        super().__init__(scale, [sys.executable, "-c", LAB, str(start_timeout)])


def by_backend(counts: dict[str, int]) -> dict[str, int]:
    """`fabio:vs3` (the UI/API port) → `fabio`, `fabio /api/routes:vs3` → `fabio
    /api/routes`, Consul's paths kept apart (`consul GET /v1/...`); the proxies (`…:lb`) are
    traffic, not watching, and are left out."""
    out: dict[str, int] = {}
    for name, n in counts.items():
        if name.endswith(":lb"):
            continue
        key = name if name.startswith("consul ") else name.split(":", 1)[0]
        out[key] = out.get(key, 0) + n
    return out


def window(lab: LabProc, seconds: float) -> dict[str, float]:
    before = by_backend(lab.requests())
    time.sleep(seconds)
    after = by_backend(lab.requests())
    return {k: (after.get(k, 0) - before.get(k, 0)) * 60 / seconds for k in after}


def measure(name: str, scale: str | None, seconds: float, root: str | None,
            view: str, start_timeout: float = 600.0) -> dict[str, dict[str, float]]:
    lab = PatientLab(scale, start_timeout)
    try:
        time.sleep(10)  # the lab settles (allocations start, Fabio tables fill)
        idle = window(lab, seconds)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(lab.env)
        if root:
            env["PYTHONPATH"] = root
        client = subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(lab.config), ",".join(sorted(VIEWS[view]))],
            env=env, cwd=root or None, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        try:
            assert client.stdout is not None
            client.stdout.readline()
            start, t0 = by_backend(lab.requests()), time.monotonic()
            client.stdout.readline()  # every source answered: the first picture is in
            ready, first_s = by_backend(lab.requests()), time.monotonic() - t0
            first = {k: n - start.get(k, 0) for k, n in ready.items() if n > start.get(k, 0)
                     and not k.startswith("consul ")}
            time.sleep(15)  # what the first picture sets off (members, intentions) settles
            busy = window(lab, seconds)
        finally:
            client.terminate()
            client.wait(10)
        fabios = sum(1 for k in lab.requests() if k.startswith("fabio /api/routes:"))
    finally:
        lab.stop()
    caused = {k: busy.get(k, 0) - idle.get(k, 0) for k in sorted(set(busy) | set(idle))}
    paths = {k: round(v, 1) for k, v in caused.items() if k.startswith("consul ") and v}
    caused = {k: v for k, v in caused.items() if not k.startswith("consul ")}
    print(json.dumps({"lab": name, "fabio_instances": fabios, "view": view,
                      "root": root or "this checkout", "first_picture_s": round(first_s, 1),
                      "first_picture_requests": first,
                      "requests_per_min_caused": {k: round(v, 1) for k, v in caused.items()},
                      "consul_paths_per_min": paths,
                      "requests_per_min_lab_alone": {k: round(v, 1) for k, v in idle.items()
                                                     if not k.startswith("consul ")}}),
          flush=True)
    return {"caused": caused, "idle": idle}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labs", default="demo,5000")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--jamtui-root", help="run the client from this checkout (before/after)")
    ap.add_argument("--view", choices=sorted(VIEWS), default="overview")
    ap.add_argument("--start-timeout", type=float, default=600.0,
                    help="seconds the lab may take to start (a loaded machine is slow)")
    args = ap.parse_args()
    rows = []
    for name in args.labs.split(","):
        result = measure(name, LABS[name], args.seconds, args.jamtui_root, args.view,
                         args.start_timeout)
        rows.append((name, result["caused"]))
    backends = sorted({b for _, caused in rows for b in caused})
    print("\n| lab | " + " | ".join(backends) + " |")
    print("|---|" + "---|" * len(backends))
    for name, caused in rows:
        print(f"| {name} | " + " | ".join(f"{caused.get(b, 0):.0f}" for b in backends) + " |")


if __name__ == "__main__":
    main()
