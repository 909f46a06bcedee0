"""Small helpers the tests share."""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from typing import Any

from jamtui.store import Store


def wait_for(cond: Callable[[], Any], timeout: float = 5.0, step: float = 0.05) -> Any:
    """Poll `cond` until it is truthy (and return it), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def fake_engine(store: Store) -> Any:
    """An engine with no sources, for UI tests on a store filled by the test."""
    return types.SimpleNamespace(store=store, sources={}, start=lambda: None,
                                 stop=lambda: None)
