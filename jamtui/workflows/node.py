"""Node add and node remove: the lab's promise that a node is an inventory entry away.

add:    inventory entry → Packer template (only when missing) → Terraform plan, shown and
        approved → apply for that host only → wait for SSH → Ansible for that host (and the
        DNS and bastion hosts, whose records and backends come from the inventory) → verify it
        joined Consul (and Nomad for `vs`) and resolves in internal DNS.
remove: Nomad drain → Consul leave → Terraform destroy plan, shown and approved → apply →
        inventory entry removed → Ansible for DNS and bastion → verify the name is gone.

The tools run as they are (`[provisioning]` says where); in the demo the lab provides
stand-ins that speak their machine-readable output and act on the lab.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..config import Config
from ..engine import Engine
from ..inventory import (
    InventoryError,
    NodeSpec,
    add_proposed,
    check_inventory,
    load_inventory,
    remove_node,
    resolve_names,
    restore_inventory,
)
from ..model import Kind
from ..sources.dns import resolve
from ..sources.ssh import host_target, pool_for
from .journal import Journal
from .parsers import Event, ansible_line, packer_line, terraform_line
from .runner import Cancelled, StepFailed, ToolRun, run_tool, start_time
from .workflow import Step, StepContext, Workflow

ANSIBLE_CALLBACKS = Path(__file__).parent / "ansible_callback"
TF_RESOURCE = "proxmox_vm_qemu.node"
# waiting on a new VM (SSH, joining, leaving, draining): ask again soon at first, then every
# 1-2 s; a VM that boots in a second is not kept waiting for a fixed 2 s
_FIRST_RETRY = 0.25


def tf_address(name: str) -> str:
    return f'{TF_RESOURCE}["{name}"]'


class NodeWorkflows:
    """Builds node workflows on an engine (started: its store is what `verify` watches)."""

    def __init__(self, config: Config, engine: Engine,
                 approver: Callable[[str, str], bool] | None = None) -> None:
        self.cfg = config
        self.engine = engine
        self.approver = approver
        self.prov = config.provisioning
        self.root = Path(config.provisioners).expanduser()
        self._planned = 0  # changes in the last plan shown, for the apply's progress

    # -- building ----------------------------------------------------------------------------

    def add(self, spec: NodeSpec | None = None, *, group: str = "",
            given: dict[str, Any] | None = None,
            addresses: dict[str, str] | None = None) -> Workflow:
        """A node add whose inventory entry is written now: `spec` as the operator chose it,
        or the group's next node with `given` fixing some fields, proposed under the
        inventory's lock (two adds at once get different nodes). Refused with the reasons
        (NodeInvalid, nothing written) when a value is taken. `addresses`: the inventory's
        host names resolved (`resolve_names`); resolved here through the internal DNS when
        not given."""
        if addresses is None:
            addresses = self._addresses()
        if spec is not None:
            group, given = spec.group, {k: v for k, v in asdict(spec).items() if k != "group"}
        made: list[Journal] = []

        def journal_it(chosen: NodeSpec, before: str, after: str) -> None:
            journal = Journal.create(self.prov.state_dir, "node-add",
                                     {"name": chosen.name, **asdict(chosen)})
            made.append(journal)
            self._journal_write(journal, chosen, before, after)

        try:
            inv, chosen = add_proposed(self.cfg.inventory, group, given, journal_it,
                                       addresses=addresses)
        except (InventoryError, OSError) as exc:
            if made:  # the journal was made, the write failed: said there too
                made[0].record("step", step="inventory", state="failed", message=str(exc))
                made[0].record("end", state="failed", message=str(exc))
            raise
        journal = made[0]
        self._journal_written(journal, chosen, inv)
        return self._add(journal, chosen)

    def _addresses(self) -> dict[str, str]:
        """The inventory checked, and its hosts written by name resolved (only those: a
        new node's IP is checked against every host's)."""
        from ..sources.dns import addresses_of

        inv = check_inventory(load_inventory(self.cfg.inventory))
        return resolve_names(inv, addresses_of(self.cfg.dns.server))

    def _journal_write(self, journal: Journal, spec: NodeSpec, before: str, after: str) -> None:
        """Under the inventory's lock, before the file is replaced: the file as it was and as
        it will be (a rejected plan puts it back byte for byte), and that this workflow writes
        this entry (a rollback removes only an entry its own workflow wrote)."""
        (journal.dir / "inventory.before").write_text(before, encoding="utf-8")
        (journal.dir / "inventory.after").write_text(after, encoding="utf-8")
        journal.record("step", step="inventory", state="running")
        journal.record("inventory-write", name=spec.name, vars=spec.host_vars())

    def _journal_written(self, journal: Journal, spec: NodeSpec, inv: Any) -> str:
        self._inventory_changed(inv)
        line = f"{spec.name}: " + ", ".join(f"{k}={v}" for k, v in spec.host_vars().items())
        journal.log("inventory", line)
        journal.show("inventory", line)
        message = f"{spec.name} added to {inv.path}"
        journal.record("step", step="inventory", state="done", message=message)
        return message

    def remove(self, name: str) -> Workflow:
        inv = load_inventory(self.cfg.inventory)
        host = inv.host(name)
        if host is None:
            raise InventoryError(f"{self.cfg.inventory}: no host {name!r}")
        if host.group not in ("vb", "vs"):
            raise InventoryError(f"{name} is in group {host.group!r}: only vb and vs nodes are "
                                 "removed by jamtui")
        params = {"name": name, "group": host.group, "ip": str(host.address or "")}
        journal = Journal.create(self.prov.state_dir, "node-remove", params)
        return self._remove(journal, params)

    def resume(self, id_: str, verb: str = "resume") -> Workflow:
        """The workflow, to run again from the step that did not finish (of its rollback, if
        one began)."""
        wf = self.load(id_)
        if wf.state in ("done", "rolled-back", "running"):
            raise StepFailed(f"workflow {id_} is {wf.state}: nothing to {verb}")
        return wf

    def load(self, id_: str) -> Workflow:
        """The workflow as its journal left it (states, messages, step logs)."""
        journal = Journal.open(self.prov.state_dir, id_)
        head = journal.entries()[0]
        params = head.get("params") or {}
        if head.get("kind") == "node-add":
            fields = {k: params[k] for k in ("group", "name", "ip", "vmid", "cores", "memory",
                                             "disk", "hypervisor")}
            return self._add(journal, NodeSpec(**fields))
        if head.get("kind") == "node-remove":
            return self._remove(journal, params)
        raise StepFailed(f"workflow {id_}: unknown kind {head.get('kind')!r}")

    def _add(self, journal: Journal, spec: NodeSpec) -> Workflow:
        name = spec.name
        steps = [
            Step("inventory", f"add {name} to the inventory", lambda c: self._inv_add(c, spec)),
            Step("template", "VM template (Packer, if missing)",
                 lambda c: self._before_apply(c, spec, self._template)),
            Step("plan", "Terraform plan", lambda c: self._before_apply(
                c, spec, lambda c: self._plan(c, name, destroy=False))),
            Step("apply", "Terraform apply", lambda c: self._apply(c, name, creates=spec.vmid),
                 redo=("plan",)),
            Step("ssh", "wait for SSH", lambda c: self._wait_ssh(c, name)),
            Step("ansible", "Ansible", lambda c: self._ansible(c, self._limit(spec.group, name))),
            Step("verify", "verify it joined", lambda c: self._verify_joined(c, spec)),
        ]
        # a rollback undoes only what this workflow's journal records as its own doing
        rollback = [
            Step("destroy-plan", "Terraform destroy plan", lambda c: self._plan_own_vm(c, spec)),
            Step("destroy", "Terraform apply (destroy)", lambda c: self._apply(c, name),
                 redo=("destroy-plan",)),
            Step("uninventory", f"remove {name} from the inventory",
                 lambda c: self._inv_unwrite(c, spec)),
        ]
        return Workflow("node-add", asdict(spec), steps, journal, self.approver, rollback,
                        lambda: self._add_rollback_refusal(journal, spec))

    def _remove(self, journal: Journal, params: dict[str, Any]) -> Workflow:
        name, group = params["name"], params.get("group", "")
        steps = [
            Step("drain", "Nomad drain", lambda c: self._drain(c, name)),
            Step("leave", "Consul leave", lambda c: self._leave(c, name, params.get("ip", ""))),
            Step("plan", "Terraform destroy plan", lambda c: self._plan(c, name, destroy=True)),
            Step("apply", "Terraform apply (destroy)", lambda c: self._apply(c, name),
                 redo=("plan",)),
            Step("inventory", f"remove {name} from the inventory",
                 lambda c: self._inv_remove(c, name)),
            Step("ansible", "Ansible (DNS and bastion)",
                 lambda c: self._ansible(c, self._limit(group, None))),
            Step("verify", "verify it is gone", lambda c: self._verify_gone(c, name)),
        ]
        return Workflow("node-remove", params, steps, journal, self.approver)

    # -- steps -------------------------------------------------------------------------------

    def _inv_add(self, ctx: StepContext, spec: NodeSpec) -> str:
        """Run only on a resume: the entry was written when the workflow was made, unless the
        jamtui died while writing it or a rejected plan took it out again."""
        journal = ctx.workflow.journal
        inv = load_inventory(self.cfg.inventory)
        if self._wrote_entry(journal, spec) and self._entry_is(inv, spec):
            return f"{spec.name} already in {inv.path} (written by this workflow)"
        given = {k: v for k, v in asdict(spec).items() if k != "group"}
        try:
            after, _ = add_proposed(self.cfg.inventory, spec.group, given,
                                    lambda s, b, a: self._journal_write(journal, s, b, a),
                                    addresses=self._addresses())
        except InventoryError as exc:
            raise StepFailed(str(exc)) from None
        self._inventory_changed(after)
        ctx.log(f"{spec.name}: " + ", ".join(f"{k}={v}" for k, v in spec.host_vars().items()))
        return f"{spec.name} added to {after.path}"

    # -- what this workflow did itself, by its journal ---------------------------------------

    @staticmethod
    def _wrote_entry(journal: Journal, spec: NodeSpec) -> bool:
        """The journal says this workflow wrote the entry (and no rejected plan undid it)."""
        wrote = journal.last("inventory-write", name=spec.name)
        undone = journal.last("inventory-undone", name=spec.name)
        return wrote is not None and (undone is None or undone["at"] < wrote["at"])

    @staticmethod
    def _entry_is(inv: Any, spec: NodeSpec) -> bool:
        host = inv.host(spec.name)
        return host is not None and all(host.vars.get(k) == v
                                        for k, v in spec.host_vars().items())

    @staticmethod
    def _created_vm(journal: Journal, spec: NodeSpec) -> bool:
        """This workflow's apply was started with a plan that creates the VM."""
        return journal.last("vm-create", name=spec.name) is not None

    def _add_rollback_refusal(self, journal: Journal, spec: NodeSpec) -> str:
        if self._wrote_entry(journal, spec) or self._created_vm(journal, spec):
            return ""
        first = journal.step_states().get("inventory", {})
        why = f" (its first step: {first['message']})" if first.get("message") else ""
        return (f"nothing to roll back: workflow {journal.id} wrote no inventory entry and "
                f"created no VM{why}; {spec.name} and its VM, if any, are not its own")

    def _before_apply(self, ctx: StepContext, spec: NodeSpec,
                      body: Callable[[StepContext], str]) -> str:
        """A rejected or cancelled plan (or template build) applied nothing: the inventory is
        put back as it was, on its own, and the workflow says so."""
        try:
            return body(ctx)
        except Cancelled as exc:
            undone = self._unwrite(ctx, spec)
            raise Cancelled(f"{exc}; {undone}") from None

    def _unwrite(self, ctx: StepContext, spec: NodeSpec) -> str:
        journal = ctx.workflow.journal
        if not self._wrote_entry(journal, spec):
            return f"{spec.name} was not written to the inventory by this workflow"
        inv = load_inventory(self.cfg.inventory)
        if not self._entry_is(inv, spec):
            return (f"{spec.name} in the inventory is not the entry this workflow wrote: "
                    "left as it is")
        try:
            before = (journal.dir / "inventory.before").read_text(encoding="utf-8")
            after = (journal.dir / "inventory.after").read_text(encoding="utf-8")
            exact = restore_inventory(self.cfg.inventory, after, before)
            result = remove_node(self.cfg.inventory, spec.name) if not exact else \
                load_inventory(self.cfg.inventory)
        except (InventoryError, OSError) as exc:
            return f"{spec.name} could not be taken out of the inventory: {exc}"
        self._inventory_changed(result)
        message = (f"{spec.name} taken out of the inventory again" +
                   (" (the file is as it was, byte for byte)" if exact else
                    " (the file was edited since: only that entry removed)"))
        ctx.log(message)
        journal.record("inventory-undone", name=spec.name)
        journal.record("step", step="inventory", state="undone", message=message)
        st = ctx.workflow.states.get("inventory")
        if st is not None:
            st.state, st.message = "pending", message
            ctx.workflow.emit("step", st, None)
        return message

    def _plan_own_vm(self, ctx: StepContext, spec: NodeSpec) -> str:
        """The destroy plan, only for the VM this workflow's apply created."""
        name = spec.name
        if not self._created_vm(ctx.workflow.journal, spec):
            self._planfile(ctx).unlink(missing_ok=True)
            return "skipped: this workflow created no VM"
        vm = self.engine.store.vm_named(name)
        if vm is not None and vm.vmid != spec.vmid:
            raise StepFailed(f"VM {name} is VMID {vm.vmid}, not the {spec.vmid} this workflow "
                             "created: left alone")
        # Terraform itself says what is left to destroy (the apply may have stopped half-way)
        return self._plan(ctx, name, destroy=True)

    def _inv_unwrite(self, ctx: StepContext, spec: NodeSpec) -> str:
        journal = ctx.workflow.journal
        if not self._wrote_entry(journal, spec):
            return "skipped: this workflow wrote no inventory entry"
        inv = load_inventory(self.cfg.inventory)
        if inv.host(spec.name) is None:
            return f"skipped: {spec.name} is not in the inventory"
        if not self._entry_is(inv, spec):
            raise StepFailed(f"{spec.name} in {inv.path} is not the entry this workflow wrote "
                             f"({', '.join(f'{k}={v}' for k, v in spec.host_vars().items())}): "
                             "left as it is")
        try:
            before = (journal.dir / "inventory.before").read_text(encoding="utf-8")
            after_text = (journal.dir / "inventory.after").read_text(encoding="utf-8")
        except OSError:
            before = after_text = ""
        if before and restore_inventory(self.cfg.inventory, after_text, before):
            self._inventory_changed(load_inventory(self.cfg.inventory))
            return f"{spec.name} removed from {inv.path} (the file is as it was before the add)"
        return self._inv_remove(ctx, spec.name)

    def _inv_remove(self, ctx: StepContext, name: str) -> str:
        try:
            after = remove_node(self.cfg.inventory, name)
        except InventoryError as exc:
            raise StepFailed(str(exc)) from None
        self._inventory_changed(after)
        return f"{name} removed from {after.path}"

    def _inventory_changed(self, inv: Any) -> None:
        self.engine.inventory = inv
        proxmox = self.engine.sources.get("proxmox")
        if proxmox is not None:
            proxmox.inventory = inv

    def _template(self, ctx: StepContext) -> str:
        proxmox = self.engine.sources.get("proxmox")
        if proxmox is None:
            raise StepFailed("Proxmox is not configured: cannot look for the template")
        proxmox.refresh()
        found = [vm for vm in self.engine.store.items(Kind.VM)
                 if vm.template and vm.name == self.prov.template]
        if found:
            return f"skipped: template {self.prov.template} exists (VMID {found[0].vmid})"
        template = self.root / self.prov.packer_template
        node = self.prov.template_node or next(
            (h.name for h in load_inventory(self.cfg.inventory).group("hypervisors")), "")
        argv = [self.prov.packer, "build", "-machine-readable", "-force",
                "-var", f"proxmox_node={node}", "-var", f"template_name={self.prov.template}",
                template.name]
        self._tool(ctx, argv, packer_line, cwd=template.parent)
        return f"template {self.prov.template} built on {node}"

    def _terraform(self, ctx: StepContext, *args: str,
                   on_event: Callable[[Event], None] | None = None) -> ToolRun:
        return self._tool(ctx, [self.prov.terraform, *args], terraform_line,
                          cwd=self.root / "terraform", on_event=on_event)

    def _plan(self, ctx: StepContext, name: str, destroy: bool) -> str:
        self._terraform(ctx, "init", "-input=false", "-no-color")
        plan = self._planfile(ctx)
        plan.unlink(missing_ok=True)
        run = self._terraform(ctx, "plan", "-json", "-input=false", "-no-color",
                              *(["-destroy"] if destroy else []),
                              f"-target={tf_address(name)}", f"-out={plan}")
        text, summary = describe_plan(run.events)
        counts = next((e.data for e in reversed(run.events) if e.kind == "summary"), {})
        if destroy and not any(counts.get(k, 0) for k in ("add", "change", "remove")):
            plan.unlink(missing_ok=True)  # nothing to destroy: nothing to approve or apply
            ctx.workflow.notes["nothing_to_destroy"] = True
            return f"skipped: {summary}"
        ctx.workflow.notes["plan_actions"] = {(e.data.get("action"), e.resource)
                                              for e in run.events
                                              if e.kind == "message" and e.data.get("action")}
        ctx.approve(f"Terraform plan for {name}", text)
        counts = next((e.data for e in reversed(run.events) if e.kind == "summary"), {})
        self._planned = sum(counts.get(k, 0) for k in ("add", "change", "remove"))
        return summary

    def _apply(self, ctx: StepContext, name: str, creates: int | None = None) -> str:
        plan = self._planfile(ctx)
        if not plan.exists():
            if ctx.step.name == "destroy" or ctx.workflow.notes.get("nothing_to_destroy"):
                return "skipped: nothing planned"
            raise StepFailed("no saved plan: the plan step must run first (resume reruns it)")
        total = max(1, self._planned)
        if creates is not None and ("create", tf_address(name)) in ctx.workflow.notes.get(
                "plan_actions", ()):
            # journalled before it runs: a rollback may destroy only a VM its own apply made
            ctx.workflow.journal.record("vm-create", name=name, vmid=creates)

        def count(event: Event) -> None:
            if event.kind == "done":  # one planned change applied
                ctx.progress(min(1.0, (ctx.step.progress or 0) + 1 / total))

        run = self._terraform(ctx, "apply", "-json", "-input=false", "-no-color", str(plan),
                              on_event=count)
        plan.unlink(missing_ok=True)
        summary = next((e for e in reversed(run.events) if e.kind == "summary"), None)
        return summary.message if summary else "applied"

    def _planfile(self, ctx: StepContext) -> Path:
        """The saved plan, in the workflow's own journal directory: two operators' workflows
        never apply each other's plan."""
        return ctx.workflow.journal.dir / "tfplan"

    def _wait_ssh(self, ctx: StepContext, name: str) -> str:
        inv = load_inventory(self.cfg.inventory)
        target = host_target(inv, name, self.cfg)
        pool = pool_for(self.cfg, inv)
        deadline = time.monotonic() + self.prov.ssh_timeout
        last = ""
        pause = _FIRST_RETRY
        try:
            while True:
                try:
                    banner = pool.banner(target, timeout=5)
                    return f"{target.address}:{target.port} answers: {banner}"
                except Exception as exc:
                    why = str(exc) or type(exc).__name__
                    if why != last:
                        ctx.log(f"not yet: {why}")
                        last = why
                if time.monotonic() > deadline:
                    raise StepFailed(f"{name} ({target.address}:{target.port}) did not answer "
                                     f"on SSH within {self.prov.ssh_timeout:g} s: {last}")
                ctx.wait(pause)
                pause = min(pause * 2, 2.0)
        finally:
            pool.close()

    def _limit(self, group: str, name: str | None) -> str:
        """The host, plus those whose config comes from the inventory: internal DNS and, for
        `vs`, the bastion's HAProxy backends."""
        inv = load_inventory(self.cfg.inventory)
        hosts = [name] if name else []
        hosts += [h.name for h in inv.group("dns")]
        if group == "vs":
            hosts += [h.name for h in inv.group("bastion")]
        return ",".join(hosts)

    def _ansible(self, ctx: StepContext, limit: str) -> str:
        argv = [self.prov.ansible_playbook, "-i", str(Path(self.cfg.inventory).expanduser()),
                str(self.root / self.prov.playbook), "--limit", limit]
        if self.prov.vault_password_file:
            argv += ["--vault-password-file", self.prov.vault_password_file]
        env = {"ANSIBLE_STDOUT_CALLBACK": "jamtui_events",
               "ANSIBLE_CALLBACK_PLUGINS": str(ANSIBLE_CALLBACKS),
               "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_HOST_KEY_CHECKING": "1"}
        tasks = 0

        def count(event: Event) -> None:
            nonlocal tasks
            if event.message.startswith("TASK "):
                tasks += 1
                ctx.progress(1 - 1 / (1 + tasks / 10), event.message)

        run = self._tool(ctx, argv, ansible_line, cwd=self.root / "ansible", env=env,
                         on_event=count)
        summary = next((e for e in reversed(run.events) if e.kind == "summary"), None)
        return f"{limit}: {summary.message if summary else 'done'}"

    def _verify_joined(self, ctx: StepContext, spec: NodeSpec) -> str:
        store = self.engine.store
        need = ["consul"] + (["nomad"] if spec.group == "vs" else []) + ["dns"]
        deadline = time.monotonic() + self.prov.join_timeout
        pause = _FIRST_RETRY
        fqdn = self._fqdn(spec.name)
        while True:
            missing = []
            member = store.get(Kind.MEMBER, spec.name)
            if member is None or member.status != "alive":
                missing.append(f"Consul member {member.status if member else 'absent'}")
            if "nomad" in need:
                node = next((n for n in store.items(Kind.NOMAD_NODE) if n.name == spec.name), None)
                if node is None or node.status != "ready":
                    missing.append(f"Nomad node {node.status if node else 'absent'}")
            answer = self._resolve(fqdn)
            if spec.ip not in answer:
                missing.append(f"{fqdn} resolves to {', '.join(answer) or 'nothing'}")
            if not missing:
                return f"{spec.name}: Consul alive" + (", Nomad ready" if "nomad" in need
                                                       else "") + f", {fqdn} → {spec.ip}"
            ctx.progress(1 - len(missing) / len(need), "waiting: " + "; ".join(missing))
            if time.monotonic() > deadline:
                raise StepFailed(f"{spec.name} did not join within "
                                 f"{self.prov.join_timeout:g} s: " + "; ".join(missing))
            self._refresh_consul()
            ctx.wait(pause)
            pause = min(pause * 2, 1.0)

    def _verify_gone(self, ctx: StepContext, name: str) -> str:
        fqdn = self._fqdn(name)
        deadline = time.monotonic() + self.prov.join_timeout
        pause = _FIRST_RETRY
        while True:
            answer = self._resolve(fqdn)
            member = self.engine.store.get(Kind.MEMBER, name)
            left = member is None or member.status in ("left",)
            if not answer and left:
                return f"{fqdn} no longer resolves; {name} has left Consul"
            if time.monotonic() > deadline:
                raise StepFailed(f"{name} still there after {self.prov.join_timeout:g} s: "
                                 f"DNS {', '.join(answer) or 'gone'}, Consul "
                                 f"{member.status if member else 'gone'}")
            self._refresh_consul()
            ctx.wait(pause)
            pause = min(pause * 2, 1.0)

    def _drain(self, ctx: StepContext, name: str) -> str:
        store = self.engine.store
        node = next((n for n in store.items(Kind.NOMAD_NODE) if n.name == name), None)
        if node is None:
            return f"skipped: {name} is not a Nomad client"
        nomad = self.engine.sources["nomad"]
        if node.status == "ready":
            nomad.drain(node.id, True)
        deadline = time.monotonic() + self.prov.join_timeout
        pause = _FIRST_RETRY
        while True:
            node = store.get(Kind.NOMAD_NODE, node.id) or node
            running = [a for a in store.allocs_on(node.id) if a.client_status == "running"]
            if node.status != "ready" or (not node.drain and not running) or (
                    not node.drain and node.eligibility == "ineligible"):
                return f"{name} drained" + (f"; {len(running)} system allocation(s) stay "
                                            "until the VM goes" if running else "")
            ctx.progress(0.5, f"{len(running)} allocation(s) still running on {name}")
            if time.monotonic() > deadline:
                raise StepFailed(f"{name} still has {len(running)} running allocation(s) "
                                 f"after {self.prov.join_timeout:g} s")
            ctx.wait(pause)
            pause = min(pause * 2, 1.0)

    def _leave(self, ctx: StepContext, name: str, ip: str) -> str:
        consul_src = self.engine.sources["consul"]
        member = self.engine.store.get(Kind.MEMBER, name)
        if member is None or member.status == "left":
            return f"skipped: {name} is not a Consul member"
        try:
            return consul_src.node_leave(name, member.address or ip)
        except Exception as exc:
            raise StepFailed(f"Consul leave of {name} failed: {exc}") from None

    # -- helpers -----------------------------------------------------------------------------

    def _tool(self, ctx: StepContext, argv: list[str], parse: Callable[[str], Event | None],
              cwd: Path, env: dict[str, str] | None = None,
              on_event: Callable[[Event], None] | None = None) -> ToolRun:
        ctx.log("$ " + " ".join(argv))

        def both(event: Event) -> None:
            ctx.event(event)
            if on_event is not None:
                on_event(event)

        journal, tool = ctx.workflow.journal, Path(argv[0]).name
        started: list[tuple[int, int | None]] = []

        def record(pid: int) -> None:
            # pid and start time: a resume after a killed jamtui finds this very process
            started.append((pid, start_time(pid)))
            journal.record("tool", step=ctx.step.name, tool=tool, pid=pid, start=started[0][1])

        try:
            return run_tool(argv, parse=parse, cwd=cwd, env={**self._tool_env(), **(env or {})},
                            on_line=ctx.raw, on_event=both, cancel=ctx.cancel, on_start=record)
        finally:
            if started:
                journal.record("tool-end", step=ctx.step.name, pid=started[0][0],
                               start=started[0][1])

    def _tool_env(self) -> dict[str, str]:
        """Credentials by the environment variables the tools and their Proxmox plugins read,
        never on the command line (where `ps` shows them) and never logged."""
        pve = self.cfg.proxmox
        env = {"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1",
               "TF_VAR_template_name": self.prov.template}
        if pve.address:
            api = pve.address.rstrip("/") + "/api2/json"
            env |= {"PM_API_URL": api, "PM_API_TOKEN_ID": pve.token_id,
                    "PM_API_TOKEN_SECRET": pve.token_secret.reveal(),
                    "PROXMOX_URL": api, "PROXMOX_USERNAME": pve.token_id,
                    "PROXMOX_TOKEN": pve.token_secret.reveal()}
        if pve.ca_file:
            env["SSL_CERT_FILE"] = str(self._ca_bundle(Path(pve.ca_file).expanduser()))
        if os.environ.get("NO_COLOR") is None:
            env["NO_COLOR"] = "1"
        return env

    def _ca_bundle(self, ca_file: Path) -> Path:
        """The system's CAs plus the configured Proxmox CA, for tools that take one bundle
        (Go's SSL_CERT_FILE replaces the system's: `terraform init` still needs those)."""
        import ssl

        bundle = Path(self.prov.state_dir).expanduser() / "ca-bundle.pem"
        system = os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile
        parts = [Path(system).read_text()] if system and Path(system).is_file() else []
        parts.append(ca_file.read_text())
        bundle.parent.mkdir(parents=True, exist_ok=True)
        # whole or not at all: a second workflow started at the same moment (two operators,
        # two `node add`s) would otherwise truncate the file under the first one's Terraform
        # ("[X509] PEM lib" in its plan)
        fd, tmp = tempfile.mkstemp(dir=bundle.parent, prefix=".ca-bundle.", suffix=".pem")
        try:
            with os.fdopen(fd, "w") as out:
                out.write("\n".join(parts))
            os.chmod(tmp, 0o644)
            os.replace(tmp, bundle)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return bundle

    def _fqdn(self, name: str) -> str:
        inv = load_inventory(self.cfg.inventory)
        domain = inv.vars.get("lab_domain", "")
        return f"{name}.{domain}" if domain else name

    def _resolve(self, fqdn: str) -> tuple[str, ...]:
        if not self.cfg.dns.server:
            return ()
        return resolve(fqdn, self.cfg.dns.server, timeout=2.0).addresses

    def _refresh_consul(self) -> None:
        consul_src = self.engine.sources.get("consul")
        if consul_src is not None:
            with contextlib.suppress(Exception):
                consul_src.read_cluster()


def describe_plan(events: list[Event]) -> tuple[str, str]:
    """The plan in words (each planned change, then the summary) and its one-line summary."""
    lines = []
    for e in events:
        if e.kind == "message" and e.data.get("action"):
            lines.append(f"  {e.data['action']:>8}  {e.resource}")
        elif e.level in ("warn", "error") and e.kind != "message":
            lines.append(f"  {e.level}: {e.message}")
    summary = next((e for e in reversed(events) if e.kind == "summary"), None)
    head = summary.message if summary else "no changes"
    return "\n".join([*lines, head]), head
