"""What every simulated backend's HTTP server shares: listening, faults and blocking queries."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import ssl
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

# hang: the port accepts and reads the request, and nothing is ever answered (a wedged
# server, a full accept queue behind a proxy), until the fault is cleared
FAULT_KINDS = ("down", "slow", "error", "malformed", "reset", "forbidden", "hang")


@dataclass
class Fault:
    kind: str
    latency: float = 1.0  # seconds, for "slow"


class Faults:
    """Faults injected per backend at run time (tests, `jamtui lab --fault`)."""

    def __init__(self) -> None:
        self._by_backend: dict[str, Fault] = {}
        self.requests: dict[str, int] = {}  # requests served per backend (benchmarks)
        self.listeners: list[Callable[[str, Fault | None], None]] = []

    def set(self, backend: str, kind: str, latency: float = 1.0) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        fault = Fault(kind, latency)
        self._by_backend[backend] = fault
        for cb in self.listeners:
            cb(backend, fault)

    def clear(self, backend: str | None = None) -> None:
        names = [backend] if backend else list(self._by_backend)
        for name in names:
            if self._by_backend.pop(name, None) is not None:
                for cb in self.listeners:
                    cb(name, None)

    def get(self, backend: str) -> Fault | None:
        """The fault for `backend`; `fabio:vs0:lb` also obeys one set for `fabio:vs0` or `fabio`."""
        parts = backend.split(":")
        for n in range(len(parts), 0, -1):
            fault = self._by_backend.get(":".join(parts[:n]))
            if fault is not None:
                return fault
        return None


class StreamReset(Exception):
    """Raised inside a handler to cut the connection without a response."""


# What each backend says when it fails, in its own wire style.
ErrorRenderer = Callable[[int, str], web.Response]


def text_error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, content_type="text/plain")


def fault_middleware(backend: str, faults: Faults, render_error: ErrorRenderer,
                     forbidden_message: str = "Permission denied") -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Callable[..., Awaitable[Any]]) -> Any:
        faults.requests[backend] = faults.requests.get(backend, 0) + 1
        fault = faults.get(backend)
        if fault is not None:
            if fault.kind in ("down", "reset"):
                return _reset(request)
            if fault.kind == "hang" and not await hang(request, faults, backend):
                return _reset(request)
            if fault.kind == "slow":
                await asyncio.sleep(fault.latency)
            elif fault.kind == "error":
                return render_error(500, "simulated internal error (fault injected by the lab)")
            elif fault.kind == "forbidden":
                return render_error(403, forbidden_message)
        try:
            resp = await handler(request)
        except StreamReset:
            return _reset(request)
        fault = faults.get(backend)
        if (
            fault is not None
            and fault.kind == "malformed"
            and isinstance(resp, web.Response)
            and resp.body is not None
        ):
            body = bytes(resp.body)
            resp.body = body[: max(1, len(body) // 2)] + b'{"<<truncated'
        return resp

    return middleware


async def hang(request: web.Request, faults: Faults, backend: str) -> bool:
    """Say nothing while `backend` hangs; then carry on as if it had been slow (True). A
    client that gives up closes its end, and the request ends with it (False)."""
    while (fault := faults.get(backend)) is not None and fault.kind == "hang":
        if request.transport is None or request.transport.is_closing():
            return False
        await asyncio.sleep(0.1)
    return True


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


def _reset(request: web.Request) -> web.StreamResponse:
    """Cut the connection without an answer. Raising out of the handler would make aiohttp
    log "Error handling request" with a traceback on the lab's terminal; a response for the
    cut connection instead fails to write with ConnectionError, which aiohttp takes quietly
    as a client gone."""
    _abort(request)
    return web.Response(status=500, text="connection reset (fault injected by the lab)")


class BackendServer:
    """One listening HTTP(S) server; it can be taken down and brought back on the same port."""

    def __init__(self, name: str, app: web.Application, host: str = "127.0.0.1",
                 port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.name = name
        self.app = app
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._held: socket.socket | None = None  # the port, kept while down

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        if self.ssl_context is not None and self.ssl_context.verify_mode == ssl.CERT_REQUIRED:
            send_handshake_alerts()
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.2)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port,
                                 ssl_context=self.ssl_context, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            server = self._site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def go_down(self) -> None:
        """Stop listening: new connections are refused, open ones are cut."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
            self._hold_port()
        if self._runner is not None and self._runner.server is not None:
            for proto in list(self._runner.server.connections):
                if proto.transport is not None:
                    proto.transport.abort()

    def _hold_port(self) -> None:
        """Keep the port bound while down, without listening (a connection is refused as by a
        stopped server), so that no other program takes it before the backend comes back."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for reuse in (False, True):  # exclusive first: nobody binds it even with SO_REUSEADDR
            sock = socket.socket(family, socket.SOCK_STREAM)
            if reuse:  # the port's own connections linger in TIME_WAIT
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
            except OSError:
                sock.close()
                continue
            self._held = sock
            return

    def _release_port(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    async def come_up(self) -> None:
        if self._site is None:
            self._release_port()
            await self._listen()

    async def stop(self) -> None:
        if self._runner is not None:
            await self.go_down()
            await self._runner.cleanup()
            self._runner = None
        self._release_port()


def send_handshake_alerts() -> None:
    """asyncio drops the alert OpenSSL has written when a server's handshake fails (no client
    certificate, one from an unknown CA): the client sees the connection closed, where a Go
    server (Nomad, Consul) sends `certificate required` / `bad certificate`. Send it first."""
    from asyncio import sslproto

    original = sslproto.SSLProtocol._on_handshake_complete
    if getattr(original, "jamlab", False):
        return

    def on_handshake_complete(self: Any, handshake_exc: BaseException | None) -> None:
        if handshake_exc is not None:
            with contextlib.suppress(Exception):
                self._process_outgoing()
        original(self, handshake_exc)

    on_handshake_complete.jamlab = True  # type: ignore[attr-defined]
    sslproto.SSLProtocol._on_handshake_complete = on_handshake_complete  # type: ignore[method-assign]


_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def go_bool(raw: str) -> bool | None:
    """Go's strconv.ParseBool, as Nomad and Consul read flags; None when Go would refuse."""
    if raw in _GO_TRUE:
        return True
    if raw in _GO_FALSE:
        return False
    return None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """Parse a Go duration ("10s", "1m30s", "500ms"); raise ValueError as Go would refuse it."""
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"time: invalid duration {text!r}")
    return total


@dataclass
class BlockingParams:
    index: int
    wait: float


def blocking_params(request: web.Request, default_wait: float, max_wait: float,
                    bad_wait_message: str = "Invalid wait time") -> BlockingParams:
    """Read `index` and `wait`; raise HTTPBadRequest with the backend's message when bad."""
    try:
        index = int(request.query.get("index", "0") or 0)
    except ValueError:
        raise web.HTTPBadRequest(text="Invalid index", content_type="text/plain") from None
    wait = default_wait
    if "wait" in request.query:
        try:
            wait = parse_go_duration(request.query["wait"])
        except ValueError:
            raise web.HTTPBadRequest(text=bad_wait_message, content_type="text/plain") from None
    return BlockingParams(index, min(wait, max_wait) if wait > 0 else default_wait)


async def block_until(
    params: BlockingParams,
    current_index: Callable[[], int],
    wait_change: Callable[[float], Awaitable[None]],
    should_abort: Callable[[], bool] = lambda: False,
) -> None:
    """Hold a blocking query until the index passes `params.index` or the wait runs out.

    Index 0 never blocks. Like Consul and Nomad, the wait gets up to wait/16 of jitter.
    """
    if params.index <= 0:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + params.wait + random.uniform(0, params.wait / 16)
    while current_index() <= params.index:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        await wait_change(remaining)
        if should_abort():
            raise StreamReset()


class KeptBodies:
    """The last bodies of a server's big reads, by its world and the read's path and query
    (`index` and `wait` aside), each with the state it was made at (`made_at`: indexes and
    sizes): a read asked again with nothing changed is sent again as it was made. Making and
    encoding them again (8 MB of JSON at 5,000 allocations) took the lab's one core from the
    client under test, while the real servers answer from their state stores. The least
    recently asked goes first past `size`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._by_world: weakref.WeakKeyDictionary[Any, dict[str, tuple[Any, bytes]]] = (
            weakref.WeakKeyDictionary())

    def body(self, world: Any, request: web.Request, made_at: Any,
             make: Callable[[], bytes]) -> bytes:
        """The body kept for this read at `made_at`, or `make()`'s (then kept)."""
        bodies = self._by_world.setdefault(world, {})
        query = request.path + "?" + repr(sorted(
            (k, v) for k, v in request.query.items() if k not in ("index", "wait")))
        kept = bodies.pop(query, None)  # (put back last: the oldest asked goes first)
        if kept is None or kept[0] != made_at:
            kept = made_at, make()
        while len(bodies) >= self.size:
            del bodies[next(iter(bodies))]
        bodies[query] = kept
        return kept[1]
