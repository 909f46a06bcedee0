"""Independent reads side by side, with a bound: a first picture waits for its slowest
answer, not for the sum of them all."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .base import BackendError


def side_by_side(jobs: Sequence[Callable[[], Any]], bound: int, stop: threading.Event,
                 name: str = "read") -> list[Any]:
    """Run `jobs` at most `bound` at once; their results, in their order. The first failure
    is raised once the jobs under way have ended or not (no job starts after it)."""
    if len(jobs) == 1 or bound <= 1:
        return [job() for job in jobs]
    out: list[Any] = [None] * len(jobs)
    for n, value in as_they_end(jobs, bound, stop, name):
        out[n] = value
    return out


def as_they_end(jobs: Sequence[Callable[[], Any]], bound: int, stop: threading.Event,
                name: str = "read") -> Iterator[tuple[int, Any]]:
    """Run `jobs` at most `bound` at once; (index, result) in the caller's thread as each
    ends. The first failure is raised (no job starts after it). Daemon threads, not a pool:
    a one-shot command that stops listening must not wait at exit for the reads still
    queued, and a stop (`stop` set) starts none of them."""
    if not jobs:
        return
    pending = iter(enumerate(jobs))
    take = threading.Lock()
    failed = threading.Event()
    results: queue.Queue[tuple[int, Any, BaseException | None]] = queue.Queue()

    def worker() -> None:
        while not (stop.is_set() or failed.is_set()):
            with take:
                item = next(pending, None)
            if item is None:
                return
            n, job = item
            try:
                results.put((n, job(), None))
            except Exception as exc:  # handed to the caller's thread
                results.put((n, None, exc))

    for i in range(min(max(1, bound), len(jobs))):
        threading.Thread(target=worker, name=f"{name}{i}", daemon=True).start()
    for _ in jobs:
        while True:
            try:
                n, value, exc = results.get(timeout=0.25)
                break
            except queue.Empty:
                if stop.is_set():
                    raise BackendError("stopped") from None
        if exc is not None:
            failed.set()
            raise exc
        yield n, value
