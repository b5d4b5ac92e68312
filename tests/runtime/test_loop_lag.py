"""LoopLagMonitor against a real event loop, stalled with real blocking calls."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator

import pytest

from agent.runtime.loop_lag import LoopLagMonitor

BUDGET = 0.05
INTERVAL = 0.005
STALL = 0.15  # well over BUDGET + INTERVAL, so it is always seen above budget


@pytest.fixture
async def monitor() -> AsyncIterator[LoopLagMonitor]:
    mon = LoopLagMonitor(budget=BUDGET, interval=INTERVAL, admit_timeout=2.0)
    mon.start()
    try:
        yield mon
    finally:
        await mon.stop()


async def wait_samples(mon: LoopLagMonitor, count: int, *, timeout: float = 2.0) -> None:
    """Yield to the loop until the monitor has taken ``count`` more samples."""
    target = mon.samples_total + count
    async with asyncio.timeout(timeout):
        while mon.samples_total < target:
            await asyncio.sleep(INTERVAL)


async def test_idle_loop_lag_is_small(monitor: LoopLagMonitor) -> None:
    """An idle loop measures lag far below the budget and flags nothing."""
    t0 = time.perf_counter()
    await wait_samples(monitor, 10)
    samples = monitor.drain_samples()
    assert len(samples) >= 10
    assert max(samples) < BUDGET
    assert not monitor.overlapped(t0, time.perf_counter())
    assert monitor.spikes_total == 0


async def test_blocking_call_is_measured_and_marks_window(monitor: LoopLagMonitor) -> None:
    """A real blocking call shows as lag and marks windows overlapping it, not earlier ones."""
    await wait_samples(monitor, 2)
    before = (time.perf_counter() - 0.5, time.perf_counter() - 0.4)
    start = time.perf_counter()
    time.sleep(STALL)  # the stall under test
    end = time.perf_counter()
    # Asked before the monitor's own sample has run: the stall in progress counts.
    assert monitor.current() > BUDGET
    assert monitor.overlapped(start, end)
    await wait_samples(monitor, 1)
    assert monitor.spikes_total >= 1
    assert max(monitor.drain_samples()) > BUDGET
    assert monitor.overlapped(start, end)
    assert not monitor.overlapped(*before)
    # After the loop recovered, a fresh window is clean again.
    await wait_samples(monitor, 2)
    fresh = time.perf_counter()
    await wait_samples(monitor, 2)
    assert monitor.current() < BUDGET
    assert not monitor.overlapped(fresh, time.perf_counter())


async def test_admit_fast_path_when_calm(monitor: LoopLagMonitor) -> None:
    """With no lag, admit() returns at once without waiting."""
    await wait_samples(monitor, 2)
    assert await monitor.admit() == 0.0
    assert monitor.admit_waits_total == 0


async def test_admit_waits_while_lagging_then_proceeds(monitor: LoopLagMonitor) -> None:
    """A probe admitted during a stall waits until a sample is back within budget."""
    await wait_samples(monitor, 2)
    time.sleep(STALL)  # the stall under test
    waited = await monitor.admit()
    assert waited > 0.0
    assert monitor.admit_waits_total == 1
    assert monitor.current() <= BUDGET


async def test_admit_wait_is_bounded_when_lag_persists() -> None:
    """A loop that never recovers lets probes through after admit_timeout, not never."""
    mon = LoopLagMonitor(budget=0.02, interval=INTERVAL, admit_timeout=0.3)
    mon.start()
    stop = asyncio.Event()

    async def hog() -> None:
        while not stop.is_set():
            time.sleep(0.04)  # keeps every sample over budget
            await asyncio.sleep(0)

    hog_task = asyncio.create_task(hog())
    try:
        await wait_samples(mon, 2)
        began = time.perf_counter()
        waited = await mon.admit()
        assert 0.3 <= waited < 1.5
        assert time.perf_counter() - began < 1.5
    finally:
        stop.set()
        await hog_task
        await mon.stop()


async def test_stop_releases_waiters(monitor: LoopLagMonitor) -> None:
    """Stopping the monitor lets every waiting probe through."""
    await wait_samples(monitor, 2)
    time.sleep(STALL)  # the stall under test
    waiter = asyncio.create_task(monitor.admit())
    await asyncio.sleep(0)
    await monitor.stop()
    async with asyncio.timeout(1.0):
        await waiter
    assert not monitor.running
    assert await monitor.admit() == 0.0


async def test_idle_monitor_is_not_a_busy_loop() -> None:
    """While idle the monitor wakes about once per interval and uses little CPU."""
    interval = 0.02
    mon = LoopLagMonitor(budget=BUDGET, interval=interval)
    mon.start()
    try:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(0.5)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        await mon.stop()
    assert mon.samples_total <= wall / interval + 2
    assert mon.samples_total >= 5
    assert cpu < 0.2 * wall


async def test_drain_samples_empties_and_is_bounded() -> None:
    """drain_samples() hands over each sample once and keeps at most max_samples."""
    mon = LoopLagMonitor(budget=BUDGET, interval=INTERVAL, max_samples=4)
    mon.start()
    try:
        await wait_samples(mon, 8)
        first = mon.drain_samples()
        assert len(first) == 4
        assert all(s >= 0.0 for s in first)
        assert len(mon.drain_samples()) <= 1
    finally:
        await mon.stop()


async def test_start_twice_and_stop_twice_are_harmless() -> None:
    """start() and stop() are idempotent."""
    mon = LoopLagMonitor(budget=BUDGET, interval=INTERVAL)
    await mon.stop()
    mon.start()
    mon.start()
    assert mon.running
    await wait_samples(mon, 2)
    await mon.stop()
    await mon.stop()
    assert not mon.running


@pytest.mark.parametrize(
    "kwargs",
    [{"budget": 0.0}, {"budget": 0.05, "interval": 0.0}, {"budget": 0.05, "admit_timeout": -1}],
    ids=["zero-budget", "zero-interval", "negative-admit-timeout"],
)
def test_rejects_invalid_settings(kwargs: dict[str, float]) -> None:
    """Non-positive budget or interval, or a negative admit timeout, are refused."""
    with pytest.raises(ValueError, match="budget"):
        LoopLagMonitor(**kwargs)


def test_uvloop_measures_stall_and_gates_admission() -> None:
    """Under uvloop (the daemon's loop) a stall is measured, flagged and gates admission."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> tuple[bool, bool, float, float]:
        mon = LoopLagMonitor(budget=BUDGET, interval=INTERVAL, admit_timeout=2.0)
        mon.start()
        try:
            await wait_samples(mon, 2)
            idle = max(mon.drain_samples())
            start = time.perf_counter()
            time.sleep(STALL)  # the stall under test
            flagged = mon.overlapped(start, time.perf_counter())
            waited = await mon.admit()
            clean = not mon.overlapped(time.perf_counter(), time.perf_counter())
            return flagged, clean, waited, idle
        finally:
            await mon.stop()

    flagged, clean, waited, idle = uvloop.run(scenario())
    assert flagged
    assert clean
    assert waited > 0.0
    assert idle < BUDGET


# A process that takes one core away for STALL seconds: real-time priority on that core
# so nothing else of ours can run there; bounded by its own clock.
_HOG = """
import os, sys, time
core = int(sys.argv[1])
os.sched_setaffinity(0, {core})
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
end = time.perf_counter() + float(sys.argv[2])
print("hogging", flush=True)
while time.perf_counter() < end:
    pass
"""


def _can_starve() -> bool:
    if not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (AttributeError, OSError):
        return False
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return True


@pytest.mark.skipif(not _can_starve(), reason="needs CPU affinity and SCHED_FIFO rights")
async def test_process_starved_of_cpu_is_measured_and_flagged() -> None:
    """Another process holding the core (pacer starved too) still shows as lag and flags."""
    cores = os.sched_getaffinity(0)
    core = min(cores)
    os.sched_setaffinity(0, {core})  # this thread, and the pacer thread it starts
    mon = LoopLagMonitor(budget=BUDGET, interval=INTERVAL)
    try:
        mon.start()
        await wait_samples(mon, 3)
        mon.drain_samples()
        start = time.perf_counter()
        hog = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _HOG, str(core), str(STALL), stdout=asyncio.subprocess.PIPE
        )
        assert hog.stdout is not None
        async with asyncio.timeout(10):
            assert await hog.stdout.readline() == b"hogging\n"
            await hog.wait()
        end = time.perf_counter()
        await wait_samples(mon, 3)
        assert mon.hidden_total >= 1 or max(mon.drain_samples()) > BUDGET
        assert mon.spikes_total >= 1
        assert mon.overlapped(start, end)
        assert not mon.overlapped(time.perf_counter(), time.perf_counter())
    finally:
        await mon.stop()
        os.sched_setaffinity(0, cores)


def _gil_bound_work(seconds: float) -> float:
    """One C call that holds the GIL about ``seconds`` (no bytecode runs inside it)."""
    began = time.perf_counter()
    sum(range(10**5))
    per_item = max((time.perf_counter() - began) / 10**5, 1e-9)
    began = time.perf_counter()
    sum(range(int(seconds / per_item)))
    return time.perf_counter() - began


async def test_gil_held_in_c_is_measured_and_flagged(monitor: LoopLagMonitor) -> None:
    """A long C call holding the GIL (the pacer cannot run either) is flagged at once."""
    await wait_samples(monitor, 3)
    start = time.perf_counter()
    held = _gil_bound_work(STALL * 2)  # the stall under test
    end = time.perf_counter()
    assert held > BUDGET + INTERVAL + sys.getswitchinterval()
    # Asked right away, before the monitor's sample has run: the runner's case.
    assert monitor.overlapped(start, end)
    assert monitor.current() > BUDGET
    await wait_samples(monitor, 2)
    assert monitor.overlapped(start, end)
    assert monitor.spikes_total >= 1
    assert not monitor.overlapped(time.perf_counter(), time.perf_counter())


async def test_gil_held_in_c_shows_in_the_exported_samples() -> None:
    """A stall the round trip cannot see (the GIL held by one C call) is in the samples."""
    mon = LoopLagMonitor(budget=BUDGET, interval=INTERVAL)
    mon.start()
    try:
        await wait_samples(mon, 3)
        mon.drain_samples()
        start = time.perf_counter()
        sum(range(30_000_000))  # one C call: the pacer cannot take the GIL meanwhile
        held = time.perf_counter() - start
        await wait_samples(mon, 3)
        samples = mon.drain_samples()
    finally:
        await mon.stop()
    assert held > 2 * BUDGET, "the C call was too short to tell anything"
    assert max(samples) >= held / 2
