"""Shared fixtures: a fresh embedded lab per test (it starts in well under a second)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jamtui.sim.lab import Lab

# The client libraries read these; a developer's shell must not leak into the tests.
CLIENT_ENV = (
    "NOMAD_ADDR", "NOMAD_TOKEN", "NOMAD_NAMESPACE", "NOMAD_REGION", "NOMAD_CACERT",
    "NOMAD_SKIP_VERIFY", "CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_SSL",
    "CONSUL_HTTP_SSL_VERIFY", "CONSUL_CACERT", "PROXMOX_VE_ENDPOINT", "PROXMOX_VE_API_TOKEN",
    "PROXMOX_VE_INSECURE", "XDG_CONFIG_HOME",
    "NOMAD_CLIENT_CERT", "NOMAD_CLIENT_KEY", "NOMAD_TLS_SERVER_NAME", "NOMAD_CAPATH",
    "CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY", "CONSUL_TLS_SERVER_NAME", "CONSUL_CAPATH",
)


# A suite started in the background by a non-interactive shell inherits SIGINT ignored, and so
# would every command a test interrupts with it (each must end 130 on Ctrl-C).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# pytest-xdist's workers set these (80x24) for their own output; Textual and Rich would size
# a cockpit started by a test (tmux's --demo) by them rather than by its terminal.
TERMINAL_ENV = ("COLUMNS", "LINES")


@pytest.fixture(autouse=True)
def _clean_client_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CLIENT_ENV + TERMINAL_ENV:
        monkeypatch.delenv(name, raising=False)


# Quick timings so state changes are seen within a test's patience; no random flapping.
FAST = dict(flap_rate=0.0, boot_delay=0.5, heartbeat_grace=0.3, task_delay=0.1)


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(seed=1, tick=0.2, traffic=False, **FAST) as running:
        yield running


@pytest.fixture
def packer() -> str:
    """Debian's packer (scripts/test installs it)."""
    path = shutil.which("packer") or "/usr/bin/packer"
    if not Path(path).exists():
        pytest.skip("packer is not installed (scripts/test installs Debian's package)")
    return path


def _ui_cpu_time(loop: asyncio.AbstractEventLoop) -> float:
    """CPU time of the app's own threads: the thread running its event loop and the loop's
    executor threads (Textual's thread workers run there)."""
    total = time.thread_time()
    executor = getattr(loop, "_default_executor", None)
    for thread in list(getattr(executor, "_threads", ())):
        with contextlib.suppress(OSError, TypeError, ValueError):  # it ended meanwhile
            total += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return total


async def _wait_for_ui_idle(min_sleep: float = 1 / 50, max_sleep: float = 1) -> None:
    """Textual's `wait_for_idle` (what `pilot.press` and `pilot.pause()` wait on after each
    key), measuring the app's own threads rather than the whole process: in the tests the lab
    and the engine's pollers run in the test's process and kept it always "busy", which made a
    key press wait up to its full second twice."""
    from textual import _wait

    loop = asyncio.get_running_loop()
    start = time.monotonic()
    while True:
        cpu = _ui_cpu_time(loop)
        await asyncio.sleep(_wait.SLEEP_GRANULARITY)
        elapsed = time.monotonic() - start
        if elapsed >= max_sleep:
            break
        if elapsed > min_sleep and _ui_cpu_time(loop) - cpu < _wait.SLEEP_IDLE:
            break


def _patch_textual_idle() -> None:
    import textual.app
    import textual.pilot

    for module in (textual.app, textual.pilot):
        if hasattr(module, "wait_for_idle"):
            module.wait_for_idle = _wait_for_ui_idle  # type: ignore[attr-defined]


_patch_textual_idle()


# Files whose tests mostly wait (the cockpit under Pilot, workflows, real terminals and tools)
# run first: scripts/test hands whole files to its two workers in this order, and a long file
# left for the end would keep one worker busy while the other idles.
SLOW_FIRST = ("tests/ui/test_workflows_ui.py", "tests/ui/", "tests/workflows/", "tests/test_e2e",
              "tests/integration/", "tests/test_tls.py", "tests/test_cli_lab.py",
              "tests/provisioners/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return next((i for i, prefix in enumerate(SLOW_FIRST) if path.startswith(prefix)),
                    len(SLOW_FIRST))

    items.sort(key=rank)  # stable: a file's tests keep their order


def pytest_report_header() -> str:
    return f"jamtui tests (pid {os.getpid()})"
