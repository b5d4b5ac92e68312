"""One event-loop timer for the periodic callbacks of all watch sessions of a loop.

A session keeps two timers pending for as long as it runs (its report every
``interval``, its protocol ping every ``ping_interval``). Through ``loop.call_later``
each costs ~550 B of Python objects (``TimerHandle``, uvloop's timer wrapper, the
libuv timer) for thousands of sessions; here each is a slotted :class:`Tick` in one
heap, and the loop holds a single timer for the earliest.

Callbacks run in due order on the loop, as ``call_later`` callbacks do. One that
raises is logged and does not stop the others. Raises nothing of its own.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import weakref
from collections.abc import Callable

__all__ = ["Tick", "Ticker", "ticker"]

log = logging.getLogger(__name__)


class Tick:
    """A callback due at ``when`` (loop time); :meth:`cancel` before it runs to drop it.

    Ticks are the heap's entries themselves, ordered by ``when`` only, as asyncio
    orders its timers: a ``(when, sequence, tick)`` entry would cost ~100 B more per
    pending callback.
    """

    __slots__ = ("callback", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback: Callable[[], None] | None = callback

    def __lt__(self, other: Tick) -> bool:
        return self.when < other.when

    def cancel(self) -> None:
        """Do not run the callback (its entry leaves the heap when it comes due)."""
        self.callback = None


class Ticker:
    """A heap of :class:`Tick` served by one ``loop.call_at`` timer.

    Used from one event loop only (its clock and its timer), which it does not hold:
    :func:`ticker` keeps one per loop, weakly.
    """

    __slots__ = ("_due_at", "_handle", "_heap")

    def __init__(self) -> None:
        self._heap: list[Tick] = []
        self._handle: asyncio.TimerHandle | None = None
        self._due_at = math.inf

    def __len__(self) -> int:
        return len(self._heap)

    def call_later(self, delay: float, callback: Callable[[], None]) -> Tick:
        """Run ``callback`` in ``delay`` seconds, like ``loop.call_later``.

        Returns:
            The tick, to cancel.
        """
        when = asyncio.get_running_loop().time() + delay
        tick = Tick(when, callback)
        heapq.heappush(self._heap, tick)
        if when < self._due_at:
            self._arm(when)
        return tick

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._due_at = when
        self._handle = asyncio.get_running_loop().call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle, self._due_at = None, math.inf
        heap = self._heap
        now = asyncio.get_running_loop().time()
        while heap and (heap[0].when <= now or heap[0].callback is None):
            tick = heapq.heappop(heap)
            callback, tick.callback = tick.callback, None
            if callback is None:
                continue
            try:
                callback()
            except Exception:
                log.exception("watch timer callback failed")
        if heap:
            self._arm(heap[0].when)


_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Ticker] = weakref.WeakKeyDictionary()


def ticker() -> Ticker:
    """The running loop's shared ticker, created on first use.

    Raises:
        RuntimeError: No running event loop.
    """
    loop = asyncio.get_running_loop()
    found = _tickers.get(loop)
    if found is None:
        found = _tickers[loop] = Ticker()
    return found
