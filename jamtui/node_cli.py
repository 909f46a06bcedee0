"""`jamtui node add|remove|resume|rollback|list`: the provisioning workflows, headless. The
plan is printed and confirmed on the terminal unless --yes; progress goes to stderr, the
step log lines to stdout."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

from .config import Config
from .plain import block, line

if TYPE_CHECKING:  # the workflows (paramiko, dnspython) load when a node command runs,
    # not for every `jamtui` command that builds the parser (+0.45 s each)
    from .workflows.node import NodeWorkflows
    from .workflows.workflow import StepState, Workflow

SPEC_FIELDS = ("name", "ip", "vmid", "cores", "memory", "disk", "hypervisor")


def run_node(cfg: Config, args: Any, out: TextIO = sys.stdout, err: TextIO = sys.stderr,
             ask: Any = input) -> int:
    from .engine import Engine
    from .inventory import InventoryError
    from .workflows.journal import JournalError, list_journals
    from .workflows.node import NodeWorkflows
    from .workflows.runner import StepFailed

    if args.node_command == "list":  # a read: allowed read-only too
        return _list(cfg, list_journals(cfg.provisioning.state_dir), out,
                     getattr(args, "timeout", 10.0))
    if cfg.read_only:
        print("jamtui node: refused: read-only mode", file=err)
        return 2
    engine = Engine(cfg)
    engine.start()
    engine.wait_ready(10)

    def approve(title: str, text: str) -> bool:
        print(f"\n{line(title)}:\n{block(text, None)}\n", file=err)
        if args.yes:
            print("(--yes: approved)", file=err)
            return True
        try:
            return ask("Apply this plan? Only 'yes' is accepted: ").strip() == "yes"
        except EOFError:
            return False
        except KeyboardInterrupt:  # Ctrl-C at the question: the plan is not applied
            print("\n(interrupted: not applied)", file=err)
            interrupted.append(True)
            return False

    interrupted: list[bool] = []

    flows = NodeWorkflows(cfg, engine, approve)
    try:
        wf = _build(cfg, flows, args, err)
        if wf is None:
            return 2
        print(f"workflow {wf.id} ({wf.kind}); journal in {wf.journal.dir}", file=err)
        wf.observe(_printer(out, err))
        rollback = args.node_command == "rollback"
        state = wf.rollback() if rollback else wf.run()
    except (InventoryError, JournalError, StepFailed, OSError) as exc:
        for text in block(exc).splitlines():
            print(f"jamtui node: {text}", file=err)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; resume with: jamtui node resume ID", file=err)
        return 130
    finally:
        engine.stop()
    if state in ("done", "rolled-back"):
        print(f"{wf.kind} {wf.params.get('name', '')}: {state}", file=err)
        return 0
    if interrupted:
        print(f"{wf.kind} {wf.params.get('name', '')}: {state}: {block(wf.message)}", file=err)
        return 130
    undo = "" if wf.rollback_refusal() else \
        f", or undo with `jamtui node rollback {wf.id}`"
    print(f"{wf.kind} {wf.params.get('name', '')}: {state}: {block(wf.message)}\n"
          f"resume with `jamtui node resume {wf.id}`{undo}", file=err)
    return 1


def _list(cfg: Config, summaries: list[Any], out: TextIO, timeout: float) -> int:
    """The workflows, newest first; with none yet, says so and lists the inventory's nodes
    with their state in Proxmox, Nomad and Consul (what `node add` would join)."""
    from .pipes import reader_may_leave

    with reader_may_leave():
        for s in summaries:
            state = f"rollback {s.state}" if s.phase == "rollback" and \
                s.state != "rolled-back" else s.state
            print(f"{s.id}  {state:<12} {s.step:<10} {line(s.message)}", file=out)
        if summaries:
            return 0
        print("no workflows yet (`jamtui node add --group vs` starts one)", file=out,
              flush=True)
        rows = node_states(cfg, timeout)
        print("\nthe inventory's nodes:", file=out)
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip(),
                  file=out)
    return 0


def node_states(cfg: Config, timeout: float) -> list[tuple[str, ...]]:
    """A header and one row per inventory node (vb/vs): name, group, address, VMID, and its
    state as each backend says it ("?" where the backend did not answer)."""
    from .engine import Engine
    from .inventory import NODE_GROUPS, load_inventory
    from .model import Health, Kind

    inventory = load_inventory(cfg.inventory)
    engine = Engine(cfg, inventory=inventory)
    engine.start()
    try:
        engine.settle(timeout)
    finally:
        engine.stop()
    store = engine.store

    def answered(backend: str) -> bool:
        b = store.backend(backend)
        return backend in engine.sources and not b.waiting and not (
            b.health is Health.DOWN and b.last_success is None)

    rows: list[tuple[str, ...]] = [("NAME", "GROUP", "ADDRESS", "VMID", "VM", "NOMAD",
                                    "CONSUL")]
    for host in inventory.hosts:
        if not set(host.groups) & set(NODE_GROUPS):
            continue
        vm = store.vm_named(host.name)
        node = next((n for n in store.items(Kind.NOMAD_NODE) if n.name == host.name), None)
        member = store.get(Kind.MEMBER, host.name)
        vm_state = (vm.status if vm else "absent") if answered("proxmox") else "?"
        nomad = "?" if not answered("nomad") else "not a client" if node is None else (
            node.status + (", draining" if node.drain else "")
            + (", ineligible" if node.eligibility != "eligible" else ""))
        consul = ("absent" if member is None else member.status
                  + (", maintenance" if member.maintenance else "")) if answered("consul") \
            else "?"
        rows.append(tuple(line(str(v)) for v in (
            host.name, host.group or "", host.address or "-", host.vars.get("vmid", "-"),
            vm_state, nomad, consul)))
    return rows


def _build(cfg: Config, flows: NodeWorkflows, args: Any, err: TextIO) -> Workflow | None:
    from .inventory import NodeInvalid

    if args.node_command == "add":
        # proposed and written under the inventory's lock: two adds at once get two nodes
        given = {f: getattr(args, f) for f in SPEC_FIELDS if getattr(args, f, None) is not None}
        try:
            return flows.add(group=args.group, given=given)
        except NodeInvalid as exc:
            for field, why in exc.errors.items():
                print(f"jamtui node add: {field}: {line(why)}", file=err)
            return None
    if args.node_command == "remove":
        if not args.yes:
            print(f"Removing {args.name} drains it, destroys its VM and deletes its inventory "
                  "entry.", file=err)
            try:
                typed = input(f"Type the node's name ({args.name}) to confirm: ").strip()
            except EOFError:
                typed = ""
            if typed != args.name:
                print("not confirmed: nothing done", file=err)
                return None
        return flows.remove(args.name)
    return flows.resume(args.id, "roll back" if args.node_command == "rollback" else "resume")


def _printer(out: TextIO, err: TextIO) -> Any:
    def show(what: str, step: StepState | None, data: Any) -> None:
        if what == "line":
            print(f"[{step.name if step else ''}] {line(data, None)}", file=out, flush=True)
        elif what == "step" and step is not None and step.state != "running":
            print(f"== {step.title}: {step.state}" + (f": {block(step.message)}" if step.message
                                                     else ""), file=err, flush=True)
        elif what == "step" and step is not None and step.progress is None:
            print(f"== {step.title} …", file=err, flush=True)

    return show


