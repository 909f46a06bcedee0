"""Consul's key/value store, sessions and intention writes, read on demand for the `:kv` and
`:intentions` screens (kept apart from the watches in consul.py).

Endpoints (developer.hashicorp.com/consul/api-docs/...):
- kv: `GET /v1/kv/<prefix>?keys&separator=/` (one level of the tree), `GET /v1/kv/<key>`
  (value, Flags, LockIndex, Session, ModifyIndex), `PUT /v1/kv/<key>?cas=<ModifyIndex>`
  (check-and-set: `false` when someone changed it since it was read; `cas=0` only creates),
  `DELETE /v1/kv/<key>?cas=<ModifyIndex>` and `DELETE /v1/kv/<prefix>?recurse`.
- session: `GET /v1/session/info/<id>` (who holds a lock: the session's name and node).
- connect/intentions: `PUT` and `DELETE /v1/connect/intentions/exact?source=&destination=`.

Every call goes through the Consul source's own client (its TLS settings and token); a
refusal (403) turns off that one feature in words (`Source.refuse`), it does not fail Consul.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from ..model import Kind
from .base import BackendError, http_problem
from .consul import ConsulSource, decode_intention

# magic numbers for naming a binary value's type (its first bytes)
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"), (b"PK\x03\x04", "zip"), (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"), (b"%PDF", "PDF"), (b"\x7fELF", "ELF executable"),
    (b"BZh", "bzip2"), (b"\xfd7zXZ", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"),
)


@dataclass(frozen=True)
class KVValue:
    """One key as Consul answered it."""

    key: str
    value: bytes
    flags: int = 0
    create_index: int = 0
    modify_index: int = 0
    lock_index: int = 0
    session: str = ""

    @property
    def text(self) -> str | None:
        """The value as text, or None when it is binary (not UTF-8, or control bytes)."""
        try:
            decoded = self.value.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in decoded) or "\x7f" in decoded:
            return None
        return decoded

    @property
    def kind(self) -> str:
        """What the value looks like: text, JSON, or a binary type named by its first bytes."""
        text = self.text
        if text is not None:
            try:
                json.loads(text)
                return "JSON" if text.strip()[:1] in ("{", "[") else "text"
            except ValueError:
                return "text"
        for magic, name in _MAGIC:
            if self.value.startswith(magic):
                return name
        return "binary"


@dataclass(frozen=True)
class SessionInfo:
    id: str
    name: str
    node: str
    behavior: str = "release"


def decode_kv(entry: dict[str, Any]) -> KVValue:
    raw = entry.get("Value")
    return KVValue(
        key=str(entry.get("Key", "")),
        value=base64.b64decode(raw) if raw else b"",
        flags=int(entry.get("Flags") or 0),
        create_index=int(entry.get("CreateIndex") or 0),
        modify_index=int(entry.get("ModifyIndex") or 0),
        lock_index=int(entry.get("LockIndex") or 0),
        session=str(entry.get("Session") or ""),
    )


def children(prefix: str, keys: list[str]) -> list[str]:
    """The entries one level under `prefix` from a `?keys&separator=/` answer: folders end
    with `/`; the prefix itself (a folder's own key) is left out."""
    return sorted({k for k in keys if k != prefix and k.startswith(prefix)})


class CASConflict(BackendError):
    """A check-and-set write or delete refused: the key changed since it was read."""


class ConsulKV:
    """KV, sessions and intention writes through a ConsulSource's client (call from a
    worker thread: every method does network I/O)."""

    def __init__(self, source: ConsulSource) -> None:
        self.source = source

    # -- plumbing -------------------------------------------------------------------------------

    def _request(self, method: str, path: str, params: list[tuple[str, str]] | None = None,
                 data: bytes | str = b"") -> Any:
        src = self.source
        src.requests_made += 1
        params = list(params or [])
        if src.cfg.datacenter:
            params.append(("dc", src.cfg.datacenter))
        http = src.client.http
        headers = src.client.prepare_headers()
        if method == "GET":
            return http.get(lambda r: r, path, params=params, headers=headers, raw=True)
        if method == "PUT":
            return http.put(lambda r: r, path, params=params, headers=headers, data=data)
        return http.delete(lambda r: r, path, params=params, headers=headers)

    def _check(self, resp: Any, feature: str, capability: str, what: str) -> None:
        """A refusal turns off `feature` in words; any other error is raised in words."""
        body = resp.body.decode("utf-8", "replace") if isinstance(resp.body, bytes) \
            else str(resp.body)
        if resp.code == 403 and "ACL not found" not in body:
            message = f"Consul {what}: not permitted (the token lacks {capability})"
            self.source.refuse(feature, capability, message, feature)
            raise BackendError(message)
        if resp.code >= 400:
            raise BackendError(http_problem("consul", self.source.address, resp.code, body,
                                            self.source.hint))
        self.source.permit(feature)

    @staticmethod
    def _json(resp: Any) -> Any:
        body = resp.body.decode("utf-8", "replace") if isinstance(resp.body, bytes) \
            else resp.body
        try:
            return json.loads(body) if body else None
        except ValueError:
            raise BackendError("Consul sent a malformed answer (not valid JSON)") from None

    # -- KV -------------------------------------------------------------------------------------

    def keys(self, prefix: str) -> list[str]:
        """One level of the tree under `prefix` (`?keys&separator=/`); [] when empty."""
        resp = self._request("GET", f"/v1/kv/{prefix}", [("keys", ""), ("separator", "/")])
        hidden = str(resp.headers.get("X-Consul-Results-Filtered-By-ACLs", "")).lower() == "true"
        if hidden and (resp.code == 404 or not self._json(resp)):
            message = ("Consul key/value store: not permitted (the token lacks key:read; "
                       "Consul hid the keys)")
            self.source.refuse("kv", "key:read", message, "kv")
            raise BackendError(message)
        if resp.code == 404:
            return []
        self._check(resp, "kv", "key:read", "key/value store")
        return children(prefix, [str(k) for k in self._json(resp) or []])

    def read(self, key: str) -> KVValue | None:
        resp = self._request("GET", f"/v1/kv/{key}")
        if resp.code == 404:
            return None
        self._check(resp, "kv", "key:read", "key/value store")
        entries = self._json(resp) or []
        return decode_kv(entries[0]) if entries else None

    def write(self, key: str, value: bytes, cas: int | None, flags: int | None = None) -> None:
        """Write with check-and-set on the ModifyIndex read (0: only if it does not exist);
        CASConflict when Consul refuses it because the key changed meanwhile."""
        params = [("cas", str(cas))] if cas is not None else []
        if flags:
            params.append(("flags", str(flags)))
        resp = self._request("PUT", f"/v1/kv/{key}", params, value)
        self._check(resp, "kv-write", "key:write", "key/value writes")
        if self._json(resp) is not True:
            raise CASConflict(
                f"{key} was not written: it changed in Consul since it was read (ModifyIndex "
                f"{cas} is no longer current). Reload it and edit again."
                if cas else f"{key} was not written: it already exists.")

    def delete(self, key: str, cas: int | None = None, recurse: bool = False) -> None:
        params: list[tuple[str, str]] = [("recurse", "")] if recurse else []
        if cas is not None and not recurse:
            params.append(("cas", str(cas)))
        resp = self._request("DELETE", f"/v1/kv/{key}", params)
        self._check(resp, "kv-write", "key:write", "key/value writes")
        if self._json(resp) is not True:
            raise CASConflict(f"{key} was not deleted: it changed in Consul since it was read "
                              "(ModifyIndex {cas} is no longer current).".replace(
                                  "{cas}", str(cas)))

    def session(self, session_id: str) -> SessionInfo | None:
        """Who holds a lock; None when the session is gone (or the token may not read it)."""
        resp = self._request("GET", f"/v1/session/info/{session_id}")
        if resp.code == 403:
            return None
        self._check(resp, "sessions", "session:read", "sessions")
        found = self._json(resp) or []
        if not found:
            return None
        s = found[0]
        return SessionInfo(str(s.get("ID", "")), str(s.get("Name", "")),
                           str(s.get("Node", "")), str(s.get("Behavior", "release")))

    # -- intentions -----------------------------------------------------------------------------

    def create_intention(self, source: str, destination: str, action: str,
                         description: str = "") -> None:
        if action not in ("allow", "deny"):
            raise ValueError(f"an intention allows or denies, not {action!r}")
        body = json.dumps({"Action": action, "Description": description})
        resp = self._request("PUT", "/v1/connect/intentions/exact",
                             [("source", source), ("destination", destination)], body)
        self._check(resp, "intentions-write", "intentions:write", "intention changes")
        self._reread_intentions()

    def delete_intention(self, source: str, destination: str) -> None:
        resp = self._request("DELETE", "/v1/connect/intentions/exact",
                             [("source", source), ("destination", destination)])
        self._check(resp, "intentions-write", "intentions:write", "intention changes")
        self._reread_intentions()

    def _reread_intentions(self) -> None:
        """The store shows the change at once, not after the next blocking query returns."""
        resp = self._request("GET", "/v1/connect/intentions")
        if resp.code == 200:
            items = self._json(resp) or []
            self.source.store.replace(Kind.INTENTION, [decode_intention(i) for i in items])
