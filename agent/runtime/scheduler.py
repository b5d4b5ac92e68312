"""When checks run: one timer for all checks, over a heap of due times.

Each interval check fires at a stable offset inside its interval, derived from a hash
of its name: ``t mod interval == offset``. Thousands of checks with one interval are
spread evenly over it, every agent and every restart agrees on the phase, and nothing
drifts (a random jitter re-drawn each run would bunch runs and accumulate drift).
Cron checks fire at their cron times (APScheduler's ``CronTrigger`` computes them).

A check never overlaps itself, and a backlog collapses into one run (APScheduler's
``max_instances=1`` and ``coalesce``). Runs that could not start are counted in
``wsprobe_probes_skipped_total{reason}``: ``max_instances`` (the previous run is still
going) and ``missed`` (the agent woke up later than the misfire grace after the due
time). Watch checks are not scheduled here (they hold a session).

Due times are computed as Unix times (that is what anchors the phase), but every wait
and every "how late" is measured on the monotonic clock: a job's Unix due time is
mapped to a monotonic one through the anchor ``wall - monotonic``. When the wall clock
steps (NTP, a resumed VM), the anchor moves and the jobs are re-anchored: an interval
check keeps its monotonic due time, so the interval continues across the step, and the
run after it rejoins the check's phase in the new wall time (at least half an interval
later, at most one and a half); a cron check's next time is taken from the new wall
clock (cron times are wall times). Nothing runs in a burst and nothing stops for the
size of the step.

Why not APScheduler's ``AsyncIOScheduler``: at 10,000 checks it cost about 0.2 ms of
the event loop per run (job store update, datetime arithmetic, an executor wrapper
and an event per run, a re-armed timer per wake-up), about a tenth of the core the
probes run on, and 1.4 s to add the jobs at start-up (docs/bench-log.md). Here a run
costs a heap pop and push and one task.

Raises nothing of its own; a cron expression that cannot be parsed is logged and the
check left unscheduled (config validation rejects those before).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

# APScheduler 3 ships no type information.
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

from agent.config.models import CheckConfig
from agent.runtime.clock import SYSTEM_CLOCK, Clock, Timer
from agent.runtime.shard import stable_fraction

__all__ = [
    "MAX_MISFIRE_GRACE",
    "STEP_TOLERANCE",
    "CheckScheduler",
    "RunCheck",
    "misfire_grace",
    "next_fire",
    "start_offset",
]

log = logging.getLogger(__name__)

#: A run starting later than this after its due time is skipped as ``missed``: the
#: next one is close and a late probe measures the agent's backlog.
MAX_MISFIRE_GRACE = 30
_CRON_INTERVAL_GUESS = 60.0
#: Seconds before its due time a run may start when the timer fires early.
_EARLY = 0.001
#: A change of ``wall - monotonic`` larger than this between two looks at the clocks is a
#: step of the wall clock. Slewing (NTP changes the rate by at most 0.05 %) stays far
#: below it between two wake-ups, and is absorbed run by run anyway.
STEP_TOLERANCE = 1.0
#: The timer wakes at least this often, so a wall-clock step is noticed (and cron times
#: re-derived) within this many seconds even when nothing is due for hours.
_MAX_SLEEP = 60.0
#: Catching up after a long pause walks the missed cron times one by one up to now;
#: past this many it starts again from now (coalesced into one run either way).
_MAX_CATCH_UP = 1000


class RunCheck(Protocol):
    """Runs one check through the pipeline (``Runner.run_check``)."""

    def __call__(self, check: CheckConfig, *, scheduled_at: float | None) -> Awaitable[object]:
        """Run ``check`` once; ``scheduled_at`` is the Unix time it was due (what it
        returns is not used)."""
        ...


def start_offset(name: str, interval: float) -> float:
    """The stable phase, in ``[0, interval)`` seconds, at which check ``name`` fires."""
    return stable_fraction(name, salt="offset") * interval


def misfire_grace(check: CheckConfig) -> int:
    """How late a run of ``check`` may start, in whole seconds.

    Half its period, within ``[1, MAX_MISFIRE_GRACE]``.
    """
    period = _CRON_INTERVAL_GUESS if check.cron else check.interval
    return int(min(MAX_MISFIRE_GRACE, max(1.0, period / 2)))


def _cron(check: CheckConfig) -> CronTrigger | None:
    """The cron trigger of a cron check (None for an interval check).

    Raises:
        ValueError: for a cron expression APScheduler cannot parse.
    """
    return _parse_cron(check.cron) if check.cron else None


def _parse_cron(expression: str) -> CronTrigger:
    return CronTrigger.from_crontab(expression, timezone=UTC)


def next_fire(check: CheckConfig, after: float, *, cron: CronTrigger | None = None) -> float:
    """The first fire time of ``check`` strictly after Unix time ``after``.

    Interval checks fire at ``offset + k * interval`` (anchored at the Unix epoch, so
    the times are the same on every agent and after every restart); cron checks at
    their cron times in UTC (``inf`` when a cron expression never fires again).

    Args:
        check: the check.
        after: Unix time.
        cron: the check's parsed cron trigger, when the caller keeps one.

    Raises:
        ValueError: for a cron expression APScheduler cannot parse.
    """
    if check.cron:
        if cron is None:
            cron = _parse_cron(check.cron)
        now = datetime.fromtimestamp(after, UTC) + timedelta(microseconds=1)
        fire = cron.get_next_fire_time(None, now)
        return math.inf if fire is None else float(fire.timestamp())
    return _next_interval(start_offset(check.name, check.interval), check.interval, after)


def _next_interval(offset: float, interval: float, after: float) -> float:
    fire = offset + (math.floor((after - offset) / interval) + 1) * interval
    return fire if fire > after else fire + interval


@dataclass(slots=True, eq=False)
class _Job:
    check: CheckConfig
    cron: CronTrigger | None
    #: Seconds a run may start late before it is skipped as missed.
    grace: float
    #: The interval check's phase (see :func:`start_offset`).
    offset: float
    #: Unix time of the next run.
    due: float = math.inf
    #: The same moment on the monotonic clock: what the timer waits for.
    mono: float = math.inf

    def after(self, when: float) -> float:
        """The first fire time strictly after ``when``."""
        if self.cron is not None:
            return next_fire(self.check, when, cron=self.cron)
        return _next_interval(self.offset, self.check.interval, when)

    def catch_up(self, now: float) -> tuple[float, float]:
        """The latest fire time due by ``now`` (from ``due`` on), and the one after ``now``."""
        latest = self.due
        if self.cron is None:
            interval = self.check.interval
            # The first phase time more than half an interval on: the next one when
            # ``due`` is on the phase, and the way back to it, never closer than half an
            # interval, when ``due`` was kept across a wall-clock step.
            following = self.after(latest + interval / 2)
            if following <= now:
                following = self.after(now)
                latest = max(latest, following - interval)
            return latest, following
        following = self.after(latest)
        for _ in range(_MAX_CATCH_UP):
            if following > now:
                return latest, following
            latest, following = following, self.after(following)
        return now, self.after(now)


class CheckScheduler:
    """Keeps one job per schedulable check and starts each run when it is due.

    One event-loop timer is armed for the earliest due time; when it fires, every
    job due by then starts (or is skipped) and is pushed back at its next fire time.
    Heap entries of removed or replaced jobs are dropped when they surface.

    Args:
        run: runs one due check through the pipeline (``Runner.run_check``).
        skipped: counts a run that did not happen, ``(check name, reason)``
            (``Metrics.skipped``).
        clock: wall and monotonic time and timers (tests pass one they move by hand).
    """

    def __init__(
        self,
        *,
        run: RunCheck,
        skipped: Callable[[str, str], None],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._run_check = run
        self._skipped = skipped
        self._clock = clock
        #: ``wall - monotonic`` at the last look at the clocks (see the module docstring).
        self._anchor = clock.time() - clock.monotonic()
        self._jobs: dict[str, _Job] = {}
        # (due, sequence, job): the sequence keeps equal due times in insertion order.
        self._heap: list[tuple[float, int, _Job]] = []
        self._sequence = 0
        # Check name -> its run in progress (kept across a reload that replaces the job,
        # so a changed check still never overlaps itself).
        self._running: dict[str, asyncio.Task[None]] = {}
        self._timer: Timer | None = None
        self._started = False
        self._paused = False
        self._stopping = False

    @property
    def running(self) -> bool:
        """Whether the scheduler is started (and not paused)."""
        return self._started and not self._paused

    @property
    def job_count(self) -> int:
        """How many checks are scheduled."""
        return len(self._jobs)

    def start(self) -> None:
        """Start firing jobs on the running event loop."""
        self._started = True
        self._paused = False
        self._arm()

    async def apply(self, checks: Iterable[CheckConfig]) -> None:
        """Schedule exactly the non-watch ``checks``; unchanged ones keep their job."""
        wanted = {c.name: c for c in checks if c.kind != "watch"}
        for name in [n for n, job in self._jobs.items() if wanted.get(n) != job.check]:
            del self._jobs[name]
        now, _ = self._now()
        for name, check in wanted.items():
            if name not in self._jobs:
                self._add(check, now)
        if len(self._heap) > 2 * len(self._jobs) + 64:
            # Many replaced jobs: drop their stale entries rather than carry them.
            self._heap = [e for e in self._heap if self._jobs.get(e[2].check.name) is e[2]]
            heapq.heapify(self._heap)
        self._arm()

    def _add(self, check: CheckConfig, now: float) -> None:
        try:
            cron = _cron(check)
        except ValueError as exc:
            log.error("check %s not scheduled: bad cron %r: %s", check.name, check.cron, exc)
            return
        offset = 0.0 if cron else start_offset(check.name, check.interval)
        job = _Job(check, cron, float(misfire_grace(check)), offset)
        job.due = job.after(now)
        job.mono = job.due - self._anchor
        self._jobs[check.name] = job
        self._push(job)

    def _push(self, job: _Job) -> None:
        if math.isfinite(job.mono):
            self._sequence += 1
            heapq.heappush(self._heap, (job.mono, self._sequence, job))

    def next_run_times(self) -> dict[str, float]:
        """Unix time of each job's next run (for tests and the API)."""
        return {name: job.due for name, job in self._jobs.items() if math.isfinite(job.due)}

    def pause(self) -> None:
        """Stop starting new runs for good (running ones continue); the first step of a stop."""
        self._stopping = True
        self._paused = True
        self._disarm()

    async def shutdown(self) -> None:
        """Stop the scheduler; call :meth:`Runner.drain` first to let runs end."""
        self._started = False
        self._disarm()

    # ------------------------------------------------------------------ clocks

    def _now(self) -> tuple[float, float]:
        """Wall and monotonic time; every job is re-anchored first if the wall clock stepped."""
        mono = self._clock.monotonic()
        wall = self._clock.time()
        anchor = wall - mono
        if abs(anchor - self._anchor) > STEP_TOLERANCE:
            self._reanchor(anchor, wall)
        self._anchor = anchor
        return wall, mono

    def _reanchor(self, anchor: float, wall: float) -> None:
        """Map every job's due time through the new anchor (see the module docstring)."""
        log.warning(
            "the wall clock stepped by %+.3f s: interval checks keep their interval,"
            " cron checks follow the new time",
            anchor - self._anchor,
        )
        for job in self._jobs.values():
            if job.cron is None:
                # Same monotonic moment, now named in the new wall time.
                job.due = job.mono + anchor
            else:
                # Not reached yet by the new wall clock: its next cron time by that clock
                # (earlier after a backward step). Passed: due now, and the usual rule
                # (run within the misfire grace, else skipped as missed) decides.
                if job.due > wall:
                    job.due = job.after(wall)
                job.mono = job.due - anchor
        self._heap = []
        for job in self._jobs.values():
            self._push(job)

    # ------------------------------------------------------------------ firing

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        """(Re)arm the one timer for the earliest live job."""
        self._disarm()
        if not self.running:
            return
        heap = self._heap
        while heap and self._jobs.get(heap[0][2].check.name) is not heap[0][2]:
            heapq.heappop(heap)  # removed or replaced since it was pushed
        if heap:
            delay = heap[0][0] - self._clock.monotonic()
            self._timer = self._clock.call_later(min(_MAX_SLEEP, max(0.0, delay)), self._fire)

    def _fire(self) -> None:
        self._timer = None
        wall, mono = self._now()
        heap = self._heap
        # A timer may fire a little early (the loop rounds to its clock's resolution):
        # a run due within _EARLY starts now rather than after one more wake-up.
        while heap and heap[0][0] <= mono + _EARLY:
            _, _, job = heapq.heappop(heap)
            if self._jobs.get(job.check.name) is job:
                self._due(job, wall, mono)
        self._arm()

    def _due(self, job: _Job, wall: float, mono: float) -> None:
        """Start (or skip) the run of ``job`` due at ``job.due``; schedule its next one."""
        check = job.check
        # Coalesce: of the fire times passed by now, only the latest may still run.
        # The anchor was checked an instant ago, so wall-clock arithmetic is safe here.
        latest, job.due = job.catch_up(wall)
        job.mono = job.due - self._anchor
        self._push(job)
        late = mono - (latest - self._anchor)
        if check.name in self._running:
            self._skipped(check.name, "max_instances")
        elif late > job.grace:
            self._skipped(check.name, "missed")
        else:
            task = asyncio.get_running_loop().create_task(self._run(check, latest), name=check.name)
            self._running[check.name] = task
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        name = task.get_name()
        if self._running.get(name) is task:
            del self._running[name]

    async def _run(self, check: CheckConfig, due: float) -> None:
        try:
            await self._run_check(check, scheduled_at=due)
        except asyncio.CancelledError:
            # Only the daemon's stop cancels runs, and then the task ends here anyway.
            return
        except Exception:
            # A bug in one run must not silence the check: log it, keep scheduling.
            log.exception("check %s: the run failed inside the agent", check.name)
