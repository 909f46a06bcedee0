"""The lab's Consul KV writes, sessions and transactions, as Consul's documentation says.

Pages followed (developer.hashicorp.com/consul/api-docs/...):
- kv (create-update-key: `?cas`, `?acquire`, `?release`, `?flags`; delete-key: `?cas`,
  `?recurse`), with Consul's state store semantics (agent/consul/state/kvs.go): a CAS of 0 is
  "only if absent"; a CAS delete of a missing key succeeds; an acquire with an unknown session
  is a 500 `invalid session "<id>"`; an acquire sets `Session` and raises `LockIndex` once per
  new holder; a release clears `Session` only for the holder.
- session (create, destroy, info, list, node, renew): `{"ID": ...}` on create, `[]` for an
  unknown session's info, `Behavior` release|delete applied to held keys when it ends (it
  ends when destroyed, when its node fails, or when a `TTL` passes without a renewal); the
  keys it held cannot be acquired for its `LockDelay` (docs: sessions, "lock-delay").
- txn (create-transaction): KV verbs set, cas, lock, unlock, get, get-tree, check-index,
  check-session, check-not-exists, delete, delete-tree, delete-cas; all or nothing; 200 with
  `Results` (values blanked for writes) or 409 with `Errors` `[{"OpIndex", "What"}]`.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .model import ConsulSession, KVEntry
from .world import SimError, World

MAX_TXN_OPS = 128  # txn_endpoint.go: maxTxnOps

WorldOf = Callable[[web.Request], World]
HeadersOf = Callable[[World, int], dict[str, str]]


class TxnFailure(Exception):
    """One operation of a transaction failed: its text goes into `Errors[].What`."""


def entry_json(e: KVEntry, with_value: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "LockIndex": e.lock_index, "Key": e.key, "Flags": e.flags,
        "Value": base64.b64encode(e.value).decode() if (e.value and with_value) else None,
        "CreateIndex": e.create_index, "ModifyIndex": e.modify_index,
    }
    if e.session:
        out["Session"] = e.session
    return out


def session_json(s: ConsulSession) -> dict[str, Any]:
    return {"ID": s.id, "Name": s.name, "Node": s.node, "LockDelay": s.lock_delay_ns,
            "Behavior": s.behavior, "TTL": s.ttl, "NodeChecks": list(s.node_checks),
            "ServiceChecks": s.service_checks, "CreateIndex": s.create_index,
            "ModifyIndex": s.modify_index}


# -- the state operations, on a copy of the store (one index for all, as one Raft entry) -----


class KVTxn:
    """A set of KV changes made at one index on a copy of the store; `commit` publishes it."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.kv = dict(world.kv)
        self.idx = world.consul.index + 1  # the index the writes will carry (one Raft entry)
        self.wrote = False

    def _set(self, key: str, value: bytes, flags: int, session: str | None,
             lock_index: int | None = None) -> None:
        old = self.kv.get(key)
        self.kv[key] = KVEntry(
            key, value, flags, old.create_index if old else self.idx, self.idx,
            lock_index if lock_index is not None else (old.lock_index if old else 0),
            session if session is not None else (old.session if old else ""))
        self.wrote = True

    def set(self, key: str, value: bytes, flags: int) -> bool:
        self._set(key, value, flags, None)  # a plain set keeps the lock holder
        return True

    def cas(self, key: str, value: bytes, flags: int, index: int) -> bool:
        old = self.kv.get(key)
        if (index == 0 and old is not None) or (index != 0 and (
                old is None or old.modify_index != index)):
            return False
        self._set(key, value, flags, None)
        return True

    def lock(self, key: str, value: bytes, flags: int, session: str) -> bool:
        if not session:
            raise SimError(500, "missing session")
        if session not in self.world.sessions:
            raise SimError(500, f"invalid session {json.dumps(session)}")
        if self.world.kv_lock_delay.get(key, 0.0) > time.monotonic():
            return False  # kvs_endpoint.go: "Rejecting lock of key due to lock-delay"
        old = self.kv.get(key)
        if old is not None and old.session and old.session != session:
            return False  # someone else holds it
        if old is not None and old.session == session:
            lock_index = old.lock_index
        else:
            lock_index = (old.lock_index if old else 0) + 1
        self._set(key, value, flags, session, lock_index)
        return True

    def unlock(self, key: str, value: bytes, flags: int, session: str) -> bool:
        if not session:
            raise SimError(500, "missing session")
        old = self.kv.get(key)
        if old is None or old.session != session:
            return False
        self._set(key, value, flags, "")
        return True

    def delete(self, key: str) -> None:
        if self.kv.pop(key, None) is not None:
            self.wrote = True

    def delete_tree(self, prefix: str) -> None:
        for k in [k for k in self.kv if k.startswith(prefix)]:
            del self.kv[k]
            self.wrote = True

    def delete_cas(self, key: str, index: int) -> bool:
        old = self.kv.get(key)
        if old is None:
            return True  # kvsDeleteCASTxn: nothing to delete is a success
        if old.modify_index != index:
            return False
        self.delete(key)
        return True

    def commit(self) -> None:
        if not self.wrote:
            return
        idx = self.world.consul.bump("kvs")
        assert idx == self.idx, "the KV transaction must be made and committed in one step"
        self.world.kv = self.kv
        self.world.notify()


# -- sessions ----------------------------------------------------------------------------------


def _duration_ns(raw: Any, field: str) -> int:
    """Go durations as the session API takes them: "15s", "500ms", or a number (ns)."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return int(raw)
    text = str(raw).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not m:
        raise SimError(400, f"Request decode failed: time: invalid duration {json.dumps(text)}")
    scale = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
             "h": 3600 * 10**9}[m.group(2)]
    return int(float(m.group(1)) * scale)


def _fold(body: Any) -> dict[str, Any]:
    """Go's JSON decoding matches field names without regard to case (py-consul sends
    `name`, `lockdelay`, ...)."""
    if not isinstance(body, dict):
        return {}
    return {str(k).lower(): v for k, v in body.items()}


async def _json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise SimError(400, f"Request decode failed: {exc}") from None


def session_create(world: World, body: dict[str, Any], agent_node: str) -> ConsulSession:
    b = _fold(body)
    node = str(b.get("node") or agent_node)
    if node not in world.consul_nodes or world.consul_nodes[node].left:
        raise SimError(500, "Missing node registration")
    behavior = str(b.get("behavior") or "release")
    if behavior not in ("release", "delete"):
        raise SimError(400, f"Invalid Behavior setting '{behavior}'")
    ttl = str(b.get("ttl") or "")
    if ttl:
        ns = _duration_ns(ttl, "TTL")
        if not 10 * 10**9 <= ns <= 86400 * 10**9:
            raise SimError(400, f"Invalid Session TTL '{ttl}', must be between [10s=24h0m0s]")
    checks = b.get("nodechecks", b.get("checks"))
    idx = world.consul.bump("sessions")
    sess = ConsulSession(
        world.new_id(), str(b.get("name") or ""), node,
        _duration_ns(b["lockdelay"], "LockDelay") if b.get("lockdelay") is not None
        else 15 * 10**9, behavior, ttl,
        [str(c) for c in checks] if isinstance(checks, list) else ["serfHealth"],
        b.get("servicechecks") if isinstance(b.get("servicechecks"), list) else None,
        idx, idx)
    world.sessions[sess.id] = sess
    world.notify()
    if ttl:
        renew_session(world, sess.id)
    return sess


def renew_session(world: World, session_id: str) -> ConsulSession | None:
    """Restart a TTL session's clock; it ends when not renewed within its TTL."""
    sess = world.sessions.get(session_id)
    if sess is None:
        return None
    sess.renewed = time.monotonic()
    if sess.ttl:
        ttl = _duration_ns(sess.ttl, "TTL") / 1e9
        stamp = sess.renewed

        def expire() -> None:
            current = world.sessions.get(session_id)
            if current is not None and current.renewed == stamp:
                session_destroy(world, session_id)

        world._later(ttl, expire)
    return sess


def session_destroy(world: World, session_id: str) -> None:
    """End a session: its locks are released, or their keys deleted (`Behavior`)."""
    sess = world.sessions.pop(session_id, None)
    if sess is None:
        return
    world.consul.bump("sessions")
    txn = KVTxn(world)
    for key, e in list(txn.kv.items()):
        if e.session == session_id:
            if sess.lock_delay_ns:  # the lock-delay: nobody takes it at once
                world.kv_lock_delay[key] = time.monotonic() + sess.lock_delay_ns / 1e9
            if sess.behavior == "delete":
                txn.delete(key)
            else:
                txn._set(key, e.value, e.flags, "")
    txn.commit()
    world.notify()


def invalidate_node_sessions(world: World, node: str) -> None:
    """A node that fails its serfHealth check takes its sessions with it (docs: sessions)."""
    for sid, sess in list(world.sessions.items()):
        if sess.node == node and "serfHealth" in sess.node_checks:
            session_destroy(world, sid)


# -- HTTP -------------------------------------------------------------------------------------


def _uint(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise SimError(400, f"Invalid {name}: strconv.ParseUint: parsing {raw!r}: invalid syntax")
    return int(raw)


def kv_write(world: World, request: web.Request, key: str, body: bytes) -> bool:
    """PUT /v1/kv/:key with `flags`, `cas`, `acquire` or `release`."""
    flags = _uint(request, "flags") or 0
    cas = _uint(request, "cas")
    txn = KVTxn(world)
    if "acquire" in request.query:
        ok = txn.lock(key, body, flags, request.query["acquire"])
    elif "release" in request.query:
        ok = txn.unlock(key, body, flags, request.query["release"])
    elif cas is not None:
        ok = txn.cas(key, body, flags, cas)
    else:
        ok = txn.set(key, body, flags)
    if ok:
        txn.commit()
    return ok


def kv_remove(world: World, request: web.Request, key: str, recurse: bool) -> bool:
    """DELETE /v1/kv/:key: `?recurse` a prefix; `?cas` only on a matching ModifyIndex."""
    cas = _uint(request, "cas")
    txn = KVTxn(world)
    ok = True
    if recurse:
        txn.delete_tree(key)
    elif cas is not None:
        ok = txn.delete_cas(key, cas)
    else:
        txn.delete(key)
    if ok:
        txn.commit()
    return ok


def _txn_op(txn: KVTxn, op: dict[str, Any]) -> list[dict[str, Any]]:
    verb = str(op.get("verb", ""))
    key = str(op.get("key", ""))
    try:
        value = base64.b64decode(op.get("value") or "", validate=True)
    except ValueError:
        raise TxnFailure(f"failed to decode value for key {json.dumps(key)}") from None
    flags = int(op.get("flags") or 0)
    index = int(op.get("index") or 0)
    session = str(op.get("session") or "")

    def written() -> list[dict[str, Any]]:
        e = txn.kv.get(key)
        return [entry_json(e, with_value=False)] if e else []

    if verb == "set":
        txn.set(key, value, flags)
        return written()
    if verb == "cas":
        if not txn.cas(key, value, flags, index):
            raise TxnFailure(f"failed to set key {json.dumps(key)}, index is stale")
        return written()
    if verb == "lock":
        try:
            ok = txn.lock(key, value, flags, session)
        except SimError as exc:
            raise TxnFailure(exc.message) from None
        if not ok:
            raise TxnFailure(f"failed to lock key {json.dumps(key)}, lock is already held")
        return written()
    if verb == "unlock":
        try:
            ok = txn.unlock(key, value, flags, session)
        except SimError as exc:
            raise TxnFailure(exc.message) from None
        if not ok:
            raise TxnFailure(f"failed to unlock key {json.dumps(key)}, lock isn't held, or "
                             "is held by another session")
        return written()
    if verb == "get":
        e = txn.kv.get(key)
        if e is None:
            raise TxnFailure(f"key {json.dumps(key)} doesn't exist")
        return [entry_json(e)]
    if verb == "get-tree":
        return [entry_json(e) for k, e in sorted(txn.kv.items()) if k.startswith(key)]
    if verb == "check-index":
        e = txn.kv.get(key)
        if e is None:
            raise TxnFailure(f"failed to check index, key {json.dumps(key)} doesn't exist")
        if e.modify_index != index:
            raise TxnFailure(f"failed index check for key {json.dumps(key)}, current modify "
                             f"index {e.modify_index} != {index}")
        return [entry_json(e, with_value=False)]
    if verb == "check-session":
        e = txn.kv.get(key)
        if e is None:
            raise TxnFailure(f"failed to check session, key {json.dumps(key)} doesn't exist")
        if e.session != session:
            raise TxnFailure(f"failed session check for key {json.dumps(key)}, current "
                             f"session {json.dumps(e.session)} != {json.dumps(session)}")
        return [entry_json(e, with_value=False)]
    if verb == "check-not-exists":
        if key in txn.kv:
            raise TxnFailure(f"key {json.dumps(key)} exists")
        return []
    if verb == "delete":
        txn.delete(key)
        return []
    if verb == "delete-tree":
        txn.delete_tree(key)
        return []
    if verb == "delete-cas":
        if not txn.delete_cas(key, index):
            raise TxnFailure(f"failed to delete key {json.dumps(key)}, index is stale")
        return []
    raise TxnFailure(f"unknown KV verb {json.dumps(verb)}")


def routes(world_of: WorldOf, headers: HeadersOf, agent_node: Callable[[World], str]
           ) -> list[tuple[str, str, Callable[[web.Request], Any]]]:
    """(method, path, handler) for the session and txn endpoints."""

    def _index(w: World) -> dict[str, str]:
        return headers(w, w.consul.of("sessions"))

    async def create(request: web.Request) -> web.Response:
        w = world_of(request)
        body = await _json_body(request)
        if body is not None and not isinstance(body, dict):
            raise SimError(400, "Request decode failed: expected a session object")
        sess = session_create(w, body or {}, agent_node(w))
        return web.json_response({"ID": sess.id}, headers=_index(w))

    async def destroy(request: web.Request) -> web.Response:
        w = world_of(request)
        session_destroy(w, request.match_info["id"])
        return web.json_response(True, headers=_index(w))

    async def renew(request: web.Request) -> web.Response:
        w = world_of(request)
        sid = request.match_info["id"]
        sess = renew_session(w, sid)
        if sess is None:
            raise SimError(404, f"Session id '{sid}' not found")
        return web.json_response([session_json(sess)], headers=_index(w))

    def listing(pick: Callable[[web.Request, ConsulSession], bool]) -> Any:
        async def handler(request: web.Request) -> web.Response:
            w = world_of(request)
            found = [session_json(s) for s in sorted(w.sessions.values(),
                                                     key=lambda s: s.create_index)
                     if pick(request, s)]
            return web.json_response(found, headers=_index(w))  # [] for none, never null
        return handler

    async def txn(request: web.Request) -> web.Response:
        w = world_of(request)
        body = await _json_body(request)
        if not isinstance(body, list):
            raise SimError(400, "Failed to parse body: expected a list of operations")
        if len(body) > MAX_TXN_OPS:
            raise SimError(413, f"Transaction contains too many operations ({len(body)} > "
                                f"{MAX_TXN_OPS})")
        t = KVTxn(w)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for i, op in enumerate(body):
            kv = _fold(op).get("kv") if isinstance(op, dict) else None
            if not isinstance(kv, dict):
                raise SimError(400, f"Failed to parse body: operation {i} is not a KV "
                                    "operation (the lab's /v1/txn carries KV only)")
            try:
                results.extend({"KV": r} for r in _txn_op(t, _fold(kv)))
            except TxnFailure as exc:
                errors.append({"OpIndex": i, "What": str(exc)})
            except (TypeError, ValueError) as exc:
                raise SimError(400, f"Failed to parse body: {exc}") from None
        hdrs = headers(w, w.consul.of("kvs"))
        if errors:
            return web.json_response({"Results": None, "Errors": errors}, status=409,
                                     headers=hdrs)
        t.commit()
        return web.json_response({"Results": results or None, "Errors": None},
                                 headers=headers(w, w.consul.of("kvs")))

    return [
        ("PUT", "/v1/session/create", create),
        ("PUT", "/v1/session/destroy/{id}", destroy),
        ("PUT", "/v1/session/renew/{id}", renew),
        ("GET", "/v1/session/info/{id}", listing(lambda r, s: s.id == r.match_info["id"])),
        ("GET", "/v1/session/list", listing(lambda r, s: True)),
        ("GET", "/v1/session/node/{node}", listing(lambda r, s: s.node == r.match_info["node"])),
        ("PUT", "/v1/txn", txn),
    ]


__all__ = ["KVTxn", "entry_json", "invalidate_node_sessions", "kv_remove", "kv_write",
           "routes", "session_create", "session_destroy", "session_json"]
