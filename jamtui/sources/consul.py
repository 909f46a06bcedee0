"""Consul: services and their instances with checks, members, intentions and server quorum.

Watches with blocking queries (`index` + `wait`) through py-consul: the catalog's service list
and the state of every check, so a registration or a flapping check arrives as soon as Consul
has it, and an idle lab costs two held requests per wait period. Members and the Raft
configuration have no change feed; they are polled at the configured interval.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from typing import Any
from urllib.parse import urlsplit

import consul
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
from .base import BackendError, Source, http_problem, timed
from .tls import TLSSettings

MAINTENANCE_CHECK = "_node_maintenance"
SAFETY_POLL = 60.0  # seconds between reads of members and Raft while all is well
WAIT = "60s"  # how long Consul may hold a blocking query; a change ends it at once
_NOMAD_ALLOC = re.compile(r"^_nomad-task-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                          r"[0-9a-f]{12})-")
_MEMBER_STATUS = {0: "none", 1: "alive", 2: "leaving", 3: "left", 4: "failed"}


# -- decoders (wire -> model), pure ---------------------------------------------------------


def decode_check(c: dict[str, Any]) -> CheckInfo:
    return CheckInfo(check_id=c.get("CheckID", ""), name=c.get("Name", ""),
                     status=c.get("Status", "critical"), output=c.get("Output", "") or "",
                     service_id=c.get("ServiceID", "") or "")


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
        self.tls.session(self.client.http.session)  # the server name, on py-consul's session
        self._service_index: str | None = None
        self._check_index: str | None = None
        self._intention_index: str | None = None
        self._maintenance: set[str] = set()
        # `ready` means the services are in: the member poll waits for the first read
        self._first_read = threading.Event()

    def start(self) -> None:
        self.spawn(lambda: self.loop(self._services_step, "services"), "services")
        self.spawn(lambda: self.loop(self._checks_step, "checks"), "checks")
        self.spawn(lambda: self.loop(self._intentions_step, "intentions"), "intentions")
        self.spawn(lambda: self.loop(self._cluster_step, "members"), "members")
        self.spawn_probe(self.poll_interval)

    def probe(self, timeout: float) -> None:
        """`/v1/status/leader` (no ACL needed): a Consul that fails or falls silent shows
        within seconds even while every watch is a held query."""
        http = self.client.http
        resp = http.session.get(http.uri("/v1/status/leader"),
                                headers=self.client.prepare_headers(), verify=http.verify,
                                cert=http.cert, timeout=timeout)
        try:
            CB.json()(http.response(resp))
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

    def _services_step(self) -> None:
        """Hold a blocking query on the service list; on change, re-read every service.
        The first pass reads everything, so `ready` means the whole picture is in."""
        self.requests_made += 1
        index, _ = self.client.catalog.services(index=self._hold(self._service_index),
                                                wait=self.wait)
        if index != self._service_index:
            if self._service_index is None:
                # the whole first picture before `ready`; what the token may not read turns
                # its own feature off, and the other loops report their own failures
                with contextlib.suppress(consul.ConsulException, requests.RequestException):
                    self.read_cluster()
                with contextlib.suppress(consul.ConsulException, requests.RequestException):
                    self._read_intentions()
            self._service_index = index
            self.refresh_services()
        self.report_ok()

    def _checks_step(self) -> None:
        """Any check's status or output changing wakes this one; a member failing or
        coming back shows here first, as its serfHealth check."""
        self.requests_made += 1
        index, checks = self.client.health.state("any", index=self._hold(self._check_index),
                                                 wait=self.wait)
        self._maintenance = nodes_in_maintenance(checks or [])
        if index != self._check_index:
            first = self._check_index is None
            self._check_index = index
            if not first:
                self.refresh_services()
                self.read_cluster()
        if self._first_read.is_set():
            self.report_ok()

    def _intentions_step(self) -> None:
        self._first_read.wait(10)
        if not self._read_intentions(wait=True):
            self.stop_event.wait(SAFETY_POLL)  # refused: look again now and then

    def _read_intentions(self, wait: bool = False) -> bool:
        """Read (or hold on) the intentions; False when the token may not read them."""
        index = self._hold(self._intention_index) if wait else None
        params = [("index", index), ("wait", self.wait)] if index else []
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
        (slow, or a capability refused) still blocks: the watches must not spin."""
        return index if self.reported_health() in (Health.OK, Health.DEGRADED) else None

    def refresh_services(self) -> None:
        (names, instances), latency = timed(self._read_services)
        services = [summarize(name, tags, [i for i in instances if i.service == name])
                    for name, tags in names.items()]
        with self.store.batch():
            self.store.replace(Kind.SERVICE, services)
            self.store.replace(Kind.INSTANCE, instances)
        self.report_ok(latency / max(1, len(names) + 1))
        self._first_read.set()

    def _read_services(self) -> tuple[dict[str, list[str]], list[ServiceInstance]]:
        resp = self._raw("/v1/catalog/services")
        names = CB.json()(resp) or {}
        if _filtered(resp) and not names:  # Consul hides what the token may not read
            self.refuse("services", "service:read", "Consul services: not permitted (the "
                        "token lacks service:read); none are listed", Kind.SERVICE.value)
        else:
            self.permit("services")
        instances: list[ServiceInstance] = []
        for name in sorted(names):
            self.requests_made += 1
            _, entries = self.client.health.service(name)
            instances.extend(decode_instance(e) for e in entries)
        return names, instances

    def _cluster_step(self) -> float:
        """Members and the Raft view have no change feed. A member's serfHealth check moves
        with it (the checks watch re-reads them then); this slow poll is the safety net,
        quick only while something is wrong."""
        if not self._first_read.is_set():
            self._first_read.wait(10)
            return SAFETY_POLL
        self.read_cluster()
        quorum = self.store.get(Kind.QUORUM, "consul")
        unwell = quorum is None or not quorum.has_leader or (  # a refusal is not unwell
            self.store.backend(self.name).health not in (Health.OK, Health.DEGRADED))
        return self.poll_interval if unwell else max(SAFETY_POLL, self.poll_interval)

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

