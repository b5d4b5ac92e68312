"""The connect gate: attempts in flight are bounded per loop, and queueing is not a timeout."""

from __future__ import annotations

import asyncio
import contextlib

from agent.watch import WatchSession
from agent.watch.gate import DEFAULT_CONNECT_CONCURRENCY, connect_gate


class ClosedGate(asyncio.Semaphore):
    """A gate with no free slot that says when a session starts waiting on it."""

    def __init__(self) -> None:
        super().__init__(0)
        self.waiting = asyncio.Event()

    async def acquire(self) -> bool:
        self.waiting.set()
        return await super().acquire()


async def test_waiting_for_the_gate_is_not_an_attempt(feed, results, check_for) -> None:
    """A session queued past its check.timeout records no failure and connects once admitted."""
    check = check_for(feed.url)
    gate = ClosedGate()
    session = WatchSession(check, on_result=results, random=lambda: 0.5, gate=gate)
    session.start()
    try:
        await asyncio.wait_for(gate.waiting.wait(), 3.0)
        with contextlib.suppress(TimeoutError):  # nothing may reach the server meanwhile
            await feed.changes.until(lambda: feed.connections > 0, timeout=check.timeout * 2)
        assert feed.connections == 0
        assert session.stats().reconnects == {}
        gate.release()
        ok = await results.until(lambda r: r.success)
        assert ok.phases["total"] < check.timeout  # timed from admission, not queueing
        assert feed.subscribes() == 1
        assert session.stats().connected
        assert session.stats().reconnects == {}
    finally:
        await session.stop()


async def test_one_shared_gate_per_loop() -> None:
    """Every session of a loop shares one gate of the default size."""
    gate = connect_gate()
    assert connect_gate() is gate
    assert gate._value == DEFAULT_CONNECT_CONCURRENCY


def test_each_loop_gets_its_own_gate() -> None:
    """A gate is bound to its loop, so another loop gets another one."""

    async def get() -> asyncio.Semaphore:
        return connect_gate()

    first = asyncio.run(get())
    assert asyncio.run(get()) is not first
