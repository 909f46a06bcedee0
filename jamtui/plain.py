"""Every string from a backend, an inventory, a tool's output or a file, made displayable.

Anyone who can submit a Nomad job or register a Consul service controls strings that jamtui
draws on the operator's terminal. They are data: escape sequences and other controls are
shown visibly (ESC as ␛, C0 controls as their control pictures, C1 controls, DEL and bidi
overrides as ``\\x9b``/``\\u202e``), never interpreted; markup in them is never parsed; a
10,000-character name is cut. Pure (Rich only), so every layer can use it: the UI and the
headless commands call the same functions where text is drawn or printed; the model keeps
the true data.
"""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape
from rich.text import Span, Text

LINE_LIMIT = 256  # characters of one name/cell/notification line
BLOCK_LIMIT = 4000  # characters of a multi-line body (check output, an error)


def _table(single_line: bool) -> dict[int, str]:
    table: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20)}  # ␀ … ␟ (ESC is ␛)
    table[0x7F] = "␡"
    for c in range(0x80, 0xA0):  # C1 controls: 0x9b is a one-byte CSI on some terminals
        table[c] = f"\\x{c:02x}"
    for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)):
        table[c] = f"\\u{c:04x}"  # bidi marks and overrides: would reorder what follows
    table[0x09] = " " if single_line else "    "
    if not single_line:
        del table[0x0A]  # a newline stays a newline in a body
    return table


_LINE = _table(single_line=True)
_BLOCK = _table(single_line=False)
_LOG = {**_BLOCK}
del _LOG[0x09]  # a log line keeps its tabs (the viewer expands them)
_UNSAFE = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_LINE)) + "]")
_CRLF = re.compile("\r\n")
# what a drawn line must never carry (the UI's last guard drops it): every control but none
# of the characters that only look odd
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _as_str(value: Any) -> str:
    if isinstance(value, Text):
        return value.plain
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return value if isinstance(value, str) else str(value)


def _cut(s: str, limit: int | None) -> str:
    if limit is not None and len(s) > limit:
        return s[:limit] + f"… (+{len(s) - limit} chars)"
    return s


def is_plain(s: str, limit: int = LINE_LIMIT) -> bool:
    """True when `s` shows as it is in one line (the fast path of a table cell)."""
    return len(s) <= limit and not _UNSAFE.search(s)


def line(value: Any, limit: int | None = LINE_LIMIT) -> str:
    """One line of displayable text: controls (newline too) shown visibly, cut at `limit`."""
    s = _cut(_as_str(value), limit)
    return s.translate(_LINE) if _UNSAFE.search(s) else s


def block(value: Any, limit: int | None = BLOCK_LIMIT) -> str:
    """Several lines of displayable text (newlines kept, CRLF as newline), cut at `limit`."""
    s = _cut(_as_str(value), limit)
    if _UNSAFE.search(s):
        s = _CRLF.sub("\n", s).translate(_BLOCK)
    return s


def text(value: Any, style: str = "", *, limit: int | None = LINE_LIMIT,
         multiline: bool = False) -> Text:
    """A Rich Text of the value, shown literally (no markup parsed, no controls)."""
    if isinstance(value, Text):
        return safe(value, limit=limit, multiline=multiline)
    return Text(block(value, limit) if multiline else line(value, limit), style=style)


def markup(value: Any, limit: int | None = LINE_LIMIT) -> str:
    """The value as one line, escaped for a place where console markup is built."""
    return escape(line(value, limit))


def safe(value: Text, *, limit: int | None = LINE_LIMIT, multiline: bool = False) -> Text:
    """The same Text with controls shown visibly and cut at `limit`, styles kept."""
    s = value.plain
    if not _UNSAFE.search(s) and (limit is None or len(s) <= limit):
        return value
    table = _BLOCK if multiline else _LINE
    parts: list[str] = []
    offsets = [0] * (len(s) + 1)
    pos = 0
    for i, ch in enumerate(s):
        offsets[i] = pos
        rep = table.get(ord(ch), ch)
        parts.append(rep)
        pos += len(rep)
    offsets[len(s)] = pos
    new = Text("".join(parts), style=value.style, justify=value.justify,
               no_wrap=value.no_wrap, end=value.end,
               spans=[Span(offsets[sp.start], offsets[sp.end], sp.style)
                      for sp in value.spans])
    if limit is not None and len(new.plain) > limit:
        extra = len(new.plain) - limit
        new = new[:limit]
        new.append(f"… (+{extra} chars)", style="dim")
    return new


def cells(row: Any, limit: int | None = LINE_LIMIT) -> list[Text]:
    """A row of table cells, each shown literally."""
    return [text(c, limit=limit) for c in row]


# -- ANSI in logs ---------------------------------------------------------------------------

# Any escape sequence: CSI (ESC [ … final), OSC (ESC ] … BEL or ST), DCS/SOS/PM/APC strings,
# and two-character escapes. Only SGR (CSI … m: colours and text styles) may reach a renderer.
_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b[\]PX^_].*?(?:\x07|\x1b\\|$)"  # OSC / DCS / SOS / PM / APC, to BEL or ST
    r"|\x1b[ -/]*[0-~]"  # two-character escapes (ESC c resets the terminal)
    r"|\x9b[0-?]*[ -/]*[@-~]",  # one-byte CSI
    re.DOTALL,
)
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def sgr_only(s: str) -> str:
    """Keep SGR sequences (colour), remove every other escape sequence whole (titles,
    clipboard, hyperlinks, cursor and screen controls); leftover controls shown visibly."""
    if "\x1b" not in s and "\x9b" not in s:
        return s.translate(_LOG) if _UNSAFE.search(s) else s
    last = 0
    out: list[str] = []
    for m in _ESCAPE.finditer(s):
        out.append(s[last:m.start()].translate(_LOG))
        if _SGR.fullmatch(m.group(0)):
            out.append(m.group(0))
        last = m.end()
    out.append(s[last:].translate(_LOG))
    return "".join(out)


def log_line(s: str) -> str:
    """A log line without escape sequences' effects: controls but tab shown visibly."""
    return s.translate(_LOG) if _UNSAFE.search(s) else s


def no_escapes(s: str) -> str:
    """Remove every escape sequence whole (SGR too); leftover controls shown visibly."""
    return _ESCAPE.sub("", s).translate(_LOG)
