"""`:routes` at 100 Fabios: time to open it and for a stopped job to show `✗ gone`, at the
terminal; and, in process, what the route book costs per change.

    .venv/bin/python benchmarks/routes.py [--labs demo,2000] [--runs 3] [--stops 3]
                                          [--jamtui-root DIR] [--skip-tmux] [--skip-book]

Terminal (as `scale.py` does, whose lab and tmux helpers it uses): for each lab (`jamtui lab`,
`jamtui lab --scale 100,2000,50` (= "2000") or `100,5000,50` (= "5000")) jamtui runs in tmux
(160x48) with `--config`; after its first full frame and 5 s (routes in), `:routes` is typed
and the clock runs from Enter until a host row shows `✓ whole` and the tree its head; then
↓ is pressed 5 times, each clock until the tree shows the next host (the loop's answer);
then a service job whose row is on screen is stopped through Nomad's HTTP API
(`DELETE /v1/job/:id`) and the clock runs until its row shows `✗ gone` (the sources' own
latency included: Consul deregisters the service, every Fabio drops the route).

Book (in process, no lab): a store filled as the 100-Fabio lab's sources fill it (100 Fabios
x 50 services x 36 instances = 180,000 routes), then: opening (the book's first `rows()`), one
allocation stopped, one route dropped by one Fabio, one job stopped (its routes on every
Fabio, its instances and service in one batch): the store write (the book notes in the writer's
thread), the next `rows()`, and the chains traced for it (`RouteBook.evaluated`; a book without
it traces every chain on every `rows()`).

`--jamtui-root DIR` runs jamtui (and imports the book) from another checkout, for before/after
figures (`git worktree add /tmp/main main`). Medians over --runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scale import FULL, LABS, LabProc, Term, jamtui_cmd, view  # noqa: E402

LABS = {**LABS, "2000": "100,2000,50"}
ROW = re.compile(r"^.*?([a-z0-9.-]+\.jamfox\.dev/\S*)\s+(✓ whole|✗ \S+)\s+.*?(\S+)\s+\d+/\d+",
                 re.M)


# scale.py's full frame, with the VM pane's TYPE column (VM/CT) between the id and the name
VM_ROW = re.compile(r"\b\d{3,4}\s+(?:VM|CT)?\s*\S+\s+[●○] (running|stopped)")


def full_frame(screen: str) -> bool:
    return bool(VM_ROW.search(screen)) and all(m.search(screen) for i, m in enumerate(FULL)
                                               if i != 1)


def med(values: list[float]) -> str:
    if not values:
        return "-"
    return (f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f},"
            f" n={len(values)})")


TREE_HEAD = re.compile(r"([a-z0-9.-]+\.jamfox\.dev/\S*)\s+(whole|broken at)")


def tree_host(screen: str) -> str:
    m = TREE_HEAD.search(screen)
    return m.group(1) if m else ""


def routes_open(screen: str) -> bool:
    """A row whole and the tree's head drawn (its hops below may be off screen)."""
    return "✓ whole" in screen and bool(TREE_HEAD.search(screen))


def row_state(screen: str, host: str) -> str:
    """The STATE cell of `host`'s row (the tree's head names the host too, without it)."""
    m = re.search(re.escape(host) + r"\s+(✓ whole|✗ \S+)", screen)
    return m.group(1) if m else ""


def register(lab: LabProc, job: dict[str, Any]) -> None:
    """`POST /v1/jobs` the job as read before it was stopped (`Stop` false again)."""
    body = json.dumps({"Job": {**job, "Stop": False}}).encode()
    req = urllib.request.Request(lab.env["NOMAD_ADDR"] + "/v1/jobs", data=body, method="POST",
                                 headers={"X-Nomad-Token": lab.env["NOMAD_TOKEN"]})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def terminal(name: str, root: str | None, runs: int, stops: int,
             keys: int = 5) -> dict[str, str]:
    lab = LabProc(LABS[name])
    opened: list[float] = []
    gone: list[float] = []
    down: list[float] = []
    failed = 0
    stopped: list[str] = []  # the last one stopped is not stopped again at once
    try:
        time.sleep(3)
        for _ in range(runs):
            cmd, env = jamtui_cmd(root, lab.config)
            term = Term(cmd, {**lab.env, **env})
            try:
                term.wait(full_frame, 120, 0.05, "a full first frame")
                time.sleep(5)  # first reads done, routes in
                view(term, "routes", enter=False)
                t0 = time.perf_counter()
                term.keys("Enter")
                term.wait(routes_open, 120, 0.01, ":routes with a whole chain")
                opened.append(time.perf_counter() - t0)
                time.sleep(2)
                for _ in range(keys):  # the loop's answer while the lab ticks: ↓ → tree
                    shown = tree_host(term.screen())
                    t0 = time.perf_counter()
                    term.keys("Down")
                    term.wait(lambda s, h=shown: tree_host(s) not in ("", h), 60, 0.005,
                              "the next host's tree")
                    down.append(time.perf_counter() - t0)
                    time.sleep(0.5)
                for _ in range(stops):
                    screen = term.screen()
                    rows = [(m.group(1), m.group(3)) for m in ROW.finditer(screen)
                            if m.group(2) == "✓ whole" and m.group(3) not in stopped[-1:]
                            and m.group(3) not in ("fabio", "-")]
                    if not rows:
                        break
                    host, job = rows[0]
                    stopped.append(job)
                    spec = lab.nomad("GET", f"/v1/job/{job}")
                    t0 = time.perf_counter()
                    lab.nomad("DELETE", f"/v1/job/{job}")
                    term.wait(lambda s, h=host: row_state(s, h) == "✗ gone", 120, 0.01,
                              f"{host} gone")
                    gone.append(time.perf_counter() - t0)
                    register(lab, spec)  # back, for the next session's full frame
                    time.sleep(1)
            except TimeoutError as exc:
                failed += 1
                print(f"session: {exc}", file=sys.stderr, flush=True)
            finally:
                term.close()
    finally:
        lab.stop()
    return {"open :routes (Enter → a whole chain and its tree)": med(opened),
            "job stopped → `✗ gone` on :routes": med(gone),
            "↓ on :routes → the next host's tree": med(down),
            "sessions that failed": str(failed)}


# -- the book, in process ------------------------------------------------------------------------


def big_store(fabios: int, hosts: int, per_host: int) -> Any:
    from jamtui.model import (
        VM,
        Allocation,
        CheckInfo,
        HAProxyRow,
        Hypervisor,
        Kind,
        NomadNode,
        Route,
        Service,
        ServiceInstance,
    )
    from jamtui.store import Store

    s = Store()
    with s.batch():
        s.upsert(Kind.HAPROXY, HAProxyRow("www", "FRONTEND", "frontend", "OPEN"))
        s.upsert(Kind.HAPROXY, HAProxyRow("fabio", "BACKEND", "backend", "UP"))
        s.upsert(Kind.HAPROXY, HAProxyRow("fabio", "fabio_vs0", "server", "UP"))
        s.upsert(Kind.HYPERVISOR, Hypervisor("pve1", "online", 0.1, 8, 1, 2))
        for n in range(fabios):
            s.upsert(Kind.NOMAD_NODE, NomadNode(f"n{n}", f"vs{n}", f"10.1.{n}.1", "ready",
                                                "eligible", False))
            s.upsert(Kind.VM, VM(300 + n, f"vs{n}", "pve1", "running", 0.1, 4, 1, 2,
                                 ip=f"10.1.{n}.1"))
        for h in range(hosts):
            name = f"svc{h:03d}"
            s.upsert(Kind.SERVICE, Service(name, (f"urlprefix-{name}.jamfox.dev/",), per_host))
            for i in range(per_host):
                n = (h * per_host + i) % fabios
                alloc = f"{h:04x}{i:04x}-0000-0000-0000-000000000000"
                s.upsert(Kind.INSTANCE, ServiceInstance(
                    f"vs{n}/_nomad-task-{alloc}", name, f"_nomad-task-{alloc}", f"vs{n}",
                    f"10.1.{n}.1", 20000 + h * per_host + i,
                    checks=(CheckInfo("http", "service check", "passing"),), alloc_id=alloc))
                s.upsert(Kind.ALLOCATION, Allocation(alloc, f"{name}.web[{i}]", name, "web",
                                                     f"n{n}", f"vs{n}", "running", "run"))
                dst = f"http://10.1.{n}.1:{20000 + h * per_host + i}/"
                for f in range(fabios):
                    s.upsert(Kind.ROUTE, Route(f"fabio-{f}:9998", name, f"{name}.jamfox.dev",
                                               "/", dst, 1 / per_host))
    return s


def book_figures(fabios: int, hosts: int, per_host: int, runs: int) -> dict[str, str]:
    from jamtui.model import Kind
    from jamtui.route_book import RouteBook

    res: dict[str, list[float]] = {}
    counts: dict[str, set[int | str]] = {}

    def add(key: str, seconds: float, traced: int | str) -> None:
        res.setdefault(key, []).append(seconds)
        counts.setdefault(key, set()).add(traced)

    for _ in range(runs):
        store = big_store(fabios, hosts, per_host)
        book = RouteBook(store)
        t0 = time.perf_counter()
        book.start()
        add("start (note every route)", time.perf_counter() - t0, "-")

        def traced(before: int, book: RouteBook = book) -> int | str:
            evaluated = getattr(book, "evaluated", None)
            return evaluated - before if evaluated is not None else f"all {hosts}"

        def step(key: str, write: Any, book: RouteBook = book) -> None:
            before = getattr(book, "evaluated", 0)
            t0 = time.perf_counter()
            write()
            t1 = time.perf_counter()
            book.rows()
            t2 = time.perf_counter()
            add(f"{key}: store write (note)", t1 - t0, "-")
            add(f"{key}: rows()", t2 - t1, traced(before))

        before = getattr(book, "evaluated", 0)
        t0 = time.perf_counter()
        book.rows()
        add("open: first rows()", time.perf_counter() - t0, traced(before))
        before = getattr(book, "evaluated", 0)
        t0 = time.perf_counter()
        book.rows()
        add("idle: rows() with nothing changed", time.perf_counter() - t0, traced(before))
        alloc = store.items(Kind.ALLOCATION)[0]
        step("one allocation stops", lambda alloc=alloc, store=store: store.upsert(
            Kind.ALLOCATION, dataclasses.replace(alloc, client_status="complete")))
        route = store.items(Kind.ROUTE)[len(store.items(Kind.ROUTE)) // 2]
        step("one Fabio drops one route",
             lambda route=route, store=store: store.remove(Kind.ROUTE, route.id))
        name = "svc001"
        routes = [r.id for r in store.items(Kind.ROUTE) if r.service == name]
        instances = [i.id for i in store.instances_of(name)]

        def stop_job(store: Any = store, routes: list[str] = routes,
                     instances: list[str] = instances) -> None:
            with store.batch():
                for rid in routes:
                    store.remove(Kind.ROUTE, rid)
                for iid in instances:
                    store.remove(Kind.INSTANCE, iid)
                store.remove(Kind.SERVICE, "svc001")

        step("one job stops (its routes on every Fabio)", stop_job)
        book.stop()

    out = {}
    for key, values in res.items():
        shown = ", ".join(str(c) for c in sorted(counts[key], key=str))
        out[key] = (f"{statistics.median(values) * 1000:.1f} ms"
                    + (f" · chains traced {shown}" if shown != "-" else ""))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labs", default="demo,2000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--stops", type=int, default=3, help="jobs stopped per session")
    ap.add_argument("--fabios", default="1,100", help="Fabio counts for the in-process book")
    ap.add_argument("--jamtui-root", help="run jamtui from this checkout (before/after)")
    ap.add_argument("--skip-tmux", action="store_true")
    ap.add_argument("--skip-book", action="store_true")
    args = ap.parse_args()
    if args.jamtui_root:
        sys.path.insert(0, args.jamtui_root)
    import jamtui

    print(f"jamtui from {Path(jamtui.__file__).parent.parent}; medians of {args.runs} runs")
    if not args.skip_book:
        for fabios in (int(f) for f in args.fabios.split(",")):
            print(f"\n# route book, {fabios} Fabio(s) x 50 services x 36 instances "
                  f"({fabios * 50 * 36} routes), in process")
            for key, value in book_figures(fabios, 50, 36, args.runs).items():
                print(f"| {key} | {value} |")
    if not args.skip_tmux:
        for name in args.labs.split(","):
            print(f"\n# lab {name} ({LABS[name] or 'demo'}), at the terminal", flush=True)
            for key, value in terminal(name, args.jamtui_root, args.runs, args.stops).items():
                print(f"| {key} | {value} |", flush=True)


if __name__ == "__main__":
    main()
