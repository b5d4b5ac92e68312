"""When checks run: APScheduler 3 jobs, one per interval or cron check.

Each interval check fires at a stable offset inside its interval, derived from a hash
of its name: ``t mod interval == offset``. Thousands of checks with one interval are
spread evenly over it, every agent and every restart agrees on the phase, and nothing
drifts (APScheduler's ``jitter`` re-draws a random delay each run instead, which
bunches runs and accumulates drift). Cron checks fire at their cron times.

Jobs run with ``max_instances=1`` and ``coalesce``: a check never overlaps itself, and
a backlog collapses into one run. Runs that could not start are counted in
``wsprobe_probes_skipped_total{reason}`` from APScheduler's events: ``max_instances``
(the previous run is still going) and ``missed`` (started later than the misfire
grace). Watch checks are not scheduled here (they hold a session).

Raises nothing of its own; a cron expression APScheduler rejects is logged and the
check left unscheduled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

# APScheduler 3 ships no type information.
from apscheduler.events import (  # type: ignore[import-untyped]
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.schedulers.base import (  # type: ignore[import-untyped]
    STATE_RUNNING,
    STATE_STOPPED,
)
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from agent.config.models import CheckConfig
from agent.runner import Runner
from agent.shard import stable_fraction

__all__ = [
    "APPLY_BATCH",
    "MAX_MISFIRE_GRACE",
    "CheckScheduler",
    "misfire_grace",
    "start_offset",
    "trigger_for",
]

log = logging.getLogger(__name__)

#: A run starting later than this after its due time is skipped as ``missed``: the
#: next one is close and a late probe measures the agent's backlog.
MAX_MISFIRE_GRACE = 30
#: Jobs added between two yields to the event loop in :meth:`CheckScheduler.apply`.
APPLY_BATCH = 200
_CRON_INTERVAL_GUESS = 60.0
_EPOCH = datetime.fromtimestamp(0, UTC)


def start_offset(name: str, interval: float) -> float:
    """The stable phase, in ``[0, interval)`` seconds, at which check ``name`` fires."""
    return stable_fraction(name, salt="offset") * interval


def misfire_grace(check: CheckConfig) -> int:
    """How late a run of ``check`` may start, in whole seconds (APScheduler's unit).

    Half its period, within ``[1, MAX_MISFIRE_GRACE]``.
    """
    period = _CRON_INTERVAL_GUESS if check.cron else check.interval
    return int(min(MAX_MISFIRE_GRACE, max(1.0, period / 2)))


def trigger_for(check: CheckConfig) -> BaseTrigger:
    """The APScheduler trigger of ``check`` (cron, or interval at its stable offset).

    Raises:
        ValueError: for a cron expression APScheduler cannot parse.
    """
    if check.cron:
        return CronTrigger.from_crontab(check.cron, timezone=UTC)
    # Anchored at the Unix epoch plus the offset, so the fire times are the same
    # on every agent and after every restart.
    start = datetime.fromtimestamp(start_offset(check.name, check.interval), UTC)
    return IntervalTrigger(seconds=check.interval, start_date=start, timezone=UTC)


class CheckScheduler:
    """Owns the APScheduler instance and keeps one job per schedulable check.

    Args:
        runner: runs each due check through the pipeline.
    """

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_listener(
            self._on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED
        )
        self._jobs: dict[str, CheckConfig] = {}
        # job id -> Unix time the submitted run was due; read when the run starts.
        self._due: dict[str, float] = {}
        self._stopping = False

    @property
    def running(self) -> bool:
        """Whether the scheduler is started (and not paused)."""
        return bool(self._scheduler.state == STATE_RUNNING)

    @property
    def job_count(self) -> int:
        """How many checks are scheduled."""
        return len(self._jobs)

    def start(self) -> None:
        """Start firing jobs on the running event loop."""
        self._scheduler.start()

    async def apply(self, checks: Iterable[CheckConfig]) -> None:
        """Schedule exactly the non-watch ``checks``; unchanged ones keep their job.

        Adding a job costs APScheduler a fraction of a millisecond, so 10,000 new
        checks take seconds: the work yields to the event loop every
        :data:`APPLY_BATCH` jobs so running probes and HTTP requests are served.
        """
        wanted = {c.name: c for c in checks if c.kind != "watch"}
        was_running = self.running
        if was_running:
            # Paused, add_job does not wake the scheduler once per job; due runs
            # start (coalesced) on resume.
            self._scheduler.pause()
        try:
            for name in [n for n, c in self._jobs.items() if wanted.get(n) != c]:
                self._scheduler.remove_job(name)
                del self._jobs[name]
                self._due.pop(name, None)
            added = 0
            for name, check in wanted.items():
                if name not in self._jobs:
                    self._add(check)
                    added += 1
                    if added % APPLY_BATCH == 0:
                        await asyncio.sleep(0)
        finally:
            # A stop may have begun while this yielded: then scheduling stays off.
            if was_running and not self._stopping:
                self._scheduler.resume()

    def _add(self, check: CheckConfig) -> None:
        try:
            trigger = trigger_for(check)
        except ValueError as exc:
            log.error("check %s not scheduled: bad cron %r: %s", check.name, check.cron, exc)
            return
        self._scheduler.add_job(
            self._job,
            trigger,
            args=(check.name,),
            id=check.name,
            name=check.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=misfire_grace(check),
            replace_existing=True,
        )
        self._jobs[check.name] = check

    def next_run_times(self) -> dict[str, float]:
        """Unix time of each job's next run (for tests and the API)."""
        out: dict[str, float] = {}
        for job in self._scheduler.get_jobs():
            if job.next_run_time is not None:
                out[job.id] = job.next_run_time.timestamp()
        return out

    def pause(self) -> None:
        """Stop starting new runs for good (running ones continue); the first step of a stop."""
        self._stopping = True
        if self.running:
            self._scheduler.pause()

    async def shutdown(self) -> None:
        """Stop the scheduler; call :meth:`Runner.drain` first to let runs end."""
        if self._scheduler.state != STATE_STOPPED:
            self._scheduler.shutdown(wait=False)
            # APScheduler's asyncio shutdown runs on the next loop iteration.
            await asyncio.sleep(0)

    async def _job(self, name: str) -> None:
        check = self._jobs.get(name)
        if check is None:
            return
        due = self._due.pop(name, None)
        try:
            await self._runner.run_check(check, scheduled_at=due)
        except asyncio.CancelledError:
            # Only the daemon's stop cancels runs, and then the task ends here anyway;
            # returning keeps APScheduler from logging a cancelled run as a crash.
            return

    def _on_event(self, event: JobEvent) -> None:
        name = str(event.job_id)
        if event.code == EVENT_JOB_SUBMITTED and isinstance(event, JobSubmissionEvent):
            self._due[name] = event.scheduled_run_times[-1].timestamp()
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self._runner.metrics.skipped(name, "max_instances")
        elif event.code == EVENT_JOB_MISSED and isinstance(event, JobExecutionEvent):
            self._runner.metrics.skipped(name, "missed")
