"""Placeholder: real HTTP servers for allocations (being written)."""

from .context import SimContext
from .world import PortOnlyRuntime


class LabRuntime(PortOnlyRuntime):
    def __init__(self, ctx: SimContext) -> None:
        super().__init__()
        self.ctx = ctx
