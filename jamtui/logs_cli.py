"""`jamtui logs ALLOC_OR_JOB`: a task's stdout/stderr for piping, one allocation or every
running allocation of a job merged (each line tagged with its allocation and task)."""

from __future__ import annotations

import queue
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from .config import Config
from .inventory import Inventory
from .pipes import INTERRUPTED, stdout_gone
from .plain import sgr_only
from .sources.base import BackendError, http_problem
from .sources.logs import LogFollower
from .sources.ssh import (
    HostKeyChanged,
    HostKeyUnknown,
    fingerprint,
    host_target,
    journal_command,
    open_host_tail,
    pool_for,
    tail_command,
)
from .sources.tls import TLSSettings


@dataclass(frozen=True)
class Target:
    alloc_id: str
    name: str  # job.group[i]
    task: str


def _get(cfg: Config, path: str, **params: str) -> Any:
    headers = cfg.nomad.auth_headers()
    tls = TLSSettings.of("nomad", cfg.nomad)
    with tls.session() as session:  # verify given per request: REQUESTS_CA_BUNDLE loses
        resp = session.get(f"{cfg.nomad.address.rstrip('/')}{path}", params=params,
                           headers=headers, timeout=10, verify=tls.verify)
    if resp.status_code != 200:
        raise BackendError(http_problem("nomad", cfg.nomad.address, resp.status_code,
                                        resp.text, "[nomad] token / NOMAD_TOKEN"))
    return resp.json()


def targets(cfg: Config, what: str, task: str | None) -> list[Target]:
    """An allocation (id or unique prefix), else a job's running allocations."""
    allocs = _get(cfg, "/v1/allocations", prefix=what) if len(what) >= 4 else []
    if len(allocs) > 1:
        raise BackendError(f"{what!r} matches {len(allocs)} allocations; give more of the id")
    if not allocs:
        allocs = [a for a in _get(cfg, f"/v1/job/{what}/allocations")
                  if a.get("ClientStatus") == "running"]
        if not allocs:
            raise BackendError(f"no allocation {what!r} and no running allocation of a job "
                               f"{what!r}")
    out = []
    for a in allocs:
        tasks = sorted((a.get("TaskStates") or {}).keys())
        if task is not None and task not in tasks:
            raise BackendError(f"{a['Name']} has no task {task!r} (tasks: {', '.join(tasks)})")
        if task is None and len(tasks) > 1:
            raise BackendError(f"{a['Name']} runs {len(tasks)} tasks ({', '.join(tasks)}); "
                               "pick one with --task")
        out.append(Target(a["ID"], a["Name"], task or tasks[0]))
    return out


def for_terminal(out: TextIO, raw: bool) -> Callable[[str], str]:
    """What a log line becomes on `out`: on a terminal only its colours (SGR) stay, titles,
    clipboard writes, hyperlinks, cursor and screen controls are removed, unless --raw; into a
    pipe or file it goes as it came."""
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    return sgr_only if tty and not raw else _same


def _same(text: str) -> str:
    return text


def run_logs(cfg: Config, what: str, *, task: str | None = None, stderr: bool = False,
             follow: bool = False, lines: int = 0, out: TextIO = sys.stdout,
             raw: bool = False) -> int:
    """Print the task's lines; a reader that leaves (`| head`) ends it with 0, as for any
    Unix tool whose output was fine; Ctrl-C with 130."""
    try:
        return _print_logs(cfg, what, task=task, stderr=stderr, follow=follow, lines=lines,
                           out=out, raw=raw)
    except BrokenPipeError:
        stdout_gone()
        return 0
    except KeyboardInterrupt:
        return INTERRUPTED


def _print_logs(cfg: Config, what: str, *, task: str | None, stderr: bool, follow: bool,
                lines: int, out: TextIO, raw: bool) -> int:
    chosen = targets(cfg, what, task)
    shown = for_terminal(out, raw)
    stream = "stderr" if stderr else "stdout"
    tagged = len(chosen) > 1
    followers = [LogFollower(cfg.nomad, t.alloc_id, t.task, stream, follow=False)
                 for t in chosen]
    # what is there now (the last N lines of each, or all), then what comes
    for target, reader in zip(chosen, followers, strict=True):
        kept: deque[str] | list[str] = deque(maxlen=lines) if lines else []
        for line in reader.lines():
            kept.append(line.text)
        prefix = f"{shown(target.name)} {shown(target.task)} | " if tagged else ""
        out.writelines(f"{prefix}{shown(text)}\n" for text in kept)
    out.flush()
    if not follow:
        return 0
    merged: queue.Queue[str] = queue.Queue(maxsize=10_000)
    live = [LogFollower(cfg.nomad, t.alloc_id, t.task, stream, offset=r.offset)
            for t, r in zip(chosen, followers, strict=True)]

    def pump(target: Target, follower: LogFollower) -> None:
        prefix = f"{shown(target.name)} {shown(target.task)} | " if tagged else ""
        for line in follower.lines():
            merged.put(prefix + shown(line.text))

    for t, f in zip(chosen, live, strict=True):
        threading.Thread(target=pump, args=(t, f), daemon=True).start()
    try:
        while True:
            out.write(merged.get() + "\n")
            if merged.empty():
                out.flush()
    finally:
        for f in live:
            f.stop()


# -- hosts over SSH -------------------------------------------------------------------------


def run_host_logs(cfg: Config, inventory: Inventory, host: str, *, unit: str = "",
                  path: str = "", lines: int = 10, follow: bool = False,
                  trust: str | Sequence[str] = "", out: TextIO = sys.stdout,
                  raw: bool = False) -> int:
    """`journalctl -u UNIT` or `tail FILE` on an inventory host, through the bastion if set.
    An unknown key (the bastion's or the host's) is accepted only when its fingerprint is one
    given with `--trust`; else the command stops and says which one to give."""
    trusted = {trust} if isinstance(trust, str) else set(trust)

    def accept(host: str, key: Any) -> bool:
        if fingerprint(key) in trusted:
            return True
        raise BackendError(f"{HostKeyUnknown(host, key)} To accept it: --trust "
                           f"{fingerprint(key)}")

    try:
        target = host_target(inventory, host, cfg)
        pool = pool_for(cfg, inventory)
    except LookupError as exc:
        raise BackendError(str(exc)) from None
    command = (journal_command(unit, lines or 10, follow) if unit
               else tail_command(path, lines or 10, follow))
    try:
        try:
            tail = open_host_tail(pool, target, command, accept)
        except OSError as exc:
            raise BackendError(str(exc)) from None
        if tail is None:  # accept() raises instead of refusing; kept for the type
            return 1
        try:
            shown = for_terminal(out, raw)
            for line in tail.lines():
                out.write(shown(line) + "\n")
                out.flush()
        except KeyboardInterrupt:
            return INTERRUPTED
        except BrokenPipeError:
            stdout_gone()
        return 0
    except HostKeyChanged as exc:
        raise BackendError(str(exc)) from None
    finally:
        pool.close()
