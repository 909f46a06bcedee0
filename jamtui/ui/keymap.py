"""Every key in one table: the footer, the help screen and the bindings all read it, and the
config's [keys] table rebinds any action by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from textual.binding import Binding, BindingsMap

from ..model import Kind


@dataclass(frozen=True)
class Key:
    action: str  # a Textual action name on the screen or app
    keys: str  # comma-separated Textual key names
    description: str
    scope: str = "global"  # global, table, detail, or a Kind value for object actions
    show: bool = True  # in the footer
    destructive: bool = False
    refused_id: str = ""  # a key refused under --read-only keeps its own binding id

    @property
    def id(self) -> str:
        """The binding's id (Textual's keymap, and the name [keys] rebinds it by)."""
        return self.refused_id or action_name(self)


KEYMAP: tuple[Key, ...] = (
    Key("command_bar", "colon", "view", show=True),
    Key("previous_view", "minus", "previous view", show=False),
    Key("filter", "slash", "filter", scope="table"),
    Key("open", "enter", "detail", scope="table"),
    Key("back", "escape", "back", show=False),
    Key("help", "question_mark", "keys"),
    Key("command_palette", "ctrl+p", "palette", show=False),
    Key("next_pane", "tab", "next pane", scope="table", show=False),
    # every table: moving (PgUp/PgDn, Home/End, Ctrl+Home/End are DataTable's own) and sorting
    Key("cursor_down", "j", "down", scope="table", show=False),
    Key("cursor_up", "k", "up", scope="table", show=False),
    Key("top", "g", "first row", scope="table", show=False),
    Key("bottom", "G", "last row", scope="table", show=False),
    Key("half_down", "ctrl+d", "half a page down", scope="table", show=False),
    Key("half_up", "ctrl+u", "half a page up", scope="table", show=False),
    Key("sort_previous", "less_than_sign", "sort by the previous column", scope="table",
        show=False),
    Key("sort_next", "greater_than_sign", "sort by the next column", scope="table",
        show=False),
    Key("sort_reverse", "exclamation_mark", "reverse the sort", scope="table", show=False),
    Key("toggle_dark", "ctrl+t", "theme", show=False),
    Key("tails", "L", "open tails"),
    Key("quit", "q", "quit"),
    # object actions, by the kind of the focused table or detail
    Key("act('vm_start')", "u", "start", scope=Kind.VM.value),
    Key("act('vm_shutdown')", "x", "shutdown", scope=Kind.VM.value, destructive=True),
    Key("act('vm_stop')", "X", "stop (hard)", scope=Kind.VM.value, destructive=True),
    Key("act('vm_reboot')", "R", "reboot", scope=Kind.VM.value, destructive=True),
    Key("act('vm_migrate')", "M", "migrate", scope=Kind.VM.value, destructive=True),
    Key("act('alloc_restart')", "r", "restart", scope=Kind.ALLOCATION.value, destructive=True),
    Key("act('alloc_stop')", "x", "stop", scope=Kind.ALLOCATION.value, destructive=True),
    Key("act('job_stop')", "x", "stop", scope=Kind.JOB.value, destructive=True),
    Key("act('job_start')", "u", "start", scope=Kind.JOB.value),
    Key("act('job_scale')", "c", "scale", scope=Kind.JOB.value),
    Key("act('job_run')", "n", "run a job file", scope=Kind.JOB.value),
    Key("act('job_history')", "h", "versions", scope=Kind.JOB.value),
    Key("act('job_spec')", "v", "spec", scope=Kind.JOB.value),
    Key("act('job_deployments')", "d", "deployments", scope=Kind.JOB.value),
    Key("act('deployment_promote')", "p", "promote", scope=Kind.JOB.value, destructive=True),
    Key("act('deployment_fail')", "f", "fail deployment", scope=Kind.JOB.value,
        destructive=True),
    Key("act('node_drain')", "n", "drain", scope=Kind.NOMAD_NODE.value, destructive=True),
    Key("act('node_eligibility')", "e", "eligibility", scope=Kind.NOMAD_NODE.value),
    Key("act('node_maintenance')", "m", "maintenance", scope=Kind.MEMBER.value,
        destructive=True),
    Key("act('node_add')", "a", "add node", scope=Kind.VM.value),
    Key("act('node_remove')", "D", "remove node", scope=Kind.VM.value, destructive=True),
    Key("act('logs')", "l", "logs", scope=Kind.ALLOCATION.value),
    Key("act('logs')", "l", "logs", scope=Kind.JOB.value),
    Key("act('logs')", "l", "logs", scope=Kind.VM.value),
    Key("act('logs')", "l", "logs", scope=Kind.HYPERVISOR.value),
    Key("act('shell')", "s", "shell", scope=Kind.ALLOCATION.value),
    Key("act('shell')", "s", "shell", scope=Kind.VM.value),
    Key("act('shell')", "s", "shell", scope=Kind.HYPERVISOR.value),
)

READ_ONLY_OK = {"act('logs')", "act('job_history')", "act('job_spec')",
                "act('job_deployments')"}  # object keys that change nothing, kept under --read-only


def usable(action: str, read_only: bool) -> bool:
    """The one place read-only is decided, for tables, details, the palette and `?`: under
    --read-only an object action is offered only if it changes nothing."""
    return not (read_only and action.startswith("act(") and action not in READ_ONLY_OK)


READ_ONLY_WHY = "read-only: started with --read-only"


def refused(key: Key) -> Key:
    """Under --read-only, an object key that would change something: bound still, so that
    pressing it says why nothing happens (JamApp.action_refused), hidden from the footer."""
    return replace(key, action=f"app.refused({key.description!r})", show=False,
                   refused_id=key.id)


def action_name(key: Key) -> str:
    """The name the config uses: `vm_start` for act('vm_start'), else the action itself."""
    if key.action.startswith("act('"):
        return key.action[5:-2]
    return key.action


def screen_binding_ids() -> set[str]:
    """The ids of the screens' own bindings (the log viewer's, the workflow screen's, the
    dialogs'): [keys] rebinds them too, through `App.set_keymap`."""
    from textual.dom import DOMNode

    from . import (
        check_view,
        events_view,
        intentions_view,
        kv_view,
        log_view,
        routing_view,
        screens,
        snapshots,
        storage_view,
        tasks_view,
        workflow_view,
    )

    ids: set[str] = set()
    for module in (log_view, routing_view, screens, workflow_view, kv_view, intentions_view,
                   check_view, events_view, snapshots, storage_view, tasks_view):
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, DOMNode)
                    and obj.__module__.startswith("jamtui")):
                ids.update(b.id for b in obj.__dict__.get("BINDINGS", ())
                           if isinstance(b, Binding) and b.id)
    return ids


def with_overrides(overrides: Mapping[str, str]) -> tuple[Key, ...]:
    """The keymap with the config's [keys] table applied (binding id → keys); an id that is
    no binding's is refused in words. The app also gives the table to `App.set_keymap`, which
    rebinds the screens' own bindings by the same ids. Without a table there is nothing to
    check: the screens' modules (the log viewer's, the workflows', :kv …, 0.1 s and more of
    the cockpit's start on its main thread) are imported when a screen needs one."""
    if not overrides:
        return KEYMAP
    known = {action_name(k) for k in KEYMAP} | screen_binding_ids()
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"[keys]: unknown action(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    return tuple(replace(k, keys=overrides.get(action_name(k), k.keys)) for k in KEYMAP)


def binding(key: Key) -> Binding:
    return Binding(key.keys, key.action, key.description, show=key.show, id=key.id)


def bindings(keymap: tuple[Key, ...], scopes: set[str]) -> list[Binding]:
    return [binding(k) for k in keymap if k.scope in scopes]


def bind(bindings_map: BindingsMap, key: Key) -> None:
    """Add one key of the table to a node's bindings, with its id (so `set_keymap` sees it)."""
    for one in Binding.make_bindings([binding(key)]):
        bindings_map.key_to_bindings.setdefault(one.key, []).append(one)


def for_scopes(keymap: tuple[Key, ...], scopes: set[str]) -> list[Key]:
    return [k for k in keymap if k.scope in scopes]
