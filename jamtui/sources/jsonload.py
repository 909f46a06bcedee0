"""The backends' JSON bodies, decoded in one place with msgspec (not the stdlib's `json`).

The sources decode megabytes at 5,000 allocations (Nomad's allocation list 8.3 MB, Consul's
health reads 8 MB in all), in their own threads but under the UI's GIL: every CPU second
spent here delays the first frame. `loads` decodes any body (2-3x the stdlib's speed);
`typed` decodes a body straight into `msgspec.Struct`s that name only the fields the store
keeps, so the rest of each object (task event details, tagged addresses, metadata ...) is
skipped, never built as dicts and strings, and the structs are not tracked by the garbage
collector.

Errors keep their words: a body that is not JSON raises `NotJSON`, a `json.JSONDecodeError`
(what `describe_error` and py-consul's callbacks already say in words); JSON of another shape
than the API documents raises `WrongShape` (a ValueError) naming where.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    import requests

# A big body is read in pieces of this size (`whole_body`), not requests' 10 KiB
BODY_PIECE = 1 << 20


class NotJSON(json.JSONDecodeError):
    """The body is not JSON (msgspec's reason; its position is in the text)."""

    def __init__(self, reason: str) -> None:  # pylint: disable=super-init-not-called
        ValueError.__init__(self, reason)
        self.msg, self.doc, self.pos, self.lineno, self.colno = reason, "", 0, 1, 1

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.msg,)


class WrongShape(ValueError):
    """Valid JSON, but not in the shape the API documents (msgspec's words say where, e.g.
    "Expected `object`, got `str` - at `$[0]`")."""


_ANY = msgspec.json.Decoder()
_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def loads(body: bytes | str) -> Any:
    """Any JSON body, as `json.loads` gives it (dicts, lists, str, int, float, bool, None)."""
    try:
        return _ANY.decode(body)
    except msgspec.DecodeError as exc:
        raise NotJSON(str(exc)) from None


def typed(body: bytes | str, shape: Any) -> Any:
    """A body decoded straight into `shape` (e.g. `list[SomeStruct]`): fields the structs do
    not name are skipped."""
    decoder = _DECODERS.get(shape)
    if decoder is None:
        decoder = _DECODERS.setdefault(shape, msgspec.json.Decoder(shape))
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise WrongShape(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise NotJSON(str(exc)) from None


def whole_body(resp: requests.Response) -> bytes:
    """The body of a response asked for with `stream=True`: what its `.content` would be
    (`iter_content`, as `.content` reads it: same errors, the connection back in its pool at
    the end), read 1 MiB at a time. `.content` reads 10 KiB at a time: Nomad's 8.3 MB
    allocation list at 5,000 allocations was 830 trips through urllib3's read, each giving
    the GIL up and waiting to get it back from the other sources' threads (25-45 ms of CPU,
    a tenth of it with 1 MiB pieces), and Consul's 55 health answers 8 MB more."""
    return b"".join(resp.iter_content(BODY_PIECE))
