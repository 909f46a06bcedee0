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
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import (
    LabProc,
    Term,
    full_frame,
    jamtui_cmd,
    lab_env,
    nomad_stops,
    open_allocs,
    pct,
    running_rows,
)


class RunningLab(LabProc):
    """A lab started elsewhere: its APIs from `env.sh`; never stopped from here."""

    def __init__(self, workdir: Path, config: Path | None = None) -> None:
        self.workdir = workdir
        self.env = lab_env(workdir)
        self.config = config or workdir / "jamtui.toml"

    def stop(self) -> None:
        pass


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
