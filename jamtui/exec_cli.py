"""`jamtui exec ALLOC [-t TASK] -- CMD`: a command in a Nomad task, as `nomad alloc exec`.

The allocation is found as the Nomad CLI finds it (an ID or a unique prefix, through
`/v1/allocations?prefix=`), the task is the allocation's only one unless `-t` names it; then
the command runs over the exec WebSocket (sources/exec.py), with a TTY when stdin is one,
and its exit code is ours."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .config import Config, NomadConfig
from .plain import block, line

if TYPE_CHECKING:  # the WebSocket client (aiohttp) is imported by `exec` alone: every
    from .sources.exec import ExecTarget  # other command built this parser for nothing


def resolve(cfg: NomadConfig, alloc: str, task: str | None) -> ExecTarget:
    """The allocation by ID or unique prefix, and its task; LookupError in words."""
    import requests

    from .sources.exec import ExecTarget
    from .sources.reasons import in_words
    from .sources.tls import TLSSettings

    tls = TLSSettings.of("nomad", cfg)
    session = tls.session()
    session.headers.update(cfg.auth_headers())
    base = cfg.address.rstrip("/")
    namespace = cfg.namespace or "default"
    try:
        # verify given per request: REQUESTS_CA_BUNDLE would win over the session's
        resp = session.get(f"{base}/v1/allocations", verify=tls.verify,
                           params={"prefix": alloc, "namespace": namespace}, timeout=15)
        if resp.status_code != 200:
            raise LookupError(f"Nomad answered HTTP {resp.status_code}: "
                              f"{line(resp.text.strip()[:300])}")
        matches = [a for a in resp.json() if isinstance(a, dict)]
    except requests.RequestException as exc:
        raise LookupError(f"cannot reach Nomad at {base}: {in_words(exc, 15)}") from None
    finally:
        session.close()
    exact = [a for a in matches if a.get("ID") == alloc]
    if exact:
        matches = exact
    if not matches:
        raise LookupError(f"No allocation(s) with prefix or id {alloc!r} found")
    if len(matches) > 1:
        ids = ", ".join(line(str(a.get("ID", ""))[:8]) for a in matches[:10])
        raise LookupError(f"Prefix {alloc!r} matched multiple allocations: {ids}")
    found = matches[0]
    tasks = sorted((found.get("TaskStates") or {}).keys())
    if task is None:
        if len(tasks) != 1:
            raise LookupError("the allocation runs several tasks, give one with -t: "
                              + ", ".join(line(t) for t in tasks))
        task = tasks[0]
    elif task not in tasks:
        raise LookupError(f"no task {task!r} in the allocation (tasks: "
                          + ", ".join(line(t) for t in tasks) + ")")
    return ExecTarget(str(found["ID"]), task, (), str(found.get("Namespace") or namespace))


def run_exec_command(cfg: Config, args: argparse.Namespace) -> int:
    from .sources.exec import ExecError, ExecTarget, run_exec

    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    command = command or ["/bin/sh"]
    try:
        target = resolve(cfg.nomad, args.alloc, args.task)
        target = ExecTarget(target.alloc_id, target.task, tuple(command), target.namespace)
        return run_exec(cfg.nomad, target, tty=args.tty)
    except (ExecError, LookupError, OSError, ValueError) as exc:
        print(f"\r\njamtui exec: {block(exc)}", file=sys.stderr)
        return 1
