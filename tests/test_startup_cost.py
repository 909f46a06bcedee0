"""What every command pays before and after its work: the parser without the workflows'
imports, and an engine that stops without waiting out its blocking queries."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.sim.lab import Lab
from tests.conftest import FAST


def test_the_parser_does_not_import_the_workflows() -> None:
    """Nor the exec WebSocket's aiohttp (0.2 s of every `status`)."""
    code = ("import sys; from jamtui.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('paramiko', 'dns.resolver', 'jamtui.workflows.node', "
            "'jamtui.engine', 'textual.app', 'aiohttp') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_the_cockpit_without_a_keys_table_imports_no_screen_it_does_not_show() -> None:
    """`run_cockpit` checks the config's [keys]; with none there is nothing to check, and the
    log viewer, workflows, :kv, :routes … are imported when opened, not at start."""
    code = ("import sys; import jamtui.ui.app, jamtui.ui.nomad_views; "
            "from jamtui.ui.keymap import KEYMAP, "
            "with_overrides; assert with_overrides({}) == KEYMAP; print([m for m in ("
            "'jamtui.ui.log_view', 'jamtui.ui.workflow_view', 'jamtui.ui.kv_view', "
            "'jamtui.ui.routing_view', 'jamtui.ui.events_view', 'textual.widgets._text_area', "
            "'rich.pretty') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_engine_stops_without_waiting_for_its_blocking_queries(tmp_path: Path) -> None:
    with Lab(seed=3, tick=0, traffic=False, **FAST) as lab:
        path = tmp_path / "jamtui.toml"
        path.write_text(lab.config_toml())
        engine = Engine(load_config(path, env=lab.env()))
        engine.start()
        assert engine.wait_ready(20)
        time.sleep(0.5)  # Nomad's event stream and Consul's blocking queries are now held
        held = [t for s in engine.sources.values() for t in s._threads if t.is_alive()]
        assert held
        t0 = time.monotonic()
        engine.stop()
        # before: the full second, for threads that would answer only after minutes
        assert time.monotonic() - t0 < 0.8


def test_the_cockpit_s_engine_waits_for_its_first_frame(tmp_path: Path, monkeypatch: Any) -> None:
    """`run_cockpit` starts the engine before the app (its reads overlap Textual's start):
    the engine must know a first frame is coming (`Engine.first_frame`), or Fabio's pass and
    the timeline's first past competed with it for the GIL (#17)."""
    import argparse

    from jamtui import cli
    from jamtui.ui.app import JamApp

    path = tmp_path / "jamtui.toml"
    path.write_text('[fabio]\naddresses = ["http://127.0.0.1:1", "http://127.0.0.1:2"]\n')
    seen: dict[str, object] = {}

    def started(self: Engine, followers: bool = True, summary: bool = False) -> None:
        seen["first_frame"] = self.first_frame

    def run(self: JamApp) -> None:
        seen["app_engine_frame"] = self.engine.first_frame

    monkeypatch.setattr(Engine, "start", started)
    monkeypatch.setattr(JamApp, "run", run)
    cli.run_cockpit(load_config(path, env={}), argparse.Namespace())
    assert seen["first_frame"] is not None and seen["app_engine_frame"] is seen["first_frame"]
