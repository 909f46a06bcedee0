"""The screens: the overview of four panes, one view per kind, detail, help and dialogs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group as RichGroup
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.suggester import Suggester
from textual.widgets import DataTable, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..model import Kind
from ..plain import LINE_LIMIT, line
from ..plain import text as safe_text
from .detail import render
from .keymap import Key, bind, for_scopes, refused, usable
from .kinds import OVERVIEW_PANES, VIEWS
from .messages import OpenDetail, RunAction
from .widgets import HealthBar, Holder, KeyFooter, Pane

if TYPE_CHECKING:
    from .app import JamApp

# `:name` → the view it opens. The views beyond the registry of kinds (ui/kinds.py), then one
# table of the short names k9s users type: each alias names exactly one view, none is another
# view's name (tests/ui/test_navigation.py checks), `?` and README list them.
MORE_VIEWS = ("routes", "workflows", "events", "kv", "intentions", "deployments", "ns",
              "overview")
VIEW_ALIASES: dict[str, tuple[str, ...]] = {
    "overview": ("o", "ov", "home"),
    "vms": ("vm", "v"),
    "allocs": ("a", "al", "alloc", "allocations"),
    "services": ("svc", "service"),
    "jobs": ("j", "job"),
    "nodes": ("no", "node"),
    "hv": ("hypervisors", "hypervisor", "pve"),
    "storage": ("st", "sto"),
    "instances": ("inst", "in"),
    "members": ("mem", "member"),
    "fabio": ("fb",),
    "haproxy": ("hap", "hp"),
    "tasks": ("tk", "task"),
    "routes": ("rt", "route"),
    "workflows": ("wf", "workflow"),
    "events": ("ev", "event"),
    "intentions": ("ixn", "int", "intention"),
    "deployments": ("dp", "deploy", "deps", "deployment"),
    "ns": ("namespaces", "namespace"),
}
ALIASES = {alias: view for view, aliases in VIEW_ALIASES.items() for alias in aliases}


def view_names() -> list[str]:
    """Every `:view` by its own name, in the order completion offers them."""
    return [*VIEWS, *(v for v in MORE_VIEWS if v not in VIEWS)]


def resolve_view(name: str) -> str:
    """A typed `:name` (or alias) as the view's own name; unknown names come back as typed."""
    name = name.strip().lstrip(":").lower()
    return ALIASES.get(name, name)


def complete_view(prefix: str) -> str | None:
    """What Tab (and the grey suggestion) completes a typed prefix to: the first view whose
    name starts with it, else the first alias that does; None for nothing."""
    prefix = prefix.strip().lstrip(":").lower()
    if not prefix:
        return None
    return next((n for n in [*view_names(), *ALIASES] if n.startswith(prefix)), None)


def size_classes(screen: Screen[Any]) -> None:
    """The size classes (`-narrow`/`-wide`) a screen about to be pushed gets at its first
    resize, given now, before it is styled: added then, they made Textual restyle every
    widget on it, and each table threw away every row it had drawn (where the resize came
    after the first frame, the first page of `:allocs` was drawn twice, #17). As Textual
    picks them: the class of the highest breakpoint the extent reaches (the screen's own
    breakpoints, else the app's)."""
    app = screen.app
    width, height = app.size
    across, down = screen.HORIZONTAL_BREAKPOINTS, screen.VERTICAL_BREAKPOINTS
    for extent, points in (
            (width, app.HORIZONTAL_BREAKPOINTS if across is None else across),
            (height, app.VERTICAL_BREAKPOINTS if down is None else down)):
        reached = [name for at, name in sorted(points or [], reverse=True) if extent >= at]
        screen.add_class(*reached[:1], update=False)


class LabScreen(Screen[None]):
    """A screen of live panes with the health bar, the command bar and the filter bar."""

    def __init__(self, panes: tuple[tuple[Kind, str], ...], name: str) -> None:
        super().__init__(name=name)
        size_classes(self)
        self.pane_specs = panes
        self.panes: list[Pane] = []

    @property
    def jam(self) -> JamApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        app = self.jam
        with Holder():
            yield HealthBar(app.store, app.configured, id="health")
        self.panes = [Pane(kind, title, app.store, app.history, app.keymap, app.read_only,
                           id=f"pane-{kind.value}") for kind, title in self.pane_specs]
        yield self.body()
        with Horizontal(id="bars"):
            yield Input(placeholder="/filter (any column; Enter keeps it, Esc clears)",
                        id="filter")
        with Holder(id="footer-box"):
            yield KeyFooter()

    def body(self) -> Any:
        return Holder(*self.panes, id="body")

    def on_mount(self) -> None:
        self.jam.store_changed.subscribe(self, self.apply_changes, immediate=True)
        self.query_one("#bars").display = False
        if self.panes:
            self.panes[0].table.focus()

    def on_screen_resume(self) -> None:
        # Proxmox is read every second while its VMs or hypervisors are on screen
        showing = getattr(self.jam.engine, "showing", None)
        if showing is not None:
            showing({pane.kind.value for pane in self.panes})

    # -- live updates ------------------------------------------------------------------------

    def apply_changes(self, by_kind: dict[Kind, set[str]]) -> None:
        for pane in self.panes:
            if not pane.is_mounted or not pane.table.is_mounted:
                continue  # it loads the whole table from the store when it mounts
            if Kind.NAMESPACE in by_kind:
                pane.table.follow_columns()
            ids = by_kind.get(pane.kind)
            if ids:
                pane.table.apply(ids)
            if ids or Kind.BACKEND in by_kind:
                pane.refresh_title()
        if Kind.BACKEND in by_kind or Kind.QUORUM in by_kind:
            for bar in self.query(HealthBar):
                bar.refresh_health()

    def refresh_rows(self, kinds: set[Kind]) -> None:
        """Recompute the time columns of these kinds, for the rows on screen only."""
        for pane in self.panes:
            if pane.kind in kinds:
                pane.table.refresh_times()

    # -- panes and tables --------------------------------------------------------------------

    def focused_table(self) -> Any:
        for pane in self.panes:
            if pane.table.has_focus:
                return pane.table
        return self.panes[0].table if self.panes else None

    def action_next_pane(self) -> None:
        self.focus_next(DataTable)

    @on(DataTable.RowSelected)
    def open_row(self, event: DataTable.RowSelected) -> None:
        table = event.data_table
        kind = getattr(table, "kind", None)
        if kind is not None and event.row_key.value is not None:
            self.post_message(OpenDetail(kind, str(event.row_key.value)))

    def on_live_table_act(self, message: Any) -> None:
        obj = message.table.selected()
        if obj is not None:
            self.post_message(RunAction(message.action, obj))

    # -- the filter bar (/) ------------------------------------------------------------------

    def on_live_table_filter_requested(self, message: Any) -> None:
        self._filter_target = message.table
        self.query_one("#bars").display = True
        bar = self.query_one("#filter", Input)
        bar.value = message.table.filter_text
        bar.focus()

    def _hide_bars(self, refocus: Any = None) -> None:
        self.query_one("#bars").display = False
        target = refocus or self.focused_table()
        if target is not None:
            target.focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        target = getattr(self, "_filter_target", None)
        if target is not None:
            target.set_filter(event.value.strip())
            target.parent.refresh_title()

    @on(Input.Submitted, "#filter")
    def filter_kept(self, event: Input.Submitted) -> None:
        self._hide_bars(getattr(self, "_filter_target", None))

    def key_escape(self) -> None:
        bars = self.query_one("#bars")
        if bars.display:
            target = getattr(self, "_filter_target", None)
            if target is not None:
                target.set_filter("")
                target.parent.refresh_title()
            self._hide_bars(getattr(self, "_filter_target", None))
            return
        for pane in self.panes:  # Esc first clears a kept filter, then goes back
            if pane.table.filter_text:
                pane.table.set_filter("")
                pane.refresh_title()
                return
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()


class OverviewScreen(LabScreen):
    def __init__(self) -> None:
        super().__init__(OVERVIEW_PANES, name="overview")

    def body(self) -> Any:
        return Grid(*(Holder(pane, classes="pane-box") for pane in self.panes),
                    id="overview-grid")


class ViewScreen(LabScreen):
    def __init__(self, view: str) -> None:
        kind, title = VIEWS[view]
        super().__init__(((kind, title),), name=view)
        self.view = view


class DetailScreen(Screen[None]):
    """One object, its cross-links, and the actions on it; follows the store live."""

    BINDINGS = [Binding("escape", "back", "back", id="detail_back")]

    def __init__(self, kind: Kind, id_: str) -> None:
        super().__init__(name=f"detail:{kind.value}:{id_}")
        self.kind = kind
        self.object_id = id_

    @property
    def jam(self) -> JamApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        app = self.jam
        for key in for_scopes(app.keymap, {self.kind.value}):
            bind(self._bindings, key if usable(key.action, app.read_only) else refused(key))
        yield HealthBar(app.store, app.configured, id="health")
        with Horizontal(id="detail-body"):
            with VerticalScroll(id="detail-main"):
                yield Static(id="detail")
                yield from _proxmox_panels(app, self.kind, self.object_id)
            with Vertical(id="detail-side"):
                yield Label("Go to", classes="pane-title")
                yield OptionList(id="links")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.jam.store_changed.subscribe(self, self.apply_changes, immediate=True)
        self.refresh_detail()
        self.query_one(OptionList).focus()

    def refresh_detail(self) -> None:
        body, links = render(self.kind, self.object_id, self.jam.store,
                             getattr(self.jam, "check_history", None))
        from .nomad_views import detail_extra

        extra = detail_extra(self.jam, self.kind, self.object_id)
        if extra is not None:
            body = RichGroup(body, extra)
        self.query_one("#detail", Static).update(body)
        options = self.query_one(OptionList)
        wanted = [(line(label), f"{kind.value}|{id_}") for label, kind, id_ in links]
        current = [(str(o.prompt), o.id) for o in options.options]
        if wanted != current:
            highlighted = options.highlighted
            options.clear_options()
            options.add_options([Option(Text(label), id=oid) for label, oid in wanted])
            if highlighted is not None and wanted:
                options.highlighted = min(highlighted, len(wanted) - 1)

    def apply_changes(self, by_kind: dict[Kind, set[str]]) -> None:
        if by_kind.keys() - {Kind.BACKEND}:
            self.refresh_detail()
        if Kind.BACKEND in by_kind or Kind.QUORUM in by_kind:
            self.query_one(HealthBar).refresh_health()

    def refresh_rows(self, kinds: set[Kind]) -> None:
        return None

    @on(OptionList.OptionSelected)
    def follow_link(self, event: OptionList.OptionSelected) -> None:
        kind, _, id_ = (event.option.id or "").partition("|")
        self.post_message(OpenDetail(Kind(kind), id_))

    def action_act(self, name: str) -> None:
        obj = self.jam.store.get(self.kind, self.object_id)
        if obj is not None:
            self.post_message(RunAction(name, obj))

    def action_back(self) -> None:
        self.app.pop_screen()


def _proxmox_panels(app: Any, kind: Kind, id_: str) -> ComposeResult:
    """A VM's snapshot tree, a hypervisor's storage content: read on demand (#16)."""
    if "proxmox" not in getattr(app.engine, "sources", {}):
        return
    obj = app.store.get(kind, id_)
    if kind is Kind.VM and obj is not None and not obj.is_container and not obj.template:
        from .snapshots import SnapshotPanel

        yield SnapshotPanel(id_, id="snapshots")
    elif kind is Kind.HYPERVISOR and obj is not None:
        from .storage_view import StorageContentPanel

        yield StorageContentPanel(id_, id="storage-panel")


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close", id="help_close")]

    def __init__(self, keys: list[Key], title: str) -> None:
        super().__init__()
        self.keys = keys
        self.title_text = title

    def compose(self) -> ComposeResult:
        table = Table(title=f"Keys: {self.title_text}", box=None, title_style="bold")
        table.add_column("key", style="bold cyan")
        table.add_column("does")
        table.add_column("where", style="dim")
        for k in self.keys:
            shown = k.keys.replace("question_mark", "?").replace("colon", ":").replace(
                "slash", "/")
            # keys and descriptions may come from the config file: shown, never parsed
            table.add_row(safe_text(shown), safe_text(
                k.description + (" (asks first)" if k.destructive else "")), safe_text(k.scope))
        views = Table(title="Views: ':' then a name or alias (Tab completes; '-' the "
                      "previous view)", box=None, title_style="bold")
        views.add_column("view", style="bold cyan")
        views.add_column("aliases")
        for view in view_names():
            views.add_row(view, ", ".join(VIEW_ALIASES.get(view, ())))
        yield VerticalScroll(Static(RichGroup(table, Text(""), views)), id="help-box")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


class ConfirmScreen(ModalScreen[bool]):
    """Destructive actions ask first, naming the object."""

    BINDINGS = [Binding("y", "answer(True)", "yes", id="confirm_yes"),
                Binding("n,escape", "answer(False)", "no", id="confirm_no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(safe_text(self.question, "bold", limit=2 * LINE_LIMIT, multiline=True))
            yield Static(Text("y: yes    n / Esc: no", style="dim"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ViewSuggester(Suggester):
    """The grey completion in the `:` bar: the same name Tab accepts."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=False)

    async def get_suggestion(self, value: str) -> str | None:
        return complete_view(value)


class CommandScreen(ModalScreen["str | None"]):
    """`:` — jump to a view by name or alias; Tab (or →) accepts the completion."""

    BINDINGS = [Binding("escape", "cancel", "cancel", id="command_cancel"),
                Binding("tab", "complete", "complete", show=False, priority=True,
                        id="command_complete")]

    def compose(self) -> ComposeResult:
        yield Input(placeholder=":view (" + ", ".join(view_names()) + "; Tab completes)",
                    id="command", suggester=ViewSuggester())

    def action_complete(self) -> None:
        bar = self.query_one("#command", Input)
        done = complete_view(bar.value)
        if done is not None:
            bar.value = done
            bar.cursor_position = len(done)

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        typed = event.value.strip().lstrip(":")
        # a name or alias as typed; else what the grey suggestion showed
        known = resolve_view(typed) in view_names()
        self.dismiss(typed if known or not typed else (complete_view(typed) or typed))

    def action_cancel(self) -> None:
        self.dismiss(None)


class PromptScreen(ModalScreen["str | None"]):
    BINDINGS = [Binding("escape", "cancel", "cancel", id="prompt_cancel")]

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__()
        self.question = question
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(safe_text(self.question, "bold", limit=2 * LINE_LIMIT, multiline=True))
            yield Input(value=self.value, id="answer")

    @on(Input.Submitted)
    def submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
