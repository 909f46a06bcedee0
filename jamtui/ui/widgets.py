"""Small widgets named for what the user sees: the health bar and a titled live pane."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.widget import Widget
from textual.widgets import Footer, Label, Static
from textual.widgets._footer import FooterKey

from ..model import Health, Kind, Quorum, TLSInfo
from ..plain import BLOCK_LIMIT
from ..plain import line as plain_line
from ..sources.tls import expiring, expiry_words
from ..store import Store
from .columns import History, age
from .keymap import Key
from .live_table import LiveTable

HEALTH_LOOK = {
    Health.OK: ("✓", "green"),
    Health.DEGRADED: ("!", "yellow"),
    Health.DOWN: ("✗", "bold red"),
    Health.UNKNOWN: ("?", "dim"),
}


def quorum_text(q: Quorum, stale: str = "") -> Text:
    """The quorum badge; `stale` (the age of the last answer) when its backend is down."""
    alive, total = len(q.alive), len(q.servers)
    if stale:  # what its backend said last, not what is true now
        seen = f"{alive}/{total}" if q.checked else f"{total} servers"
        return Text(f"{q.system} ? {seen} STALE {stale}", style="dim")
    if not q.has_leader:
        return Text(f"{q.system} ✗ NO LEADER {alive}/{total}", style="bold red")
    tolerance = q.failure_tolerance
    if tolerance is None:  # the token could read no server's health: do not claim any
        return Text(f"{q.system} ? leader {q.leader.split(':')[0]} {total} servers, health "
                    "not checked", style="yellow")
    if tolerance <= 0:
        return Text(f"{q.system} ! {alive}/{total} — one more loss loses quorum",
                    style="bold yellow")
    return Text(f"{q.system} ✓ leader {plain_line(q.leader.split(':')[0])} {alive}/{total}",
                style="green")


def tls_badge(info: TLSInfo | None, now: float) -> Text:
    """Beside a backend: verification off (for as long as it is), a certificate near its end."""
    badge = Text()
    if info is None:
        return badge
    if info.insecure:
        badge.append(" TLS verification off", style="bold red")
    if expiring(info, now):
        left = (info.not_after or 0) - now
        badge.append(" cert expired" if left <= 0 else f" cert ends in {_days(left)}",
                     style="bold red" if left <= 0 else "yellow")
    return badge


def _days(seconds: float) -> str:
    return f"{int(seconds // 86400)} d" if seconds >= 86400 else f"{int(seconds // 3600)} h"


def _shape(text: Text, width: int) -> int | None:
    """How many lines `text` takes in `width` cells when none of its lines wraps; None when one
    would (or the width is not known yet): then the widget's height may change, a relayout."""
    lines = text.plain.split("\n")
    if width <= 0 or any(cell_len(ln) > width for ln in lines):
        return None
    return len(lines)


class HealthBar(Static):
    """Backends (ok / degraded / down) and Consul and Nomad quorum, always on top; the reason
    of every backend that is not ok is written out beneath."""

    DEFAULT_CSS = """
    HealthBar { height: auto; max-height: 4; padding: 0 1; }
    """

    def __init__(self, store: Store, configured: set[str], **kw: Any) -> None:
        super().__init__(**kw)
        self.store = store
        self.configured = configured

    def on_mount(self) -> None:
        self.refresh_health()
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        """Each second (the ages in it move with the clock), while its screen is shown: the
        overview's bar beneath `:allocs` made its line each second for nobody. A change of
        health reaches every bar (the screens' `apply_changes`); a bar shown again has its
        ages back within a second."""
        if self.screen.is_current:
            self.refresh_health()

    def refresh_health(self) -> None:
        line = Text()
        if getattr(self.app, "read_only", False):  # for the whole session: it cannot be lifted
            line.append(" READ-ONLY ", style="bold black on yellow")
            line.append("  ")
        problems = Text()
        now = self.store.clock()  # the store's clock: tests can freeze it
        tls = {t.backend: t for t in self.store.items(Kind.TLS)}
        for b in self.store.backends():
            if b.name not in self.configured and b.health is Health.UNKNOWN:
                continue
            mark, style = HEALTH_LOOK[b.health]
            if b.waiting:  # asked, no answer yet: not "unknown", and certainly not fine
                line.append(f"{b.name} … waiting {now - (b.waiting_since or now):.0f} s  ",
                            style="yellow")
                continue
            line.append(f"{b.name} {mark} {b.health.value}", style=style)
            line.append_text(tls_badge(tls.pop(b.name, None), now))
            line.append("  ")
            if b.health in (Health.DOWN, Health.DEGRADED) and b.last_error:
                when = f" (data {age(now - b.last_success)} old)" if (
                    b.health is Health.DOWN and b.last_success) else ""
                problems.append(f"{b.name}: {plain_line(b.last_error, BLOCK_LIMIT)}{when}\n",
                                style=style)
        for t in tls.values():  # e.g. HAProxy's frontend when its stats are not watched
            if (badge := tls_badge(t, now)).plain:
                line.append(f"{t.backend}", style="dim")
                line.append_text(badge)
                line.append("  ")
        for t in sorted(self.store.items(Kind.TLS), key=lambda t: t.backend):
            if expiring(t, now):
                problems.append(f"{t.backend}: the certificate of {plain_line(t.address)} "
                                f"{expiry_words(t.not_after or 0, now)}; renew it.\n",
                                style="bold red" if (t.not_after or 0) <= now else "yellow")
        quorums = sorted(self.store.items(Kind.QUORUM), key=lambda q: q.system)
        if quorums:
            line.append("│ ", style="dim")
            for q in quorums:
                owner = self.store.backend(q.system)
                stale = ""
                if owner.health is Health.DOWN:
                    stale = age(now - owner.last_success) if owner.last_success else "?"
                line.append_text(quorum_text(q, stale))
                line.append("  ")
        problems.rstrip()
        shown = line if not problems else Text.assemble(line, "\n", problems)
        key = (shown.plain, tuple(shown.spans))
        if key != getattr(self, "_shown", None):  # every poll's report, same words: no relayout
            shape = _shape(shown, self.content_region.width)
            # new words in the same lines ("waiting 12 s" → "13 s"): a repaint, no relayout
            self.update(shown, layout=shape is None or shape != getattr(self, "_shape", None))
            self._shown, self._shape = key, shape


class Holder(Container):
    """A box that places what it holds and draws nothing of its own (`BLANK`: what it holds
    covers it). Textual's compositor draws again, from their caches, every widget whose
    parent's region meets a region repainted: each AGE tick of a table (#17) drew the
    health bar, the footer and each of its keys, the pane's title and the overview's three
    other panes with it. Held, a widget is drawn when its own box is met."""

    BLANK = True
    DEFAULT_CSS = """
    Holder { height: auto; }
    """


class Pane(Vertical):
    """A titled live table; dimmed and labelled stale while its backend is down."""

    DEFAULT_CSS = """
    Pane { border: round $primary-darken-2; height: 1fr; }
    Pane:focus-within { border: round $accent; }
    Pane.-stale { opacity: 60%; border: round $error; }
    Pane > Holder > Label.pane-title { width: 1fr; text-style: bold; padding: 0 1; }
    """

    def __init__(self, kind: Kind, title: str, store: Store, history: History,
                 keymap: tuple[Key, ...], read_only: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.kind = kind
        self.title = title
        self.store = store
        self.table = LiveTable(kind, store, history, keymap=keymap, read_only=read_only)

    def compose(self) -> ComposeResult:
        with Holder():
            yield Label(self.title, classes="pane-title")
        yield self.table

    def on_mount(self) -> None:
        # while the backend has not answered yet, the title counts the seconds
        self._waiting_clock = self.set_interval(1.0, self.refresh_title, pause=True)
        self.refresh_title()

    def on_live_table_loaded(self, _: Any) -> None:
        self.refresh_title()  # the count after a big table's chunked load, not its first chunk

    def refresh_title(self) -> None:
        labels = self.query(Label)
        if not labels:
            return  # not composed yet, or being torn down: a change may land in between
        label = labels.first()
        count = self.table.row_count
        title = Text(f"{self.title} ", style="bold")
        title.append(f"[{count}]", style="dim")
        if self.table.filter_text:
            title.append(f"  /{plain_line(self.table.filter_text)}", style="yellow")
        for refusal in self.store.refusals(self.kind):
            title.append(f"  {plain_line(refusal.message, BLOCK_LIMIT)}", style="yellow")
        stale = self.store.is_stale(self.kind)
        self.set_class(stale, "-stale")
        from ..store import OWNER

        backend = self.store.backend(OWNER[self.kind]) if self.kind in OWNER else None
        if stale and backend is not None:
            if backend.last_success:
                title.append(f"  STALE {age(self.store.clock() - backend.last_success)}: "
                             f"{plain_line(backend.last_error, BLOCK_LIMIT)}", style="bold red")
            else:
                title.append(f"  {backend.name} down, nothing read yet: "
                             f"{plain_line(backend.last_error, BLOCK_LIMIT)}",
                             style="bold red")
        waiting = backend is not None and backend.waiting
        if waiting and backend is not None:
            now = self.store.clock()
            secs = now - (backend.waiting_since or now)
            title.append(f"  waiting for {backend.name} ({secs:.0f} s)", style="yellow")
        clock = getattr(self, "_waiting_clock", None)
        if clock is not None:
            clock.resume() if waiting else clock.pause()
        shown = (title.plain, tuple(title.spans))
        if shown != getattr(self, "_shown_title", None):
            # an unchanged title is not set again: each update re-laid out the whole screen,
            # and so redrew every pane, on every change of any row (most of the idle CPU);
            # a changed one that keeps its one line (a count, the waiting seconds) repaints
            # only itself
            shape = _shape(title, label.content_region.width)
            label.update(title, layout=shape is None
                         or shape != getattr(self, "_title_shape", None))
            self._shown_title, self._title_shape = shown, shape


class KeyFooter(Footer):
    """The footer with the keys used most first (`:` `/` `?`), then the focused object's
    actions, `L` and `q` last: on an 80-column terminal what does not fit is the least used,
    and `?` lists every key."""

    FIRST = ("command_bar", "filter", "help")
    LAST = ("tails", "quit")
    _shown: tuple[Any, ...] | None = None  # the keys the footer was last composed with

    def _keys_now(self) -> tuple[Any, ...]:
        """What the footer shows, as compose would read it."""
        return (self.compact, self.show_command_palette, tuple(
            (b.key, b.description, b.action, enabled, tooltip, b.show)
            for _, b, enabled, tooltip in self.screen.active_bindings.values()))

    def bindings_changed(self, screen: Any) -> None:
        """Composed again only when the keys it shows changed. Footer recomposed (every key
        unmounted, mounted and styled again) at each focus change, table load or screen
        change, whatever changed: two or three times while a screen first appears."""
        if (self._bindings_ready and self.is_attached and screen is self.screen
                and self._shown is not None and self._keys_now() == self._shown):
            return
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        if self._bindings_ready and self.is_attached:
            self._shown = self._keys_now()
        for key in self._keys():
            if isinstance(key, FooterKey) and not key.has_class("-command-palette"):
                # born with the footer's style (Footer binds it to these keys): FooterKey
                # starts compact and the binding set it back at mount, restyling each twice
                key.set_reactive(FooterKey.compact, self.compact)
                key.set_class(self.compact, "-compact", update=False)
            yield key

    def _keys(self) -> list[Widget]:
        def rank(widget: Widget) -> int:
            if widget.has_class("-command-palette"):
                return 99
            action = str(getattr(widget, "action", ""))
            if action in self.FIRST:
                return self.FIRST.index(action)
            if action in self.LAST:
                return 50 + self.LAST.index(action)
            return 10

        return sorted(super().compose(), key=rank)
