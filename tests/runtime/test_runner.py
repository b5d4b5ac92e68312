"""The pipeline of one run: admission, hard deadline, lag flag, recording, stale results."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from agent.config.models import CheckConfig
from agent.metrics.registry import Metrics
from agent.probes.deadline import GRACE
from agent.result import ProbeResult, Reason
from agent.runtime.loop_lag import LoopLagMonitor
from agent.runtime.runner import ProbeFn, Runner

URL = "ws://127.0.0.1:9/"


class Sink:
    """Store and alerting stand-ins that record what reached them."""

    def __init__(self) -> None:
        self.stored: list[str] = []
        self.observed: list[str] = []

    def add_result(self, result: ProbeResult) -> None:
        self.stored.append(result.check)

    def observe(self, check: CheckConfig, result: ProbeResult) -> list[Any]:
        self.observed.append(check.name)
        return []


def _ok(check: CheckConfig) -> ProbeResult:
    return ProbeResult(check=check.name, kind=check.kind, url=URL, started_at=time.time(),
                       success=True)  # fmt: skip


def _runner(probe: ProbeFn, sink: Sink, **kwargs: Any) -> tuple[Runner, Metrics]:
    metrics = Metrics(location="test")
    runner = Runner(
        metrics=metrics, probes={"probe": probe}, max_concurrency=2, store=sink, alerting=sink,
        **kwargs,
    )  # fmt: skip
    return runner, metrics


async def test_removed_while_in_flight_leaves_nothing() -> None:
    """A run whose check is removed before it ends records no series, history or alert state."""
    started, release = asyncio.Event(), asyncio.Event()

    async def probe(check: CheckConfig) -> ProbeResult:
        started.set()
        await release.wait()
        return _ok(check)

    sink = Sink()
    runner, metrics = _runner(probe, sink)
    gone = CheckConfig(name="gone", url=URL, interval=10.0, timeout=1.0)
    kept = CheckConfig(name="kept", url=URL, interval=10.0, timeout=1.0)
    runner.set_checks([gone, kept])
    run = asyncio.create_task(runner.run_check(gone))
    await asyncio.wait_for(started.wait(), 2.0)
    runner.set_checks([kept])
    release.set()
    await asyncio.wait_for(run, 2.0)
    assert 'check="gone"' not in metrics.render().decode()
    assert sink.stored == sink.observed == []


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [("crash", Reason.INTERNAL), ("overrun", Reason.TIMEOUT)],
    ids=["crash", "overrun"],
)
async def test_misbehaving_probe_becomes_failed_result(behaviour: str, reason: Reason) -> None:
    """A probe that raises or ignores its deadline is recorded as a failure, never propagated."""

    async def probe(check: CheckConfig) -> ProbeResult:
        if behaviour == "crash":
            raise RuntimeError("bug")
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    sink = Sink()
    runner, metrics = _runner(probe, sink)
    # The outer net cuts at timeout + 2 * GRACE; keep the test short.
    check = CheckConfig(name="bad", url=URL, interval=10.0, timeout=0.05)
    runner.set_checks([check])
    await asyncio.wait_for(runner.run_check(check), 2 * GRACE + 2.0)
    series = metrics.series(check)
    assert series is not None
    assert series.last is not None
    assert series.last.reason is reason
    assert series.failures[reason.value] == 1
    assert sink.stored == ["bad"]


async def test_lag_spike_flags_result() -> None:
    """A run during which the event loop stalled past the budget is flagged lag_suspect."""

    async def probe(check: CheckConfig) -> ProbeResult:
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # blocks the loop: the agent, not the target, is slow
        await asyncio.sleep(0.05)
        return _ok(check)

    lag = LoopLagMonitor(budget=0.05, interval=0.01)
    lag.start()
    try:
        sink = Sink()
        runner, metrics = _runner(probe, sink, lag=lag)
        check = CheckConfig(name="lagged", url=URL, interval=10.0, timeout=1.0)
        runner.set_checks([check])
        await runner.run_check(check)
    finally:
        await lag.stop()
    series = metrics.series(check)
    assert series is not None
    assert series.last is not None
    assert series.last.lag_suspect
    assert series.lag_suspect == 1


async def test_concurrency_limit() -> None:
    """No more than max_concurrency probes run at once; the others wait for a slot."""
    running = peak = 0

    async def probe(check: CheckConfig) -> ProbeResult:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return _ok(check)

    runner, metrics = _runner(probe, Sink())
    checks = [CheckConfig(name=f"c{i}", url=URL, interval=10.0, timeout=1.0) for i in range(6)]
    runner.set_checks(checks)
    await asyncio.gather(*(runner.run_check(c) for c in checks))
    assert peak == 2
    assert sum(s.results["success"] for s in map(metrics.series, checks) if s) == 6


@pytest.mark.parametrize("success", [True, False], ids=["success", "failure"])
async def test_runner_without_sinks(success: bool, caplog: pytest.LogCaptureFixture) -> None:
    """A runner with no metrics, store or alerting (the CLI's) returns the result, logs nothing."""

    async def probe(check: CheckConfig) -> ProbeResult:
        result = _ok(check)
        return result if success else result.fail(Reason.CLOSED, "gone")

    runner = Runner(probes={"probe": probe}, max_concurrency=1, log_results=False)
    check = CheckConfig(name="once", url=URL, interval=10.0, timeout=1.0)
    runner.set_checks([check])
    result = await runner.run_check(check)
    assert result.check == "once"
    assert result.success is success
    assert [r for r in caplog.records if r.name.startswith("agent.runtime")] == []
    with pytest.raises(RuntimeError):
        runner.metrics  # noqa: B018 - the property is what is tested
