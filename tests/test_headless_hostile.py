"""Headless commands print a backend's strings as data: no escape sequence of theirs reaches
stdout, no markup in them is interpreted, and our own hints keep their brackets (#12 §1)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from rich.console import Console

from jamtui.config import load_config
from jamtui.headless import render_status
from jamtui.logs_cli import run_logs
from jamtui.model import BackendStatus, Health, Kind, Quorum
from jamtui.routing import trace as chain_trace
from jamtui.sim.lab import Lab
from jamtui.sources.base import http_problem
from jamtui.store import Store
from jamtui.tracing import Trace, render_tree
from tests.test_headless import lab_config, run  # noqa: F401  (the fixture)

OSC_TITLE = "\x1b]0;PWNED\x07"
OSC_LINK = "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
OSC_CLIPBOARD = "\x1b]52;c;cm0gLXJmIC8K\x07"
CLEAR_AND_LEAVE = "\x1b[2J\x1b[?1049l"
BODY = (f"[/v1/jobs] {OSC_TITLE}{OSC_LINK}{OSC_CLIPBOARD}{CLEAR_AND_LEAVE} "
        "[link=http://evil.example/]here[/link] [blink]now[/blink]")
NOT_SGR = re.compile(r"\x1b(?!\[[0-9;]*m)")


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, color_system="truecolor", width=400), out


def test_status_prints_a_hostile_error_body_literally() -> None:
    store = Store()
    store.set_backend(BackendStatus(
        "nomad", Health.DOWN, address=f"https://nomad{OSC_TITLE}:4646",
        last_error=http_problem("nomad", "GET /v1/jobs", 500, BODY)))
    store.set_backend(BackendStatus(
        "consul", Health.DOWN, last_error=http_problem(
            "consul", "GET /v1/catalog/services", 403, "Permission denied",
            "[consul] token / CONSUL_HTTP_TOKEN")))
    store.upsert(Kind.QUORUM, Quorum("nomad", leader=f"[blink]x{OSC_TITLE}",
                                     servers=("a",), alive=("a",)))
    console, out = terminal()
    render_status(store, console, {"nomad", "consul"})  # raised MarkupError on today's code
    text = out.getvalue()
    assert not NOT_SGR.search(text), repr(text)
    assert "\x1b[5m" not in text  # no blink
    assert "[/v1/jobs]" in text and "[link=http://evil.example/]here[/link]" in text
    assert "␛]0;PWNED␇" in text
    assert "([consul] token / CONSUL_HTTP_TOKEN)" in text  # the hint keeps its brackets


def test_status_keeps_the_consul_hint(lab_config: tuple[Lab, Path]) -> None:  # noqa: F811
    lab, path = lab_config
    lab.set_fault("consul", "forbidden")
    out = run(["status", "--config", str(path), "--timeout", "5"], lab.env())
    assert out.returncode == 1
    assert "[consul] token / CONSUL_HTTP_TOKEN" in " ".join(out.stdout.split()), out.stdout
    assert "Traceback" not in out.stderr


def test_trace_tree_prints_hostile_names_literally() -> None:
    store = Store()
    result = Trace(chain_trace(store, f"evil{OSC_TITLE}[/x].jamfox.dev/{CLEAR_AND_LEAVE}"),
                   (), None, (f"note {OSC_CLIPBOARD}[link=http://evil.example/]x",))
    console, out = terminal()
    console.print(render_tree(result))
    text = out.getvalue()
    assert not NOT_SGR.search(text), repr(text)
    assert "evil␛]0;pwned␇[/x].jamfox.dev" in text  # (host names are lowercased)
    assert "[link=http://evil.example/]x" in text


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_logs_on_a_terminal_keep_colours_only(lab_config: tuple[Lab, Path]) -> None:  # noqa: F811
    lab, path = lab_config
    cfg = load_config(path, env=lab.env())
    alloc_id = lab.call(lambda: next(a.id for a in lab.world.allocs.values()
                                     if a.job_id == "example"))
    hostile = f"\x1b[31mred\x1b[0m {OSC_TITLE}{OSC_LINK}{OSC_CLIPBOARD}{CLEAR_AND_LEAVE}end"
    lab.call(lab.world.log_line, alloc_id, "server", hostile)
    tty = Tty()
    assert run_logs(cfg, alloc_id, lines=1, out=tty) == 0
    assert tty.getvalue().endswith("\x1b[31mred\x1b[0m clickend\n"), repr(tty.getvalue())
    raw = Tty()
    assert run_logs(cfg, alloc_id, lines=1, out=raw, raw=True) == 0
    assert raw.getvalue().endswith(hostile + "\n")
    piped = io.StringIO()  # into a pipe or a file: the bytes as they came
    assert run_logs(cfg, alloc_id, lines=1, out=piped) == 0
    assert piped.getvalue().endswith(hostile + "\n")


def test_doctor_prints_findings_literally(monkeypatch: Any, capsys: Any) -> None:
    from jamtui import cli, doctor

    findings = [doctor.Finding("nomad", False, http_problem("nomad", "GET /v1/jobs", 500, BODY),
                               "[nomad] token / NOMAD_TOKEN"),
                doctor.Finding("consul", True, f"leader {OSC_TITLE}[blink]x[/blink]")]
    monkeypatch.setattr(doctor, "run_doctor", lambda cfg: findings)
    assert cli.run_doctor_command(object()) == 1  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "\x1b" not in out, repr(out)
    assert "[/v1/jobs]" in out and "␛]0;PWNED␇" in out and "[blink]x[/blink]" in out
    assert "→ [nomad] token / NOMAD_TOKEN" in out


def test_node_progress_and_snapshot_carry_no_escape_codes() -> None:
    import json

    from jamtui.headless import snapshot
    from jamtui.node_cli import _printer
    from jamtui.workflows.workflow import StepState

    out, err = io.StringIO(), io.StringIO()
    show = _printer(out, err)
    step = StepState("apply", "Terraform apply", "failed", f"tool said {OSC_TITLE}[/x]")
    show("line", step, f"+ create {CLEAR_AND_LEAVE}{OSC_CLIPBOARD}")
    show("step", step, None)
    assert "\x1b" not in out.getvalue() + err.getvalue()
    assert "␛[2J␛[?1049l" in out.getvalue() and "tool said ␛]0;PWNED␇[/x]" in err.getvalue()

    store = Store()
    store.set_backend(BackendStatus("nomad", Health.DOWN, last_error=BODY))
    text = json.dumps(snapshot(store))  # JSON escapes controls itself; the data stays true
    assert "\x1b" not in text and json.loads(text)["backends"][0]["last_error"] == BODY
