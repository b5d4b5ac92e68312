"""The shared ticker runs callbacks like loop.call_later, from one loop timer."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.watch.ticker import Tick, Ticker, ticker


async def _run_until(done: asyncio.Event) -> None:
    async with asyncio.timeout(2.0):
        await done.wait()


async def test_callbacks_run_in_due_order() -> None:
    """Callbacks run by due time, not by the order they were scheduled in."""
    tick, ran, done = Ticker(), [], asyncio.Event()
    for delay in (0.03, 0.01, 0.02):
        tick.call_later(delay, lambda d=delay: ran.append(d))
    tick.call_later(0.04, done.set)
    await _run_until(done)
    assert ran == [0.01, 0.02, 0.03]
    assert len(tick) == 0


async def test_earlier_tick_rearms_the_timer() -> None:
    """A tick due before the pending earliest one still runs on time."""
    tick, ran, done = Ticker(), [], asyncio.Event()
    tick.call_later(1.0, lambda: ran.append("late"))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    tick.call_later(0.01, done.set)
    await _run_until(done)
    assert loop.time() - t0 < 0.5
    assert ran == []


async def test_cancelled_tick_never_runs_and_leaves_the_heap() -> None:
    """A cancelled callback is dropped; its entry goes once it reaches the top."""
    tick, ran, done = Ticker(), [], asyncio.Event()
    first = tick.call_later(0.01, lambda: ran.append("cancelled"))
    tick.call_later(0.02, lambda: ran.append("kept"))
    tick.call_later(0.03, done.set)
    first.cancel()
    await _run_until(done)
    assert ran == ["kept"]
    assert len(tick) == 0


async def test_raising_callback_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One callback raising is logged; the ones due with it still run."""
    tick, ran, done = Ticker(), [], asyncio.Event()

    def boom() -> None:
        raise ValueError("boom")

    tick.call_later(0.01, boom)
    tick.call_later(0.01, lambda: ran.append("after"))
    tick.call_later(0.02, done.set)
    with caplog.at_level(logging.ERROR, logger="agent.watch.ticker"):
        await _run_until(done)
    assert ran == ["after"]
    assert "watch timer callback failed" in caplog.text


async def test_one_ticker_per_loop() -> None:
    """ticker() returns the running loop's own, the same one on every call."""
    assert ticker() is ticker()
    other = await asyncio.to_thread(lambda: asyncio.run(_ticker_id()))
    assert other != id(ticker())


async def _ticker_id() -> int:
    return id(ticker())


async def test_ticks_are_their_own_heap_entries() -> None:
    """Ticks order by due time alone; several due at one moment all run."""
    ticks = [Tick(2.0, lambda: None), Tick(1.0, lambda: None), Tick(1.0, lambda: None)]
    assert [t.when for t in sorted(ticks)] == [1.0, 1.0, 2.0]
    tick, ran, done = Ticker(), [], asyncio.Event()
    for name in "abc":  # the same delay from the same loop time: equal due times
        tick.call_later(0.01, lambda n=name: ran.append(n))
    tick.call_later(0.02, done.set)
    await _run_until(done)
    assert sorted(ran) == ["a", "b", "c"]
