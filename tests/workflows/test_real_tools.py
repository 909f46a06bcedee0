"""The output parsers on the real tools' output: a real `ansible-playbook` (ansible-core from
PyPI, the venv's) on localhost with jamtui's JSON stdout callback, and a real `packer build
-machine-readable` (Debian's packer) of a null-builder template. Offline, all in tmp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import jamtui.workflows
from jamtui.workflows.parsers import Event, ansible_line, packer_line

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
CALLBACKS = Path(jamtui.workflows.__file__).parent / "ansible_callback"


def test_the_callback_ships_as_a_plugin_directory() -> None:
    assert (CALLBACKS / "jamtui_events.py").is_file()
    assert not (CALLBACKS / "__init__.py").exists()  # a plugin dir, not a package
    text = (CALLBACKS / "jamtui_events.py").read_text()
    for line in ('CALLBACK_TYPE = "stdout"', 'CALLBACK_NAME = "jamtui_events"',
                 "CALLBACK_VERSION = 2.0"):
        assert line in text


# -- ansible-playbook -------------------------------------------------------------------------

PLAY = """\
- name: Small play
  hosts: all
  gather_facts: false
  tasks:
    - name: Create a file
      ansible.builtin.copy:
        content: "hello\\n"
        dest: "{{ playbook_dir }}/out.txt"
        mode: "0644"
    - name: Never runs
      ansible.builtin.debug:
        msg: skipped
      when: false
    - name: Fails but ignored
      ansible.builtin.command: /bin/false
      ignore_errors: true
      changed_when: false
    - name: Say hello
      ansible.builtin.debug:
        msg: "hello, world"
    - name: Secret
      ansible.builtin.debug:
        msg: "hunter2"
      no_log: true
"""

FAILING = """\
- name: Failing play
  hosts: all
  gather_facts: false
  tasks:
    - name: Read a file that is not there
      ansible.builtin.slurp:
        src: /nonexistent/jamtui-test
"""


def ansible(tmp_path: Path, play: str, inventory: str = "localhost,"
            ) -> tuple[int, list[str], str]:
    (tmp_path / "play.yml").write_text(play)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env |= {"ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
            "ANSIBLE_STDOUT_CALLBACK": "jamtui_events", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"), "ANSIBLE_HOME": str(tmp_path / "home"),
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOST_KEY_CHECKING": "0", "ANSIBLE_TIMEOUT": "5"}
    out = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", inventory, "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", "play.yml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout.splitlines(), out.stderr


def parsed(lines: list[str]) -> list[Event]:
    return [e for line in lines if (e := ansible_line(line)) is not None]


def test_real_ansible_run_through_the_json_callback(tmp_path: Path) -> None:
    rc, lines, err = ansible(tmp_path, PLAY)
    assert rc == 0, (lines, err)
    raw = [json.loads(line) for line in lines]  # every stdout line is one JSON event
    assert raw[0]["event"] == "playbook_on_start" and raw[1]["event"] == "playbook_on_play_start"
    assert raw[-1]["event"] == "playbook_on_stats"
    created = next(r["event_data"] for r in raw if r["event_data"].get("task") == "Create a file"
                   and r["event"] == "runner_on_ok")
    assert created["host"] == "localhost" and created["play"] == "Small play"
    assert created["res"]["changed"] is True

    events = parsed(lines)
    messages = [e.message for e in events]
    assert "TASK Create a file" in messages and "changed: Create a file" in messages
    assert "skipped: Never runs" in messages
    assert "ok: Say hello" in messages
    hello = next(r["event_data"]["res"] for r in raw
                 if r["event_data"].get("task") == "Say hello" and r["event"] == "runner_on_ok")
    assert hello["msg"] == "hello, world"
    # the ignored failure is a warning, not a workflow error
    ignored = next(e for e in events if e.message == "failed (ignored): Fails but ignored")
    assert ignored.level == "warn" and not ignored.failed and ignored.resource == "localhost"
    assert not any(e.failed for e in events)
    failed_raw = next(r["event_data"] for r in raw if r["event"] == "runner_on_failed")
    assert failed_raw["ignore_errors"] is True and failed_raw["res"]["rc"] == 1
    # no_log: the result is censored, the secret never printed
    assert "hunter2" not in "\n".join(lines)
    secret = next(r["event_data"]["res"] for r in raw if r["event_data"].get("task") == "Secret"
                  and r["event"] == "runner_on_ok")
    assert "censored" in secret
    # the recap
    summary = events[-1]
    assert summary.kind == "summary" and summary.message == "play recap: all hosts ok"
    assert summary.data["changed"] == {"localhost": 1}
    assert summary.data["skipped"] == {"localhost": 1}
    assert summary.data["failures"] == {} and summary.data["dark"] == {}
    assert summary.data["ok"]["localhost"] >= 3
    assert (tmp_path / "out.txt").read_text() == "hello\n"


def test_real_ansible_failure_carries_ansibles_words(tmp_path: Path) -> None:
    """A task failing on localhost, and a host that cannot be reached (nothing listens on
    port 1): errors with Ansible's own message, and a recap that fails."""
    (tmp_path / "hosts.ini").write_text(
        "localhost ansible_connection=local\n"
        "ghost ansible_host=127.0.0.1 ansible_port=1 ansible_connection=ssh ansible_user=nobody\n")
    rc, lines, err = ansible(tmp_path, FAILING, "hosts.ini")
    assert rc == 4, (lines, err)  # ansible-playbook: some host unreachable
    events = parsed(lines)
    assert not [e for e in events if e.kind == "message"]  # all JSON, nothing stray
    failed = next(e for e in events if e.failed and e.resource == "localhost")
    assert failed.message.startswith("failed: Read a file that is not there: ")
    assert "/nonexistent/jamtui-test" in failed.message  # slurp's own words
    dark = next(e for e in events if e.failed and e.resource == "ghost")
    assert dark.message.startswith("unreachable: Read a file that is not there: ")
    assert "Failed to connect to the host" in dark.message
    recap = events[-1]
    assert recap.failed and recap.message == "failed on ghost, localhost"
    assert recap.data["failures"] == {"localhost": 1} and recap.data["dark"] == {"ghost": 1}


# -- packer build -machine-readable -----------------------------------------------------------

TEMPLATE = """\
source "null" "demo" {
  communicator = "none"
}

build {
  sources = ["source.null.demo"]

  provisioner "shell-local" {
    inline = [%s]
  }
}
"""


def packer_build(packer: str, tmp_path: Path, *inline: str) -> tuple[int, list[str]]:
    (tmp_path / "demo.pkr.hcl").write_text(TEMPLATE % ", ".join(json.dumps(s) for s in inline))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACKER_")}
    env |= {"CHECKPOINT_DISABLE": "1", "PACKER_NO_COLOR": "1", "TMPDIR": str(tmp_path),
            "PACKER_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([packer, "build", "-machine-readable", "demo.pkr.hcl"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout.splitlines()


def test_real_packer_build_machine_readable(tmp_path: Path, packer: str) -> None:
    rc, lines = packer_build(packer, tmp_path, "echo 'one, two, three'")
    assert rc == 0, lines
    assert any("%!(PACKER_COMMA)" in line for line in lines)  # escaped on the wire
    events = [e for line in lines if (e := packer_line(line)) is not None]
    assert not [e for e in events if e.level == "warn"]  # every line was machine-readable
    said = [e.message for e in events if e.kind == "progress"]
    assert any(m.endswith("null.demo: one, two, three") for m in said), said  # unescaped
    assert any("Builds finished" in m for m in said)
    artifacts = {e.data["field"]: e.data["value"] for e in events if e.kind == "artifact"}
    assert artifacts["builder-id"] == "fnoeding.null" and artifacts["id"] == "Null"
    assert all(e.resource == "null.demo" for e in events if e.kind == "artifact")
    assert not any(e.failed for e in events)


def test_real_packer_failure_carries_packers_message(tmp_path: Path, packer: str) -> None:
    rc, lines = packer_build(packer, tmp_path, "echo 'about to fail, on purpose'", "exit 3")
    assert rc == 1, lines
    events = [e for line in lines if (e := packer_line(line)) is not None]
    assert any(e.message.endswith("about to fail, on purpose") for e in events)
    count = next(e for e in events if e.data.get("errors") is not None)
    assert count.failed and count.data["errors"] == 1 and count.message == "1 build(s) errored"
    error = next(e for e in events if e.kind == "error" and e.resource == "null.demo")
    assert "Script exited with non-zero exit status: 3" in error.message
    assert any(e.failed and e.message.startswith("Build 'null.demo' errored") for e in events)
