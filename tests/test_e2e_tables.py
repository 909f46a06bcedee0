"""Tables in a real terminal (tmux), at 80x24 (the default SSH window) and 160x45: whole cells
from the first paint, the columns each view keeps, the sort mark, AGE ticking (#14)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import uuid

from tests.conftest import CLIENT_ENV
from tests.test_e2e_tmux import Terminal


def pane_lines(screen: str, title: str) -> list[str]:
    """The lines under a pane title, from its column on (the overview is a 2x2 grid)."""
    lines = screen.splitlines()
    top = next(n for n, line in enumerate(lines) if title in line)
    left = lines[top].index(title) - 1
    return [line[left:left + 40] if left else line[:40] for line in lines[top + 1:top + 10]]


def test_tables_at_80x24_then_160x45() -> None:
    socket, session = f"jamtui-tables-{uuid.uuid4().hex[:8]}", "demo"
    env = " ".join(f"-u {name}" for name in CLIENT_ENV)
    command = f"env {env} TERM=xterm-256color {shlex.quote(sys.executable)} -m jamtui --demo"
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-s", session, "-x", "80",
                    "-y", "24", command], check=True, timeout=10,
                   env={**os.environ, "TERM": "xterm-256color"})
    term = Terminal(socket, session)
    try:
        screen = term.wait_for("✓ complete", timeout=40)  # the backup job's allocation
        allocs = pane_lines(screen, "Nomad allocations")
        assert "STATUS" in allocs[0] and "NODE" in allocs[0] and "NAME ▲" in allocs[0], allocs
        assert any(re.search(r"✓ complete\s+vs\d", line) for line in allocs), allocs
        vms = pane_lines(screen, "VMs [")
        # VMIDs whole and in order from the first paint (it was "30  vs1" for 301)
        ids = [int(m.group(1)) for line in vms[1:] if (m := re.match(r"\s*(\d+)\s", line))]
        assert ids and ids == sorted(ids) and all(i >= 100 for i in ids), vms
        footer = screen.splitlines()[-1]
        assert footer.index(": view") < footer.index("? keys"), footer

        term.tmux("resize-window", "-t", session, "-x", "160", "-y", "45")
        screen = term.wait_for(" AGE ", timeout=20)
        line = next(line for line in screen.splitlines() if "backup.backup[0]" in line)
        first = re.search(r"(\d+)s\b", line[line.index("backup.backup[0]"):])
        assert first, line
        deadline = time.monotonic() + 10  # AGE ticks each second while under a minute
        while time.monotonic() < deadline:
            line = next(line for line in term.screen().splitlines() if "backup.backup[0]" in line)
            now = re.search(r"(\d+)s\b|(\d+m\d\ds)", line[line.index("backup.backup[0]"):])
            if now and now.group(0) != first.group(0):
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"AGE did not move: {line}")
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)
