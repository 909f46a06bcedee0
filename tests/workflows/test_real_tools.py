"""The output parsers on the real tools' output: a real `ansible-playbook` (ansible-core from
PyPI) run on localhost with jamtui's JSON callback, and a real `packer build
-machine-readable` (Debian's package) of a null-builder template."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jamtui.workflows.node import ANSIBLE_CALLBACKS
from jamtui.workflows.parsers import ansible_line, packer_line
from jamtui.workflows.runner import StepFailed, run_tool

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent

PLAY = """\
- name: Small play
  hosts: localhost
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
    - name: Secret
      ansible.builtin.debug:
        msg: "hunter2"
      no_log: true
"""

FAILING = """\
- name: Failing play
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Read a file that is not there
      ansible.builtin.slurp:
        src: /nonexistent/jamtui-test
"""


def ansible(tmp_path: Path, play: str) -> tuple[int, list[str]]:
    (tmp_path / "play.yml").write_text(play)
    env = {**os.environ, "ANSIBLE_CALLBACK_PLUGINS": str(ANSIBLE_CALLBACKS),
           "ANSIBLE_STDOUT_CALLBACK": "jamtui_events", "ANSIBLE_LOCALHOST_WARNING": "0",
           "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
           "ANSIBLE_HOME": str(tmp_path / "home"), "ANSIBLE_NOCOLOR": "1"}
    out = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                          "-e", f"ansible_python_interpreter={sys.executable}", "play.yml"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout.splitlines()


def test_real_ansible_run_through_the_json_callback(tmp_path: Path) -> None:
    rc, lines = ansible(tmp_path, PLAY)
    assert rc == 0, lines
    events = [e for line in lines if (e := ansible_line(line)) is not None]
    assert not [e for e in events if e.kind == "message" and "ignored" not in e.message]
    by_msg = [e.message for e in events]
    assert "TASK Create a file" in by_msg and "changed: Create a file" in by_msg
    assert "skipped: Never runs" in by_msg
    ignored = next(e for e in events if e.message == "failed (ignored): Fails but ignored")
    # ignored: a warning, not a workflow error
    assert ignored.level == "warn" and not ignored.failed and ignored.resource == "localhost"
    assert "hunter2" not in "\n".join(lines)  # no_log results are censored
    summary = events[-1]
    assert summary.kind == "summary" and summary.data["changed"] == {"localhost": 1}
    assert (tmp_path / "out.txt").read_text() == "hello\n"


def test_real_ansible_failure_carries_ansibles_words(tmp_path: Path) -> None:
    rc, lines = ansible(tmp_path, FAILING)
    assert rc == 2
    events = [e for line in lines if (e := ansible_line(line)) is not None]
    failed = next(e for e in events if e.failed and e.resource == "localhost")
    assert failed.message.startswith("failed: Read a file that is not there: ")
    assert "/nonexistent/jamtui-test" in failed.message
    assert events[-1].failed and events[-1].message == "failed on localhost"


PACKER = """\
source "null" "demo" {
  communicator = "none"
}

build {
  sources = ["source.null.demo"]

  provisioner "shell-local" {
    inline = ["echo 'one, two, three'"%s]
  }
}
"""



def test_real_packer_build_machine_readable(tmp_path: Path, packer: str) -> None:
    (tmp_path / "demo.pkr.hcl").write_text(PACKER % "")
    lines: list[str] = []
    run = run_tool([packer, "build", "-machine-readable", "demo.pkr.hcl"], parse=packer_line,
                   cwd=tmp_path, env={"CHECKPOINT_DISABLE": "1", "PACKER_NO_COLOR": "1"},
                   on_line=lines.append)
    said = [e.message for e in run.events if e.kind == "progress"]
    assert any("one, two, three" in m for m in said), said  # the comma came back
    assert any("%!(PACKER_COMMA)" in line for line in lines)  # it was escaped on the wire
    assert any(e.kind == "artifact" for e in run.events) or any(
        "finished" in m for m in said)
    assert not any(e.failed for e in run.events)


def test_real_packer_failure_stops_with_packers_message(tmp_path: Path, packer: str) -> None:
    (tmp_path / "demo.pkr.hcl").write_text(PACKER % ', "exit 3"')
    with pytest.raises(StepFailed) as info:
        run_tool([packer, "build", "-machine-readable", "demo.pkr.hcl"], parse=packer_line,
                 cwd=tmp_path, env={"CHECKPOINT_DISABLE": "1"})
    assert "packer exited with 1" in str(info.value)
    assert "Script exited with non-zero exit status: 3" in str(info.value)
