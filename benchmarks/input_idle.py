"""Idle CPU of a bare Textual app with Textual's LinuxDriver and with jamtui's QuietDriver
(`jamtui/ui/driver.py`, #17).

    .venv/bin/python benchmarks/input_idle.py [--rounds 3] [--secs 20]

`bare_app.py` (with `--quiet-driver` for ours) in tmux 160x48, the two drivers one after the
other in each round; after its first frame and 3 s, its CPU (utime+stime from /proc) and its
wake-ups (the voluntary context switches of all its threads) over `--secs`. Textual's input
thread waits in select() for 0.1 s at most: ~10 wake-ups a second of its own."""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scale import ROOT, Term, cpu_seconds  # noqa: E402


def wakeups(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread has ended meanwhile
            continue
        for text in status.splitlines():
            if text.startswith("voluntary_ctxt_switches:"):
                total += int(text.split()[1])
    return total


def measure(quiet: bool, secs: float) -> tuple[float, float]:
    """CPU % of a core and wake-ups a second of an idle bare app."""
    cmd = f"{shlex.quote(sys.executable)} -P {HERE / 'bare_app.py'}"
    term = Term(cmd + (" --quiet-driver" if quiet else ""), {"PYTHONPATH": str(ROOT)})
    try:
        term.wait(lambda s: "BARE-TEXTUAL-READY" in s, 30, 0.05, "bare app")
        time.sleep(3)
        c0, w0, t0 = cpu_seconds(term.pid), wakeups(term.pid), time.perf_counter()
        time.sleep(secs)
        c1, w1, t1 = cpu_seconds(term.pid), wakeups(term.pid), time.perf_counter()
        return 100 * (c1 - c0) / (t1 - t0), (w1 - w0) / (t1 - t0)
    finally:
        term.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--secs", type=float, default=20.0)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"textual": [], "quiet": []}
    for _ in range(args.rounds):
        for name in results:
            results[name].append(measure(name == "quiet", args.secs))
    for name, runs in results.items():
        cpu = [r[0] for r in runs]
        wake = [r[1] for r in runs]
        print(f"{name:8} CPU {'/'.join(f'{v:.3f}' for v in cpu)} % (median "
              f"{statistics.median(cpu):.3f}); wake-ups {statistics.median(wake):.1f}/s")


if __name__ == "__main__":
    main()
