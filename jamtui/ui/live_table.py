"""A table of one kind of object that follows the store row by row.

A change event touches only its row (and only the cells whose text changed); the cursor,
scroll position, sort and filter stay where the user left them.

Order: the table keeps its rows sorted by a typed key of the sort column (numbers as
numbers, ages as durations; `columns.SORT_KEYS`), then the kind's default order, then the id,
in a list kept sorted with `bisect`: a row added later goes to its sorted place, a whole load
is sorted once. `<`/`>` move the sort column, `!` reverses it; the header shows ▲/▼ and the
choice is kept per view for the session (`JamApp.table_sorts`).

Drawing cost follows what is seen, not the table: a loaded row holds only its sort key until
it is drawn (cells are made for the rows on screen, when they come on screen), so 5,000 rows
are all in the table, navigable, at once, and opening a view costs a screenful of cells.
Widths follow what has been drawn. DataTable's own
`update_cell` throws away every cached cell and line and repaints the whole widget; here a
changed row drops only its own cache entries and repaints only its own line (all rows changed
in one batch: one cache pass, one repaint per frame); a cell wider than its column widens it,
a column whose widest cell narrowed shrinks a few seconds later (not at every flap). Time
columns (AGE) are recomputed for the visible rows only, each second. When the width does not
fit every column, the least important go (`columns.PRIORITY`) and come back when it does.
"""

from __future__ import annotations

import bisect
import gc
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual._two_way_dict import TwoWayDict
from textual.color import Color
from textual.coordinate import Coordinate
from textual.css.styles import RenderStyles
from textual.events import Resize
from textual.geometry import Offset, Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets._data_table import Row
from textual.widgets.data_table import CellKey, ColumnKey, RowKey

from ..model import Kind
from ..plain import is_plain
from ..plain import text as safe_text
from ..store import Store
from .columns import (
    DEFAULT_SORT,
    MIN_WIDTH,
    History,
    SortKey,
    columns_for,
    plain,
    priority,
    sort_key,
)
from .keymap import Key, bind, for_scopes, refused, usable
from .nav_table import NavKeys

TIME_COLUMNS = frozenset({"age"})  # cells that change with the clock, not with the store
SHRINK_AFTER = 3.0  # seconds a column's widest cell stays narrower before the column shrinks
UP, DOWN = " ▲", " ▼"
SQUEEZE_FLOOR = 12  # a name is cut to no fewer cells than this before STATUS or NODE go


# cell render keys noted (`LiveTable._cell_made`) before they are noted again from the cache
# (evicted ones stay noted until then): twice DataTable's cell cache (10,000)
CELL_KEYS_MAX = 20_000

# line and row render keys noted (`LiveTable._note_drawn`) before the notes are made again
# from the caches (evicted ones stay noted until then): twice DataTable's two caches (1,000)
DRAWN_KEYS_MAX = 4_000

# lines spliced outside an AGE tick (a stats round's CPU and MEM) whose places are kept
# (`LiveTable._spliced`) before they are forgotten
SPLICED_MAX = 256

# a batch of at least this many rows into an empty table is loaded whole (`reload`)
BULK_LOAD = 200

# every table's row of one object id is one Row (its RowKey in it), shared while any table
# holds it: `:allocs` opened over the overview's allocations pane makes none. A load made two
# new objects a row that the cyclic collector walks (5,000 Rows and RowKeys at 5,000
# allocations), at each of its passes while the view was open (#17). DataTable changes a Row
# only for rows of auto height.
_ROWS: weakref.WeakValueDictionary[str, Row] = weakref.WeakValueDictionary()


@contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic collector held off for a bulk build (it was half of loading 5,000 rows)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _same_side(before: int, after: int, room: int) -> bool:
    """Both fit well inside `room` (a scrollbar's breadth spare) or both overflow it."""
    return (before > room and after > room) or (before <= room - 2 and after <= room - 2)


class Cell(Text):
    """One line of table text that measures itself by its length: DataTable measures every
    cell of every new row, and Text's general measure (word splitting) dominated opening a
    view of thousands of rows."""

    @classmethod
    def of(cls, value: Any) -> Cell:
        # a cell shows its text literally: controls visible, a 10,000-character name cut
        if isinstance(value, str) and is_plain(value):
            return cls(value, overflow="ellipsis")
        value = safe_text(value)
        return cls(value.plain, style=value.style, justify=value.justify,
                   overflow="ellipsis", no_wrap=value.no_wrap, end=value.end,
                   spans=list(value.spans))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.cell_len
        return Measurement(width, width)


class DrawnStyles:
    """A component's styles (`datatable--header`…) during one drawing pass: DataTable reads
    their Rich style for every line, each read building the styles again and walking the
    ancestors; here it is read once."""

    def __init__(self, styles: RenderStyles) -> None:
        self.styles = styles
        self.rich_style = styles.rich_style

    def __getattr__(self, name: str) -> Any:
        return getattr(self.styles, name)


def cell_line(cell: Any, width: int, pad: int, pre: Style, post: Style,
              style_of: Any, console: Console | None = None) -> list[Segment] | None:
    """A cell's one line of segments, made directly: what DataTable gets from Rich for it
    (`Styled(Padding(cell))` through `Console.render_lines`, segment for segment) for a
    Cell, left-aligned, that fits its column. Rich's way was most of drawing a table (a
    first frame, opening `:allocs`): measuring, wrapping, joining, cropping and padding each
    cell's text through generators. A cell with spans (CPU's figure and sparkline, redrawn
    at each stats read) is split into its styled pieces as Rich's join and render do (its
    own style becomes a span over the whole text), given the `console`. None for any other
    cell (Rich draws it: an ellipsis). `style_of` turns a style's name into a Style (the
    console's `get_style`)."""
    if type(cell) is not Cell or cell.justify not in (None, "default") or (
            cell._spans and console is None):
        return None
    inner = width - 2 * pad
    length = cell.cell_len
    if length > inner or inner < 0:
        return None
    text = cell.plain
    if "\n" in text or "\t" in text:
        return None
    own = cell.style
    if own:
        # Text.render gives a styled text its style as a span: Style.combine(null, style)
        style: Style | None = own if isinstance(own, Style) else style_of(own)
    else:
        style = None
    null = Style.null()

    def styled(s: Style | None) -> Style | None:  # Segment.apply_style(pre, post)
        if pre:
            s = pre + s
        if post:
            s = s + post if s else post
        return s

    edge = styled(null)
    line = [Segment(" " * pad, edge)] if pad else []
    if cell._spans and text and console is not None:
        # Text.join gives the cell's style to its text as a span under the cell's own
        spans = ([Span(0, len(text), own)] if own else []) + list(cell._spans)
        for piece in Text(text, spans=spans).render(console):
            line.append(Segment(piece.text, styled(piece.style)))
    else:
        line.append(Segment(text, styled(style if text else None)))  # "" takes no style
    if length < inner:
        line.append(Segment(" " * (inner - length), edge))
    if pad:
        line.append(Segment(" " * pad, edge))
    return line


def _one_style_text(cell: Any, inner: int) -> str | None:
    """A cell's text padded to its column's inner width, where `cell_line` draws it as
    one style from edge to edge (a plain Cell without style or spans that fits); else
    None."""
    if type(cell) is not Cell or cell._spans or cell.style or cell.justify not in (
            None, "default"):
        return None
    text = cell.plain
    length = cell.cell_len
    if not text or length > inner or "\n" in text or "\t" in text:
        return None  # "" takes no style: its line is not one style
    return text + " " * (inner - length)


def _splice(strip: Strip, x1: int, edits: list[tuple[int, str, str]],
            hint: dict[int, int] | None = None) -> tuple[Strip, dict[int, int]] | None:
    """`strip` (a table line cropped from `x1`) with each edit's old text, the whole of one
    segment at its x, replaced by its new text of the same width, in the same style; None
    where a segment is not so. With it, which segment each edit's x is at, to be the `hint`
    for the strip returned (its segments at those places: no walk along the line)."""
    segments = list(strip)
    if hint is not None:
        places: dict[int, int] = {}
        for x, old, new in edits:
            n = hint.get(x - x1)
            if n is None:
                break
            text, style, control = segments[n]
            if text != old or control:
                return None
            segments[n] = Segment(new, style)
            places[x - x1] = n
        else:
            return Strip(segments, strip.cell_length), places
        segments = list(strip)
    at = {x - x1: (old, new) for x, old, new in edits}
    found: dict[int, int] = {}
    x = 0
    for n, (text, style, control) in enumerate(segments):
        edit = at.get(x)
        if edit is not None:
            if text != edit[0] or control:
                return None
            segments[n] = Segment(edit[1], style)
            found[x] = n
            if len(found) == len(at):
                return Strip(segments, strip.cell_length), found
        x += len(text) if text.isascii() else cell_len(text)
    return None


def _cell_edit(place: tuple[int, int, int], pad: int, before: Any, after: Any
               ) -> tuple[int, str, str] | None:
    """One cell's edit for `_splice`: its column's left edge (`place`: left, width, index),
    its text before and after, each padded to the column; None where either is not plain
    text of one style that fits (`_one_style_text`)."""
    inner = place[1] - 2 * pad
    old = _one_style_text(before, inner)
    new = _one_style_text(after, inner)
    if old is None or new is None:
        return None
    space = " " * pad
    return place[0], space + old + space, space + new + space


def _runs(places: Iterable[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """The changed cells of a row, by their columns' (left edge, width, index): each run of
    adjacent columns as its (left, right) edges."""
    runs: list[tuple[int, int]] = []
    left, right, last = -1, -1, -2
    for x, width, n in sorted(places):
        if n != last + 1:
            if last >= 0:
                runs.append((left, right))
            left = x
        right, last = x + width, n
    if last >= 0:
        runs.append((left, right))
    return runs


class _Tick:
    """One AGE tick of a table's rows on screen (`LiveTable.refresh_columns`): a row whose
    changed cells fit their columns, each one style, on a line drawn as the table is now,
    gets the new text spliced into that line at once, and its caches' other entries go by
    their keys; the rows' cells are repainted together with the rest of the batch. What
    `_set_cells` and `_repaint_stale` do for any change, without their books per cell; any
    other row goes their way."""

    def __init__(self, table: LiveTable, view: tuple[int, int, Region, Offset]) -> None:
        self.table = table
        self.view = view  # `LiveTable._view`, read once for the tick
        # the rows spliced: their changed cells (their renders go), and by the (left, right)
        # edges of their changed cells the rows to repaint there
        self.rows: dict[RowKey, set[ColumnKey]] = {}
        self.spans: dict[tuple[int, int], list[int]] = {}
        self.ready = False

    def _start(self) -> None:
        table = self.table
        self.ready = True
        self.ok = not (table.fixed_columns or table._row_label_column_width
                       or table.fixed_rows) and table.is_attached
        self.header = table.header_height if table.show_header else 0
        self.pad = table.cell_padding
        self.lefts = table._layout()[1]
        self.now = table._line_state()
        self.lines_noted, self.rows_noted = table._drawn_keys()
        self.hints, table._spliced = table._spliced, {}

    def splice(self, row: int, id_: str, changed: list[tuple[str, Cell]]) -> bool:
        """The row's new cells, spliced into its line; False (nothing done) where it cannot
        be: `_set_cells` takes it."""
        if row < 0:
            return False
        if not self.ready:
            self._start()
        if not self.ok:
            return False
        table = self.table
        row_key = table._row_key.get(id_)
        data = table._data.get(row_key) if row_key is not None else None
        if row_key is None or data is None:
            return False
        edits: list[tuple[int, str, str]] = []
        columns: list[tuple[str, ColumnKey, Cell, Any]] = []
        places: list[tuple[int, int, int]] = []
        for key, cell in changed:
            column_key = table._column_key[key]
            place = self.lefts.get(column_key)
            if place is None or cell.cell_len > table._all[key].content_width:
                return False  # not shown, or wider than its column
            before = data.get(column_key)
            edit = _cell_edit(place, self.pad, before, cell)
            if edit is None:
                return False
            edits.append(edit)
            columns.append((key, column_key, cell, before))
            places.append(place)
        y = row + self.header
        line_key = (y, *self.now)
        cache = table._line_cache
        strip = cache.get(line_key)
        if strip is None:
            return False
        hint = self.hints.get(y)
        made = _splice(strip, line_key[1], edits,
                       hint[1] if hint is not None and hint[0] is strip else None)
        if made is None:
            return False
        for key, column_key, cell, before in columns:
            data[column_key] = cell
            table._note_narrower(key, before, cell)
        table._row_renderable_cache.discard((table._update_count, row))
        cache.discard(line_key)  # LRUCache.set keeps an existing key's value
        cache.set(line_key, made[0])
        table._spliced[y] = made
        for other in self.lines_noted.pop(y, ()):
            if other != line_key:
                cache.discard(other)
        self.lines_noted[y] = {line_key}
        renders = table._row_render_cache
        for rkey in self.rows_noted.pop(id_, ()):
            renders.discard(rkey)
        self.rows[row_key] = {column_key for _, column_key, _, _ in columns}
        if len(places) == 1:  # (an AGE tick's one cell)
            x, width, _ = places[0]
            self.spans.setdefault((x, x + width), []).append(row)
        else:
            for span in _runs(places):
                self.spans.setdefault(span, []).append(row)
        return True


class LiveTable(NavKeys, DataTable[Any]):
    """Rows keyed by object id; `apply(ids)` brings exactly those rows up to date."""

    DEFAULT_CSS = """
    LiveTable { height: 1fr; }
    """

    class Act(Message):
        """The user asked for an action on the selected object."""

        def __init__(self, table: LiveTable, action: str) -> None:
            super().__init__()
            self.table = table
            self.action = action

    class Loaded(Message):
        """A load finished: every row of the store is in the table."""

        def __init__(self, table: LiveTable) -> None:
            super().__init__()
            self.table = table

    class FilterRequested(Message):
        def __init__(self, table: LiveTable) -> None:
            super().__init__()
            self.table = table

    def __init__(self, kind: Kind, store: Store, history: History, *,
                 keymap: tuple[Key, ...] = (), read_only: bool = False,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        for key in for_scopes(keymap, {"table", kind.value}):
            if key.action == "open":
                continue  # DataTable's own enter opens
            bind(self._bindings, key if usable(key.action, read_only) else refused(key))
        self.kind = kind
        self.store = store
        self.history = history
        self.columns_spec = columns_for(kind, store)
        self.filter_text = ""
        self._texts: dict[str, tuple[str, ...]] = {}  # what each drawn row shows, for diffing
        # the object each row shows, as of the last change applied: cells are made from it
        # without asking the store (its lock, contended by the sources' threads at 5,000
        # allocations, cost up to a millisecond a row)
        self._objs: dict[str, Any] = {}
        self._pending: set[str] = set()  # rows in the table whose cells are not computed yet
        self._order: list[tuple[Any, ...]] = []  # (sort key, default order, id), ascending
        self._key_of: dict[str, tuple[Any, ...]] = {}  # id → its entry in _order
        self._row_key: dict[str, RowKey] = {}
        self._column_key = {c.key: ColumnKey(c.key) for c in self.columns_spec}
        self._all: dict[str, Any] = {}  # every DataTable column, shown or not, by key
        self._shown: list[str] = []  # the keys of the columns shown, in order
        self._squeeze: int | None = None  # the first column's width while it is cut
        self._priority = priority(kind, self.columns_spec)
        self._sort: tuple[str, bool] = DEFAULT_SORT.get(kind, (self.columns_spec[0].key, False))
        self._sort_fn: SortKey
        self._tie_fn: SortKey | None
        self._sort_functions()
        # what each row showed when its cells were last made, with the object they were
        # made from: a filter matches on it while the object is the same (store objects are
        # replaced, never changed), so each keystroke over 5,000 rows makes no cells again
        self._seen: dict[str, tuple[Any, tuple[str, ...]]] = {}
        # rows whose cells changed since the last repaint, and which of their columns: an
        # AGE tick re-renders one cell of each row on screen, not the whole row
        self._stale: dict[RowKey, set[ColumnKey]] = {}
        # what a stale cell showed before its change (the first value of the batch): its
        # drawn line can be spliced (`_splice_lines`)
        self._was: dict[tuple[RowKey, ColumnKey], Any] = {}
        # the keys of the cell renders cached under this update count, by cell
        # (`_cell_made`), and how many are noted (evicted ones among them)
        self._cell_keys: dict[tuple[RowKey, ColumnKey], list[tuple[Any, ...]]] = {}
        self._cell_keys_count = -1
        self._cell_keys_noted = 0
        self._moved = False  # rows were added, removed or moved: their places change
        self._moved_from = 0  # the first place in _order a change since the last _place touched
        self._narrower: dict[str, float] = {}  # column → since when its widest cell narrowed
        # by y, a line the last AGE tick (or a change) spliced, as left in the line cache, and
        # by each cell's x (from the line's first cell) the segment it is (`_splice`'s hint)
        self._spliced: dict[int, tuple[Strip, dict[int, int]]] = {}

    def on_mount(self) -> None:
        self._add_columns()
        chosen = self._sorts().get(self._sort_name())
        if chosen is not None and chosen[0] in self._all:
            self._sort = chosen
            self._sort_functions()
        self._label_sort()
        self.reload()

    def _add_columns(self) -> None:
        for col in self.columns_spec:
            key = self.add_column(col.label, key=col.key, width=col.width)
            column = self.columns[key]
            column.content_width = max(column.content_width, MIN_WIDTH.get(col.key, 0))
            self._all[col.key] = column
        self._shown = [c.key for c in self.columns_spec]

    def follow_columns(self) -> None:
        """The columns again from the store (NAMESPACE comes with Nomad's second namespace
        and goes with it, which may be after the table was first drawn): rebuilt and
        reloaded when they differ, the sort kept where its column still is."""
        spec = columns_for(self.kind, self.store)
        if [c.key for c in spec] == [c.key for c in self.columns_spec]:
            return
        self.columns_spec = spec
        self._column_key = {c.key: ColumnKey(c.key) for c in spec}
        self._priority = priority(self.kind, spec)
        if self._sort[0] not in self._column_key:
            self._sort = DEFAULT_SORT.get(self.kind, (spec[0].key, False))
        self._sort_functions()
        self._seen.clear()  # the texts a filter matched on have other columns now
        self.clear(columns=True)
        self._all.clear()
        self._squeeze = None
        self._add_columns()
        self._label_sort()
        self.reload()
        self._fit_columns()

    # -- what a row is ---------------------------------------------------------------------

    def _cells(self, obj: Any) -> list[Any]:
        # plain strings would be parsed as console markup by DataTable on every refresh
        # (and could misrender a name with brackets): hand it Text, parsed once, literally
        return [Cell.of(col.render(obj, self.store, self.history)) for col in self.columns_spec]

    def _scope(self) -> str:
        """`:ns`: the namespace the Nomad tables show, `*` for every one (and for the
        tables of other kinds)."""
        if self.kind not in (Kind.JOB, Kind.ALLOCATION):
            return "*"
        return getattr(self.app, "namespace_scope", "*")

    def _in_scope(self, obj: Any, scope: str | None = None) -> bool:
        """`obj` is shown under the scope (`_scope()` unless given: a load reads it once)."""
        scope = self._scope() if scope is None else scope
        return scope == "*" or getattr(obj, "namespace", scope) == scope

    def _matches(self, texts: Iterable[str]) -> bool:
        if not self.filter_text:
            return True
        needle = self.filter_text.lower()
        return any(needle in t.lower() for t in texts)

    def _entry(self, obj: Any) -> tuple[Any, ...]:
        """Where a row sorts: its sort column's key, the view's default order, its id."""
        tie = self._tie_fn(obj, self.store, self.history) if self._tie_fn else ()
        return (self._sort_fn(obj, self.store, self.history), tie, str(obj.id))

    # -- whole and partial updates ---------------------------------------------------------

    def reload(self) -> None:
        """Rebuild from the store (first show, a new filter). Every row goes in at once,
        sorted once; cells are made for the rows drawn, when they are drawn (with a filter,
        every row's text is needed to match it: `_seen` keeps them)."""
        keep = self.selected_id()
        self._texts = {}
        self.clear()
        self._pending.clear()
        self._key_of.clear()
        self._row_key.clear()
        self._stale.clear()
        self._was.clear()
        with no_gc():  # thousands of small objects at once: no collection passes meanwhile
            self._load(keep)

    def _load(self, keep: str | None) -> None:
        objs = self.store.items(self.kind)
        scope = self._scope()  # read once, not for each object
        if scope != "*":
            objs = [o for o in objs if self._in_scope(o, scope)]
        cells_of: dict[str, list[Any]] = {}
        if self.filter_text:
            matched = []
            for obj in objs:
                id_ = str(obj.id)
                seen = self._seen.get(id_)
                if seen is not None and seen[0] is obj:
                    if self._matches(seen[1]):
                        matched.append(obj)
                    continue
                cells = self._cells(obj)
                texts = tuple(plain(c) for c in cells)
                self._seen[id_] = (obj, texts)
                if self._matches(texts):
                    cells_of[id_] = cells
                    matched.append(obj)
            objs = matched
        self._objs = {str(o.id): o for o in objs}
        self._order = sorted(self._entry(o) for o in objs)
        self._add_rows([entry[-1] for entry in self._order])
        self._key_of.update((entry[-1], entry) for entry in self._order)
        for id_, cells in cells_of.items():
            self._store_cells(id_, cells)
        self._moved_at(0)
        self._place()
        self._restore(keep)
        # the first page measured before the first paint (the table has no height yet: as
        # many rows as the terminal has lines)
        self._fill(self._visible_ids(rows=self.app.size.height or 60))
        self.post_message(self.Loaded(self))

    def apply(self, ids: Iterable[str]) -> None:
        """Bring the rows of `ids` up to date with the store; nothing else is touched. A new
        row goes in with its sort key only (5,000 allocations in one batch make no cells):
        its cells are made when it is drawn. The first picture into an empty table (5,000
        allocations answering after the pane was drawn) is a load: sorted once, not put in
        row by row (2-4 times the time, with the loop stopped, while the sources' threads
        still decode)."""
        if not self._key_of:
            ids = ids if isinstance(ids, set | list | tuple | dict) else list(ids)
            if len(ids) >= BULK_LOAD:
                self.reload()
                return
        keep = self.selected_id()
        for id_ in ids:
            obj = self.store.get(self.kind, id_)
            if obj is None or not self._in_scope(obj):
                self._seen.pop(id_, None)
                self._drop(id_)
                continue
            cells = None
            if self.filter_text or (id_ in self._texts):
                cells = self._cells(obj)
                if not self._matches(plain(c) for c in cells):
                    self._drop(id_)
                    continue
            self._objs[id_] = obj
            entry = self._entry(obj)
            old = self._key_of.get(id_)
            if old is None:
                self._insort(entry)
                self._new_row(id_, cells)
            elif old != entry:
                self._move(old, entry)
            if cells is not None and old is not None:
                if id_ in self._texts:
                    self._update_row(id_, cells)
                else:
                    self._store_cells(id_, cells)
        self._place()
        self._repaint_stale()
        self._restore(keep)

    def _new_row(self, id_: str, cells: list[Any] | None) -> None:
        self._add_rows([id_])
        if cells is not None:
            self._store_cells(id_, cells)

    def _add_rows(self, ids: list[str]) -> None:
        """Rows for `ids` (new to the table), their cells not made yet (`_pending`)."""
        rows = []
        for id_ in ids:
            row = _ROWS.get(id_)
            if row is None:
                row = _ROWS[id_] = Row(RowKey(id_), 1)
            rows.append(row)
        keys = [row.key for row in rows]
        self._row_key.update(zip(ids, keys, strict=True))
        self.rows.update(zip(keys, rows, strict=True))
        self._data.update((key, {}) for key in keys)
        self._pending.update(ids)

    def _store_cells(self, id_: str, cells: list[Any]) -> None:
        """A row's cells, computed: kept, and any wider than its column widens it."""
        row_key = self._row_key[id_]
        self._data[row_key] = {self._column_key[col.key]: cell
                               for col, cell in zip(self.columns_spec, cells, strict=True)}
        self._texts[id_] = texts = tuple(plain(c) for c in cells)
        self._seen[id_] = (self._objs.get(id_), texts)
        self._pending.discard(id_)
        widened = False
        for col, cell in zip(self.columns_spec, cells, strict=True):
            column = self._all[col.key]
            if cell.cell_len > column.content_width:
                column.content_width = cell.cell_len
                widened = True
        if widened:
            self._widths_changed()

    def _fill(self, ids: Iterable[str]) -> None:
        for id_ in ids:
            if id_ in self._pending:
                obj = self._objs.get(id_)
                if obj is None:
                    self._pending.discard(id_)
                    continue
                self._store_cells(id_, self._cells(obj))

    def _update_row(self, id_: str, cells: list[Any]) -> None:
        texts = tuple(plain(c) for c in cells)
        old = self._texts[id_]
        self._set_cells(id_, [
            (col.key, cell) for col, cell, before, after in zip(
                self.columns_spec, cells, old, texts, strict=True)
            if before != after
        ])
        self._texts[id_] = texts
        self._seen[id_] = (self._objs.get(id_), texts)

    # -- order -----------------------------------------------------------------------------

    def _moved_at(self, at: int) -> None:
        """Places from `at` (in _order) on may hold other rows now."""
        self._moved_from = min(self._moved_from, at) if self._moved else at
        self._moved = True

    def _insort(self, entry: tuple[Any, ...]) -> None:
        at = bisect.bisect_right(self._order, entry)
        self._order.insert(at, entry)
        self._key_of[entry[-1]] = entry
        self._moved_at(at)

    def _unsort(self, entry: tuple[Any, ...]) -> None:
        at = bisect.bisect_left(self._order, entry)
        if at < len(self._order) and self._order[at] == entry:
            del self._order[at]
            self._moved_at(at)
        else:  # not where its key says (cannot happen): find it by id
            self._order = [e for e in self._order if e[-1] != entry[-1]]
            self._moved_at(0)

    def _move(self, old: tuple[Any, ...], entry: tuple[Any, ...]) -> None:
        """A row's key changed: where it keeps its place (a CPU figure, most often), only
        the list learns the new key; the rows are placed again only if it moved."""
        at = bisect.bisect_left(self._order, old)
        if at < len(self._order) and self._order[at] == old:
            del self._order[at]
            to = bisect.bisect_left(self._order, entry)
            self._order.insert(to, entry)
            self._key_of[entry[-1]] = entry
            if to != at:
                self._moved_at(min(to, at))
            return
        self._unsort(old)
        self._insort(entry)

    def _place(self) -> None:
        """Give every row its place from the sorted list (once per batch that moved rows)."""
        if not self._moved:
            return
        self._moved = False
        row_key = self._row_key
        order = self._order
        before = len(self._row_locations)
        first, self._moved_from = self._moved_from, 0
        if self._sort[1] or first == 0 or not before:  # every place anew
            first = 0
            ids = [entry[-1] for entry in order]
            if self._sort[1]:
                ids.reverse()
            self._row_locations = TwoWayDict({row_key[id_]: n for n, id_ in enumerate(ids)})
        else:  # the places from the first change on (a new row below: a few, not 5,000)
            forward, reverse = self._row_locations._forward, self._row_locations._reverse
            for n in range(first, before):
                del forward[reverse.pop(n)]
            for n in range(first, len(order)):
                key = row_key[order[n][-1]]
                forward[key] = n
                reverse[n] = key
        self._relocated(first, before)
        self.cursor_coordinate = self.cursor_coordinate  # clamped to the rows there are
        self._require_update_dimensions = True
        self.check_idle()

    def _relocated(self, first: int, before: int) -> None:
        """Rows were placed again: only what is drawn of rows whose place changed goes from
        the caches, and only their lines are repainted. DataTable's way (a new update count)
        threw away every cached cell and line and walked all rows twice for their offsets:
        66 ms (up to 260) a frame for one new allocation among 5,000, wherever it went.
        Places from `first` on may show another row; `before` rows were placed."""
        after = self._row_locations
        place = after._forward
        cached = {k[0] for k in self._row_render_cache.keys()}  # noqa: SIM118
        cached.update(k[0] for k in self._cell_render_cache.keys())  # noqa: SIM118
        cached.discard(self._header_row_key)  # the header keeps its line
        moved = {k for k in cached if place.get(k, first) >= first}
        for key in [k for k in self._row_render_cache.keys() if k[0] in moved]:  # noqa: SIM118
            self._row_render_cache.discard(key)
        for ckey in [k for k in self._cell_render_cache.keys()  # noqa: SIM118
                     if k[0] in moved]:
            self._cell_render_cache.discard(ckey)
        for rkey in [k for k in self._row_renderable_cache.keys()  # noqa: SIM118
                     if k[1] >= first]:
            self._row_renderable_cache.discard(rkey)
        header = self.header_height if self.show_header else 0
        for lkey in [k for k in self._line_cache.keys()  # noqa: SIM118
                     if k[0] >= first + header]:
            self._line_cache.discard(lkey)
        self._offset_cache.clear()
        self._ordered_row_cache.clear()
        top = max(0, int(self.scroll_y))
        for row in range(max(first, top), min(len(after), top + self.size.height + 1)):
            self.refresh_row(row)
        if len(after) < before:  # the lines below the last row are blank now
            for row in range(max(len(after), top), min(before, top + self.size.height + 1)):
                self._refresh_region(self._get_row_region_unchecked(row))

    def _get_row_region_unchecked(self, row_index: int) -> Region:
        header = self.header_height if self.show_header else 0
        return Region(0, row_index + header, max(self.size.width, self.virtual_size.width), 1)

    # every row is one line: the line y shows the row at y (DataTable builds a list of every
    # row's lines, 5,000 entries, each time its update count moves, to look one up)

    def _get_offsets(self, y: int) -> tuple[RowKey, int]:
        if self.show_header:
            if y < self.header_height:
                return self._header_row_key, y
            y -= self.header_height
        key = self._row_locations.get_key(y)
        if key is None:
            raise LookupError(f"Y coord {y!r} is greater than total height")
        return key, 0

    @property
    def _total_row_height(self) -> int:
        return len(self.rows)

    def _sort_functions(self) -> None:
        """The sort column's key, and the default column's to break its ties."""
        by_key = {c.key: c for c in self.columns_spec}
        column = by_key.get(self._sort[0], self.columns_spec[0])
        self._sort_fn = sort_key(self.kind, column)
        default = by_key.get(DEFAULT_SORT.get(self.kind, ("",))[0])
        self._tie_fn = (sort_key(self.kind, default)
                        if default is not None and default is not column else None)

    def _sort_name(self) -> str:
        screen = getattr(self, "screen", None)
        return f"{getattr(screen, 'name', '') or ''}/{self.kind.value}"

    def _sorts(self) -> dict[str, tuple[str, bool]]:
        sorts = getattr(self.app, "table_sorts", None)
        return sorts if isinstance(sorts, dict) else {}

    def set_sort(self, key: str, reverse: bool) -> None:
        """Sort by a column (kept for this view for the session)."""
        if key not in self._all:
            return
        keep = self.selected_id()
        self._sort = (key, reverse)
        self._sort_functions()
        self._sorts()[self._sort_name()] = self._sort
        self._label_sort()
        by_id = self._objs
        self._order = sorted(self._entry(by_id[id_]) for id_ in self._key_of if id_ in by_id)
        self._key_of = {entry[-1]: entry for entry in self._order}
        self._moved_at(0)
        self._place()
        self._restore(keep)

    def sort_by(self, key: str) -> None:
        """A header click: sort by this column, or reverse it if it is the sort already."""
        self.set_sort(key, self._sort[0] == key and not self._sort[1])

    def _label_sort(self) -> None:
        for spec in self.columns_spec:
            column = self._all.get(spec.key)
            if column is None:
                continue
            mark = (DOWN if self._sort[1] else UP) if spec.key == self._sort[0] else ""
            column.label = Text(spec.label + mark)
            column.content_width = max(column.content_width, column.label.cell_len)
        self._widths_changed()

    # -- drawing only what changed ---------------------------------------------------------

    def _set_cells(self, id_: str, changed: list[tuple[str, Cell]]) -> None:
        """New values for some cells of one row. Where they fit their columns, only this
        row's cache entries go (see `_repaint_stale`); a wider cell widens its column (and
        redraws the table); a column whose widest cell narrowed is noted, to shrink later."""
        if not changed:
            return
        row_key = self._row_key[id_]
        data = self._data[row_key]
        widen = False
        columns: set[ColumnKey] = set()
        was: list[tuple[ColumnKey, Any]] = []
        for key, cell in changed:
            column_key = self._column_key[key]
            columns.add(column_key)
            column = self._all[key]
            before = data.get(column_key)
            was.append((column_key, before))
            data[column_key] = cell
            if cell.cell_len > column.content_width:
                column.content_width = cell.cell_len
                widen = True
            else:
                self._note_narrower(key, before, cell)
        if widen:
            self._widths_changed()
        else:
            self._stale.setdefault(row_key, set()).update(columns)
            for column_key, before in was:
                self._was.setdefault((row_key, column_key), before)

    def _widths_changed(self) -> None:
        """A column's width changed: every cached line is stale, the columns are fitted to
        the width again."""
        self._update_count += 1
        self._clear_caches()
        self._fit_columns()
        self._require_update_dimensions = True
        self.check_idle()
        self.refresh()

    def _note_narrower(self, key: str, before: Any, after: Cell) -> None:
        """Column `key`'s widest cell (`before`) gave way to a narrower one: since when, for
        the column to shrink once it has stayed so (`SHRINK_AFTER`)."""
        if (isinstance(before, Text) and before.cell_len > after.cell_len
                and before.cell_len >= self._all[key].content_width):
            self._narrower.setdefault(key, time.monotonic())

    def _shrink_columns(self) -> None:
        """Columns whose widest cell has been narrower for a while take the width of what
        they show now (never below their header or minimum)."""
        now = time.monotonic()
        due = [k for k, since in self._narrower.items() if now - since >= SHRINK_AFTER]
        if not due:
            return
        changed = False
        for key in due:
            del self._narrower[key]
            column = self._all[key]
            ck = self._column_key[key]
            widest = max((cell.cell_len for data in self._data.values()
                          if isinstance(cell := data.get(ck), Text)), default=0)
            width = max(widest, column.label.cell_len, MIN_WIDTH.get(key, 0))
            if width < column.content_width:
                column.content_width = width
                changed = True
        if changed:
            self._widths_changed()

    def _repaint_stale(self, tick: _Tick | None = None) -> None:
        """Drop the cache entries of the changed cells (one pass over each cache for the whole
        batch), render those cells into their rows' cached lines, and repaint just those
        lines; Textual paints them together on the next frame. A row whose changed cells are
        all in columns not shown (CPU on a narrow pane) is not repainted at all."""
        stale, self._stale = self._stale, {}
        was, self._was = self._was, {}
        if not self.is_attached:
            return  # being removed: its component styles may be gone already (KeyError)
        ticked = tick.rows if tick is not None else {}
        if ticked:
            self._drop_cells(ticked)  # the spliced cells' renders
        shown = self._column_locations
        stale = {k: cols for k, cols in stale.items() if any(c in shown for c in cols)}
        placed = {k: row for k in stale if (row := self._row_locations.get(k)) is not None}
        rows = set(placed.values())
        if not rows:
            if tick is not None and tick.spans:
                self._refresh_cells({}, {}, tick)
            return
        header = self.header_height if self.show_header else 0
        self._drop_cells(stale)  # only the cells that changed are rendered again
        # DataTable's row renderables are keyed (update count, row): those of an older count
        # are never asked for again, the current ones go by their keys (no pass)
        renderables = self._row_renderable_cache
        count = self._update_count
        for row in rows:
            renderables.discard((count, row))
        spliced = self._splice_lines(stale, was, header, placed)
        self._patch_rows({k: v for k, v in stale.items() if k not in spliced})
        lines = {row + header for k, row in placed.items() if k not in spliced}
        if lines:
            noted = self._drawn_keys()[0]
            for lkey in [k for y in lines for k in noted.pop(y, ())]:
                self._line_cache.discard(lkey)
        self._refresh_cells(stale, placed, tick)

    def _splice_lines(self, stale: dict[RowKey, set[ColumnKey]],
                      was: dict[tuple[RowKey, ColumnKey], Any], header: int,
                      placed: dict[RowKey, int]) -> set[RowKey]:
        """The drawn lines (DataTable's line cache) of rows whose changed cells are plain
        text of one style (AGE: `12s` → `13s`), with the new text put in place of the old in
        the cell's one segment: what rendering the row again gives (a cell is one style
        from edge to edge, its own segment: each cell's style carries its row and column),
        for a copy of the line's segments instead of the whole row rendered, joined, cropped
        and simplified again. A line that does not show the old text where the cell is
        (cut by a horizontal scroll, drawn in another way) goes; a row with such a line, or
        with no drawn line, is drawn again as before (`_patch_rows`). The rows spliced."""
        if self.fixed_columns or self._row_label_column_width or self.fixed_rows:
            return set()
        pad = self.cell_padding
        lefts = self._layout()[1]
        by_line: dict[int, tuple[RowKey, list[tuple[int, str, str]]]] = {}
        for row_key, columns in stale.items():
            row = placed.get(row_key)
            data = self._data.get(row_key)
            if row is None or data is None:
                continue
            edits: list[tuple[int, str, str]] = []
            for column_key in columns:
                place = lefts.get(column_key)
                if place is None:
                    continue  # not shown
                edit = _cell_edit(place, pad, was.get((row_key, column_key)),
                                  data.get(column_key))
                if edit is None:
                    edits = []
                    break
                edits.append(edit)
            if edits:
                by_line[row + header] = (row_key, edits)
        if not by_line:
            return set()
        cache = self._line_cache
        spliced: set[RowKey] = set()
        failed: set[RowKey] = set()
        # a line drawn in another state (the cursor or the mouse elsewhere) just goes: each
        # row the cursor passed over left one such line per place, all spliced each second
        now = self._line_state()
        lines_noted, rows_noted = self._drawn_keys()
        # the lines the last tick left, with where their cells are: this tick's are the same
        # cells of the same lines (the same column, a second on), found without a walk (an
        # AGE tick keeps only its own: `_Tick`)
        hints = self._spliced
        if len(hints) > SPLICED_MAX:
            hints.clear()
        for key in [k for y in by_line for k in lines_noted.pop(y, ())]:
            row_key, edits = by_line[key[0]]
            strip = cache.get(key) if key[1:] == now else None
            made = None
            if strip is not None:
                hint = hints.get(key[0])
                made = _splice(strip, key[1], edits,
                               hint[1] if hint is not None and hint[0] is strip else None)
            cache.discard(key)
            if made is not None:
                cache.set(key, made[0])
                hints[key[0]] = made
                lines_noted[key[0]] = {key}
                spliced.add(row_key)
            elif key[1:] == now:
                failed.add(row_key)
        spliced -= failed
        # their rows' renders go (DataTable's row cache: a line is drawn again from its row's
        # render only where the line is not cached, as after a horizontal scroll; a move of
        # the cursor or the mouse is a new key for every row): splicing them too each second
        # cost more than drawing the few again then
        rows = self._row_render_cache
        for rkey in [k for key in spliced for k in rows_noted.pop(key.value, ())]:
            rows.discard(rkey)
        return spliced

    def _drawn_keys(self, whole: bool = True) -> tuple[dict[int, set[tuple[Any, ...]]],
                                                       dict[Any, set[tuple[Any, ...]]]]:
        """DataTable's line cache keys by the line's y and its row render keys by the row's
        id, of the current update count (those of an older one are never asked for again),
        as the drawing pass noted them (`render_line`): a changed row's entries are found by
        look-up, not by a pass over up to 1,000 keys of each cache (a key holding a RowKey
        hashes in Python). Where a line was drawn outside a pass, or more were noted than
        `DRAWN_KEYS_MAX`, the notes are made again from the caches (one pass; not while
        noting: `whole` False). A note may name an entry gone since (evicted, dropped): a
        superset."""
        count = self._update_count
        if self._drawn_count != count:  # a new count: nothing of it is cached unnoted
            self._drawn_count = count
            self._lines_noted, self._rows_noted = {}, {}
            self._drawn_noted, self._drawn_whole = 0, True
        elif whole and (not self._drawn_whole or self._drawn_noted > DRAWN_KEYS_MAX):
            lines: dict[int, set[tuple[Any, ...]]] = {}
            rows: dict[Any, set[tuple[Any, ...]]] = {}
            for key in self._line_cache.keys():  # noqa: SIM118
                if key[9] == count:
                    lines.setdefault(key[0], set()).add(key)
            for rkey in self._row_render_cache.keys():  # noqa: SIM118
                if rkey[8] == count:
                    rows.setdefault(rkey[0].value, set()).add(rkey)
            self._lines_noted, self._rows_noted = lines, rows
            self._drawn_noted = len(self._line_cache) + len(self._row_render_cache)
            self._drawn_whole = True
        return self._lines_noted, self._rows_noted

    def _note_drawn(self, line: tuple[Any, ...], row: tuple[Any, ...] | None) -> None:
        """A line DataTable drew in a pass, under its line cache key, and the row render it
        was drawn from (`_drawn_keys`)."""
        lines, rows = self._drawn_keys(whole=False)
        if self._drawn_noted > DRAWN_KEYS_MAX:  # (a settled table's cursor going about)
            lines.clear()  # forgotten: the next tick notes the caches again
            rows.clear()
            self._drawn_whole = False
            return
        lines.setdefault(line[0], set()).add(line)
        if row is not None:
            rows.setdefault(row[0].value, set()).add(row)
        self._drawn_noted += 2

    # the update count the notes are of; they name every entry of it in the caches (unless
    # a line was drawn outside a pass); how many were noted
    _drawn_count = -1
    _drawn_whole = True
    _drawn_noted = 0
    _lines_noted: dict[int, set[tuple[Any, ...]]]
    _rows_noted: dict[Any, set[tuple[Any, ...]]]

    # what the line cache keys of the last drawing pass held beside each line's y
    _drawn_state: tuple[Any, ...] | None = None

    def _line_state(self) -> tuple[Any, ...]:
        """What DataTable's line cache key holds beside the line's y for the lines drawn as
        the table is now: as the last drawing pass made it (`render_line`; its very
        objects, so a key compares by identity), or read now before any."""
        if self._drawn_state is not None:
            return self._drawn_state
        return self._line_state_now(self.scroll_offset.x)

    def _line_state_now(self, scroll_x: int) -> tuple[Any, ...]:
        """DataTable's line cache key beside the line's y, read from the table now."""
        width = self.size.width
        return (scroll_x, scroll_x + width, width, self.cursor_coordinate,
                self.hover_coordinate, self.rich_style, self.cursor_type,
                self._show_hover_cursor, self._update_count, self._pseudo_class_state)

    def _row_state(self, line: tuple[Any, ...]) -> tuple[Any, ...]:
        """What DataTable's row render key holds beside the row and its line, for the line
        state `line` (`_render_line_in_row`)."""
        return (line[5], line[3], line[4], line[6], self.show_cursor, *line[7:])

    def _column_places(self) -> list[tuple[int, int]]:
        """Each column's left edge on the table's line (after the row labels) and its drawn
        width, in the order drawn."""
        return self._layout()[0]

    def _layout(self) -> tuple[list[tuple[int, int]], dict[ColumnKey, tuple[int, int, int]]]:
        """The columns' places (`_column_places`), and by column key its left edge, width
        and index: made again only when the table's update count, padding, row labels or
        columns shown change (every width change moves the update count: DataTable's line
        and row caches are keyed by it too), not at each AGE tick (24 width reads)."""
        key = (self._update_count, self.cell_padding, self._row_label_column_width,
               self._column_locations, len(self.columns))
        kept = self._layout_kept
        if kept is not None and kept[0] == key:
            return kept[1]
        places: list[tuple[int, int]] = []
        lefts: dict[ColumnKey, tuple[int, int, int]] = {}
        x = self._row_label_column_width
        for n, column in enumerate(self.ordered_columns):
            width = column.get_render_width(self)
            places.append((x, width))
            lefts[column.key] = (x, width, n)
            x += width
        self._layout_kept = (key, (places, lefts))
        return places, lefts

    # (the key `_layout` was made under, its places and lefts)
    _layout_kept: tuple[tuple[Any, ...], tuple[list[tuple[int, int]],
                                               dict[ColumnKey, tuple[int, int, int]]]] | None = None

    def _refresh_cells(self, stale: dict[RowKey, set[ColumnKey]],
                       placed: dict[RowKey, int], tick: _Tick | None = None) -> None:
        """Repaint the changed cells' regions on screen, not their whole lines: Textual's
        compositor cuts, styles and sends what a repainted region covers, so an AGE tick of
        40 rows sent 40 lines of 160 cells to the terminal for 40 cells of 3-6 characters.
        The widget still renders each touched line whole (into its line cache), so what is
        on screen beside the cells is what it was. Adjacent changed cells of a row (CPU and
        MEM) go as one region, and so do the same cells of rows one below the other (an AGE
        tick's column: one region, not one a row, the same cells); rows off screen are
        skipped. `placed`: each row's place; `tick`: an AGE tick's rows spliced, and the view
        it read."""
        top, height, window, offset = self._view() if tick is None else tick.view
        bottom = top + height
        header = self.header_height if self.show_header else 0
        lefts = self._layout()[1]
        # (left, right) → the rows changed there
        rows_of: dict[tuple[int, int], list[int]] = dict(tick.spans) if tick is not None else {}
        for row_key, columns in stale.items():
            row = placed.get(row_key)
            if row is None or not top <= row <= bottom:
                continue
            for span in _runs(place for c in columns if (place := lefts.get(c)) is not None):
                rows_of.setdefault(span, []).append(row)
        if not rows_of:
            return
        offset = -offset
        regions: list[Region] = []
        for (left, right), rows in rows_of.items():
            rows.sort()
            first = previous = rows[0]
            for row in (*rows[1:], -2):
                if row == previous + 1:
                    previous = row
                    continue
                region = Region(left, first + header, right - left, previous - first + 1)
                if window.overlaps(region):
                    regions.append(region.translate(offset))
                first = previous = row
        if regions:
            self.refresh(*regions)

    def _patch_rows(self, stale: dict[RowKey, set[ColumnKey]]) -> None:
        """A changed row's cached render (its cells' segments, DataTable's row cache) gets
        its changed cells rendered again in place; the others stay as they were. Building the
        whole row again (every cell looked up, styled and joined) was most of a repainted
        line's cost: a millisecond each, for one AGE or CPU figure. An entry made in another
        state (cursor shown or not, another update count or pseudo-class) just goes."""
        if not stale:
            return
        cache = self._row_render_cache
        now = (self.show_cursor, self._show_hover_cursor, self._update_count,
               self._pseudo_class_state)
        highlight = self._should_highlight
        noted = self._drawn_keys()[1]
        for key in [k for row_key in stale for k in noted.pop(row_key.value, ())]:
            row_key, line_no, base_style, cursor, hover, cursor_type = key[:6]
            row = self._row_locations.get(row_key)
            cached = cache.get(key)
            if key[6:10] != now or line_no != 0 or row is None or cached is None:
                cache.discard(key)
                continue
            fixed, scrollable = cached
            scrollable = list(scrollable)
            row_style = self._get_row_style(row, base_style)
            for column_key in stale[row_key]:
                at = self._column_locations.get(column_key)
                if at is None or at >= len(scrollable) - 1:  # not shown (the last: filler)
                    continue
                width = self.ordered_columns[at].get_render_width(self)
                where = Coordinate(row, at)
                scrollable[at] = self._render_cell(
                    row, at, row_style, width, cursor=highlight(cursor, where, cursor_type),
                    hover=highlight(hover, where, cursor_type))[0]
            cache.discard(key)  # LRUCache.set keeps an existing key's value
            cache.set(key, (fixed, scrollable))
            noted[row_key.value] = {key}

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        """A row's cell: made here (`cell_line`) for a plain Cell, by DataTable (Rich) for
        a header, a cut cell or one with spans; cached under DataTable's own key, so its
        cache keeps working the same (`_patch_rows`, `_repaint_stale`)."""
        if row_index < 0 or column_index < 0 or self.fixed_rows or self.fixed_columns:
            return super()._render_cell(row_index, column_index, base_style, width,
                                        cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        if row_key is None or column_key is None:
            return super()._render_cell(row_index, column_index, base_style, width,
                                        cursor, hover)
        key = (row_key, column_key, base_style, cursor, hover, self._show_hover_cursor,
               self._update_count, self._pseudo_class_state)
        cache = self._cell_render_cache
        lines = cache.get(key)
        if lines is not None:
            return lines
        self._cell_made(key)
        if row_key.value in self._pending:
            self._fill([str(row_key.value)])
        data = self._data.get(row_key)
        cell = data.get(column_key) if data is not None else None
        line = None
        if cell is not None:
            component, post = self._get_styles_to_render_cell(
                False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
                self.cursor_foreground_priority == "css",
                self.cursor_background_priority == "css")
            pre = base_style + Style.from_meta({"row": row_index, "column": column_index})
            line = cell_line(cell, width, self.cell_padding, pre + component, post,
                             self._style_of, self.app.console)
        if line is None:
            return super()._render_cell(row_index, column_index, base_style, width,
                                        cursor, hover)
        cache[key] = lines = [line]
        return lines

    def _cell_made(self, key: tuple[Any, ...]) -> None:
        """Note a cell render's cache key under its cell (`_cell_keys`), so that a changed
        cell's renders go by look-up (`_drop_cells`), not by a pass over the whole cache.
        Keys of an older update count are never asked for again: forgotten."""
        if self._cell_keys_count != self._update_count:  # the first under this count
            self._cell_keys = {}
            self._cell_keys_count = self._update_count
            self._cell_keys_noted = 0
        elif self._cell_keys_noted >= CELL_KEYS_MAX:  # the evicted go: noted again from the cache
            count = self._update_count
            self._cell_keys = {}
            self._cell_keys_noted = 0
            for noted in self._cell_render_cache.keys():  # noqa: SIM118
                if noted[6] == count:
                    self._cell_keys.setdefault((noted[0], noted[1]), []).append(noted)
                    self._cell_keys_noted += 1
        self._cell_keys.setdefault((key[0], key[1]), []).append(key)
        self._cell_keys_noted += 1

    def _drop_cells(self, stale: dict[RowKey, set[ColumnKey]]) -> None:
        """The cached renders of the changed cells go: by their noted keys (every render
        cached under this update count is noted), else by a pass over the cache."""
        cells = self._cell_render_cache
        if self._cell_keys_count != self._update_count or self.fixed_rows or self.fixed_columns:
            for ckey in [k for k in cells.keys()  # noqa: SIM118
                         if k[1] in stale.get(k[0], ())]:
                cells.discard(ckey)
            return
        keys = self._cell_keys
        for row_key, columns in stale.items():
            for column_key in columns:
                for ckey in keys.pop((row_key, column_key), ()):
                    cells.discard(ckey)

    def _style_of(self, name: str) -> Style:
        """A style's name as the console reads it (a span's, in Text.render), kept."""
        styles: dict[str, Style] = self.__dict__.setdefault("_styles_by_name", {})
        style = styles.get(name)
        if style is None:
            style = styles[name] = self.app.console.get_style(name, default=Style.null())
        return style

    # every row is one line: where a row is on the page is its index (DataTable adds up the
    # heights of all the rows above it, for each row it repaints: rows 4,000 down cost 4,000
    # steps each, a third of the loop in a 5,000-allocation lab)

    def _get_row_region(self, row_index: int) -> Region:
        if not self.is_valid_row_index(row_index):
            return Region(0, 0, 0, 0)
        width = sum(c.get_render_width(self) for c in self.columns.values())
        header = self.header_height if self.show_header else 0
        return Region(0, row_index + header, max(self.size.width, width), 1)

    def _get_cell_region(self, coordinate: Coordinate) -> Region:
        if not self.is_valid_coordinate(coordinate):
            return Region(0, 0, 0, 0)
        row_index, column_index = coordinate
        columns = self.ordered_columns
        x = sum(c.get_render_width(self) for c in columns[:column_index])
        header = self.header_height if self.show_header else 0
        return Region(x, row_index + header, columns[column_index].get_render_width(self), 1)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """The scrollable size again (rows come in through _new_row with their widths
        measured as their cells are made: DataTable's own measuring went through Rich for
        every cell of every new row). Textual lays the whole screen out again for every new
        virtual size (`virtual_size` is a layout reactive), and so drew every pane again:
        54 times while Consul's services came in at 5,000 allocations (#17). The table's
        own size is the layout's (the grid's), so a new row count only needs the layout
        when a scrollbar comes or goes; otherwise the scrollbars learn it and the table is
        repainted."""
        header = self.header_height if self.show_header else 0
        size = Size(sum(c.get_render_width(self) for c in self.columns.values())
                    + self._row_label_column_width, self._total_row_height + header)
        old = self.virtual_size
        if size == old:
            return
        width, height = self.size
        if not (width and height and _same_side(old.width, size.width, width)
                and _same_side(old.height, size.height, height)):
            self.virtual_size = size  # a scrollbar may come or go: the layout decides
            return
        self.set_reactive(Widget.virtual_size, size)
        self._scroll_update(size)
        self.scroll_y = self.validate_scroll_y(self.scroll_y)
        self.refresh()

    def _view(self) -> tuple[int, int, Region, Offset]:
        """The first row on screen, how many lines show, the window on the table (as
        `window_region`) and the scroll offset: read once for an AGE tick (each read of the
        table's size or region looks the widget up in the screen's map and adds up its
        gutter)."""
        region = self.region
        offset = self.scroll_offset
        height = region.shrink(self.styles.gutter).height  # `size`, outside a drawing pass
        return max(0, int(self.scroll_y)), height, region.at_offset(offset), offset

    def _visible_rows(self, view: tuple[int, int, Region, Offset]) -> list[tuple[int, str]]:
        """The rows on screen (`view`: `_view()`), each with its place."""
        return self._rows_from(view[0], view[1] or 1)

    def _visible_ids(self, rows: int = 1) -> list[str]:
        """The rows on screen (at least `rows` of them, before the table has a size)."""
        # (a pane of 20 rows built 60 at each load)
        return [id_ for _, id_ in self._rows_from(max(0, int(self.scroll_y)),
                                                  self.size.height or rows)]

    def _rows_from(self, top: int, height: int) -> list[tuple[int, str]]:
        """The rows from place `top` on, `height` of them and the one partly below, each
        with its place and id."""
        get_key = self._row_locations.get_key
        rows = []
        for row in range(top, min(self.row_count, top + height + 1)):
            key = get_key(row)
            if key is not None:  # None: the table changed under us
                rows.append((row, str(key.value)))
        return rows

    def render_lines(self, crop: Region) -> list[Strip]:
        # the rows about to be drawn get their cells first (a load leaves them for later)
        if self._pending:
            self._fill(self._visible_ids())
        self._drawing = {}  # the widget's own styles, read once for the lines of this pass
        try:
            return super().render_lines(crop)
        finally:
            self._drawing = None

    def render_line(self, y: int) -> Strip:
        """A body line from DataTable's line cache, under the key it would look up, made
        once per drawing pass (its ten reactive and style reads for each line were half of
        drawing a line an AGE tick changed: `_splice_lines` leaves the new line there);
        DataTable draws it when it is not there, and outside a pass."""
        drawing = self._drawing
        if drawing is not None and not self.fixed_rows:
            state = drawing.get("line key")
            if state is None:
                scroll_x, scroll_y = self.scroll_offset
                state = drawing["line key"] = (
                    self.header_height if self.show_header else 0, scroll_y,
                    self._line_state_now(scroll_x))
                self._drawn_state = state[2]  # the lines of the last pass: `_line_state`
            header, scroll_y, rest = state
            if y >= header:
                key = (y + scroll_y, *rest)
                line = self._line_cache.get(key)
                if line is not None:
                    return line
                line = super().render_line(y)
                row_key = self._row_locations.get_key(key[0] - header)
                if row_key is not None:  # (below the last row: a blank line, not cached)
                    self._note_drawn(key, (row_key, 0, *self._row_state(rest)))
                return line
        elif y >= (self.header_height if self.show_header else 0):
            self._drawn_keys(whole=False)  # (a new update count: the notes start again)
            self._drawn_whole = False  # drawn by DataTable unnoted: noted from the caches
        return super().render_line(y)

    # DataTable reads the widget's style and background for each line it draws; each read
    # walks every ancestor's styles (a quarter of drawing a screenful). They cannot change
    # while one pass draws its lines: read once per pass (`render_lines`), live otherwise.
    _drawing: dict[Any, Any] | None = None

    def _per_pass(self, key: Any, read: Callable[[], Any]) -> Any:
        """`read()` once per drawing pass, kept under `key`; read live outside one."""
        drawing = self._drawing
        if drawing is None:
            return read()
        value = drawing.get(key)
        if value is None:
            value = drawing[key] = read()
        return value

    @property
    def rich_style(self) -> Style:
        return cast(Style, self._per_pass("rich_style",
                                          lambda: super(LiveTable, self).rich_style))

    @property
    def background_colors(self) -> tuple[Color, Color]:
        return cast(tuple[Color, Color], self._per_pass(
            "background_colors", lambda: super(LiveTable, self).background_colors))

    @property
    def size(self) -> Size:
        # DataTable reads it twice for each line it draws, each read a look-up of the
        # widget in the screen's map (a sixth of drawing an AGE tick's lines)
        return cast(Size, self._per_pass("size", lambda: super(LiveTable, self).size))

    def get_component_styles(self, *names: str) -> RenderStyles:
        if self._drawing is None:  # live, as Textual's own (not the pass's snapshot)
            return super().get_component_styles(*names)
        return cast(RenderStyles, self._per_pass(names, lambda: DrawnStyles(
            super(LiveTable, self).get_component_styles(*names))))

    def get_row_at(self, row_index: int) -> list[Any]:
        key = self._row_locations.get_key(row_index)
        if key is not None and key.value in self._pending:
            self._fill([str(key.value)])
        return super().get_row_at(row_index)

    def get_row(self, row_key: RowKey | str) -> list[Any]:
        id_ = row_key.value if isinstance(row_key, RowKey) else row_key
        if id_ in self._pending:
            self._fill([str(id_)])
        return super().get_row(row_key)

    def refresh_times(self) -> None:
        """Recompute the clock-derived cells (AGE) of the rows on screen, and nothing else;
        called each second: a cell changes when its unit does (seconds, then minutes...)."""
        self._shrink_columns()
        self.refresh_columns(TIME_COLUMNS)

    def refresh_columns(self, keys: Collection[str], ids: Iterable[str] | None = None) -> None:
        """Recompute the cells of the columns `keys` only, for the rows `ids` (by default
        those on screen) whose cells are made: what is not in the store, as AGE (the clock) or
        CPU/MEM (the stats poller). Only a cell whose text changed is drawn again. Where the
        table sorts by one of these columns, or a filter could match on them, the rows go
        through `apply` (they may move, or leave)."""
        specs = [(n, c) for n, c in enumerate(self.columns_spec) if c.key in keys]
        if not specs or not self.row_count:
            return
        if ids is not None and (self.filter_text or self._sort[0] in keys):
            self.apply([i for i in ids if i in self._key_of])
            return
        view = self._view() if ids is None else None
        tick = _Tick(self, view) if view is not None else None
        rows = self._visible_rows(view) if view is not None else ((-1, id_) for id_ in ids or ())
        for row, id_ in rows:
            old = self._texts.get(id_)
            obj = self._objs.get(id_)
            if old is None or obj is None:
                continue  # not in the table, or its cells not made yet: made when drawn
            changed = []
            texts = list(old)
            for n, col in specs:
                value = col.render(obj, self.store, self.history)
                if value == old[n] and type(value) is str:
                    continue  # the same text (a plain one: it equals a cell's): no cell made
                cell = Cell.of(value)
                if cell.plain != old[n]:
                    changed.append((col.key, cell))
                    texts[n] = cell.plain
            if changed:
                if tick is None or not tick.splice(row, id_, changed):
                    self._set_cells(id_, changed)
                self._texts[id_] = now = tuple(texts)
                self._seen[id_] = (obj, now)
        self._repaint_stale(tick)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if int(old) != int(new) and any(c.key in TIME_COLUMNS for c in self.columns_spec):
            self.call_after_refresh(self.refresh_times)  # rows scrolled in show today's AGE

    def _drop(self, id_: str) -> None:
        entry = self._key_of.pop(id_, None)
        if entry is None:
            return
        self._unsort(entry)
        self._objs.pop(id_, None)
        row_key = self._row_key.pop(id_)
        data = self._data.pop(row_key, {})
        self.rows.pop(row_key, None)
        self._texts.pop(id_, None)
        self._pending.discard(id_)
        self._stale.pop(row_key, None)
        for column_key in data:
            self._updated_cells.discard(CellKey(row_key, column_key))
        now = time.monotonic()
        for column_key, cell in data.items():
            key = str(column_key.value)
            if isinstance(cell, Text) and cell.cell_len >= self._all[key].content_width:
                self._narrower.setdefault(key, now)

    def _restore(self, keep: str | None) -> None:
        if keep is not None and keep in self._key_of:
            row = self.get_row_index(keep)
            if row != self.cursor_row:
                self.move_cursor(row=row, animate=False)

    # -- columns that fit --------------------------------------------------------------------

    def on_resize(self, _: Resize) -> None:
        """The columns that fit (NavKeys' on_resize runs as well: Textual calls the handler
        of each class in the MRO)."""
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Show the most important columns that fit the width. Before the view's three most
        important columns give way, the first (a name) is cut, to no fewer than
        SQUEEZE_FLOOR cells (with an ellipsis): STATUS and NODE stay beside the name."""
        if not self._all:
            return
        room = self.scrollable_content_region.width
        if room <= 0:
            return
        pad = 2 * self.cell_padding
        order = self._priority
        widths = [self._all[k].content_width + pad for k in order]
        first = self._all[order[0]]
        keep, used = 1, widths[0]
        while keep < len(order) and used + widths[keep] <= room:
            used += widths[keep]
            keep += 1
        squeeze: int | None = None
        want = min(3, len(order))
        if keep < want:
            cut = room - sum(widths[1:want]) - pad
            if cut >= min(first.content_width, SQUEEZE_FLOOR):
                squeeze, keep, used = cut, want, room
        shown = [c.key for c in self.columns_spec if c.key in order[:keep]]
        if (shown, squeeze) == (self._shown, self._squeeze):
            return
        self._shown, self._squeeze = shown, squeeze
        first.auto_width = squeeze is None
        first.width = squeeze or 0
        self.columns = {self._column_key[k]: self._all[k] for k in shown}
        self._column_locations = TwoWayDict(
            {self._column_key[k]: n for n, k in enumerate(shown)})
        self._update_count += 1
        self._clear_caches()
        self._require_update_dimensions = True
        self.check_idle()
        self.refresh()

    # -- user controls ---------------------------------------------------------------------

    def action_act(self, name: str) -> None:
        self.post_message(self.Act(self, name))

    def action_filter(self) -> None:
        self.post_message(self.FilterRequested(self))

    def action_sort_previous(self) -> None:
        self.action_sort_next(-1)

    def action_sort_next(self, step: int = 1) -> None:
        """`>` / `<`: the sort moves to the next / previous column shown."""
        shown = self._shown or [c.key for c in self.columns_spec]
        at = shown.index(self._sort[0]) if self._sort[0] in shown else -step
        self.set_sort(shown[(at + step) % len(shown)], False)

    def action_sort_reverse(self) -> None:
        """`!`: the same column, the other way."""
        self.set_sort(self._sort[0], not self._sort[1])

    def set_filter(self, text: str) -> None:
        if text != self.filter_text:
            self.filter_text = text
            self.reload()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))

    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        try:
            row_key: RowKey = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # an empty or just-cleared table has no cell under the cursor
            return None
        return str(row_key.value) if row_key.value is not None else None

    def selected(self) -> Any | None:
        id_ = self.selected_id()
        return self.store.get(self.kind, id_) if id_ else None

