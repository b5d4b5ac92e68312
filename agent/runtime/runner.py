"""The one place that orders the pipeline of a run (STYLE.md, "one way through the house").

    admit (concurrency slot, event-loop lag) -> PROBES[kind](check) -> lag mark
        -> metrics.observe -> store.add_result -> alerting.observe -> the run's log line

Probes never import metrics or alerting; results flow down this function and never
back up. A result for a check that was removed or changed while it ran is dropped
whole, so it leaves no series, history or alert state behind.

Raises nothing of its own: a probe that crashes or overruns its deadline becomes a
failed result (``internal`` / ``timeout``) through the deadline policy
(:mod:`agent.probes.deadline`); only cancellation propagates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from agent.config.models import CheckConfig
from agent.metrics.registry import Metrics
from agent.probes.deadline import call_probe
from agent.result import ProbeResult
from agent.runtime.loop_lag import LoopLagMonitor
from agent.runtime.result_log import ResultLog

__all__ = ["AlertObserver", "ProbeFn", "ResultStore", "Runner"]

log = logging.getLogger(__name__)

ProbeFn = Callable[[CheckConfig], Awaitable[ProbeResult]]


class ResultStore(Protocol):
    """Where run history goes (agent.storage.Store)."""

    def add_result(self, result: ProbeResult) -> None: ...


class AlertObserver(Protocol):
    """What turns results into alert transitions (agent.alerting.AlertService)."""

    def observe(self, check: CheckConfig, result: ProbeResult) -> list[Any]: ...


class Runner:
    """Runs checks and feeds their results to metrics, history and alerting.

    The daemon gives it every sink; ``wsprobe probe`` gives it none, so a one-shot run
    goes through the same admission, deadline net and recording order.

    Args:
        probes: kind -> probe function (``agent.probes.PROBES``).
        max_concurrency: probes allowed to run at once; the rest wait for a slot.
        metrics: the agent's metrics, if any.
        lag: the event-loop lag monitor gating admission and flagging results.
        store: history of results, if any.
        alerting: the alert service, if any.
        log_results: write the per-run log line (``agent.log_results``); the CLI
            prints the result itself instead.
    """

    def __init__(
        self,
        *,
        probes: Mapping[str, ProbeFn],
        max_concurrency: int,
        metrics: Metrics | None = None,
        lag: LoopLagMonitor | None = None,
        store: ResultStore | None = None,
        alerting: AlertObserver | None = None,
        log_results: bool = True,
    ) -> None:
        self._metrics = metrics
        self._log_results = log_results
        self.store = store
        self.alerting = alerting
        self._probes = probes
        self._lag = lag
        self._slots = asyncio.Semaphore(max_concurrency)
        self._max_concurrency = max_concurrency
        self._checks: dict[str, CheckConfig] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.result_log = ResultLog()

    # ------------------------------------------------------------- configuration

    def set_checks(self, checks: Iterable[CheckConfig], *, location: str | None = None) -> None:
        """Make ``checks`` the current checks (and their series) for recording."""
        checks = tuple(checks)
        self._checks = {check.name: check for check in checks}
        if self._metrics is not None:
            self._metrics.set_checks(checks, location=location)

    def set_max_concurrency(self, max_concurrency: int) -> None:
        """Change the global slot count; runs holding a slot keep it."""
        if max_concurrency != self._max_concurrency:
            # A fresh semaphore: holders of the old one release into it harmlessly.
            self._slots = asyncio.Semaphore(max_concurrency)
            self._max_concurrency = max_concurrency

    def current(self, name: str) -> CheckConfig | None:
        """The configured check called ``name``, if any."""
        return self._checks.get(name)

    @property
    def checks(self) -> Mapping[str, CheckConfig]:
        """Current checks by name."""
        return self._checks

    @property
    def metrics(self) -> Metrics:
        """The metrics this runner records into.

        Raises:
            RuntimeError: the runner was built without metrics (a one-shot run).
        """
        if self._metrics is None:
            raise RuntimeError("this runner records no metrics")
        return self._metrics

    # ------------------------------------------------------------------ running

    async def run_check(
        self, check: CheckConfig, *, scheduled_at: float | None = None
    ) -> ProbeResult:
        """Run ``check`` once through the whole pipeline.

        Args:
            check: the check, as configured when the run was scheduled.
            scheduled_at: Unix time the run was due, for the scheduler-lag histogram.

        Returns:
            The run's result (recorded, unless the check changed meanwhile).
        """
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            result, duration = await self.probe(check, scheduled_at=scheduled_at)
            self.record(check, result, duration=duration)
            return result
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def probe(
        self, check: CheckConfig, *, scheduled_at: float | None = None
    ) -> tuple[ProbeResult, float]:
        """Admit and run the probe only (no recording): for ``run_check`` and ``/probe``.

        Returns:
            The result and the run's duration in seconds.
        """
        metrics = self._metrics
        async with self._slots:
            if self._lag is not None:
                await self._lag.admit()
            if metrics is not None:
                if scheduled_at is not None:
                    metrics.scheduler_lag.observe(max(0.0, time.time() - scheduled_at))
                metrics.in_flight += 1
            start = time.perf_counter()
            try:
                # The deadline's outer net: a probe that overran or crashed is a result.
                result = await call_probe(self._probes.get(check.kind), check)
            finally:
                end = time.perf_counter()
                if metrics is not None:
                    metrics.in_flight -= 1
        if self._lag is not None and self._lag.overlapped(start, end):
            result.lag_suspect = True
        return result, end - start

    def record(self, check: CheckConfig, result: ProbeResult, *, duration: float) -> bool:
        """Feed one result to metrics, history and alerting (watch sessions call this too).

        Returns:
            False when ``check`` is no longer configured as it was, and nothing was kept.
        """
        current = self._checks.get(check.name)
        # Identity first: nearly always the same object, and pydantic's == walks every field.
        if current is not check and current != check:
            return False
        if self._metrics is not None:
            self._metrics.observe(check, result, duration=duration)
        if self.store is not None:
            try:
                self.store.add_result(result)
            except Exception:
                log.exception("could not store the result of check %s", check.name)
        if self.alerting is not None:
            try:
                self.alerting.observe(check, result)
            except Exception:
                log.exception("alerting failed on the result of check %s", check.name)
        # A line per run as agent.log_results asks, with structured fields (logfmt in
        # text, keys in JSON) so log pipelines can group on check and reason.
        if self._log_results:
            self.result_log.record(check, result, duration=duration)
        return True

    # ------------------------------------------------------------------ stopping

    async def drain(self, *, grace_timeout: float) -> int:
        """Let running checks finish for ``grace_timeout`` seconds, then cancel the rest.

        A cancelled run records nothing, so it never counts as a failure.

        Returns:
            How many runs were cancelled.
        """
        # One loop turn first: runs submitted just before the stop enter run_check.
        await asyncio.sleep(0)
        deadline = time.perf_counter() + grace_timeout
        while self._tasks:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            # Re-read the set each turn: a run may start while others finish.
            await asyncio.wait(set(self._tasks), timeout=remaining)
        pending = set(self._tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)
