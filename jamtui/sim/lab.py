"""The embedded JamLab: the world and every backend's server, started and stopped together.

The lab runs its own asyncio loop in a background thread so that synchronous callers (the
CLI, tests using the blocking client libraries) can drive it; `Lab.call` runs a function on
that loop and returns its result.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from ..inventory import Inventory, default_inventory_path, load_inventory
from .context import LabSecrets, SimContext
from .http import BackendServer, Fault, Faults
from .world import World

T = TypeVar("T")

BACKENDS = ("proxmox", "nomad", "consul", "fabio", "haproxy", "dns")


class Lab:
    """A running JamLab on loopback. Use as a context manager or call start() and stop()."""

    def __init__(
        self,
        inventory: Inventory | str | Path | None = None,
        *,
        seed: int = 0,
        tick: float = 1.0,
        host: str = "127.0.0.1",
        workdir: str | Path | None = None,
        secrets_: LabSecrets | None = None,
        ports: dict[str, int] | None = None,
        traffic: bool = True,
        tls: bool = False,
        cert_days: dict[str, float] | None = None,
        **world_options: Any,
    ) -> None:
        if inventory is None:
            inventory = default_inventory_path()
        if not isinstance(inventory, Inventory):
            inventory = load_inventory(inventory)
        self.inventory = inventory
        self.seed = seed
        self.tick = tick
        self.host = host
        self.ports = dict(ports or {})
        self.traffic = traffic
        self.mtls = tls  # Nomad and Consul over HTTPS, client certificates required
        self.cert_days = dict(cert_days or {})  # backend -> days its server certificate lasts
        self.world_options = world_options
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="jamlab-"))
        self.secrets = secrets_ or LabSecrets(
            nomad_token=str(uuid.uuid4()),
            consul_token=str(uuid.uuid4()),
            proxmox_token_value=str(uuid.uuid4()),
            proxmox_password=secrets.token_urlsafe(12),
        )
        self.faults = Faults()
        self.ctx: SimContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._background: list[asyncio.Task[Any]] = []
        self._haproxy: Any = None
        self._dns: Any = None
        self._bastion: Any = None
        self.control_token = secrets.token_urlsafe(16)
        self._moving: list[asyncio.Future[None]] = []

    # -- addresses ---------------------------------------------------------------------------

    @property
    def world(self) -> World:
        assert self.ctx is not None, "the lab is not started"
        return self.ctx.world

    @property
    def servers(self) -> dict[str, BackendServer]:
        assert self.ctx is not None, "the lab is not started"
        return self.ctx.servers

    @property
    def urls(self) -> dict[str, str]:
        assert self.ctx is not None, "the lab is not started"
        return self.ctx.urls

    @property
    def ca_cert(self) -> Path:
        assert self.ctx is not None, "the lab is not started"
        return self.ctx.tls.ca_cert

    def env(self) -> dict[str, str]:
        """The ecosystem's environment variables that point a client at this lab."""
        s = self.secrets
        return {
            "NOMAD_ADDR": self.urls["nomad"],
            "NOMAD_TOKEN": s.nomad_token,
            "CONSUL_HTTP_ADDR": self.urls["consul"],
            "CONSUL_HTTP_TOKEN": s.consul_token,
            "PROXMOX_VE_ENDPOINT": self.urls["proxmox"],
            "PROXMOX_VE_API_TOKEN": s.proxmox_api_token,
            "PROXMOX_VE_CACERT": str(self.ca_cert),
            **self.tls_env(),
        }

    def tls_env(self) -> dict[str, str]:
        """With --tls: the CLIs' variables for the CA, the client certificates and the name
        the servers' certificates hold (as on a real cluster reached by IP address)."""
        if not self.mtls:
            return {}
        from .tls import SERVER_NAMES

        out = {}
        for backend, prefix in (("nomad", "NOMAD"), ("consul", "CONSUL")):
            cert, key = self.ctx.tls.clients[backend] if self.ctx else ("", "")
            out |= {f"{prefix}_CACERT": str(self.ca_cert), f"{prefix}_CLIENT_CERT": str(cert),
                    f"{prefix}_CLIENT_KEY": str(key),
                    f"{prefix}_TLS_SERVER_NAME": SERVER_NAMES[backend]}
        return out

    def _tls_toml(self, backend: str) -> str:
        if not self.mtls:
            return ""
        from .tls import SERVER_NAMES

        assert self.ctx is not None
        cert, key = self.ctx.tls.clients[backend]
        return (f'ca_file = "{self.ca_cert}"\nclient_cert = "{cert}"\nclient_key = "{key}"\n'
                f'tls_server_name = "{SERVER_NAMES[backend]}"\n')

    def read_only_env(self) -> dict[str, str]:
        """The same, with each backend's read-only token (a dashboard's least privilege)."""
        s = self.secrets
        return {**self.env(), "NOMAD_TOKEN": s.nomad_read_token,
                "CONSUL_HTTP_TOKEN": s.consul_read_token,
                "PROXMOX_VE_API_TOKEN": s.proxmox_read_api_token}

    @property
    def token_files(self) -> dict[str, Path]:
        """Where the lab writes each backend's management token, owner-only (0600)."""
        return {b: self.workdir / "tokens" / f"{b}.token" for b in ("proxmox", "nomad", "consul")}

    def _write_tokens(self) -> None:
        from .tls import write_private

        s = self.secrets
        self.workdir.joinpath("tokens").mkdir(mode=0o700, exist_ok=True)
        for backend, secret in (("proxmox", s.proxmox_token_value), ("nomad", s.nomad_token),
                                ("consul", s.consul_token)):
            write_private(self.token_files[backend], (secret + "\n").encode())

    def config_toml(self) -> str:
        """A jamtui config file for this lab. Its tokens are in files of their own (mode
        0600, `token_file`), never in it: it works without the environment, and the
        ecosystem's variables (env.sh) still take precedence."""
        u = self.urls
        t = self.token_files
        fabio = ", ".join(f'"{x}"' for x in self.fabio_urls())
        return (
            "# jamtui configuration for the embedded lab (jamtui lab)\n"
            + self.provisioning_toml() +
            f'[proxmox]\naddress = "{u["proxmox"]}"\nca_file = "{self.ca_cert}"\n'
            f'token_id = "{self.secrets.proxmox_token_id}"\ntoken_file = "{t["proxmox"]}"\n\n'
            f'[nomad]\naddress = "{u["nomad"]}"\ntoken_file = "{t["nomad"]}"\n'
            f'{self._tls_toml("nomad")}\n'
            f'[consul]\naddress = "{u["consul"]}"\ntoken_file = "{t["consul"]}"\n'
            f'{self._tls_toml("consul")}\n'
            "[consul.agents]  # each node's agent, for node maintenance\n"
            + "".join(f'{k.split(":")[2]} = "{v}"\n' for k, v in sorted(u.items())
                      if k.startswith("consul:agent:")) + "\n"
            f"[fabio]\naddresses = [{fabio}]\n\n"
            f'[dns]\nserver = "{u["dns"]}"\nconsul = "{u["dns"]}"\n\n'
            f'[haproxy]\nstats_url = "{u["haproxy_stats"]}/stats;csv"\n'
            f'frontend = "{u["haproxy"]}"\n'
            + (f'ca_file = "{self.ca_cert}"\n' if self.mtls else "")
        )

    def provisioning_toml(self) -> str:
        """The workspace node add/remove edits, and the stand-in tools that act on the lab."""
        bin_dir = self.workdir / "bin"
        b = self._bastion
        return (
            f'inventory = "{self.workspace / "ansible" / "inventory.yml"}"\n'
            f'provisioners = "{self.workspace}"\n\n'
            "[provisioning]  # the lab's stand-ins for the real tools\n"
            f'terraform = "{bin_dir / "terraform"}"\npacker = "{bin_dir / "packer"}"\n'
            f'ansible_playbook = "{bin_dir / "ansible-playbook"}"\n'
            f'state_dir = "{self.workdir / "state"}"\nssh_timeout = 60\njoin_timeout = 60\n\n'
            f'[ssh]\nbastion = "{b.spec}"\nkey_file = "{b.key_file}"\n'
            f'known_hosts = "{b.known_hosts}"\n\n'
        )

    @property
    def workspace(self) -> Path:
        """A copy of the lab's provisioners tree (its inventory first) that workflows edit."""
        return self.workdir / "provisioners"

    def _make_workspace(self) -> None:
        import sys

        ws = self.workspace
        for sub in ("ansible", "packer", "terraform"):
            (ws / sub).mkdir(parents=True, exist_ok=True)
        inv = ws / "ansible" / "inventory.yml"
        if not inv.exists():
            shutil.copy(self.inventory.path, inv)
        (ws / "ansible" / "site.yml").write_text(
            "# the lab's stand-in ansible-playbook acts on the lab; see provisioners/ in the\n"
            "# jamtui repository for the real playbooks\n")
        (ws / "packer" / "debian.pkr.hcl").write_text("# stand-in workspace (see above)\n")
        bin_dir = self.workdir / "bin"
        bin_dir.mkdir(exist_ok=True)
        for tool in ("terraform", "packer", "ansible-playbook"):
            script = bin_dir / tool
            script.write_text(
                "#!/bin/sh\n# the JamLab stand-in: speaks the real tool's output, acts on the lab\n"
                f"JAMLAB_CONTROL='{self.urls['control']}' "
                f"JAMLAB_CONTROL_TOKEN='{self.control_token}' "
                f"exec '{sys.executable}' -m jamtui.sim.tools {tool} \"$@\"\n")
            script.chmod(0o700)

    def fabio_urls(self) -> list[str]:
        return [u for k, u in sorted(self.urls.items())
                if k.startswith("fabio:") and not k.endswith(":lb")]

    # -- life cycle --------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 15.0) -> None:
        ready: Future[None] = Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:  # report start failures to the caller
                ready.set_exception(exc)
                loop.close()
                return
            ready.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self._astop())
            loop.close()

        self._thread = threading.Thread(target=run, name="jamlab", daemon=True)
        self._thread.start()
        ready.result(timeout)

    async def _astart(self) -> None:
        from . import consul, control, dns, haproxy, instances, nomad, proxmox, sshd, tls

        tls_files = tls.make_tls(self.workdir / "tls", hosts=[self.host, "localhost"],
                                 mtls=self.mtls, cert_days=self.cert_days)
        world = World(self.inventory, seed=self.seed, **self.world_options)
        self.ctx = SimContext(world, self.faults, self.secrets, tls_files, self.host)
        self.ctx.workdir = self.workdir
        world.runtime = instances.LabRuntime(self.ctx)
        self.faults.listeners.append(self._on_fault)
        await world.start(self.tick)
        specs: list[tuple[str, Any, bool]] = [
            ("proxmox", proxmox.build_app(self.ctx), True),
            ("nomad", nomad.build_app(self.ctx), self.mtls),
            ("consul", consul.build_app(self.ctx), self.mtls),
        ]
        for name, app, use_tls in specs:
            server = BackendServer(name, app, self.host, self.ports.get(name, 0),
                                   tls.server_context(tls_files, name) if use_tls else None)
            await server.start()
            self.servers[name] = server
            self.ctx.urls[name] = server.url
        for node in sorted(world.consul_nodes):  # each node's own agent (agent/maintenance)
            name = f"consul:agent:{node}"
            server = BackendServer(name, consul.agent_app(self.ctx, node), self.host, 0,
                                   tls.server_context(tls_files, "consul") if self.mtls else None)
            await server.start()
            self.servers[name] = server
            self.ctx.urls[name] = server.url
        server = BackendServer("control", control.build_app(self.ctx, self.control_token),
                               self.host, 0)
        await server.start()
        self.servers["control"] = server
        self.ctx.urls["control"] = server.url
        self._bastion = sshd.LabBastion(self.ctx, self.workdir, self.host,
                                        self.ports.get("ssh", 0))
        self._bastion.start()
        self._make_workspace()
        self._write_tokens()
        self._dns = await dns.start(self.ctx, self.host, self.ports.get("dns", 0))
        self._haproxy = haproxy.HAProxyStandIn(self.ctx, self.ports.get("haproxy", 0),
                                               self.ports.get("haproxy_stats", 0))
        await self._haproxy.start()
        if self.traffic and self.tick > 0:
            self._background.append(asyncio.ensure_future(self._haproxy.trickle()))

    async def _astop(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.ctx is not None:
            if self._haproxy is not None:
                await self._haproxy.stop()
            if self._dns is not None:
                self._dns.close()
            if self._bastion is not None:
                await asyncio.get_running_loop().run_in_executor(None, self._bastion.stop)
            await self.ctx.world.stop()
            await asyncio.gather(*(server.stop() for server in list(self.ctx.servers.values())),
                                 return_exceptions=True)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def wait_settled(self, timeout: float = 10.0) -> str:
        """Wait until a client's first look finds the lab whole: every instance carrying a
        `urlprefix-` tag passes its checks and is a route on every Fabio's `/api/routes`
        (asked over HTTP, as jamtui asks), and HAProxy has each Fabio UP. Returns "" when
        settled, else what is still missing when `timeout` ran out."""
        import requests

        deadline = time.monotonic() + timeout
        missing = "not checked"
        while True:
            want, missing = self.call(self._unsettled)
            if not missing:
                missing = self._unrouted(want, requests)
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.1)

    def _unsettled(self) -> tuple[set[tuple[str, str]], str]:
        """On the loop: the (host+path, dst) each Fabio must route, and what is not ready."""
        from .fabio import parse_urlprefix

        world = self.world
        want: set[tuple[str, str]] = set()
        for (node, _), svc in world.services.items():
            for tag in svc.tags:
                parsed = parse_urlprefix(tag)
                if parsed is None:
                    continue
                failing = [c for c in world.checks.values() if c.node == node and c.status
                           != "passing" and c.service_id in ("", svc.id)]
                if failing:
                    return want, (f"{svc.name} on {node}: check {failing[0].name} is "
                                  f"{failing[0].status}")
                want.add((parsed[0] + parsed[1], f"http://{svc.address}:{svc.port}/"))
        if self._haproxy is not None:
            down = [s.name for s in self._haproxy.servers if s.status != "UP"]
            if down:
                return want, f"HAProxy server {down[0]} is not UP yet"
        return want, ""

    def _unrouted(self, want: set[tuple[str, str]], requests: Any) -> str:
        for url in self.fabio_urls():
            try:
                routes = requests.get(f"{url}/api/routes", timeout=2).json() or []
            except (requests.RequestException, ValueError) as exc:
                return f"Fabio {url} does not answer: {type(exc).__name__}"
            have = {(r.get("src", ""), r.get("dst", "")) for r in routes}
            if want - have:
                return f"Fabio {url} has no route {sorted(want - have)[0][0]} yet"
        return ""

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 10.0, **kw: Any) -> T:
        """Run `fn(*args, **kw)` on the lab's loop (awaiting it if it is a coroutine)."""
        assert self._loop is not None, "the lab is not started"

        async def run() -> T:
            result = fn(*args, **kw)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    # -- faults ------------------------------------------------------------------------------

    def freeze_fabio(self, node: str, frozen: bool = True) -> None:
        """Fabio on `node` stops following Consul (its watch lags or hangs): it keeps serving
        the routing table it has now, while the others move on (`frozen=False`: it catches
        up)."""
        from .fabio import routes_body

        def change() -> None:
            assert self.ctx is not None
            if frozen:
                self.ctx.fabio_frozen[node] = routes_body(self.world)
            else:
                self.ctx.fabio_frozen.pop(node, None)

        self.call(change)

    def set_fault(self, backend: str, kind: str, latency: float = 1.0) -> None:
        """Inject a fault into one backend: down, slow, error, malformed, reset, forbidden,
        hang."""
        if backend.split(":")[0] not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        self.call(self._settle, self.faults.set, backend, kind, latency)

    def clear_fault(self, backend: str | None = None) -> None:
        self.call(self._settle, self.faults.clear, backend)

    async def _settle(self, change: Callable[..., None], *args: Any) -> None:
        """Apply a fault change and return once the servers it takes down or up have moved."""
        change(*args)
        moving, self._moving = self._moving, []
        await asyncio.gather(*moving)

    def _on_fault(self, backend: str, fault: Fault | None) -> None:
        down = fault is not None and fault.kind == "down"
        assert self.ctx is not None
        for name, server in list(self.ctx.servers.items()):
            if name == backend or name.startswith(backend + ":"):
                self._moving.append(
                    asyncio.ensure_future(server.go_down() if down else server.come_up()))
        self.ctx.world.notify()  # wake held queries and streams so they notice
