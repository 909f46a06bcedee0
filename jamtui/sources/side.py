"""Independent reads side by side, with a bound: a first picture waits for its slowest
answer, not for the sum of them all."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from .base import BackendError


def side_by_side(jobs: Sequence[Callable[[], Any]], bound: int, stop: threading.Event,
                 name: str = "read") -> list[Any]:
    """Run `jobs` at most `bound` at once; their results, in their order. The first failure
    is raised once the jobs under way have ended or not (no job starts after it)."""
    if len(jobs) == 1 or bound <= 1:
        return [job() for job in jobs]
    return _in_order(as_they_end(jobs, bound, stop, name), len(jobs))


def _in_order(ended: Iterator[tuple[int, Any]], count: int) -> list[Any]:
    """The results of `count` jobs, (index, result) as each ended, in the jobs' order."""
    out: list[Any] = [None] * count
    for n, value in ended:
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
    yield from _results(results, len(jobs), stop, failed)


def _results(results: queue.Queue[tuple[int, Any, BaseException | None]]
             | queue.SimpleQueue[tuple[int, Any, BaseException | None]], count: int,
             stop: threading.Event, failed: threading.Event) -> Iterator[tuple[int, Any]]:
    """(index, result) of `count` jobs as each ends, in the caller's thread; the first
    failure raised (`failed` set first: no job starts after it); a stop ends the wait."""
    for _ in range(count):
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


class Ahead:
    """`bound` daemon threads started (`start`) before their jobs are known, to run them
    side by side once they are (`run`, as `side_by_side` runs them): a one-shot `snapshot`
    starts the Proxmox config readers while `/cluster/resources` is read. Started one after
    the other once the VM list was in, each waiting for the one GIL (at 5k, the Nomad list
    being decoded), the eighth began up to 0.25 s after the first."""

    def __init__(self, bound: int, stop: threading.Event, name: str = "read") -> None:
        self.bound = max(1, bound)
        self._stop = stop
        self._name = name
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._closed = False

    def start(self) -> None:
        """Start the threads (none once closed: a read beside it failed first)."""
        with self._lock:
            if self._closed or self._started:
                return
            self._started = self.bound
        for i in range(self.bound):
            threading.Thread(target=self._work, name=f"{self._name}{i}", daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()

    def close(self) -> None:
        """End the threads once the jobs given have been taken (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        for _ in range(started):
            self._jobs.put(None)

    def start_beside(self) -> None:
        """`start` in a thread of its own: the caller goes on at once (Consul's service
        list is read meanwhile)."""
        threading.Thread(target=self.start, name=f"{self._name}start", daemon=True).start()

    def as_they_end(self, jobs: Sequence[Callable[[], Any]]) -> Iterator[tuple[int, Any]]:
        """`side.as_they_end(jobs, bound, stop)` on these threads, then `close`: (index,
        result) in the caller's thread as each ends; the first failure raised (no job
        starts after it); a stop starts none of them."""
        results: queue.SimpleQueue[tuple[int, Any, BaseException | None]] = \
            queue.SimpleQueue()
        failed = threading.Event()

        def one(n: int, job: Callable[[], Any]) -> None:
            if self._stop.is_set() or failed.is_set():
                return
            try:
                results.put((n, job(), None))
            except Exception as exc:  # handed to the caller's thread
                results.put((n, None, exc))

        try:
            if not jobs:
                return
            self.start()  # if it was not yet
            for n, job in enumerate(jobs):
                self._jobs.put(partial(one, n, job))
            yield from _results(results, len(jobs), self._stop, failed)
        finally:
            self.close()

    def run(self, jobs: Sequence[Callable[[], Any]]) -> list[Any]:
        """`side_by_side(jobs, bound, stop)` on these threads, then `close`: their results
        in their order; the first failure raised (no job starts after it)."""
        return _in_order(self.as_they_end(jobs), len(jobs))
