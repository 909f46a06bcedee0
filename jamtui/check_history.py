"""Each Consul check's state changes seen this session, for the service detail.

Fed with the instances the Consul source publishes (every time they change); it keeps, per
instance and check, the first state seen and then every change of status with its time and
the output Consul gave with it. Nothing is persisted: it is what this session saw, and it says
so. Pure: no I/O, no Textual; the caller gives the clock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from .model import ServiceInstance

KEEP = 50  # changes kept per check


@dataclass(frozen=True)
class Transition:
    at: float  # time.time() when it was seen
    status: str
    previous: str  # "" for the first state seen
    output: str

    @property
    def first(self) -> bool:
        return not self.previous


class CheckHistory:
    """(instance id, check id) -> the transitions seen, oldest first."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._seen: dict[tuple[str, str], deque[Transition]] = {}
        self._lock = threading.Lock()  # fed from the store's notifier, read by the UI

    def observe(self, instances: Iterable[ServiceInstance], now: float | None = None) -> int:
        """Record what changed in `instances`; returns how many transitions were added."""
        stamp = time.time() if now is None else now
        added = 0
        with self._lock:
            for inst in instances:
                for check in inst.checks:
                    key = (inst.id, check.check_id)
                    past = self._seen.get(key)
                    if past is None:
                        past = self._seen[key] = deque(maxlen=self.keep)
                        past.append(Transition(stamp, check.status, "", check.output))
                        added += 1
                    elif past[-1].status != check.status:
                        past.append(Transition(stamp, check.status, past[-1].status,
                                               check.output))
                        added += 1
        return added

    def of(self, instance_id: str, check_id: str) -> list[Transition]:
        with self._lock:
            return list(self._seen.get((instance_id, check_id), ()))

    def for_instance(self, instance_id: str) -> dict[str, list[Transition]]:
        with self._lock:
            return {cid: list(ts) for (iid, cid), ts in self._seen.items() if iid == instance_id}
