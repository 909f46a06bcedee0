"""The tools' machine-readable output as events. Fixtures follow the tools' documentation:
Terraform's "Machine-readable UI" page (the JSON lines of plan/apply), Packer's
"-machine-readable" page (commas as %!(PACKER_COMMA), newlines as a literal \\n), and
ansible-runner's event dicts. (Runs of the real tools come with the workflow runner.)"""

from __future__ import annotations

from pathlib import Path

from jamtui.workflows.parsers import ansible_event, packer_fields, packer_line, terraform_line

TOOLS = Path(__file__).parent.parent / "fixtures" / "tools"


def events(name: str, parse: object) -> list:
    return [e for line in (TOOLS / name).read_text().splitlines()
            if (e := parse(line)) is not None]  # type: ignore[operator]


def test_terraform_apply_progress_summary_and_outputs() -> None:
    evs = events("terraform-apply.jsonl", terraform_line)
    address = 'proxmox_vm_qemu.node["vs3"]'
    planned = [e for e in evs if e.data.get("action") == "create" and e.kind == "message"]
    assert planned and planned[0].resource == address
    summary = [e for e in evs if e.kind == "summary"]
    assert summary[0].data == {"add": 1, "change": 0, "remove": 0, "operation": "apply"}
    done = next(e for e in evs if e.kind == "done")
    assert done.resource == address and done.data["elapsed"] == 14
    assert done.data["id"] == "pve1/qemu/303"
    assert next(e for e in evs if e.kind == "artifact").data == {"ips": {"vs3": "192.168.42.33"}}
    assert not any(e.failed for e in evs)


def test_terraform_errors_carry_the_tools_words_and_place() -> None:
    diag, errored = events("terraform-error.jsonl", terraform_line)
    assert diag.failed and diag.message.startswith("Invalid reference: A reference")
    assert diag.resource == "main.tf:12"
    assert errored.failed and errored.resource == 'proxmox_vm_qemu.node["vs3"]'
    assert terraform_line("panic: runtime error").level == "warn"  # raw text kept
    assert terraform_line("") is None


def test_packer_machine_readable() -> None:
    evs = events("packer.txt", packer_line)
    assert evs[0].message == "==> proxmox-clone.debian: Creating VM"
    assert "cloud-init, qemu-guest-agent\n    installed" in evs[1].message
    artifact = [e for e in evs if e.kind == "artifact"]
    assert artifact[1].data == {"index": "0", "field": "id", "value": "9000"}
    error = next(e for e in evs if e.kind == "error" and "errored" in e.message)
    assert "501 Method 'POST /nodes/pve1/qemu' not implemented" in error.message
    assert evs[-1].failed and evs[-1].data == {"errors": 1}
    assert packer_fields("1,t,ui,say,a%!(PACKER_COMMA)b") == ["1", "t", "ui", "say", "a,b"]


def test_ansible_runner_events() -> None:
    start = ansible_event({"event": "playbook_on_task_start",
                           "event_data": {"task": "Install Nomad"}})
    assert start is not None and start.message == "TASK Install Nomad"
    ok = ansible_event({"event": "runner_on_ok", "event_data": {
        "host": "vs3", "task": "Install Nomad", "res": {"changed": True}}})
    assert ok is not None and ok.message == "changed: Install Nomad" and ok.resource == "vs3"
    failed = ansible_event({"event": "runner_on_failed", "event_data": {
        "host": "vs3", "task": "Start Nomad", "res": {"msg": "Unable to start service nomad"}}})
    assert failed is not None and failed.failed
    assert "Unable to start service nomad" in failed.message
    unreachable = ansible_event({"event": "runner_on_unreachable", "event_data": {
        "host": "vs3", "task": "Gathering Facts", "res": {"msg": "ssh: connect refused"}}})
    assert unreachable is not None and unreachable.message.startswith("unreachable")
    recap = ansible_event({"event": "playbook_on_stats", "event_data": {
        "ok": {"vs3": 12}, "changed": {"vs3": 4}, "failures": {}, "dark": {"vs2": 1},
        "skipped": {}}})
    assert recap is not None and recap.failed and recap.message == "failed on vs2"
    assert ansible_event({"event": "verbose", "event_data": {}}) is None
