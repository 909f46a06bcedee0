"""Commands and navigation (#14): `:` with Tab and aliases, views that switch rather than
stack, `-`, no key lost after `/` or `:`, `?` per screen, the read-only badge. From the fixed
store of the snapshot tests: no lab, no clocks."""

from __future__ import annotations

from typing import Any

from textual import events

from jamtui.ui.screens import (
    ALIASES,
    VIEW_ALIASES,
    CommandScreen,
    DetailScreen,
    HelpScreen,
    complete_view,
    resolve_view,
    view_names,
)
from tests.ui.test_cockpit import until
from tests.ui.test_snapshots import app as fixed_app


def names(app: Any) -> list[str]:
    return [s.name or type(s).__name__ for s in app.screen_stack[1:]]


def test_every_alias_names_one_view_and_none_hides_a_view() -> None:
    views = set(view_names())
    assert set(VIEW_ALIASES) <= views
    every = [a for aliases in VIEW_ALIASES.values() for a in aliases]
    assert len(every) == len(set(every)), "an alias given to two views"
    assert not views & set(ALIASES), "an alias that is another view's name"
    for alias in ("vm", "a", "al", "svc", "j", "no", "hv", "rt"):
        assert resolve_view(alias) in views, alias
    assert resolve_view(":AL") == "allocs"
    assert complete_view("al") == "allocs" and complete_view("se") == "services"
    assert complete_view("zz") is None and complete_view("") is None


async def test_tab_accepts_the_completion_and_aliases_go_to_their_view() -> None:
    app = fixed_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("colon", "a", "l", "tab")
        assert isinstance(app.screen, CommandScreen)
        assert app.screen.query_one("#command").value == "allocs"
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.name == "allocs")
        for typed, view in (("svc", "services"), ("j", "jobs"), ("no", "nodes"),
                            ("hv", "hv"), ("vm", "vms")):
            await pilot.press("colon", *typed, "enter")
            await until(pilot, lambda v=view: app.screen.name == v)
        await pilot.press("colon", *"servi", "enter")  # the suggestion shown is taken
        await until(pilot, lambda: app.screen.name == "services")


async def test_views_switch_details_stack_and_minus_toggles() -> None:
    app = fixed_app()
    async with app.run_test(size=(160, 48)) as pilot:
        for view in ("allocs", "vms", "jobs"):
            await pilot.press("colon", *view, "enter")
            await until(pilot, lambda v=view: app.screen.name == v)
        assert names(app) == ["overview", "jobs"]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen.name == "overview")
        assert names(app) == ["overview"]
        await pilot.press("minus")  # the view shown before: jobs
        await until(pilot, lambda: app.screen.name == "jobs")
        await pilot.press("minus")
        await until(pilot, lambda: app.screen.name == "overview")
        await pilot.press("colon", *"vms", "enter")
        await until(pilot, lambda: app.screen.name == "vms")
        table = app.screen.panes[0].table
        await until(pilot, lambda: table.row_count > 0)
        table.focus()
        await pilot.press("enter")  # a detail stacks on its view
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert names(app)[:2] == ["overview", "vms"] and len(names(app)) == 3
        await pilot.press("minus")  # the previous view leaves the detail too
        await until(pilot, lambda: app.screen.name == "overview")
        await pilot.press("minus")
        await until(pilot, lambda: app.screen.name == "vms")
        assert names(app) == ["overview", "vms"]


def burst(app: Any, keys: str) -> None:
    """Every key at once, as a pasted line or a practised hand types them: all are in the
    app's queue before the first is handled (Pilot's `press` waits between keys)."""
    for char in keys:
        key = {"/": "slash", ":": "colon", "\n": "enter", "-": "minus",
               "\x1b": "escape"}.get(char, char)
        app.post_message(events.Key(key, None if key in ("enter", "escape") else char))


async def test_keys_typed_at_once_after_slash_and_colon_all_reach_the_input() -> None:
    app = fixed_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("colon", *"allocs", "enter")
        await until(pilot, lambda: app.screen.name == "allocs")
        table = app.screen.panes[0].table
        await until(pilot, lambda: table.row_count == 4)
        table.focus()
        await pilot.pause()
        burst(app, "/web[2")
        await until(pilot, lambda: table.filter_text == "web[2")
        assert table.row_count == 1
        await pilot.press("escape")
        await until(pilot, lambda: table.filter_text == "")
        burst(app, ":vms\n")
        await until(pilot, lambda: app.screen.name == "vms")
        assert [s.name for s in app.screen_stack[1:]] == ["overview", "vms"]


async def test_keys_after_the_enter_or_esc_that_closes_the_bar_reach_the_next_screen() -> None:
    """`:jobs⏎/web` in one burst: the keys after Enter wait for the view it switches to."""
    app = fixed_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        burst(app, ":allocs\n/web[1")
        await until(pilot, lambda: app.screen.name == "allocs")
        table = app.screen.panes[0].table
        await until(pilot, lambda: table.filter_text == "web[1")
        assert not app.screen_stack[1].panes[0].table.filter_text  # not the overview's
        await pilot.press("enter")  # keep the filter
        await until(pilot, lambda: table.has_focus)
        burst(app, ":zz\x1b-")  # a `:` given up with Esc, then `-`: the view before allocs
        await until(pilot, lambda: app.screen.name == "overview")
        assert app._typeahead is None and len(app.screen_stack) == 2


class Quiet:
    """A follower with nothing to say."""

    def lines(self) -> Any:
        return iter(())

    def stop(self) -> None:
        pass


async def help_rows(pilot: Any, app: Any) -> dict[str, str]:
    """`?` on the screen shown: its rows, key → what it does (a Key's keys joined by " / ")."""
    await pilot.press("question_mark")
    await until(pilot, lambda: isinstance(app.screen, HelpScreen))
    rows = {k.keys: k.description for k in app.screen.keys}
    await pilot.press("escape")
    await until(pilot, lambda: not isinstance(app.screen, HelpScreen))
    return rows


def described(screen_cls: type) -> set[str]:
    return {b.description for b in screen_cls.BINDINGS if b.description}


async def test_help_lists_the_keys_of_the_screen_it_is_opened_on(tmp_path: Any) -> None:
    from jamtui.ui.log_view import LogScreen
    from jamtui.ui.workflow_view import WorkflowScreen
    from jamtui.workflows.journal import Journal
    from jamtui.workflows.workflow import Step, Workflow

    app = fixed_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        overview = await help_rows(pilot, app)
        # the focused pane's keys, the other panes' object keys, the global ones
        assert {"/", ":", "-", "?", "L", "q", "esc", "R", "r", "D"} <= set(overview)
        assert overview["-"] == "previous view" and overview["R"] == "reboot"

        app.open_tail(lambda: LogScreen("quiet", [("q", lambda _s: Quiet())]))
        await until(pilot, lambda: isinstance(app.screen, LogScreen))
        logs = await help_rows(pilot, app)
        assert described(LogScreen) <= set(logs.values()), logs
        assert logs["f"] == "follow" and logs["esc"] == "back"  # its own, not global
        assert "reboot" not in logs.values()  # no other screen's keys
        assert ":" in logs and "?" in logs  # the global keys still reach it
        burst(app, "/err")  # the viewer's search bar gets every key typed with its `/`
        await until(pilot, lambda: app.screen.query_one("#log-input").value == "err")
        await pilot.press("escape")
        await pilot.press("x")
        await until(pilot, lambda: not isinstance(app.screen, LogScreen))

        journal = Journal.create(tmp_path, "node-add", {"name": "vs9"})
        flow = Workflow("node-add", {"name": "vs9"}, [Step("one", "one", lambda _c: None)],
                        journal)
        app.push_screen(WorkflowScreen(flow))
        await until(pilot, lambda: isinstance(app.screen, WorkflowScreen))
        steps = await help_rows(pilot, app)
        assert described(WorkflowScreen) <= {d.removesuffix(" (not now)")
                                             for d in steps.values()}, steps
        assert steps["c"] == "cancel (not now)"  # a pending workflow here: nothing to cancel


async def test_read_only_shows_a_badge_and_a_refused_key_says_why() -> None:
    app = fixed_app()
    app.read_only = True
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "READ-ONLY" in str(app.screen.query_one("#health").render())
        table = next(p for p in app.screen.panes if p.kind.value == "vms").table
        await until(pilot, lambda: table.row_count > 0)
        table.focus()
        await pilot.press("X")  # stop (hard): refused, in words
        await until(pilot, lambda: any("started with --read-only" in n.message
                                       for n in app._notifications))
        assert type(app.screen).__name__ != "ConfirmScreen"
        await pilot.press("enter")  # the detail keeps the badge and refuses the same way
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert "READ-ONLY" in str(app.screen.query_one("#health").render())
        app.clear_notifications()
        await pilot.press("R")
        await until(pilot, lambda: any("reboot is off" in n.message
                                       for n in app._notifications))
        rows = await help_rows(pilot, app)
        assert "R" not in rows and "l" in rows  # help lists what works: logs, not reboot


async def test_the_list_of_open_tails_is_drawn_below_the_header() -> None:
    from jamtui.ui.log_view import LogScreen, TailsScreen

    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        health = app.screen.query_one("#health")
        for title in ("one", "two"):
            app.open_tail(lambda t=title: LogScreen(t, [("q", lambda _s: Quiet())]))
            await until(pilot, lambda t=title: getattr(app.screen, "title_text", "") == t)
            await pilot.press("escape")
            await until(pilot, lambda: app.screen.name == "overview")
        await pilot.press("L")
        await until(pilot, lambda: isinstance(app.screen, TailsScreen))
        await pilot.pause()
        top = min(w.region.y for w in app.screen.children)
        assert top >= health.region.bottom > 0, (top, health.region)
        await pilot.press("enter")  # the first tail, on top of the overview
        await until(pilot, lambda: isinstance(app.screen, LogScreen))
        await pilot.press("L")  # from a tail: below its title line
        await until(pilot, lambda: isinstance(app.screen, TailsScreen))
        await pilot.pause()
        assert min(w.region.y for w in app.screen.children) >= 1
