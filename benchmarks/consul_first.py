"""Consul's first picture (issue #17): time from engine start and requests, counted at the lab.

    .venv/bin/python benchmarks/consul_first.py [--labs demo,5000] [--runs 3]
                                                [--jamtui-root DIR ...] [--status]

For each lab (`jamtui lab`, `jamtui lab --scale 100,5000,50`, started as
`benchmarks/requests_per_min.py` starts them, with a patient start timeout) a jamtui engine
(what the cockpit runs, from `--jamtui-root` when given, e.g. `git worktree add /tmp/main main`
for the "before" figures) is started `--runs` times, each in a fresh process. Printed per
run: seconds from `Engine.start` to the first Consul instance in the store and to Consul's
`ready` (its first complete picture), the services and instances then in the store, and
Consul's requests in that time by path (from the lab's `requests` counts: the services'
`/v1/health/service/:name` reads summed, with how many names were read more than once).
With `--status`, `jamtui status --config ...` is also timed (exit code and wall time).
Medians at the end; the machine is shared, so counts are the robust figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from requests_per_min import PatientLab  # benchmarks/ is not a package
from scale import LABS

CLIENT = """
import json, sys, threading, time
from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.model import Kind
engine = Engine(load_config(sys.argv[1]))
src = engine.sources["consul"]
first = []
def seen(changes):
    if not first and any(c.kind is Kind.INSTANCE for c in changes):
        first.append(time.monotonic())
engine.store.subscribe(seen)
print("starting", flush=True)
sys.stdin.readline()
t0 = time.monotonic()
engine.start()
ok = src.ready.wait(600)
t1 = time.monotonic()
status = engine.store.backend("consul")
print(json.dumps({"ready_s": round(t1 - t0, 2), "answered": ok,
                  "first_row_s": round(first[0] - t0, 2) if first else None,
                  "health": status.health.value, "error": status.last_error,
                  "services": engine.store.count(Kind.SERVICE),
                  "instances": engine.store.count(Kind.INSTANCE)}), flush=True)
sys.stdin.readline()
"""


def consul_paths(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k[len("consul "):]: n - before.get(k, 0) for k, n in after.items()
            if k.startswith("consul ") and n > before.get(k, 0)}


def one_run(lab: PatientLab, root: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(lab.env)
    if root:
        env["PYTHONPATH"] = root
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(lab.config)], env=env,
                              cwd=root or None, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    assert client.stdin is not None and client.stdout is not None
    try:
        client.stdout.readline()  # imported and built: the clock starts at Engine.start
        before = lab.requests()
        client.stdin.write("go\n")
        client.stdin.flush()
        result = json.loads(client.stdout.readline())
        paths = consul_paths(before, lab.requests())
        client.stdin.write("bye\n")
        client.stdin.flush()
    finally:
        client.terminate()
        client.wait(10)
    services = {k: n for k, n in paths.items() if k.startswith("GET /v1/health/service/")}
    result["consul_requests"] = sum(paths.values())
    result["service_reads"] = sum(services.values())
    result["services_read_twice"] = sum(1 for n in services.values() if n > 1)
    result["other_paths"] = {k: n for k, n in sorted(paths.items()) if k not in services}
    return result


def status_run(lab: PatientLab, root: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(lab.env)
    if root:
        env["PYTHONPATH"] = root
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "jamtui", "status", "--config",
                           str(lab.config)], env=env, cwd=root or None, capture_output=True,
                          text=True)
    consul_line = next((ln for ln in proc.stdout.splitlines() if "consul" in ln.lower()), "")
    return {"status_exit": proc.returncode, "status_s": round(time.monotonic() - t0, 2),
            "consul_line": consul_line.strip()[:120]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labs", default="demo,5000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jamtui-root", action="append",
                    help="run the client from this checkout (before/after); given more than "
                         "once (`.` is this one), the runs alternate on the same lab")
    ap.add_argument("--status", action="store_true", help="time `jamtui status` too")
    ap.add_argument("--start-timeout", type=float, default=600.0)
    args = ap.parse_args()
    roots = [None if r in (None, ".") else r for r in (args.jamtui_root or [None])]
    for name in args.labs.split(","):
        lab = PatientLab(LABS[name], args.start_timeout)
        runs: dict[str | None, list[dict[str, object]]] = {r: [] for r in roots}
        try:
            time.sleep(10)  # the lab settles (allocations start, services register)
            for _ in range(args.runs):
                for root in roots:
                    run = one_run(lab, root)
                    if args.status:
                        run.update(status_run(lab, root))
                    print(json.dumps({"lab": name, "root": root or "this checkout", **run}),
                          flush=True)
                    runs[root].append(run)
        finally:
            lab.stop()
        for root, done in runs.items():
            summary: dict[str, object] = {"lab": name, "root": root or "this checkout",
                                          "runs": len(done)}
            for key in ("ready_s", "first_row_s", "consul_requests", "service_reads",
                        "status_s"):
                values = [r[key] for r in done if isinstance(r.get(key), (int, float))]
                if values:
                    summary[f"median_{key}"] = statistics.median(values)  # type: ignore
            if args.status:
                summary["status_exits"] = [r.get("status_exit") for r in done]
            print("summary " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
