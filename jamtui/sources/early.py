"""The reads a one-shot `snapshot --json` sends before its sources exist (#17).

At 5k the lab spends most of a snapshot's time answering two chains of reads: Consul's
services one by one (`/v1/health/service/:name`, 55) and Proxmox's VM configs (104, for
their addresses). The sources sent their first ones 0.25-0.35 s after the process started
(importing the rest, building the engine), with the servers idle until then. `start` sends
those chains as soon as the clients can be made, through the very `PlainGet`s the sources
make (`consul.plain_get`, `proxmox.plain_get`: the same session settings, headers, TLS and
timeout), and keeps the answers in `tls.EARLY`; each source's `PlainGet.get` of the same
request takes its answer there. What it finds no 2xx answer for, it sends itself, as
before: a failure, a refusal or a hang is reported by the source, in its words.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from . import tls

if TYPE_CHECKING:
    from ..config import Config

TIMEOUT = 10.0  # the sources' own (Engine builds them with their default)


def start(cfg: Config, timeout: float = TIMEOUT) -> tls.EarlyAnswers:
    """Send the chains (each in a thread of its own); `end` when the command is done."""
    from . import consul as consul_source

    answers = tls.EarlyAnswers()
    tls.EARLY = answers
    consul_cfg = cfg.consul
    consul_client = consul_source.consul_client(
        consul_cfg, tls.TLSSettings.of("consul", consul_cfg), timeout)
    _beside("early:consul", partial(_consul_chain, answers, consul_client))
    if cfg.proxmox.address:
        from . import proxmox as proxmox_source

        api = proxmox_source.proxmox_api(cfg.proxmox, tls.TLSSettings.of("proxmox",
                                                                         cfg.proxmox), timeout)
        _beside("early:proxmox", partial(_proxmox_chain, answers, api))
    return answers


def end(answers: tls.EarlyAnswers) -> None:
    """No more answers handed out (the reads still under way end on their own)."""
    answers.forget()
    if tls.EARLY is answers:
        tls.EARLY = None


def _beside(name: str, chain: Callable[[], None]) -> None:
    def run() -> None:
        with contextlib.suppress(Exception):  # the sources read it themselves, and say why
            chain()

    threading.Thread(target=run, name=name, daemon=True).start()


def _consul_chain(answers: tls.EarlyAnswers, client: Any) -> None:
    """The service list, then every service's instances, `READS` at a time."""
    from . import consul as consul_source
    from .jsonload import loads

    plain = consul_source.plain_get(client)
    if plain is None:
        return
    params = [("dc", client.dc)] if client.dc else []
    http = client.http
    got = plain.send(http.uri("/v1/catalog/services", params)[len(http.base_uri):],
                     http.timeout(params))
    if got is None or got[0] != 200:
        return
    names = loads(got[3])
    if not isinstance(names, dict):
        return
    reads = [consul_source.service_read(client, name) for name in sorted(names)]
    _run(answers, plain, reads, consul_source.READS, "early:consul")


def _proxmox_chain(answers: tls.EarlyAnswers, api: Any) -> None:
    """The guests (/cluster/resources), then the config of each running VM,
    `CONFIG_READS` at a time."""
    from . import proxmox as proxmox_source
    from .jsonload import loads

    plain = proxmox_source.plain_get(api)
    if plain is None:
        return
    got = plain.send("cluster/resources")
    if got is None or got[0] != 200:
        return
    resources = loads(got[3]).get("data")
    if not isinstance(resources, list):
        return
    guests = [r for r in resources if isinstance(r, dict)
              and r.get("type") in proxmox_source.GUEST_TYPES]
    reads = [(proxmox_source.config_path(node, vmid), None)
             for node, vmid in proxmox_source.addressed(guests)]
    _run(answers, plain, reads, proxmox_source.CONFIG_READS, "early:proxmox")


def _run(answers: tls.EarlyAnswers, plain: tls.PlainGet,
         reads: list[tuple[str, float | None]], bound: int, name: str) -> None:
    """Every read noted first (an asker waits for its answer rather than sending its
    own), then sent `bound` at a time."""
    jobs: Iterator[Callable[[], None]] = iter(
        [answers.expect(plain, path, timeout) for path, timeout in reads])
    take = threading.Lock()

    def worker() -> None:
        while True:
            with take:
                job = next(jobs, None)
            if job is None:
                return
            job()

    for i in range(min(bound, len(reads))):
        threading.Thread(target=worker, name=f"{name}{i}", daemon=True).start()
