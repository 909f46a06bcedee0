"""The cyclic garbage collector while the cockpit starts.

Until the first picture is in, the heap only grows: the sources decode thousands of records,
the screens are composed and drawn. Every full collection meanwhile walked all of it for
nothing (at 5,000 allocations five of them, with the young ones, ~0.45 s of CPU of a first
frame that is CPU-bound: one GIL for the UI and the sources' threads). So the collector is
off from the cockpit's start (`hold`, before the engine starts) until the first picture has
settled, when what is alive is frozen out of its sight and it is turned on again
(`release`, from `JamApp`; at the latest `HOLD_MAX` seconds after the app mounted, however
slow a backend is). Records are freed by their reference counts meanwhile, as always; only
reference cycles made during the start-up wait for the collector, and the freeze keeps them
(once, bounded: the collections of a 5k start-up found ~16,000 such objects; the TUI's RSS
25 s after start stayed within its run-to-run spread, 136-168 MiB).

The one-shot commands (`status`, `snapshot`) `hold` it too, and never release it: they live
seconds and free their records by reference count. Outside `jamtui.ui`, so that they use it
without importing the UI.
"""

from __future__ import annotations

import gc

HOLD_MAX = 30.0  # seconds after the app mounted the collector is on again, whatever happens

# the young generation's size once the cockpit runs (Python's is 700 objects). Drawing makes
# container objects by the ten thousand (each of Textual's Strips, a drawn line or a piece of
# one, carries seven caches): with 700, opening `:allocs` at 5,000 allocations ran well over
# a hundred young passes and, nearly every time, a full pass over the whole heap not frozen
# (40-110 ms of CPU an opening, 30-50 ms at a time, #17). With 10,000 a young pass walks more
# objects (a few ms) but runs a fourteenth as often, and a full pass comes after ~1,000,000
# objects made and kept, not ~70,000. Garbage in reference cycles waits longer (bounded: at
# most this many objects since the last pass).
YOUNG = 10_000

_held = False


def hold() -> None:
    """Turn the collector off for the start-up (if it is on: a caller that turned it off
    itself keeps it off)."""
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def held() -> bool:
    return _held


def release(freeze: bool = True) -> None:
    """The start-up is over: freeze what is alive now (`gc.freeze`: full collections no
    longer walk the first picture), make the young generation `YOUNG` objects, and turn the
    collector on again if `hold` turned it off. `freeze=False`: just on again (the app ended
    before its first picture)."""
    global _held
    if freeze:
        gc.freeze()
        gc.set_threshold(YOUNG, *gc.get_threshold()[1:])
    if _held:
        _held = False
        gc.enable()
