"""A lab, an engine on it, and the cockpit app, for pilot tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.config import load_config
from jamtui.engine import Engine
from jamtui.sim.lab import Lab
from tests.conftest import FAST


@pytest.fixture
def lab_engine(tmp_path: Path) -> Iterator[tuple[Lab, Engine]]:
    with Lab(seed=5, tick=0.2, traffic=False, **FAST) as lab:
        path = tmp_path / "jamtui.toml"
        path.write_text("poll_interval = 0.5\n" + lab.config_toml())
        engine = Engine(load_config(path, env=lab.env()))
        try:
            yield lab, engine
        finally:
            engine.stop()
