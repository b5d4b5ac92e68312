"""Overload is the agent's: a healthy target probed from a stalled loop never reads as down.

The target is a real websockets server in its own thread (healthy whatever the test's
loop does); the agent's loop is overloaded for real by a hog task that blocks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.server import ServerConnection, serve

from agent.alerting.policy import AlertPolicy
from agent.alerting.state import AlertState, update
from agent.config.models import CheckConfig
from agent.metrics.registry import Metrics
from agent.probes import PROBES
from agent.result import ProbeResult
from agent.runtime.loop_lag import LoopLagMonitor
from agent.runtime.runner import DEADLINE_REASONS, Runner
from agent.storage import DB_FILENAME, Store
from tests.servers import RawServer, silent

pytestmark = pytest.mark.timeout(60)


def _echo(ws: ServerConnection) -> None:
    for message in ws:
        ws.send(message)


@pytest.fixture
def healthy_url() -> Iterator[str]:
    """A healthy echo server on its own thread: its answers never wait for our loop."""
    # Its connection threads may log after the test's log capture is gone: keep them quiet.
    quiet = logging.getLogger("tests.runtime.healthy_server")
    quiet.disabled = True
    with serve(_echo, "127.0.0.1", 0, logger=quiet) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/"
        server.shutdown()
    thread.join(5.0)


async def _hogging(block: float) -> None:
    """Block the running loop for ``block`` seconds at every turn it gets."""
    while True:
        time.sleep(block)  # the agent's own overload: nothing else runs meanwhile
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def _hog(block: float) -> AsyncIterator[None]:
    task = asyncio.create_task(_hogging(block))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Alerts:
    """The pure alert state machine fed every recorded result, as AlertService does."""

    def __init__(self) -> None:
        self.policy = AlertPolicy(failure_threshold=1)
        self.states: dict[str, AlertState] = {}
        self.transitions: list[object] = []
        self.results: list[ProbeResult] = []

    def observe(self, check: CheckConfig, result: ProbeResult) -> list[object]:
        self.results.append(result)
        before = self.states.get(check.name, AlertState())
        after, transitions = update(before, result, policy=self.policy, now=time.time())
        self.states[check.name] = after
        self.transitions += transitions
        return list(transitions)


def _counts(metrics: Metrics) -> dict[tuple[str, str], float]:
    """Per-(family sample, label) sums over every check."""
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            key = (sample.name, sample.labels.get("result", sample.labels.get("reason", "")))
            out[key] = out.get(key, 0.0) + sample.value
    return out


async def test_overloaded_agent_sheds_and_never_fails_a_healthy_target(
    healthy_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Under a hog blocking the loop, runs are shed or flagged agent_problem, never failed."""
    checks = [
        CheckConfig(name=f"c{i:02d}", url=healthy_url, interval=10.0, timeout=0.6, pings=3)
        for i in range(40)
    ]
    metrics = Metrics(location="test")
    alerts = Alerts()
    lag = LoopLagMonitor(budget=0.02, interval=0.01, admit_timeout=0.3)
    runner = Runner(
        probes=PROBES, max_concurrency=4, metrics=metrics, lag=lag, alerting=alerts,
        log_results=False,
    )  # fmt: skip
    runner.set_checks(checks)
    lag.start()
    caplog.set_level(logging.WARNING, logger="agent.runtime.runner")
    try:
        async with _hog(0.12):
            due = time.time()
            ran = await asyncio.gather(*(runner.run_check(c, scheduled_at=due) for c in checks))
    finally:
        await lag.stop()
    recorded = [r for r in ran if r is not None]
    shed = len(ran) - len(recorded)
    counts = _counts(metrics)
    assert shed > 0
    assert counts[("wsprobe_probes_skipped_total", "overload")] == shed
    assert counts[("wsprobe_probes_total", "failure")] == 0
    assert not alerts.transitions
    assert all(not state.consecutive_failures for state in alerts.states.values())
    flagged = [r for r in recorded if not r.success]
    assert all(r.agent_problem and r.reason in DEADLINE_REASONS for r in flagged), [
        (r.reason, r.message) for r in flagged
    ]
    assert counts[("wsprobe_agent_problem_runs_total", "")] == len(flagged)
    warnings = [r for r in caplog.records if "agent overloaded" in r.getMessage()]
    assert len(warnings) == 1


async def test_deadline_eaten_by_the_agent_is_an_agent_problem(
    healthy_url: str, tmp_path: Path
) -> None:
    """A run of a healthy target whose deadline a stalled loop consumed is flagged, not failed."""
    check = CheckConfig(name="feed", url=healthy_url, interval=10.0, timeout=0.6, pings=5)
    hogs: list[asyncio.Task[None]] = []

    async def probe_then_overload(check: CheckConfig) -> ProbeResult:
        # The real probe, admitted on a calm loop; the overload begins once it is under way.
        probe = asyncio.ensure_future(PROBES["probe"](check))
        await asyncio.sleep(0)
        hogs.append(asyncio.create_task(_hogging(0.2)))
        return await probe

    metrics = Metrics(location="test")
    alerts = Alerts()
    lag = LoopLagMonitor(budget=0.02, interval=0.01)
    store = Store(tmp_path / DB_FILENAME)
    runner = Runner(
        probes={"probe": probe_then_overload}, max_concurrency=4, metrics=metrics, lag=lag,
        store=store, alerting=alerts, log_results=False,
    )  # fmt: skip
    runner.set_checks([check])
    lag.start()
    try:
        result = await runner.run_check(check, scheduled_at=time.time())
    finally:
        for hog in hogs:
            hog.cancel()
        await asyncio.gather(*hogs, return_exceptions=True)
        await lag.stop()
    assert result is not None
    assert (result.success, result.agent_problem) == (False, True), (
        result.reason, result.message, result.lag_suspect,
    )  # fmt: skip
    assert result.reason in DEADLINE_REASONS
    counts = _counts(metrics)
    assert counts[("wsprobe_probes_total", "failure")] == 0
    assert counts[("wsprobe_agent_problem_runs_total", "")] == 1
    assert "probe_success" not in {name for name, _ in counts}
    assert not alerts.transitions
    assert alerts.results == [result]
    try:  # the API's history shows the run, flagged
        (stored,) = store.history("feed", 10)
    finally:
        store.close()
    assert stored["agent_problem"] is True


async def test_agent_problem_needs_the_agents_stall() -> None:
    """A deadline failure on a calm loop is the target's: not flagged, counted, alerting."""
    async with RawServer(silent) as server:
        result, metrics, alerts = await _run_alone(server.url())
    assert not result.success
    assert result.reason in DEADLINE_REASONS
    assert not result.agent_problem
    assert _counts(metrics)[("wsprobe_probes_total", "failure")] == 1
    assert alerts.transitions


async def _run_alone(url: str) -> tuple[ProbeResult, Metrics, Alerts]:
    target = CheckConfig(name="silent", url=url, interval=10.0, timeout=0.3)
    metrics = Metrics(location="test")
    alerts = Alerts()
    lag = LoopLagMonitor(budget=0.05, interval=0.01)
    runner = Runner(
        probes=PROBES, max_concurrency=4, metrics=metrics, lag=lag, alerting=alerts,
        log_results=False,
    )  # fmt: skip
    runner.set_checks([target])
    lag.start()
    try:
        result = await runner.run_check(target, scheduled_at=time.time())
    finally:
        await lag.stop()
    assert result is not None
    return result, metrics, alerts


async def test_run_queued_longer_than_its_timeout_is_shed(healthy_url: str) -> None:
    """With every slot held, a run that waited longer than its timeout is shed, not started."""
    async with RawServer(silent) as server:
        hung = CheckConfig(name="hung", url=server.url(), interval=10.0, timeout=0.5)
        queued = CheckConfig(name="queued", url=healthy_url, interval=10.0, timeout=0.2)
        now_due = CheckConfig(name="on-demand", url=healthy_url, interval=10.0, timeout=0.2)
        metrics = Metrics(location="test")
        runner = Runner(probes=PROBES, max_concurrency=1, metrics=metrics, log_results=False)
        runner.set_checks([hung, queued, now_due])
        due = time.time()
        hung_run = asyncio.create_task(runner.run_check(hung, scheduled_at=due))
        await asyncio.wait_for(server.connected.wait(), 5.0)
        # Queued behind the hung probe's 0.5 s: past its own 0.2 s timeout.
        shed = await runner.run_check(queued, scheduled_at=due)
        # An on-demand run (no schedule) is never shed: it waits and runs.
        ran = await runner.run_check(now_due)
        await hung_run
    assert shed is None
    assert ran.success
    counts = _counts(metrics)
    assert counts[("wsprobe_probes_skipped_total", "overload")] == 1
    assert counts[("wsprobe_probes_total", "success")] == 1
