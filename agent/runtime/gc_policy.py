"""How the agent uses Python's cyclic garbage collector.

Building a configuration allocates hundreds of thousands of objects that all stay
alive (until the next reload), so collections during the build traverse them again
and again and free nothing: :func:`gc_paused` holds the collector off meanwhile.
Once built, :func:`freeze_heap` moves them out of the collector's reach for good and
sets the thresholds used while serving.

Raises nothing.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["GC_THRESHOLDS", "freeze_heap", "gc_paused"]

#: Cyclic GC thresholds while serving. Generation 0 keeps CPython's default (pauses of
#: 0.5-2 ms at 10,000 checks). Generation 1 is collected after 3 generation-0
#: collections instead of 10: its pause grows with what survived since the last one
#: (each result's per-check state, the probes in flight), and at 10 it held the event
#: loop for 4-10 ms about once a second; at 3 for up to ~4 ms, three times as often,
#: for the same CPU in all (docs/bench-log.md, "What holds the event loop"). A full
#: collection may run at most once per 333 generation-1 collections, as often as at
#: (700, 10, 100): about once a minute instead of every 7 s at 10,000 checks, because
#: each one stops the event loop for 100-250 ms (docs/bench-log.md). Every probe leaves
#: a few reference cycles (websockets' protocol and its parser generator), but they die
#: young and are freed by generation 0.
GC_THRESHOLDS = (700, 3, 333)


def freeze_heap() -> None:
    """Move every object alive now out of the cyclic GC's reach (``gc.freeze``).

    Called once the configuration is built (start-up and each reload): the checks,
    their jobs and series live until the next reload, and a full collection would
    otherwise traverse all of them again and again (240-265 ms per collection at
    10,000 checks, measured in the daemon). A reload unfreezes first and collects
    once, so the previous configuration's cyclic garbage is freed rather than frozen.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC off inside the block, then as the caller had it (even on error).

    Loading 10,000 checks triggered full collections worth a fifth of the load, and
    starting the daemon eight more (~0.5 s): everything they traversed stays alive.
    Reference counting frees the rest as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
