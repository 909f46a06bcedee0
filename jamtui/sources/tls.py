"""TLS as real clusters run it: the CA, client certificates, a server name, and expiry.

One `TLSSettings` per backend builds every requests session jamtui uses for it (python-nomad's,
py-consul's, the raw ones for the event stream, blocking queries, logs and actions), so a
client certificate or a server name set once applies everywhere. `CertWatch` reads the
certificate each HTTPS backend presents (a handshake on its own thread, at start and hourly)
so the health bar and `doctor` can warn before it expires. `tls_failure` puts a failed
handshake in words. `environment_once` makes a session look at the environment (proxies,
REQUESTS_CA_BUNDLE, ~/.netrc) once per host instead of on every request.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import DEFAULT_POOLSIZE, HTTPAdapter
from requests.auth import AuthBase
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies, get_netrc_auth

from ..model import Kind, TLSInfo
from ..store import Store
from .base import tls_verify, wait_first_frame

EXPIRY_WARNING_DAYS = 14  # a certificate closer than this to its end is warned about
RECHECK = 3600.0  # seconds between readings of a certificate that was read
RETRY = 60.0  # ... and of one that could not be read
HANDSHAKE_TIMEOUT = 5.0

# where the operator sets each thing, per backend (the CLIs' own variables)
_VARS = {
    "nomad": ("NOMAD_CACERT", "NOMAD_CLIENT_CERT", "NOMAD_CLIENT_KEY", "NOMAD_TLS_SERVER_NAME",
              "NOMAD_SKIP_VERIFY"),
    "consul": ("CONSUL_CACERT", "CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY",
               "CONSUL_TLS_SERVER_NAME", "CONSUL_HTTP_SSL_VERIFY=false"),
    "proxmox": ("PROXMOX_VE_CACERT", "", "", "", "PROXMOX_VE_INSECURE"),
}


@dataclass(frozen=True)
class TLSSettings:
    """How jamtui speaks TLS to one backend."""

    backend: str
    ca_file: str = ""
    insecure: bool = False
    client_cert: str = ""
    client_key: str = ""
    server_name: str = ""  # the name the certificate must hold, when not the address's host

    @classmethod
    def of(cls, backend: str, section: Any) -> TLSSettings:
        """From a config section ([nomad], [consul], [proxmox])."""
        return cls(backend, ca_file=getattr(section, "ca_file", ""),
                   insecure=getattr(section, "insecure", False),
                   client_cert=getattr(section, "client_cert", ""),
                   client_key=getattr(section, "client_key", ""),
                   server_name=getattr(section, "tls_server_name", ""))

    @property
    def verify(self) -> bool | str:
        return tls_verify(self.backend, self.ca_file, self.insecure)

    @property
    def cert(self) -> tuple[str, str] | None:
        """What requests takes as `cert`: (certificate, key), or None."""
        return (self.client_cert, self.client_key) if self.client_cert else None

    def var(self, what: str) -> str:
        """The variable that sets `what` (ca, cert, key, server_name, insecure) for it."""
        names = _VARS.get(self.backend, ("", "", "", "", ""))
        index = ("ca", "cert", "key", "server_name", "insecure").index(what)
        return names[index] or f"[{self.backend}] {what}"

    def session(self, session: requests.Session | None = None, pool: int = 0
                ) -> requests.Session:
        """`session` (or a new one) set up with these settings: verify, client certificate,
        and the server name on every HTTPS connection; `pool` connections kept per host
        when more than requests' 10 run at once."""
        session = environment_once(session or requests.Session())
        session.verify = self.verify
        if self.cert:
            session.cert = self.cert
        size = pool or DEFAULT_POOLSIZE
        if pool:
            session.mount("http://", HTTPAdapter(pool_maxsize=size))
            session.mount("https://", HTTPAdapter(pool_maxsize=size))
        if self.server_name:
            session.mount("https://", ServerNameAdapter(self.server_name, pool_maxsize=size))
        return session

    def context(self) -> ssl.SSLContext:
        """An ssl context like the sessions' (for the certificate reading handshake)."""
        if self.insecure:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_file:
            is_dir = os.path.isdir(self.ca_file)  # NOMAD_CAPATH / CONSUL_CAPATH
            ctx = ssl.create_default_context(cafile=None if is_dir else self.ca_file,
                                             capath=self.ca_file if is_dir else None)
        else:
            ctx = ssl.create_default_context()
        if self.cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx


class ServerNameAdapter(HTTPAdapter):
    """Sends `server_name` as SNI and checks the certificate against it instead of the URL's
    host. requests has no such setting; urllib3's pools take `server_hostname` (SNI, and the
    name matched) and `assert_hostname`, so the adapter hands both to every pool it makes,
    as NOMAD_TLS_SERVER_NAME / CONSUL_TLS_SERVER_NAME do for the CLIs."""

    def __init__(self, server_name: str, **kw: Any) -> None:
        self.server_name = server_name
        super().__init__(**kw)

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        kw["server_hostname"] = self.server_name
        kw["assert_hostname"] = self.server_name
        super().init_poolmanager(*args, **kw)


# -- the environment, once per host ------------------------------------------------------


class _NoAuth(AuthBase):
    """No credentials: what ~/.netrc held for a host that it has none for (a truthy auth, so
    requests does not read ~/.netrc again)."""

    def __call__(self, r: Any) -> Any:
        return r


_NO_AUTH = _NoAuth()


class _EnvironmentOnce(requests.Session):
    """A session that reads the environment as requests does (HTTP(S)_PROXY, ALL_PROXY,
    NO_PROXY, REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE and ~/.netrc, with `trust_env`), but once
    per scheme and host, not on every request: requests' lookup (every environment
    variable, the no_proxy match, ~/.netrc's stat or parse) was a quarter of a small
    poll's CPU. A session lives as long as the process; so does its environment."""

    _env_found: dict[tuple[str, str | None], tuple[dict[str, str], str | None, Any]]

    def _environment(self, url: str, no_proxy: str | None
                     ) -> tuple[dict[str, str], str | None, Any]:
        """(proxies, CA bundle, netrc auth or None) of the environment for `url`'s host."""
        parts = urlsplit(url)
        key = (f"{parts.scheme}://{parts.netloc}".lower(), no_proxy)
        found = getattr(self, "_env_found", None)
        if found is None:
            found = self._env_found = {}
        hit = found.get(key)
        if hit is None:
            hit = found[key] = (
                get_environ_proxies(url, no_proxy=no_proxy),
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE"),
                get_netrc_auth(url))
        return hit

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        if self.trust_env and not request.auth and not self.auth and request.url:
            request.auth = self._environment(str(request.url), None)[2] or _NO_AUTH
        return super().prepare_request(request)

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> Any:  # requests' settings (a dict)
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        # requests' own steps, with the environment's part remembered
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        env_proxies, bundle, _ = self._environment(str(url), no_proxy)
        for k, v in env_proxies.items():
            proxies.setdefault(k, v)
        if verify is True or verify is None:
            verify = bundle or verify
        return {"proxies": merge_setting(proxies, self.proxies),
                "stream": merge_setting(stream, self.stream),
                "verify": merge_setting(verify, self.verify),
                "cert": merge_setting(cert, self.cert)}


_MIXED: dict[tuple[type, type], type] = {}


def with_mixin(session: requests.Session, mixin: type) -> requests.Session:
    """`session`'s class given `mixin` in front (one class made per pair, kept): the class
    keeps its own methods (proxmoxer's `request`, another mixin's)."""
    cls = type(session)
    if issubclass(cls, mixin):
        return session
    mixed = _MIXED.get((mixin, cls))
    if mixed is None:
        mixed = _MIXED[(mixin, cls)] = type(cls.__name__, (mixin, cls), {})
    session.__class__ = mixed
    return session


def environment_once(session: requests.Session) -> requests.Session:
    """`session` (requests', python-nomad's, py-consul's or proxmoxer's own) made to read the
    environment once per host (`_EnvironmentOnce`)."""
    return with_mixin(session, _EnvironmentOnce)


class PlainGet:
    """Plain GETs (no body, no headers of their own) of one host, sent straight through the
    connection pool `session` itself uses for it, with the headers (its auth among them),
    TLS settings, retries and timeout `session` would give them, prepared once: what
    requests does around each such request (preparing, merging the session's and the
    environment's settings, cookies in and out, hooks, a `Response`) was 0.75 of its 1.25
    ms of CPU. `snapshot --json` at 5,000 allocations reads 104 VM configs and 55 Consul
    services one by one. A failure raises what requests would have raised for it (the same
    words: `describe_error`). Only for a session whose requests all carry the same
    headers and need nothing of requests after the answer: no cookies, no proxy, no hooks
    (`of` gives None then; the caller asks `session`). A redirect gives None too (the caller
    asks `session`, which follows it)."""

    def __init__(self, pool_of: Callable[[], Any], prefix: str, headers: dict[str, str],
                 retries: Any, timeout: Any) -> None:
        self._pool_of, self._pool = pool_of, pool_of()
        self._prefix, self._headers = prefix, headers
        self._retries, self._timeout = retries, timeout

    @classmethod
    def of(cls, session: requests.Session, base: str, *, verify: bool | str | None = None,
           cert: Any = None, proxies: dict[str, str] | None = None,
           headers: dict[str, str] | None = None, timeout: float | None = None,
           hooks_unneeded: bool = False) -> PlainGet | None:
        """For `session`'s GETs of `base` + "/" + path, as `session.get(url,
        headers=headers, verify=verify, cert=cert, proxies=proxies, timeout=timeout)` sends
        them; None when they could differ from one request to the next. `hooks_unneeded`:
        the caller's reads are none of the session's response hooks' business (Nomad's
        hook notes the index of list reads; the stats and the probe are not lists)."""
        from requests.utils import select_proxy
        from urllib3.util import Timeout

        if session.cookies or (any(session.hooks.values()) and not hooks_unneeded):
            return None
        prepared = session.prepare_request(
            requests.Request("GET", base.rstrip("/") + "/", headers=headers))
        url = str(prepared.url)
        settings = session.merge_environment_settings(url, dict(proxies or {}), None, verify,
                                                      cert)
        if select_proxy(url, settings["proxies"]) or "Cookie" in prepared.headers:
            return None
        adapter = session.get_adapter(url)
        if not isinstance(adapter, HTTPAdapter):
            return None

        def pool_of() -> Any:  # the pool requests would send through (as it sends)
            pool = adapter.get_connection_with_tls_context(
                prepared, settings["verify"], proxies=settings["proxies"],
                cert=settings["cert"])
            adapter.cert_verify(pool, url, settings["verify"], settings["cert"])
            return pool

        return cls(pool_of, urlsplit(url).path.rstrip("/"), dict(prepared.headers),
                   adapter.max_retries, Timeout(connect=timeout, read=timeout))

    def get(self, path: str, timeout: float | None = None
            ) -> tuple[int, str, Any, bytes] | None:
        """GET `path` (under the base, with its query): the status, its reason, the headers
        and the whole body (decoded from gzip or deflate, as `.content` is), read 1 MiB at
        a time (`jsonload.whole_body`); `timeout` in place of the one it was made with.
        None for a redirect: the caller asks the session, which follows it."""
        from urllib3.util import Timeout

        from .jsonload import BODY_PIECE

        if self._pool.pool is None:  # closed: the session's pool manager let it go
            self._pool = self._pool_of()
        try:
            resp = self._pool.urlopen(
                "GET", f"{self._prefix}/{path.lstrip('/')}", headers=self._headers,
                redirect=False, assert_same_host=False, retries=self._retries,
                timeout=self._timeout if timeout is None else Timeout(connect=timeout,
                                                                      read=timeout),
                preload_content=False, decode_content=False)
        except Exception as exc:
            mapped = _sent_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        try:  # as requests' `iter_content` reads it (the connection back in its pool)
            body = b"".join(resp.stream(BODY_PIECE, decode_content=True))
        except Exception as exc:
            resp.close()
            mapped = _body_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        if 300 <= resp.status <= 399:
            return None
        return resp.status, resp.reason or "", resp.headers, body


def _sent_error(exc: Exception) -> Exception:
    """What requests' `HTTPAdapter.send` raises for urllib3's `exc` (its words are the
    same: `reasons.in_words` reads the whole chain, `describe_error` the outer type)."""
    import urllib3.exceptions as u3

    errors = requests.exceptions
    if isinstance(exc, u3.MaxRetryError):
        reason = exc.reason
        if (isinstance(reason, u3.ConnectTimeoutError)
                and not isinstance(reason, u3.NewConnectionError)):
            return errors.ConnectTimeout(exc)
        return _as(exc, reason, ((u3.ResponseError, errors.RetryError),
                                 (u3.ProxyError, errors.ProxyError),
                                 (u3.SSLError, errors.SSLError)), errors.ConnectionError)
    return _as(exc, exc, ((u3.ProtocolError | OSError | u3.ClosedPoolError,
                           errors.ConnectionError),
                          (u3.ProxyError, errors.ProxyError), (u3.SSLError, errors.SSLError),
                          (u3.ReadTimeoutError, errors.ReadTimeout),
                          (u3.InvalidHeader, errors.InvalidHeader)))


def _body_error(exc: Exception) -> Exception:
    """What requests' `iter_content` raises for urllib3's `exc` while reading a body."""
    import urllib3.exceptions as u3

    errors = requests.exceptions
    return _as(exc, exc, ((u3.ProtocolError, errors.ChunkedEncodingError),
                          (u3.DecodeError, errors.ContentDecodingError),
                          (u3.ReadTimeoutError, errors.ConnectionError),
                          (u3.SSLError, errors.SSLError)))


def _as(exc: Exception, what: Any, kinds: tuple[tuple[Any, type[Exception]], ...],
        otherwise: type[Exception] | None = None) -> Exception:
    """`exc` as the requests exception of the first of `kinds` that `what` is (`exc` itself
    when none is, or as `otherwise`)."""
    for kind, theirs in kinds:
        if isinstance(what, kind):
            return theirs(exc)
    return otherwise(exc) if otherwise is not None else exc


# -- the certificate a server presents ----------------------------------------------------


@dataclass(frozen=True)
class PeerCert:
    not_before: float
    not_after: float
    names: tuple[str, ...]
    subject: str
    issuer: str


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    return parts.hostname or "127.0.0.1", parts.port or 443


def read_peer_cert(url: str, settings: TLSSettings, *, verify: bool = True,
                   timeout: float = HANDSHAKE_TIMEOUT) -> PeerCert:
    """Handshake with the server at `url` and return the certificate it presented. Verified
    as the sessions verify (raises ssl errors as they would), or not at all (to say what
    an unverifiable certificate holds). Blocking: call it from a worker thread."""
    host, port = _host_port(url)
    if verify:
        ctx = settings.context()
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if settings.cert:
            ctx.load_cert_chain(settings.client_cert, settings.client_key)
    server_name = settings.server_name or host
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            ctx.wrap_socket(raw, server_hostname=server_name) as tls:
        der = tls.getpeercert(binary_form=True)
        if verify:
            # With TLS 1.3 the server judges our client certificate after our side of the
            # handshake is done: one request's first byte (or its alert) tells.
            tls.sendall(f"HEAD / HTTP/1.0\r\nHost: {server_name}\r\n\r\n".encode())
            with contextlib.suppress(TimeoutError):  # slow to answer is not a TLS problem
                tls.recv(1)
    if not der:
        raise ssl.SSLError("the server presented no certificate")
    return decode_cert(der)


def decode_cert(der: bytes) -> PeerCert:
    from cryptography import x509  # here: 25 ms every command paid to import it

    cert = x509.load_der_x509_certificate(der)
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DNSName)
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    return PeerCert(cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp(),
                    tuple(names), cert.subject.rfc4514_string(), cert.issuer.rfc4514_string())


def when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def expiry_words(not_after: float, now: float | None = None) -> str:
    """'expires in 3 days (2026-12-02 10:00 UTC)', 'EXPIRED 2 days ago (...)'."""
    now = time.time() if now is None else now
    left = not_after - now
    if left <= 0:
        return f"EXPIRED {_span(-left)} ago ({when(not_after)})"
    return f"expires in {_span(left)} ({when(not_after)})"


def _span(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{int(seconds // 86400)} days"
    if seconds >= 2 * 3600:
        return f"{int(seconds // 3600)} hours"
    return f"{max(1, int(seconds // 60))} minutes"


def expiring(info: TLSInfo, now: float | None = None,
             days: float = EXPIRY_WARNING_DAYS) -> bool:
    now = time.time() if now is None else now
    return info.not_after is not None and info.not_after - now < days * 86400


# -- failures in words --------------------------------------------------------------------


def _chain_text(exc: BaseException) -> str:
    seen: list[str] = []
    stack: list[Any] = [exc]
    while stack and len(seen) < 12:
        e = stack.pop()
        if isinstance(e, BaseException):
            seen.append(f"{type(e).__name__}: {e}")
            stack.extend(a for a in e.args if isinstance(a, BaseException))
            stack.extend(x for x in (getattr(e, "reason", None), e.__cause__, e.__context__)
                         if x is not None)
    return " | ".join(seen)


def tls_kind(exc: BaseException) -> str:
    """What went wrong in a TLS handshake: unknown-ca, name-mismatch, expired, not-yet-valid,
    client-cert-required, client-cert-refused, not-tls; '' when it was not TLS."""
    text = _chain_text(exc)
    low = text.lower()
    if "certificate has expired" in low:
        return "expired"
    if "not yet valid" in low:
        return "not-yet-valid"
    if "mismatch" in low or "doesn't match" in low or "not valid for" in low:
        return "name-mismatch"
    if "certificate_verify_failed" in low or "issuer certificate" in low or \
            "self-signed" in low or "self signed" in low:
        return "unknown-ca"
    if "certificate_required" in low or "certificate required" in low:
        return "client-cert-required"
    if any(a in low for a in ("alert_unknown_ca", "alert unknown ca", "alert_bad_certificate",
                              "alert bad certificate", "alert_certificate_unknown",
                              "alert certificate unknown", "alert_decrypt_error",
                              "alert_certificate_expired", "alert certificate expired",
                              "alert_handshake_failure", "alert handshake failure")):
        return "client-cert-refused"
    if "wrong_version_number" in low or "wrong version number" in low:
        return "not-tls"
    return ""


def tls_failure(exc: BaseException, settings: TLSSettings, url: str,
                peer: PeerCert | None = None) -> tuple[str, str] | None:
    """(what went wrong, what to do) for a TLS failure talking to `url`, in words; None when
    `exc` is no TLS failure. `peer` (read without verification) adds the names and dates."""
    kind = tls_kind(exc)
    if not kind:
        return None
    host, _ = _host_port(url)
    s = settings
    if kind == "unknown-ca":
        issuer = f" (issued by {peer.issuer})" if peer else ""
        return (f"TLS does not verify for {url}: its certificate is signed by a CA jamtui "
                f"does not trust{issuer}",
                f"set {s.var('ca')} or [{s.backend}] ca_file to the CA that signed it")
    if kind == "name-mismatch":
        wanted = s.server_name or host
        held = ("; it holds " + (", ".join(peer.names) or "no DNS names or addresses")
                if peer else "")
        return (f"TLS does not verify for {url}: its certificate is not valid for "
                f"{wanted!r}{held}",
                f"set {s.var('server_name')} (or [{s.backend}] tls_server_name) to a name it "
                "holds, or use an address it names")
    if kind == "expired":
        date = f" on {when(peer.not_after)}" if peer else ""
        return (f"TLS does not verify for {url}: its certificate expired{date}",
                "renew the server's certificate (or check this machine's clock)")
    if kind == "not-yet-valid":
        date = f" until {when(peer.not_before)}" if peer else ""
        return (f"TLS does not verify for {url}: its certificate is not valid yet{date}",
                "check this machine's clock and the server's, or wait for the certificate")
    if kind == "client-cert-required" or (kind == "client-cert-refused" and not s.cert):
        return ("the server asked for a client certificate: set "
                f"{s.var('cert')} and {s.var('key')}",
                f"point {s.var('cert')} and {s.var('key')} (or [{s.backend}] client_cert and "
                "client_key) at a certificate signed by the CA the server trusts")
    if kind == "client-cert-refused":
        return (f"{url} refused the client certificate {s.client_cert}",
                "use a client certificate signed by the CA the server trusts for clients "
                "(and not expired)")
    return (f"{url} does not speak TLS there (it answered plain HTTP?)",
            f"use http:// in the [{s.backend}] address, or the server's HTTPS port")


# -- watching certificates ----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    backend: str
    url: str
    settings: TLSSettings


class CertWatch:
    """Reads the certificate of each HTTPS endpoint on its own thread (at start, then hourly)
    into the store as `TLSInfo`; whether verification is off is there from the start."""

    def __init__(self, store: Store, endpoints: Iterable[Endpoint]) -> None:
        self.store = store
        self.endpoints = tuple(endpoints)
        self.stop_event = threading.Event()
        self.checked = threading.Event()  # set once every endpoint was tried
        self._thread: threading.Thread | None = None
        # the cockpit's first frame (`Engine.first_frame`): the handshakes wait for it (at
        # most `FIRST_FRAME_WAIT` s), not competing with it for the GIL; None: at once
        self.first_frame: threading.Event | None = None
        for e in self.endpoints:
            store.upsert(Kind.TLS, TLSInfo(e.backend, e.url, insecure=e.settings.insecure))

    def start(self) -> None:
        if not self.endpoints or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="tls:certificates", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        if not wait_first_frame(self.first_frame, self.stop_event):
            return
        due = dict.fromkeys(range(len(self.endpoints)), 0.0)
        while not self.stop_event.is_set():
            now = time.monotonic()
            for i, endpoint in enumerate(self.endpoints):
                if due[i] <= now and not self.stop_event.is_set():
                    ok = self.check(endpoint)
                    due[i] = now + (RECHECK if ok else RETRY)
            self.checked.set()
            self.stop_event.wait(max(1.0, min(due.values()) - time.monotonic()))

    def check(self, e: Endpoint) -> bool:
        """Read one endpoint's certificate into the store; False when it could not be read."""
        error = ""
        try:
            peer: PeerCert | None = read_peer_cert(e.url, e.settings)
        except (OSError, ValueError) as exc:
            words = tls_failure(exc, e.settings, e.url)
            error = words[0] if words else f"no TLS handshake with {e.url}: {exc}"
            try:  # what it holds is still worth showing (an expiry, the names)
                peer = read_peer_cert(e.url, e.settings, verify=False)
            except (OSError, ValueError):
                peer = None
        info = TLSInfo(e.backend, e.url, insecure=e.settings.insecure,
                       not_before=peer.not_before if peer else None,
                       not_after=peer.not_after if peer else None,
                       names=peer.names if peer else (), checked_at=time.time(), error=error)
        self.store.upsert(Kind.TLS, info)
        return not error


def endpoints_of(cfg: Any) -> list[Endpoint]:
    """The HTTPS endpoints of a Config: Proxmox, Nomad, Consul and the HAProxy frontend."""
    out = []
    for backend, url, section in (("proxmox", cfg.proxmox.address, cfg.proxmox),
                                  ("nomad", cfg.nomad.address, cfg.nomad),
                                  ("consul", cfg.consul.address, cfg.consul)):
        if url and (url.startswith("https://") or backend == "proxmox"):
            out.append(Endpoint(backend, url, TLSSettings.of(backend, section)))
    frontend = cfg.haproxy.frontend
    if frontend.startswith("https://"):
        out.append(Endpoint("haproxy", frontend, TLSSettings.of("haproxy", cfg.haproxy)))
    return out
