"""The one thread → UI hand-off: threads `put`, the event loop `take`s.

Source threads, log pumps and workflow readers never touch widgets; they put what they have
into an `Inbox`, and the screen (or the app) takes it on its own loop: on an interval, or when
the inbox `wake`s it (called once per batch, by the first put after a take, so a burst of
changes is one message). Compound steps (drop what an older stream sent, then put) hold
`inbox.lock`, which the inbox's own methods take too (it is re-entrant).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """Items handed from threads to the UI loop, in order; bounded by `maxlen` if given (the
    oldest go first, as they would from the screen's own ring buffer)."""

    def __init__(self, maxlen: int | None = None,
                 wake: Callable[[], object] | None = None) -> None:
        self._items: deque[T] = deque(maxlen=maxlen)
        self.lock = threading.RLock()
        self._wake = wake
        self._woken = False

    def put(self, item: T) -> None:
        self.extend((item,))

    def extend(self, items: Iterable[T]) -> None:
        """From any thread. Wakes the taker once until it next takes."""
        with self.lock:
            self._items.extend(items)
            if self._wake is None or self._woken or not self._items:
                return
            self._woken = True
        self._wake()

    def take(self, limit: int | None = None) -> list[T]:
        """On the loop: everything waiting (or the first `limit`), oldest first."""
        with self.lock:
            items = self._items
            count = len(items) if limit is None else min(limit, len(items))
            batch = [items.popleft() for _ in range(count)]
            self._woken = False
        if self._items and self._wake is not None:
            self.extend(())  # more than `limit` waited: wake again for the rest
        return batch

    def clear(self) -> None:
        with self.lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
