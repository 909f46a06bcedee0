"""The log viewer in a real terminal at 80x24 (the default SSH window): `w` wraps at the
width the rows are seen at, so no cell is lost behind the scrollbar (issue 14: `…/workflows/
│` then `│261129-…`, "20" gone)."""

from __future__ import annotations

import re
import time
from itertools import pairwise

from tests.test_e2e_tmux import Terminal, demo  # noqa: F401 (the fixture)

# the lab's chatter (sim/world.py `_chatter`): a wrapped line must end in one of these whole
TAIL = re.compile(r"\] server: (GET /health 200 0\.4ms|cache warm, 1284 keys|"
                  r"worker heartbeat ok|GET / 200 2\.1ms|connection pool: 4 idle, 1 busy|"
                  r"started on vs\d)$")
HEAD = re.compile(r"^example\.web\[\d\] \w{8} server │ \d{4}-\d\d-\d\dT")


def rows(screen: str) -> list[str]:
    """The log's rows between the border's sides, less the scrollbar's two cells."""
    return [r[1:-1][:-2] for r in screen.splitlines() if r.startswith("│") and r.endswith("│")]


def test_wrapped_log_rows_lose_no_cell_at_80x24(demo: Terminal) -> None:  # noqa: F811
    demo.tmux("resize-window", "-t", demo.session, "-x", "80", "-y", "24")
    demo.wait_for("nomad ✓ ok")
    demo.keys(":")
    demo.wait_for(":view (")
    demo.type("jobs")
    demo.keys("Enter")
    demo.wait_for("Nomad jobs")
    demo.keys("/")
    demo.wait_for("/filter")
    demo.type("example")
    demo.wait_for("Nomad jobs [1]")
    demo.keys("Enter", "l")
    demo.wait_for("Logs job example")
    demo.wait_for("following · stdout · wrap off")
    demo.keys("w")
    deadline = time.monotonic() + 20
    pairs: list[str] = []
    while time.monotonic() < deadline and len(pairs) < 3:
        shown = rows(demo.wait_for("wrap on"))
        pairs = [a + b.rstrip() for a, b in pairwise(shown)
                 if HEAD.match(a) and not HEAD.match(b)]
        time.sleep(0.2)
    assert len(pairs) >= 3, "\n".join(shown)
    for joined in pairs:
        assert TAIL.search(joined), f"cells lost where the row wraps: {joined!r}"
