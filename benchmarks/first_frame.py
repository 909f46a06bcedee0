"""The cockpit's first full frame, over a bare Textual app's, against a running lab (#17).

    .venv/bin/python benchmarks/first_frame.py time --config /tmp/lab5k/jamtui.toml \
        --runs 6 ROOT [ROOT ...]
    .venv/bin/python benchmarks/first_frame.py threads --config ... ROOT
    .venv/bin/python benchmarks/first_frame.py prof --config ... ROOT OUT.txt

`time`: for each run, for each checkout in turn (interleaved, so a busy moment of the shared
machine hits every checkout alike): a bare Textual app (`bare_app.py`) and then the cockpit
from ROOT, each in its own tmux (160x48), both clocks ending at the terminal (`tmux
capture-pane`, scale.py's `full_frame`). Prints each pair, then per checkout the median, min
and max of "over bare" and the cockpit's CPU at the frame. The lab's `env.sh` next to the
config is exported (its tokens), as `jamtui lab` prints it.

`threads`: per start (`--runs`), the CPU the cockpit's main thread and its other live
threads had used when the frame showed (/proc/PID/task/*/stat: the OS names, so every thread
but the main one is "python"; threads already ended count in the total only).

`prof`: one start under `py-spy record --gil --threads -r 200 -f raw` until the frame (the
process is then killed: py-spy writes what it saw). py-spy comes from the same venv (not a
dependency of the project: `pip install py-spy`).

Diagnostics for one layer (the start-up); the #17 table is `scale.py`'s, against a fresh lab.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scale import CLK, HERE, Term, cpu_seconds, full_frame, lab_env


def cockpit(root: str, config: Path) -> tuple[str, dict[str, str]]:
    # -P: the working directory does not go before PYTHONPATH
    return (f"{shlex.quote(sys.executable)} -P -m jamtui --config {config}",
            {"PYTHONPATH": root})


def compile_root(root: str) -> None:
    subprocess.run([sys.executable, "-m", "compileall", "-q", f"{root}/jamtui"], check=True,
                   stdout=subprocess.DEVNULL)


def bare() -> float:
    term = Term(f"{shlex.quote(sys.executable)} {HERE / 'bare_app.py'}", {})
    try:
        term.wait(lambda s: "BARE-TEXTUAL-READY" in s, 30, 0.01, "bare app")
        return time.perf_counter() - term.t0
    finally:
        term.close()


def threads_of(pid: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK
        key = name if task.name != str(pid) else "MAIN"
        out[key] = out.get(key, 0.0) + cpu
    return out


def start(root: str, config: Path, threads: bool = False) -> tuple[float, float, dict]:
    command, env = cockpit(root, config)
    term = Term(command, {**lab_env(config.parent), **env})
    try:
        term.wait(full_frame, 90, 0.01, "a full first frame")
        first = time.perf_counter() - term.t0
        cpu = cpu_seconds(term.pid)
        per = threads_of(term.pid) if threads else {}
        return first, cpu, per
    finally:
        term.close()


def timing(roots: list[str], config: Path, runs: int) -> None:
    for root in roots:
        compile_root(root)
    res: dict[str, list[tuple[float, float]]] = {r: [] for r in roots}
    for _ in range(runs):
        for root in roots:
            b = bare()
            first, cpu, _ = start(root, config)
            res[root].append((first - b, cpu))
            print(f"{root}: first {first:.2f} bare {b:.2f} over {first - b:.2f} "
                  f"cpu {cpu:.2f}", flush=True)
            time.sleep(1)
    print(f"load {os.getloadavg()[0]:.2f}")
    for root, values in res.items():
        over = [v[0] for v in values]
        print(f"{root}: over bare median {statistics.median(over):.2f} "
              f"(min {min(over):.2f} max {max(over):.2f}), cpu median "
              f"{statistics.median(v[1] for v in values):.2f}; all "
              f"{[round(v, 2) for v in over]}")


def children(pid: int) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(proc.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def prof(root: str, config: Path, out: str) -> None:
    compile_root(root)
    command, env = cockpit(root, config)
    spy = Path(sys.executable).parent / "py-spy"
    term = Term(f"{spy} record --gil --threads -r 200 -f raw -o {out} -- {command}",
                {**lab_env(config.parent), **env})
    try:
        term.wait(full_frame, 90, 0.01, "a full first frame")
        print(f"frame at {time.perf_counter() - term.t0:.2f} s", flush=True)
        for kid in children(term.pid):
            os.kill(kid, signal.SIGKILL)
        for _ in range(100):
            time.sleep(0.2)
            if Path(out).exists():
                time.sleep(0.5)
                break
    finally:
        term.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("time", "threads", "prof"))
    parser.add_argument("--config", type=Path, default=Path("/tmp/lab5k/jamtui.toml"))
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("args", nargs="+")
    args = parser.parse_args()
    if args.mode == "time":
        timing([str(Path(r).resolve()) for r in args.args], args.config, args.runs)
    elif args.mode == "threads":
        root = str(Path(args.args[0]).resolve())
        compile_root(root)
        for _ in range(args.runs):
            first, cpu, per = start(root, args.config, threads=True)
            top = sorted(per.items(), key=lambda kv: -kv[1])
            print(f"frame {first:.2f} s cpu {cpu:.2f}: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in top if v >= 0.01), flush=True)
    else:
        prof(str(Path(args.args[0]).resolve()), args.config, args.args[1])


if __name__ == "__main__":
    main()
