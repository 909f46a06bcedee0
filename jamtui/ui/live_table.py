"""A table of one kind of object that follows the store row by row.

A change event touches only its row (and only the cells whose text changed); the cursor,
scroll position, sort and filter stay where the user left them.
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
from textual.widgets.data_table import RowKey

from ..model import Kind
from ..plain import is_plain
from ..plain import text as safe_text
from ..store import Store
from .columns import History, columns_for, plain
from .keymap import Key, bind, for_scopes, usable

FIRST_CHUNK = 200  # rows shown at once: more than any terminal is tall
CHUNK = 1000  # rows per later step of a big table's load


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

    class FilterRequested(Message):
        def __init__(self, table: LiveTable) -> None:
            super().__init__()
            self.table = table

    def __init__(self, kind: Kind, store: Store, history: History, *,
                 keymap: tuple[Key, ...] = (), read_only: bool = False,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        for key in for_scopes(keymap, {"table", kind.value}):
            if key.action == "open" or not usable(key.action, read_only):
                continue  # DataTable's own enter opens; read-only hides every action
            bind(self._bindings, key)
        self.kind = kind
        self.store = store
        self.history = history
        self.columns_spec = columns_for(kind, store)
        self.filter_text = ""
        self._texts: dict[str, tuple[str, ...]] = {}  # what each row shows, for diffing
        self._sort: tuple[str, bool] | None = None  # (column key, reverse)
        self._loading = 0  # the generation of the latest reload, for chunked loading

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

    def apply(self, ids: Iterable[str]) -> None:
        """Bring the rows of `ids` up to date with the store; nothing else is touched."""
        keep = self.selected_id()
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
                for col, cell, before, after in zip(
                    self.columns_spec, cells, old, texts, strict=True
                ):
                    if before != after:
                        self.update_cell(id_, col.key, cell)
                self._texts[id_] = texts
            else:
                self.add_row(*cells, key=id_)
                self._texts[id_] = texts
                added = True
        if added:
            self._resort()
        self._restore(keep)

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
