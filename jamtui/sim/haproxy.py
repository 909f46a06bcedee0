"""The bastion's HAProxy, stood in for when the real one is not installed.

Named as `provisioners/`'s `haproxy.cfg.j2` configures the real one: frontend `http` balances
round-robin over backend `fabio`, one server per `vs` node named after the host and pointing
at that node's Fabio proxy, checked with `option httpchk GET /health` on Fabio's UI port
(`check port`) every `inter` seconds (`L7OK`/`200`, `L7STS`, `L4CON`, `L4TOUT`); frontend
`stats` serves the stats page. It answers `<uri>;csv` with every column Debian's haproxy
2.6.12 prints (128, the module counters after the `-` column included; captured from the real
binary run with that configuration, tests/fixtures/haproxy/), and the counters move with the
traffic that really passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from . import tls
from .context import SimContext
from .http import BackendServer, fault_middleware, text_error

# HAProxy 2.6's `show stat` columns, in order (the header of `;csv`, less "# ").
COLUMNS = (  # noqa: SIM905 - kept as the CSV header reads
    "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
    "lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,"
    "hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,"
    "cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,"
    "ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,"
    "check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,"
    "conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,"
    "cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,"
    "safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,"
    "agg_server_check_status,agg_check_status,"
    # the stats modules (ssl, h2, h1) after the "-" separator column
    "-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,"
    "h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,"
    "h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,"
    "h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,"
    "h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,"
    "h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out"
).split(",")
SSL_COLUMNS = ("ssl_sess", "ssl_reused_sess", "ssl_failed_handshake")
MODULE_COLUMNS = tuple(c for c in COLUMNS[COLUMNS.index("-") + 1:])

NO_SERVER = (
    "<html><body><h1>503 Service Unavailable</h1>\n"
    "No server is available to handle this request.\n</body></html>\n"
)
FRONTEND, STATS_FRONTEND, BACKEND_NAME = "http", "stats", "fabio"  # haproxy.cfg.j2's names
RISE, FALL = 2, 3  # HAProxy's defaults (the template sets none)


@dataclass
class Counters:
    """The counters one stats row shows."""

    scur: int = 0
    smax: int = 0
    stot: int = 0
    bin: int = 0
    bout: int = 0
    lbtot: int = 0
    econ: int = 0
    eresp: int = 0
    hrsp: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("1xx", "2xx", "3xx", "4xx", "5xx", "other"), 0))
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=10000))
    rate_max: int = 0
    last_sess: float = 0.0

    def begin(self, size: int) -> None:
        now = time.monotonic()
        self.scur += 1
        self.smax = max(self.smax, self.scur)
        self.stot += 1
        self.bin += size
        self.recent.append(now)
        self.rate_max = max(self.rate_max, self.rate())
        self.last_sess = now

    def end(self, status: int, size: int) -> None:
        self.scur = max(0, self.scur - 1)
        self.bout += size
        key = f"{status // 100}xx" if 100 <= status < 600 else "other"
        self.hrsp[key] = self.hrsp.get(key, 0) + 1

    def rate(self) -> int:
        """Sessions over the last second, as HAProxy's `rate`."""
        cutoff = time.monotonic() - 1.0
        return sum(1 for t in self.recent if t >= cutoff)


@dataclass
class Server:
    name: str
    node: str
    status: str = "DOWN"
    check_status: str = "INI"
    check_desc: str = "Initializing"
    check_code: int | str = ""
    last_chk: str = ""
    lastchg: float = field(default_factory=time.monotonic)
    chkfail: int = 0
    chkdown: int = 0
    downtime: float = 0.0
    down_since: float | None = field(default_factory=time.monotonic)
    maint: bool = False
    counters: Counters = field(default_factory=Counters)


class HAProxyStandIn:
    """Frontend (`ctx.urls["haproxy"]`) and stats page (`ctx.urls["haproxy_stats"]`)."""

    def __init__(self, ctx: SimContext, port: int = 0, stats_port: int = 0,
                 inter: float = 1.0) -> None:
        self.ctx = ctx
        self.port = port
        self.stats_port = stats_port
        self.inter = inter
        nodes = sorted(vm.name for vm in ctx.world.vms.values() if vm.group == "vs")
        self.servers = [Server(n, n) for n in nodes]  # `server {{ host }}`
        self.frontend = Counters()
        self.stats_front = Counters()
        self.backend = Counters()
        self._rr = itertools.count()
        self._session: aiohttp.ClientSession | None = None
        self._checker: asyncio.Task[None] | None = None
        self.started = time.monotonic()

    # -- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        front = web.Application(middlewares=[fault_middleware("haproxy", self.ctx.faults,
                                                              text_error)])
        front.router.add_route("*", "/{tail:.*}", self._forward)
        stats = web.Application(middlewares=[fault_middleware("haproxy:stats", self.ctx.faults,
                                                              text_error)])
        stats.router.add_get("/stats;csv", self._stats_csv)
        stats.router.add_get("/stats", self._stats_html)
        https = self.ctx.tls.servers.get("haproxy")  # with --tls the frontend is HTTPS
        for name, app, port in (("haproxy", front, self.port),
                                ("haproxy:stats", stats, self.stats_port)):
            server = BackendServer(name, app, self.ctx.host, port, tls.server_context(
                self.ctx.tls, "haproxy") if https and name == "haproxy" else None)
            await server.start()
            self.ctx.servers[name] = server
        self.ctx.urls["haproxy"] = self.ctx.servers["haproxy"].url
        self.ctx.urls["haproxy_stats"] = self.ctx.servers["haproxy:stats"].url
        await self.check_all()
        self._checker = asyncio.ensure_future(self._check_forever())

    async def stop(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        if self._session is not None:
            await self._session.close()

    # -- health checks -----------------------------------------------------------------------

    def _address(self, server: Server) -> tuple[str, int] | None:
        live = self.ctx.servers.get(f"fabio:{server.node}:lb")
        return (live.host, live.port) if live is not None else None

    async def check_all(self) -> None:
        await asyncio.gather(*(self._check(s) for s in self.servers))

    def _check_address(self, server: Server) -> tuple[str, int] | None:
        """`check port {{ fabio_ui_port }}`: the check goes to Fabio's UI/API port."""
        live = self.ctx.servers.get(f"fabio:{server.node}")
        return (live.host, live.port) if live is not None else None

    async def _httpchk(self, addr: tuple[str, int] | None) -> tuple[str, int | str, str, str]:
        """`option httpchk GET /health`: (check_status, check_code, check_desc, last_chk)."""
        if addr is None:
            return "L4CON", "", "Layer4 connection problem", "Connection refused"
        assert self._session is not None
        try:
            async with self._session.get(f"http://{addr[0]}:{addr[1]}/health",
                                         timeout=aiohttp.ClientTimeout(total=2)) as resp:
                await resp.read()
                if 200 <= resp.status < 400:
                    return "L7OK", resp.status, "Layer7 check passed", ""
                return "L7STS", resp.status, "Layer7 wrong status", resp.reason or ""
        except TimeoutError:
            return "L4TOUT", "", "Layer4 timeout", ""
        except aiohttp.ServerDisconnectedError:
            return "L7RSP", "", "Layer7 invalid response", "Socket error"
        except (aiohttp.ClientError, OSError):
            return "L4CON", "", "Layer4 connection problem", "Connection refused"

    async def _check(self, server: Server) -> None:
        started = time.monotonic()
        status, code, desc, last = await self._httpchk(self._check_address(server))
        ok = status == "L7OK"
        if server.maint:
            return
        new = "UP" if ok else "DOWN"
        server.check_status, server.check_code, server.last_chk = status, code, last
        server.check_desc = desc
        if new != server.status:
            now = time.monotonic()
            if new == "DOWN":
                server.chkdown += 1
                server.down_since = now
            elif server.down_since is not None:
                server.downtime += now - server.down_since
                server.down_since = None
            server.status, server.lastchg = new, now
        if not ok:
            server.chkfail += 1
        self._check_ms = int((time.monotonic() - started) * 1000)

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.inter)
            await self.check_all()

    # -- the frontend ------------------------------------------------------------------------

    def _pick(self) -> Server | None:
        up = [s for s in self.servers if s.status == "UP" and not s.maint]
        return up[next(self._rr) % len(up)] if up else None

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        size_in = len(body) + sum(len(k) + len(v) + 4 for k, v in request.headers.items())
        self.frontend.begin(size_in)
        self.backend.begin(size_in)
        server = self._pick()
        status, payload, headers = 503, NO_SERVER.encode(), {"Content-Type": "text/html"}
        try:
            if server is not None:
                server.counters.begin(size_in)
                server.counters.lbtot += 1
                self.backend.lbtot += 1
                status, payload, headers = await self._relay(request, body, server)
                server.counters.end(status, len(payload))
            return web.Response(status=status, body=payload, headers=headers)
        finally:
            self.frontend.end(status, len(payload))
            self.backend.end(status, len(payload))

    async def _relay(self, request: web.Request, body: bytes, server: Server
                     ) -> tuple[int, bytes, dict[str, str]]:
        addr = self._address(server)
        assert self._session is not None
        if addr is None:
            server.counters.econ += 1
            return 503, NO_SERVER.encode(), {"Content-Type": "text/html"}
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("connection", "content-length", "transfer-encoding")}
        headers["X-Forwarded-For"] = request.remote or ""
        try:
            async with self._session.request(
                request.method, f"http://{addr[0]}:{addr[1]}{request.path_qs}",
                headers=headers, data=body, allow_redirects=False,
            ) as resp:
                payload = await resp.read()
                out = {k: v for k, v in resp.headers.items()
                       if k.lower() not in ("connection", "content-length",
                                            "transfer-encoding", "content-encoding")}
                return resp.status, payload, out
        except (aiohttp.ClientError, TimeoutError):
            server.counters.eresp += 1
            return 502, b"<html><body><h1>502 Bad Gateway</h1>\n" \
                        b"The server returned an invalid or incomplete response.\n" \
                        b"</body></html>\n", {"Content-Type": "text/html"}

    async def trickle(self, interval: float = 1.5) -> None:
        """Traffic trickling in from the world: a request now and then for each route."""
        hosts = [f"example.{self.ctx.world.domain}", f"api.{self.ctx.world.domain}"]
        assert self._session is not None
        url = self.ctx.urls["haproxy"]
        trust: ssl.SSLContext | bool = True
        if url.startswith("https://"):
            trust = ssl.create_default_context(cafile=str(self.ctx.tls.ca_cert))
        rng = self.ctx.world.rng
        while True:
            await asyncio.sleep(interval * (0.5 + rng.random()))
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                async with self._session.get(url + "/", headers={"Host": rng.choice(hosts)},
                                             timeout=aiohttp.ClientTimeout(total=3),
                                             ssl=trust) as resp:
                    await resp.read()

    # -- the stats page ----------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """The rows in the order and with the cells HAProxy 2.6.12 fills for this
        configuration (compare tests/fixtures/haproxy/stats-2.6.12-provisioned.csv)."""
        now = time.monotonic()
        common = {"pid": 1, "mode": "http", "-": "-", **dict.fromkeys(SSL_COLUMNS, 0)}
        modules = dict.fromkeys(MODULE_COLUMNS, 0)
        rows: list[dict[str, Any]] = []

        def counted(c: Counters) -> dict[str, Any]:
            return {
                "scur": c.scur, "smax": c.smax, "stot": c.stot, "bin": c.bin, "bout": c.bout,
                "rate": c.rate(), "rate_max": c.rate_max,
                **{f"hrsp_{k}": v for k, v in c.hrsp.items()},
            }

        def frontend(name: str, iid: int, c: Counters, intercepted: int) -> dict[str, Any]:
            return {
                **common, **modules, "pxname": name, "svname": "FRONTEND", **counted(c),
                "slim": 9983, "dreq": 0, "dresp": 0, "ereq": 0, "status": "OPEN", "iid": iid,
                "sid": 0, "type": 0, "rate_lim": 0, "req_rate": c.rate(),
                "req_rate_max": c.rate_max, "req_tot": c.stot, "comp_in": 0, "comp_out": 0,
                "comp_byp": 0, "comp_rsp": 0, "conn_rate": c.rate(), "conn_rate_max": c.rate_max,
                "conn_tot": c.stot, "intercepted": intercepted, "dcon": 0, "dses": 0, "wrew": 0,
                "cache_lookups": 0, "cache_hits": 0, "eint": 0,
                "h1_total_connections": c.stot, "h1_total_streams": c.stot,
                "h1_open_connections": c.scur, "h1_open_streams": c.scur,
                "h1_bytes_in": c.bin, "h1_bytes_out": c.bout,
            }

        rows.append(frontend(FRONTEND, 2, self.frontend, 0))
        rows.append(frontend(STATS_FRONTEND, 3, self.stats_front, self.stats_front.stot))
        timing = {"qtime": 0, "ctime": 0, "rtime": 0, "ttime": 0, "qtime_max": 0,
                  "ctime_max": 0, "rtime_max": 0, "ttime_max": 0}
        for sid, s in enumerate(self.servers, start=1):
            status = "MAINT" if s.maint else s.status
            downtime = s.downtime + (now - s.down_since if s.down_since is not None else 0)
            rows.append({
                **common, **timing, "pxname": BACKEND_NAME, "svname": s.name,
                **counted(s.counters), "qcur": 0, "qmax": 0, "dresp": 0,
                "econ": s.counters.econ, "eresp": s.counters.eresp, "wretr": 0, "wredis": 0,
                "status": status, "weight": 1, "act": 1, "bck": 0, "chkfail": s.chkfail,
                "chkdown": s.chkdown, "lastchg": int(now - s.lastchg), "downtime": int(downtime),
                "iid": 4, "sid": sid, "lbtot": s.counters.lbtot, "type": 2,
                "check_status": s.check_status, "check_code": s.check_code,
                "check_duration": 0, "req_tot": s.counters.stot, "cli_abrt": 0, "srv_abrt": 0,
                "lastsess": int(now - s.counters.last_sess) if s.counters.last_sess else -1,
                "last_chk": s.last_chk, "check_desc": s.check_desc, "check_rise": RISE,
                "check_fall": FALL,
                "check_health": RISE + FALL - 1 if s.status == "UP" else 0,
                "wrew": 0,  # `addr` only with `stats show-legends`: empty, as here
                "connect": s.counters.stot, "reuse": 0, "srv_icur": 0, "eint": 0,
                "idle_conn_cur": 0, "safe_conn_cur": 0, "used_conn_cur": 0,
                "need_conn_est": 1, "uweight": 1,
            })
        up = sum(1 for s in self.servers if s.status == "UP" and not s.maint)
        rows.append({
            **common, **modules, **timing, "pxname": BACKEND_NAME, "svname": "BACKEND",
            **counted(self.backend), "qcur": 0, "qmax": 0, "slim": 999, "dreq": 0,
            "dresp": 0, "econ": 0, "eresp": 0, "wretr": 0, "wredis": 0,
            "status": "UP" if up else "DOWN", "weight": up, "act": up, "bck": 0,
            "chkdown": 0 if up else 1, "lastchg": int(now - self.started), "downtime": 0,
            "iid": 4, "sid": 0, "lbtot": self.backend.lbtot, "type": 1,
            "req_tot": self.backend.stot, "cli_abrt": 0, "srv_abrt": 0, "comp_in": 0,
            "comp_out": 0, "comp_byp": 0, "comp_rsp": 0,
            "lastsess": (int(now - self.backend.last_sess) if self.backend.last_sess else -1),
            "wrew": 0, "connect": self.backend.lbtot, "reuse": 0, "cache_lookups": 0,
            "cache_hits": 0, "eint": 0, "uweight": up, "agg_server_status": 0,
            "agg_server_check_status": 0, "agg_check_status": 0,
        })
        return rows

    def csv(self) -> str:
        lines = ["# " + ",".join(COLUMNS) + ","]
        for row in self.rows():
            lines.append(",".join(_cell(row.get(c, "")) for c in COLUMNS) + ",")
        return "\n".join(lines) + "\n"

    async def _stats_csv(self, request: web.Request) -> web.Response:
        self.stats_front.begin(len(request.raw_path) + 40)
        text = self.csv()
        self.stats_front.end(200, len(text))
        return web.Response(text=text, content_type="text/plain")

    async def _stats_html(self, _: web.Request) -> web.Response:
        return web.Response(text="<html><body><h1>HAProxy statistics (jamlab)</h1>"
                                 "<p>Use <a href='/stats;csv'>/stats;csv</a>.</p></body></html>",
                            content_type="text/html")


def _cell(value: Any) -> str:
    return str(value).replace(",", " ")
