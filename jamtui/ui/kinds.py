"""One registry of the kinds of object the cockpit shows: for each, its name in words, the
`:views` that list it, its place in the overview, its columns and the backend that owns it.

A new kind (or a new view of one) is one `register(KindInfo(...))` here; `VIEWS`,
`NAMED_KINDS` and `OVERVIEW_PANES` (the names screens and the palette read) are derived from
it. The columns stay in `columns.py` (`COLUMNS[kind]`) and the owner in `store.OWNER` (the
store needs it for staleness, below the UI); `KindInfo` reads both.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Kind
from ..store import OWNER
from .columns import COLUMNS, Column


@dataclass(frozen=True)
class KindInfo:
    kind: Kind
    word: str = ""  # how the palette names one ("VM"); "" = not searched by name
    views: tuple[tuple[str, str], ...] = ()  # (":name", title) of the views listing it
    overview: str = ""  # the pane's title in the overview; "" = not there
    overview_order: int = 0  # the overview's panes, top to bottom

    @property
    def columns(self) -> list[Column]:
        return list(COLUMNS.get(self.kind, ()))

    @property
    def owner(self) -> str | None:
        """The backend whose health its staleness follows."""
        return OWNER.get(self.kind)


KINDS: dict[Kind, KindInfo] = {}


def register(info: KindInfo) -> KindInfo:
    """Add (or replace) a kind's entry; its views and overview pane follow."""
    KINDS[info.kind] = info
    _derive()
    return info


VIEWS: dict[str, tuple[Kind, str]] = {}  # `:name` → (kind, title)
NAMED_KINDS: dict[Kind, str] = {}  # kind → the word the palette names one by
OVERVIEW_PANES: tuple[tuple[Kind, str], ...] = ()


def _derive() -> None:
    """Refresh the derived tables in place (modules hold references to them)."""
    global OVERVIEW_PANES
    VIEWS.clear()
    NAMED_KINDS.clear()
    for info in KINDS.values():
        VIEWS.update((name, (info.kind, title)) for name, title in info.views)
        if info.word:
            NAMED_KINDS[info.kind] = info.word
    OVERVIEW_PANES = tuple((i.kind, i.overview) for i in sorted(
        (i for i in KINDS.values() if i.overview), key=lambda i: i.overview_order))


for _info in (
    KindInfo(Kind.VM, "VM", (("vms", "VMs"),), "VMs", 2),
    KindInfo(Kind.ALLOCATION, "allocation", (("allocs", "Allocations"),),
             "Nomad allocations", 4),
    KindInfo(Kind.SERVICE, "service", (("services", "Consul services"),),
             "Consul services", 3),
    KindInfo(Kind.JOB, "job", (("jobs", "Nomad jobs"),)),
    KindInfo(Kind.NOMAD_NODE, "Nomad node", (("nodes", "Nomad nodes"),)),
    KindInfo(Kind.HYPERVISOR, "hypervisor", (("hv", "Hypervisors"),), "Hypervisors", 1),
    KindInfo(Kind.STORAGE, "", (("storage", "Storage"),)),
    KindInfo(Kind.INSTANCE, "", (("instances", "Service instances"),)),
    KindInfo(Kind.MEMBER, "Consul node", (("members", "Consul members"),)),
    KindInfo(Kind.ROUTE, "", (("fabio", "Fabio routes"),)),
    KindInfo(Kind.HAPROXY, "", (("haproxy", "HAProxy"),)),
):
    register(_info)
