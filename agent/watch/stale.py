"""The staleness clock of a held session: one timer, due when the feed may have gone quiet.

A session is stale when no matching message arrived for ``stale_after`` seconds (since
watching began, before the first one). :class:`StaleTimer` keeps one
``loop.call_later`` handle due at that moment; when it fires and nothing matched
since, it calls ``on_stale`` once and stays unarmed until :meth:`StaleTimer.fresh`
(a matching message) or :meth:`StaleTimer.arm` (a new connection) arms it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["StaleTimer"]


class _Feed(Protocol):
    @property
    def last_match(self) -> float | None: ...


class StaleTimer:
    """Calls ``on_stale`` when the feed has been quiet for ``stale_after`` seconds.

    Args:
        stale_after: seconds without a matching message that make a session stale;
            None turns the timer off.
        feed: where ``last_match`` is kept: ``time.perf_counter()`` of the last
            matching message, or None.
        on_stale: called when the session may have gone stale (or recovered, from
            :meth:`fresh`); it judges liveness itself.
    """

    __slots__ = ("_feed", "_handle", "_on_stale", "since", "stale_after")

    def __init__(
        self,
        stale_after: float | None,
        *,
        feed: _Feed,
        on_stale: Callable[[], None],
    ) -> None:
        self.stale_after = stale_after
        self._feed = feed
        self._on_stale = on_stale
        self._handle: asyncio.TimerHandle | None = None
        #: When watching began: quiet time counts from here before the first match.
        self.since = 0.0

    def quiet_for(self, now: float) -> float:
        """Seconds since the last matching message (or since watching began)."""
        last = self._feed.last_match
        return now - (last if last is not None else self.since)

    def is_stale(self, now: float) -> bool:
        """Whether the feed has been quiet for ``stale_after`` by ``now``."""
        return self.stale_after is not None and self.quiet_for(now) >= self.stale_after

    def arm(self) -> None:
        """Time the moment the session goes stale if nothing matching arrives before."""
        if self.stale_after is None or self._handle is not None:
            return
        remaining = max(self.stale_after - self.quiet_for(time.perf_counter()), 0.0)
        self._handle = asyncio.get_running_loop().call_later(remaining, self._tick)

    def fresh(self) -> None:
        """A matching message arrived: if the timer had fired, the session recovered."""
        if self._handle is None:
            self.arm()
            self._on_stale()

    def cancel(self) -> None:
        """Stop timing (the session stops)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()

    def _tick(self) -> None:
        self._handle = None
        if self.stale_after is None:
            return
        if self.quiet_for(time.perf_counter()) < self.stale_after:
            self.arm()  # a message matched since this was armed
            return
        # Stale (or disconnected, which takes precedence): the session reports if
        # liveness flipped. Re-armed by the next matching message or connect.
        self._on_stale()
