"""What the user sees, at three lab sizes: issue #17's table, every clock ending at the terminal.

    .venv/bin/python benchmarks/scale.py [--labs demo,500,5000] [--runs 3] [--samples 15]
                                         [--jamtui-root DIR]

For each lab (`jamtui lab`, `jamtui lab --scale 10,500,20`, `jamtui lab --scale 100,5000,50`,
started from this checkout as a subprocess) jamtui runs in tmux (160x48) against it with
`--config`, and the screen is read with `tmux capture-pane`:

- first full frame: spawn → a screen with a hypervisor, a VM, a routed service and an
  allocation (jamtui's bytecode compiled first, as an installed jamtui's is: `bytecode`);
  paired in the same run with a bare Textual app's first frame (`bare_app.py`);
- Nomad stop → row on screen: an allocation visible on screen is stopped through Nomad's HTTP
  API; the clock ends when its row no longer shows `●` (p50/p95 over --samples);
- Proxmox VM stop/start outside jamtui → screen: the bastion VM, through Proxmox's HTTP API,
  shown in `:vms` filtered to it (on the overview in the first runs of the before figures);
- `:allocs` all rows loaded: Enter on `:allocs` → the last allocation (by name) on screen
  after Ctrl+End;
- TUI idle CPU on the overview and on `:allocs`, and the lab's CPU meanwhile (from
  /proc/PID/stat), with the requests the lab's servers but its Fabios served per minute
  meanwhile (the lab's HAProxy checks every Fabio each second: ~5,700 a minute at 100). The
  overview is measured twice: 5-20 s after the first frame (the start-up's tail, and in a
  young lab every AGE ticking each second), and settled (`SETTLE_O`, `OLD_LAB`). The
  `:allocs` figure is taken twice: 3 s after opening it (right after the benchmark's own
  stops and the view's load: their aftermath included, as before), and once Nomad's
  allocation index and Consul's checks index have been still for 5 s and the first page's
  stats have been read (`quiet_lab`), and settled: reopened after the VM actions once the
  stops' replacements are past their first minute (`OLD_LAB` after the last stop: from
  then on their AGE moves once a minute), its page's stats have been read once and the
  indexes have been still again (`quiet_lab`: the VM actions' aftermath over). Both are
  taken again when an index moved during the window (`quiet_idle`);
- `status` / `snapshot --json` wall time and exit code, and the slowest backend's answer in
  the same runs (each backend's heaviest read with plain requests: `one_shot.py`).

`--jamtui-root DIR` runs jamtui from another checkout (e.g. `git worktree add /tmp/main main`)
against the same lab from this checkout, for before/after figures. The machine is shared:
figures are min/median/max (or p50/p95 over all samples of all runs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LABS = {"demo": None, "500": "10,500,20", "5000": "100,5000,50"}
CLK = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def mmm(values: list[float], unit: str = "s") -> str:
    if not values:
        return "-"
    if unit == "ms":
        values = [v * 1000 for v in values]
        return "/".join(f"{v:.0f}" for v in (min(values), statistics.median(values),
                                               max(values))) + " ms"
    if unit == "%":
        return "/".join(f"{v:.1f}" for v in (min(values), statistics.median(values),
                                               max(values))) + " %"
    return "/".join(f"{v:.2f}" for v in (min(values), statistics.median(values),
                                           max(values))) + " s"


def lab_env(workdir: Path) -> dict[str, str]:
    """The exports of a lab's `env.sh` (its APIs, tokens, CA), none if it has none."""
    env: dict[str, str] = {}
    script = workdir / "env.sh"
    if script.exists():
        for text in script.read_text().splitlines():
            if text.startswith("export "):
                key, _, value = text[7:].partition("=")
                env[key] = shlex.split(value)[0] if value else ""
    return env


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime


class LabProc:
    """`jamtui lab` from this checkout, as a subprocess we can ask for request counts."""

    def __init__(self, scale: str | None, command: list[str] | None = None) -> None:
        """`command` runs jamtui in place of `python -m jamtui` (its arguments follow)."""
        self.workdir = Path(tempfile.mkdtemp(prefix="jamtui-scale-bench-"))
        args = [*(command or [sys.executable, "-m", "jamtui"]), "lab", "--workdir",
                str(self.workdir)]
        if scale:
            args += ["--scale", scale]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "Ctrl-C stops the lab" in line:
                break
        else:
            raise RuntimeError("the lab did not start")
        self.started = time.monotonic()  # its allocations are as old as the lab at most
        self.env = lab_env(self.workdir)
        self.config = self.workdir / "jamtui.toml"

    def requests(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("requests\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if line.startswith("{"):
                return dict(json.loads(line))

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.send_signal(2)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    # -- the backends' own APIs, as another operator would use them ---------------------------

    def nomad(self, method: str, path: str) -> Any:
        req = urllib.request.Request(self.env["NOMAD_ADDR"] + path, method=method,
                                     headers={"X-Nomad-Token": self.env["NOMAD_TOKEN"]})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def proxmox(self, method: str, path: str) -> Any:
        ctx = ssl.create_default_context(cafile=self.env["PROXMOX_VE_CACERT"])
        base = self.env["PROXMOX_VE_ENDPOINT"].rstrip("/")
        if not base.endswith("/api2/json"):
            base += "/api2/json"
        req = urllib.request.Request(
            base + path, method=method, data=b"" if method == "POST" else None,
            headers={"Authorization": f"PVEAPIToken={self.env['PROXMOX_VE_API_TOKEN']}"})
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            return json.loads(resp.read())["data"]


class Term:
    """One command in its own tmux server, 160x48."""

    def __init__(self, command: str, env: dict[str, str]) -> None:
        self.sock = f"jamtui-scale-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self.t0 = time.perf_counter()
        subprocess.run(["tmux", "-L", self.sock, "new-session", "-d", "-s", "b", "-x", "160",
                        "-y", "48", f"exec env {exports} TERM=xterm-256color {command}"],
                       check=True, env={**os.environ, "TERM": "xterm"})
        self.pid = int(subprocess.run(
            ["tmux", "-L", self.sock, "display", "-p", "-t", "b", "#{pane_pid}"],
            capture_output=True, text=True).stdout.strip() or 0)

    def screen(self) -> str:
        return subprocess.run(["tmux", "-L", self.sock, "capture-pane", "-p", "-t", "b"],
                              capture_output=True, text=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.sock, "send-keys", "-t", "b", *keys], check=True)

    def wait(self, ok: Callable[[str], bool], timeout: float, poll: float = 0.005,
             what: str = "") -> float:
        """Seconds from now until `ok(screen)`."""
        t0 = time.perf_counter()
        while True:
            screen = self.screen()
            if ok(screen):
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"{what} not on screen in {timeout:.0f} s:\n{screen}")
            time.sleep(poll)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True)


# a hypervisor, a VM, a routed service and an allocation, each as a whole row
FULL = (re.compile(r"pve\d+\s+● online"),
        re.compile(r"\b\d{3,4}\s+(?:VM\s+|CT\s+)?\S+\s+[●○] (running|stopped)"),  # TYPE (#16)
        re.compile(r"urlprefix-"),
        # NAMESPACE shows between NAME and STATUS where Nomad has more than one (the big labs)
        re.compile(r"\b[0-9a-f]{8}\s+\S+\[\d+\]\s+(?:\S+\s+)?[●✓]"))


def full_frame(screen: str) -> bool:
    return all(m.search(screen) for m in FULL)


def jamtui_cmd(root: str | None, config: Path, *args: str) -> tuple[str, dict[str, str]]:
    env = {"PYTHONPATH": root} if root else {}
    # -P: the working directory (tmux's, the benchmark's: often this checkout) does not go
    # before PYTHONPATH, or `--jamtui-root` would run this checkout's jamtui after all
    return f"{shlex.quote(sys.executable)} -P -m jamtui --config {config} {' '.join(args)}", env


def bytecode(root: str | None) -> None:
    """Compile the checkout's jamtui to .pyc first, as an installed jamtui is (pip compiles at
    install; a checkout writes them on its first run). Without this, an environment with
    PYTHONDONTWRITEBYTECODE=1 (this machine's) made every run compile jamtui's ~100 modules
    from source on the cockpit's main thread, 0.5-0.9 s of the first frame at 5k, while the
    bare app's Textual came compiled from site-packages."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(root or ROOT) / "jamtui")],
                   check=True, stdout=subprocess.DEVNULL)


def first_frames(lab: LabProc, root: str | None, runs: int, out: dict[str, list[float]]) -> None:
    bytecode(root)
    bare_cmd = f"{shlex.quote(sys.executable)} {HERE / 'bare_app.py'}"
    for _ in range(runs):
        term = Term(bare_cmd, {})
        try:
            term.wait(lambda s: "BARE-TEXTUAL-READY" in s, 30, 0.01, "bare app")
            out["bare"].append(time.perf_counter() - term.t0)
        finally:
            term.close()
        cmd, env = jamtui_cmd(root, lab.config)
        term = Term(cmd, {**lab.env, **env})
        try:
            term.wait(full_frame, 90, 0.01, "a full first frame")
            out["first"].append(time.perf_counter() - term.t0)
            out["over"].append(out["first"][-1] - out["bare"][-1])
        except TimeoutError as exc:
            out["failed"].append(1)
            print(f"first frame: {str(exc)[:3000]}", file=sys.stderr, flush=True)
        finally:
            term.close()


# NAMESPACE shows between NAME and STATUS where Nomad has more than one (the big labs)
ALLOC_ROW = re.compile(r"\b([0-9a-f]{8})\s+\S+\s+(?:\S+\s+)?● running")
NAMED_ROW = re.compile(r"\b[0-9a-f]{8}\s+(\S+\[\d+\])\s+(?:\S+\s+)?[●✓○✗]")


def page(screen: str) -> list[str]:
    """The allocations on screen, by id (other panes tick: the screen alone always moves)."""
    return re.findall(r"\b([0-9a-f]{8})\s+\S+\[\d+\]", screen)


def running_rows(term: Term, want: int = 15, by_id: bool = False, panes_before: int = 3
                 ) -> None:
    """A shared lab's first allocations by name are stopped ones after a few runs: focus the
    overview's allocations pane and page down, one key at a time (keys typed ahead of a busy
    TUI page on later), until `want` running ones are on screen (or the last page, with
    some). The sort stays by NAME: a stopped allocation's replacement (same name) goes in
    beside it. `by_id` sorts by ID first (a replacement then goes anywhere, mostly off
    screen). Rows of system jobs (one name for all their allocations, e.g. fabio.fabio[0])
    are paged past."""
    for _ in range(panes_before):
        term.keys("Tab")
        time.sleep(0.3)
    term.wait(lambda s: " x stop " in s, 30, 0.05, "the allocations pane focused")
    if by_id:
        term.keys("<")
        term.wait(lambda s: re.search(r"ID ▲\s+NAME\s+STATUS", s) is not None, 30, 0.05,
                  "sorted by ID")
        time.sleep(1)
    for _ in range(80):
        screen = term.screen()
        names = NAMED_ROW.findall(screen)
        # a system job's allocations share one name: a replacement goes anywhere among them
        # (by id) and can push the stopped row off the pane; a service's go in beside it
        if len(ALLOC_ROW.findall(screen)) >= want and len(set(names)) == len(names):
            return
        term.keys("PageDown")
        try:
            shown = page(screen)
            term.wait(lambda s, before=shown: page(s) != before, 3, 0.05, "the next page")
        except TimeoutError:  # the last page (a small lab): what it has must do
            if ALLOC_ROW.search(screen):
                return
            raise
        time.sleep(0.3)
    raise TimeoutError("no running allocation on screen")



def nomad_stops(lab: LabProc, term: Term, samples: int, out: list[float]) -> None:
    stopped: set[str] = set()
    for _ in range(samples):
        visible = [m for m in ALLOC_ROW.findall(term.screen()) if m not in stopped]
        if not visible:
            break
        short = visible[0]
        stopped.add(short)
        full = lab.nomad("GET", f"/v1/allocations?prefix={short}")[0]["ID"]

        def changed(screen: str, short: str = short) -> bool:
            lines = [ln for ln in screen.splitlines() if short in ln]
            return bool(lines) and "●" not in lines[0].split(short, 1)[1][:40]

        t0 = time.perf_counter()
        lab.nomad("POST", f"/v1/allocation/{full}/stop")
        term.wait(changed, 30, what=f"allocation {short} stopped")
        out.append(time.perf_counter() - t0)
        time.sleep(1.0)


def vm_glyph(screen: str, name: str) -> str:
    for line in screen.splitlines():
        m = re.search(rf"\b1\d*\s+(?:VM\s+|CT\s+)?{name[:4]}\S*\s+([●○])", line)
        if m:
            return m.group(1)
    return ""


def vm_power(lab: LabProc, term: Term, pairs: int, out: list[float]) -> None:
    node, vmid = "pve1", 100  # the bastion: nothing else in the lab moves when it stops
    for _ in range(pairs):
        for action, glyph in (("stop", "○"), ("start", "●")):
            t0 = time.perf_counter()
            lab.proxmox("POST", f"/nodes/{node}/qemu/{vmid}/status/{action}")
            term.wait(lambda s, g=glyph: vm_glyph(s, "bastion") == g, 60, 0.01,
                      f"bastion {action}")
            out.append(time.perf_counter() - t0)
            time.sleep(1.0)


def idle(lab: LabProc, term: Term, seconds: float) -> tuple[float, float, float]:
    """(TUI CPU %, lab CPU %, requests served per minute) over `seconds`."""
    r0, c0, l0, t0 = lab.requests(), cpu_seconds(term.pid), lab.cpu(), time.perf_counter()
    time.sleep(seconds)
    r1, c1, l1, t1 = lab.requests(), cpu_seconds(term.pid), lab.cpu(), time.perf_counter()
    dt = t1 - t0
    # Fabio's instances are left out: the lab's HAProxy checks each one's `/health` every
    # second (~5,700 a minute at 100 instances, noisier than what the TUI asks of them: one
    # table an interval, a TCP connect per instance that is not a request)
    served = sum(n - r0.get(k, 0) for k, n in r1.items() if not k.startswith("fabio"))
    return 100 * (c1 - c0) / dt, 100 * (l1 - l0) / dt, served * 60 / dt


# the overview idle, settled: the start-up's tail over (the VMs' configs, Consul's check watch
# and Fabio's other tables read after the first frame) and every allocation past its first
# minute: from then on an AGE moves once a minute (`columns.age_column`); in a lab's first
# minute every AGE on screen changes each second, and each second's repaint is a frame
SETTLE_O = 30.0
OLD_LAB = 75.0

# `:allocs` idle, quiet: from its opening, the time its first page's stats take (40 rows, 8 a
# tick each 3 s, `nomad_views.STATS_PER_TICK`: each row's CPU and MEM drawn the first time)
SETTLE_A = 18.0
QUIET = 5.0  # seconds Nomad's and Consul's indexes must stay still (the stops' aftermath over)


def lab_indexes(lab: LabProc) -> tuple[int, int]:
    """Nomad's allocation index and Consul's checks index (the X-Consul-Index / X-Nomad-Index
    of small answers: an empty allocation list, the critical checks), which move with every
    allocation placed or stopped and every instance registered, gone or changing health."""
    req = urllib.request.Request(lab.env["NOMAD_ADDR"] + "/v1/allocations?prefix=ffffffffff",
                                 headers={"X-Nomad-Token": lab.env["NOMAD_TOKEN"]})
    with urllib.request.urlopen(req, timeout=10) as resp:
        nomad = int(resp.headers.get("X-Nomad-Index") or 0)
    req = urllib.request.Request(lab.env["CONSUL_HTTP_ADDR"] + "/v1/health/state/critical",
                                 headers={"X-Consul-Token": lab.env["CONSUL_HTTP_TOKEN"]})
    with urllib.request.urlopen(req, timeout=10) as resp:
        consul = int(resp.headers.get("X-Consul-Index") or 0)
    return nomad, consul


def quiet_lab(lab: LabProc, not_before: float, timeout: float = 60) -> bool:
    """Wait until `not_before` (monotonic) and until Nomad's allocation index and Consul's
    checks index have not moved for QUIET seconds (False: they still moved after `timeout`).
    The `:allocs` figure right after the benchmark's own stops measured their aftermath
    (replacements placed and started, their instances registered and turning healthy,
    Fabio's routes following, the first page's stats drawn the first time), not an idle
    cockpit; this one follows it."""
    deadline = time.monotonic() + timeout
    last, since = lab_indexes(lab), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = lab_indexes(lab)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= QUIET and time.monotonic() >= not_before:
            return True
    return False


QUIET_TRIES = 3


def quiet_idle(lab: LabProc, term: Term, not_before: float, seconds: float,
               what: str) -> float:
    """The TUI's CPU % over `seconds` once the lab is quiet (`quiet_lab`) and while it stays
    so: a window in which Nomad's or Consul's index moved (a replacement's check turning
    healthy some seconds later) measured a change being drawn, not the idle cockpit the row
    names; it is taken again, at most QUIET_TRIES times (the last is kept, said on stderr)."""
    tui = 0.0
    for _ in range(QUIET_TRIES):
        if not quiet_lab(lab, not_before):
            print(f"{what}: the lab's indexes still moved after 60 s", file=sys.stderr,
                  flush=True)
        before = lab_indexes(lab)
        tui, _, _ = idle(lab, term, seconds)
        if lab_indexes(lab) == before:
            return tui
        print(f"{what}: the lab's indexes moved during the window; taken again",
              file=sys.stderr, flush=True)
    return tui


COMMAND_BAR = ":view ("  # the `:` bar's placeholder, on screen once it is open


def view(term: Term, name: str, enter: bool = True) -> None:
    """`:name`: each key once the screen is ready for it (a fixed sleep typed into a bar that
    a loaded 5k cockpit had not opened yet, and the keys went to the table)."""
    term.keys(":")
    term.wait(lambda s: COMMAND_BAR in s, 30, 0.02, "the command bar")
    term.keys(name)
    term.wait(lambda s: COMMAND_BAR not in s and name in s, 30, 0.02,
              f"{name} in the command bar")
    if enter:
        term.keys("Enter")


def open_allocs(lab: LabProc, term: Term, out: list[float]) -> None:
    allocs = lab.nomad("GET", "/v1/allocations")
    last = max((a["Name"] for a in allocs), key=natural)
    view(term, "allocs", enter=False)
    t0 = time.perf_counter()
    term.keys("Enter")
    deadline = t0 + 60
    while time.perf_counter() < deadline:
        term.keys("C-End")
        if last in term.screen():
            out.append(time.perf_counter() - t0)
            return
        time.sleep(0.02)
    raise TimeoutError(f":allocs: {last} not on screen in 60 s")


def natural(text: str) -> tuple[Any, ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p)
                 for p in re.split(r"(\d+)", text))


def headless(lab: LabProc, root: str | None, runs: int, out: dict[str, list[float]],
             codes: dict[str, set[int]]) -> None:
    """Each run: every backend's heaviest answer timed with plain requests (`one_shot.py`:
    the goal is ≤ 0.5 s over the slowest), then `status` and `snapshot --json`."""
    from one_shot import answers, snapshot_reads  # benchmarks/ is on sys.path (this dir)

    from jamtui.config import load_config

    env = {**os.environ, **lab.env}
    if root:
        env["PYTHONPATH"] = root
    else:
        env.pop("PYTHONPATH", None)
    cfg = load_config(lab.config)
    for _ in range(runs):
        out["slowest"].append(max(answers(cfg).values()))
        # the lab serves every backend from one process: all of the snapshot's reads at once
        # (as it must make them) take longer than the slowest chain alone
        out["reads"].append(snapshot_reads(cfg))
        for name, args in (("status", ["status"]), ("snapshot", ["snapshot", "--json"])):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "jamtui", "--config", str(lab.config),
                                   *args], capture_output=True, env=env, cwd="/tmp")
            out[name].append(time.perf_counter() - t0)
            codes[name].add(proc.returncode)


def bench_lab(name: str, root: str | None, runs: int, samples: int) -> dict[str, str]:
    lab = LabProc(LABS[name])
    res: dict[str, list[float]] = {k: [] for k in (
        "bare", "first", "over", "stop", "vm", "allocs", "idle_o", "idle_os", "idle_a",
        "idle_aq", "idle_as", "lab",
        "req",
        "status", "snapshot", "slowest", "reads", "failed")}
    codes: dict[str, set[int]] = {"status": set(), "snapshot": set()}
    try:
        time.sleep(3)
        first_frames(lab, root, runs, res)
        for _ in range(runs):
            cmd, env = jamtui_cmd(root, lab.config)
            term = Term(cmd, {**lab.env, **env})
            try:
                term.wait(full_frame, 90, 0.05, "a full first frame")
                framed = time.monotonic()
                time.sleep(5)  # first reads done, enrichment and routes in
                tui, labcpu, req = idle(lab, term, 15)
                res["idle_o"].append(tui)
                res["lab"].append(labcpu)
                res["req"].append(req)
                time.sleep(max(0.0, max(framed + SETTLE_O, lab.started + OLD_LAB)
                               - time.monotonic()))
                tui, _, _ = idle(lab, term, 15)
                res["idle_os"].append(tui)
                running_rows(term, samples)  # the pane paged to running allocations
                time.sleep(1)
                nomad_stops(lab, term, samples, res["stop"])
                stopped = time.monotonic()
                open_allocs(lab, term, res["allocs"])
                opened = time.monotonic()
                time.sleep(3)
                tui, _, _ = idle(lab, term, 10)
                res["idle_a"].append(tui)  # the stops' and the load's aftermath included
                res["idle_aq"].append(quiet_idle(lab, term, opened + SETTLE_A, 10,
                                                 "`:allocs` quiet"))
                # the bastion's row on screen: `:vms` filtered to it (a big lab has 100 VMs)
                view(term, "vms")
                term.wait(lambda s: "u start" in s, 30, 0.05, ":vms")  # its footer: VM keys
                term.keys("/")
                term.wait(lambda s: "/filter (any column" in s, 30, 0.02, "the filter bar")
                term.keys("bastion", "Enter")
                term.wait(lambda s: vm_glyph(s, "bastion") != "", 30, 0.05, "the bastion row")
                time.sleep(1)
                vm_power(lab, term, 2, res["vm"])
                view(term, "allocs")
                reopened = time.monotonic()
                term.wait(lambda s: len(page(s)) > 1, 30, 0.05, ":allocs again")
                # the VM actions' aftermath over too (the bastion's checks and routes)
                res["idle_as"].append(quiet_idle(
                    lab, term, max(reopened + SETTLE_A, stopped + OLD_LAB), 15,
                    "`:allocs` settled"))
            except TimeoutError as exc:  # said in the table as a failed session, not a crash
                res["failed"].append(1)
                print(f"session: {str(exc)[:3000]}", file=sys.stderr, flush=True)
            finally:
                term.close()
        headless(lab, root, runs, res, codes)
    finally:
        lab.stop()

    def pp(values: list[float]) -> str:
        if not values:
            return "-"
        return (f"p50 {pct(values, 50) * 1000:.0f} / p95 {pct(values, 95) * 1000:.0f} ms "
                f"(n={len(values)})")

    return {
        "first full frame (over bare)": f"{mmm(res['first'])} ({mmm(res['over'])} over)",
        "bare Textual first frame": mmm(res["bare"]),
        "Nomad stop → row on screen": pp(res["stop"]),
        "Proxmox VM stop/start → screen": pp(res["vm"]),
        ":allocs all rows loaded": mmm(res["allocs"]),
        "TUI idle CPU overview 5-20 s after the frame (a lab's first minute: every AGE "
        "ticks each second) / :allocs 3 s after the stops":
            f"{mmm(res['idle_o'], '%')} / {mmm(res['idle_a'], '%')}",
        "TUI idle CPU overview, settled (≥ 30 s after the frame, allocations ≥ 75 s old)":
            mmm(res["idle_os"], "%"),
        "TUI idle CPU :allocs, quiet (Nomad and Consul still, the page's stats read)":
            mmm(res["idle_aq"], "%"),
        "TUI idle CPU :allocs, settled (the stops' replacements ≥ 75 s old)":
            mmm(res["idle_as"], "%"),
        "status / snapshot --json": f"{mmm(res['status'])} / {mmm(res['snapshot'])} "
                                    f"(exit {sorted(codes['status'])}/"
                                    f"{sorted(codes['snapshot'])}; slowest backend answer "
                                    f"{mmm(res['slowest'])}; the snapshot's reads side by "
                                    f"side {mmm(res['reads'])})",
        "lab CPU with one TUI": mmm(res["lab"], "%"),
        "runs that failed (no full frame / a change not shown in time)":
            str(len(res["failed"])),
        "requests at the servers but Fabio's /min (TUI idle)":
            "/".join(f"{v:.0f}" for v in (min(res["req"]), statistics.median(res["req"]),
                                          max(res["req"]))) if res["req"] else "-",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labs", default="demo,500,5000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--samples", type=int, default=15, help="Nomad stops per run")
    ap.add_argument("--jamtui-root", help="run jamtui from this checkout (before/after)")
    args = ap.parse_args()
    labs = args.labs.split(",")
    table: dict[str, dict[str, str]] = {}
    for name in labs:
        print(f"# lab {name} ...", file=sys.stderr, flush=True)
        table[name] = bench_lab(name, args.jamtui_root, args.runs, args.samples)
        print(json.dumps({name: table[name]}, ensure_ascii=False), file=sys.stderr, flush=True)
    rows = list(next(iter(table.values())))
    print(f"jamtui from {args.jamtui_root or ROOT}; min/median/max of {args.runs} runs; "
          f"load average {os.getloadavg()[0]:.2f} (shared machine)")
    print("| figure | " + " | ".join(f"lab {n}" for n in labs) + " |")
    print("|---|" + "---|" * len(labs))
    for row in rows:
        print(f"| {row} | " + " | ".join(table[n][row] for n in labs) + " |")


if __name__ == "__main__":
    main()
