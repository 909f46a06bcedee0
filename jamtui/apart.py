"""`snapshot --json`: one backend read and encoded in a process of its own, beside the others.

The snapshot is CPU-bound under one GIL: at 5,000 allocations Nomad's part alone (an 8 MB
list decoded into records, then 6 MB of the document encoded from them) is ~0.2 s of the
command's ~0.8 s, while the machine's other cores wait. So, on Linux and while no
thread runs yet (nothing started: a forked thread would be lost, or hold a lock forever),
the command forks once its modules are loaded: the child starts that backend's source alone,
settles it as the command would (the same timeout and words when it does not answer),
encodes its own kinds' sections of the document, and sends them up a pipe with its health
and the records it wrote of kinds it shares (its quorum; Nomad's volumes among the
storages). The parent reads every other backend meanwhile, then writes the document from
both: the document one process writes (tests/test_snapshot_apart.py compares them).

A child that fails is the backend's failure in words (`BackendStatus` down), never a
missing section passed over in silence; one that does not answer in time is ended.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .model import BackendStatus, Health, Kind
from .store import OWNER

if TYPE_CHECKING:
    from .engine import Engine
    from .headless import SnapshotWriter

# read apart, in this order (the most CPU first): Nomad's allocations list (8 MB at 5,000,
# decoded and encoded again: ~0.2 s of one core) and Consul's instances (one read per service,
# 8.6 MB in all at 5,000 instances: ~0.1 s); the other backends are read by the command itself
APART = ("nomad", "consul")
GRACE = 2.0  # seconds past the timeout the child has to send what it settled on
_CHILD_FAILED = 70  # the child's exit status when it could not send its part (EX_SOFTWARE)


@dataclass
class Part:
    """What the child sends: its own kinds' sections, encoded; the records it wrote of the
    kinds it shares with others (its quorum; Nomad's volumes among the storages), for the
    parent's store; its backend's health; or why it failed."""

    sections: dict[Kind, bytes] = field(default_factory=dict)
    records: dict[Kind, list[Any]] = field(default_factory=dict)
    backend: BackendStatus | None = None
    error: str = ""


class Apart:
    """The child process reading one backend (`fork_reader`); `join` takes its part."""

    def __init__(self, source: Any, pid: int, fd: int, timeout: float) -> None:
        self.source, self.pid, self.fd, self.timeout = source, pid, fd, timeout
        self.name = source.name
        self.started = time.monotonic()
        self._ended = False

    def join(self, engine: Engine, writer: SnapshotWriter) -> None:
        """Wait for the child's part (at most the timeout and `GRACE` from its start), then
        put it in: its records into `engine.store`, its sections into `writer`. A child
        that sends nothing in time is ended and its backend said down, in words."""
        got = self._part()
        self.end()
        if isinstance(got, str):
            since = engine.store.backend(self.name).waiting_since
            engine.store.set_backend(BackendStatus(
                self.name, Health.DOWN, self.source.address, waiting_since=since,
                last_error=got))
            return
        part, health = got
        for kind, items in part.records.items():
            engine.store.upsert_many(kind, items)
        engine.store.set_backend(health)
        writer.given.update(part.sections)

    def _part(self) -> tuple[Part, BackendStatus] | str:
        """The child's part and its backend's health, or why there is none, in words."""
        body = self._read(self.started + self.timeout + GRACE)
        reader = f"its reader (process {self.pid})"
        if body is None:
            return (f"no answer in {self.timeout:g} s from {self.source.address or self.name} "
                    f"(read by process {self.pid}, ended)")
        if not body:
            return f"{reader} ended without an answer"
        try:
            part: Part = pickle.loads(body)
        except Exception as exc:  # a child killed mid-write: a cut pickle
            return f"{reader} sent a part cut short ({exc})"
        if part.error:
            return f"{reader} failed: {part.error}"
        if part.backend is None:
            return f"{reader} sent no health"
        return part, part.backend

    def _read(self, deadline: float) -> bytes | None:
        """Everything the child writes until it closes the pipe; None at the deadline."""
        chunks: list[bytes] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def end(self) -> None:
        """Close the pipe and reap the child (killed if it still runs)."""
        if self._ended:
            return
        self._ended = True
        os.close(self.fd)
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        except (ChildProcessError, ProcessLookupError):
            pass


def fork_reader(engine: Engine, name: str, timeout: float) -> Apart | None:
    """Fork a child that reads `name` alone (see the module's text) and take that source out
    of `engine` (which reads the others); None, and `engine` as it was, where that cannot be:
    a thread already running, the backend not configured, or not Linux (on macOS a forked
    child may not touch the system frameworks requests' proxy lookup calls)."""
    source = engine.sources.get(name)
    if (source is None or not sys.platform.startswith("linux")
            or threading.active_count() != 1 or len(engine.sources) < 2):
        return None
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # nothing buffered is written twice
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        status = _CHILD_FAILED
        try:
            _end_with(parent)
            _child(engine, name, timeout, write_fd)
            status = 0
        except BaseException:  # Ctrl-C, a closed pipe: the parent says what is missing
            pass
        os._exit(status)
    os.close(write_fd)
    del engine.sources[name]
    return Apart(source, pid, read_fd, timeout)


def _end_with(parent: int) -> None:
    """The child ends when its parent does (killed, say): Linux's parent-death signal."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it ended before the signal was asked for
        os._exit(_CHILD_FAILED)


def _child(engine: Engine, name: str, timeout: float, fd: int) -> None:
    from .headless import SNAPSHOT_KINDS, SnapshotWriter

    part = Part()
    try:
        engine.sources = {name: engine.sources[name]}
        engine.start(followers=False)
        writer = SnapshotWriter(engine.store)
        encoded = writer.follow(engine.sources)
        engine.settle(timeout)
        encoded()
        store = engine.store
        part.sections = {kind: writer.section(kind) for kind in SNAPSHOT_KINDS
                         if OWNER.get(kind) == name}
        # the kinds it shares (its quorum; Nomad's volumes among the storages): as records
        part.records = {kind: store.items(kind) for kind in SNAPSHOT_KINDS
                        if OWNER.get(kind) != name and store.count(kind)}
        part.backend = store.backend(name)
    except Exception as exc:  # in words, for the parent to say
        part = Part(error=f"{type(exc).__name__}: {exc}")
    body = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(body)
    while view:
        view = view[os.write(fd, view):]
    os.close(fd)
