"""The engine the TUI and the headless commands share: the sources, feeding one store."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from .config import Config
from .model import BackendStatus, Health, Kind
from .sources.base import Source
from .store import OWNER, Store

if TYPE_CHECKING:  # the inventory (ruamel.yaml) is read when first wanted, not before
    from .inventory import Inventory
    from .route_book import RouteBook
    from .timeline import Timeline

BACKEND_NAMES = ("proxmox", "nomad", "consul", "fabio", "haproxy")
# the backends of the cockpit's first screen (the overview's panes: hypervisors and VMs,
# Consul services, Nomad allocations; tests/ui/test_start_up.py checks it against
# `ui.kinds.OVERVIEW_PANES`): read first; the others start once that screen is drawn
FIRST_SCREEN = ("proxmox", "nomad", "consul")
LATER_WAIT = 3.0  # seconds at most the other backends wait for the first screen
KIND_VALUES = frozenset(k.value for k in Kind)

NOT_CONFIGURED = {
    "proxmox": "not configured: set [proxmox] address and token, or PROXMOX_VE_ENDPOINT and "
               "PROXMOX_VE_API_TOKEN.",
    "fabio": "not configured: set [fabio] addresses.",
    "haproxy": "not configured: set [haproxy] stats_url or socket.",
}


class Engine:
    """Builds one source per configured backend; `start()` begins watching, `stop()` ends it."""

    def __init__(self, config: Config, store: Store | None = None,
                 inventory: Inventory | None = None) -> None:
        self.config = config
        self.store = store or Store()
        # read when first wanted (Proxmox's first VMs, a shell, `trace`), not before the
        # first request: ruamel's parse cost 0.13-0.15 s of every start, and `status`
        # prints nothing it gives (see `inventory`)
        self._inventory = inventory
        self._inventory_read = inventory is not None
        self._inventory_lock = threading.Lock()
        self.sources: dict[str, Source] = {}
        self._later: list[Source] = []  # started once the cockpit's first frame is drawn
        self._later_lock = threading.Lock()
        # `:events` (what happened, from the first poll) and `:routes` (every host seen,
        # kept when it goes): made when first wanted, which a one-shot command never does
        self._timeline: Timeline | None = None
        self._routes: RouteBook | None = None
        self._build()

    def _build(self) -> None:
        cfg, store = self.config, self.store
        interval = cfg.poll_interval
        from .sources.consul import ConsulSource
        from .sources.nomad import NomadSource

        if cfg.proxmox.address:
            from .sources.proxmox import ProxmoxSource

            self.sources["proxmox"] = ProxmoxSource(store, cfg.proxmox, poll_interval=interval,
                                                    inventory=self._inventory_now)
        self.sources["nomad"] = NomadSource(store, cfg.nomad, poll_interval=interval)
        self.sources["consul"] = ConsulSource(store, cfg.consul, poll_interval=interval)
        if cfg.fabio.addresses:
            from .sources.fabio import FabioSource

            self.sources["fabio"] = FabioSource(store, cfg.fabio, poll_interval=interval)
        if cfg.haproxy.stats_url or cfg.haproxy.socket:
            from .sources.haproxy import HAProxySource

            self.sources["haproxy"] = HAProxySource(store, cfg.haproxy, poll_interval=interval)
        for name, message in NOT_CONFIGURED.items():
            if name not in self.sources:
                store.set_backend(BackendStatus(name, Health.UNKNOWN, last_error=message))
        # the cockpit's first frame (`expect_first_frame`, set by `JamApp` once the first
        # picture is drawn): the work in the background that the first frame does not need
        # waits for it (at most `sources.base.FIRST_FRAME_WAIT`), not competing with it for the one
        # GIL; None (no cockpit: tests, commands) waits for nothing
        self.first_frame: threading.Event | None = None
        from .sources.tls import CertWatch, endpoints_of

        # verification off shows from the first frame; expiry once a handshake has read it
        self.certificates = CertWatch(store, endpoints_of(cfg))

    @property
    def timeline(self) -> Timeline:
        if self._timeline is None:
            from .timeline import Timeline

            self._timeline = Timeline(self.store)
        return self._timeline

    @property
    def routes(self) -> RouteBook:
        if self._routes is None:
            from .route_book import RouteBook

            self._routes = RouteBook(self.store)
        return self._routes

    @property
    def inventory(self) -> Inventory | None:
        """The inventory (None when there is none, or it is malformed: jamtui still works
        without it), read on first use by whichever thread wants it first."""
        return self._inventory_now()

    @inventory.setter
    def inventory(self, inventory: Inventory | None) -> None:  # a workflow changed it
        with self._inventory_lock:
            self._inventory, self._inventory_read = inventory, True

    def _inventory_now(self) -> Inventory | None:
        if not self._inventory_read:
            with self._inventory_lock:
                if not self._inventory_read:
                    self._inventory = _try_inventory(self.config)
                    self._inventory_read = True
        return self._inventory

    def expect_first_frame(self) -> threading.Event:
        """The cockpit will draw (before `start`): set the event it returns once drawn."""
        self.first_frame = threading.Event()
        return self.first_frame

    @property
    def first_sources(self) -> list[Source]:
        """The sources the cockpit's first screen shows (every one without a cockpit)."""
        if self.first_frame is None:
            return list(self.sources.values())
        return [s for name, s in self.sources.items() if name in FIRST_SCREEN]

    def start(self, followers: bool = True, summary: bool = False) -> None:
        """Begin watching. `followers=False` for one-shot commands: they print the store once
        and need neither the `:events` history nor the route book (deriving the timeline for
        every first-read allocation cost the source threads, and so the answer, time at 5,000
        allocations), and the sources read their first picture only (`Source.once`: no
        event stream or check watch whose first answers the output would not use).
        `summary=True` for `status`, which prints counts: no VM configs for their addresses,
        no task states with the allocations (`Source.summary`).

        In the cockpit (`expect_first_frame`), the backends its first screen does not show
        (Fabio, HAProxy: the health bar only) start once that screen is drawn, at most
        `LATER_WAIT` seconds on: at 5,000 allocations Fabio's first table (4,800 routes)
        and HAProxy's rows took the one GIL from the first frame. Their health says
        "waiting" meanwhile."""
        if followers:
            self.timeline.first_frame = self.first_frame
            self.timeline.start()
            self.routes.start()
        first = self.first_sources if followers else list(self.sources.values())
        for source in self.sources.values():
            source.once = not followers
            source.first_frame = self.first_frame if followers else None
            source.summary = summary
            source.mark_waiting()
            if source in first:
                source.start()
        self._later = [s for s in self.sources.values() if s not in first]
        if self._later:
            threading.Thread(target=self._start_later, name="engine:later", daemon=True).start()
        if followers:  # no one-shot command prints certificates: no handshakes for them
            self.certificates.first_frame = self.first_frame
            self.certificates.start()

    def _start_later(self) -> None:
        assert self.first_frame is not None
        self.first_frame.wait(LATER_WAIT)
        self.start_later()

    def start_later(self) -> None:
        """Start the sources held for the first frame now (once; `showing` a view of theirs
        before it was drawn does too)."""
        with self._later_lock:
            sources, self._later = self._later, []
        for source in sources:
            if not source.stop_event.is_set():  # the cockpit did not end meanwhile
                source.start()

    def stop(self, timeout: float = 0.2) -> None:
        """Tell every source to stop and give their threads `timeout` in all to end. Threads
        that sleep between polls wake at once; one held in a blocking query (up to minutes)
        is a daemon thread and is not waited for: `status` and quitting the cockpit used to
        spend a full second here."""
        if self._timeline is not None:
            self._timeline.stop()
        if self._routes is not None:
            self._routes.stop()
        self.certificates.stop_event.set()
        for source in self.sources.values():
            source.stop_event.set()
        deadline = time.monotonic() + timeout
        for source in self.sources.values():
            source.stop(timeout=max(0.0, deadline - time.monotonic()))

    def showing(self, kinds: set[str]) -> None:
        """The screen shows objects of these kinds (Kind values): backends without a feed
        poll faster while theirs are on screen (Proxmox), or ask every instance rather than
        one in turn (Fabio, while routes are shown)."""
        if self._later and {s.name for s in self._later} & {OWNER.get(Kind(k)) for k in kinds
                                                           if k in KIND_VALUES}:
            self.start_later()  # e.g. `:routes` before the first frame was drawn
        proxmox = self.sources.get("proxmox")
        if proxmox is not None and hasattr(proxmox, "set_foreground"):
            proxmox.set_foreground(bool(kinds & {"vms", "hypervisors"}))
        fabio = self.sources.get("fabio")
        if fabio is not None and hasattr(fabio, "set_foreground"):
            fabio.set_foreground("routes" in kinds)

    def wait_ready(self, timeout: float = 10.0, sources: list[Source] | None = None) -> bool:
        """Wait until every source (or each of `sources`) has answered once, well or not;
        False if some stay silent."""
        deadline = time.monotonic() + timeout
        for source in self.sources.values() if sources is None else sources:
            if not source.ready.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def settle(self, timeout: float) -> set[str]:
        """For one-shot commands: wait up to `timeout` for every first answer, then stop
        listening (what is printed is what was known at that moment) and report each source
        still silent as down, "no answer in N s". Returns the names of the silent ones."""
        self.wait_ready(timeout)
        for source in self.sources.values():
            source.stop_event.set()
        return {name for name, source in self.sources.items() if source.give_up(timeout)}


def _try_inventory(config: Config) -> Inventory | None:
    """The inventory enriches VMs with their group; without one jamtui still works."""
    from .inventory import InventoryError, load_inventory

    try:
        return load_inventory(config.inventory)
    except InventoryError:
        return None
