"""How long another thread of the agent may hold the GIL while the event loop waits.

Besides the event loop, the agent runs Python in threads: the state file's writer
(history batches, maintenance), the rollups' writer (a flush every 10 s builds
thousands of rows), the ``/metrics`` gzip worker, the loop-lag pacer. When the loop
wants the GIL back from one of them, CPython makes the holder let go only after the
switch interval, 5 ms by default: up to 5 ms during which no probe's callback runs,
seen by every client of the agent. At 1 ms the loop waits at most about that long;
the switches cost nothing while only the loop runs, and a few hundred extra switches
a second while a writer thread is busy (``python -m bench.loop_holds``,
docs/bench-log.md, "What holds the event loop").

Raises nothing.
"""

from __future__ import annotations

import sys

__all__ = ["SWITCH_INTERVAL", "use_serving_switch_interval"]

#: Seconds a thread holding the GIL keeps it once another thread asks for it.
SWITCH_INTERVAL = 0.001


def use_serving_switch_interval() -> None:
    """Set the interpreter's thread switch interval to :data:`SWITCH_INTERVAL`.

    The loop-lag monitor reads the interval when it judges its pacer's oversleep, so
    it follows the change.
    """
    sys.setswitchinterval(SWITCH_INTERVAL)
