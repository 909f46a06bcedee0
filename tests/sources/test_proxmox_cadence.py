"""What the Proxmox poll costs while VMs are on screen (#17): /cluster/resources each second
(a guest's new state shows within the second), /cluster/tasks at the configured interval and
at once after an action, not both every second."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from jamtui.config import load_config
from jamtui.model import Kind
from jamtui.sim.lab import Lab
from jamtui.sources import proxmox
from jamtui.sources.proxmox import ProxmoxSource
from jamtui.store import Store
from tests.conftest import FAST
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(seed=9, tick=0, traffic=False, **FAST) as running:
        yield running


def counted_source(lab: Lab, tmp_path: Path, store: Store
                   ) -> tuple[ProxmoxSource, Counter[str]]:
    """A Proxmox source on the lab (30 s poll interval) counting its reads by path."""
    path = tmp_path / "jamtui.toml"
    path.write_text(lab.config_toml())
    src = ProxmoxSource(store, load_config(path, env=lab.env()).proxmox, poll_interval=30)
    reads: Counter[str] = Counter()
    get, get_plain = src._get, src._get_plain

    def counting(what: str) -> Any:
        reads[what] += 1
        return get(what)

    def counting_plain(what: str) -> Any:  # the reads each second, the VM configs'
        reads[what] += 1
        return get_plain(what)

    src._get = counting  # type: ignore[method-assign]
    src._get_plain = counting_plain  # type: ignore[method-assign]
    return src, reads


def test_the_foreground_poll_reads_resources_each_second_and_tasks_at_the_interval(
        lab: Lab, tmp_path: Path) -> None:
    store = Store()
    src, reads = counted_source(lab, tmp_path, store)
    vm = next(v for v in lab.world.vms.values() if v.name == "bastion")
    src.start()
    try:
        wait_for(lambda: store.items(Kind.VM) and reads["cluster/tasks"], timeout=10)
        src.set_foreground(True)
        wait_for(lambda: reads["cluster/resources"] >= 5, timeout=10)
        # the first poll and the one the screen's turn to VMs woke: no more in 30 s
        assert reads["cluster/tasks"] <= 2, reads
        lab.call(lab.world.vm_stop, vm.node, vm.vmid)  # outside jamtui: no task to go by
        wait_for(lambda: any(v.vmid == vm.vmid and v.status == "stopped"
                             for v in store.items(Kind.VM)), timeout=5)
        before = reads["cluster/tasks"]
        src.vm_action(vm.node, vm.vmid, "start")  # through jamtui: its task is read at once
        wait_for(lambda: reads["cluster/tasks"] > before, timeout=5)
        wait_for(lambda: any(t.object_id == str(vm.vmid) and t.type == "qmstart"
                             for t in store.items(Kind.PVE_TASK)), timeout=5)
    finally:
        lab.call(lab.world.vm_start, vm.node, vm.vmid)
        src.stop()


def test_the_fast_foreground_read_does_not_read_privileges_more_often(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token's own privileges (/access/permissions) are read every PRIVILEGE_CHECK_EVERY
    poll intervals, on the clock: the foreground's read each second made it each 12 s."""
    monkeypatch.setattr(proxmox, "FOREGROUND_INTERVAL", 0.05)  # a second's reads, quicker
    src, reads = counted_source(lab, tmp_path, Store())
    src.set_foreground(True)
    src.start()
    try:
        wait_for(lambda: reads["cluster/resources"] >= 2 * proxmox.PRIVILEGE_CHECK_EVERY + 2,
                 timeout=20)
        assert reads["access/permissions"] == 1, reads
    finally:
        src.stop()


def test_a_one_shot_reads_the_configs_beside_its_first_write(lab: Lab, tmp_path: Path) -> None:
    """`snapshot --json` (#17): the first write reads the inventory (0.1-0.2 s at 5k) for a
    picture a one-shot command never shows; the VM configs (its longest wait) are read beside
    it, not after it."""
    import threading

    store = Store()
    src, _ = counted_source(lab, tmp_path, store)
    src.once = True
    config_read = threading.Event()
    get = src._get_plain

    def noting(what: str) -> Any:
        if what.endswith("/config"):
            config_read.set()
        return get(what)

    src._get_plain = noting  # type: ignore[method-assign]
    asked: list[bool] = []

    def inventory() -> None:  # the first write's: were configs read meanwhile?
        asked.append(config_read.wait(5))

    src.inventory = inventory  # type: ignore[assignment]
    src.refresh()
    assert asked and asked[0], asked
    assert store.items(Kind.HYPERVISOR) and store.items(Kind.STORAGE)
    assert any(v.ip for v in store.items(Kind.VM)), store.items(Kind.VM)


def test_a_one_shot_starts_its_config_readers_while_resources_are_read(
        lab: Lab, tmp_path: Path) -> None:
    """`snapshot --json` at 5k (#17): its VM config readers are started while
    /cluster/resources is read (`side.Ahead`), not one after the other once the VM list is
    in (each start waited for the one GIL: the eighth began up to 0.25 s after the first).
    The addresses are read as before, and no reader is left behind."""
    import threading

    store = Store()
    src, reads = counted_source(lab, tmp_path, store)
    src.once = True
    get = src._get_plain
    running: list[set[str]] = []

    def resources(what: str) -> Any:
        answer = get(what)
        if what == "cluster/resources":  # the readers, as its answer comes in
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                names = {t.name for t in threading.enumerate()}
                if {f"proxmox:config{i}" for i in range(proxmox.CONFIG_READS + 1)} <= names:
                    break
                time.sleep(0.01)
            running.append(names)
        return answer

    src._get_plain = resources  # type: ignore[method-assign]
    src.refresh()
    assert running and {f"proxmox:config{i}" for i in range(proxmox.CONFIG_READS + 1)} <= \
        running[0], running
    vms = [v for v in store.items(Kind.VM) if v.status == "running" and v.type == "qemu"]
    assert vms and reads["cluster/resources"] == 1
    assert sum(1 for w in reads if w.endswith("/config")) == len(vms)
    assert any(v.ip for v in vms), vms
    wait_for(lambda: not [t for t in threading.enumerate()
                          if t.name.startswith("proxmox:config")], timeout=5)
    src.summary = True  # `status` reads no configs: no readers started for it
    src._ips.clear()
    src.refresh()
    assert not [t for t in threading.enumerate() if t.name.startswith("proxmox:config")]


def test_the_cockpit_reads_vm_configs_once_its_first_frame_is_drawn(
        lab: Lab, tmp_path: Path) -> None:
    """The VMs' configs (their addresses: one read per running VM, 104 at 5k) wait for the
    cockpit's first frame (`Source.first_frame`): they took the one GIL from it (#17). The
    VMs are written and the source has answered before; the configs are read after."""
    import threading

    store = Store()
    src, reads = counted_source(lab, tmp_path, store)
    src.first_frame = threading.Event()
    src.refresh()
    assert store.items(Kind.VM)
    assert not any(path.endswith("/config") for path in reads), reads
    src.first_frame.set()
    src.refresh()
    assert any(path.endswith("/config") for path in reads), reads
    assert any(v.ip for v in store.items(Kind.VM))


def test_the_same_answer_is_sent_plainly_and_decoded_once(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The read each second (#17: ~1.3 ms of CPU, most of it in requests): with an API
    token it goes through the session's own pool without requests' work around each request
    (`tls.PlainGet`: nothing prepared or sent by requests after the first); an answer
    identical to the last is not decoded again, and a changed one is (a stopped VM shows)."""
    import requests
    from proxmoxer.backends.https import JsonSerializer

    counts: Counter[str] = Counter()
    bodies: list[bytes] = []  # every answer of /cluster/resources, as it came
    loads, data = JsonSerializer.loads, proxmox._data
    prepare, send, decoded = (requests.Session.prepare_request, requests.Session.send,
                              proxmox.LastBody.decoded)

    def decoding(self: Any, response: Any) -> Any:
        counts[str(response.url).rsplit("/", 2)[-1]] += 1
        return loads(self, response)

    def decoding_plain(body: bytes) -> Any:
        counts["resources" if b'"vmid"' in body else "other"] += 1
        return data(body)

    def answered(self: Any, where: str, body: bytes, decode: Any) -> Any:
        if where.endswith("/cluster/resources"):
            bodies.append(body)
        return decoded(self, where, body, decode)

    def preparing(self: Any, request: Any) -> Any:
        counts["prepared " + str(request.url).rsplit("/", 2)[-1]] += 1
        return prepare(self, request)

    def sending(self: Any, request: Any, **kw: Any) -> Any:
        counts["sent " + str(request.url).rsplit("/", 2)[-1]] += 1
        return send(self, request, **kw)

    monkeypatch.setattr(JsonSerializer, "loads", decoding)
    monkeypatch.setattr(proxmox, "_data", decoding_plain)
    monkeypatch.setattr(proxmox.LastBody, "decoded", answered)
    monkeypatch.setattr(requests.Session, "prepare_request", preparing)
    monkeypatch.setattr(requests.Session, "send", sending)
    store = Store()
    src, reads = counted_source(lab, tmp_path, store)
    src._privileges_next = float("inf")  # (its own reads)
    for _ in range(5):
        src.refresh()
    assert reads["cluster/resources"] == 5 and len(bodies) == 5
    # each guest's uptime moves with the clock: 5 reads may cross a second (a loaded machine)
    moved = sum(a != b for a, b in pairwise(bodies))
    assert moved < 4  # some answer came again as it was
    assert counts["resources"] == 1 + moved, counts  # (each decoded, before: 5)
    assert counts["sent resources"] == 0, counts  # (5 through requests before)
    assert counts["prepared resources"] == 0, counts  # (5, then 1)
    vm = next(v for v in lab.world.vms.values() if v.name == "bastion")
    lab.call(lab.world.vm_stop, vm.node, vm.vmid)
    try:
        wait_for(lambda: src.refresh() >= 0  # (a task of 0.3 s)
                 and store.get(Kind.VM, str(vm.vmid)).status == "stopped", timeout=5)
        assert counts["resources"] >= 2
    finally:
        lab.call(lab.world.vm_start, vm.node, vm.vmid)


def test_the_poll_sleeps_its_pause_in_one_wait(lab: Lab, tmp_path: Path) -> None:
    """Between reads the poll thread sleeps once (it looked four times a second); a stop
    still ends it at once."""
    src, reads = counted_source(lab, tmp_path, Store())
    waits: list[float | None] = []
    wait = src._wake.wait

    def counting(timeout: float | None = None) -> bool:
        waits.append(timeout)
        return wait(timeout)

    src._wake.wait = counting  # type: ignore[method-assign]
    src.start()
    try:
        wait_for(lambda: reads["cluster/resources"] >= 1 and waits, timeout=10)
        time.sleep(1.0)
        assert len(waits) == 1, waits  # the 30 s pause: one wait, not 4 a second
    finally:
        started = time.monotonic()
        src.stop()
        assert time.monotonic() - started < 1


def test_vm_configs_are_read_through_the_sessions_pool_without_requests_work(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`snapshot --json` at 5k reads 104 VM configs (#17): each one straight through the
    connection pool proxmoxer's session uses (`tls.PlainGet`: its headers, token and TLS),
    not through requests' per-request work (1.25 -> 0.5 ms of CPU a read). The addresses
    are those proxmoxer's answers give; a refusal is proxmoxer's `ResourceException`, with
    its status; a session that sends through a proxy is asked as before."""
    import requests
    from proxmoxer.core import ResourceException

    sent: list[str] = []
    send = requests.Session.send

    def sending(self: Any, request: Any, **kw: Any) -> Any:
        sent.append(str(request.url))
        return send(self, request, **kw)

    monkeypatch.setattr(requests.Session, "send", sending)
    store = Store()
    src, reads = counted_source(lab, tmp_path, store)
    src.once = True
    src.refresh()
    vms = [v for v in store.items(Kind.VM) if v.status == "running" and v.type == "qemu"]
    assert vms and sum(1 for w in reads if w.endswith("/config")) == len(vms)
    assert not [u for u in sent if u.endswith("/config")], sent
    for vm in vms:  # the same address as proxmoxer's own read of the config gives
        config = src.api(f"nodes/{vm.node}/qemu/{vm.vmid}/config").get()
        assert src._ips[vm.vmid] == proxmox.ip_from_config(config), vm
    assert any(src._ips.values())
    missing = f"nodes/{vms[0].node}/qemu/99999/config"
    with pytest.raises(ResourceException) as plain:
        src._get_plain(missing)
    with pytest.raises(ResourceException) as theirs:
        src.api(missing).get()
    assert plain.value.status_code == theirs.value.status_code >= 400
    assert plain.value.content == theirs.value.content
    assert src._config_ip(vms[0].node, 99999) is None  # refused: no address, as before
    session = src.api._store["session"]  # its pools let go (past ten hosts they are)
    session.get_adapter(src.api._store["base_url"]).poolmanager.clear()
    assert src._config_ip(vms[0].node, vms[0].vmid) == src._ips[vms[0].vmid]

    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    proxied, _ = counted_source(lab, tmp_path, Store())
    assert proxied._plain is None  # through the proxy, by requests, as before
    monkeypatch.delenv("HTTPS_PROXY")
    from jamtui.sources.tls import PlainGet, TLSSettings

    base = src.api._store["base_url"]
    assert PlainGet.of(TLSSettings("proxmox").session(), base) is not None
    hooked = TLSSettings("proxmox").session()
    hooked.hooks["response"].append(lambda r, *a, **k: r)  # what needs requests' answer
    assert PlainGet.of(hooked, base) is None
    cookies = TLSSettings("proxmox").session()
    cookies.cookies.set("PVEAuthCookie", "x")  # a ticket's session: its own cookies
    assert PlainGet.of(cookies, base) is None
