"""The lab's Proxmox VE containers, snapshots, migration, tasks, storage and listing endpoints,
read and driven by proxmoxer. Each test names the API viewer's path it follows
(pve.proxmox.com/pve-docs/api-viewer); the shapes are those schemas (qemu-server's and
pve-container's snapshot_list, pve-manager's Cluster.pm tasks/nextid, pve-storage's content)."""

from __future__ import annotations

from urllib.parse import urlsplit

import proxmoxer
import pytest
import requests
from proxmoxer.core import ResourceException
from proxmoxer.tools import Tasks

from jamtui.sim.lab import Lab
from jamtui.sim.world import LXC_VMID

from .test_proxmox_http import pve, running_node, vmid_of


def wait(p, upid: str) -> dict:  # type: ignore[no-untyped-def]
    return Tasks.blocking_status(p, upid, timeout=10, polling_interval=0.1)


def test_containers_are_listed_and_powered(lab: Lab) -> None:
    """GET /nodes/{node}/lxc, /lxc/{vmid}/status/current, POST /lxc/{vmid}/status/{action};
    /cluster/resources `type: lxc`."""
    p = pve(lab)
    assert p.nodes("pve1").lxc.get() == []  # none there: an empty list, not a 501
    (ct,) = p.nodes("pve2").lxc.get()
    assert ct["vmid"] == LXC_VMID and ct["type"] == "lxc" and ct["status"] == "running"
    assert {"cpus", "maxmem", "maxdisk", "maxswap", "uptime", "pid"} <= ct.keys()
    res = [r for r in p.cluster.resources.get(type="vm") if r["type"] == "lxc"]
    assert [r["id"] for r in res] == [f"lxc/{LXC_VMID}"] and res[0]["node"] == "pve2"
    assert p.nodes("pve2").lxc(LXC_VMID).config.get()["hostname"] == "ns1"
    upid = p.nodes("pve2").lxc(LXC_VMID).status.shutdown.post()
    assert upid.split(":")[5] == "vzshutdown"
    assert wait(p, upid)["exitstatus"] == "OK"
    assert p.nodes("pve2").lxc(LXC_VMID).status.current.get()["status"] == "stopped"
    assert wait(p, p.nodes("pve2").lxc(LXC_VMID).status.start.post())["exitstatus"] == "OK"
    with pytest.raises(ResourceException) as err:
        p.nodes("pve1").lxc(LXC_VMID).status.current.get()
    assert err.value.status_code == 500 and "lxc/400.conf' does not exist" in err.value.content


def test_snapshots_tree_take_rollback_delete(lab: Lab) -> None:
    """GET/POST /nodes/{node}/qemu/{vmid}/snapshot, POST …/snapshot/{snapname}/rollback,
    DELETE …/snapshot/{snapname}: `parent` links, the `current` entry, vmstate."""
    p = pve(lab)
    node, vmid = running_node(lab, "vs2"), vmid_of(lab, "vs2")
    snaps = p.nodes(node).qemu(vmid).snapshot
    assert snaps.get() == [{"name": "current", "description": "You are here!", "running": 1}]
    assert wait(p, snaps.post(snapname="base", description="clean"))["exitstatus"] == "OK"
    upid = snaps.post(snapname="with-ram", vmstate=1)
    assert upid.split(":")[5] == "qmsnapshot" and wait(p, upid)["exitstatus"] == "OK"
    listed = {s["name"]: s for s in snaps.get()}
    assert listed["base"]["description"] == "clean" and "parent" not in listed["base"]
    assert listed["with-ram"]["parent"] == "base" and listed["with-ram"]["vmstate"] == 1
    assert listed["current"]["parent"] == "with-ram"
    with pytest.raises(ResourceException) as err:
        snaps.post(snapname="base")
    assert err.value.status_code == 500 and "snapshot name 'base' already used" in err.value.content
    with pytest.raises(ResourceException) as err:
        snaps.post(snapname="1 bad")
    assert err.value.status_code == 400 and "snapname" in err.value.errors

    # roll back to a snapshot without RAM: the VM is stopped, current hangs from it
    assert wait(p, p.nodes(node).qemu(vmid).snapshot("base").rollback.post())[
        "exitstatus"] == "OK"
    assert p.nodes(node).qemu(vmid).status.current.get()["status"] == "stopped"
    assert {s["name"]: s for s in snaps.get()}["current"]["parent"] == "base"
    # deleting `base` re-parents its child to nothing
    upid = p.nodes(node).qemu(vmid).snapshot("base").delete()
    assert upid.split(":")[5] == "qmdelsnapshot" and wait(p, upid)["exitstatus"] == "OK"
    listed = {s["name"]: s for s in snaps.get()}
    assert set(listed) == {"with-ram", "current"} and "parent" not in listed["with-ram"]
    with pytest.raises(ResourceException) as err:
        p.nodes(node).qemu(vmid).snapshot("base").rollback.post()
    assert "snapshot 'base' does not exist" in err.value.content


def test_migrate_moves_the_vm(lab: Lab) -> None:
    """POST /nodes/{node}/qemu/{vmid}/migrate (target, online); GET …/migrate precondition."""
    p = pve(lab)
    node, vmid = running_node(lab, "vs2"), vmid_of(lab, "vs2")
    target = next(n for n in ("pve1", "pve2") if n != node)
    check = p.nodes(node).qemu(vmid).migrate.get()
    assert check["running"] == 1 and check["allowed_nodes"] == [target]
    with pytest.raises(ResourceException) as err:
        p.nodes(node).qemu(vmid).migrate.post(target=target)
    assert "can't migrate running VM without --online" in err.value.content
    with pytest.raises(ResourceException) as err:
        p.nodes(node).qemu(vmid).migrate.post(target=node)
    assert err.value.errors == {"target": "target is local node."}
    upid = p.nodes(node).qemu(vmid).migrate.post(target=target, online=1)
    assert upid.split(":")[5] == "qmigrate"
    assert wait(p, upid)["exitstatus"] == "OK"
    moved = next(r for r in p.cluster.resources.get(type="vm") if r["vmid"] == vmid)
    assert moved["node"] == target and moved["status"] == "running"
    log = [line["t"] for line in p.nodes(node).tasks(upid).log.get()]
    assert log[0].startswith(f"starting migration of VM {vmid}") and log[-1] == "TASK OK"


def test_cluster_tasks_list_every_task_newest_first(lab: Lab) -> None:
    """GET /cluster/tasks (pve-manager Cluster.pm): status is the exit status once ended."""
    p = pve(lab)
    seeded = p.cluster.tasks.get()
    assert {t["type"] for t in seeded} >= {"vzstart", "qmsnapshot"}
    assert all(t["status"] == "OK" and "endtime" in t for t in seeded)
    node, vmid = running_node(lab, "vs2"), vmid_of(lab, "vs2")
    upid = p.nodes(node).qemu(vmid).status.reboot.post()
    first = p.cluster.tasks.get()[0]
    assert first["upid"] == upid and "status" not in first and "endtime" not in first
    assert first["user"] == lab.secrets.proxmox_token_id and first["id"] == str(vmid)
    wait(p, upid)
    first = p.cluster.tasks.get()[0]
    assert first["status"] == "OK" and first["endtime"] >= first["starttime"]
    starts = [t["starttime"] for t in p.cluster.tasks.get()]
    assert starts == sorted(starts, reverse=True)


def test_storage_pools_network_nextid_pending_and_indexes(lab: Lab) -> None:
    """GET /storage, /nodes/{node}/storage, …/storage/{storage}/content, /pools,
    /pools/{poolid}, /nodes/{node}/network, /cluster/nextid, /qemu/{vmid}/pending, and the
    directory indexes /nodes/{node}, …/qemu/{vmid}/status."""
    p = pve(lab)
    assert {s["storage"] for s in p.storage.get()} == {"local", "local-lvm", "nfs-shared"}
    node_st = {s["storage"]: s for s in p.nodes("pve2").storage.get()}
    assert node_st["local-lvm"]["used"] > 0 and node_st["local-lvm"]["active"] == 1
    assert node_st["local"]["avail"] == node_st["local"]["total"] - node_st["local"]["used"]
    content = p.nodes("pve2").storage("local-lvm").content.get()
    assert any(v["vmid"] == LXC_VMID and v["content"] == "rootdir" for v in content)
    assert all({"volid", "format", "size", "content"} <= v.keys() for v in content)
    isos = p.nodes("pve1").storage("local").content.get(content="iso")
    assert [v["format"] for v in isos] == ["iso"]
    backups = p.nodes("pve1").storage("nfs-shared").content.get(content="backup")
    assert backups and all(v["volid"].startswith("nfs-shared:backup/") for v in backups)

    (pool,) = p.pools.get()
    members = p.pools(pool["poolid"]).get()["members"]
    assert {m["type"] for m in members} == {"qemu", "lxc"}
    with pytest.raises(ResourceException) as err:
        p.pools("nope").get()
    assert err.value.status_code == 500

    ifaces = {i["iface"]: i for i in p.nodes("pve1").network.get()}
    assert ifaces["vmbr0"]["type"] == "bridge" and ifaces["vmbr0"]["bridge_ports"] == "eno1"
    nextid = p.cluster.nextid.get()
    assert isinstance(nextid, str) and int(nextid) >= 100  # a string, as PVE answers
    with pytest.raises(ResourceException) as err:
        p.cluster.nextid.get(vmid=LXC_VMID)
    assert err.value.status_code == 400

    vmid = vmid_of(lab, "vb0")
    pending = {e["key"]: e["value"] for e in
               p.nodes(running_node(lab, "vb0")).qemu(vmid).pending.get()}
    assert pending["name"] == "vb0"
    assert {"subdir": "current"} in p.nodes(running_node(lab, "vb0")).qemu(vmid).status.get()
    assert {"subdir": "snapshot"} in p.nodes(running_node(lab, "vb0")).qemu(vmid).get()
    assert {"subdir": "start"} in p.nodes("pve2").lxc(LXC_VMID).status.get()
    assert {"subdir": "content"} in p.nodes("pve1").storage("local").get()
    assert {"name": "lxc"} in p.nodes("pve1").get()
    status = p.nodes("pve1").storage("local-lvm").status.get()
    assert status["type"] == "lvmthin" and status["enabled"] == 1
    # the demo's snapshot on the first VM: its config and index (…/snapshot/{snapname})
    first = min(v.vmid for v in lab.world.vms.values() if not v.template)
    first_node = lab.world.vms[first].node
    snap = p.nodes(first_node).qemu(first).snapshot("pre-upgrade")
    assert {"subdir": "rollback"} in snap.get()
    assert snap.config.get()["description"] == "before the Nomad 1.8 upgrade"


def test_read_only_token_sees_what_pve_audit_allows(lab: Lab) -> None:
    """PVEAuditor: reads pass; snapshots and migrate need VM.Snapshot / VM.Migrate (403)."""
    user, _, name = lab.secrets.proxmox_read_token_id.partition("!")
    url = urlsplit(lab.urls["proxmox"])
    ro = proxmoxer.ProxmoxAPI(url.hostname, port=url.port, user=user, token_name=name,
                              token_value=lab.secrets.proxmox_read_token_value,
                              verify_ssl=str(lab.ca_cert), service="PVE", timeout=5)
    node, vmid = running_node(lab, "vs2"), vmid_of(lab, "vs2")
    assert ro.cluster.tasks.get()  # Sys.Audit: every task
    assert ro.nodes("pve1").storage("local").content.get()
    with pytest.raises(ResourceException) as err:
        ro.nodes(node).qemu(vmid).snapshot.post(snapname="nope")
    assert err.value.status_code == 403
    assert err.value.content == f"Permission check failed (/vms/{vmid}, VM.Snapshot)"
    with pytest.raises(ResourceException) as err:
        ro.nodes(node).qemu(vmid).migrate.post(target="pve1", online=1)
    assert err.value.content == f"Permission check failed (/vms/{vmid}, VM.Migrate)"


def test_a_bad_token_is_refused_as_pveproxy_does(lab: Lab) -> None:
    """pveproxy (PVE::APIServer::AnyEvent): 401, the auth error as the reason phrase, no body.
    proxmoxer raises ResourceException with that reason as `content`."""
    user = lab.secrets.proxmox_user
    with pytest.raises(ResourceException) as err:
        pve(lab, token_name=lab.secrets.proxmox_token_name, token_value="wrong").version.get()
    assert err.value.status_code == 401 and err.value.content == "invalid token value!"
    with pytest.raises(ResourceException) as err:
        pve(lab, token_name="ghost", token_value="x").nodes.get()
    assert err.value.content == f"no such token 'ghost' for user '{user}'"
    raw = requests.get(f"{lab.urls['proxmox']}/api2/json/nodes", verify=str(lab.ca_cert),
                       timeout=5)
    assert raw.status_code == 401 and raw.reason == "No ticket" and raw.content == b""
