"""Small helpers the tests share."""

from __future__ import annotations

import contextlib
import threading
import time
import types
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jamtui.store import Store


def wait_for(cond: Callable[[], Any], timeout: float = 5.0, step: float = 0.05) -> Any:
    """Poll `cond` until it is truthy (and return it), or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def spy(obj: Any, name: str) -> list[tuple[Any, ...]]:
    """`obj.name` replaced by a wrapper that records each call's positional arguments and
    calls the real one: the calls made from now on."""
    calls: list[tuple[Any, ...]] = []
    real = getattr(obj, name)

    def recording(*args: Any, **kw: Any) -> Any:
        calls.append(args)
        return real(*args, **kw)

    setattr(obj, name, recording)
    return calls


def fake_engine(store: Store) -> Any:
    """An engine with no sources, for UI tests on a store filled by the test."""
    return types.SimpleNamespace(store=store, sources={}, start=lambda: None,
                                 stop=lambda: None)


async def allocs_view(pilot: Any, app: Any, timeout: float = 10.0) -> tuple[Any, Any]:
    """`:allocs` opened, waited for until it is the screen (a fixed pause was not always
    enough on a loaded machine): its pane and table."""
    from jamtui.model import Kind
    from jamtui.ui.screens import LabScreen

    app.go_to_view("allocs")
    deadline = time.monotonic() + timeout
    while True:
        await pilot.pause(0.05)
        screen = app.screen
        if isinstance(screen, LabScreen) and screen.panes[0].kind is Kind.ALLOCATION:
            return screen.panes[0], screen.panes[0].table
        if time.monotonic() > deadline:
            raise AssertionError("the allocations view did not open in time")


def stats_watched(app: Any) -> list[set[str]]:
    """The allocation ids each time the app's stats poller is told what to watch (it still
    watches them): the rows whose CPU/MEM a poll round would ask Nomad for."""
    started: list[set[str]] = []
    real_watch = app.stats_poller.watch

    def watch(allocs: Any = (), nodes: Any = ()) -> None:
        started.append(set(allocs))
        real_watch(allocs, nodes)

    app.stats_poller.watch = watch
    return started


class _Proxy(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]]

    def do_GET(self) -> None:  # a forward proxy sees the whole URL in the request line
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        body = b'"10.0.0.1:4647"'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@contextlib.contextmanager
def proxy_server() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A forward proxy on loopback that answers every GET with a leader's address: its URL,
    and the (URL, Authorization) of each request it saw."""
    seen: list[tuple[str, str]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Proxy", (_Proxy,), {"seen": seen}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
