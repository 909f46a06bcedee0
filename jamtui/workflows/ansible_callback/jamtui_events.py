"""Ansible stdout callback for jamtui: one JSON event per line, shaped like ansible-runner's
events (`event`, `event_data` with `host`, `task`, `play`, `res`), so jamtui can follow a
playbook as it runs. Results marked no_log are censored, as Ansible's own output does.

Used by jamtui with ANSIBLE_CALLBACK_PLUGINS=<this dir> ANSIBLE_STDOUT_CALLBACK=jamtui_events.
"""

from __future__ import annotations

import json
import sys

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: jamtui_events
    type: stdout
    short_description: JSON lines of ansible-runner-shaped events, for jamtui
    description:
      - One JSON object per line on stdout for each play, task, result and the recap.
"""

KEEP = ("changed", "failed", "skipped", "unreachable", "msg", "rc", "stderr", "stdout",
        "module_stderr", "module_stdout", "censored")
CENSORED = "the output has been hidden due to the fact that 'no_log: true' was specified " \
           "for this result"


def _safe(value: object) -> object:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "jamtui_events"

    def __init__(self) -> None:
        super().__init__()
        self._play = ""

    def _emit(self, event: str, **data: object) -> None:
        sys.stdout.write(json.dumps({"event": event, "event_data": data}) + "\n")
        sys.stdout.flush()

    def _res(self, result: object) -> dict[str, object]:
        raw = dict(getattr(result, "_result", {}) or {})
        if raw.get("_ansible_no_log"):
            return {"censored": CENSORED, "changed": bool(raw.get("changed"))}
        return {k: _safe(raw[k]) for k in KEEP if k in raw}

    def _result(self, event: str, result: object, **extra: object) -> None:
        task = getattr(result, "_task", None)
        host = getattr(result, "_host", None)
        self._emit(event, host=host.get_name() if host else "",
                   task=task.get_name() if task else "", play=self._play,
                   res=self._res(result), **extra)

    # -- the playbook ---------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook: object) -> None:
        self._emit("playbook_on_start", playbook=str(getattr(playbook, "_file_name", "")))

    def v2_playbook_on_play_start(self, play: object) -> None:
        self._play = play.get_name().strip()  # type: ignore[attr-defined]
        self._emit("playbook_on_play_start", play=self._play, name=self._play)

    def v2_playbook_on_task_start(self, task: object, is_conditional: bool) -> None:
        self._emit("playbook_on_task_start", task=task.get_name(),  # type: ignore[attr-defined]
                   play=self._play)

    def v2_playbook_on_handler_task_start(self, task: object) -> None:
        self._emit("playbook_on_task_start", task=task.get_name(),  # type: ignore[attr-defined]
                   play=self._play, handler=True)

    def v2_runner_on_ok(self, result: object) -> None:
        self._result("runner_on_ok", result)

    def v2_runner_on_failed(self, result: object, ignore_errors: bool = False) -> None:
        self._result("runner_on_failed", result, ignore_errors=bool(ignore_errors))

    def v2_runner_on_skipped(self, result: object) -> None:
        self._result("runner_on_skipped", result)

    def v2_runner_on_unreachable(self, result: object) -> None:
        self._result("runner_on_unreachable", result)

    def v2_playbook_on_stats(self, stats: object) -> None:
        hosts = sorted(stats.processed.keys())  # type: ignore[attr-defined]
        out = {name: {} for name in ("ok", "changed", "failures", "dark", "skipped")}
        for h in hosts:
            summary = stats.summarize(h)  # type: ignore[attr-defined]
            for name, key in (("ok", "ok"), ("changed", "changed"), ("failures", "failures"),
                              ("dark", "unreachable"), ("skipped", "skipped")):
                if summary.get(key):
                    out[name][h] = summary[key]
        self._emit("playbook_on_stats", **out)
