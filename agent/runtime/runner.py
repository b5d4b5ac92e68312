"""The one place that orders the pipeline of a run (STYLE.md, "one way through the house").

    admit (concurrency slot, event-loop lag; or shed) -> PROBES[kind](check)
        -> lag mark (lag_suspect, agent_problem) -> metrics.observe
        -> store.add_result -> rollups -> alerting.observe -> the run's log line

Overload is the agent's, never the target's. A scheduled run that waited for its slot
and admission longer than its own ``timeout``, or whose admission timed out on a loop
still over its lag budget, is shed: not started, counted as skipped with
reason ``overload``, one warning per episode. A run that fails on a deadline
(:data:`DEADLINE_REASONS`) while the agent's own stalls took at least
:data:`AGENT_STALL_SHARE` of its time is flagged ``agent_problem``: stored and shown,
counted agent-wide, but not a failure of the check (no alert, no ``probe_success``).

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
from typing import Any, Protocol, overload

from agent.config.models import CheckConfig
from agent.metrics.registry import Metrics
from agent.probes.deadline import call_probe
from agent.result import ProbeResult, Reason
from agent.runtime.loop_lag import LoopLagMonitor
from agent.runtime.result_log import ResultLog

__all__ = [
    "AGENT_STALL_SHARE",
    "DEADLINE_REASONS",
    "OVERLOAD_QUIET_INTERVAL",
    "AlertObserver",
    "ProbeFn",
    "ResultStore",
    "Runner",
]

log = logging.getLogger(__name__)

#: Failures that say "a deadline passed": the ones the agent's own stalls can cause.
DEADLINE_REASONS = frozenset(
    {
        Reason.CONNECT_TIMEOUT,
        Reason.HANDSHAKE_TIMEOUT,
        Reason.EXPECT_TIMEOUT,
        Reason.PING_TIMEOUT,
        Reason.TIMEOUT,
    }
)
#: A deadline failure is the agent's when its stalls (loop lag, no CPU, GIL held in C)
#: add up to at least this share of the run's time: the target had that much less of
#: its timeout to answer in. A silent target probed by a busy agent (stalls of a few
#: per cent) or across a GC pause still counts as the target's failure.
AGENT_STALL_SHARE = 0.25
#: An overload episode ends after this many seconds without a shed run; the next shed
#: run logs a new warning.
OVERLOAD_QUIET_INTERVAL = 10.0

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
        rollups: long-term aggregates (agent.storage.rollups.Rollups), if any.
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
        rollups: ResultStore | None = None,
    ) -> None:
        self._metrics = metrics
        self._log_results = log_results
        self.store = store
        self.rollups = rollups
        self.alerting = alerting
        self._probes = probes
        self._lag = lag
        self._slots = asyncio.Semaphore(max_concurrency)
        self._max_concurrency = max_concurrency
        self._checks: dict[str, CheckConfig] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        #: The runs of ``_tasks`` past admission, their probe running.
        self._probing: set[asyncio.Task[Any]] = set()
        self.result_log = ResultLog()
        #: Runs shed in the current overload episode, and when the last one was.
        self._shed_episode = 0
        self._shed_last = 0.0
        self._shed_began = 0.0

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

    @overload
    async def run_check(self, check: CheckConfig) -> ProbeResult: ...

    @overload
    async def run_check(
        self, check: CheckConfig, *, scheduled_at: float | None
    ) -> ProbeResult | None: ...

    async def run_check(
        self, check: CheckConfig, *, scheduled_at: float | None = None
    ) -> ProbeResult | None:
        """Run ``check`` once through the whole pipeline.

        Args:
            check: the check, as configured when the run was scheduled.
            scheduled_at: Unix time the run was due: for the scheduler-lag histogram,
                and a scheduled run may be shed (see the module docstring).

        Returns:
            The run's result (recorded, unless the check changed meanwhile), or None
            when the run was shed.
        """
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            ran = await self._probe(check, scheduled_at=scheduled_at)
            if ran is None:
                return None
            result, duration = ran
            self.record(check, result, duration=duration)
            return result
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def probe(self, check: CheckConfig) -> tuple[ProbeResult, float]:
        """Admit and run the probe only (no recording, never shed): for ``/probe``.

        Returns:
            The result and the run's duration in seconds.
        """
        ran = await self._probe(check, scheduled_at=None)
        assert ran is not None  # only scheduled runs are shed
        return ran

    async def _probe(
        self, check: CheckConfig, *, scheduled_at: float | None
    ) -> tuple[ProbeResult, float] | None:
        metrics = self._metrics
        task = asyncio.current_task()
        # Held locally: a reload may replace self._slots while this run holds a slot.
        slots = self._slots
        queued_at = time.perf_counter()
        if metrics is not None:
            metrics.runs_waiting += 1
        try:
            await slots.acquire()
            try:
                admitted = await self._admit(check, scheduled_at, queued_at)
            except BaseException:
                slots.release()
                raise
        finally:
            if metrics is not None:
                metrics.runs_waiting -= 1
        if not admitted:
            slots.release()
            return None
        try:
            if metrics is not None:
                if scheduled_at is not None:
                    metrics.scheduler_lag.observe(max(0.0, time.time() - scheduled_at))
                metrics.in_flight += 1
            start = time.perf_counter()
            if task is not None:
                self._probing.add(task)
            try:
                # The deadline's outer net: a probe that overran or crashed is a result.
                result = await call_probe(self._probes.get(check.kind), check)
            finally:
                end = time.perf_counter()
                if task is not None:
                    self._probing.discard(task)
                if metrics is not None:
                    metrics.in_flight -= 1
        finally:
            slots.release()
        if self._lag is not None and self._lag.overlapped(start, end):
            result.lag_suspect = True
            if (
                not result.success
                and result.reason in DEADLINE_REASONS
                and self._lag.stalled(start, end) >= AGENT_STALL_SHARE * (end - start)
            ):
                result.agent_problem = True
        return result, end - start

    async def _admit(
        self, check: CheckConfig, scheduled_at: float | None, queued_at: float
    ) -> bool:
        """Wait for a calm loop; False (counted, logged) when the run must be shed."""
        if self._lag is not None:
            waited = await self._lag.admit()
            if (
                scheduled_at is not None
                and waited >= self._lag.admit_timeout
                and self._lag.current() > self._lag.budget
            ):
                self._shed(check, f"event-loop lag {self._lag.current():.3f}s")
                return False
        if scheduled_at is not None:
            # Lateness of the timer itself is the scheduler's (skipped as ``missed``
            # past the misfire grace); a queue longer than the run's timeout is the
            # runner's.
            queued = time.perf_counter() - queued_at
            if queued > check.timeout:
                self._shed(check, f"queued {queued:.1f}s for a {check.timeout:g}s timeout")
                return False
            self._on_time()
        return True

    def _shed(self, check: CheckConfig, why: str) -> None:
        """Count a scheduled run not started because the agent cannot run it in time."""
        now = time.perf_counter()
        if not self._shed_episode:
            self._shed_began = now
            log.warning(
                "agent overloaded: shedding runs it cannot start in time (check %s: %s);"
                ' counted in wsprobe_probes_skipped_total{reason="overload"}',
                check.name,
                why,
            )
        self._shed_episode += 1
        self._shed_last = now
        if self._metrics is not None:
            self._metrics.skipped(check.name, "overload")

    def _on_time(self) -> None:
        """A scheduled run started in time: maybe the end of an overload episode."""
        if self._shed_episode and time.perf_counter() - self._shed_last > OVERLOAD_QUIET_INTERVAL:
            log.warning(
                "agent overload over: %d runs shed in %.1fs",
                self._shed_episode,
                self._shed_last - self._shed_began,
            )
            self._shed_episode = 0

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
        if self.rollups is not None:
            try:
                self.rollups.add_result(result)
            except Exception:
                log.exception("could not count the result of check %s", check.name)
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
        """Let running probes finish for ``grace_timeout`` seconds, then cancel the rest.

        Runs still waiting for a slot or admission are cancelled at once: however long
        the backlog, the stop waits only for the probes already running (at most
        ``max_concurrency``). A cancelled run records nothing, so it never counts as a
        failure.

        Returns:
            How many runs were cancelled.
        """
        # One loop turn first: runs submitted just before the stop enter run_check.
        await asyncio.sleep(0)
        deadline = time.perf_counter() + grace_timeout
        cancelled: set[asyncio.Task[Any]] = set()
        while self._tasks:
            waiting = self._tasks - self._probing - cancelled
            for task in waiting:
                task.cancel()
            cancelled |= waiting
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
        return len(cancelled | pending)
