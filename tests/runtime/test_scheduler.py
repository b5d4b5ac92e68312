"""Scheduling: stable spread offsets, sharding, and no overlap of a check with itself."""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import UTC, datetime

import pytest

from agent.config.models import CheckConfig
from agent.metrics.registry import Metrics
from agent.result import ProbeResult
from agent.runtime.runner import Runner
from agent.runtime.scheduler import CheckScheduler, next_fire, start_offset
from agent.runtime.shard import in_shard, parse_shard, select_shard

URL = "ws://127.0.0.1:9/"


def _checks(n: int, *, interval: float = 60.0) -> list[CheckConfig]:
    return [
        CheckConfig(name=f"svc-{i:05d}.example", url=URL, interval=interval, timeout=1.0)
        for i in range(n)
    ]


@pytest.mark.parametrize(("count", "interval"), [(1000, 60.0), (10_000, 30.0)], ids=["1k", "10k"])
def test_offsets_spread_evenly(count: int, interval: float) -> None:
    """Start offsets of many checks fill the interval: no 1-second bucket holds > 2x the mean."""
    names = [f"svc-{i:05d}.example" for i in range(count)]
    buckets = collections.Counter(int(start_offset(name, interval)) for name in names)
    mean = count / interval
    assert len(buckets) == int(interval)
    assert max(buckets.values()) <= 2 * mean


def test_offset_is_stable_and_inside_interval() -> None:
    """The offset of a name is the same on every call and lies in [0, interval)."""
    offsets = [start_offset("payments-ws", 15.0) for _ in range(3)]
    assert len(set(offsets)) == 1
    assert 0 <= offsets[0] < 15.0


def test_interval_fires_at_offset() -> None:
    """Consecutive fire times are one interval apart, at the check's stable phase."""
    check = CheckConfig(name="phase", url=URL, interval=10.0, timeout=1.0)
    now = time.time()
    first = next_fire(check, now)
    second = next_fire(check, first)
    assert now < first <= now + 10.0
    assert second - first == pytest.approx(10.0)
    assert first % 10.0 == pytest.approx(start_offset("phase", 10.0), abs=1e-5)
    # Exactly at a fire time, the next one is a whole interval later.
    assert next_fire(check, first) == pytest.approx(first + 10.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1/1", (1, 1)), ("2/3", (2, 3)), ("0/3", None), ("4/3", None), ("x/2", None), ("3", None)],
    ids=["one", "two-of-three", "zero", "over", "junk", "no-slash"],
)
def test_parse_shard(text: str, expected: tuple[int, int] | None) -> None:
    """K/N parses when 1 <= K <= N and is rejected otherwise."""
    if expected is None:
        with pytest.raises(ValueError, match="shard"):
            parse_shard(text)
    else:
        assert parse_shard(text) == expected


def test_shards_partition_checks() -> None:
    """Every check belongs to exactly one of N shards, and shards are balanced."""
    checks = _checks(3000)
    sizes = []
    seen: set[str] = set()
    for k in (1, 2, 3):
        chosen = select_shard(checks, (k, 3))
        names = {c.name for c in chosen}
        assert not names & seen
        seen |= names
        sizes.append(len(chosen))
    assert seen == {c.name for c in checks}
    assert min(sizes) > 800
    assert in_shard("anything", None)


async def test_short_interval_never_overlaps() -> None:
    """A probe slower than its interval never runs twice at once; overruns count as skipped."""
    running = 0
    peak = 0
    runs = 0
    enough = asyncio.Event()

    async def slow_probe(check: CheckConfig) -> ProbeResult:
        nonlocal running, peak, runs
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.35)
        finally:
            running -= 1
        runs += 1
        if runs >= 3:
            enough.set()
        return ProbeResult(
            check=check.name, kind=check.kind, url=URL, started_at=time.time(), success=True
        )

    check = CheckConfig(name="fast", url=URL, interval=0.1, timeout=0.05)
    metrics = Metrics(location="test")
    runner = Runner(metrics=metrics, probes={"probe": slow_probe}, max_concurrency=4)
    runner.set_checks([check])
    scheduler = CheckScheduler(run=runner.run_check, skipped=metrics.skipped)
    await scheduler.apply([check])
    scheduler.start()
    try:
        await asyncio.wait_for(enough.wait(), 5.0)
    finally:
        scheduler.pause()
        await runner.drain(grace_timeout=1.0)
        await scheduler.shutdown()
    series = metrics.series(check)
    assert series is not None
    assert peak == 1
    assert series.results["success"] >= 3
    assert series.skipped["max_instances"] >= 1
    assert series.phases == {}  # the fake probe measured no phase
    assert metrics.scheduler_lag.count >= 3


async def test_reload_keeps_unchanged_jobs() -> None:
    """Applying a new set keeps an unchanged job's next run and drops removed ones."""
    metrics = Metrics(location="test")
    runner = Runner(metrics=metrics, probes={}, max_concurrency=1)
    scheduler = CheckScheduler(run=runner.run_check, skipped=metrics.skipped)
    a = CheckConfig(name="a", url=URL, interval=3600.0, timeout=1.0)
    b = CheckConfig(name="b", url=URL, interval=3600.0, timeout=1.0)
    watch = CheckConfig(name="w", kind="watch", url=URL, interval=3600.0, timeout=1.0)
    await scheduler.apply([a, b, watch])
    scheduler.start()
    try:
        before = scheduler.next_run_times()
        assert set(before) == {"a", "b"}
        b2 = b.model_copy(update={"interval": 1800.0})
        await scheduler.apply([a, b2])
        after = scheduler.next_run_times()
        assert after["a"] == before["a"]
        assert (after["b"] - start_offset("b", 1800.0)) % 1800.0 == pytest.approx(0, abs=1e-3)
        await scheduler.apply([b2])
        assert set(scheduler.next_run_times()) == {"b"}
    finally:
        await scheduler.shutdown()


def test_cron_trigger_fires_on_schedule() -> None:
    """A cron check fires at its cron times (UTC), consecutive runs one period apart."""
    check = CheckConfig(name="nightly", url=URL, cron="*/5 * * * *", timeout=10.0)
    now = time.time()
    first = next_fire(check, now)
    second = next_fire(check, first)
    assert now < first <= now + 300
    assert datetime.fromtimestamp(first, UTC).minute % 5 == 0
    assert first % 60 == 0
    assert second - first == 300


def _recording_runner(starts: list[float]) -> tuple[Runner, Metrics]:
    async def probe(check: CheckConfig) -> ProbeResult:
        starts.append(time.time())
        return ProbeResult(
            check=check.name, kind=check.kind, url=URL, started_at=time.time(), success=True
        )

    metrics = Metrics(location="test")
    return Runner(metrics=metrics, probes={"probe": probe}, max_concurrency=4), metrics


async def test_run_later_than_grace_is_skipped_as_missed() -> None:
    """A run the agent could only start past its misfire grace is skipped and counted."""
    starts: list[float] = []
    runner, metrics = _recording_runner(starts)
    check = CheckConfig(name="late", url=URL, interval=2.0, timeout=1.0)  # grace: 1 s
    runner.set_checks([check])
    scheduler = CheckScheduler(run=runner.run_check, skipped=metrics.skipped)
    await scheduler.apply([check])
    scheduler.start()
    try:
        due = scheduler.next_run_times()["late"]
        await asyncio.sleep(max(0.0, due - time.time() - 0.2))
        time.sleep(due + 1.5 - time.time())  # the loop wakes 1.5 s after the due time
        await asyncio.sleep(0.05)
        series = metrics.series(check)
        assert series is not None
        assert series.skipped["missed"] == 1
        assert [t for t in starts if t >= due] == []
        assert scheduler.next_run_times()["late"] == pytest.approx(due + 2.0)
    finally:
        scheduler.pause()
        await runner.drain(grace_timeout=1.0)
        await scheduler.shutdown()


async def test_cron_check_is_scheduled_at_its_next_cron_time() -> None:
    """A cron check's job waits for its next cron time, next to interval checks."""
    runner, metrics = _recording_runner([])
    nightly = CheckConfig(name="nightly", url=URL, cron="*/5 * * * *", timeout=10.0)
    often = CheckConfig(name="often", url=URL, interval=60.0, timeout=1.0)
    scheduler = CheckScheduler(run=runner.run_check, skipped=metrics.skipped)
    await scheduler.apply([nightly, often])
    scheduler.start()
    try:
        now = time.time()
        due = scheduler.next_run_times()
        assert set(due) == {"nightly", "often"}
        assert now < due["nightly"] <= now + 300
        assert due["nightly"] % 300 == 0
        assert due["often"] % 60.0 == pytest.approx(start_offset("often", 60.0), abs=1e-6)
    finally:
        await scheduler.shutdown()
