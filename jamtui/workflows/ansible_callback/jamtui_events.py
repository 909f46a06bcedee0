"""Ansible stdout callback for jamtui: one JSON event per line, shaped like ansible-runner's
events (`{"event": ..., "event_data": {host, task, play, res, ...}}`), flushed as it happens,
so jamtui can follow a playbook while it runs (`jamtui.workflows.parsers.ansible_line`).

Results marked `no_log` are censored the way Ansible's own output censors them: nothing of
their result is printed. Enabled with

    ANSIBLE_CALLBACK_PLUGINS=<this directory> ANSIBLE_STDOUT_CALLBACK=jamtui_events

This file is loaded by Ansible, not imported by jamtui: it only needs ansible-core.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: jamtui_events
    type: stdout
    short_description: JSON lines of ansible-runner-shaped events, for jamtui
    description:
      - One JSON object per line on stdout for the playbook, each play, task, host result
        and the recap, shaped like ansible-runner's events.
      - Results of tasks with no_log are replaced by a censored notice.
    requirements:
      - set as stdout callback in configuration
"""

# the result keys an event carries (the rest, facts and module internals, stay out)
KEEP = ("changed", "failed", "skipped", "unreachable", "msg", "rc", "stdout", "stderr",
        "module_stdout", "module_stderr", "skip_reason", "attempts")
ITEM_KEEP = ("changed", "failed", "skipped", "msg", "rc", "stderr")
CENSORED = ("the output has been hidden due to the fact that 'no_log: true' was specified "
            "for this result")
STATS = (("ok", "ok"), ("changed", "changed"), ("failures", "failures"),
         ("dark", "unreachable"), ("skipped", "skipped"), ("ignored", "ignored"),
         ("rescued", "rescued"))


def _no_log(result: dict[str, Any]) -> bool:
    return bool(result.get("_ansible_no_log"))


def _censored(result: dict[str, Any]) -> dict[str, Any]:
    return {"censored": CENSORED, "msg": CENSORED, "changed": bool(result.get("changed"))}


def _item_label(item: dict[str, Any]) -> str:
    label = item.get("_ansible_item_label", item.get("item", ""))
    return label if isinstance(label, str) else json.dumps(label, default=str)


def clean_result(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe part of a task's result that an event carries; a no_log result (or
    loop item) reduced to the censored notice."""
    if _no_log(result):
        return _censored(result)
    res = {k: result[k] for k in KEEP if k in result}
    items = result.get("results")
    if isinstance(items, list) and items and all(isinstance(i, dict) for i in items):
        res["results"] = [
            {"item": "(censored)", **_censored(i)} if _no_log(i)
            else {"item": _item_label(i), **{k: i[k] for k in ITEM_KEEP if k in i}}
            for i in items]
        failed = next((i for i in res["results"] if i.get("failed")), None)
        if failed is not None:
            # "One or more items failed" says little: name the item and its error
            why = failed.get("msg") or failed.get("stderr") or ""
            res["msg"] = f"{res.get('msg') or 'an item failed'}: {failed['item']}: {why}"
    return res


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "jamtui_events"

    def __init__(self) -> None:
        super().__init__()
        self._play = ""

    # -- output ---------------------------------------------------------------------------

    def _emit(self, event: str, **data: Any) -> None:
        line = json.dumps({"event": event, "event_data": data}, default=str)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def _result(self, event: str, result: Any, **extra: Any) -> None:
        task = getattr(result, "_task", None)
        host = getattr(result, "_host", None)
        raw = getattr(result, "_result", None) or {}
        self._emit(event, host=host.get_name() if host else "",
                   task=task.get_name().strip() if task else "", play=self._play,
                   res=clean_result(dict(raw)), **extra)

    # -- the playbook ---------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._emit("playbook_on_start", playbook=str(getattr(playbook, "_file_name", "")))

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._play = play.get_name().strip()
        self._emit("playbook_on_play_start", play=self._play, name=self._play)

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._emit("playbook_on_task_start", task=task.get_name().strip(), play=self._play)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._emit("playbook_on_task_start", task=task.get_name().strip(), play=self._play,
                   handler=True)

    def v2_playbook_on_no_hosts_matched(self) -> None:
        self._emit("playbook_on_no_hosts_matched", play=self._play)

    def v2_playbook_on_no_hosts_remaining(self) -> None:
        self._emit("playbook_on_no_hosts_remaining", play=self._play)

    # -- per host ---------------------------------------------------------------------------

    def v2_runner_on_ok(self, result: Any) -> None:
        self._result("runner_on_ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._result("runner_on_failed", result, ignore_errors=bool(ignore_errors))

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._result("runner_on_skipped", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._result("runner_on_unreachable", result)

    def v2_runner_retry(self, result: Any) -> None:
        raw = getattr(result, "_result", None) or {}
        self._result("runner_retry", result, attempts=raw.get("attempts"),
                     retries=raw.get("retries"))

    # -- the recap --------------------------------------------------------------------------

    def v2_playbook_on_stats(self, stats: Any) -> None:
        out: dict[str, dict[str, int]] = {name: {} for name, _ in STATS}
        for host in sorted(stats.processed):
            summary = stats.summarize(host)
            for name, key in STATS:
                if summary.get(key):
                    out[name][host] = summary[key]
        self._emit("playbook_on_stats", **out)
