"""The cockpit: one Textual app over the engine's store.

Sources write the store from their threads; the app collects their change events and applies
them on its own loop, one batch per message, so a table updates the rows that changed and
nothing blocks the screen. Actions run in thread workers and report through notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, on
from textual.app import App
from textual.color import Color
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.driver import Driver
from textual.filter import ANSIToTruecolor, LineFilter
from textual.fuzzy import Matcher
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.signal import Signal
from textual.timer import Timer
from textual.widgets import Input
from textual.worker import NoActiveWorker, get_current_worker

from .. import heap
from ..actions import ActionError, actions_for, ask, describe, find
from ..check_history import CheckHistory
from ..engine import Engine
from ..model import Kind
from ..plain import CONTROLS, LINE_LIMIT, block, line
from ..store import Change
from .columns import History
from .driver import driver_for
from .inbox import Inbox
from .keymap import KEYMAP, READ_ONLY_WHY, Key, bind, for_scopes, usable
from .keymap import binding as binding_of
from .kinds import NAMED_KINDS
from .messages import (
    CloseTail,
    GoToView,
    OpenDetail,
    OpenIntention,
    OpenTail,
    RunAction,
    SwitchTail,
)
from .screens import (
    VIEWS,
    CommandScreen,
    ConfirmScreen,
    DetailScreen,
    HelpScreen,
    LabScreen,
    OverviewScreen,
    PromptScreen,
    ViewScreen,
    resolve_view,
    view_names,
)

if TYPE_CHECKING:
    from textual.screen import ModalScreen, Screen

    from ..workflows.node import NodeWorkflows

# actions that open an input; the keys typed right after theirs are held for it (on_event)
OPENS_INPUT = frozenset({"command_bar", "filter", "search", "save"})
TYPEAHEAD_WAIT = 5.0  # seconds held keys wait for the input before going where they would
ASK_SLICE = 0.1  # seconds a worker waits for an answer before checking it should stop
# thread workers run in the loop's default executor, min(32, cores + 4) threads by default;
# log pumps and readers live as long as their screens, so the pool must not run out (on 2
# cores a workflow's five step logs and its screen's reader would leave one log waiting)
WORKER_THREADS = 256
# seconds after every backend's first answer before the heap is frozen (see `_freeze_heap`)
HEAP_SETTLE = 5.0
# seconds after every backend's first answer before the first frame counts as drawn (the
# first picture's changes applied and painted; Fabio's background pass waits for it)
FIRST_FRAME_SETTLE = 1.0



class StoreChanged(Message):
    """Some change events are waiting in the app's buffer."""


class LabCommands(Provider):
    """Ctrl+P: every view, every action on the selection, and every object by name."""

    def _entries(self) -> list[tuple[str, Any, str]]:
        app: JamApp = self.app  # type: ignore[assignment]
        out: list[tuple[str, Any, str]] = [
            (f"Go to {title} (:{name})", partial(app.go_to_view, name), "view")
            for name, (_, title) in VIEWS.items()
        ]
        out.append(("Go to routes: host → instance chains (:routes)",
                    partial(app.go_to_view, "routes"), "view"))
        out.append(("Go to workflows: node add/remove, running and past (:workflows)",
                    partial(app.go_to_view, "workflows"), "view"))
        out.append(("Go to events: one timeline of Nomad, Consul, Proxmox and workflows "
                    "(:events)", partial(app.go_to_view, "events"), "view"))
        out.append(("Go to Consul key/value (:kv)", partial(app.go_to_view, "kv"), "view"))
        out.append(("Go to Consul intentions (:intentions)",
                    partial(app.go_to_view, "intentions"), "view"))
        out.append(("Go to overview", partial(app.go_to_view, "overview"), "view"))
        out.append(("Go to deployments: Nomad deployments, promote/fail (:deployments)",
                    partial(app.go_to_view, "deployments"), "view"))
        out.append(("Go to namespaces: the Nomad scope (:ns)", partial(app.go_to_view, "ns"),
                    "view"))
        if not app.read_only:
            from .nomad_views import ask_job_file

            out.append(("Plan and run a Nomad job file", partial(ask_job_file, app), "action"))
        for kind, word in NAMED_KINDS.items():
            actions = [a for a in actions_for(kind) if usable(f"act({a.name!r})", app.read_only)]
            for obj in app.store.items(kind):
                label = line(getattr(obj, "name", "") or str(obj.id))
                if kind is Kind.VM:
                    label = f"{obj.vmid} {line(obj.name)}"
                elif kind is Kind.ALLOCATION:
                    label = f"{line(obj.name)} {obj.short_id}"
                out.append((f"{word} {label}", partial(app.open_detail, kind, str(obj.id)),
                            "open detail"))
                out += [(f"{a.label}: {word} {label}", partial(app.request_action, a.name, obj),
                         "action") for a in actions if a.applies(obj)]
        return out

    async def discover(self) -> Hits:
        for text, callback, help_text in self._entries()[: len(VIEWS) + 1]:
            yield DiscoveryHit(Content(text), callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self._entries():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, _highlight(matcher, text), callback, text=text,
                          help=help_text)


def _highlight(matcher: Matcher, text: str) -> Content:
    """Matcher.highlight parses its candidate as markup; a name is not markup."""
    content = Content(text)
    score, offsets = matcher.fuzzy_search.match(matcher.query, text)
    for offset in offsets if score else ():
        if not text[offset].isspace():
            content = content.stylize(matcher.match_style, offset, offset + 1)
    return content


def _typed_into(widget: Any) -> bool:
    """An input or a text area (`:kv`'s editor). TextArea's module (its document, themes:
    ~40 ms of the start) is imported by the screen that uses it: until then none exists."""
    if isinstance(widget, Input):
        return True
    text_area = sys.modules.get("textual.widgets._text_area")
    return text_area is not None and isinstance(widget, text_area.TextArea)


# true-colour styles `NoControls` keeps (by the style's identity) before it starts again
TRUECOLOR_STYLES = 4096


class NoControls(LineFilter):
    """The last guard before the terminal: a control character (ESC, BEL, C1, bidi) that
    reached a drawn line anyway is dropped (each is zero cells wide, so nothing moves).

    It runs after Textual's own filters (`before`: ANSIToTruecolor, ...) as one filter: Textual
    applies each filter to every line of every widget it draws in a frame (looked up in each
    line's cache when the line was filtered before, a new line made when not), and an AGE
    tick's frame draws some 200 lines of the widgets around the changed cells: one filter
    a line, not two (#17)."""

    def __init__(self, before: Sequence[LineFilter] = ()) -> None:
        super().__init__()
        self.before = tuple(before)
        # Textual's ANSI filter alone before the guard (a terminal without a true-colour
        # theme of its own: the usual case): its work is done here, each style's true-colour
        # style kept by the style object's identity (Textual's own `lru_cache` hashes the
        # style and the background's Rich colour for each segment of each line: most of an
        # AGE tick's filtering, whose lines keep their cells' style objects)
        self._truecolor = (self.before[0] if len(self.before) == 1
                           and type(self.before[0]) is ANSIToTruecolor else None)
        self._styles: dict[int, tuple[Style, Color, Style]] = {}

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        if self._truecolor is not None:
            segments = self._to_truecolor(self._truecolor, segments, background)
            if not CONTROLS.search("".join([seg.text for seg in segments])):
                return segments
        else:
            for first in self.before:
                segments = first.apply(segments, background)
            if not any(CONTROLS.search(seg.text) for seg in segments if not seg.control):
                return segments
        return [seg if seg.control else Segment(CONTROLS.sub("", seg.text), seg.style)
                for seg in segments]

    def _to_truecolor(self, truecolor: ANSIToTruecolor, segments: list[Segment],
                      background: Color) -> list[Segment]:
        """`truecolor.apply(segments, background)`, segment for segment (its style by
        `truecolor_style`, no control), each style looked up by identity."""
        styles = self._styles
        out = []
        for segment in segments:
            text, style, control = segment
            if style is None:
                new = None
            else:
                kept = styles.get(id(style))
                if kept is None or kept[0] is not style or kept[1] != background:
                    if len(styles) >= TRUECOLOR_STYLES:
                        styles.clear()
                    kept = styles[id(style)] = (style, background, truecolor.truecolor_style(
                        style, background.rich_color))
                new = kept[2]
            # a style already in true colour is the same style: the same segment
            out.append(segment if new is style and control is None
                       else Segment(text, new, None))
        return out


class JamApp(App[None]):
    CSS_PATH = str(files("jamtui.styles").joinpath("jamtui.tcss"))
    TITLE = "jamtui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    COMMANDS = App.COMMANDS | {LabCommands}

    @property
    def _background_screens(self) -> list[Screen[Any]]:
        """The screens that show through the top one: none under an opaque screen. Textual
        counts the screen just below as visible whatever the top's background, so the
        overview under `:allocs` kept drawing its changes (stats, events, its footer), and
        each of its repaints was forwarded to the view on top as a repaint of the same
        region: a whole-screen render of `:allocs` every couple of seconds (#17). Hidden, it
        keeps its rows up to date and is drawn whole when it is shown again."""
        stack = self._screen_stack
        if stack and stack[-1].styles.background.a == 1:
            return []
        return list(super()._background_screens)

    def __init__(self, engine: Engine, *, read_only: bool = False,
                 keymap: tuple[Key, ...] = KEYMAP, start_engine: bool = True,
                 keys: Mapping[str, str] | None = None) -> None:
        """`keys`: the config's [keys] table (binding id → keys); `keymap` is the key table
        with it applied (`keymap.with_overrides`), the screens' own bindings take it through
        `App.set_keymap`."""
        super().__init__()
        if keys:
            self.set_keymap(dict(keys))
        self.engine = engine
        self.store = engine.store
        self.read_only = read_only
        self.keymap = keymap
        self.start_engine = start_engine
        self.configured = set(engine.sources)
        self.history = History()
        self._check_history = CheckHistory()  # each check's changes seen this session
        # before the first frame: the instances seen, with when (see `check_history`)
        self._history_backlog: list[tuple[float, list[Any]]] | None = []
        from .nomad_views import StatsPoller

        self.stats_poller = StatsPoller(self)  # alloc/node stats, only for what is shown
        self.namespace_scope = "*"  # `:ns`: the namespace the Nomad tables show
        self._view_trail: list[str] = []  # the `:views` shown, for `-`
        self._typeahead: list[events.Event] | None = None  # keys held for an opening input
        self._typeahead_timer: Timer | None = None
        self._closed_input: Any = None  # the input an Enter/Esc among held keys closed
        self._command_open = False  # the `:` bar is up, or its answer not yet acted on
        self.table_sorts: dict[str, tuple[str, bool]] = {}  # each view's sort, this session
        # source threads put change events; one StoreChanged message per batch takes them
        self._changes: Inbox[Change] = Inbox(wake=lambda: self.post_message(StoreChanged()))
        self._unsubscribe: Any = None
        self.tails: dict[str, Any] = {}  # open log viewers, by name, following in the background
        self._ssh: Any = None
        # the guard with Textual's filters before it, by the filters on (`get_line_filters`)
        self._no_controls: dict[tuple[LineFilter, ...], tuple[LineFilter]] = {}
        # store changes, by kind, for the screens that subscribe on mount
        self.store_changed: Signal[dict[Kind, set[str]]] = Signal(self, "store-changed")
        self.crash: str = ""  # the one line said when an unexpected exception ended the app
        for key in for_scopes(keymap, {"global"}):
            if key.action not in ("back",):
                bind(self._bindings, key)

    # -- life ----------------------------------------------------------------------------------

    def get_driver_class(self) -> type[Driver]:
        """Textual's choice, with its Linux driver's input thread made to sleep while idle
        (`ui/driver.py`, #17)."""
        return driver_for(super().get_driver_class())

    async def _on_resize(self, event: events.Resize) -> None:
        """A resize to the size the app already has is no resize. Textual (8.x) keeps it
        anyway and hands it to the screens at the next idle moment, which lay out and draw
        every widget again: at start the terminal (tmux) reports its size a second time, and
        at 5,000 allocations that whole-screen layout came right after the first picture was
        applied, before the first full frame (0.1-0.2 s of it, #17)."""
        if self._size is not None and event.size == self._size:
            event.stop()
            event.prevent_default()  # Textual calls App._on_resize too (each class's handler)

    def get_line_filters(self) -> Sequence[LineFilter]:
        """Textual's filters that are on, then the guard (`NoControls`), as one filter: the
        same object while the same filters are on (Textual keeps each line's filtered copy
        under the filter)."""
        before = tuple(super().get_line_filters())
        filters = self._no_controls.get(before)
        if filters is None:
            filters = self._no_controls[before] = (NoControls(before),)
        return filters

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notification is plain text: its words often carry a backend's names."""
        super().notify(block(message, 2 * LINE_LIMIT), title=line(title), severity=severity,
                       timeout=timeout, markup=False)

    def _fatal_error(self) -> None:
        """An unexpected exception: the terminal is restored, one line is said (Textual prints
        it as the app ends and `run_cockpit` exits 1), the traceback goes to a private file;
        never locals (they may hold tokens) on the screen."""
        import os
        import sys
        import tempfile
        import traceback

        exc = self._exception or sys.exc_info()[1]
        where = ""
        with contextlib.suppress(OSError):
            fd, where = tempfile.mkstemp(prefix="jamtui-crash-", suffix=".txt")
            with os.fdopen(fd, "w") as fh:
                fh.write("".join(traceback.format_exception(exc)) if exc else "")
        self.crash = (f"jamtui: unexpected error: {type(exc).__name__}: {line(exc)}"
                      + (f" (traceback in {where})" if where else ""))
        self.bell()
        self._exit_renderables.append(Text(self.crash, style="bold red"))
        self._close_messages_no_wait()

    def on_mount(self) -> None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(
            max_workers=WORKER_THREADS, thread_name_prefix="jamtui-worker"))
        self._unsubscribe = self.store.subscribe(self._from_store)
        self.screen_change_signal.subscribe(self, lambda _: self.call_later(self._settled))
        if self.start_engine:
            expect = getattr(self.engine, "expect_first_frame", None)
            if expect is not None:
                expect()  # see `_first_frame`
            self.run_worker(self.engine.start, thread=True, name="engine start")
        if callable(getattr(self.engine, "wait_ready", None)):
            self.run_worker(self._first_picture, thread=True, name="first picture",
                            exit_on_error=False)
        overview = OverviewScreen()  # with its size classes (`screens.size_classes`)
        self.push_screen(overview)
        if heap.held():  # the collector is off for the start-up (run_cockpit): on again later
            self.set_timer(heap.HOLD_MAX, self._freeze_heap)
        self.set_interval(1, self._refresh_ages)  # AGE ticks each second, rows on screen
        from .nomad_views import poll_tick

        self.set_interval(self.stats_poller.interval, lambda: poll_tick(self))

    def _first_picture(self) -> None:
        """On a worker thread: once every backend of the first screen has answered (or after
        two minutes), the first frame counts as drawn a moment later (then the others start:
        `Engine.start`); once every backend has, the heap is frozen a little later (the big
        tables' chunks in, Fabio's routes among them)."""
        deadline = time.monotonic() + 120
        first = getattr(self.engine, "first_sources", None)
        for timer, after, sources in ((self._first_frame, FIRST_FRAME_SETTLE, first),
                                      (self._freeze_heap, HEAP_SETTLE, None)):
            wait = self.engine.wait_ready if sources is None else partial(
                self.engine.wait_ready, sources=sources)
            while not wait(ASK_SLICE * 5):  # in slices: quitting ends it
                if not self.is_running or _cancelled() or time.monotonic() > deadline:
                    break
            if not self.is_running or _cancelled():
                return
            with contextlib.suppress(RuntimeError):  # the app stopped meanwhile
                self.call_from_thread(self.set_timer, after, timer)

    def _first_frame(self) -> None:
        """The first picture is applied (its changes a moment ago): once the screen is drawn
        with it, the sources' background work may start (`Engine.first_frame`)."""
        self._history_caught_up()  # see `check_history`
        drawn = getattr(self.engine, "first_frame", None)
        if drawn is not None:
            self.call_after_refresh(drawn.set)

    def _freeze_heap(self) -> None:
        """The first picture (5,000 allocations, their rows, the services' instances: some
        400,000 objects at 5k) moves out of the cyclic collector's sight, `gc.freeze()`:
        each full collection had walked all of it, 0.6-0.8 s with the loop stopped every
        10-20 s on a loaded 2-core machine. Records are freed by their reference counts as
        before; only a reference cycle among objects alive now would stay (once, bounded).
        The collector, off since the cockpit started (`heap.hold`), is on again."""
        heap.release()

    def on_unmount(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
        if self._ssh is not None:
            self._ssh.close()
        if self.start_engine:
            self.engine.stop()

    # -- no key lost: what is typed after `/` or `:` goes to the input they open ---------------

    async def on_event(self, event: events.Event) -> None:
        """A key bound to an action that opens an input (`:`, `/`, the log viewer's `/` `&`
        `s`) starts a typeahead: the keys after it are held (not sent to the table, where `d`
        would be an action) until an input takes the focus, then given to it in order. Without
        one in TYPEAHEAD_WAIT seconds (the action opened nothing), they go where they would
        have gone."""
        if isinstance(event, events.Key | events.Paste) and not event.is_forwarded:
            if self._typeahead is not None:
                self._typeahead.append(event)
                return
            opens = isinstance(event, events.Key) and self._opens_input(event.key)
            await super().on_event(event)
            if opens:
                self._typeahead = []
                self._typeahead_timer = self.set_timer(TYPEAHEAD_WAIT, self._replay_typeahead)
            return
        if isinstance(event, events.DescendantFocus) and self._typeahead is not None and (
                self._released_by(event.widget)):
            await self._replay_typeahead()
        await super().on_event(event)

    def _released_by(self, widget: Any) -> bool:
        """Whether the focus going to `widget` ends the hold: an input, for keys typed after
        the key that opens one; for keys typed after the Enter or Esc that closed one, the
        next widget focused on the screen shown once the `:` bar has switched the view."""
        closed = self._closed_input
        if closed is None:
            return _typed_into(widget)
        return widget is not closed and not self._command_open and \
            getattr(widget, "screen", None) is self.screen

    async def _settled(self, *_: Any) -> None:
        """After a screen change (or the `:` bar closed with Esc): keys held since the Enter
        or Esc that closed an input go to the widget focused now, once there is one on the
        screen shown (a screen being mounted releases them by focusing, see on_event)."""
        focused = self.focused
        if (self._typeahead is not None and self._closed_input is not None
                and not self._command_open and focused is not None
                and focused is not self._closed_input and focused.screen is self.screen):
            await self._replay_typeahead()

    def _opens_input(self, key: str) -> bool:
        if _typed_into(self.focused):
            return False  # typed into it: a `/` in a path, a `:` in a value
        for _node, bindings in self.screen._modal_binding_chain:
            found = bindings.key_to_bindings.get(key)
            if found:
                return found[0].action.rpartition(".")[2] in OPENS_INPUT
        return False

    async def _replay_typeahead(self) -> None:
        held, self._typeahead, self._closed_input = self._typeahead or [], None, None
        if self._typeahead_timer is not None:
            self._typeahead_timer.stop()
            self._typeahead_timer = None
        for i, event in enumerate(held):  # synchronously, in order: later keys queue behind
            await self.on_event(event)
            rest = held[i + 1:]
            if (rest and self._typeahead is None and isinstance(event, events.Key)
                    and event.key in ("enter", "escape")
                    and _typed_into(self.focused)):
                # it closes the input: what was typed after it waits for the focus to land
                self._typeahead, self._closed_input = list(rest), self.focused
                self._typeahead_timer = self.set_timer(TYPEAHEAD_WAIT, self._replay_typeahead)
                return

    # -- the store, from source threads to the screen -----------------------------------------

    def _from_store(self, changes: list[Change]) -> None:
        self._changes.extend(changes)

    def on_store_changed(self, _: StoreChanged) -> None:
        self.apply_changes(self._changes.take())

    def apply_changes(self, changes: Iterable[Change]) -> None:
        by_kind: dict[Kind, set[str]] = {}
        for change in changes:
            by_kind.setdefault(change.kind, set()).add(change.id)
        self._record_history(by_kind)
        # signal down: every screen that shows the store subscribed on mount (one composing
        # misses nothing: it reads the store whole when it mounts)
        self.store_changed.publish(by_kind)

    @property
    def check_history(self) -> CheckHistory:
        """Each check's state changes seen this session. Until the first frame is drawn the
        instances seen are kept with the time they were seen, and recorded then (or when
        this is first read): at 5,000 instances recording every check's first state cost
        the first frame 30-45 ms of the one GIL (#17). Records are immutable, so what is
        recorded is what was seen, when it was seen."""
        self._history_caught_up()
        return self._check_history

    def _history_caught_up(self) -> None:
        backlog, self._history_backlog = self._history_backlog, None
        for seen_at, instances in backlog or ():
            self._check_history.observe(instances, now=seen_at)

    def _record_history(self, by_kind: dict[Kind, set[str]]) -> None:
        changed = [i for i in (self.store.get(Kind.INSTANCE, id_)
                               for id_ in by_kind.get(Kind.INSTANCE, ())) if i is not None]
        if changed:
            if self._history_backlog is not None:
                self._history_backlog.append((time.time(), changed))
            else:
                self._check_history.observe(changed)
        for id_ in by_kind.get(Kind.VM, ()):
            vm = self.store.get(Kind.VM, id_)
            if vm is not None and vm.status == "running":
                self.history.add(f"vm/{vm.vmid}", vm.cpu)
        for id_ in by_kind.get(Kind.HYPERVISOR, ()):
            hv = self.store.get(Kind.HYPERVISOR, id_)
            if hv is not None:
                self.history.add(f"hv/{hv.name}", hv.cpu)

    def _refresh_ages(self) -> None:
        if not self.screen_stack:  # a tick while the app closes: nothing left to draw
            return
        screen = self.screen
        if isinstance(screen, LabScreen):
            screen.refresh_rows({pane.kind for pane in screen.panes})

    # -- navigation ----------------------------------------------------------------------------

    def go_to_view(self, name: str) -> None:
        """`:name`: switch to a view (as k9s does): whatever was above the overview (views,
        their details, tails) leaves the stack, so one Esc returns to the overview."""
        name = resolve_view(name)
        if name == "overview":
            self._switch_view(name, None)
            return
        made = self._view_screen(name)
        if made is None:
            self.notify(f"no view called {name!r}; try one of: {', '.join(view_names())}",
                        severity="warning")
            return
        if name == "ns":  # a chooser of the Nomad scope: back to the view it was asked on
            self.push_screen(*made)
            return
        self._switch_view(name, *made)

    def _view_screen(self, name: str) -> tuple[Any, Any] | None:
        """A new screen for the view `name` and what to do with its answer; None for none."""
        from .nomad_views import view_screen

        made = view_screen(self, name)  # deployments, ns
        if made is not None:
            return made
        if name == "routes":
            from .routing_view import RoutingScreen

            return RoutingScreen(), None
        if name == "workflows":
            from .workflow_view import WorkflowsScreen

            return WorkflowsScreen(), None
        if name == "events":
            from .events_view import EventsScreen

            return EventsScreen(), None
        if name == "kv":
            from .kv_view import KVScreen

            return KVScreen(), None
        if name == "intentions":
            from .intentions_view import IntentionsScreen

            return IntentionsScreen(), None
        return (ViewScreen(name), None) if name in VIEWS else None

    def current_view(self) -> str:
        """The `:view` shown (under any detail or tail opened on it), "overview" for none."""
        above = self.screen_stack[2:3]
        return getattr(above[0], "view_name", "") if above else "overview"

    def _switch_view(self, name: str, screen: Any, callback: Any = None) -> None:
        self._note_view(self.current_view())
        while len(self.screen_stack) > 2 and not self.screen.is_modal:
            self.pop_screen()
        if screen is not None:
            screen.view_name = name
            self.push_screen(screen, callback)
        self._note_view(name)

    def _note_view(self, name: str) -> None:
        if name and (not self._view_trail or self._view_trail[-1] != name):
            self._view_trail = [*self._view_trail[-15:], name]

    def action_previous_view(self) -> None:
        """`-`: back to the view shown before this one (again: toggles between the two)."""
        current = self.current_view()
        previous = next((v for v in reversed(self._view_trail) if v != current), None)
        if previous is None:
            self.notify("no previous view yet: : switches to one")
            return
        self.go_to_view(previous)

    def open_logs(self, obj: Any) -> None:
        """`l`: an allocation's tasks; every running allocation of a job (joining and leaving
        as they start and stop); a VM's or hypervisor's unit or file over SSH."""
        from ..model import VM, Allocation, Hypervisor, Job
        from ..sources.logs import LogFollower
        from .log_view import LogScreen

        config = getattr(self.engine, "config", None)
        if config is None:
            return
        if isinstance(obj, VM | Hypervisor):
            self.ask_host_logs(obj.name, getattr(obj, "group", None) or "hypervisors")
            return
        nomad = config.nomad

        def streams_of(allocs: list[Any]) -> list[Any]:
            return [(f"{a.name} {a.short_id} {t.name}",
                     partial(_follower, LogFollower, nomad, a.id, t.name,
                             started=task_started(t)))
                    for a in sorted(allocs, key=lambda a: a.name) for t in a.tasks]

        if isinstance(obj, Job):
            job_id = obj.id

            def running() -> list[Any]:
                return streams_of([a for a in self.store.allocations()
                                   if a.job_id == job_id and a.client_status == "running"])

            if not running():
                self.notify("no running allocation to show logs of", severity="warning")
                return
            self.open_tail(lambda: LogScreen(f"job {job_id}", running))
        elif isinstance(obj, Allocation):
            title = f"{obj.name} {obj.short_id}"
            self.open_tail(lambda: LogScreen(title, streams_of([obj])))

    # -- tails: several open at once, switched between ------------------------------------------

    def open_tail(self, make: Callable[[], Any]) -> None:
        """Show a tail; one already open with the same title is shown again, not doubled."""
        screen = make()
        existing = self.tails.get(screen.name)
        if existing is not None and existing in self.screen_stack:
            if existing is not self.screen:
                self.notify(f"{existing.title_text} is already open: Esc to get back to it")
            return
        if existing is None:
            self.tails[screen.name] = screen
            self.install_screen(screen, screen.name)
        self.push_screen(screen.name)

    def switch_tail(self, current: Any, step: int) -> None:
        names = list(self.tails)
        if len(names) < 2 or current.name not in names:
            return
        target = names[(names.index(current.name) + step) % len(names)]
        self.switch_screen(target)

    def close_tail(self, screen: Any) -> None:
        """Stop following and forget the tail; the screen goes once it is off the stack."""
        self.tails.pop(screen.name, None)
        screen.close()
        if self.screen is screen:
            self.pop_screen()
        if screen not in self.screen_stack:
            self.uninstall_screen(screen)
            if screen.is_attached:
                self.call_later(screen.remove)

    def action_tails(self) -> None:
        from .log_view import TailsScreen

        if not self.tails:
            self.notify("no tail is open: l on an allocation, job, VM or host opens one")
            return

        def chosen(name: str | None) -> None:
            if name and name in self.tails:
                if self.screen.name in self.tails:
                    self.switch_screen(name)
                else:
                    self.push_screen(name)

        # below the header (the health bar, a log viewer's title), never over it
        headers = [w for w in self.screen.query("#health, #log-title") if w.display]
        self.push_screen(TailsScreen(self.tails, max((w.region.bottom for w in headers),
                                                      default=0)), chosen)

    # -- host logs over SSH -----------------------------------------------------------------------

    def ask_host_logs(self, host: str, group: str) -> None:
        default = {"vs": "nomad", "vb": "consul", "bastion": "haproxy", "dns": "dnsmasq",
                   "hypervisors": "pveproxy"}.get(group, "ssh")

        def answered(text: str | None) -> None:
            if text:
                self.run_worker(partial(self._host_logs, host, text.strip()), thread=True,
                                group="ssh", exit_on_error=False)

        self.push_screen(PromptScreen(f"Logs of {host}: a systemd unit (journalctl -f -u), or "
                                      "a file path (tail -F)", default), answered)

    def ssh_pool(self) -> Any:
        if self._ssh is None:
            from ..sources.ssh import pool_for

            self._ssh = pool_for(self.engine.config, self.engine.inventory)
        return self._ssh

    def _host_logs(self, host: str, what: str) -> None:
        """On a worker thread: connect (asking about an unknown host key), then open the tail."""
        from ..sources.logs import RemoteFollower
        from ..sources.ssh import (
            HostKeyChanged,
            RemoteTail,
            fingerprint,
            host_target,
            journal_command,
            open_host_tail,
            tail_command,
        )
        from .log_view import LogScreen

        def accept(asked: str, key: Any) -> bool:
            question = (f"{asked} is not a known host. Its {key.get_name()} key is "
                        f"{fingerprint(key)}. Check it against the host, then accept it "
                        "(it is added to known_hosts)?")
            return self.ask_from_thread(ConfirmScreen(question))

        try:
            if self.engine.inventory is None:
                raise LookupError("no inventory: jamtui needs it to know the hosts")
            target = host_target(self.engine.inventory, host, self.engine.config)
            command = tail_command(what, 200) if what.startswith("/") else \
                journal_command(what, 200)
            pool = self.ssh_pool()
            opened = open_host_tail(pool, target, command, accept)
            if opened is None:
                if self.is_running and not _cancelled():
                    self.call_from_thread(self.notify, f"{host}: host key not accepted",
                                          severity="warning")
                return
        except HostKeyChanged as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=20)
            return
        except Exception as exc:  # unreachable, refused, no such unit: said, never raised
            self.call_from_thread(self.notify, f"logs of {host}: {exc}", severity="error",
                                  timeout=12)
            return

        def make(stream: str) -> Any:
            return RemoteFollower(RemoteTail(pool, target, command))

        title = f"{host} {what}"
        self.call_from_thread(self.open_tail, lambda: LogScreen(
            title, [(title, make)], stderr_toggle=False,
            on_close=lambda: pool.release(target)))

    def ask_from_thread(self, dialog: ModalScreen[bool]) -> bool:
        """From a worker thread: show a yes/no dialog and wait for the operator's answer, in
        short slices: "no" when the worker is cancelled or the app stops (quitting with the
        question open must not leave the thread, and so the process, waiting forever)."""
        answer: list[bool] = []
        done = threading.Event()

        def answered(yes: bool | None) -> None:
            answer.append(bool(yes))
            done.set()

        if not self.is_running or _cancelled():
            return False
        try:
            self.call_from_thread(self.push_screen, dialog, answered)
        except RuntimeError:  # the app has stopped meanwhile
            return False
        while not done.wait(ASK_SLICE):
            if not self.is_running or _cancelled():
                return False
        return answer[0]

    def open_detail(self, kind: Kind, id_: str) -> None:
        if kind is Kind.PVE_TASK:  # a Proxmox task's detail is its log, live
            from .tasks_view import open_task_log

            open_task_log(self, id_)
            return
        from .check_view import CheckScreen, parse_check_link

        check = parse_check_link(id_)
        if check is not None:  # a service detail's link to one check
            self.push_screen(CheckScreen(self.store, self.check_history, *check))
            return
        self.push_screen(DetailScreen(kind, id_))

    # -- messages up: what screens ask (ui/messages.py) ---------------------------------------

    @on(OpenDetail)
    def _asked_open_detail(self, message: OpenDetail) -> None:
        self.open_detail(message.kind, message.object_id)

    @on(RunAction)
    def _asked_run_action(self, message: RunAction) -> None:
        self.request_action(message.action, message.obj)

    @on(GoToView)
    def _asked_go_to_view(self, message: GoToView) -> None:
        self.go_to_view(message.name)

    @on(OpenIntention)
    def _asked_open_intention(self, message: OpenIntention) -> None:
        from .intentions_view import IntentionsScreen

        self.push_screen(IntentionsScreen(select=message.intention_id))

    @on(OpenTail)
    def _asked_open_tail(self, message: OpenTail) -> None:
        self.open_tail(message.make)

    @on(SwitchTail)
    def _asked_switch_tail(self, message: SwitchTail) -> None:
        self.switch_tail(message.screen, message.step)

    @on(CloseTail)
    def _asked_close_tail(self, message: CloseTail) -> None:
        self.close_tail(message.screen)

    def action_command_bar(self) -> None:
        def chosen(name: str | None) -> None:
            self._command_open = False
            if name:
                self.go_to_view(name)
            else:
                self.call_later(self._settled)

        self._command_open = True
        self.push_screen(CommandScreen(), chosen)

    def action_help(self) -> None:
        """`?`: every key of this screen, read from its live bindings (the focused widget's,
        the screen's, the app's: what a key press would reach), so it cannot drift; on the
        overview also the other panes' object keys."""
        screen = self.screen
        by_id = {k.id: k for k in self.keymap}
        keys: dict[tuple[str, str], Key] = {}
        chain = [(node, binding) for node, bindings in screen._modal_binding_chain
                 for _, binding in bindings]
        first: dict[str, Any] = {}  # key → the node it reaches (a nearer one hides the rest)
        for node, binding in chain:
            if first.setdefault(binding.key, node) is not node:
                continue
            if not binding.description or not binding.id or binding.system or not \
                    type(node).__module__.startswith("jamtui"):
                continue  # Textual's own (cursor keys, Ctrl+Q…), not ours
            known = by_id.get(binding.id or "")
            if known is not None and not usable(known.action, self.read_only):
                continue
            scope = known.scope if known is not None else "global" if node is self else "here"
            shown = self.get_key_display(binding)
            found = keys.get((binding.action, scope))
            if found is None:
                now = self._check_action_state(binding.action, node) is not False
                keys[binding.action, scope] = Key(
                    binding.action, shown, binding.description + ("" if now else
                                                                  " (not now)"), scope,
                    destructive=known is not None and known.destructive)
            elif shown not in found.keys.split(" / "):
                keys[binding.action, scope] = replace(found, keys=f"{found.keys} / {shown}")
        scopes = {"global"}  # Enter, Esc, Ctrl+P: handled by Textual's widgets and app
        if isinstance(screen, LabScreen):  # the other panes' object keys, as the table has
            scopes |= {"table", *(p.kind.value for p in screen.panes)}
        actions = {a for a, _ in keys}
        for k in for_scopes(self.keymap, scopes):
            if usable(k.action, self.read_only) and (k.action, k.scope) not in keys and (
                    k.scope != "global" or k.action not in actions):
                keys[k.action, k.scope] = replace(k, keys=self.get_key_display(
                    binding_of(k)))
        order = {"here": 0, "table": 1, "global": 3}
        rows = sorted(keys.values(), key=lambda k: order.get(k.scope, 2))
        self.push_screen(HelpScreen(rows, screen.name or "jamtui"))

    def action_refused(self, what: str) -> None:
        """A key that would change something, pressed under --read-only: say why not."""
        self.notify(f"{READ_ONLY_WHY}: {what} is off", severity="warning")

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    # -- actions -------------------------------------------------------------------------------

    @property
    def shells(self) -> Any:
        """`s`: shells in tasks and on hosts (ui/shell.py), made on first use."""
        if getattr(self, "_shells", None) is None:
            from .shell import Shells

            self._shells = Shells(self, self.engine.config, self.engine.inventory)
        return self._shells

    def request_action(self, name: str, obj: Any) -> None:
        """Check, ask (for destructive ones, naming the object), then run in a worker."""
        if name == "logs":
            self.open_logs(obj)
            return
        from .nomad_views import handle_action

        if handle_action(self, name, obj):  # deployments, versions, spec, plan-and-run
            return
        if self.read_only:
            self.action_refused(name.replace("_", " "))
            return
        if name == "shell":
            self.shells.open(obj)
            return
        if name in ("node_add", "node_remove"):
            self._node_workflow(name, obj)
            return
        action = find(name)
        if action is None:
            return
        if not action.applies(obj):
            self.notify(f"{action.label}: not possible for {describe(obj)} as it is now.",
                        severity="warning")
            return

        def confirmed(params: dict[str, Any]) -> None:
            if not action.destructive:
                self.start_action(name, obj, params)
                return
            question, held = ask(action, obj)  # says what it will do to this object
            self.push_screen(
                ConfirmScreen(question),
                lambda yes: self.start_action(name, obj, {**params, **held}) if yes else None,
            )

        if action.asks == "target":  # migrate: the hypervisor, with its free memory
            from .snapshots import MigrateScreen

            def target_chosen(target: str | None) -> None:
                if not target:
                    return
                how = "live " if getattr(obj, "status", "") == "running" else ""
                self.push_screen(
                    ConfirmScreen(f"{how}Migrate {describe(obj)} to {target}?"),
                    lambda yes: self.start_action(name, obj, {"target": target})
                    if yes else None)

            self.push_screen(MigrateScreen(obj), target_chosen)
            return
        if action.asks == "snapshot":
            self.notify("snapshots: open the VM's detail (Enter) and use n / b / x on its "
                        "snapshot tree", severity="warning")
            return
        if action.asks == "count":
            groups = [g.name for g in getattr(obj, "groups", ())]
            current = " ".join(f"{g.name}={g.running}" for g in getattr(obj, "groups", ()))

            def answered(text: str | None) -> None:
                params = _parse_scale(text, groups)
                if params is None:
                    if text is not None:
                        self.notify("scale: give GROUP=COUNT (or COUNT for a one-group job)",
                                    severity="error")
                    return
                confirmed(params)

            self.push_screen(PromptScreen(f"Scale {describe(obj)}: GROUP=COUNT "
                                          f"(now {current})", current.split(" ")[0]), answered)
            return
        confirmed({})

    def workflows(self) -> NodeWorkflows:
        """Node add/remove on this engine, plans shown in the cockpit."""
        from ..workflows.node import NodeWorkflows
        from .workflow_view import PlanScreen

        return NodeWorkflows(self.engine.config, self.engine,
                             lambda title, text: self.ask_from_thread(PlanScreen(title, text)))

    def _node_workflow(self, name: str, vm: Any) -> None:
        from .workflow_view import open_node_add, open_node_remove

        if getattr(self.engine, "config", None) is None:
            self.notify("node workflows need a configuration", severity="warning")
        elif name == "node_add":
            open_node_add(self)
        elif getattr(vm, "group", None) not in ("vb", "vs"):
            self.notify(f"{describe(vm)} is not a vb or vs node: jamtui removes only those",
                        severity="warning")
        else:
            open_node_remove(self, vm.name)

    def start_action(self, name: str, obj: Any, params: dict[str, Any]) -> None:
        action = find(name)
        assert action is not None
        self.notify(f"{action.label}: {describe(obj)}…", timeout=3)
        self.run_worker(partial(self._run_action, name, obj, params), thread=True,
                        group="actions", exit_on_error=False)

    def _run_action(self, name: str, obj: Any, params: dict[str, Any]) -> None:
        action = find(name)
        assert action is not None
        try:
            for line in action.run(self.engine, obj, params):
                self.call_from_thread(self.notify, line, timeout=4)
        except ActionError as exc:
            self.call_from_thread(self.notify, f"{action.label} failed: {exc}",
                                  severity="error", timeout=12)


def _cancelled() -> bool:
    """Whether the worker this thread runs (if any) was cancelled."""
    try:
        return get_current_worker().is_cancelled
    except NoActiveWorker:
        return False


def _follower(cls: Any, cfg: Any, alloc_id: str, task: str, stream: str,
              started: float | None = None) -> Any:
    """A follower that starts with the last 64 KiB already written."""
    return cls(cfg, alloc_id, task, stream, origin="end", offset=64 * 1024, started=started)


def task_started(task: Any) -> float | None:
    """When a task first started, from its events (`Started`, Time in Unix ns, decoded to
    seconds) and `StartedAt` (its last start): the earliest known, or None."""
    starts = [e.time for e in task.events if e.type == "Started" and e.time > 0]
    if task.started_at:
        starts.append(task.started_at)
    return min(starts) if starts else None


def _parse_scale(text: str | None, groups: list[str]) -> dict[str, Any] | None:
    if not text:
        return None
    group, sep, count = text.strip().partition("=")
    if not sep:
        group, count = (groups[0] if len(groups) == 1 else ""), group
    if group not in groups or not count.strip().isdigit():
        return None
    return {"group": group, "count": int(count)}
