"""The lab's Proxmox VE API, driven by the real proxmoxer client over verified HTTPS.

Shapes follow the PVE API viewer (pve.proxmox.com/pve-docs/api-viewer): /version,
/nodes (GET), /nodes/{node}/status, /cluster/resources, /nodes/{node}/qemu (GET),
/nodes/{node}/qemu/{vmid}/config, /status/current, /status/start|stop, /clone,
/nodes/{node}/tasks/{upid}/status and /log, /access/ticket; and the API wiki's
"API Tokens" and "Authentication" sections (PVEAPIToken header, ticket cookie + CSRF token).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import proxmoxer
import pytest
import requests
from proxmoxer.core import AuthenticationError, ResourceException
from proxmoxer.tools import Tasks

from jamtui.sim.lab import Lab

NODE_FIELDS = {"node", "status", "cpu", "maxcpu", "mem", "maxmem", "disk", "maxdisk", "uptime",
               "id", "type"}
QEMU_FIELDS = {"vmid", "name", "status", "cpus", "cpu", "mem", "maxmem", "disk", "maxdisk",
               "uptime", "netin", "netout", "qmpstatus"}


def pve(lab: Lab, **auth: Any) -> proxmoxer.ProxmoxAPI:
    u = urlsplit(lab.urls["proxmox"])
    if not auth:
        auth = {"token_name": lab.secrets.proxmox_token_name,
                "token_value": lab.secrets.proxmox_token_value}
    return proxmoxer.ProxmoxAPI(u.hostname, port=u.port, user=lab.secrets.proxmox_user,
                                verify_ssl=str(lab.ca_cert), service="PVE", timeout=5, **auth)


def test_reads_follow_the_api_viewer(lab: Lab) -> None:
    p = pve(lab)
    assert p.version.get()["version"].startswith("8.")
    nodes = p.nodes.get()
    assert sorted(n["node"] for n in nodes) == ["pve1", "pve2"]
    for n in nodes:
        assert n.keys() >= NODE_FIELDS and n["id"] == f"node/{n['node']}"
        assert 0 <= n["cpu"] <= 1 and n["status"] == "online"
    status = p.nodes("pve1").status.get()
    assert status["cpuinfo"]["cpus"] > 0 and status["memory"]["total"] > 0

    vms = p.cluster.resources.get(type="vm")
    assert {r["type"] for r in vms} == {"qemu", "lxc"}  # the demo's container is a guest too
    assert all(r["id"] == f"{r['type']}/{r['vmid']}" and isinstance(r["vmid"], int)
               for r in vms)
    assert {r["template"] for r in vms} == {0, 1}  # booleans are 1/0
    storage = p.cluster.resources.get(type="storage")
    assert all(r["id"].startswith("storage/") for r in storage)

    listed = {v["name"]: v for v in p.nodes("pve1").qemu.get()}
    template = [v for v in listed.values() if v.get("template") == 1]
    assert [v["vmid"] for v in template] == [9000]
    running = next(v for v in listed.values() if v["status"] == "running")
    assert running.keys() >= QEMU_FIELDS and "pid" in running
    assert all("template" not in v for v in listed.values() if v["vmid"] != 9000)

    config = p.nodes(running_node(lab, "vb0")).qemu(vmid_of(lab, "vb0")).config.get()
    assert config["name"] == "vb0" and config["ipconfig0"].startswith("ip=192.168.42.")
    current = p.nodes(running_node(lab, "vb0")).qemu(vmid_of(lab, "vb0")).status.current.get()
    assert current["status"] == "running" and current["qmpstatus"] == "running"


def vmid_of(lab: Lab, name: str) -> int:
    return next(v.vmid for v in lab.world.vms.values() if v.name == name)


def running_node(lab: Lab, name: str) -> str:
    return next(v.node for v in lab.world.vms.values() if v.name == name)


def test_power_actions_return_upids_that_proxmoxer_can_wait_on(lab: Lab) -> None:
    p = pve(lab)
    node, vmid = running_node(lab, "vs2"), vmid_of(lab, "vs2")
    upid = p.nodes(node).qemu(vmid).status.stop.post()
    assert upid.startswith(f"UPID:{node}:") and len(upid.split(":")) == 9
    done = Tasks.blocking_status(p, upid, timeout=10, polling_interval=0.1)
    assert done["status"] == "stopped" and done["exitstatus"] == "OK"
    assert p.nodes(node).qemu(vmid).status.current.get()["status"] == "stopped"
    log = p.nodes(node).tasks(upid).log.get()
    assert log[-1]["t"] == "TASK OK" and log[0]["n"] == 1

    upid = p.nodes(node).qemu(vmid).status.start.post()
    assert Tasks.blocking_status(p, upid, timeout=10, polling_interval=0.1)["exitstatus"] == "OK"
    assert p.nodes(node).qemu(vmid).status.current.get()["status"] == "running"

    # starting a running VM fails as a task, not as an HTTP error
    upid = p.nodes(node).qemu(vmid).status.start.post()
    done = Tasks.blocking_status(p, upid, timeout=10, polling_interval=0.1)
    assert done["exitstatus"] != "OK"


def test_cluster_resources_figures_move_with_pvestatd_cycles(lab: Lab) -> None:
    """/cluster/resources reads pvestatd's RRD data, broadcast every 10 s: within a cycle the
    figures (cpu, mem, uptime) are the same answer after answer, though the world ticks."""
    from jamtui.sim.proxmox import PVESTATD_CYCLE

    p = pve(lab)
    for _ in range(3):
        if time.time() % PVESTATD_CYCLE > PVESTATD_CYCLE - 2:
            time.sleep(2.1)  # not across the turn of a cycle
        cycle = time.time() // PVESTATD_CYCLE
        first = p.cluster.resources.get()
        time.sleep(1.1)  # five ticks, one uptime second
        again = p.cluster.resources.get()
        if time.time() // PVESTATD_CYCLE == cycle:
            break
    assert first == again
    # the status stays live (the lab is kinder here: Proxmox's lags up to a cycle), and a
    # guest that stopped shows no running figures
    node, vmid = running_node(lab, "vs2"), vmid_of(lab, "vs2")
    done = Tasks.blocking_status(p, p.nodes(node).qemu(vmid).status.stop.post(), timeout=10,
                                 polling_interval=0.1)
    assert done["exitstatus"] == "OK"
    vm = next(r for r in p.cluster.resources.get(type="vm") if r["vmid"] == vmid)
    assert vm["status"] == "stopped" and vm["cpu"] == 0 and vm["uptime"] == 0


def test_clone_from_the_template(lab: Lab) -> None:
    p = pve(lab)
    upid = p.nodes("pve1").qemu(9000).clone.post(newid=303, name="vs3", full=1)
    assert Tasks.blocking_status(p, upid, timeout=10, polling_interval=0.1)["exitstatus"] == "OK"
    clone = p.nodes("pve1").qemu(303).config.get()
    assert clone["name"] == "vs3"
    with pytest.raises(ResourceException) as err:
        p.nodes("pve1").qemu(9000).clone.post(newid=303)
    assert err.value.status_code == 500 and "already exists" in err.value.content


def test_booleans_are_type_checked_like_pve(lab: Lab) -> None:
    p = pve(lab)
    with pytest.raises(ResourceException) as err:
        p.nodes("pve1").qemu(9000).clone.post(newid=304, full="True")
    assert err.value.status_code == 400
    assert err.value.errors == {"full": "type check ('boolean') failed - got 'True'"}


def test_errors_carry_the_message_in_the_reason(lab: Lab) -> None:
    p = pve(lab)
    with pytest.raises(ResourceException) as err:
        p.nodes("pve1").qemu(4242).config.get()
    assert err.value.status_code == 500
    assert "qemu-server/4242.conf' does not exist" in err.value.content
    with pytest.raises(ResourceException) as err:
        p.nodes("pve1").nothing.get()
    assert err.value.status_code == 501


def test_authentication(lab: Lab) -> None:
    with pytest.raises(ResourceException) as err:
        pve(lab, token_name="jamtui", token_value="wrong").version.get()
    assert err.value.status_code == 401

    # ticket login: reads with the cookie, writes need the CSRF token too (proxmoxer sends it)
    p = pve(lab, password=lab.secrets.proxmox_password)
    assert p.version.get()["release"]
    upid = p.nodes("pve1").qemu(9000).clone.post(newid=305, name="vs5")
    assert upid.startswith("UPID:pve1:")
    with pytest.raises(AuthenticationError):
        pve(lab, password="not-it")

    # TLS is verified: without the lab's CA the connection is refused
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{lab.urls['proxmox']}/api2/json/version", timeout=5)


@pytest.mark.parametrize("kind", ["error", "forbidden", "malformed", "down"])
def test_faults(lab: Lab, kind: str) -> None:
    p = pve(lab)
    lab.set_fault("proxmox", kind)
    try:
        if kind in ("error", "forbidden"):
            with pytest.raises(ResourceException) as err:
                p.nodes.get()
            assert err.value.status_code == (500 if kind == "error" else 403)
        elif kind == "malformed":
            # proxmoxer hands back {"errors": <raw bytes>} rather than raising
            assert "errors" in p.nodes.get()
        else:
            with pytest.raises(requests.exceptions.ConnectionError):
                p.nodes.get()
    finally:
        lab.clear_fault()
    assert p.nodes.get()


def test_slow_fault(lab: Lab) -> None:
    p = pve(lab)
    lab.set_fault("proxmox", "slow", latency=0.5)
    try:
        started = time.monotonic()
        p.version.get()
        assert time.monotonic() - started >= 0.45
    finally:
        lab.clear_fault()


def test_a_vm_name_must_be_a_dns_name_like_pve(lab: Lab) -> None:
    """PVE::JSONSchema's 'dns-name' format: a name carrying terminal codes or markup never
    reaches Proxmox's listings (#12 §1), so the lab refuses it as PVE does."""
    p = pve(lab)
    for name in ("vs[/x]", "vs\x1b]0;PWNED\x07", "my vm", "-vm", "vm_1"):
        with pytest.raises(ResourceException) as err:
            p.nodes("pve1").qemu(9000).clone.post(newid=306, name=name)
        assert err.value.status_code == 400
        assert err.value.errors == {
            "name": "invalid format - value does not look like a valid DNS name\n"}
    with pytest.raises(ResourceException):
        p.nodes("pve1").qemu(9000).config.put(name="bad[/x]")
    upid = p.nodes("pve1").qemu(9000).clone.post(newid=306, name="vs6.jamfox-dev")
    assert Tasks.blocking_status(p, upid, timeout=10, polling_interval=0.1)["exitstatus"] == "OK"
