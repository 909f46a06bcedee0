"""The provisioning tools' machine-readable output, one line at a time, as plain events.

- Terraform `-json`: one JSON object a line (`@level`, `@message`, `type`, and per type
  `hook`, `change`, `changes`, `diagnostic`, `outputs`), per the "Machine-readable UI" page.
- Packer `-machine-readable`: `timestamp,target,type,data...`; commas inside data are
  `%!(PACKER_COMMA)` and newlines a literal `\\n`.
- Ansible: ansible-runner's event dicts (`event`, `event_data` with host, task, res).

Pure functions: the workflow runner feeds lines in and renders the events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    tool: str  # terraform | packer | ansible
    kind: str  # progress | done | error | message | summary | artifact
    message: str
    resource: str = ""  # terraform resource address, packer build, ansible host
    level: str = "info"  # info | warn | error
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.level == "error"


# -- Terraform ------------------------------------------------------------------------------

_TF_PROGRESS = {"apply_start": "started", "apply_progress": "still working",
                "apply_complete": "done", "apply_errored": "failed",
                "refresh_start": "refreshing", "refresh_complete": "refreshed"}


def json_object(tool: str, line: str) -> dict[str, Any] | Event | None:
    """A JSON-lines tool's line as its object; None when blank; anything else (a crash, a
    provider's panic, a warning printed before the JSON starts) kept as words."""
    line = line.strip()
    if not line:
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return Event(tool, "message", line, level="warn")
    return obj if isinstance(obj, dict) else Event(tool, "message", line, level="warn")


def terraform_line(line: str) -> Event | None:
    """One line of `terraform plan|apply|destroy -json`; None for blank lines."""
    obj = json_object("terraform", line)
    if not isinstance(obj, dict):
        return obj
    kind = obj.get("type", "")
    level = obj.get("@level", "info")
    message = obj.get("@message", "")
    if kind in _TF_PROGRESS:
        hook = obj.get("hook") or {}
        address = (hook.get("resource") or {}).get("addr", "")
        failed = kind == "apply_errored"
        return Event("terraform", "error" if failed else
                     ("done" if kind in ("apply_complete", "refresh_complete") else "progress"),
                     message, address, "error" if failed else level,
                     {"action": hook.get("action", ""),
                      "elapsed": hook.get("elapsed_seconds"),
                      "id": hook.get("id_value", "")})
    if kind == "planned_change":
        change = obj.get("change") or {}
        address = (change.get("resource") or {}).get("addr", "")
        return Event("terraform", "message", message, address, level,
                     {"action": change.get("action", "")})
    if kind == "change_summary":
        changes = obj.get("changes") or {}
        return Event("terraform", "summary", message, level=level,
                     data={k: changes.get(k, 0) for k in ("add", "change", "remove")}
                     | {"operation": changes.get("operation", "")})
    if kind == "diagnostic":
        diag = obj.get("diagnostic") or {}
        where = diag.get("range") or {}
        place = f"{where.get('filename')}:{(where.get('start') or {}).get('line')}" \
            if where.get("filename") else ""
        text = diag.get("summary", message)
        if diag.get("detail"):
            text += f": {diag['detail']}"
        severity = diag.get("severity", level)
        return Event("terraform", "error" if severity == "error" else "message", text,
                     diag.get("address", "") or place,
                     "error" if severity == "error" else "warn")
    if kind == "outputs":
        outputs = {k: (v or {}).get("value") for k, v in (obj.get("outputs") or {}).items()}
        return Event("terraform", "artifact", message, data=outputs)
    return Event("terraform", "message", message, level=level)


# -- Packer ---------------------------------------------------------------------------------


def packer_fields(line: str) -> list[str]:
    """Split one machine-readable line; unescape commas and newlines in the data."""
    parts = line.rstrip("\n").split(",")
    return [p.replace("%!(PACKER_COMMA)", ",").replace("\\n", "\n") for p in parts]


def packer_line(line: str) -> Event | None:
    if not line.strip():
        return None
    parts = packer_fields(line)
    if len(parts) < 3 or not parts[0].isdigit():
        return Event("packer", "message", line.strip(), level="warn")
    _, target, kind, *data = parts
    if kind == "ui":
        level = data[0] if data else "say"
        text = ",".join(data[1:]).strip()
        if level == "error":
            return Event("packer", "error", text, target, "error")
        return Event("packer", "progress", text, target)
    if kind == "artifact":
        return Event("packer", "artifact", ",".join(data[1:]), target,
                     data={"index": data[0] if data else "", "field": data[1] if len(data) > 1
                           else "", "value": ",".join(data[2:])})
    if kind == "error-count":
        count = int(data[0]) if data and data[0].isdigit() else 0
        return Event("packer", "error" if count else "done",
                     f"{count} build(s) errored" if count else "builds finished", target,
                     "error" if count else "info", {"errors": count})
    if kind == "error":
        return Event("packer", "error", ",".join(data), target, "error")
    return Event("packer", "message", ",".join(data), target, data={"type": kind})


# -- Ansible (ansible-runner events) ---------------------------------------------------------


def ansible_event(event: dict[str, Any]) -> Event | None:
    kind = event.get("event", "")
    data = event.get("event_data") or {}
    host = data.get("host") or data.get("remote_addr") or ""
    task = data.get("task", "")
    if kind == "playbook_on_task_start":
        return Event("ansible", "progress", f"TASK {task}", data={"task": task})
    if kind == "runner_on_ok":
        changed = bool((data.get("res") or {}).get("changed"))
        return Event("ansible", "progress", f"{'changed' if changed else 'ok'}: {task}", host,
                     data={"changed": changed, "task": task})
    if kind == "runner_on_skipped":
        return Event("ansible", "progress", f"skipped: {task}", host, data={"task": task})
    if kind in ("runner_on_failed", "runner_on_unreachable"):
        res = data.get("res") or {}
        if kind == "runner_on_failed" and data.get("ignore_errors"):
            return Event("ansible", "message", f"failed (ignored): {task}", host, "warn")
        why = res.get("msg") or res.get("stderr") or "no message"
        word = "unreachable" if kind == "runner_on_unreachable" else "failed"
        return Event("ansible", "error", f"{word}: {task}: {why}", host, "error",
                     {"task": task})
    if kind == "playbook_on_stats":
        stats = {name: {h: n for h, n in (data.get(name) or {}).items()}
                 for name in ("ok", "changed", "failures", "dark", "skipped")}
        bad = sorted(set(stats["failures"]) | set(stats["dark"]))
        return Event("ansible", "error" if bad else "summary",
                     f"failed on {', '.join(bad)}" if bad else "play recap: all hosts ok",
                     level="error" if bad else "info", data=stats)
    return None


def ansible_line(line: str) -> Event | None:
    """One line of `ansible-playbook` run with the jamtui_events stdout callback: one
    ansible-runner-shaped event as JSON."""
    obj = json_object("ansible", line)
    return ansible_event(obj) if isinstance(obj, dict) else obj
