"""Nomad stop → row on screen and `:allocs` load, against a lab that is already running.

    .venv/bin/python benchmarks/nomad_stream.py --lab /tmp/lab5k [--config FILE]
                                                [--samples 15] [--allocs 1] [--runs 1]
                                                [--jamtui-root DIR]

`benchmarks/scale.py` builds its own labs; this drives the TUI (in tmux, read with
capture-pane, with scale.py's own `Term`, `nomad_stops` and `open_allocs`) against a lab
someone else runs (`jamtui lab --workdir DIR`: its `env.sh` gives the APIs, `--config` the
jamtui.toml, e.g. `nofabio.toml` to leave Fabio's reads out). `--jamtui-root` runs jamtui from
another checkout, for before/after figures in the same minute. The stops are made on the
overview's allocations pane, paged down to running ones (see `running_rows`).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import (
    ALLOC_ROW,
    LabProc,
    Term,
    full_frame,
    jamtui_cmd,
    nomad_stops,
    open_allocs,
    pct,
)


class RunningLab(LabProc):
    """A lab started elsewhere: its APIs from `env.sh`; never stopped from here."""

    def __init__(self, workdir: Path, config: Path | None = None) -> None:
        self.workdir = workdir
        self.env = {}
        for line in (workdir / "env.sh").read_text().splitlines():
            if line.startswith("export "):
                k, _, v = line[7:].partition("=")
                self.env[k] = shlex.split(v)[0] if v else ""
        self.config = config or workdir / "jamtui.toml"

    def stop(self) -> None:
        pass


NAMED_ROW = re.compile(r"\b[0-9a-f]{8}\s+(\S+\[\d+\])\s+[●✓○✗]")


def running_rows(term: Term, want: int = 15, by_id: bool = False, panes_before: int = 3
                 ) -> None:
    """A shared lab's first allocations by name are stopped ones after a few runs: focus the
    overview's allocations pane and page down, one key at a time (keys typed ahead of a busy
    TUI page on later), until `want` running ones are on screen. The sort stays by NAME, as
    in scale.py: a stopped allocation's replacement (same name) goes in beside it. `by_id`
    sorts by ID first (a replacement then goes anywhere, mostly off screen). Rows of system
    jobs (one name for all their allocations, e.g. fabio.fabio[0]) are paged past."""
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
        term.wait(lambda s, before=screen: s != before, 30, 0.05, "the next page")
        time.sleep(0.3)
    raise TimeoutError("no running allocation on screen")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lab", default="/tmp/lab5k", help="the running lab's --workdir")
    ap.add_argument("--config", help="jamtui.toml to use (default: the lab's)")
    ap.add_argument("--samples", type=int, default=15)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--settle", type=float, default=5.0, help="seconds after the full frame")
    ap.add_argument("--by-id", action="store_true", help="stop on the pane sorted by ID")
    ap.add_argument("--allocs", type=int, default=1, help=":allocs loads per run (0: none)")
    ap.add_argument("--jamtui-root", help="run jamtui from this checkout (before/after)")
    args = ap.parse_args()
    lab = RunningLab(Path(args.lab), Path(args.config) if args.config else None)
    stops: list[float] = []
    loads: list[float] = []
    for _ in range(args.runs):
        cmd, env = jamtui_cmd(args.jamtui_root, lab.config)
        term = Term(cmd, {**lab.env, **env})
        try:
            term.wait(full_frame, 120, 0.05, "a full first frame")
            time.sleep(args.settle)
            if args.samples:
                running_rows(term, args.samples, args.by_id)
                time.sleep(1)
                nomad_stops(lab, term, args.samples, stops)
            for n in range(args.allocs):
                if n:  # back to the overview, settled, before the next
                    term.keys("Escape")
                    term.wait(lambda s: "Hypervisors [" in s, 30, 0.05, "the overview")
                    time.sleep(3)
                open_allocs(lab, term, loads)
        finally:
            term.close()
    ms = [f"{s * 1000:.0f}" for s in stops]
    print(f"jamtui from {args.jamtui_root or Path(__file__).resolve().parent.parent}; "
          f"load average {os.getloadavg()[0]:.2f}")
    if stops:
        print(f"Nomad stop → screen: p50 {pct(stops, 50) * 1000:.0f} / p95 "
              f"{pct(stops, 95) * 1000:.0f} ms (n={len(stops)}): {' '.join(ms)}")
    if loads:
        print(f":allocs loaded: median {statistics.median(loads):.2f} s: "
              + " ".join(f"{v:.2f}" for v in loads))


if __name__ == "__main__":
    main()
