"""jamtui.plain: a backend's strings are data, shown literally (issue #12 §1)."""

from __future__ import annotations

import io
import re

from rich.console import Console
from rich.text import Text

from jamtui import plain

# The hostile strings tried in every view (tests/ui/test_hostile.py uses the same).
OSC_TITLE = "\x1b]0;PWNED\x07"
OSC_LINK = "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
OSC_CLIPBOARD = "\x1b]52;c;cm0gLXJmIC8K\x07"
CLEAR_AND_LEAVE = "\x1b[2J\x1b[H\x1b[?1049l"
MARKUP = ["g[/x]", "[link=http://evil.example/]x[/link]", "[blink]b[/blink]", "[/v1/jobs]"]
HOSTILE = [OSC_TITLE, OSC_LINK, OSC_CLIPBOARD, CLEAR_AND_LEAVE, *MARKUP,
           "\u202eevil", "nul\x00del\x7fcsi\x9b31m", "a\rb\nc\td"]
CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printed(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=200,
            highlight=False).print(
        renderable)
    return out.getvalue()


def test_every_hostile_string_becomes_one_visible_line() -> None:
    for s in HOSTILE:
        shown = plain.line(s)
        assert not CONTROL.search(shown) and "\t" not in shown, repr(shown)
    assert plain.line(OSC_TITLE) == "␛]0;PWNED␇"
    assert plain.line(CLEAR_AND_LEAVE) == "␛[2J␛[H␛[?1049l"
    assert plain.line("\u202eevil") == "\\u202eevil"
    assert plain.line("a\nb") == "a␊b"
    assert plain.line("g[/x]") == "g[/x]"  # markup is left as written: it is shown, not parsed


def test_texts_print_literally_without_escape_codes_of_their_own() -> None:
    for s in HOSTILE:
        out = printed(plain.text(s, "red"))
        # only the console's own SGR colour codes: no OSC, no screen or cursor control
        assert not re.search(r"\x1b(?!\[[0-9;]*m)", out), repr(out)
    assert "[link=http://evil.example/]x[/link]" in printed(plain.text(MARKUP[1]))
    assert "\x1b[5m" not in printed(plain.text(MARKUP[2]))  # no blink
    assert plain.markup("[/v1/jobs]") == "\\[/v1/jobs]"
    assert "[/v1/jobs]" in printed(plain.markup("[/v1/jobs]"))


def test_long_strings_are_cut_and_styles_survive() -> None:
    name = "x" * 10_000
    assert len(plain.line(name)) < 300 and plain.line(name).endswith("(+9744 chars)")
    assert len(plain.block(name * 2)) < plain.BLOCK_LIMIT + 30
    styled = Text.assemble(("ok ", "green"), (f"bad{OSC_TITLE}", "red"), (name, "blue"))
    safe = plain.safe(styled)
    assert safe.plain.startswith("ok bad␛]0;PWNEDx")  # (Rich's Text itself drops BEL)
    assert [(s.start, s.end, s.style) for s in safe.spans[:2]] == [
        (0, 3, "green"), (3, 15, "red")]
    assert len(safe.plain) < 300
    assert plain.safe(Text("clean", "red")).plain == "clean"


def test_a_body_keeps_its_lines() -> None:
    body = "line one\r\nline two\x1b[2J\n\tthree"
    assert plain.block(body) == "line one\nline two␛[2J\n    three"
    assert plain.text(body, multiline=True).plain.count("\n") == 2


def test_logs_keep_colour_only() -> None:
    line = (f"\x1b[31mred\x1b[0m {OSC_TITLE}{CLEAR_AND_LEAVE}{OSC_LINK} {OSC_CLIPBOARD}"
            "\x1bc end\tx\x07")
    kept = plain.sgr_only(line)
    assert kept == "\x1b[31mred\x1b[0m click  end\tx␇"
    assert plain.no_escapes(line) == "red click  end\tx␇"
    assert plain.sgr_only("plain\ttext") == "plain\ttext"
    # invalid UTF-8 from a log or a file: replaced, never raised
    assert plain.line(b"ok \xff\xfe \x1b[2J") == "ok \ufffd\ufffd ␛[2J"
