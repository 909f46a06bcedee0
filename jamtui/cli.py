"""The `jamtui` command: the cockpit, the embedded lab and the headless commands."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .config import ConfigError
from .inventory import InventoryError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jamtui",
        description="Terminal cockpit for a Proxmox + Consul + Nomad + Fabio + HAProxy lab.",
    )
    parser.add_argument("--version", action="version", version=f"jamtui {__version__}")
    parser.add_argument("--config", metavar="PATH", help="config file "
                        "(default: $XDG_CONFIG_HOME/jamtui/config.toml)")
    parser.add_argument("--demo", action="store_true",
                        help="start the embedded demo lab and point jamtui at it")
    parser.add_argument("--read-only", action="store_true", help="hide and refuse every action")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    lab = sub.add_parser("lab", help="run the embedded JamLab in the foreground")
    lab.add_argument("--seed", type=int, default=0, help="make a run repeatable (default 0)")
    lab.add_argument("--inventory", metavar="PATH", help="Ansible inventory (YAML) to build from")
    lab.add_argument("--workdir", metavar="DIR",
                     help="where the CA, config and env files go (default: a temporary dir)")
    lab.add_argument("--fault", action="append", default=[], metavar="BACKEND=KIND",
                     help="inject a fault at start: down, slow, error, malformed, reset, "
                     "forbidden (repeatable; e.g. --fault nomad=slow)")
    lab.add_argument("--tick", type=float, default=1.0, help="seconds between world ticks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "lab":
            return run_lab(args)
        if args.demo or args.command is None:
            return run_cockpit(args)
    except (ConfigError, InventoryError) as exc:
        print(f"jamtui: {exc}", file=sys.stderr)
        return 2
    return 0


def _parse_faults(specs: list[str]) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        backend, sep, kind = spec.partition("=")
        if not sep or not backend or not kind:
            raise SystemExit(f"jamtui lab: --fault takes BACKEND=KIND, got {spec!r}")
        out.append((backend, kind))
    return out


def run_lab(args: argparse.Namespace) -> int:
    """Run the lab until Ctrl-C; print how to point clients at it."""
    from .sim.lab import Lab

    faults = _parse_faults(args.fault)
    workdir = Path(args.workdir) if args.workdir else None
    lab = Lab(args.inventory, seed=args.seed, tick=args.tick, workdir=workdir)
    lab.start()
    try:
        for backend, kind in faults:
            lab.set_fault(backend, kind)
    except ValueError as exc:
        lab.stop()
        print(f"jamtui lab: {exc}", file=sys.stderr)
        return 2
    config_path = lab.workdir / "jamtui.toml"
    config_path.write_text(lab.config_toml())
    env_path = lab.workdir / "env.sh"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in lab.env().items())
    env_path.write_text(exports)
    env_path.chmod(0o600)
    print(f"JamLab is running (seed {args.seed}). Point any client at it:\n")
    print(exports)
    print(f"# config file: {config_path}")
    print(f"#   jamtui --config {config_path}")
    print(f"# HAProxy frontend: {lab.urls['haproxy']}   stats: {lab.urls['haproxy_stats']}/stats")
    print(f"#   curl -H 'Host: example.jamfox.dev' {lab.urls['haproxy']}/")
    print("# Type 'fault BACKEND KIND', 'clear [BACKEND]' or 'help'; Ctrl-C stops the lab.",
          flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=_lab_console, args=(lab, stop), daemon=True).start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop()
        print("\nJamLab stopped.", flush=True)
    return 0


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
            elif words:
                print("commands: fault BACKEND KIND | clear [BACKEND]; backends: proxmox, "
                      "nomad, consul, fabio, fabio:<node>, haproxy; kinds: down, slow, error, "
                      "malformed, reset, forbidden", flush=True)
        except ValueError as exc:
            print(f"error: {exc}", flush=True)


def run_cockpit(args: argparse.Namespace) -> int:
    print("jamtui: the cockpit is not built yet; run `jamtui lab` for the embedded lab.",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
