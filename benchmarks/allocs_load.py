"""`:allocs` all rows loaded, alone (#17's figure without the rest of scale.py's table):

    .venv/bin/python benchmarks/allocs_load.py [--scale 100,5000,50] [--runs 3]
                                               [--jamtui-root DIR] [--lab WORKDIR]

One `jamtui lab --scale` (from this checkout), jamtui in tmux (160x48) on it; each run types
`:allocs`, and the clock runs from Enter to the last allocation (by name) on screen after
Ctrl+End, read with `tmux capture-pane` (scale.py's `open_allocs`); Esc goes back between runs.
The TUI's own CPU time over the same span is printed too: on a shared machine the wall time
is mostly waiting for a core. `--jamtui-root` runs jamtui from another checkout (before).
`--lab WORKDIR` uses a lab already running there (its `jamtui.toml` and `env.sh`, e.g. a
shared `/tmp/lab5k`) instead of starting one: it is not stopped afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import FULL, LabProc, Term, cpu_seconds, jamtui_cmd, lab_env, mmm, natural


def open_allocs(term: Term, last: str, cpu: list[float]) -> float:
    """`:allocs` typed once the command bar shows (a loaded machine was slower than the
    typing: the view never opened), then Enter → `last` on screen after Ctrl+End."""
    term.keys(":")
    term.wait(lambda s: ":view (" in s, 20, 0.05, "the command bar")
    term.keys("allocs")
    term.wait(lambda s: any(line.strip(" ▊▎").strip() == "allocs" for line in s.splitlines()),
              20, 0.05, "allocs typed")
    t0, c0 = time.perf_counter(), cpu_seconds(term.pid)
    term.keys("Enter")
    while time.perf_counter() - t0 < 60:
        term.keys("C-End")
        if last in term.screen():
            cpu.append(cpu_seconds(term.pid) - c0)
            return time.perf_counter() - t0
        time.sleep(0.02)
    raise TimeoutError(f":allocs: {last} not on screen in 60 s")


class RunningLab:
    """A lab started by someone else (`--lab`): its config and exports, its Nomad API."""

    def __init__(self, workdir: Path) -> None:
        self.env = lab_env(workdir)
        self.config = workdir / "jamtui.toml"
        if not self.env or not self.config.exists():
            raise SystemExit(f"{workdir}: no env.sh or jamtui.toml (not a lab's workdir)")

    nomad = LabProc.nomad

    def stop(self) -> None:
        pass  # not ours


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="100,5000,50")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jamtui-root", help="run jamtui from this checkout (before/after)")
    ap.add_argument("--lab", help="a running lab's workdir (its jamtui.toml, env.sh): used, "
                    "not started or stopped")
    args = ap.parse_args()
    lab = RunningLab(Path(args.lab)) if args.lab else LabProc(args.scale)
    times: list[float] = []
    cpu: list[float] = []  # the TUI's own CPU time meanwhile
    idle: list[float] = []  # its CPU seconds per second on the overview just before
    try:
        time.sleep(3)
        cmd, env = jamtui_cmd(args.jamtui_root, lab.config)
        term = Term(cmd, {**lab.env, **env})
        try:
            term.wait(lambda s: bool(FULL[3].search(s)), 90, 0.05, "an allocation row")
            time.sleep(5)  # first reads done
            allocs = lab.nomad("GET", "/v1/allocations")
            last = max((a["Name"] for a in allocs), key=natural)
            for _ in range(args.runs):
                c0 = cpu_seconds(term.pid)
                time.sleep(3)
                idle.append((cpu_seconds(term.pid) - c0) / 3)
                try:
                    times.append(open_allocs(term, last, cpu))
                except TimeoutError:
                    print(term.screen(), file=sys.stderr)
                    raise
                time.sleep(2)
                term.keys("Escape")
                time.sleep(2)
        finally:
            term.close()
    finally:
        lab.stop()
    print(f"jamtui from {args.jamtui_root or 'this checkout'}, lab --scale {args.scale}: "
          f":allocs all rows loaded {mmm(times)}, the TUI's CPU meanwhile {mmm(cpu)} "
          f"(idle before: {mmm(idle)} of CPU a second) "
          f"(min/median/max of {len(times)}; {'lab ' + args.lab + '; ' if args.lab else ''}"
          f"load average {os.getloadavg()[0]:.2f}, shared machine)")


if __name__ == "__main__":
    main()
