"""The log viewer in the cockpit against the lab: a job's merged tail that allocations join
and leave, timestamps, wrapping and ANSI colours, several tails open and switched between,
host logs over SSH through the lab's bastion with the host-key dialog, workflow step logs."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import paramiko

from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.ui.app import JamApp
from jamtui.ui.log_view import LogLines, LogScreen, TailsScreen
from tests.ui.test_cockpit import focus_row, pane, ready, until


def view(app: JamApp) -> LogLines:
    assert isinstance(app.screen, LogScreen)
    return app.screen.query_one(LogLines)


def rendered(lines: LogLines, y: int) -> str:
    return lines.render_line(y).text


async def open_alloc(pilot: Any, app: JamApp, engine: Engine) -> Any:
    alloc = next(a for a in engine.store.items(Kind.ALLOCATION) if a.job_id == "example")
    focus_row(pane(app, Kind.ALLOCATION).table, alloc.id)
    await pilot.press("l")
    await until(pilot, lambda: isinstance(app.screen, LogScreen))
    return alloc


async def open_job(pilot: Any, app: JamApp, job: str) -> None:
    await pilot.press("colon", *"jobs", "enter")
    await until(pilot, lambda: getattr(app.screen, "panes", None))
    focus_row(app.screen.panes[0].table, job)
    await pilot.press("l")
    await until(pilot, lambda: isinstance(app.screen, LogScreen))


async def test_job_tail_merges_allocations_that_join_and_leave(
        lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        allocs = [a for a in engine.store.items(Kind.ALLOCATION)
                  if a.job_id == "example" and a.client_status == "running"]
        # what each allocation has written so far, its times interleaved with the others'
        # (a little ahead of now: after the lines the lab wrote at their start)
        await asyncio.to_thread(lab.call, setattr, lab.world, "log_rate", 0.0)
        t0 = int(time.time()) + 5

        def write(i: int, alloc_id: str) -> None:
            log = lab.world.log_file(lab.world.allocs[alloc_id], "server", "stdout")
            for k in range(3):
                at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + 3 * k + i))
                log.data.extend(f"{at} earlier {3 * k + i}\n".encode())

        for i, a in enumerate(allocs):
            await asyncio.to_thread(lab.call, write, i, a.id)
        await open_job(pilot, app, "example")
        lines = view(app)
        await until(pilot, lambda: sum("earlier" in e.text for e in lines.entries) == 9)
        earlier = [int(e.text.split()[-1]) for e in lines.entries if "earlier" in e.text]
        assert earlier == list(range(9))  # in time order, not allocation by allocation
        assert "guessed" not in str(app.screen.query_one("#log-status").content)
        for a in allocs:
            await asyncio.to_thread(lab.call, lab.world.log_line, a.id, "server",
                                    f"hello from {a.name}")
        await until(pilot, lambda: {e.source for e in lines.entries if "hello from" in e.text}
                    == {f"{a.name} {a.short_id} server" for a in allocs})
        gone = allocs[0]
        await asyncio.to_thread(lab.call, lab.world.stop_alloc, gone.id)
        left = f"[jamtui] {gone.name} {gone.short_id} server left (no longer running)"
        await until(pilot, lambda: any(e.text == left for e in lines.entries), timeout=15)
        # the replacement the scheduler places joins the tail
        await until(pilot, lambda: any(e.text.endswith("joined") for e in lines.entries),
                    timeout=15)


async def test_timestamps_wrap_and_ansi_colours(lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        alloc = await open_alloc(pilot, app, engine)
        lines = view(app)
        long = "x" * 250 + " END"
        # no chatter from the lab from here on: the rows counted below stay what they are
        await asyncio.to_thread(lab.call, setattr, lab.world, "log_rate", 0.0)
        for text in ("\x1b[31mred alert\x1b[0m done", long):
            await asyncio.to_thread(lab.call, lab.world.log_line, alloc.id, "server", text)
        await until(pilot, lambda: any(e.text.endswith(" END") for e in lines.entries))
        coloured = next(e for e in lines.entries if "red alert" in e.text)
        assert coloured.text.endswith("red alert done") and "\x1b" not in coloured.text
        segments = list(lines.line_text(coloured).render(app.console))
        red = next(s for s in segments if "red alert" in s.text)
        assert red.style is not None and red.style.color is not None \
            and red.style.color.number == 1  # SGR 31: standard red
        plain = next(s for s in segments if "done" in s.text)
        assert plain.style is None or plain.style.color is None
        # wrapping: the 270-character line takes several rows; the last row shows its end
        rows_before = lines.virtual_size.height
        await pilot.press("w")
        await pilot.pause(0.1)
        assert lines.wrap and lines.virtual_size.height >= rows_before + 2
        assert lines.virtual_size.width <= lines.size.width
        last = lines.virtual_size.height - 1
        assert rendered(lines, last - lines.scroll_offset.y).rstrip().endswith("END")
        await pilot.press("w")
        await pilot.pause(0.1)
        assert lines.virtual_size.height == rows_before
        # timestamps: each line starts with the time it arrived
        await pilot.press("t")
        await pilot.pause(0.1)
        assert lines.stamps
        assert re.match(r"\d\d:\d\d:\d\d\.\d{3} ", rendered(lines, 0))
        assert "time" in str(app.screen.query_one("#log-title").content)


async def test_several_tails_stay_open_and_switch(lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        alloc = await open_alloc(pilot, app, engine)
        first = app.screen
        await pilot.press("escape")  # back to the overview: the tail keeps following
        await until(pilot, lambda: not isinstance(app.screen, LogScreen))
        await asyncio.to_thread(lab.call, lab.world.log_line, alloc.id, "server", "while away")
        await until(pilot, lambda: any(e.text.endswith("while away")
                                       for e in first.query_one(LogLines).entries))
        await open_job(pilot, app, "api")
        second = app.screen
        assert second is not first and len(app.tails) == 2
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: app.screen is first)
        await pilot.press("L")
        await until(pilot, lambda: isinstance(app.screen, TailsScreen))
        await pilot.press("down", "enter")
        await until(pilot, lambda: app.screen is second)
        await pilot.press("x")  # closed: stops following, gone from the list
        await until(pilot, lambda: len(app.tails) == 1 and app.screen is not second)
        assert list(app.tails.values()) == [first]


async def test_host_logs_over_ssh_ask_about_unknown_keys_and_refuse_changed_ones(
        lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    known = Path(engine.config.ssh.known_hosts)
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        vm = engine.store.vm_named("vs1")

        async def ask() -> Any:
            focus_row(pane(app, Kind.VM).table, vm.id)
            await pilot.press("l")
            await until(pilot, lambda: type(app.screen).__name__ == "PromptScreen")
            await pilot.press("enter")  # the default unit for a vs node: nomad
            return await until(pilot, lambda: type(app.screen).__name__ in (
                "ConfirmScreen", "LogScreen") and app.screen, timeout=15)

        dialog = await ask()
        question = str(dialog.query_one("Static").content)
        assert "192.168.42.31 is not a known host" in question
        assert re.search(r"SHA256:[A-Za-z0-9+/]{43}", question)
        await pilot.press("n")  # refused: nothing recorded, no tail
        await pilot.pause(0.3)
        assert "192.168.42.31" not in known.read_text() and not app.tails
        await ask()
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), timeout=15)
        lines = view(app)
        await until(pilot, lambda: any("vs1 nomad[" in e.text for e in lines.entries))
        assert "192.168.42.31" in known.read_text()
        count = len(lines.entries)
        await until(pilot, lambda: len(lines.entries) > count, timeout=5)  # following
        await pilot.press("x")
        await until(pilot, lambda: not app.tails)

        # the host is rebuilt with a new key: refused, in words, and no tail opens
        lab._bastion._host_keys["vs1"] = paramiko.ECDSAKey.generate()
        focus_row(pane(app, Kind.VM).table, vm.id)
        await pilot.press("l")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptScreen")
        await pilot.press("enter")
        await until(pilot, lambda: any("changed" in n.message for n in app._notifications),
                    timeout=15)
        assert not app.tails
