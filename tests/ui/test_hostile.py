"""A hostile job, service and check in the lab: every view shows their strings literally,
draws no control character, and nothing in them crashes the cockpit (issue #12 §1)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import nomad
from textual.widgets import Static

from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.ui.app import JamApp
from jamtui.ui.screens import DetailScreen
from tests.ui.test_cockpit import focus_row, pane, ready, text_of, until

OSC_TITLE = "\x1b]0;PWNED\x07"
OSC_CLIPBOARD = "\x1b]52;c;cm0gLXJmIC8K\x07"
OSC_LINK = "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
CLEAR_AND_LEAVE = "\x1b[2J\x1b[?1049l"
LONG = "zz" + "L" * 10_000  # sorts last among the tags

GROUP_MARKUP = "g[/x]"  # MarkupError in notify() on today's code
GROUP_TITLE = f"t{OSC_TITLE}"  # rewrote the terminal's title from the overview
TASK = f"task{CLEAR_AND_LEAVE}"  # cleared the screen, left the alternate screen
TAGS = [f"tag{OSC_TITLE}", f"clip{OSC_CLIPBOARD}", OSC_LINK, "[link=http://evil.example/]x",
        "urlprefix-[blink]evil.jamfox.dev/", LONG]
CHECK_OUTPUT = f"HTTP GET: 200 OK Output: {OSC_TITLE}{CLEAR_AND_LEAVE}[/x] body"
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def hostile_job() -> dict[str, Any]:
    task = {"Name": TASK, "Driver": "docker", "Config": {"image": "nginx"}}
    return {"Job": {"ID": "hostile", "Type": "service", "TaskGroups": [
        {"Name": GROUP_MARKUP, "Count": 1, "Tasks": [task]},
        {"Name": GROUP_TITLE, "Count": 1,
         "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
         "Services": [{"Name": "hostile", "PortLabel": "http", "Tags": TAGS}],
         "Tasks": [task]},
    ]}}


def register(lab: Lab) -> None:
    client = nomad.Nomad(address=lab.urls["nomad"], token=lab.secrets.nomad_token, timeout=5)
    client.job.register_job("hostile", hostile_job())


def drawn(app: JamApp) -> str:
    """What the screen draws (every layer, toasts too), as text."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(s.text for s in strip if not s.control) for strip in strips)


def clean(app: JamApp) -> str:
    text = drawn(app)
    bad = CONTROL.search(text)
    assert bad is None, f"a control character was drawn: {text[bad.start() - 20:bad.end()]!r}"
    return text


async def test_hostile_strings_are_shown_literally_in_every_view(
        lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    register(lab)
    app = JamApp(engine)
    async with app.run_test(size=(200, 50), notifications=True) as pilot:
        await ready(pilot, app)
        store = engine.store

        def hostile(group: str) -> Any:
            return next((a for a in store.items(Kind.ALLOCATION) if a.job_id == "hostile"
                         and a.task_group == group and a.client_status == "running"), None)

        await until(pilot, lambda: hostile(GROUP_MARKUP) and hostile(GROUP_TITLE), timeout=15)
        # overview: the allocation names carry the group names
        await until(pilot, lambda: "hostile.t␛]0;PWNED␇[0]" in clean(app))
        await until(pilot, lambda: "hostile.g[/x][0]" in clean(app))

        await pilot.press("colon", *"jobs", "enter")
        await until(pilot, lambda: app.screen.name == "jobs")
        await until(pilot, lambda: "t␛]0;PWNED␇ 1/0/0" in clean(app))
        assert "g[/x] 1/0/0" in clean(app)

        await pilot.press("colon", *"services", "enter")
        await until(pilot, lambda: app.screen.name == "services")
        await until(pilot, lambda: "␛]8;;http://evil.example/␛\\click" in clean(app),
                    timeout=15)

        # the allocation's detail: the task name, literally
        alloc = hostile(GROUP_TITLE)
        app.open_detail(Kind.ALLOCATION, alloc.id)
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await until(pilot, lambda: "task␛[2J␛[?1049l" in clean(app))
        body = text_of(app.screen.query_one("#detail", Static).content)
        assert "\x1b" not in body

        # the service's detail: a check's output (a workload's health body), literally
        inst = next(i for i in store.items(Kind.INSTANCE) if i.alloc_id == alloc.id)
        check = next((c for c in inst.checks if c.check_id != "serfHealth"), inst.checks[0])
        await asyncio.to_thread(lab.call, lab.world.set_check, inst.node, check.check_id,
                                "passing", CHECK_OUTPUT)
        app.open_detail(Kind.SERVICE, "hostile")
        await until(pilot, lambda: app.screen.name == "detail:services:hostile")
        await until(pilot, lambda: "Output: ␛]0;PWNED␇␛[2J" in clean(app), timeout=15)
        assert "[link=http://evil.example/]x" in clean(app)  # a tag, not a hyperlink

        # an action on the allocation of `g[/x]`: the notification says the name
        await pilot.press("escape", "escape", "escape")
        await pilot.press("colon", *"allocs", "enter")
        await until(pilot, lambda: app.screen.name == "allocs")
        table = pane(app, Kind.ALLOCATION).table
        target = hostile(GROUP_MARKUP)
        await until(pilot, lambda: target.id in table._texts)
        focus_row(table, target.id)
        await pilot.press("r")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        assert "g[/x]" in clean(app)
        await pilot.press("y")
        await until(pilot, lambda: "g[/x]" in " ".join(
            str(n.message) for n in app._notifications))
        await pilot.pause(0.5)  # the toast is drawn: a MarkupError here ended the app
        await until(pilot, lambda: "hostile.g[/x][0]" in clean(app))

        # the palette finds the hostile allocation by name, shown literally
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"hostile.g")
        await until(pilot, lambda: "allocation hostile.g[/x][0]" in clean(app))
        await pilot.press("escape")

        # the routing view: a route whose host came from a tag
        await pilot.press("colon", *"routes", "enter")
        await until(pilot, lambda: app.screen.name == "routes")
        await until(pilot, lambda: "[blink]evil.jamfox.dev/" in clean(app), timeout=15)
    assert app.return_code in (None, 0)


async def test_an_unexpected_exception_ends_the_app_non_zero_in_one_line(
        lab_engine: tuple[Lab, Engine], tmp_path: Any, monkeypatch: Any) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the traceback file goes there
    _lab, engine = lab_engine
    app = JamApp(engine, start_engine=False)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await pilot.pause(0.1)

            def boom() -> None:
                raise RuntimeError(f"kaput {OSC_TITLE}")

            app.call_later(boom)
            await pilot.pause(0.5)
    except RuntimeError:
        pass  # the pilot re-raises what ended the app; the app's own handling is below
    assert app.return_code == 1
    crash = getattr(app, "crash", "")  # the one line said
    assert crash.startswith("jamtui: unexpected error: RuntimeError: kaput ␛]0;PWNED␇")
    assert "\n" not in crash
    kept = list(tmp_path.glob("jamtui-crash-*.txt"))
    assert len(kept) == 1 and "RuntimeError" in kept[0].read_text()
    assert kept[0].stat().st_mode & 0o077 == 0  # private: a traceback may name secrets


def raw_log(lab: Lab, alloc_id: str, data: bytes) -> None:
    """Bytes into a task's log as a workload writes them (invalid UTF-8 too)."""
    def write() -> None:
        log = lab.world.log_file(lab.world.allocs[alloc_id], "server", "stdout")
        log.data += data
        lab.world.notify_logs()

    lab.call(write)


async def test_log_viewer_keeps_colours_and_drops_terminal_codes(
        lab_engine: tuple[Lab, Engine]) -> None:
    from tests.ui.test_logs_ui import open_alloc, view

    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 40)) as pilot:
        await ready(pilot, app)
        alloc = await open_alloc(pilot, app, engine)
        lines = view(app)
        hostile = (f"\x1b[31mred\x1b[0m {OSC_TITLE}{OSC_LINK}{OSC_CLIPBOARD}{CLEAR_AND_LEAVE}"
                   "\x1bc\x9b2J tail").encode() + b" \xff\xfe bad utf-8\n"
        await asyncio.to_thread(raw_log, lab, alloc.id, hostile)
        entry = await until(pilot, lambda: next(
            (e for e in lines.entries if e.text.endswith("bad utf-8")), None))
        assert entry.text == "red click tail \ufffd\ufffd bad utf-8"  # (\x9b: a C1 CSI)
        assert entry.raw == "\x1b[31mred\x1b[0m click tail \ufffd\ufffd bad utf-8"
        segments = list(lines.line_text(entry).render(app.console))
        red = next(s for s in segments if "red" in s.text)
        assert red.style is not None and red.style.color is not None
        assert not any(CONTROL.search(s.text) for s in segments)
        await until(pilot, lambda: "red click tail" in clean(app))


async def test_node_form_and_plan_show_typed_and_tool_text_literally(
        lab_engine: tuple[Lab, Engine]) -> None:
    from textual.widgets import Input, Label

    from jamtui.ui.workflow_view import NodeAddScreen, PlanScreen

    _lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await ready(pilot, app)
        pane(app, Kind.VM).table.focus()
        await pilot.press("a")
        form = await until(pilot, lambda: isinstance(app.screen, NodeAddScreen) and app.screen)
        form.query_one("#f-ip", Input).value = f"[/x]{OSC_TITLE}"
        await pilot.pause(0.2)
        shown = str(form.query_one("#e-ip", Label).content)
        assert "[/x]" in shown and "is not an IP address" in shown and "\x1b" not in shown
        clean(app)
        await pilot.press("escape")
        # a plan as a tool printed it: its codes are shown, its markup is text
        app.push_screen(PlanScreen(f"Plan {GROUP_MARKUP}", f"+ create {TASK}\n[link=x]y[/link]"))
        await until(pilot, lambda: "+ create task␛[2J␛[?1049l" in clean(app))
        assert "[link=x]y[/link]" in clean(app) and "Plan g[/x]" in clean(app)


def test_the_last_guard_drops_controls_and_keeps_widths() -> None:
    from rich.segment import Segment
    from rich.style import Style
    from textual.color import Color

    from jamtui.ui.app import NoControls

    red = Style(color="red")
    segments = [Segment("ok "), Segment(f"a{OSC_TITLE}b\u202ec", red),
                Segment("\x1b[?1049l", None, [])]
    out = NoControls().apply(segments, Color(0, 0, 0))
    assert [s.text for s in out] == ["ok ", "a]0;PWNEDbc", "[?1049l"]  # inert text
    assert out[1].style == red
    assert sum(s.cell_length for s in out) == sum(s.cell_length for s in segments)
    clean_segments = [Segment("plain")]
    assert NoControls().apply(clean_segments, Color(0, 0, 0)) is clean_segments


async def test_workflow_screen_shows_tool_output_literally(
        lab_engine: tuple[Lab, Engine], tmp_path: Any) -> None:
    """A tool's output (the journal's screen lines), a step's message and the workflow's
    message go to the screen as text (a stand-in workflow over a real journal: what is tested
    is the drawing, the engine has its own tests)."""
    from types import SimpleNamespace

    from jamtui.ui.workflow_view import WorkflowScreen
    from jamtui.workflows.journal import Journal
    from jamtui.workflows.workflow import StepState

    _lab, engine = lab_engine
    journal = Journal.create(tmp_path, "node-add", {"name": "vs9"})
    journal.show("apply", f"plan {CLEAR_AND_LEAVE}")
    journal.show("apply", OSC_LINK)
    steps = {"apply": StepState("apply", f"Apply {GROUP_MARKUP}", "failed",
                                f"terraform said {OSC_TITLE}[/x]")}
    wf = SimpleNamespace(id="wf1", kind="node-add", params={"name": f"vs{OSC_CLIPBOARD}"},
                         states=steps, state="failed", message="[blink]failed[/blink]",
                         phase="run", live=True, journal=journal,
                         rollback_refusal=lambda: "", observe=lambda fn: (lambda: None))
    app = JamApp(engine, start_engine=False)
    async with app.run_test(size=(160, 40)) as pilot:
        app.push_screen(WorkflowScreen(wf))  # type: ignore[arg-type]
        await until(pilot, lambda: "plan ␛[2J␛[?1049l" in clean(app))
        journal.show("apply", f"more {OSC_TITLE}")
        await until(pilot, lambda: "more ␛]0;PWNED␇" in clean(app))
        text = clean(app)
        assert "node-add vs␛]52;c;" in text and "Apply g[/x]" in text
        assert "terraform said ␛]0;PWNED␇[/x]" in text and "[blink]failed[/blink]" in text


async def test_restart_of_an_allocation_named_with_markup_is_notified(
        lab_engine: tuple[Lab, Engine]) -> None:
    """`r` → `y` on the allocation of group `g[/x]` ended the cockpit with MarkupError from
    notify() (and exit status 0)."""
    lab, engine = lab_engine
    client = nomad.Nomad(address=lab.urls["nomad"], token=lab.secrets.nomad_token, timeout=5)
    client.job.register_job("markup", {"Job": {"ID": "markup", "Type": "service", "TaskGroups": [
        {"Name": GROUP_MARKUP, "Count": 1,
         "Tasks": [{"Name": "t", "Driver": "docker", "Config": {"image": "nginx"}}]}]}})
    app = JamApp(engine)
    async with app.run_test(size=(160, 48), notifications=True) as pilot:  # toasts drawn
        await ready(pilot, app)
        table = pane(app, Kind.ALLOCATION).table
        target = await until(pilot, lambda: next(
            (a for a in engine.store.items(Kind.ALLOCATION) if a.job_id == "markup"
             and a.client_status == "running" and a.id in table._texts), None), timeout=15)
        focus_row(table, target.id)
        await pilot.press("r")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await until(pilot, lambda: any("markup.g[/x][0]" in str(n.message)
                                       for n in app._notifications))
        # the toasts, drawn: "Restart allocation: allocation … (markup.g[/x][0])", then done
        await until(pilot, lambda: "Restart allocation: allocation" in drawn(app)
                    and drawn(app).count("(markup.g[/x][0])") >= 2)
        assert app.is_running
    assert app.return_code in (None, 0)
