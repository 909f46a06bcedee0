"""`:routes`: every externally reachable host with its chain, the broken hop marked, and the
selected host's whole path as a tree. `t` traces it for real (DNS and one probe request).

What is listed comes from the engine's `RouteBook` (every host seen this session, kept when
its route goes, since when each is in its state, the DNS answers); this screen only draws it
and resolves due hosts in a worker thread."""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static
from textual.worker import get_current_worker

from ..model import Kind
from ..plain import cells as plain_cells
from ..route_book import RouteBook, RouteRow, clock_time
from ..routing import Chain
from ..tracing import Trace, render_tree, run_trace
from .columns import sparkline
from .messages import OpenIntention
from .nav_table import NavTable
from .widgets import HealthBar

if TYPE_CHECKING:
    from .app import JamApp

# what a chain is made of: a change to any of these re-evaluates the chains
CHAIN_KINDS = {Kind.ROUTE, Kind.SERVICE, Kind.INSTANCE, Kind.HAPROXY, Kind.ALLOCATION,
               Kind.NOMAD_NODE, Kind.VM, Kind.HYPERVISOR, Kind.INTENTION}


COLUMNS = (("host", "HOST/PATH"), ("state", "STATE"), ("since", "SINCE"),
           ("service", "SERVICE"), ("instances", "PASSING"), ("rate", "REQ/S (frontend)"),
           ("problem", "BROKEN HOP"))


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d"


class RoutingScreen(Screen[None]):
    BINDINGS = [Binding("t", "trace", "trace (DNS + probe)", id="routes_trace"),
                Binding("x", "forget", "remove gone host", id="routes_forget"),
                Binding("escape", "back", "back", show=False, id="routes_back")]

    def __init__(self) -> None:
        super().__init__(name="routes")
        self.chains: dict[str, Chain] = {}
        self.rows: dict[str, RouteRow] = {}
        self.traced: dict[str, Trace] = {}
        self.book: RouteBook | None = None
        self._resolving = False
        self._eval_lock = threading.Lock()
        self._evaluating = False  # a worker evaluates the chains
        self._pending = False  # a change came meanwhile: evaluate once more
        self._drawn: dict[str, list[Any]] = {}  # the cells as drawn, per host
        self._shown: tuple[Any, ...] | None = None  # the tree's host, chain and trace

    @property
    def jam(self) -> JamApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield HealthBar(self.jam.store, self.jam.configured, id="health")
        with Horizontal(id="routing-body"):
            with VerticalScroll(id="routing-list"):
                yield Label(Text("Routes: host → HAProxy → Fabio → instances", style="bold"),
                            classes="pane-title")
                yield NavTable(id="chains", cursor_type="row")
            with VerticalScroll(id="routing-tree"):
                yield Static(id="chain")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#chains", DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        book = getattr(self.jam.engine, "routes", None)
        self.book = book if isinstance(book, RouteBook) else RouteBook(self.jam.store)
        self.jam.store_changed.subscribe(self, self.apply_changes, immediate=True)
        self.refresh_chains()
        table.focus()
        self.set_interval(5.0, self.resolve_due)
        self.resolve_due()

    def on_screen_resume(self) -> None:
        # Fabio: every instance asked while the routes are on screen (one in turn otherwise)
        showing = getattr(self.jam.engine, "showing", None)
        if showing is not None:
            showing({kind.value for kind in CHAIN_KINDS})

    # -- live -----------------------------------------------------------------------------------

    def apply_changes(self, by_kind: dict[Kind, set[str]]) -> None:
        if by_kind.keys() & CHAIN_KINDS:
            self.refresh_chains()
        if Kind.BACKEND in by_kind or Kind.QUORUM in by_kind:
            self.query_one(HealthBar).refresh_health()

    def refresh_rows(self, kinds: set[Kind]) -> None:
        return None

    def refresh_chains(self) -> None:
        """Evaluate the chains in a thread worker (the book traces only those something
        changed on, but a big lab's first evaluation takes a while) and draw them on the loop
        when done. Coalesced: at most one evaluation runs; a change meanwhile runs one more
        after it, which reads the latest store."""
        with self._eval_lock:
            if self._evaluating:
                self._pending = True
                return
            self._evaluating = True
            self._pending = False
        self.run_worker(self._evaluate, thread=True, group="route-eval", exit_on_error=False)

    def _evaluate(self) -> None:
        assert self.book is not None
        worker = get_current_worker()
        try:
            while not worker.is_cancelled:
                rows = self.book.rows()
                if worker.is_cancelled:
                    return
                self.app.call_from_thread(self.draw_rows, rows)
                with self._eval_lock:
                    if not self._pending:
                        self._evaluating = False
                        return
                    self._pending = False
        finally:
            with self._eval_lock:
                self._evaluating = False

    def draw_rows(self, listed: list[RouteRow]) -> None:
        """On the loop: the rows as evaluated, cells that changed only; the cursor stays on
        its host."""
        if not self.is_attached:  # the screen went while the worker evaluated
            return
        rows = {r.id: r for r in listed}
        table = self.query_one("#chains", DataTable)
        rate = self._rate()
        now = time.time()
        for cid, row in rows.items():
            cells = self._cells(row, rate, now)
            drawn = self._drawn.get(cid)
            if cid in self.chains and cid in table.rows and drawn is not None:
                for (key, _), cell, old in zip(COLUMNS, cells, drawn, strict=True):
                    if cell != old:
                        table.update_cell(cid, key, cell, update_width=True)
            else:
                table.add_row(*cells, key=cid)
            self._drawn[cid] = cells
        for cid in list(self.chains):
            if cid not in rows:
                self._drawn.pop(cid, None)
                if cid in table.rows:
                    table.remove_row(cid)
        new = rows.keys() - self.chains.keys()
        self.rows = rows
        self.chains = {cid: r.chain for cid, r in rows.items()}
        if self._shown != self._showing():  # the tree redrawn only when its chain changed
            self.show_selected()
        if new:
            self.resolve_due()

    # -- DNS, from the start ----------------------------------------------------------------------

    def resolve_due(self) -> None:
        """Ask the internal DNS about the hosts that are due, in a worker thread; the answers
        are cached in the book and refreshed slowly (a minute)."""
        config = getattr(self.jam.engine, "config", None)
        if (self._resolving or self.book is None or config is None or not config.dns.server
                or not self.book.dns_due()):
            return
        self._resolving = True
        self.run_worker(partial(self._resolve, config), thread=True, group="route-dns",
                        exit_on_error=False)

    def _resolve(self, config: Any) -> None:
        assert self.book is not None
        try:
            changed = self.book.resolve_due(config, getattr(self.jam.engine, "inventory", None))
        finally:
            self._resolving = False
        if changed and not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.refresh_chains)

    def _rate(self) -> Text:
        rows = [r for r in self.jam.store.haproxy_rows()
                if r.type == "frontend" and r.proxy != "stats"]
        for r in rows:
            self.jam.history.add(f"fe/{r.proxy}", float(r.request_rate))
        if not rows:
            return Text("-", style="dim")
        values = self.jam.history.get(f"fe/{rows[0].proxy}")
        return Text.assemble(sparkline(values, 12), f" {rows[0].request_rate}/s")

    def _cells(self, row: RouteRow, rate: Text, now: float) -> list[Any]:
        chain = row.chain
        service = next((h for h in chain.hops if h.layer == "service"), None)
        passing = sum(1 for c in service.children if c.ok) if service else 0
        total = len(service.children) if service else 0
        state = (Text("✓ whole", style="green") if chain.whole else
                 Text("✗ gone", style="bold red") if row.gone else
                 Text(f"✗ {chain.broken.layer if chain.broken else ''}", style="bold red"))
        since = Text(f"{clock_time(row.since)} ({_ago(now - row.since)})",
                     style="" if chain.whole else "red")
        problem = Text(chain.broken.problem if chain.broken else "", style="red")
        return plain_cells([chain.host + chain.path, state, since,
                            service.name if service else "-", f"{passing}/{total}", rate,
                            problem])

    # -- the selected chain -----------------------------------------------------------------------

    def selected_id(self) -> str | None:
        table = self.query_one("#chains", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    @on(DataTable.RowHighlighted, "#chains")
    def highlighted(self, _: DataTable.RowHighlighted) -> None:
        self.show_selected()

    @on(DataTable.RowSelected, "#chains")
    def open_denial(self, _: DataTable.RowSelected) -> None:
        """Enter on a chain the mesh denies (its tree says `Connect: … is denied`): the
        intention that denies it, in `:intentions`."""
        from .intentions_view import denials_for

        chain = self.chains.get(self.selected_id() or "")
        service = next((h.name for h in chain.hops if h.layer == "service"),
                       None) if chain else None
        denials = denials_for(self.jam.store, service) if service else []
        if not denials:
            self.notify("no intention denies this chain's service", timeout=3)
            return
        self.post_message(OpenIntention(denials[0].id))

    def _showing(self) -> tuple[Any, ...]:
        cid = self.selected_id()
        return (cid, self.chains.get(cid or ""), self.traced.get(cid or ""))

    def show_selected(self) -> None:
        self._shown = self._showing()
        cid = self.selected_id()
        body = self.query_one("#chain", Static)
        if cid is None or cid not in self.chains:
            body.update(Text("No routes yet: no Fabio route and no urlprefix- tag.",
                             style="dim"))
            return
        traced = self.traced.get(cid)
        result = Trace(self.chains[cid], traced.resolutions[1:] if traced else (),
                       traced.probe if traced else None, traced.notes if traced else ())
        body.update(render_tree(result))

    def action_trace(self) -> None:
        cid = self.selected_id()
        if cid is None:
            return
        self.notify(f"tracing {cid}: DNS and one request through HAProxy…", timeout=3)
        self.run_worker(partial(self._trace, cid), thread=True, group="trace",
                        exit_on_error=False)

    def _trace(self, cid: str) -> None:
        """A thread worker of this screen: it ends with the screen, whose tree it would
        draw."""
        app = self.jam
        config = getattr(app.engine, "config", None)
        if config is None:
            return
        result = run_trace(app.store, config, getattr(app.engine, "inventory", None), cid,
                           probe=True)
        if not get_current_worker().is_cancelled:
            app.call_from_thread(self._traced, cid, result)

    def _traced(self, cid: str, result: Trace) -> None:
        self.traced[cid] = result
        config = getattr(self.jam.engine, "config", None)
        if self.book is not None and config is not None and config.dns.server \
                and result.resolutions:  # the internal DNS's fresh answer: the tree's hop
            self.book.set_dns(result.chain.host, result.resolutions[0])
        self.refresh_chains()
        probe = result.probe
        if probe is not None:
            if probe.error:
                self.notify(f"probe {cid}: {probe.error}", severity="error", timeout=8)
            else:
                self.notify(f"probe {cid}: {probe.status} in {probe.seconds * 1000:.0f} ms"
                            + (f" from {probe.answered_by}" if probe.answered_by else ""),
                            severity="information" if probe.status < 500 else "error",
                            timeout=8)

    def action_forget(self) -> None:
        """`x` on a gone host: off the list for this session (the lab is not touched)."""
        cid = self.selected_id()
        if cid is None or self.book is None:
            return
        removed, message = self.book.remove(cid)
        self.notify(message, severity="information" if removed else "warning", timeout=6)
        if removed:
            self.traced.pop(cid, None)
            self.refresh_chains()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
