"""The staleness clock: due once when the feed went quiet, again when it recovers."""

from __future__ import annotations

import asyncio
import time

from agent.watch.stale import StaleTimer


class Feed:
    """Where a session keeps the time of its last matching message."""

    def __init__(self) -> None:
        self.last_match: float | None = None


async def test_fires_once_when_quiet_and_again_on_recovery() -> None:
    """Quiet for stale_after calls on_stale once; a matching message calls it again."""
    calls: list[float] = []
    due = asyncio.Event()
    feed = Feed()

    def on_stale() -> None:
        calls.append(time.perf_counter())
        due.set()

    timer = StaleTimer(0.05, feed=feed, on_stale=on_stale)
    timer.since = start = time.perf_counter()
    timer.arm()
    await asyncio.wait_for(due.wait(), 2.0)
    assert len(calls) == 1
    assert calls[0] - start >= 0.05
    assert timer.is_stale(time.perf_counter())
    feed.last_match = time.perf_counter()
    timer.fresh()  # recovered: reported at once, and timing again
    assert len(calls) == 2
    assert not timer.is_stale(time.perf_counter())
    timer.cancel()


async def test_a_match_before_the_due_time_rearms_instead() -> None:
    """A message matched since arming moves the due time; nothing is reported early."""
    due = asyncio.Event()
    feed = Feed()
    timer = StaleTimer(0.1, feed=feed, on_stale=due.set)
    timer.since = time.perf_counter()
    timer.arm()
    await asyncio.sleep(0.06)  # part of the quiet period itself, not a wait for a condition
    feed.last_match = matched = time.perf_counter()
    await asyncio.wait_for(due.wait(), 2.0)
    assert time.perf_counter() - matched >= 0.1


async def test_off_and_cancelled() -> None:
    """No stale_after: never armed, never stale; cancel stops a due timer."""
    timer = StaleTimer(None, feed=Feed(), on_stale=lambda: None)
    timer.arm()
    assert not timer.is_stale(time.perf_counter() + 3600)
    fired: list[bool] = []
    armed = StaleTimer(0.01, feed=Feed(), on_stale=lambda: fired.append(True))
    armed.since = time.perf_counter()
    armed.arm()
    armed.cancel()
    await asyncio.sleep(0.05)  # long past the due time: proves nothing fires
    assert fired == []
