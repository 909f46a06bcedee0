"""The cockpit's first screen with a backend that accepts connections and never answers: its
panes say they are waiting for it (and for how long), never look empty and fine; once the
liveness probe gives up, they say it is down and that nothing was read."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.ui.app import JamApp
from tests.conftest import FAST
from tests.ui.test_cockpit import pane, text_of, until


@pytest.fixture
def silent_consul(tmp_path: Path) -> Iterator[tuple[Lab, Engine]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # the kernel completes the connections; nobody ever answers
    silent = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with Lab(seed=5, tick=0.2, traffic=False, **FAST) as lab:
        path = tmp_path / "jamtui.toml"
        path.write_text(lab.config_toml().replace(
            f'[consul]\naddress = "{lab.urls["consul"]}"', f'[consul]\naddress = "{silent}"'))
        env = {k: v for k, v in lab.env().items() if k != "CONSUL_HTTP_ADDR"}
        engine = Engine(load_config(path, env=env))
        try:
            yield lab, engine
        finally:
            engine.stop()
            sock.close()


def title(app: JamApp, kind: Kind) -> str:
    return text_of(pane(app, kind).query_one("Label").content)


async def test_a_silent_backend_pane_says_waiting_then_down(
        silent_consul: tuple[Lab, Engine]) -> None:
    _lab, engine = silent_consul
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: pane(app, Kind.VM).table.row_count > 0)
        first = await until(pilot, lambda: re.search(
            r"waiting for consul \((\d+) s\)", title(app, Kind.SERVICE)))
        # the count moves with the clock
        await until(pilot, lambda: (m := re.search(r"waiting for consul \((\d+) s\)",
                                                   title(app, Kind.SERVICE)))
                    and int(m.group(1)) > int(first.group(1)), timeout=15)
        bar = text_of(app.screen.query_one("HealthBar").render())
        assert "consul … waiting" in bar
        # Proxmox answers: its rows come first, its health once the VMs' addresses are read
        # too (a loaded machine can take longer than the second above for that)
        await until(pilot, lambda: "waiting" not in title(app, Kind.VM), timeout=15)
        # the probe gives up after 5 s: down, and nothing was ever read
        await until(pilot, lambda: "nothing read yet" in title(app, Kind.SERVICE),
                    timeout=15)
        assert "did not answer" in title(app, Kind.SERVICE)
        assert "waiting" not in title(app, Kind.SERVICE)
