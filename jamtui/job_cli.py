"""`jamtui job run FILE.nomad.hcl`: parse the file through Nomad (`/v1/jobs/parse`), plan it
with the diff (`/v1/job/:id/plan`), ask, register with `EnforceIndex` at the plan's
`JobModifyIndex` (as `nomad job run -check-index`: a job changed in between is refused with
the reason), then follow the evaluation and the deployment to the end.

The plan goes to stdout, the question and progress to stderr."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from .config import Config
from .plain import block, line
from .sources.base import BackendError
from .sources.nomad_depth import plan_lines
from .store import Store


def run_job(cfg: Config, args: Any, out: TextIO = sys.stdout, err: TextIO = sys.stderr,
            ask: Any = input) -> int:
    from .sources.nomad import NomadSource

    if cfg.read_only:
        print("jamtui job run: refused: read-only mode", file=err)
        return 2
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"jamtui job run: cannot read {line(str(path))}: {line(str(exc))}", file=err)
        return 2
    source = NomadSource(Store(), cfg.nomad)
    try:
        job = source.parse_job(text)
        plan = source.plan_job(job)
        print(f"+ plan for {line(str(job.get('ID', '')))} in namespace "
              f"{line(str(job.get('Namespace') or 'default'))}:", file=out)
        for text_line in plan_lines(plan, job):
            print(line(text_line), file=out)
        index = int(plan.get("JobModifyIndex") or 0)
        print(f"\nJob Modify Index: {index} (the run is refused if the job changes first)",
              file=out, flush=True)
        if not _approved(args, ask, err):
            print("not run", file=err)
            return 1
        resp = source.run_checked(job, index)
        eval_id = str(resp.get("EvalID") or "")
        print(f"registered; evaluation {eval_id[:8]}", file=err, flush=True)
        if args.detach or not eval_id:
            return 0
        ok = source.follow_run(str(job["ID"]), eval_id, str(job.get("Namespace") or "default"),
                               lambda s: print(line(s), file=err, flush=True),
                               timeout=float(args.wait))
        return 0 if ok else 1
    except (BackendError, OSError, ValueError) as exc:  # requests' errors are OSError
        print(f"jamtui job run: {block(exc)}", file=err)
        return 1
    finally:
        source.session.close()


def _approved(args: Any, ask: Any, err: TextIO) -> bool:
    if args.yes:
        print("(--yes: running)", file=err)
        return True
    try:
        print("Run this job? Only 'yes' is accepted: ", end="", file=err, flush=True)
        return str(ask("")).strip() == "yes"
    except EOFError:
        return False
