"""Consul: services and their instances with checks, members, intentions and server quorum.

Watches with blocking queries (`index` + `wait`) through py-consul: the catalog's service list
and the state of every check, so a registration or a flapping check arrives as soon as Consul
has it, and an idle lab costs two held requests per wait period. What changed is applied:
a check change to its instance and its service's counts (no re-read), a service whose name,
tags or instances moved is read alone. Members and the Raft configuration have no change
feed; they are read on their own cadence, and soon after a member's serfHealth check moves.
The first picture reads the services `READS` at a time (Consul's public API has no bulk read
of every service's instances: one `/v1/health/service/:name` each), each written as it
answers and each read once.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property, partial
from typing import Any
from urllib.parse import urlsplit

import consul
import msgspec
import requests
from consul.callback import CB

from ..config import ConsulConfig
from ..model import (
    CheckInfo,
    Health,
    Intention,
    Kind,
    Member,
    Quorum,
    Service,
    ServiceInstance,
    worst,
)
from ..store import Store
from . import jsonload
from .base import BackendError, Source, http_problem, timed, wait_first_frame
from .side import Ahead, as_they_end
from .tls import PlainGet, TLSSettings

MAINTENANCE_CHECK = "_node_maintenance"
SAFETY_POLL = 60.0  # seconds between reads of members and Raft while all is well
MIN_GAP = 0.1  # seconds at least between the starts of two calls of one blocking query
COST_RATIO = 20  # the check watch's calls at least 20x its last answer's CPU apart (<= ~5 %)
CLUSTER_GAP = 2.0  # seconds at least between member reads woken by serfHealth changes
READS = 8  # services read at once (their /v1/health/service/:name) in a full read
WAIT = "60s"  # how long Consul may hold a blocking query; a change ends it at once
_NOMAD_ALLOC = re.compile(r"^_nomad-task-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                          r"[0-9a-f]{12})-")
_MEMBER_STATUS = {0: "none", 1: "alive", 2: "leaving", 3: "left", 4: "failed"}


# -- decoders (wire -> model), pure ---------------------------------------------------------


def decode_check(c: dict[str, Any]) -> CheckInfo:
    return CheckInfo(check_id=c.get("CheckID", ""), name=c.get("Name", ""),
                     status=c.get("Status", "critical"), output=c.get("Output", "") or "",
                     service_id=c.get("ServiceID", "") or "")


@dataclass(frozen=True)
class NodeCheck:
    """One entry of `/v1/health/state/any`: the check as shown, and whose it is."""

    info: CheckInfo
    service_name: str = ""


def decode_node_check(c: dict[str, Any]) -> NodeCheck:
    return NodeCheck(decode_check(c), c.get("ServiceName", "") or "")


class _WireNodeCheck(msgspec.Struct, gc=False):
    """What `decode_node_check` and the check watch read of a `/v1/health/state/any` entry
    (2.5 MB at 5,000 instances, decoded again on every change)."""

    Node: Any = ""
    CheckID: Any = ""
    Name: Any = ""
    Status: Any = "critical"
    Output: Any = ""
    ServiceID: Any = ""
    ServiceName: Any = ""


CheckKey = tuple[str, str]  # (node, check id): a check id is only unique on its node


def decode_node_checks(body: bytes | str, previous: Mapping[CheckKey, NodeCheck] | None = None
                       ) -> list[tuple[CheckKey, NodeCheck]]:
    """A `/v1/health/state/any` body, each check by (node, check id): what `decode_node_check`
    gives of each entry of `json.loads(body)`. A check equal to its record in `previous` (the
    last answer's) is that record: the watch's answer is every check (5,000 at 5,000
    instances) of which one or two moved, and an unchanged check is then neither built again
    nor compared field by field (`_apply_checks` tells them by identity first)."""
    wire: list[_WireNodeCheck] | None = jsonload.typed(body, list[_WireNodeCheck] | None)
    last = previous or {}
    out: list[tuple[CheckKey, NodeCheck]] = []
    for c in wire or ():
        key = (c.Node, c.CheckID)
        output, sid, service = c.Output or "", c.ServiceID or "", c.ServiceName or ""
        known = last.get(key)
        if known is not None:
            info = known.info
            if (info.status == c.Status and info.output == output and info.name == c.Name
                    and info.service_id == sid and known.service_name == service
                    and info.check_id == c.CheckID):
                out.append((key, known))
                continue
        out.append((key, NodeCheck(CheckInfo(c.CheckID, c.Name, c.Status, output, sid),
                                   service)))
    return out


def jittered(wait: str) -> str:
    """A blocking query's `wait`, shortened by up to 1/16 at random so that many watches do
    not all wake together (the server adds up to wait/16 of its own)."""
    seconds = go_seconds(wait)
    return f"{int(seconds * 1000 * (1 - random.random() / 16))}ms"


def go_seconds(text: str) -> float:
    """`60s`, `5m`, `1m30s`, `500ms` -> seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


class Watch:
    """One blocking query's index, kept by the rules of Consul's blocking-queries page:
    an index that goes backwards restarts the loop (the next call does not block); one
    below 1 is taken as 1 (index 0 never blocks: a busy loop); calls at least `MIN_GAP`
    apart (a result that changes all the time must not become a request storm), and at
    least `cost_ratio` times the CPU the calling thread spent on the last call and its
    handling: at 5,000 instances every change of any check brings back all 5,000 (2.5 MB,
    ~35 ms to read, decode and apply), and a lab whose checks keep moving had the watch
    at ten such answers a second. A change after a quiet spell still shows at once (the
    gap counts from the last call's start, and a held query is no CPU)."""

    def __init__(self, min_gap: float = 0.0, cost_ratio: float = 0.0) -> None:
        self.index: int | None = None
        self.min_gap = min_gap
        self.cost_ratio = cost_ratio
        self._started = 0.0
        self._cpu = 0.0  # the calling thread's CPU time at the last call's start

    def param(self) -> str | None:
        return str(self.index) if self.index is not None else None

    def pace(self, stop: threading.Event) -> None:
        cpu = time.thread_time()
        gap = max(self.min_gap, self.cost_ratio * (cpu - self._cpu)) if self._started \
            else self.min_gap
        pause = self._started + gap - time.monotonic()
        if pause > 0:
            stop.wait(pause)
        self._started, self._cpu = time.monotonic(), time.thread_time()

    @staticmethod
    def _index_of(header: Any) -> int:
        """An answer's X-Consul-Index as the watch holds it (never below 1; 1 when absent)."""
        try:
            return max(1, int(header))
        except (TypeError, ValueError):
            return 1

    def holds(self, header: Any) -> bool:
        """The answer's X-Consul-Index is the one held: its result is the last one again (a
        blocking query whose wait ran out, api-docs/features/blocking)."""
        return self.index is not None and self._index_of(header) == self.index

    def answered(self, header: Any) -> bool:
        """Take an answer's X-Consul-Index; True when its result may differ from the last."""
        new = self._index_of(header)
        old = self.index
        if old is not None and new < old:
            self.index = None  # backwards: start again, this answer as a fresh first one
            return True
        self.index = new
        return new != old


def decode_instance(entry: dict[str, Any]) -> ServiceInstance:
    """One `/v1/health/service/<name>` entry."""
    node, svc = entry.get("Node") or {}, entry.get("Service") or {}
    sid = svc.get("ID", "")
    match = _NOMAD_ALLOC.match(sid)
    return ServiceInstance(
        id=f"{node.get('Node', '')}/{sid}",
        service=svc.get("Service", ""),
        service_id=sid,
        node=node.get("Node", ""),
        address=svc.get("Address") or node.get("Address", ""),
        port=int(svc.get("Port") or 0),
        tags=tuple(svc.get("Tags") or ()),
        checks=tuple(decode_check(c) for c in entry.get("Checks") or ()),
        kind=svc.get("Kind", "") or "",
        alloc_id=match.group(1) if match else "",
    )


# `/v1/health/service/:name` bodies (8 MB in all at 5,000 instances) are decoded straight
# into these structs (jsonload.typed): the fields `decode_instance` reads, nothing else (not
# the nodes' tagged addresses and metadata, the services' proxies and weights, the checks'
# definitions). Both must give equal instances (tests/sources/test_decode_fast.py).


class _WireCheck(msgspec.Struct, gc=False):
    CheckID: Any = ""
    Name: Any = ""
    Status: Any = "critical"
    Output: Any = ""
    ServiceID: Any = ""


class _WireNode(msgspec.Struct, gc=False):
    Node: Any = ""
    Address: Any = ""


class _WireService(msgspec.Struct, gc=False):
    ID: Any = ""
    Service: Any = ""
    Address: Any = None
    Port: Any = None
    Tags: Any = None
    Kind: Any = ""


class _WireEntry(msgspec.Struct, gc=False):
    Node: _WireNode | None = None
    Service: _WireService | None = None
    Checks: list[_WireCheck] | None = None


_NO_NODE, _NO_SERVICE = _WireNode(), _WireService()


def _wire_instance(entry: _WireEntry) -> ServiceInstance:
    """Positional arguments (a third cheaper than keywords, 5,000 instances and twice as
    many checks): in the dataclass fields' order, which test_decode_fast.py checks."""
    node, svc = entry.Node or _NO_NODE, entry.Service or _NO_SERVICE
    sid, name = svc.ID, node.Node
    match = _NOMAD_ALLOC.match(sid)
    return ServiceInstance(
        f"{name}/{sid}", svc.Service, sid, name, svc.Address or node.Address,
        int(svc.Port or 0), tuple(svc.Tags or ()),
        tuple([CheckInfo(c.CheckID, c.Name, c.Status, c.Output or "", c.ServiceID or "")
               for c in entry.Checks or ()]),
        svc.Kind or "", match.group(1) if match else "",  # kind, alloc_id
    )


def decode_instances(body: bytes | str) -> list[ServiceInstance]:
    """A `/v1/health/service/:name` body: what `[decode_instance(e) for e in
    json.loads(body)]` gives, at a fraction of the CPU."""
    wire: list[_WireEntry] | None = jsonload.typed(body, list[_WireEntry] | None)  # null: none
    return [_wire_instance(e) for e in wire or ()]


def summarize(name: str, tags: list[str], instances: list[ServiceInstance]) -> Service:
    counts = {"passing": 0, "warning": 0, "critical": 0}
    for inst in instances:
        status = worst(c.status for c in inst.checks)
        counts["critical" if status not in counts else status] += 1
    return Service(name=name, tags=tuple(tags), **counts)


def decode_member(m: dict[str, Any], in_maintenance: set[str] | frozenset[str] = frozenset()
                  ) -> Member:
    tags = m.get("Tags") or {}
    name = m.get("Name", "")
    return Member(name=name, address=m.get("Addr", ""),
                  status=_MEMBER_STATUS.get(int(m.get("Status", 0)), "unknown"),
                  role="server" if tags.get("role") == "consul" else "client",
                  maintenance=name in in_maintenance)


def nodes_in_maintenance(checks: list[dict[str, Any]]) -> set[str]:
    """Nodes with the check `consul maint` adds (agent/maintenance)."""
    return {c.get("Node", "") for c in checks if c.get("CheckID") == MAINTENANCE_CHECK}


def decode_intention(i: dict[str, Any]) -> Intention:
    return Intention(source=i.get("SourceName", ""), destination=i.get("DestinationName", ""),
                     action=i.get("Action", ""), precedence=int(i.get("Precedence") or 0),
                     description=i.get("Description", "") or "")


def decode_quorum(leader: str, peers: list[str], health: dict[str, Any] | None = None,
                  members: list[Member] | None = None, note: str = "") -> Quorum:
    """Raft quorum from the best view the token allows: autopilot health (operator:read),
    else Serf (the members' gossip, node:read) over the Raft peers (no ACL), else the peers
    alone, whose health is then not known and not claimed."""
    if health is not None:
        voters = [s for s in health.get("Servers") or [] if s.get("Voter", True)]
        return Quorum("consul", leader or "", tuple(s.get("Address", "") for s in voters),
                      tuple(s.get("Address", "") for s in voters if s.get("Healthy")),
                      reported_tolerance=int(health.get("FailureTolerance") or 0),
                      source="autopilot", note=note)
    servers = tuple(peers)
    if members is not None:
        alive_ips = {m.address for m in members if m.status == "alive" and m.role == "server"}
        alive = tuple(p for p in servers if p.rsplit(":", 1)[0] in alive_ips)
        return Quorum("consul", leader or "", servers, alive, source="gossip", note=note)
    return Quorum("consul", leader or "", servers, (), checked=False, source="peers",
                  note=note)


def _decoded(decode: Callable[[bytes], Any]) -> Callable[[Any], Any]:
    """A py-consul callback for an answer: an error status raises what
    `CB.json()` raises for it (in its words), a 200 is decoded by `decode`; a body that is
    not JSON raises py-consul's "Failed to decode JSON" (ConsulException), as `CB.json()`
    does."""

    def callback(resp: Any) -> Any:  # the body: bytes (raw=True) or text
        if not 200 <= resp.code < 300:
            body = resp.body
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return CB.json()(resp._replace(body=text))
        try:
            return decode(resp.body)
        except jsonload.NotJSON as exc:
            raise consul.ConsulException(f"Failed to decode JSON: {exc}") from exc

    return callback


def _filtered(resp: Any) -> bool:
    """Consul hid some of a list's results from this token."""
    return str(resp.headers.get("X-Consul-Results-Filtered-By-ACLs", "")).lower() == "true"


# -- the source ----------------------------------------------------------------------------


class ConsulSource(Source):
    name = "consul"
    hint = "[consul] token / CONSUL_HTTP_TOKEN, [consul] ca_file / CONSUL_CACERT"

    def __init__(self, store: Store, cfg: ConsulConfig, *, poll_interval: float = 5.0,
                 wait: str = WAIT, timeout: float = 10.0) -> None:
        super().__init__(store, cfg.address, [cfg.token])
        self.cfg = cfg
        self.poll_interval = poll_interval
        self.wait = wait
        parts = urlsplit(cfg.address if "://" in cfg.address else f"http://{cfg.address}")
        self.tls = TLSSettings.of("consul", cfg)
        self.client = consul.Consul(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (443 if parts.scheme == "https" else 8500),
            scheme=parts.scheme or "http",
            token=cfg.token.reveal() or None,
            dc=cfg.datacenter or None,
            verify=self.tls.verify,
            cert=self.tls.cert,
            connections_timeout=timeout,
        )
        # the server name, on py-consul's session; room for the held watches and the reads
        self.tls.session(self.client.http.session, pool=READS + 8)
        self._services = Watch(MIN_GAP)  # /v1/catalog/services
        self._checks_watch = Watch(MIN_GAP, COST_RATIO)  # /v1/health/state/any
        self._intention_index: str | None = None
        self._maintenance: set[str] = set()
        # what the watches know, shared by their threads (under `_lock`): the service list,
        # each instance as read (`_bases`), every check by (node, check id)
        self._lock = threading.RLock()
        self._names: dict[str, list[str]] = {}
        self._names_known = False
        self._bases: dict[str, ServiceInstance] = {}
        self._by_service: dict[str, set[str]] = {}
        self._on_node: dict[str, set[str]] = {}
        self._check_map: dict[tuple[str, str], NodeCheck] = {}
        # node -> service id ("" for the node's own checks) -> its checks: an instance's
        # checks without a pass over its node's every check (5,000 instances, 100 nodes)
        self._checks_by_node: dict[str, dict[str, list[NodeCheck]]] = {}
        self._checks_loaded = False
        self._services_seen = 0  # the service list's index last acted on
        self._instances_moved = 0  # the checks' index at which instances were seen come/go
        self._checks_index = 0
        self._checks_seen = threading.Condition(self._lock)
        self._cluster_wake = threading.Event()  # a serfHealth check moved: read members
        # `ready` means the services are in: the member poll waits for the first read
        self._first_read = threading.Event()
        # while the first picture is read: the services not yet taken in (the check watch
        # leaves their unknown instances to it, and all of them before it begins)
        self._pending: set[str] | None = None
        self._stored: dict[str, set[str]] = {}  # the first picture: instance ids by service

    def start(self) -> None:
        self.spawn(lambda: self.loop(self._services_step, "services"), "services")
        if self.once:  # the first picture reads members, Raft and intentions itself, and
            self.spawn_probe(self.poll_interval)  # each instance's checks with it
            return
        self.spawn(self._checks_after_first_frame, "checks")
        self.spawn(lambda: self.loop(self._intentions_step, "intentions"), "intentions")
        self.spawn(lambda: self.loop(self._cluster_step, "members"), "members")
        self.spawn_probe(self.poll_interval)

    def _checks_after_first_frame(self) -> None:
        """The check watch, once the cockpit's first frame is drawn (`Source.first_frame`, at
        most `FIRST_FRAME_WAIT` s on): its first answer is every check (2.5 MB at 5k) that
        the frame does not need (each service's read carries its instances' checks); it
        then shows what changed since, as always (#17)."""
        if wait_first_frame(self.first_frame, self.stop_event):
            self.loop(self._checks_step, "checks")

    def probe(self, timeout: float) -> None:
        """`/v1/status/leader` (no ACL needed): a Consul that fails or falls silent shows
        within seconds even while every watch is a held query."""
        http = self.client.http
        # the session's own pool (as `_read_service`)
        got = self._plain.get("/v1/status/leader", timeout) if self._plain else None
        if got is not None:
            answer = consul.base.Response(got[0], got[2], got[3].decode("utf-8", "replace"))
        else:
            answer = http.response(http.session.get(
                http.uri("/v1/status/leader"), headers=self.client.prepare_headers(),
                verify=http.verify, cert=http.cert, timeout=timeout))
        try:
            CB.json()(answer)
        except consul.ConsulException as exc:
            raise self._words(exc) from exc

    # -- failures, in words ----------------------------------------------------------------------

    def report_failure(self, exc: BaseException, what: str = "") -> None:
        super().report_failure(self._words(exc), what)
        self._first_read.set()

    def _words(self, exc: BaseException) -> BaseException:
        if isinstance(exc, consul.ACLPermissionDenied):
            return BackendError(http_problem("consul", self.address, 403, str(exc), self.hint))
        if isinstance(exc, consul.ConsulException):
            text = str(exc)
            if "No cluster leader" in text:
                return BackendError(f"{self.address} has no cluster leader: fewer than a "
                                    "majority of Consul servers are alive. Start the vb nodes.")
            if text.startswith("Failed to decode JSON"):
                return BackendError(f"{self.address} sent a malformed answer (not valid JSON). "
                                    "Is it really Consul?")
            status = int(text[:3]) if text[:3].isdigit() else 500
            return BackendError(http_problem("consul", self.address, status, text[4:]))
        return exc

    # -- watches ---------------------------------------------------------------------------------

    def _block(self, watch: Watch, path: str, params: list[tuple[str, str]] | None = None,
               decode: Callable[[bytes], Any] = jsonload.loads,
               same_unread: bool = False) -> tuple[bool, Any, Any]:
        """One blocking query by Consul's rules (api-docs/features/blocking): the index
        held (none while the backend is down), a jittered wait, calls at least `MIN_GAP`
        apart. (changed, body as `decode` gives it, response). `same_unread`: an answer at
        the index held (the wait ran out) is not decoded, its body None: every check at 5k
        is 2.5 MB, decoded once a minute for nothing."""
        watch.pace(self.stop_event)
        index = self._hold(watch.param())
        query = [("index", index), ("wait", jittered(self.wait))] if index else []
        resp = self._raw(path, [*(params or []), *query])
        if same_unread and 200 <= resp.code < 300 and watch.holds(
                resp.headers.get("X-Consul-Index")):
            return False, None, resp
        body = _decoded(decode)(resp)
        return watch.answered(resp.headers.get("X-Consul-Index")), body, resp

    def _services_step(self) -> None:
        """Hold a blocking query on the service list. The first pass reads everything, so
        `ready` means the whole picture is in; later, only the services whose name or tags
        changed are read again, and the instances the check watch saw come or go. A change
        nothing explains (an instance without checks) reads every service again."""
        if self.once and self._names_known:  # a one-shot command holds no query open:
            self.stop_event.wait()  # its stop would wait for it
            return
        ahead = None
        if self.once and not self._names_known:
            # a one-shot command's readers start while the service list is read, not one
            # after the other once it is in (each start waits for the one GIL: at 5k, with
            # Nomad's list being decoded, the eighth began up to 0.2 s after the first)
            ahead = Ahead(READS, self.stop_event, f"{self.name}:read")
            ahead.start_beside()
        try:
            changed, names, resp = self._block(self._services, "/v1/catalog/services")
            names = names or {}
            self._permit_services(resp, names)
            if not self._names_known:
                self._services_seen = self._services.index or 0
                self._first_picture(names, ahead)
            elif changed:
                self._services_changed(names, self._services.index or 0)
        finally:
            if ahead is not None:
                ahead.close()
        self.report_ok()

    def _services_changed(self, names: dict[str, list[str]], index: int) -> None:
        with self._lock:
            old = dict(self._names)
            since = self._services_seen
            self._services_seen = index
        gone = set(old) - set(names)
        moved = {n for n, tags in names.items() if sorted(old.get(n) or []) != sorted(tags or [])}
        if gone:
            self._drop_services(gone)
        if moved:
            self._read_some(moved, names)
        if not gone and not moved:
            # the instances of a service came or went: the check watch sees that (a
            # registration carries its checks at the same Raft index) and reads that
            # service; wait briefly for it to catch up before reading them all
            with self._checks_seen:
                self._checks_seen.wait_for(lambda: self._checks_index >= index
                                           or self.stop_event.is_set(), timeout=2.0)
                explained = self._instances_moved > since
            if not explained:
                self.refresh_services(names)
        with self._lock:
            self._names = dict(names)

    def _checks_step(self) -> None:
        """One blocking query over every check's state (`/v1/health/state/any`): a
        change is applied to the instances it belongs to (a node check to every instance on
        that node) and their services' counts, nothing re-read. A member failing or coming
        back shows here first, as its serfHealth check: it wakes the members' read."""
        changed, checks, resp = self._block(
            self._checks_watch, "/v1/health/state/any",
            decode=lambda body: decode_node_checks(body, self._check_map), same_unread=True)
        if _filtered(resp) and not checks:
            changed = False  # hidden from this token: the instances keep the checks read
        if changed:
            self._apply_checks(checks or [], self._checks_watch.index or 0)
        if self._first_read.is_set():
            self.report_ok()

    def _apply_checks(self, checks: list[tuple[CheckKey, NodeCheck]], index: int) -> None:
        # the whole list comes back on any change of any check (5,000 at 5,000 instances):
        # an unchanged check is the record held (`decode_node_checks`), so it compares by
        # identity, and only the changed move in `by_node`
        new = dict(checks)
        with self._lock:
            old, self._check_map = self._check_map, new
            loaded = self._checks_loaded
            self._checks_loaded = True
            changed = {k for k in old.keys() | new.keys()  # an unchanged check is the same
                       if (was := old.get(k)) is not (now := new.get(k)) and was != now}
            if loaded and len(changed) * 4 < len(new):
                by_node = self._checks_by_node
                for node, check_id in changed:
                    before, after = old.get((node, check_id)), new.get((node, check_id))
                    on_node = by_node.setdefault(node, {})
                    if before is not None:
                        with contextlib.suppress(ValueError):
                            on_node.get(before.info.service_id, []).remove(before)
                    if after is not None:
                        on_node.setdefault(after.info.service_id, []).append(after)
            else:
                by_node = {}
                for (node, _), check in new.items():
                    by_node.setdefault(node, {}).setdefault(check.info.service_id,
                                                            []).append(check)
            self._checks_by_node = by_node
            touched: set[str] = set()
            reread: set[str] = set()
            for node, check_id in changed:
                before, after = old.get((node, check_id)), new.get((node, check_id))
                sid = (after or before).info.service_id  # type: ignore[union-attr]
                if not sid:
                    touched |= self._on_node.get(node, set())
                    continue
                iid = f"{node}/{sid}"
                if iid in self._bases:
                    touched.add(iid)
                    if after is None and not self._service_checks(node, sid):
                        reread.add(self._bases[iid].service)  # its last check went: gone?
                elif after is not None and after.service_name and not self._awaited(
                        after.service_name):
                    reread.add(after.service_name)  # an instance not known yet
            serf = any(k[1] == "serfHealth" for k in changed)
            maintenance = {n for (n, cid) in new if cid == MAINTENANCE_CHECK}
            maintenance_moved = maintenance != self._maintenance
            self._maintenance = maintenance
            if reread:
                self._instances_moved = index
            if not loaded and self._names_known:  # the picture was read before the checks
                reread |= self._unexplained()
        if not loaded:
            touched = set(self._bases)
        self._restate(touched)
        if reread:
            self._read_some(reread)
        if maintenance_moved:
            self._mark_maintenance(maintenance)
        if serf and loaded:
            self._cluster_wake.set()
        with self._checks_seen:
            self._checks_index = index
            self._checks_seen.notify_all()

    def _first_picture(self, names: dict[str, list[str]], ahead: Ahead | None = None) -> None:
        """The whole first picture before `ready`, `READS` requests at a time: members and
        Raft, intentions, and each service's instances, written to the store as each
        service answers. What the token may not read turns its own feature off (the other
        loops report their own failures); a service read that fails fails the picture,
        read again whole by the next pass."""
        with self._lock:
            self._names = dict(names)
            self._pending = set(names)
            self._bases, self._by_service, self._on_node = {}, {}, {}
            # what the store holds of each service (an earlier attempt's), found in one pass:
            # a scoped replace per service was a pass over every instance each (50 x 5,000)
            self._stored = {}
            for inst in self.store.items(Kind.INSTANCE):
                self._stored.setdefault(inst.service, set()).add(inst.id)
        started = time.monotonic()
        jobs: list[tuple[str, Callable[[], Any]]] = [
            ("", partial(self._quietly, self.read_cluster)),
            ("", partial(self._quietly, self._read_intentions))]
        jobs += [(n, partial(self._read_service, n)) for n in sorted(names)]

        def take(name: str, bases: Any) -> None:
            if name:  # a service's answer (the cluster and intentions write their own)
                self._take_first(name, bases)

        try:
            self._side_by_side(jobs, take, ahead)
        finally:
            with self._lock:
                self._pending = None
                self._stored = {}
        with self._lock, self.store.batch():
            self._names_known = True
            # what an earlier, failed attempt wrote and is gone now
            self.store.replace(Kind.INSTANCE, [], scope=lambda i: i.service not in names)
            for svc in self.store.items(Kind.SERVICE):
                if svc.name not in names:
                    self.store.remove(Kind.SERVICE, svc.name)
            stale = self._unexplained() if self._checks_loaded else set()
        self.report_ok((time.monotonic() - started) / max(1, len(names) + 1))
        self._first_read.set()
        if stale:  # the checks saw instances come or go while the services were read
            self._instances_moved = self._checks_index
            self._read_some(stale)

    def _side_by_side(self, jobs: list[tuple[str, Callable[[], Any]]],
                      done: Callable[[str, Any], Any], ahead: Ahead | None = None) -> None:
        """Run `jobs` `READS` at a time (on the readers started `ahead`, if any),
        `done(key, result)` in this thread as each ends. The first failure is raised (no
        job starts after it)."""
        calls = [job for _, job in jobs]
        ended = ahead.as_they_end(calls) if ahead is not None else as_they_end(
            calls, READS, self.stop_event, f"{self.name}:read")
        for n, value in ended:
            done(jobs[n][0], value)

    def _quietly(self, read: Any) -> None:
        with contextlib.suppress(consul.ConsulException, requests.RequestException):
            read()

    def _take_first(self, name: str, bases: list[ServiceInstance]) -> None:
        """One service's answer in the first picture: its instances and counts, at once."""
        with self._lock:
            if self._pending is not None:
                self._pending.discard(name)
            for iid in self._by_service.pop(name, set()):
                self._bases.pop(iid, None)
            self._bases.update((b.id, b) for b in bases)
            self._by_service[name] = {b.id for b in bases}
            for b in bases:
                self._on_node.setdefault(b.node, set()).add(b.id)
            instances = [self._checked(b) for b in bases]
            gone = self._stored.pop(name, set()) - {i.id for i in instances}
            with self.store.batch():
                for iid in gone:
                    self.store.remove(Kind.INSTANCE, iid)
                self.store.upsert_many(Kind.INSTANCE, instances)
                self.store.upsert(Kind.SERVICE, summarize(name, self._names.get(name) or [],
                                                          instances))

    def _unexplained(self) -> set[str]:
        """Services on which the check watch and the reads disagree (under the lock): a
        service check of an instance not read, or an instance read with service checks of
        which the watch has none."""
        checked: set[tuple[str, str]] = set()
        out: set[str] = set()
        for (node, _), check in self._check_map.items():
            sid = check.info.service_id
            if not sid:
                continue
            checked.add((node, sid))
            if f"{node}/{sid}" not in self._bases and check.service_name:
                out.add(check.service_name)
        for b in self._bases.values():
            if (b.node, b.service_id) not in checked and any(c.service_id for c in b.checks):
                out.add(b.service)
        return out

    def _awaited(self, name: str) -> bool:
        """The first picture has yet to take this service in (or has not begun): it will
        read its instances, the check watch need not (under the lock)."""
        return not self._names_known and (self._pending is None or name in self._pending)

    def _service_checks(self, node: str, sid: str) -> bool:
        return bool(self._checks_by_node.get(node, {}).get(sid))

    def _checks_of(self, base: ServiceInstance) -> tuple[CheckInfo, ...]:
        """An instance's checks as `/v1/health/service` gives them (its node's checks and
        its own), from the check watch once that has answered, else as read."""
        if not self._checks_loaded:
            return tuple(sorted(base.checks, key=lambda c: (c.service_id, c.check_id)))
        on_node = self._checks_by_node.get(base.node, {})
        mine = [c.info for c in (*on_node.get("", ()), *on_node.get(base.service_id, ()))]
        if not any(c.service_id for c in mine):  # not in the watch's answer yet
            mine += [c for c in base.checks if c.service_id]
        return tuple(sorted(mine, key=lambda c: (c.service_id, c.check_id)))

    def _checked(self, base: ServiceInstance) -> ServiceInstance:
        """The instance with its current checks (itself when they are the ones it has)."""
        checks = self._checks_of(base)
        return base if checks == base.checks else replace(base, checks=checks)

    def _restate(self, ids: set[str]) -> None:
        """Give these instances their current checks; recount their services."""
        if not ids:
            return
        # under the lock: a thread holding an older picture must not write it after ours
        with self._lock, self.store.batch():
            instances = [self._checked(self._bases[i]) for i in ids if i in self._bases]
            for inst in instances:
                self.store.upsert(Kind.INSTANCE, inst)
            self._recount({i.service for i in instances})

    def _recount(self, names: set[str]) -> None:
        for name in names:
            if name not in self._names and name not in self._by_service:
                continue
            with self._lock:
                tags = self._names.get(name)
                ids = list(self._by_service.get(name, ()))
            instances = [i for i in (self.store.get(Kind.INSTANCE, x) for x in ids) if i]
            if tags is None:  # the check watch found it before the service list did
                tags = sorted({t for i in instances for t in i.tags})
            self.store.upsert(Kind.SERVICE, summarize(name, tags, instances))

    def _mark_maintenance(self, nodes: set[str]) -> None:
        with self.store.batch():
            for member in self.store.items(Kind.MEMBER):
                if member.maintenance != (member.name in nodes):
                    self.store.upsert(Kind.MEMBER, replace(
                        member, maintenance=member.name in nodes))

    def _intentions_step(self) -> None:
        self._first_read.wait(10)
        if not self._read_intentions(wait=True):
            self.stop_event.wait(SAFETY_POLL)  # refused: look again now and then

    def _read_intentions(self, wait: bool = False) -> bool:
        """Read (or hold on) the intentions; False when the token may not read them."""
        index = self._hold(self._intention_index) if wait else None
        params = [("index", index), ("wait", jittered(self.wait))] if index else []
        resp = self._raw("/v1/connect/intentions", params)
        if resp.code == 403 and "not found" not in resp.body:
            self.refuse("intentions", "intentions:read", "Consul intentions: not permitted "
                        "(the token lacks intentions:read)", Kind.INTENTION.value)
            self.store.replace(Kind.INTENTION, [])
            self._intention_index = None
            return False
        items = CB.json()(resp) or []
        if _filtered(resp) and not items:
            self.refuse("intentions", "intentions:read", "Consul intentions: not permitted "
                        "(the token lacks intentions:read; Consul hid them)",
                        Kind.INTENTION.value)
        else:
            self.permit("intentions")
        index = resp.headers.get("X-Consul-Index")
        if index != self._intention_index:
            self._intention_index = index
            self.store.replace(Kind.INTENTION, [decode_intention(i) for i in items])
        return True

    def _raw(self, path: str, params: list[tuple[str, str]] | None = None) -> Any:
        """py-consul's Response (code, headers, body) as it came, for what the ACLs decide."""
        self.requests_made += 1
        params = list(params or [])
        if self.cfg.datacenter:
            params.append(("dc", self.cfg.datacenter))
        return self.client.http.get(lambda r: r, path, params=params,
                                    headers=self.client.prepare_headers())

    def _hold(self, index: str | None) -> str | None:
        """The index to block on; none (answer at once) while the backend is down, so a
        recovery shows as soon as Consul answers rather than after a whole wait. Degraded
        (slow, or a capability refused) and waiting for the first picture (unknown) still
        block: the watches must not spin (the check watch re-read every check's state,
        2.5 MB at 5,000 instances, ten times a second while the first picture was read,
        and the answer waited behind it)."""
        return None if self.reported_health() is Health.DOWN else index

    def _permit_services(self, resp: Any, names: dict[str, Any]) -> None:
        if _filtered(resp) and not names:  # Consul hides what the token may not read
            self.refuse("services", "service:read", "Consul services: not permitted (the "
                        "token lacks service:read); none are listed", Kind.SERVICE.value)
        else:
            self.permit("services")

    def refresh_services(self, names: dict[str, list[str]] | None = None) -> None:
        """Read every service's instances (the first picture, or a change nothing else
        explains)."""
        if names is None:
            resp = self._raw("/v1/catalog/services")
            names = CB.json()(resp) or {}
            self._permit_services(resp, names)
        (bases, latency) = timed(lambda: self._read_instances(sorted(names)))
        with self._lock:
            self._names = dict(names)
            self._names_known = True
            self._bases = {b.id: b for b in bases}
            self._index_bases()
        self._publish_all()
        self.report_ok(latency / max(1, len(names) + 1))
        self._first_read.set()

    def _read_some(self, wanted: set[str], names: dict[str, list[str]] | None = None) -> None:
        """Read these services' instances again and put what changed in the store."""
        if names is not None:
            with self._lock:
                self._names = dict(names)
        bases = self._read_instances(sorted(wanted))
        with self._lock:
            for name in wanted:
                for iid in self._by_service.pop(name, set()):
                    self._bases.pop(iid, None)
            self._bases.update((b.id, b) for b in bases)
            self._index_bases()
            instances = [replace(b, checks=self._checks_of(b)) for b in bases]
            with self.store.batch():
                self._write_some(wanted, instances)

    def _write_some(self, wanted: set[str], instances: list[ServiceInstance]) -> None:
        self.store.replace(Kind.INSTANCE, instances, scope=lambda i: i.service in wanted)
        for name in wanted:
            if name not in self._names and not self._by_service.get(name):
                self.store.remove(Kind.SERVICE, name)
        self._recount(wanted)

    def _drop_services(self, gone: set[str]) -> None:
        with self._lock:
            for name in gone:
                for iid in self._by_service.pop(name, set()):
                    self._bases.pop(iid, None)
                self._names.pop(name, None)
            self._index_bases()
            with self.store.batch():
                self.store.replace(Kind.INSTANCE, [], scope=lambda i: i.service in gone)
                for name in gone:
                    self.store.remove(Kind.SERVICE, name)

    def _index_bases(self) -> None:
        by_service: dict[str, set[str]] = {}
        on_node: dict[str, set[str]] = {}
        for b in self._bases.values():
            by_service.setdefault(b.service, set()).add(b.id)
            on_node.setdefault(b.node, set()).add(b.id)
        self._by_service, self._on_node = by_service, on_node

    def _publish_all(self) -> None:
        with self._lock:
            instances = [replace(b, checks=self._checks_of(b)) for b in self._bases.values()]
            grouped: dict[str, list[ServiceInstance]] = {}
            for inst in instances:
                grouped.setdefault(inst.service, []).append(inst)
            services = [summarize(name, tags, grouped.get(name, []))
                        for name, tags in self._names.items()]
            with self.store.batch():
                self.store.replace(Kind.SERVICE, services)
                self.store.replace(Kind.INSTANCE, instances)

    def _read_instances(self, names: list[str]) -> list[ServiceInstance]:
        """These services' instances, `READS` at a time."""
        if len(names) <= 1:
            return [i for n in names for i in self._read_service(n)]
        found: list[ServiceInstance] = []
        self._side_by_side([(n, partial(self._read_service, n)) for n in names],
                           lambda _, instances: found.extend(instances))
        return found

    def _read_service(self, name: str) -> list[ServiceInstance]:
        with self._lock:
            self.requests_made += 1
        # as py-consul's health.service asks (its session, URL, TLS and timeout: what its
        # `http.get(..., raw=True)` sends), the body read in big pieces (`whole_body`: 8 MB
        # in all at 5,000 instances) and decoded here (decode_instances); sent through the
        # session's own pool without requests' work around each request (`PlainGet`: 55
        # reads at 5k), the same failures raised
        params = [("dc", self.client.dc)] if self.client.dc else []
        http = self.client.http
        uri = http.uri(f"/v1/health/service/{name}", params)
        got = self._plain.get(uri[len(http.base_uri):], http.timeout(params)) \
            if self._plain else None
        if got is not None:
            answer = consul.base.Response(got[0], got[2], got[3])
        else:  # (a redirect: as requests follows it)
            resp = http.session.get(uri, headers=self.client.prepare_headers(),
                                    verify=http.verify, cert=http.cert,
                                    timeout=http.timeout(params), stream=True)
            answer = consul.base.Response(resp.status_code, resp.headers,
                                          jsonload.whole_body(resp))
        return list(_decoded(decode_instances)(answer) or [])

    @cached_property
    def _plain(self) -> PlainGet | None:
        """py-consul's session's GETs with its token (`tls.PlainGet`), made once."""
        http = self.client.http
        return PlainGet.of(http.session, http.base_uri, verify=http.verify, cert=http.cert,
                           headers=self.client.prepare_headers())

    def _cluster_step(self) -> None:
        """Members and the Raft view have no change feed: read on their own cadence (every
        `SAFETY_POLL` while all is well, the poll interval while something is wrong), and
        soon after a member's serfHealth check moves (at most every `CLUSTER_GAP`), never
        on other check changes."""
        if not self._first_read.is_set():
            self._first_read.wait(10)
            self._sleep(SAFETY_POLL)
            return
        self._cluster_wake.clear()
        self.read_cluster()
        quorum = self.store.get(Kind.QUORUM, "consul")
        unwell = quorum is None or not quorum.has_leader or (  # a refusal is not unwell
            self.store.backend(self.name).health not in (Health.OK, Health.DEGRADED))
        period = self.poll_interval if unwell else max(SAFETY_POLL, self.poll_interval)
        gap = min(CLUSTER_GAP, period)
        self.stop_event.wait(gap)  # serfHealth changes meanwhile make one read, not many
        self._sleep(period - gap)

    def _sleep(self, seconds: float) -> None:
        """Until `seconds` pass, a serfHealth change wakes the members' read, or stop."""
        deadline = time.monotonic() + seconds
        while not self.stop_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._cluster_wake.wait(min(left, 0.5)):
                return

    def read_cluster(self) -> None:
        resp = self._raw("/v1/agent/members")
        members: list[Member] | None = [
            decode_member(m, self._maintenance) for m in CB.json()(resp) or []]
        if _filtered(resp) and not members:  # node:read missing: Serf says nothing
            self.refuse("members", "node:read", "Consul members: not permitted (the token "
                        "lacks node:read)", Kind.MEMBER.value)
            members = None
        else:
            self.permit("members")
        quorum = self._quorum(members)
        with self.store.batch():
            self.store.upsert(Kind.QUORUM, quorum)
            self.store.replace(Kind.MEMBER, members or [])

    def _quorum(self, members: list[Member] | None) -> Quorum:
        leader = self._get("/v1/status/leader")
        peers = self._get("/v1/status/peers") or []  # status needs no ACL
        health = None
        note = ""
        if leader:
            resp = self._raw("/v1/operator/autopilot/health")
            if resp.code == 403:
                note = "the token lacks operator:read"
            elif resp.code in (200, 429):  # 429: read fine, and something is unhealthy
                health = json.loads(resp.body)
            # anything else (the leader just went, an error): Serf's view, this time
        if note:
            partial = ("servers' health from Serf gossip" if members is not None else
                       "servers from status/peers only, their health NOT checked (and "
                       "node:read is missing too)")
            self.refuse("quorum", "operator:read", f"quorum: {note}; {partial}",
                        Kind.QUORUM.value)
            note = f"{note}: {partial}"
        elif health is not None:
            self.permit("quorum")
        return decode_quorum(leader, peers, health, members, note)

    # -- actions -------------------------------------------------------------------------------

    def _agent(self, node: str, address: str, timeout: float = 10) -> consul.Consul:
        """A client of that node's own agent (for what only it does)."""
        parts = urlsplit(self.cfg.agent_url(node, address))
        agent = consul.Consul(
            host=parts.hostname or address, port=parts.port or 8500,
            scheme=parts.scheme or "http", token=self.cfg.token.reveal() or None,
            verify=self.tls.verify, cert=self.tls.cert, connections_timeout=timeout,
        )
        self.tls.session(agent.http.session)
        return agent

    def node_maintenance(self, node: str, address: str, enable: bool, reason: str = "") -> None:
        """`consul maint` for one node, through that node's own agent (only it can)."""
        self.requests_made += 1
        self._agent(node, address).agent.maintenance("true" if enable else "false",
                                                     reason or None)

    def node_leave(self, node: str, address: str) -> str:
        """`consul leave` on the node's agent; if it does not answer (the VM is down), a
        `force-leave` through the cluster so the node is not left `failed`."""
        self.requests_made += 1
        try:
            self._agent(node, address, timeout=3).agent.leave()
            return f"{node} left the cluster"
        except (requests.ConnectionError, requests.Timeout):
            self.requests_made += 1
            self.client.agent.force_leave(node)
            return f"{node}'s agent did not answer; forced it to leave"

    def _get(self, path: str) -> Any:
        # py-consul sends no token for members and the Raft configuration; with ACLs on,
        # Consul then filters members to none and refuses the Raft view. Send ours.
        self.requests_made += 1
        return self.client.http.get(CB.json(), path, headers=self.client.prepare_headers())

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        self.requests_made += 1
        return fn(*args, **kw)

