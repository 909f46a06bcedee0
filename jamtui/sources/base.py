"""What every source shares: a watch loop in its own thread, backoff, and honest health.

A source turns one backend's wire API into `jamtui.model` records and writes them into the
store. It never raises into the caller: failures become the backend's health, in words the
operator can act on, and the loop retries with jittered exponential backoff.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests

from ..config import Secret
from ..model import BackendStatus, Health, Refusal
from ..store import Store
from .reasons import in_words

log = logging.getLogger(__name__)

SLOW_SECONDS = 2.0  # an answer slower than this marks the backend degraded
PROBE_EVERY = 4.0  # at most this many seconds between liveness probes: a failure shows in < 5 s
PROBE_TIMEOUT = 5.0  # a liveness probe not answered in this long counts as no answer


class Backoff:
    """Jittered exponential backoff: 0.5 s, 1 s, 2 s ... up to `maximum`, never a busy loop."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0,
                 rng: Callable[[], float] = random.random) -> None:
        self.initial = initial
        self.maximum = maximum
        self.rng = rng
        self.attempt = 0

    def next(self) -> float:
        base = min(self.maximum, self.initial * (2 ** self.attempt))
        self.attempt += 1
        return base * (0.5 + self.rng() / 2)  # full range [base/2, base]

    def reset(self) -> None:
        self.attempt = 0


class BackendError(Exception):
    """A failure already put in words for the operator."""


def describe_error(backend: str, address: str, exc: BaseException, hint: str = "",
                   tls: Any = None) -> str:
    """Say what failed, where, and what to do, without leaking credentials. `tls` (the
    backend's TLSSettings) names the settings a TLS failure is fixed with."""
    where = address or backend
    if isinstance(exc, BackendError):
        return str(exc)
    if isinstance(exc, OSError):  # requests' errors too
        from .tls import TLSSettings, tls_failure

        words = tls_failure(exc, tls or TLSSettings(backend), where)
        if words:
            return f"{words[0]}. Fix: {words[1]}."
    why = in_words(exc)
    if isinstance(exc, requests.exceptions.SSLError | ssl.SSLError):
        return (f"TLS verification failed for {where}: {why}. Point ca_file at the CA "
                f"that signed its certificate{hint and ' (' + hint + ')'}.")
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.ReadTimeout):
        return f"{where} did not answer: {why}. Is it overloaded or unreachable?"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return (f"cannot reach {where}: {why}. Is {backend} running, and is the "
                f"address right?")
    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return http_problem(backend, where, exc.response.status_code, exc.response.text, hint)
    if isinstance(exc, json.JSONDecodeError | requests.exceptions.JSONDecodeError):
        return f"{where} sent a malformed answer (not valid JSON). Is it really {backend}?"
    return f"{backend} at {where}: {why}"


# What to check when a backend refuses a request (401/403): a token, except where there is
# none (HAProxy's stats page has a user and password, or a socket; Fabio's API has no auth).
_REFUSED_CHECK = {
    "haproxy": ("Check the stats page's user and password in [haproxy] stats_url "
                "(http://user:password@host:port/stats;csv, as `stats auth` sets them), or "
                "read the stats over [haproxy] socket instead"),
    "fabio": ("Fabio's API takes no token: check that [fabio] addresses point at Fabio's "
              "UI/API port (9998), not at a proxy in front of it"),
}


def http_problem(backend: str, where: str, status: int, body: str, hint: str = "") -> str:
    text = " ".join((body or "").split())[:200]
    if status in (401, 403) and backend in _REFUSED_CHECK:
        return f"{where} refused the request ({status} {text or 'forbidden'}). " \
               f"{_REFUSED_CHECK[backend]}."
    if status == 401 or (status == 403 and "not found" in text.lower()):
        return (f"{where} refused the token ({status} {text or 'forbidden'}). Check the "
                f"{backend} token{hint and ' (' + hint + ')'}.")
    if status == 403:  # a valid token without the permission (the answer often names it)
        return (f"{where} refused the token's request ({status} {text or 'forbidden'}): it "
                f"lacks a permission this needs. `jamtui doctor` names the {backend} ACL "
                f"rule to add{hint and ' (' + hint + ')'}.")
    if status >= 500:
        return f"{where} failed ({status} {text or 'server error'})."
    return f"{where} answered {status}: {text}"


def scrub(text: str, secrets: Iterable[Secret]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret.reveal(), "********")
    return text


FIRST_FRAME_WAIT = 20.0  # seconds at most background work waits for the cockpit's first frame


def wait_first_frame(first: threading.Event | None, stop: threading.Event) -> bool:
    """Wait until the cockpit's first frame is drawn (`first` set; None: nothing to wait
    for), `FIRST_FRAME_WAIT` seconds at most, looking at `stop` every quarter second:
    False if it was set."""
    until = time.monotonic() + FIRST_FRAME_WAIT
    while first is not None and not first.is_set() and not stop.is_set() \
            and time.monotonic() < until:
        first.wait(0.25)
    return not stop.is_set()


class Source:
    """Base of every backend adapter: threads, stop, and health bookkeeping."""

    name = "backend"
    once = False  # a one-shot command (`status`, `snapshot`): the first picture, no watching
    summary = False  # `status`: the counts it prints, not each record's detail
    # the cockpit's first frame (`Engine.first_frame`): background work that frame does not
    # need (Fabio's pass over the other instances) waits for it; None: nothing to wait for
    first_frame: threading.Event | None = None
    hint = ""  # where the operator fixes its settings, e.g. "[nomad] token / NOMAD_TOKEN"

    def __init__(self, store: Store, address: str, secrets: Iterable[Secret] = ()) -> None:
        self.store = store
        self.address = address
        self.secrets = tuple(secrets)
        self.stop_event = threading.Event()
        self._threads: list[threading.Thread] = []
        self.last_success: float | None = None
        self.requests_made = 0  # for the benchmarks: what watching costs the servers
        self.ready = threading.Event()  # set once the first answer (good or bad) is in
        # The liveness probe (see `probe`) overlays the watch loops' health: while it fails,
        # what the loops report is kept beneath and shown again once it answers.
        self._health_lock = threading.RLock()
        self._probe_down = False
        self._beneath: BackendStatus | None = None
        self._refused: dict[str, Refusal] = {}  # feature -> what the token lacks for it

    # -- threads -----------------------------------------------------------------------------

    def start(self) -> None:
        raise NotImplementedError

    def spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"{self.name}:{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the threads to end and wait up to `timeout` in all. A thread held in a
        blocking query is a daemon: it ends with its answer, or with the process."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def loop(self, step: Callable[[], float | None], what: str) -> None:
        """Run `step` until stopped; it returns seconds to sleep (None: go again at once).

        Failures are reported as health and retried with backoff, never raised.
        """
        backoff = Backoff()
        while not self.stop_event.is_set():
            try:
                pause = step()
            except Exception as exc:  # every failure is the backend's health, not a crash
                self.report_failure(exc, what)
                pause = backoff.next()
            else:
                backoff.reset()
            if pause:
                self.stop_event.wait(pause)

    # -- the liveness probe --------------------------------------------------------------------

    def probe(self, timeout: float) -> None:
        """One cheap request that needs no ACL (e.g. `/v1/status/leader`); raise if it fails.
        Sources whose watches are long-held requests run it so that a backend that starts
        failing (or goes silent) shows within seconds, not when a held request ends."""
        raise NotImplementedError

    def spawn_probe(self, poll_interval: float) -> None:
        every = min(PROBE_EVERY, poll_interval)
        self.spawn(lambda: self._probe_loop(every), "probe")

    def _probe_loop(self, every: float) -> None:
        # its own loop, not `loop`: no growing backoff, so a recovery shows as quickly
        while not self.stop_event.is_set():
            self.requests_made += 1
            try:
                self.probe(PROBE_TIMEOUT)
            except Exception as exc:  # the backend's health, never a crash
                self._probe_failed(exc)
            else:
                self._probe_answered()
            self.stop_event.wait(every)

    def _probe_failed(self, exc: BaseException) -> None:
        with self._health_lock:
            if not self._probe_down:
                self._beneath = self.store.backend(self.name)
                self._probe_down = True
            self._set(Health.DOWN, self._describe(exc, "liveness probe"), None, probe=True)

    def _probe_answered(self) -> None:
        with self._health_lock:
            if not self._probe_down:
                return
            self._probe_down = False
            beneath, self._beneath = self._beneath, None
            if beneath is not None and not self.stop_event.is_set():
                self.store.set_backend(beneath)

    def reported_health(self) -> Health:
        """What the watch loops last reported, beneath a failing probe."""
        with self._health_lock:
            if self._probe_down and self._beneath is not None:
                return self._beneath.health
            return self.store.backend(self.name).health

    # -- waiting for the first answer ----------------------------------------------------------

    def mark_waiting(self) -> None:
        """Started, nothing heard yet: say so (with since when) rather than nothing."""
        if not self.ready.is_set():
            self.store.set_backend(BackendStatus(self.name, Health.UNKNOWN, self.address,
                                                 waiting_since=time.time()))

    def give_up(self, seconds: float) -> bool:
        """For one-shot commands: a backend that has not answered within `seconds` is down,
        in words. Call after `stop_event` is set, so no late answer changes the verdict.
        True if it had to."""
        with self._health_lock:
            if self.ready.is_set():
                return False
            since = self.store.backend(self.name).waiting_since
            self.store.set_backend(BackendStatus(
                self.name, Health.DOWN, self.address, waiting_since=since,
                last_error=f"no answer in {seconds:g} s from {self.address or self.name}. Is "
                           f"{self.name} overloaded, or is something holding the connection "
                           f"open without answering?"))
            return True

    # -- health ------------------------------------------------------------------------------

    def report_ok(self, latency: float | None = None, problem: str = "") -> None:
        """A good answer; `problem` (or a slow answer) makes it degraded rather than ok."""
        self.last_success = time.time()
        health = Health.OK
        if latency is not None and latency > SLOW_SECONDS:
            health = Health.DEGRADED
            problem = problem or f"{self.address} answers slowly ({latency:.1f} s)."
        elif problem:
            health = Health.DEGRADED
        self._set(health, problem, latency)

    def report_failure(self, exc: BaseException, what: str = "") -> None:
        self._set(Health.DOWN, self._describe(exc, what), None)

    def _describe(self, exc: BaseException, what: str) -> str:
        message = describe_error(self.name, self.address, exc, self.hint,
                                 getattr(self, "tls", None))
        if what:
            message = f"{what}: {message}"
        log.debug("%s: %s", self.name, scrub(message, self.secrets))
        return message

    # -- capabilities: a refused one turns its feature off, not the backend -----------------

    def refuse(self, feature: str, capability: str, message: str, kind: str = "") -> None:
        """The token may not read `feature`: say so (the backend shows degraded, not down)."""
        refusal = Refusal(feature, capability, message, kind)
        if self._refused.get(feature) == refusal:
            return
        self._refused[feature] = refusal
        self._republish()

    def permit(self, feature: str) -> None:
        """`feature` answered: whatever refusal it had is over."""
        if self._refused.pop(feature, None) is not None:
            self._republish()

    def _republish(self) -> None:
        with self._health_lock:
            current = self._beneath if (self._probe_down and self._beneath is not None) \
                else self.store.backend(self.name)
            if current.health in (Health.OK, Health.DEGRADED):
                self._set(Health.OK, "", None)
            elif current.health is Health.DOWN:
                self._set(Health.DOWN, current.last_error, None)

    def _set(self, health: Health, message: str, latency: float | None,
             probe: bool = False) -> None:
        with self._health_lock:
            if self.stop_event.is_set():
                return  # stopped: a late answer must not change what was already reported
            self.ready.set()
            self._publish(health, message, latency, probe)

    def _publish(self, health: Health, message: str, latency: float | None,
                 probe: bool) -> None:
        current = self._beneath if (self._probe_down and not probe
                                    and self._beneath is not None) else self.store.backend(
                                        self.name)
        refused = tuple(sorted(self._refused.values(), key=lambda r: r.feature))
        if refused and health in (Health.OK, Health.DEGRADED):
            health = Health.DEGRADED
            message = "; ".join([message] * bool(message) + [r.message for r in refused])
        status = BackendStatus(
            name=self.name,
            health=health,
            address=self.address,
            last_error=scrub(message, self.secrets) if message else (
                current.last_error if health is not Health.OK else ""),
            last_success=self.last_success,
            latency_ms=round(latency * 1000, 1) if latency is not None else current.latency_ms,
            refused=refused,
        )
        if self._probe_down and not probe:
            self._beneath = status  # shown again when the probe answers
            return
        # Publish state changes only: a heartbeat that merely moves last_success must not wake
        # every view. last_success is current whenever health does change.
        if (status.health, status.last_error, status.address, status.refused) != (
            current.health, current.last_error, current.address, current.refused
        ):
            self.store.set_backend(status)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


_warned_insecure: set[str] = set()


def tls_verify(backend: str, ca_file: str, insecure: bool) -> bool | str:
    """What `requests` should verify with: the configured CA, the system store, or (only when
    the operator said so explicitly) nothing, with a warning the first time."""
    if insecure:
        if backend not in _warned_insecure:
            _warned_insecure.add(backend)
            log.warning("TLS verification is OFF for %s (insecure = true): anyone on the path "
                        "can read its token and forge its answers.", backend)
        return False
    return ca_file or True
