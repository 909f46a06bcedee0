"""A table of one kind of object that follows the store row by row.

A change event touches only its row (and only the cells whose text changed); the cursor,
scroll position, sort and filter stay where the user left them.

Drawing cost follows what changed, not the table: DataTable's own `update_cell` throws away
every cached cell and line and repaints the whole widget, so a stop a second re-rendered every
visible cell through Rich. Here a changed row drops only its own cache entries and repaints
only its own line (all rows changed in one batch: one cache pass, one repaint per frame); only
a cell wider than its column takes DataTable's general path, which widens the column. Time
columns (AGE) are recomputed for the visible rows only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, ColumnKey, RowKey

from ..model import Kind
from ..plain import is_plain
from ..plain import text as safe_text
from ..store import Store
from .columns import History, columns_for, plain
from .keymap import Key, bind, for_scopes, refused, usable

FIRST_CHUNK = 200  # rows shown at once: more than any terminal is tall
CHUNK = 1000  # rows per later step of a big table's load
TIME_COLUMNS = frozenset({"age"})  # cells that change with the clock, not with the store


class Cell(Text):
    """One line of table text that measures itself by its length: DataTable measures every
    cell of every new row, and Text's general measure (word splitting) dominated opening a
    view of thousands of rows."""

    @classmethod
    def of(cls, value: Any) -> Cell:
        # a cell shows its text literally: controls visible, a 10,000-character name cut
        if isinstance(value, str) and is_plain(value):
            return cls(value)
        value = safe_text(value)
        return cls(value.plain, style=value.style, justify=value.justify,
                   no_wrap=value.no_wrap, end=value.end, spans=list(value.spans))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.cell_len
        return Measurement(width, width)


class LiveTable(DataTable[Any]):
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
        """A (chunked) load finished: every row of the store is in the table."""

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
        self._texts: dict[str, tuple[str, ...]] = {}  # what each row shows, for diffing
        self._sort: tuple[str, bool] | None = None  # (column key, reverse)
        self._loading = 0  # the generation of the latest reload, for chunked loading
        self._stale: set[RowKey] = set()  # rows whose cells changed since the last repaint

    def on_mount(self) -> None:
        for col in self.columns_spec:
            self.add_column(col.label, key=col.key, width=col.width)
        self.reload()

    # -- what a row is ---------------------------------------------------------------------

    def _cells(self, obj: Any) -> list[Any]:
        # plain strings would be parsed as console markup by DataTable on every refresh
        # (and could misrender a name with brackets): hand it Text, parsed once, literally
        return [Cell.of(col.render(obj, self.store, self.history)) for col in self.columns_spec]

    def _in_scope(self, obj: Any) -> bool:
        from .nomad_views import in_scope  # `:ns`: one namespace or every one

        return self.kind not in (Kind.JOB, Kind.ALLOCATION) or in_scope(self.app, obj)

    def _matches(self, texts: Iterable[str]) -> bool:
        if not self.filter_text:
            return True
        needle = self.filter_text.lower()
        return any(needle in t.lower() for t in texts)

    # -- whole and partial updates ---------------------------------------------------------

    def reload(self) -> None:
        """Rebuild from the store (first show, or a new filter). The first screenfuls come
        at once; a big table's rest follows in chunks, so the view opens without a stall."""
        keep = self.selected_id()
        self.clear()
        self._texts.clear()
        self._loading += 1
        ids = [str(o.id) for o in sorted(self.store.items(self.kind), key=default_order)]
        self._load_chunk(ids, 0, self._loading, keep, FIRST_CHUNK)

    def _load_chunk(self, ids: list[str], start: int, generation: int, keep: str | None,
                    size: int = CHUNK) -> None:
        if generation != self._loading:
            return  # a newer reload (another filter) took over
        for id_ in ids[start:start + size]:
            obj = self.store.get(self.kind, id_)
            if obj is not None and id_ not in self._texts:  # apply() may have added it
                self._add(obj)
        self._resort()
        self._restore(keep)
        if start + size < len(ids):
            # after the next paint, so the first rows show before the rest is built
            self.call_after_refresh(self._load_chunk, ids, start + size, generation, keep)
        else:
            self.post_message(self.Loaded(self))

    def apply(self, ids: Iterable[str]) -> None:
        """Bring the rows of `ids` up to date with the store; nothing else is touched. Many
        new rows at once (a backend's first answer after the view opened: 5,000 allocations
        in one batch) load as a reload does, the first screenfuls now and the rest in chunks
        after each paint, rather than all of them before the next frame."""
        keep = self.selected_id()
        ids = ids if isinstance(ids, list | tuple | set | frozenset) else list(ids)
        arriving = [id_ for id_ in ids if id_ not in self._texts]
        if len(arriving) > FIRST_CHUNK:
            objs = [o for o in (self.store.get(self.kind, i) for i in arriving) if o is not None]
            ids = [id_ for id_ in ids if id_ in self._texts]
            self._load_chunk([str(o.id) for o in sorted(objs, key=default_order)], 0,
                             self._loading, keep, FIRST_CHUNK)
        added = False
        for id_ in ids:
            obj = self.store.get(self.kind, id_)
            if obj is None:
                self._drop(id_)
                continue
            cells = self._cells(obj)
            texts = tuple(plain(c) for c in cells)
            if not self._matches(texts) or not self._in_scope(obj):
                self._drop(id_)
            elif id_ in self._texts:
                old = self._texts[id_]
                self._set_cells(id_, [
                    (col.key, cell) for col, cell, before, after in zip(
                        self.columns_spec, cells, old, texts, strict=True)
                    if before != after
                ])
                self._texts[id_] = texts
            else:
                self.add_row(*cells, key=id_)
                self._texts[id_] = texts
                added = True
        if added:
            self._resort()
        self._repaint_stale()
        self._restore(keep)

    # -- drawing only what changed ---------------------------------------------------------

    def _set_cells(self, id_: str, changed: list[tuple[str, Cell]]) -> None:
        """New values for some cells of one row. Where they fit their columns, only this
        row's cache entries go (see `_repaint_stale`); a wider cell widens its column through
        DataTable's general path (which re-measures and redraws the table)."""
        if not changed:
            return
        row_key = RowKey(id_)
        data = self._data[row_key]
        widen = []
        for key, cell in changed:
            column_key = ColumnKey(key)
            column = self.columns[column_key]
            data[column_key] = cell
            if column.auto_width and cell.cell_len > column.content_width:
                widen.append(CellKey(row_key, column_key))
        if widen:
            self._updated_cells.update(widen)
            self._require_update_dimensions = True
            self._update_count += 1  # every cached cell and line is stale
            self.refresh()
        else:
            self._stale.add(row_key)

    def _repaint_stale(self) -> None:
        """Drop the cache entries of the changed rows (one pass over each cache for the whole
        batch) and repaint just their lines; Textual paints them together on the next frame."""
        stale, self._stale = self._stale, set()
        rows = {self._row_locations.get(k) for k in stale} - {None}
        if not rows:
            return
        header = self.header_height if self.show_header else 0
        lines = {row + header for row in rows if row is not None}
        caches: tuple[Any, ...] = (self._row_render_cache, self._cell_render_cache)
        for cache in caches:
            for key in [k for k in cache.keys() if k[0] in stale]:  # noqa: SIM118
                cache.discard(key)
        for rkey in [k for k in self._row_renderable_cache.keys()  # noqa: SIM118
                     if k[1] in rows]:
            self._row_renderable_cache.discard(rkey)
        for lkey in [k for k in self._line_cache.keys() if k[0] in lines]:  # noqa: SIM118
            self._line_cache.discard(lkey)
        for row in rows:
            if row is not None:
                self.refresh_row(row)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # DataTable measures new rows (and widens columns) after it may already have drawn
        # them at the old widths, and keeps those rows in its caches under the same update
        # count: that is the stale, garbled first row that could stay for half a minute
        widths = [c.get_render_width(self) for c in self.columns.values()]
        # every cell is one line of Text of known width: measure them without going through
        # Rich (DataTable's own measuring was a quarter of opening 5,000 rows)
        columns = self.ordered_columns
        rest = []
        for row_key in new_rows:
            data = self._data.get(row_key)
            row = self.rows.get(row_key)
            if data is None or row is None:
                continue
            if row.height != 1 or row.label is not None:
                rest.append(row_key)
                continue
            for column in columns:
                cell = data.get(column.key)
                width = cell.cell_len if isinstance(cell, Text) else len(str(cell))
                if width > column.content_width:
                    column.content_width = width
        super()._update_dimensions(rest)
        if widths != [c.get_render_width(self) for c in self.columns.values()]:
            self._clear_caches()
            self.refresh()

    def refresh_times(self) -> None:
        """Recompute the clock-derived cells (AGE) of the rows on screen, and nothing else."""
        columns = [c for c in self.columns_spec if c.key in TIME_COLUMNS]
        if not columns or not self.row_count:
            return
        top = max(0, int(self.scroll_y))
        ids = []
        for row in range(top, min(self.row_count, top + self.size.height + 1)):
            key = self._row_locations.get_key(row)
            if key is not None:  # None: the table changed under us
                ids.append(str(key.value))
        self.apply(ids)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if int(old) != int(new) and any(c.key in TIME_COLUMNS for c in self.columns_spec):
            self.call_after_refresh(self.refresh_times)  # rows scrolled in show today's AGE

    def _add(self, obj: Any) -> None:
        cells = self._cells(obj)
        texts = tuple(plain(c) for c in cells)
        if self._matches(texts) and self._in_scope(obj):
            self.add_row(*cells, key=str(obj.id))
            self._texts[str(obj.id)] = texts

    def _drop(self, id_: str) -> None:
        if id_ in self._texts:
            self.remove_row(id_)
            del self._texts[id_]

    def _resort(self) -> None:
        if self._sort is not None:
            key, reverse = self._sort
            self.sort(key, key=sort_value, reverse=reverse)

    def _restore(self, keep: str | None) -> None:
        if keep is not None and keep in self._texts:
            row = self.get_row_index(keep)
            if row != self.cursor_row:
                self.move_cursor(row=row, animate=False)

    # -- user controls ---------------------------------------------------------------------

    def action_act(self, name: str) -> None:
        self.post_message(self.Act(self, name))

    def action_filter(self) -> None:
        self.post_message(self.FilterRequested(self))

    def set_filter(self, text: str) -> None:
        if text != self.filter_text:
            self.filter_text = text
            self.reload()

    def sort_by(self, key: str) -> None:
        reverse = self._sort is not None and self._sort[0] == key and not self._sort[1]
        self._sort = (key, reverse)
        self._resort()

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


def natural(text: str) -> tuple[Any, ...]:
    """web[10] after web[9]: digit runs compare as numbers."""
    return tuple(int(part) if part.isdigit() else part.lower()
                 for part in re.split(r"(\d+)", text))


def default_order(obj: Any) -> Any:
    for attr in ("vmid", "name"):
        value = getattr(obj, attr, None)
        if value is not None:
            return (0, (value,)) if isinstance(value, int) else (1, natural(str(value)))
    return (1, natural(str(obj.id)))


def sort_value(cell: Any) -> Any:
    text = cell.plain if isinstance(cell, Text) else str(cell)
    stripped = text.strip().rstrip("%G").split(" ")[-1] if text else ""
    try:
        return (0, float(stripped), text)
    except ValueError:
        return (1, 0.0, text.lower())
