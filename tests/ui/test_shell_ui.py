"""`s` in the cockpit, through Pilot as far as the suspend (Textual's test driver cannot hand
the terminal over): on an allocation the asked command runs for real over the lab's exec
WebSocket with a TTY (its terminal a pair of pipes here) and its status is said; on a VM the
OpenSSH argv and its private ssh_config are the ones the runner gets."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

import pytest

from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.ui import shell as shell_mod
from jamtui.ui.app import JamApp
from jamtui.ui.screens import PromptScreen
from tests.ui.test_cockpit import focus_row, pane, ready, until


def no_suspend(app: JamApp) -> list[str]:
    """Replace the suspend (the test driver has none) by a recorder."""
    calls: list[str] = []

    @contextlib.contextmanager
    def recorded() -> Any:
        calls.append("suspend")
        yield
        calls.append("resume")

    app.shells.suspend = recorded  # type: ignore[method-assign]
    return calls


def notes(app: JamApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def running_alloc(pilot: Any, app: JamApp, engine: Engine) -> Any:
    await ready(pilot, app)
    alloc = await until(pilot, lambda: next(
        (a for a in engine.store.items(Kind.ALLOCATION) if a.job_id == "example"
         and a.client_status == "running" and len(a.tasks) == 1
         and pane(app, Kind.ALLOCATION).table.row_count > 0), None), timeout=20)
    focus_row(pane(app, Kind.ALLOCATION).table, alloc.id)
    return alloc


async def test_s_on_an_allocation_runs_the_asked_command_in_its_task(
        lab_engine: tuple[Lab, Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    _lab, engine = lab_engine
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    seen: dict[str, Any] = {}
    real = shell_mod.run_exec

    def on_pipes(cfg: Any, target: Any, *, tty: bool) -> int:
        seen["target"], seen["tty"] = target, tty
        return real(cfg, target, tty=tty, stdin_fd=stdin_r, stdout_fd=out_w, stderr_fd=out_w)

    monkeypatch.setattr(shell_mod, "run_exec", on_pipes)
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        alloc = await running_alloc(pilot, app, engine)
        calls = no_suspend(app)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        assert app.screen.query_one("Input").value == "/bin/sh"  # type: ignore[attr-defined]
        os.write(stdin_w, b"echo h''i; exit 3\n")
        os.close(stdin_w)
        await pilot.press("enter")
        await until(pilot, lambda: "resume" in calls, timeout=30)
        assert seen["target"].alloc_id == alloc.id and seen["tty"] is True
        assert seen["target"].command == ("/bin/sh",)
        assert any("ended with status 3" in n for n in notes(app))
        assert not isinstance(app.screen, PromptScreen)  # back to the screen it left
    os.close(out_w)
    output = b""
    while chunk := os.read(out_r, 65536):
        output += chunk
    os.close(out_r)
    os.close(stdin_r)
    assert b"hi" in output.replace(b"h''i", b"")


async def test_s_on_a_vm_runs_openssh_through_the_bastion(
        lab_engine: tuple[Lab, Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    _lab, engine = lab_engine
    monkeypatch.setattr("jamtui.sources.ssh_shell.system_ssh", lambda: "/usr/bin/ssh")
    got: dict[str, Any] = {}

    def runner(argv: list[str]) -> int:
        got["argv"] = argv
        got["config"] = Path(argv[2]).read_text()
        return 0

    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        vm = next(v for v in engine.store.items(Kind.VM) if v.name == "vs1")
        focus_row(pane(app, Kind.VM).table, vm.id)
        calls = no_suspend(app)
        app.shells.ssh_runner = runner
        await pilot.press("s")
        await until(pilot, lambda: "resume" in calls)
        assert got["argv"][:2] == ["/usr/bin/ssh", "-F"]
        assert got["argv"][3:] == ["-J", "jamtui-bastion", "-t", "jamtui-target"]
        assert "HostName 192.168.42.31" in got["config"]
        assert "StrictHostKeyChecking ask" in got["config"]
        assert any("ssh vs1: the shell ended" in n for n in notes(app))


async def test_without_a_terminal_to_hand_over_s_says_so(
        lab_engine: tuple[Lab, Engine]) -> None:
    _lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        vm = next(v for v in engine.store.items(Kind.VM) if v.name == "vs1")
        focus_row(pane(app, Kind.VM).table, vm.id)
        await pilot.press("s")  # the test driver cannot suspend: said, no traceback
        await until(pilot, lambda: any("cannot hand over" in n for n in notes(app)))


async def test_read_only_keeps_s_off(lab_engine: tuple[Lab, Engine]) -> None:
    _lab, engine = lab_engine
    app = JamApp(engine, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await running_alloc(pilot, app, engine)
        await pilot.press("s")
        await asyncio.sleep(0.3)
        assert not isinstance(app.screen, PromptScreen)
