"""The navigation keys every table has (#14): `j` `k`, `g` `G` (and `Home` `End`), `Ctrl+D`
`Ctrl+U` (half a page), beside DataTable's own `PgUp` `PgDn` and arrows.

`LiveTable` takes them from the key table (`keymap.KEYMAP`, scope "table"); the screens' own
DataTables (`:events`, `:deployments`, `:intentions`, `:routes`, `:kv`) are `NavTable`s. A key
the screen binds itself wins: in `:deployments`, `g` promotes a group (`Home` goes to the top).
"""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

from .keymap import KEYMAP, bind

NAV_ACTIONS = ("cursor_down", "cursor_up", "top", "bottom", "half_down", "half_up")


class NavKeys:
    """The actions behind the navigation keys, for a DataTable with a row cursor."""

    def action_top(self: Any) -> None:
        if self.row_count:
            self.move_cursor(row=0, animate=False)
            self._scroll_cursor_into_view()  # also when it was there and the table shrank

    def action_bottom(self: Any) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)
            self._scroll_cursor_into_view()

    def action_scroll_home(self: Any) -> None:  # Home: the first row (no column cursor here)
        self.action_top()

    def action_scroll_end(self: Any) -> None:  # End: the last row
        self.action_bottom()

    def action_scroll_top(self: Any) -> None:  # Ctrl+Home
        self.action_top()

    def action_scroll_bottom(self: Any) -> None:  # Ctrl+End
        self.action_bottom()

    def on_resize(self: Any, _: Any) -> None:
        # a taller health bar (a backend's reasons) takes lines from the table: the cursor's
        # row stays in sight (it was left below the edge, out of reach of End)
        if self.row_count and self.cursor_type == "row":
            self.call_after_refresh(self._scroll_cursor_into_view)

    def _half_page(self: Any) -> int:
        header = self.header_height if self.show_header else 0
        return max(1, (self.scrollable_content_region.height - header) // 2)

    def action_half_down(self: Any) -> None:
        if self.row_count:
            self.move_cursor(row=min(self.row_count - 1, self.cursor_row + self._half_page()),
                             animate=False)

    def action_half_up(self: Any) -> None:
        if self.row_count:
            self.move_cursor(row=max(0, self.cursor_row - self._half_page()), animate=False)


class NavTable(NavKeys, DataTable[Any]):
    """A screen's own table with the navigation keys; keys its screen binds stay the
    screen's."""

    def on_mount(self) -> None:
        keymap = getattr(self.app, "keymap", KEYMAP)
        taken = set(self.screen._bindings.key_to_bindings)
        for key in keymap:
            if key.scope == "table" and key.action in NAV_ACTIONS:
                free = ",".join(k for k in key.keys.split(",") if k.strip() not in taken)
                if free:
                    bind(self._bindings, type(key)(key.action, free, key.description,
                                                   scope=key.scope, show=False))
