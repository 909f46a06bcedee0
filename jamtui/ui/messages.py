"""Messages up: what a screen asks of the cockpit. A screen posts one (`self.post_message(
OpenDetail(kind, id_))`); it bubbles to `JamApp`, which handles each with `@on` in one place.
A screen never calls the app's methods for these; store changes come down through the app's
`store_changed` signal (subscribe on mount)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.message import Message
from textual.screen import Screen

from ..model import Kind


class OpenDetail(Message):
    """Show one object's detail screen."""

    def __init__(self, kind: Kind, object_id: str) -> None:
        super().__init__()
        self.kind = kind
        self.object_id = object_id


class RunAction(Message):
    """Run an action (by its name in `jamtui.actions`, or `logs`) on an object: the app
    checks read-only, asks for destructive ones, then runs it in a worker."""

    def __init__(self, action: str, obj: Any) -> None:
        super().__init__()
        self.action = action
        self.obj = obj


class GoToView(Message):
    """Go to a view by its `:name` (an alias, `routes`, `workflows`, `overview`)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class OpenTail(Message):
    """Show a log viewer made by `make` (one already open with its title is shown again)."""

    def __init__(self, make: Callable[[], Screen[Any]]) -> None:
        super().__init__()
        self.make = make


class SwitchTail(Message):
    """From a log viewer: show the next (`step` 1) or previous (-1) open tail."""

    def __init__(self, screen: Screen[Any], step: int = 1) -> None:
        super().__init__()
        self.screen = screen
        self.step = step


class CloseTail(Message):
    """From a log viewer: stop following and forget it."""

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__()
        self.screen = screen
