"""What went wrong on the wire, in words: one function turning the exceptions requests,
urllib3, ssl and socket raise (nested several deep, each quoting the next) into a short
sentence an operator can act on — "connection refused", "timed out after 10 s", never
`('Connection aborted.', RemoteDisconnected('Remote end closed connection …'))`."""

from __future__ import annotations

import errno
import http.client
import json
import re
import socket
import ssl
from collections.abc import Iterator

import requests
import urllib3.exceptions as u3

from .jsonload import WrongShape

_ERRNO = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the server",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
    errno.EPIPE: "connection closed by the server",
    errno.ECONNABORTED: "connection closed by the server",
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and every one it wraps (cause, context, urllib3's `reason`, and those
    passed as arguments, as requests and urllib3 do), outermost first, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        inner = [getattr(e, "reason", None), e.__cause__, e.__context__,
                 *(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))]
        todo.extend(i for i in inner if isinstance(i, BaseException))


def _seconds(chain: list[BaseException], timeout: float | None) -> str:
    if timeout is None:
        for e in chain:
            m = re.search(r"timeout=([\d.]+)", str(e))
            if m:
                timeout = float(m.group(1))
                break
    return f" after {timeout:g} s" if timeout is not None else ""


def in_words(exc: BaseException, timeout: float | None = None) -> str:
    """A short sentence for a failed request; `timeout` is said when known."""
    chain = list(_chain(exc))

    def has(*types: type[BaseException]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, types)), None)

    if cert := has(ssl.SSLCertVerificationError):
        why = getattr(cert, "verify_message", "") or "not verified"
        return f"the server's certificate is not trusted ({why})"
    if tls := has(ssl.SSLError):
        return f"the TLS handshake failed ({getattr(tls, 'reason', None) or 'refused'})"
    if has(socket.gaierror, u3.NameResolutionError):
        return "name not found (DNS has no address for the host)"
    if has(ConnectionRefusedError):
        return "connection refused"
    # urllib3's NewConnectionError is a ConnectTimeoutError by inheritance, not by nature
    if any(isinstance(e, requests.exceptions.ConnectTimeout | u3.ConnectTimeoutError)
           and not isinstance(e, u3.NewConnectionError) for e in chain):
        return "no connection" + _seconds(chain, timeout) + " (nothing answers at that address)"
    if has(requests.exceptions.ReadTimeout, u3.ReadTimeoutError, socket.timeout, TimeoutError):
        return "timed out" + _seconds(chain, timeout)
    if has(http.client.RemoteDisconnected):
        return "connection closed by the server without an answer"
    if has(ConnectionResetError):
        return "connection reset by the server"
    if has(requests.exceptions.ChunkedEncodingError, u3.IncompleteRead,
           http.client.IncompleteRead) or "ended prematurely" in str(exc):
        return "the answer was cut off before its end"
    if has(json.JSONDecodeError, requests.exceptions.JSONDecodeError):
        return "the answer is not valid JSON"
    if shape := has(WrongShape):
        return f"the answer is not in the shape the API documents ({_plain(shape)})"
    if has(requests.exceptions.TooManyRedirects):
        return "too many redirects"
    if bad := has(requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                  requests.exceptions.InvalidSchema, u3.LocationParseError):
        return f"not a usable address ({_plain(bad)})"
    for e in chain:
        if isinstance(e, OSError) and e.errno in _ERRNO:
            return _ERRNO[e.errno] + (_seconds(chain, timeout) if e.errno == errno.ETIMEDOUT
                                      else "")
    return _plain(chain[-1])


def _plain(exc: BaseException) -> str:
    """The innermost message without the Python reprs around it."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    text = re.sub(r"<[^<>]* at 0x[0-9a-f]+>:?", "", text)
    text = re.sub(r"\w+\((['\"])", "", text)  # Class('message' → message
    text = " ".join(text.replace("\\n", " ").split()).strip(" ()'\",:")
    return (text or type(exc).__name__)[:200]
