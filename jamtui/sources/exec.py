"""A command in a Nomad task, on this terminal: `nomad alloc exec` over Nomad's WebSocket.

api-docs/allocations "Exec Allocation": `GET /v1/client/allocation/:alloc_id/exec?task=&
command=<JSON array>&tty=` upgraded to a WebSocket. We send `{"stdin":{"data":<base64>}}`,
`{"stdin":{"close":true}}` at the end of our input and `{"tty_size":{"height":,"width":}}`
at the start and on every resize; Nomad sends `{"stdout"|"stderr":{"data":<base64>}}` and
`{"exited":true,"result":{"exit_code":N}}`. A refusal after the upgrade is a close frame with
the reason. The token goes in `X-Nomad-Token`, TLS as for every Nomad request (tls.py).

`run_exec()` is blocking: it owns the terminal (raw mode when it is a TTY) until the command
ends, and runs the WebSocket on a loop of its own in a thread, so it can be called from the
TUI's suspended app as well as from `jamtui exec`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import struct
import termios
import threading
import tty as ttymod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from ..config import NomadConfig
from .tls import TLSSettings


class ExecError(Exception):
    """The exec could not start or was refused: the reason in words."""


@dataclass(frozen=True)
class ExecTarget:
    alloc_id: str
    task: str
    command: tuple[str, ...]
    namespace: str = "default"


def exec_url(address: str, target: ExecTarget, tty: bool) -> str:
    """The WebSocket URL (ws:// or wss://) of the exec endpoint; every part is encoded."""
    base = address.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://"):]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://"):]
    query = urlencode({"task": target.task, "command": json.dumps(list(target.command)),
                       "tty": "true" if tty else "false", "namespace": target.namespace})
    return f"{base}/v1/client/allocation/{quote(target.alloc_id, safe='')}/exec?{query}"


def terminal_size(fd: int) -> tuple[int, int]:
    """(rows, columns) of the terminal on fd, (24, 80) when it is none."""
    try:
        rows, cols, _, _ = struct.unpack("HHHH", __import__("fcntl").ioctl(
            fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return 24, 80
    return (rows or 24), (cols or 80)


class ExecStream:
    """One exec session: frames in and out between the WebSocket and three file descriptors."""

    def __init__(self, cfg: NomadConfig, target: ExecTarget, *, tty: bool,
                 stdin_fd: int = 0, stdout_fd: int = 1, stderr_fd: int = 2) -> None:
        self.cfg, self.target, self.tty = cfg, target, tty
        self.stdin_fd, self.stdout_fd, self.stderr_fd = stdin_fd, stdout_fd, stderr_fd
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.sent_sizes: list[tuple[int, int]] = []

    def resized(self) -> None:
        """Thread-safe: send the terminal's size now (SIGWINCH)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._send_size()))

    async def _send_size(self) -> None:
        if self._ws is None or self._ws.closed or not self.tty:
            return
        rows, cols = terminal_size(self.stdout_fd)
        self.sent_sizes.append((rows, cols))
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._ws.send_json({"tty_size": {"height": rows, "width": cols}})

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        settings = TLSSettings.of("nomad", self.cfg)
        url = exec_url(self.cfg.address, self.target, self.tty)
        ssl: Any = settings.context() if url.startswith("wss://") else True
        headers = self.cfg.auth_headers()
        kw: dict[str, Any] = {}
        if settings.server_name and ssl is not None:
            kw["server_hostname"] = settings.server_name
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=15)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                ws = await session.ws_connect(url, headers=headers, ssl=ssl, heartbeat=None,
                                              max_msg_size=0, **kw)
            except aiohttp.WSServerHandshakeError as exc:
                raise ExecError(f"Nomad refused the exec: HTTP {exc.status} "
                                f"{exc.message}") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise ExecError(f"cannot reach Nomad at {self.cfg.address}: "
                                f"{_words(exc)}") from None
            self._ws = ws
            async with ws:
                return await self._pump(ws)

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse) -> int:
        loop = asyncio.get_running_loop()
        await self._send_size()
        stdin_done = asyncio.Event()
        pending: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            try:
                data = os.read(self.stdin_fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(self.stdin_fd)
            pending.put_nowait(data)

        async def forward() -> None:
            while True:
                data = await pending.get()
                if not data:
                    await ws.send_json({"stdin": {"close": True}})
                    stdin_done.set()
                    return
                await ws.send_json({"stdin": {"data": base64.b64encode(data).decode()}})

        reading = False
        try:
            loop.add_reader(self.stdin_fd, readable)
            reading = True
        except (OSError, ValueError, PermissionError):
            # stdin is a regular file or /dev/null (epoll refuses those): read it whole
            data = b""
            with contextlib.suppress(OSError):
                data = os.read(self.stdin_fd, 1 << 20)
            if data:
                pending.put_nowait(data)
            pending.put_nowait(b"")
        forwarder = asyncio.ensure_future(forward())
        try:
            while True:
                msg = await ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    reason = msg.extra if isinstance(msg.extra, str) and msg.extra else ""
                    code = ws.close_code or (msg.data if isinstance(msg.data, int) else 0)
                    if reason == "Permission denied":
                        reason += " (the token needs the namespace's alloc-exec capability)"
                    raise ExecError("Nomad refused the exec: " + (reason or f"closed (code {code})")
                                    if code and code != 1000 else
                                    "Nomad ended the exec without an exit code" +
                                    (f": {reason}" if reason else ""))
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    continue
                if not isinstance(frame, dict):
                    continue
                if frame.get("exited"):
                    result = frame.get("result") or {}
                    return int(result.get("exit_code") or 0)
                for name, fd in (("stdout", self.stdout_fd), ("stderr", self.stderr_fd)):
                    part = frame.get(name)
                    if isinstance(part, dict) and part.get("data"):
                        try:
                            data = base64.b64decode(part["data"])
                        except (ValueError, TypeError):
                            continue
                        _write_all(fd, data)
        finally:
            forwarder.cancel()
            if reading:
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_reader(self.stdin_fd)


def _words(exc: BaseException) -> str:
    from .reasons import in_words

    return in_words(exc, 15)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[n:]


def run_exec(cfg: NomadConfig, target: ExecTarget, *, tty: bool | None = None,
             stdin_fd: int = 0, stdout_fd: int = 1, stderr_fd: int = 2,
             on_stream: Callable[[ExecStream], None] | None = None) -> int:
    """Run the command on this terminal; its exit code. Raises ExecError in words.

    With a TTY (by default when stdin is one) the terminal is put in raw mode for the
    session and restored after; SIGWINCH sends the new size (only from the main thread)."""
    if tty is None:
        tty = os.isatty(stdin_fd)
    stream = ExecStream(cfg, target, tty=tty, stdin_fd=stdin_fd, stdout_fd=stdout_fd,
                        stderr_fd=stderr_fd)
    if on_stream is not None:
        on_stream(stream)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["code"] = asyncio.run(stream.run())
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    saved = None
    if tty and os.isatty(stdin_fd):
        saved = termios.tcgetattr(stdin_fd)
        ttymod.setraw(stdin_fd)
    old_handler: Any = None
    main = threading.current_thread() is threading.main_thread()
    if main and tty:
        old_handler = signal.signal(signal.SIGWINCH, lambda *_: stream.resized())
    try:
        worker = threading.Thread(target=work, name="jamtui-exec", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.1)  # short joins let the main thread's signal handlers run
    finally:
        if main and tty:
            signal.signal(signal.SIGWINCH, old_handler if old_handler is not None
                          else signal.SIG_DFL)
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
    if "error" in outcome:
        raise outcome["error"]
    return int(outcome.get("code", 1))


