"""Stand-ins for `terraform`, `packer` and `ansible-playbook`, for the demo lab only.

They speak the real tools' machine-readable output (Terraform's `-json` lines, Packer's
`-machine-readable` lines, Ansible events as the jamtui_events callback prints them) and act
on the lab the way the real ones act on a real lab: Terraform and Packer through the Proxmox
API (clone, configure, start, stop, delete; create, convert to template), Ansible through the
lab's control endpoint (what it would do to the host over SSH). jamtui runs them exactly as it
runs the real tools. Run as `python -m jamtui.sim.tools TOOL ARGS...`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests

from ..inventory import load_inventory

TF_VERSION = "1.9.8"
TEMPLATE = "debian-12-cloudinit"


def out(obj: Any) -> None:
    sys.stdout.write((obj if isinstance(obj, str) else json.dumps(obj)) + "\n")
    sys.stdout.flush()


# -- Proxmox API ------------------------------------------------------------------------------


class Proxmox:
    def __init__(self, url_var: str, id_var: str, secret_var: str) -> None:
        self.url = os.environ.get(url_var, "").rstrip("/")
        if not self.url:
            raise RuntimeError(f"{url_var} is not set")
        token = f"{os.environ.get(id_var, '')}={os.environ.get(secret_var, '')}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"PVEAPIToken={token}"
        self.verify = os.environ.get("SSL_CERT_FILE") or True

    def call(self, method: str, path: str, **data: Any) -> Any:
        resp = self.session.request(method, f"{self.url}/{path}", data=data or None, timeout=30,
                                    verify=self.verify)
        if not resp.ok:
            raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.reason}")
        return resp.json().get("data")

    def vms(self) -> list[dict[str, Any]]:
        return [r for r in self.call("GET", "cluster/resources", type="vm") or []
                if r.get("type") == "qemu"]

    def wait(self, node: str, upid: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.call("GET", f"nodes/{node}/tasks/{upid}/status")
            if status.get("status") == "stopped":
                if status.get("exitstatus") != "OK":
                    raise RuntimeError(f"task {upid}: {status.get('exitstatus')}")
                return
            time.sleep(0.3)
        raise RuntimeError(f"task {upid} did not finish in {timeout:g} s")


# -- terraform --------------------------------------------------------------------------------


def _tf(level: str, message: str, type_: str, **fields: Any) -> None:
    out({"@level": level, "@message": message, "@module": "terraform.ui",
         "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
         "type": type_, **fields})


def _tf_resource(name: str) -> dict[str, Any]:
    addr = f'proxmox_vm_qemu.node["{name}"]'
    return {"addr": addr, "module": "", "resource": addr, "implied_provider": "proxmox",
            "resource_type": "proxmox_vm_qemu", "resource_name": "node", "resource_key": name}


def _tf_error(summary: str, detail: str = "", address: str = "") -> int:
    _tf("error", f"Error: {summary}", "diagnostic",
        diagnostic={"severity": "error", "summary": summary, "detail": detail,
                    **({"address": address} if address else {})})
    return 1


def _target(args: list[str]) -> str | None:
    for a in args:
        if a.startswith("-target="):
            return a.split('["', 1)[1].rstrip('"]') if '["' in a else None
    return None


def terraform(args: list[str]) -> int:
    if not args:
        print("Usage: terraform [global options] <subcommand> [args]")
        return 1
    cmd, rest = args[0], args[1:]
    if cmd == "init":
        print("Initializing provider plugins...\n\nTerraform has been successfully initialized!")
        return 0
    if cmd == "version":
        print(f"Terraform v{TF_VERSION}")
        return 0
    _tf("info", f"Terraform {TF_VERSION}", "version", terraform=TF_VERSION, ui="1.2")
    try:
        pve = Proxmox("PM_API_URL", "PM_API_TOKEN_ID", "PM_API_TOKEN_SECRET")
        if cmd == "plan":
            return _tf_plan(pve, rest)
        if cmd == "apply":
            return _tf_apply(pve, rest)
    except (RuntimeError, requests.RequestException) as exc:
        return _tf_error("proxmox API call failed", str(exc))
    return _tf_error(f"stand-in terraform does not do {cmd!r}")


def _tf_plan(pve: Proxmox, args: list[str]) -> int:
    name = _target(args)
    planfile = next((a.split("=", 1)[1] for a in args if a.startswith("-out=")), "")
    if not name or not planfile:
        return _tf_error("the stand-in plans one -target=proxmox_vm_qemu.node[\"NAME\"] "
                         "with -out=FILE")
    inv = load_inventory(Path.cwd().parent / "ansible" / "inventory.yml")
    host = inv.host(name)
    existing = next((v for v in pve.vms() if v.get("name") == name and not v.get("template")),
                    None)
    changes: list[dict[str, Any]] = []
    if "-destroy" in args:
        if existing:
            changes.append({"action": "delete", "name": name, "node": existing["node"],
                            "vmid": existing["vmid"]})
    elif not existing:
        if host is None:
            return _tf_error("Invalid index",
                             f'The given key does not identify an element in this collection '
                             f'value: local.nodes has no "{name}".')
        changes.append({"action": "create", "name": name, **{
            k: host.vars.get(k) for k in ("ansible_host", "vmid", "cores", "memory", "disk",
                                          "hypervisor")}})
    for ch in changes:
        verb = "create" if ch["action"] == "create" else "delete"
        _tf("info", f'proxmox_vm_qemu.node["{name}"]: Plan to {verb}', "planned_change",
            change={"resource": _tf_resource(name), "action": ch["action"]})
    add = sum(c["action"] == "create" for c in changes)
    remove = len(changes) - add
    _tf("info", f"Plan: {add} to add, 0 to change, {remove} to destroy." if changes
        else "No changes. Your infrastructure matches the configuration.", "change_summary",
        changes={"add": add, "change": 0, "import": 0, "remove": remove, "operation": "plan"})
    Path(planfile).write_text(json.dumps({"changes": changes}))
    return 0


def _tf_apply(pve: Proxmox, args: list[str]) -> int:
    planfile = next((a for a in args if not a.startswith("-")), "")
    try:
        changes = json.loads(Path(planfile).read_text())["changes"]
    except (OSError, ValueError, KeyError):
        return _tf_error("Failed to load the given plan file", f"{planfile} is not a plan")
    added = removed = 0
    for ch in changes:
        name = ch["name"]
        res = _tf_resource(name)
        start = time.monotonic()
        if ch["action"] == "create":
            _tf("info", f"{res['addr']}: Creating...", "apply_start",
                hook={"resource": res, "action": "create"})
            try:
                id_value = _create(pve, ch, res, start)
            except RuntimeError as exc:
                _tf("error", f"{res['addr']}: Creation errored after "
                    f"{int(time.monotonic() - start)}s", "apply_errored",
                    hook={"resource": res, "action": "create",
                          "elapsed_seconds": int(time.monotonic() - start)})
                return _tf_error("error creating VM", str(exc), res["addr"])
            added += 1
            secs = int(time.monotonic() - start)
            _tf("info", f"{res['addr']}: Creation complete after {secs}s [id={id_value}]",
                "apply_complete", hook={"resource": res, "action": "create", "id_key": "id",
                                        "id_value": id_value, "elapsed_seconds": secs})
        else:
            _tf("info", f"{res['addr']}: Destroying... [id={ch['node']}/qemu/{ch['vmid']}]",
                "apply_start", hook={"resource": res, "action": "delete"})
            try:
                node, vmid = ch["node"], ch["vmid"]
                # as the Proxmox provider does: stop only a VM that runs (Proxmox refuses to
                # stop a stopped one), then destroy it
                status = pve.call("GET", f"nodes/{node}/qemu/{vmid}/status/current") or {}
                if status.get("status") != "stopped":
                    pve.wait(node, pve.call("POST", f"nodes/{node}/qemu/{vmid}/status/stop"))
                pve.wait(node, pve.call("DELETE", f"nodes/{node}/qemu/{vmid}"))
            except RuntimeError as exc:
                return _tf_error("error deleting VM", str(exc), res["addr"])
            removed += 1
            secs = int(time.monotonic() - start)
            _tf("info", f"{res['addr']}: Destruction complete after {secs}s",
                "apply_complete", hook={"resource": res, "action": "delete",
                                        "elapsed_seconds": secs})
    _tf("info", f"Apply complete! Resources: {added} added, 0 changed, {removed} destroyed.",
        "change_summary", changes={"add": added, "change": 0, "import": 0, "remove": removed,
                                   "operation": "apply"})
    return 0


def _create(pve: Proxmox, ch: dict[str, Any], res: dict[str, Any], start: float) -> str:
    template_name = os.environ.get("TF_VAR_template_name", TEMPLATE)  # noqa: SIM112
    template = next((v for v in pve.vms() if v.get("template") and
                     v.get("name") == template_name), None)
    if template is None:
        raise RuntimeError(f"unable to find a template named {template_name!r}")
    node, vmid, target = template["node"], ch["vmid"], ch["hypervisor"]
    upid = pve.call("POST", f"nodes/{node}/qemu/{template['vmid']}/clone", newid=vmid,
                    name=ch["name"], target=target, full=1)
    _tf("info", f"{res['addr']}: Still creating... [0s elapsed]", "apply_progress",
        hook={"resource": res, "action": "create", "elapsed_seconds": 0})
    pve.wait(node, upid)
    pve.call("POST", f"nodes/{target}/qemu/{vmid}/config", cores=ch["cores"],
             memory=ch["memory"], tags=ch["name"].rstrip("0123456789"),
             ipconfig0=f"ip={ch['ansible_host']}/24")
    pve.wait(target, pve.call("POST", f"nodes/{target}/qemu/{vmid}/status/start"))
    secs = int(time.monotonic() - start)
    _tf("info", f"{res['addr']}: Still creating... [{secs}s elapsed]", "apply_progress",
        hook={"resource": res, "action": "create", "elapsed_seconds": secs})
    return f"{target}/qemu/{vmid}"


# -- packer -----------------------------------------------------------------------------------


def _pk(target: str, type_: str, *data: str) -> None:
    esc = [d.replace(",", "%!(PACKER_COMMA)").replace("\n", "\\n") for d in data]
    out(",".join([str(int(time.time())), target, type_, *esc]))


def packer(args: list[str]) -> int:
    if not args or args[0] != "build":
        print("Usage: packer [--version] [--help] <command> [<args>]")
        return 1
    values = dict(a.split("=", 1) for a in
                  (args[i + 1] for i, x in enumerate(args[:-1]) if x == "-var") if "=" in a)
    build = "proxmox.debian"
    _pk("", "ui", "say", f"{build}: output will be in this color.")
    try:
        pve = Proxmox("PROXMOX_URL", "PROXMOX_USERNAME", "PROXMOX_TOKEN")
        node = values.get("proxmox_node", "pve1")
        name = values.get("template_name", TEMPLATE)
        vmid = int(values.get("template_vmid", "9000"))
        _pk(build, "ui", "say", f"==> {build}: Creating VM")
        pve.wait(node, pve.call("POST", f"nodes/{node}/qemu", vmid=vmid, name=name, cores=2,
                                memory=2048))
        _pk(build, "ui", "say", f"==> {build}: Provisioning with shell script: "
            "cloud-init clean, machine-id truncated")
        _pk(build, "ui", "say", f"==> {build}: Converting VM to template")
        pve.wait(node, pve.call("POST", f"nodes/{node}/qemu/{vmid}/template"))
    except (RuntimeError, requests.RequestException) as exc:
        _pk(build, "ui", "error", f"Build '{build}' errored after 0 seconds: {exc}")
        _pk("", "error-count", "1")
        return 1
    _pk(build, "artifact-count", "1")
    _pk(build, "artifact", "0", "id", str(vmid))
    _pk(build, "artifact", "0", "string", f"A template was created: {vmid}")
    _pk("", "ui", "say", f"Build '{build}' finished.")
    return 0


# -- ansible-playbook ---------------------------------------------------------------------------


ROLES = {"vb": ["common", "consul", "nomad", "docker"],
         "vs": ["common", "consul", "nomad", "fabio", "nfs_client", "docker"],
         "dns": ["common", "dns"], "bastion": ["common", "haproxy"]}


def _ev(event: str, **data: Any) -> None:
    out({"event": event, "event_data": data})


def ansible_playbook(args: list[str]) -> int:
    inventory = args[args.index("-i") + 1] if "-i" in args else ""
    limit = args[args.index("--limit") + 1].split(",") if "--limit" in args else []
    playbook = next((a for a in args if a.endswith((".yml", ".yaml")) and a != inventory), "")
    control = os.environ["JAMLAB_CONTROL"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {os.environ['JAMLAB_CONTROL_TOKEN']}"
    inv = load_inventory(inventory)
    hosts = [h for h in inv.hosts if not limit or h.name in limit]
    _ev("playbook_on_start", playbook=playbook)
    stats: dict[str, dict[str, int]] = {k: {} for k in ("ok", "changed", "failures", "dark",
                                                        "skipped")}
    for group, roles in ROLES.items():
        members = [h for h in hosts if group in h.groups]
        if not members:
            continue
        _ev("playbook_on_play_start", play=group, name=group)
        for role in roles:
            task = f"{role} : configure"
            live = [h for h in members if h.name not in stats["dark"]]
            if not live:
                break
            _ev("playbook_on_task_start", task=task, play=group)
            for h in live:
                error = ""
                if role == "consul" and group in ("vb", "vs"):
                    error = session.post(f"{control}/v1/provision", json={"host": h.name},
                                         timeout=10).json().get("error", "")
                if role == "dns":
                    error = session.post(f"{control}/v1/dns", json={"inventory": inventory},
                                         timeout=10).json().get("error", "")
                if error.startswith("Failed to connect"):
                    stats["dark"][h.name] = 1
                    _ev("runner_on_unreachable", host=h.name, task=task, play=group,
                        res={"msg": error, "unreachable": True, "changed": False})
                elif error:
                    stats["failures"][h.name] = 1
                    _ev("runner_on_failed", host=h.name, task=task, play=group,
                        res={"msg": error, "changed": False}, ignore_errors=False)
                else:
                    stats["ok"][h.name] = stats["ok"].get(h.name, 0) + 1
                    stats["changed"][h.name] = stats["changed"].get(h.name, 0) + 1
                    _ev("runner_on_ok", host=h.name, task=task, play=group,
                        res={"changed": True})
                time.sleep(0.05)
    _ev("playbook_on_stats", **stats)
    return 4 if stats["dark"] else 2 if stats["failures"] else 0


def _interrupted(tool: str, args: list[str]) -> int:
    """What the real tools say and how they end on SIGINT (Ctrl-C): Terraform's JSON view logs
    its interrupt notice and the cancellation and exits 1; Packer cancels the build and exits
    1; ansible-playbook says "User interrupted execution" and exits 99. No traceback."""
    if tool == "terraform":
        _tf("info", "\nInterrupt received.\nPlease wait for Terraform to exit or data loss "
            "may occur.\nGracefully shutting down...\n", "log")
        _tf("info", "Stopping operation...", "log")
        if args[:1] == ["apply"]:
            _tf("info", "Apply cancelled", "log")
        return 1
    if tool == "packer":
        _pk("proxmox.debian", "ui", "error", "Build 'proxmox.debian' errored after 0 seconds: "
            "build was cancelled")
        _pk("", "error-count", "1")
        return 1
    print("[ERROR]: User interrupted execution", file=sys.stderr)
    return 99


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    tools = {"terraform": terraform, "packer": packer, "ansible-playbook": ansible_playbook}
    if not argv or argv[0] not in tools:
        print(f"usage: python -m jamtui.sim.tools {{{','.join(tools)}}} ARGS", file=sys.stderr)
        return 2
    try:
        return tools[argv[0]](argv[1:])
    except KeyboardInterrupt:
        try:
            return _interrupted(argv[0], argv[1:])
        except (KeyboardInterrupt, OSError):
            return 1


if __name__ == "__main__":
    sys.exit(main())
