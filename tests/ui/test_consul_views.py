"""`:kv` and `:intentions` against the lab through Textual's pilot: each write reaches the
lab (seen with py-consul), a change made meanwhile is refused and shown, deletes ask first
(a folder twice)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from jamtui.engine import Engine
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.ui.app import JamApp
from jamtui.ui.intentions_view import IntentionsScreen, parse_new
from jamtui.ui.kv_view import KVScreen, ValueEditor
from tests.sim.test_consul_api import client
from tests.ui.test_cockpit import text_of, until


def kv_table(app: JamApp) -> Any:
    return app.screen.query_one("#kv-keys", DataTable)


def kv_detail(app: JamApp) -> str:
    return text_of(app.screen.query_one("#kv-detail", Static).content)


def row_keys(table: Any) -> list[str]:
    return [str(k.value) for k in table.rows]


async def open_kv(pilot: Any, app: JamApp, prefix: str = "") -> None:
    await until(pilot, lambda: app.engine.store.backend("consul").health.value == "ok",
                timeout=15)
    await app.push_screen(KVScreen(prefix))
    await until(pilot, lambda: isinstance(app.screen, KVScreen) and kv_table(app).row_count)


async def test_kv_tree_value_holder_and_cas_edit(lab_engine: tuple[Lab, Engine],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    lab, engine = lab_engine
    c = client(lab)
    c.kv.put("app/web/port", "8080", flags=42)
    c.kv.put("app/blob", b"\x1f\x8b\x08\x00\x01\x02")
    sid = c.session.create(name="deployer")
    c.kv.put("app/lock", "me", acquire=sid)
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_kv(pilot, app)
        table = kv_table(app)
        assert {"app/", "jamlab/"} <= set(row_keys(table))
        table.focus()
        table.move_cursor(row=row_keys(table).index("app/"))
        await pilot.press("enter")
        await until(pilot, lambda: row_keys(kv_table(app)) == ["app/blob", "app/lock",
                                                                 "app/web/"])
        table = kv_table(app)
        table.move_cursor(row=0)
        await until(pilot, lambda: "binary value: 6 bytes, gzip" in kv_detail(app))
        table.move_cursor(row=1)
        await until(pilot, lambda: "held by session" in kv_detail(app))
        assert "deployer on" in kv_detail(app)
        table.move_cursor(row=2)
        await pilot.press("enter")
        await until(pilot, lambda: row_keys(kv_table(app)) == ["app/web/port"])
        await until(pilot, lambda: "8080" in kv_detail(app) and "flags" in kv_detail(app))
        assert "42" in kv_detail(app)

        # edit inline; meanwhile someone else writes: refused, shown, nothing lost in Consul
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ValueEditor))
        c.kv.put("app/web/port", "9090", flags=42)
        app.screen.query_one("TextArea").text = "7070"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "changed in Consul since it was read" in kv_detail(app))
        assert c.kv.get("app/web/port")[1]["Value"] == b"9090"
        await until(pilot, lambda: "9090" in kv_detail(app))  # what is there now
        # edit again on the fresh read: written, flags kept
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ValueEditor))
        app.screen.query_one("TextArea").text = "7070"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await until(pilot, lambda: c.kv.get("app/web/port")[1]["Value"] == b"7070")
        assert c.kv.get("app/web/port")[1]["Flags"] == 42

        # a binary value is not edited
        await pilot.press("backspace")
        await until(pilot, lambda: "app/blob" in row_keys(kv_table(app)))
        kv_table(app).move_cursor(row=row_keys(kv_table(app)).index("app/blob"))
        await until(pilot, lambda: "gzip" in kv_detail(app))
        await pilot.press("e")
        await pilot.pause(0.2)
        assert isinstance(app.screen, KVScreen)


async def test_kv_new_and_delete_ask_and_folder_asks_twice(
        lab_engine: tuple[Lab, Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    lab, engine = lab_engine
    c = client(lab)
    c.kv.put("tmp/a", "1")
    c.kv.put("tmp/b", "2")
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_kv(pilot, app, "tmp/")
        await pilot.press("n")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptScreen")
        app.screen.query_one("Input").value = "tmp/c"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ValueEditor))
        app.screen.query_one("TextArea").text = "three"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await until(pilot, lambda: (c.kv.get("tmp/c")[1] or {}).get("Value") == b"three")
        await until(pilot, lambda: "tmp/c" in row_keys(kv_table(app)))

        # a new key that exists already is refused, the old value kept
        await pilot.press("n")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptScreen")
        app.screen.query_one("Input").value = "tmp/a"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ValueEditor))
        app.screen.query_one("TextArea").text = "clobber"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "already exists" in kv_detail(app))
        assert c.kv.get("tmp/a")[1]["Value"] == b"1"

        # delete one key: asked, no keeps it, yes deletes it
        table = kv_table(app)
        table.focus()
        table.move_cursor(row=row_keys(table).index("tmp/b"))
        await until(pilot, lambda: "ModifyIndex" in kv_detail(app))
        await pilot.press("x")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("n")
        await pilot.pause(0.2)
        assert c.kv.get("tmp/b")[1] is not None
        await pilot.press("x")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await until(pilot, lambda: c.kv.get("tmp/b")[1] is None)

        # a folder: asked twice; a no at the second question keeps everything
        await pilot.press("backspace")
        await until(pilot, lambda: "tmp/" in row_keys(kv_table(app)))
        table = kv_table(app)
        table.move_cursor(row=row_keys(table).index("tmp/"))
        await pilot.press("x")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen"
                    and "Really" in text_of(app.screen.query(Static).first().content))
        await pilot.press("n")
        await pilot.pause(0.2)
        assert c.kv.get("tmp/", keys=True)[1]
        await pilot.press("x")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen"
                    and "Really" in text_of(app.screen.query(Static).first().content))
        await pilot.press("y")
        await until(pilot, lambda: not c.kv.get("tmp/", keys=True)[1])


async def test_intentions_list_create_and_delete(lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: engine.store.count(Kind.INTENTION) >= 2, timeout=15)
        await app.push_screen(IntentionsScreen())
        table = app.screen.query_one("#intentions", DataTable)
        await until(pilot, lambda: table.row_count >= 2)
        assert [str(k.value) for k in table.rows][:2] == ["api->db", "*->db"]  # precedence
        await pilot.press("n")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptScreen")
        app.screen.query_one("Input").value = "web api deny no shortcuts"  # type: ignore
        await pilot.press("enter")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await until(pilot, lambda: lab.call(lambda: [
            (i.source, i.destination, i.action, i.description)
            for i in lab.world.intentions.values()
            if i.source == "web"]) == [("web", "api", "deny", "no shortcuts")])
        await until(pilot, lambda: "web->api" in [str(k.value) for k in table.rows])
        table.focus()
        table.move_cursor(row=table.get_row_index("web->api"))
        await pilot.press("x")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        assert "web → api (deny)" in text_of(app.screen.query(Static).first().content)
        await pilot.press("y")
        await until(pilot, lambda: not lab.call(lambda: [
            i for i in lab.world.intentions.values() if i.source == "web"]))


def test_parse_new_intention() -> None:
    assert parse_new("web api DENY") == ("web", "api", "deny", "")
    assert parse_new("* db deny nothing else") == ("*", "db", "deny", "nothing else")
    with pytest.raises(ValueError, match="allow or deny"):
        parse_new("web api maybe")
    with pytest.raises(ValueError, match="SOURCE DESTINATION"):
        parse_new("web api")


async def test_check_history_in_the_service_detail(lab_engine: tuple[Lab, Engine]) -> None:
    """The service detail keeps each check's changes seen this session, with time and
    output; its link opens the last output in full."""
    import asyncio

    from jamtui.ui.check_view import CheckScreen
    from jamtui.ui.screens import DetailScreen
    from tests.ui.test_cockpit import detail_text

    lab, engine = lab_engine
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        def api() -> Any:  # services are written as each answers: api's may come later
            return next((i for i in engine.store.items(Kind.INSTANCE) if i.service == "api"
                         and i.alloc_id and any(c.service_id for c in i.checks)), None)

        await until(pilot, lambda: api() is not None, timeout=15)
        inst = api()
        check = next(c for c in inst.checks if c.service_id)
        await until(pilot, lambda: app.check_history.of(inst.id, check.check_id))
        app.open_detail(Kind.SERVICE, "api")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen) and detail_text(app))
        long_output = "HTTP GET http://x/health: 503 Service Unavailable\n" + "body " * 40
        await asyncio.to_thread(lab.call, lab.world.set_check, inst.node, check.check_id,
                                "critical", long_output)
        await until(pilot, lambda: [t.status for t in app.check_history.of(
            inst.id, check.check_id)][-2:] == ["passing", "critical"])
        body = await until(pilot, lambda: "passing → ✗ critical" in detail_text(app)
                           and detail_text(app))
        assert "503 Service Unavailable" in body
        await asyncio.to_thread(lab.call, lab.world.set_check, inst.node, check.check_id,
                                "passing", "HTTP GET: 200 OK")
        await until(pilot, lambda: "critical → ✓ passing" in detail_text(app))

        from textual.widgets import OptionList

        options = app.screen.query_one(OptionList)
        wanted = f"{Kind.INSTANCE.value}|{inst.id}#check#{check.check_id}"
        options.focus()
        options.highlighted = next(i for i, o in enumerate(options.options) if o.id == wanted)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, CheckScreen))
        shown = text_of(app.screen.query_one("#check-body", Static).content)
        assert "passing → ✗ critical" in shown and "critical → ✓ passing" in shown
        assert "Last output" in shown and "HTTP GET: 200 OK" in shown
        assert "503 Service Unavailable" in shown  # the earlier output, its first line
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))


async def test_kv_from_the_command_bar_and_a_denial_opens_its_intention(
        lab_engine: tuple[Lab, Engine]) -> None:
    lab, engine = lab_engine
    from tests.sim.test_consul_api import raw

    assert raw(lab, "PUT", "/v1/connect/intentions/exact?source=web&destination=api",
               json={"Action": "deny"}).status_code == 200
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: engine.store.count(Kind.ROUTE) > 0
                    and "web->api" in {i.id for i in engine.store.items(Kind.INTENTION)},
                    timeout=15)
        await pilot.press("colon", *"kv", "enter")
        await until(pilot, lambda: isinstance(app.screen, KVScreen)
                    and kv_table(app).row_count > 0)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, KVScreen))
        await pilot.press("colon", *"routes", "enter")
        await until(pilot, lambda: app.screen.name == "routes")
        screen: Any = app.screen
        await until(pilot, lambda: "api.jamfox.dev/" in screen.chains)
        table = screen.query_one("#chains")
        table.focus()
        table.move_cursor(row=table.get_row_index("api.jamfox.dev/"))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, IntentionsScreen))
        assert app.screen.selected_id() == "web->api"  # type: ignore[attr-defined]


async def test_kv_edit_in_editor(lab_engine: tuple[Lab, Engine],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`e` with $EDITOR set: the value in a temporary file, the editor run as an argv (the
    app suspended; here a stand-in for the terminal hand-over), the file written back with
    check-and-set; an editor that fails writes nothing."""
    import contextlib

    lab, engine = lab_engine
    c = client(lab)
    c.kv.put("ed/key", "before")
    monkeypatch.setenv("EDITOR", """sh -c 'printf "after edit" > "$0"'""")
    monkeypatch.delenv("VISUAL", raising=False)
    app = JamApp(engine)
    async with app.run_test(size=(160, 48)) as pilot:
        monkeypatch.setattr(app, "suspend", contextlib.nullcontext)
        await open_kv(pilot, app, "ed/")
        kv_table(app).focus()
        await until(pilot, lambda: "before" in kv_detail(app))
        await pilot.press("e")
        await until(pilot, lambda: c.kv.get("ed/key")[1]["Value"] == b"after edit")
        await until(pilot, lambda: "after edit" in kv_detail(app))
        monkeypatch.setenv("EDITOR", "sh -c 'exit 3'")
        await pilot.press("e")
        await pilot.pause(0.5)
        assert c.kv.get("ed/key")[1]["Value"] == b"after edit"
        assert not list(Path(tempfile.gettempdir()).glob("jamtui-kv-*"))  # no file left


async def test_read_only_offers_no_writes(lab_engine: tuple[Lab, Engine],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """--read-only: `e`, `n` and `x` in :kv and :intentions do nothing (keymap.usable)."""
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    lab, engine = lab_engine
    client(lab).kv.put("ro/key", "v")
    app = JamApp(engine, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_kv(pilot, app, "ro/")
        kv_table(app).focus()
        await until(pilot, lambda: "ModifyIndex" in kv_detail(app))
        screen = app.screen
        for key in ("e", "n", "x"):
            await pilot.press(key)
            await pilot.pause(0.2)
            assert app.screen is screen, key
        assert screen.check_action("edit", ()) is False
        assert screen.check_action("reload", ()) is True
        await pilot.press("escape")
        await app.push_screen(IntentionsScreen())
        screen = app.screen
        for key in ("n", "x"):
            await pilot.press(key)
            await pilot.pause(0.2)
            assert app.screen is screen, key
    assert client(lab).kv.get("ro/key")[1]["Value"] == b"v"


def test_kv_and_intention_keys_can_be_rebound() -> None:
    from jamtui.ui.keymap import screen_binding_ids, with_overrides

    assert {"kv_edit", "kv_new", "kv_delete", "intention_new", "intention_delete",
            "kv_editor_write", "check_close"} <= screen_binding_ids()
    with_overrides({"kv_edit": "E"})  # known: no error
