"""The `jamtui` command: the cockpit, the embedded lab and the headless commands.

Each command imports what it uses when it runs: `status` and `snapshot` start their
requests before anything they need only to print is imported, and never load the
workflows (paramiko, dnspython), the inventory (ruamel) before it is read, or Textual."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import __version__
from .config import Config, ConfigError, load_config


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="config file (default: $XDG_CONFIG_HOME/jamtui/config.toml)")
    common.add_argument("--demo", action="store_true", default=argparse.SUPPRESS,
                        help="start the embedded demo lab and point jamtui at it")
    parser = argparse.ArgumentParser(
        prog="jamtui", parents=[common],
        description="Terminal cockpit for a Proxmox + Consul + Nomad + Fabio + HAProxy lab.",
    )
    parser.add_argument("--version", action="version", version=f"jamtui {__version__}")
    parser.add_argument("--read-only", action="store_true", help="hide and refuse every action")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    status = sub.add_parser("status", parents=[common],
                            help="a compact summary of the lab; exit 1 if a backend is not ok")
    status.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for every backend's first answer; one that has "
                        "not answered by then is down (default 10)")
    snap = sub.add_parser("snapshot", parents=[common], help="the whole lab as one document")
    snap.add_argument("--json", action="store_true",
                      help="print the document as JSON (without it: the summary `status` "
                           "prints, and how to get the document)")
    snap.add_argument("--timeout", type=float, default=10.0,
                      help="as for status; exit 1 when a configured backend is down")
    sub.add_parser("doctor", parents=[common],
                   help="check the configuration and each backend, and say what to fix")

    tr = sub.add_parser("trace", parents=[common],
                        help="follow HOST[/PATH] from DNS to the hypervisor; exit 1 if broken")
    tr.add_argument("target", metavar="HOST[/PATH]")
    tr.add_argument("--json", action="store_true", help="print JSON instead of a tree")
    tr.add_argument("--probe", action="store_true",
                    help="send one real request through HAProxy with that Host header")
    tr.add_argument("--timeout", type=float, default=10.0)

    logs = sub.add_parser("logs", parents=[common],
                          help="a task's logs: one allocation, or a job's allocations merged")
    logs.add_argument("target", metavar="ALLOC_OR_JOB", nargs="?")
    logs.add_argument("--host", help="an inventory host: its logs over SSH (--unit or --file)")
    logs.add_argument("--unit", help="with --host: a systemd unit's journal (nomad, consul, …)")
    logs.add_argument("--file", help="with --host: a file to tail")
    logs.add_argument("--trust", metavar="FINGERPRINT", action="append", default=[],
                      help="with --host: accept this new host key (SHA256:…, as printed); "
                           "again for the bastion's")
    logs.add_argument("--task", help="the task (needed when the group runs several)")
    logs.add_argument("--stderr", action="store_true", help="stderr instead of stdout")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--raw", action="store_true",
                      help="on a terminal, print escape sequences as they came (by default "
                           "only colours are kept)")
    logs.add_argument("-n", "--lines", type=int, default=0, metavar="N",
                      help="only the last N lines of what is there (default: all)")

    # the node, job and exec commands' arguments are here, not in their modules: building
    # the parser imports none of them (`status` paid 0.2 s for job_cli's imports)
    _add_node_parser(sub, common)
    _add_job_parser(sub, common)
    _add_exec_parser(sub, common)

    lab = sub.add_parser("lab", help="run the embedded JamLab in the foreground")
    lab.add_argument("--seed", type=int, default=0, help="make a run repeatable (default 0)")
    lab.add_argument("--inventory", metavar="PATH", help="Ansible inventory (YAML) to build from")
    lab.add_argument("--workdir", metavar="DIR",
                     help="where the CA, config and env files go (default: a temporary dir)")
    lab.add_argument("--fault", action="append", default=[], metavar="BACKEND=KIND",
                     help="inject a fault at start: down, slow, error, malformed, reset, "
                     "forbidden, hang (accepts, never answers) (repeatable; e.g. --fault "
                     "nomad=slow)")
    lab.add_argument("--tick", type=float, default=1.0, help="seconds between world ticks")
    lab.add_argument("--scale", metavar="CLIENTS,ALLOCS,SERVICES",
                     help="a big lab: CLIENTS Nomad clients running ALLOCS allocations of "
                          "SERVICES routed services (plus two system jobs per client); "
                          "replaces --inventory")
    lab.add_argument("--tls", action="store_true",
                     help="serve Nomad and Consul over HTTPS from the lab's CA, requiring "
                     "client certificates (their paths are printed with the exports)")
    lab.add_argument("--cert-days", action="append", default=[], metavar="[BACKEND=]DAYS",
                     help="make a server certificate last DAYS (proxmox, nomad, consul, haproxy "
                     "(its HTTPS frontend with --tls); all without BACKEND), e.g. "
                     "--cert-days nomad=3 to see the expiry warning")
    return parser


def _add_node_parser(sub: Any, common: Any) -> None:
    node = sub.add_parser("node", parents=[common],
                          help="add or remove a vb/vs node (Packer, Terraform, Ansible)")
    nsub = node.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    add = nsub.add_parser("add", help="add a node to a group: inventory, VM, configuration")
    add.add_argument("--group", required=True, choices=("vb", "vs"))
    add.add_argument("--name")
    add.add_argument("--ip")
    for f in ("vmid", "cores", "memory", "disk"):
        add.add_argument(f"--{f}", type=int)
    add.add_argument("--hypervisor")
    add.add_argument("--yes", action="store_true", help="apply the plan without asking")
    rm = nsub.add_parser("remove", help="drain, leave, destroy, remove from the inventory")
    rm.add_argument("name")
    rm.add_argument("--yes", action="store_true",
                    help="no typed confirmation, and apply the plan without asking")
    for verb, text in (("resume", "finish an interrupted or failed workflow"),
                       ("rollback", "undo what a node add did (destroy, inventory)")):
        p = nsub.add_parser(verb, help=text)
        p.add_argument("id", metavar="WORKFLOW_ID", help="as `jamtui node list` shows")
        p.add_argument("--yes", action="store_true", help="apply plans without asking")
    lst = nsub.add_parser("list", help="the workflows in the journal, newest first (none yet: "
                          "the inventory's nodes and their state)")
    lst.add_argument("--timeout", type=float, default=10.0,
                     help="with no workflows: seconds to wait for each backend's first answer "
                          "(default 10)")


def _add_job_parser(sub: Any, common: Any) -> None:
    job = sub.add_parser("job", help="plan and run a Nomad job file")
    jsub = job.add_subparsers(dest="job_command", metavar="ACTION", required=True)
    run = jsub.add_parser("run", parents=[common],
                          help="parse, plan (with the diff), ask, run, follow")
    run.add_argument("file", metavar="FILE", help="a job file (HCL2), e.g. web.nomad.hcl")
    run.add_argument("--yes", action="store_true", help="run the plan without asking")
    run.add_argument("--detach", action="store_true",
                     help="do not follow the evaluation and deployment")
    run.add_argument("--wait", type=float, default=300.0, metavar="SECONDS",
                     help="how long to follow the deployment (default 300)")


def _add_exec_parser(sub: Any, common: Any) -> None:
    p = sub.add_parser("exec", parents=[common],
                       help="run a command in a Nomad allocation's task (`-- CMD`), with a TTY "
                       "when stdin is one; exits with the command's code")
    p.add_argument("alloc", metavar="ALLOC", help="an allocation ID or a unique prefix")
    p.add_argument("-t", "--task", help="the task (needed when the group runs several)")
    tty = p.add_mutually_exclusive_group()
    tty.add_argument("-i", "--tty", dest="tty", action="store_true", default=None,
                     help="allocate a TTY even when stdin is not a terminal")
    tty.add_argument("-T", "--no-tty", dest="tty", action="store_false",
                     help="no TTY even on a terminal")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD",
                   help="the command and its arguments (default /bin/sh)")


def main(argv: Sequence[str] | None = None) -> int:
    """Every command: Ctrl-C ends it with 130 and no traceback; a reader that leaves early
    (`| head`) ends it quietly with the status it had (see `pipes`)."""
    from .pipes import INTERRUPTED, stdout_gone

    code = 1
    try:
        code = _run(argv)
        sys.stdout.flush()
        if argv is None and _one_shot_done:  # the program itself, not a caller in Python
            _exit_now(code)
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end the ^C line
        return INTERRUPTED
    except BrokenPipeError:
        stdout_gone()
    return code


_one_shot_done = False  # `status`/`snapshot` said all they had to say


def _exit_now(code: int) -> None:
    """End a one-shot command once its output is out, without the interpreter's teardown:
    freeing a 5,000-allocation store object by object, and joining the thread pools' workers
    (a read still under way to a backend that was given up on), took 0.1-0.5 s after the last
    line was printed. Nothing is left to write: its streams are flushed here."""
    import os

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "lab":
            return run_lab(args)
        with _configured(args) as cfg:
            if args.command == "status":
                return run_status(cfg, args.timeout)
            if args.command == "snapshot":
                if not args.json:  # a person at a terminal: the summary they can read
                    code = run_status(cfg, args.timeout)
                    print("(this is `jamtui status`; the whole lab as one JSON document: "
                          "jamtui snapshot --json)", file=sys.stderr)
                    return code
                return run_snapshot(cfg, args.timeout)
            if args.command == "doctor":
                return run_doctor_command(cfg)
            if args.command == "trace":
                return run_trace_command(cfg, args)
            if args.command == "exec":
                from .exec_cli import run_exec_command

                return run_exec_command(cfg, args)
            if args.command == "node":
                from .node_cli import run_node

                return run_node(cfg, args)
            if args.command == "job":
                from .job_cli import run_job

                return run_job(cfg, args)
            if args.command == "logs":
                from .logs_cli import run_logs
                from .sources.base import BackendError

                try:
                    if args.host:
                        from .inventory import load_inventory
                        from .logs_cli import run_host_logs

                        if bool(args.unit) == bool(args.file):
                            raise BackendError("with --host, give one of --unit or --file")
                        return run_host_logs(cfg, load_inventory(cfg.inventory), args.host,
                                             unit=args.unit or "", path=args.file or "",
                                             lines=args.lines, follow=args.follow,
                                             trust=args.trust, raw=args.raw)
                    if not args.target:
                        raise BackendError("give an allocation or job, or --host")
                    return run_logs(cfg, args.target, task=args.task, stderr=args.stderr,
                                    follow=args.follow, lines=args.lines, raw=args.raw)
                except BrokenPipeError:
                    raise  # the reader left: not an error of the logs (see main)
                except (BackendError, OSError, ValueError) as exc:  # requests: OSError
                    from .plain import block

                    print(f"jamtui logs: {block(exc)}", file=sys.stderr)
                    return 1
            return run_cockpit(cfg, args)
    except (ConfigError, _inventory_error()) as exc:
        from .plain import block

        print(f"jamtui: {block(exc)}", file=sys.stderr)
        return 2


def _inventory_error() -> type[Exception]:
    """`InventoryError` once its module is loaded (it is, if one was raised: `except`
    evaluates this when an exception is matched), without importing the inventory (ruamel)
    for commands that never read it."""
    parse = sys.modules.get("jamtui.inventory.parse")
    return parse.InventoryError if parse is not None else ConfigError


@contextmanager
def _configured(args: argparse.Namespace) -> Iterator[Config]:
    """The configuration to run with: the user's, or one pointing at a fresh embedded lab."""
    if not getattr(args, "demo", False):
        yield load_config(getattr(args, "config", None))
        return
    from .sim.lab import Lab

    with Lab() as lab:
        lab.wait_settled()  # the first look finds every route (see run_lab)
        path = lab.workdir / "jamtui.toml"
        path.write_text(lab.config_toml())
        yield load_config(path, env=lab.env())


def run_status(cfg: Config, timeout: float) -> int:
    from .heap import hold

    hold()  # before the imports too: they make objects by the ten thousand (see `heap`)
    from .engine import Engine

    engine = Engine(cfg)
    engine.start(followers=False, summary=True)
    try:
        # what only prints (Rich's tables) is imported while the first answers come
        from .headless import exit_code, render_status
        from .pipes import PipeConsole, reader_may_leave

        engine.settle(timeout)
        code = exit_code(engine.store, set(engine.sources))
        with reader_may_leave():
            render_status(engine.store, PipeConsole(), set(engine.sources))
        _one_shot_ended()
        return code
    finally:
        engine.stop(timeout=0.0)  # nothing waited for: it ends with `_exit_now`


def run_snapshot(cfg: Config, timeout: float) -> int:
    from .heap import hold

    hold()
    from .apart import APART, fork_reader
    from .engine import Engine
    from .headless import SnapshotWriter, snapshot_exit_code
    from .pipes import reader_may_leave

    engine = Engine(cfg)
    configured = set(engine.sources)
    # the backends that cost the most CPU (Nomad's allocations, Consul's instances) read and
    # encoded in processes of their own, on the other cores (see `apart`), where they can be
    aparts = [apart for name in APART if (apart := fork_reader(engine, name, timeout))]
    engine.start(followers=False)
    try:
        writer = SnapshotWriter(engine.store)
        encoded = writer.follow(engine.sources)  # each backend's part as it answers
        engine.settle(timeout)
        encoded()
        for apart in aparts:
            apart.join(engine, writer)
        code = snapshot_exit_code(engine.store, configured)
    finally:
        for apart in aparts:
            apart.end()
        engine.stop(timeout=0.0)  # nothing waited for: it ends with `_exit_now`
    with reader_may_leave():
        sys.stdout.flush()
        writer.write(sys.stdout.buffer)
    _one_shot_ended()
    return code


def _one_shot_ended() -> None:
    global _one_shot_done
    _one_shot_done = True


def run_trace_command(cfg: Config, args: argparse.Namespace) -> int:
    from .engine import Engine
    from .pipes import PipeConsole, reader_may_leave
    from .tracing import render_tree, run_trace

    engine = Engine(cfg)
    engine.start()
    try:
        engine.wait_ready(args.timeout)
        fabio = engine.sources.get("fabio")
        if fabio is not None and hasattr(fabio, "read_all"):
            fabio.read_all()  # one host's question: every Fabio's word on it, not one's
        result = run_trace(engine.store, cfg, engine.inventory, args.target, args.probe)
    finally:
        engine.stop()
    with reader_may_leave():
        if args.json:
            json.dump(result.to_dict(), sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            PipeConsole().print(render_tree(result))
    return 0 if result.chain.whole else 1


def run_doctor_command(cfg: Config) -> int:
    from rich.text import Text

    from . import plain
    from .doctor import run_doctor
    from .pipes import PipeConsole, reader_may_leave
    from .plain import BLOCK_LIMIT

    console = PipeConsole()
    findings = run_doctor(cfg)
    with reader_may_leave():
        for f in findings:
            mark = Text("✓ ", style="green") if f.ok else Text("✗ ", style="bold red")
            if f.ok and f.warning:
                mark = Text("! ", style="yellow")
            console.print(mark + Text(f"{f.backend}: ", style="bold") + plain.text(
                f.detail, limit=BLOCK_LIMIT, multiline=True))
            if f.fix:
                console.print(Text("    → ", style="yellow") + plain.text(
                    f.fix, "yellow", limit=BLOCK_LIMIT, multiline=True))
    return 0 if all(f.ok for f in findings) else 1


def _parse_faults(specs: list[str]) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        backend, sep, kind = spec.partition("=")
        if not sep or not backend or not kind:
            raise SystemExit(f"jamtui lab: --fault takes BACKEND=KIND, got {spec!r}")
        out.append((backend, kind))
    return out


def _parse_cert_days(specs: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for spec in specs:
        backend, sep, days = spec.rpartition("=")
        names = [backend] if sep else ["proxmox", "nomad", "consul", "haproxy"]
        try:
            value = float(days)
        except ValueError:
            value = float("nan")
        if not value > 0 or value > 3650 or any(
                n not in ("proxmox", "nomad", "consul", "haproxy") for n in names):
            raise SystemExit(f"jamtui lab: --cert-days takes [proxmox|nomad|consul|haproxy=]DAYS "
                             f"(a number of days, more than 0), got {spec!r}")
        out |= dict.fromkeys(names, value)
    return out


def run_lab(args: argparse.Namespace) -> int:
    """Run the lab until Ctrl-C; print how to point clients at it."""
    from .sim.lab import Lab
    from .sim.tls import write_private

    faults = _parse_faults(args.fault)
    cert_days = _parse_cert_days(args.cert_days)
    workdir = Path(args.workdir) if args.workdir else None
    inventory: Any = args.inventory
    options: dict[str, Any] = {}
    if args.scale:
        import tempfile

        from .sim.scale import ScaleError, parse_scale, scale_inventory, scale_jobs

        try:
            clients, allocs, services = parse_scale(args.scale)
        except ScaleError as exc:
            print(f"jamtui lab: {exc}", file=sys.stderr)
            return 2
        scale_dir = workdir or Path(tempfile.mkdtemp(prefix="jamlab-scale-"))
        scale_dir.mkdir(parents=True, exist_ok=True)
        inventory = scale_inventory(clients, scale_dir / "scale-inventory.yml")
        options["jobs"] = scale_jobs(clients, allocs, services)
    lab = Lab(inventory, seed=args.seed, tick=args.tick, workdir=workdir, tls=args.tls,
              cert_days=cert_days, **options)
    try:
        # every allocation's servers start before the lab answers: give a big lab the time
        lab.start(15.0 + len(lab.inventory.hosts) / 10 + sum(
            g.count for j in options.get("jobs", []) for g in j.groups) / 100)
        # settled before its ready lines: a `jamtui trace` typed right after them finds
        # every route (Fabio's table and HAProxy's checks follow Consul's by a moment)
        unsettled = lab.wait_settled(10.0 + sum(
            g.count for j in options.get("jobs", []) for g in j.groups) / 100)
    except KeyboardInterrupt:
        lab.stop()
        raise
    try:
        for backend, kind in faults:
            lab.set_fault(backend, kind)
    except ValueError as exc:
        lab.stop()
        print(f"jamtui lab: {exc}", file=sys.stderr)
        return 2
    # Ctrl-C and SIGTERM stop the lab cleanly, even if they come before the banner is out
    stop = threading.Event()
    stopped_by: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopped_by.append(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    config_path = lab.workdir / "jamtui.toml"
    config_path.write_text(lab.config_toml())
    env_path = lab.workdir / "env.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in lab.env().items())
    write_private(env_path, exports.encode())  # tokens: owner-only from the first byte
    ro_path = lab.workdir / "env-readonly.sh"
    tokens = ("NOMAD_TOKEN", "CONSUL_HTTP_TOKEN", "PROXMOX_VE_API_TOKEN")
    ro_exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in
                         lab.read_only_env().items() if k in tokens)
    write_private(ro_path, (exports + ro_exports).encode())
    print(f"JamLab is running (seed {args.seed}). Point any client at it:\n")
    if unsettled:
        print(f"# not settled yet (routes may be missing for a moment): {unsettled}\n")
    print(exports)
    print("# read-only tokens (a dashboard's least privilege; README \"ACL policies\"):")
    print("".join(f"#   {line}\n" for line in ro_exports.splitlines()), end="")
    print(f"# or: source {ro_path}")
    print(f"# the exports above are in {env_path}: `. {env_path}` points the nomad, consul "
          "and terraform CLIs at the lab")
    print(f"# config file: {config_path}; it reads the tokens from "
          f"{lab.token_files['nomad'].parent}/ (mode 0600), so it needs no environment:")
    print(f"#   jamtui --config {config_path}")
    print(f"# HAProxy frontend: {lab.urls['haproxy']}   stats: {lab.urls['haproxy_stats']}/stats")
    cacert = f"--cacert {lab.ca_cert} " if lab.urls["haproxy"].startswith("https") else ""
    print(f"#   curl {cacert}-H 'Host: example.jamfox.dev' {lab.urls['haproxy']}/")
    print("# Type 'fault BACKEND KIND', 'clear [BACKEND]' or 'help'; Ctrl-C stops the lab.",
          flush=True)
    threading.Thread(target=_lab_console, args=(lab, stop), daemon=True).start()
    try:
        stop.wait()
    finally:
        lab.stop()
        print("\nJamLab stopped.", flush=True)
    # Ctrl-C: 130 as for every command; SIGTERM (a service manager's stop) is a clean end
    return 130 if stopped_by[:1] == [signal.SIGINT] else 0


def _lab_console(lab: object, stop: threading.Event) -> None:
    """Fault injection at run time from the lab's terminal."""
    from .sim.lab import Lab

    assert isinstance(lab, Lab)
    for line in sys.stdin:
        words = line.split()
        try:
            if words[:1] == ["fault"] and len(words) == 3:
                lab.set_fault(words[1], words[2])
                print(f"fault: {words[1]} is now {words[2]}", flush=True)
            elif words[:1] == ["clear"] and len(words) <= 2:
                lab.clear_fault(words[1] if len(words) == 2 else None)
                print("faults cleared", flush=True)
            elif words == ["requests"]:  # requests served so far per backend, one JSON line
                print(json.dumps(dict(sorted(lab.faults.requests.items()))), flush=True)
            elif words:
                print("commands: fault BACKEND KIND | clear [BACKEND] | requests; backends: "
                      "proxmox, nomad, consul, fabio, fabio:<node>, haproxy; kinds: down, slow, "
                      "error, malformed, reset, forbidden, hang", flush=True)
        except ValueError as exc:
            print(f"error: {exc}", flush=True)


def run_cockpit(cfg: Config, args: argparse.Namespace) -> int:
    from . import heap
    from .engine import Engine

    heap.hold()  # no collector passes over the first picture: on again once it is in
    # the first reads go on while the UI is imported and Textual starts (half a second and
    # more of the first frame at 5,000 allocations); the screens read the store whole when
    # they mount, so nothing written meanwhile is missed
    engine = Engine(cfg)
    engine.expect_first_frame()  # set by JamApp once drawn: background work waits for it
    engine.start()
    try:
        from .ui.app import JamApp
        from .ui.keymap import with_overrides

        try:
            keymap = with_overrides(dict(cfg.keys))
        except ValueError as exc:
            raise ConfigError(f"{cfg.path}: {exc}") from exc
        read_only = bool(getattr(args, "read_only", False) or cfg.read_only)
        app = JamApp(engine, read_only=read_only, keymap=keymap, keys=dict(cfg.keys),
                     start_engine=False)
        app.run()
    finally:
        engine.stop()
        heap.release(freeze=False)
    return app.return_code or 0  # 1 after an unexpected exception (said in one line)


if __name__ == "__main__":
    sys.exit(main())
