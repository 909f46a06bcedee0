"""Nomad allocation logs: the framed stream of `/v1/client/fs/logs`, decoded and followed.

python-nomad's `stream_logs.stream()` returns only when the stream ends, so it cannot follow;
this reads the same endpoint on a requests session. Frames are JSON objects back to back
(`{"Offset", "Data" (base64), "File", "FileEvent"}`, `{}` as heartbeat). A dropped connection
resumes from the last offset seen, so no line is lost or repeated; a truncated file starts
again from its beginning.

The viewer's other sources speak the same `lines()`/`stop()`: `FileFollower` (a workflow
step's log on disk) and `RemoteFollower` (a command over SSH, `sources/ssh.py`).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from ..config import NomadConfig
from .base import BackendError, Backoff, http_problem
from .tls import TLSSettings

HEARTBEAT_TIMEOUT = 10.0  # Nomad sends `{}` every second; silence this long is a dead peer


@dataclass(frozen=True)
class LogLine:
    text: str
    offset: int  # the file offset just after this line
    event: str = ""  # "file truncated" / "file deleted" on the line that follows one


class FrameDecoder:
    """Incremental decoding of the concatenated frames."""

    def __init__(self) -> None:
        self._buffer = ""
        self._decoder = json.JSONDecoder()

    def feed(self, text: str) -> list[dict[str, Any]]:
        self._buffer += text
        out: list[dict[str, Any]] = []
        while True:
            stripped = self._buffer.lstrip()
            if not stripped:
                self._buffer = ""
                return out
            try:
                frame, end = self._decoder.raw_decode(stripped)
            except json.JSONDecodeError:
                if len(stripped) > 1 << 20:
                    raise BackendError("the log stream sent something that is not Nomad's "
                                       "framing") from None
                self._buffer = stripped
                return out
            self._buffer = stripped[end:]
            if not isinstance(frame, dict):
                raise BackendError("the log stream sent a frame that is not an object")
            out.append(frame)


class LogFollower:
    """Lines of one task's stdout or stderr, from an offset, optionally followed."""

    def __init__(self, cfg: NomadConfig, alloc_id: str, task: str, stream: str = "stdout",
                 *, origin: str = "start", offset: int = 0, follow: bool = True,
                 timeout: float = 10.0, session: requests.Session | None = None,
                 started: float | None = None) -> None:
        if stream not in ("stdout", "stderr"):
            raise ValueError("stream is stdout or stderr")
        self.cfg = cfg
        self.alloc_id = alloc_id
        self.task = task
        self.stream = stream
        self.origin = origin
        self.offset = offset
        self.follow = follow
        self.timeout = timeout
        self.started = started  # when the task first started (Unix s), to order a merge
        self.tls = TLSSettings.of("nomad", cfg)
        self.session = session or self.tls.session()
        self.verify = self.tls.verify
        self.stop_event = threading.Event()
        self.reconnects = 0
        self.connected = threading.Event()  # set once the stream is open
        self._response: requests.Response | None = None

    def stop(self) -> None:
        self.stop_event.set()
        resp = self._response
        if resp is not None:
            resp.close()

    def lines(self) -> Iterator[LogLine]:
        """Every line, in order; reconnects (with backoff) when following."""
        backoff = Backoff(0.2, 5.0)
        partial = b""
        pending_event = ""
        while not self.stop_event.is_set():
            try:
                for data, offset, event in self._frames():
                    backoff.reset()
                    if event == "file truncated":
                        partial = b""
                    pending_event = event or pending_event
                    if not data:
                        continue
                    chunk = partial + data
                    *complete, partial = chunk.split(b"\n")
                    end = offset - len(partial)
                    for raw in complete:
                        yield LogLine(raw.decode(errors="replace"), end, pending_event)
                        pending_event = ""
                if not self.follow:
                    if partial:
                        yield LogLine(partial.decode(errors="replace"), self.offset)
                    return
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                    requests.Timeout):
                if self.stop_event.is_set():
                    return
                if not self.follow:
                    raise
            except (AttributeError, ValueError):
                if self.stop_event.is_set():
                    return  # stop() closed the response under the reader
                raise
            # resume exactly after the last complete line we handed out
            self.offset -= len(partial)
            self.origin = "start"
            partial = b""
            self.reconnects += 1
            self.stop_event.wait(backoff.next())

    def backlog(self) -> list[LogLine]:
        """What is already written (from `origin`/`offset`), read once without following
        (the viewer orders a merged tail's first reads before showing them); `lines()`
        then follows from the start of the last line not yet complete. A read the network
        broke returns nothing and `lines()` starts over where this one started."""
        if not self.follow:
            return []  # lines() reads it all anyway
        origin, offset = self.origin, self.offset
        out: list[LogLine] = []
        partial, pending_event = b"", ""
        try:
            for data, end, event in self._frames(follow=False):
                if event == "file truncated":
                    partial, out = b"", []
                pending_event = event or pending_event
                if not data:
                    continue
                *complete, partial = (partial + data).split(b"\n")
                for raw in complete:
                    out.append(LogLine(raw.decode(errors="replace"), end - len(partial),
                                       pending_event))
                    pending_event = ""
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.Timeout, AttributeError, ValueError):
            if not self.stop_event.is_set():
                self.origin, self.offset = origin, offset
            return []
        self.offset -= len(partial)
        self.origin = "start"
        return out

    def _frames(self, follow: bool | None = None) -> Iterator[tuple[bytes, int, str]]:
        follow = self.follow if follow is None else follow
        url = f"{self.cfg.address.rstrip('/')}/v1/client/fs/logs/{self.alloc_id}"
        params = {"task": self.task, "type": self.stream, "origin": self.origin,
                  "offset": str(self.offset), "follow": "true" if follow else "false"}
        headers = self.cfg.auth_headers()
        resp = self.session.get(url, params=params, headers=headers, stream=True,
                                verify=self.verify, cert=self.tls.cert,
                                timeout=(self.timeout, HEARTBEAT_TIMEOUT))
        self._response = resp
        try:
            if resp.status_code != 200:
                raise BackendError(http_problem("nomad", self.cfg.address, resp.status_code,
                                                resp.text, "[nomad] token / NOMAD_TOKEN"))
            self.connected.set()
            decoder = FrameDecoder()
            for chunk in resp.iter_content(chunk_size=None):
                if self.stop_event.is_set():
                    return
                for frame in decoder.feed(chunk.decode(errors="replace")):
                    if not frame:
                        continue  # heartbeat
                    event = frame.get("FileEvent", "")
                    data = base64.b64decode(frame.get("Data") or "")
                    if event == "file truncated":
                        self.offset = 0
                    if "Offset" in frame:
                        self.offset = int(frame["Offset"])
                    elif data:
                        self.offset += len(data)
                    yield data, self.offset, event
        finally:
            self._response = None
            self.connected.clear()
            resp.close()



class FileFollower:
    """A local file's lines (a workflow step's log): what is there, then what is appended,
    like `tail -F` (a truncated or replaced file is read again from its start)."""

    def __init__(self, path: str | Path, follow: bool = True, interval: float = 0.2) -> None:
        self.path = Path(path)
        self.follow = follow
        self.interval = interval
        self.stop_event = threading.Event()

    def stop(self) -> None:
        self.stop_event.set()

    def lines(self) -> Iterator[LogLine]:
        offset, inode, partial = 0, None, b""
        while not self.stop_event.is_set():
            try:
                st = self.path.stat()
            except FileNotFoundError:
                st = None
            if st is not None:
                if st.st_ino != inode or st.st_size < offset:
                    event = "file truncated" if inode is not None else ""
                    offset, inode, partial = 0, st.st_ino, b""
                    if event:
                        yield LogLine("", 0, event)
                if st.st_size > offset:
                    with self.path.open("rb") as fh:
                        fh.seek(offset)
                        data = fh.read(st.st_size - offset)
                    offset += len(data)
                    *complete, partial = (partial + data).split(b"\n")
                    for raw in complete:
                        yield LogLine(raw.decode(errors="replace"), offset)
            if not self.follow:
                if partial:
                    yield LogLine(partial.decode(errors="replace"), offset)
                return
            self.stop_event.wait(self.interval)


class RemoteFollower:
    """A remote command's lines over SSH (`journalctl -f`, `tail -F`) as LogLines; the
    connection is opened by `connect` on the follower's own thread."""

    def __init__(self, tail: Any) -> None:
        self.tail = tail  # sources.ssh.RemoteTail
        self.offset = 0

    def stop(self) -> None:
        self.tail.stop()

    def lines(self) -> Iterator[LogLine]:
        for text in self.tail.lines():
            self.offset += len(text) + 1
            yield LogLine(text, self.offset)
