"""Drain the outbox: one worker task per receiver, in order per check.

The outbox rows in SQLite are the durable record; the dispatcher keeps the schedule
in memory (loaded from the store on start, extended by :meth:`Dispatcher.enqueue`):
per receiver, a FIFO of rows per check and a heap of each check's head by due time.
Only a check's head is ever attempted, so a check's events reach a receiver in the
order they happened, across retries and restarts, while other checks are not held up
by one check's retries. A pass costs O(log n) per attempt however long the backlog,
so a large outage never stalls the event loop that probes run on.

With ``alerting.group_wait`` set, the heads of a receiver's checks are sent as groups
(:mod:`agent.alerting.grouping` decides which and when, :mod:`agent.alerting.group_queue`
remembers groups between passes). Sending and settling rows is
:mod:`agent.alerting.attempts`; this module decides what to attempt and when, and
tracks each receiver's own health (failing, probed, recovered).

Outcomes: ``success`` (row delivered, never sent again), ``retry`` (retryable error,
scheduled with backoff), ``failed`` (non-retryable error, e.g. HTTP 400: given up),
``dropped`` (retry budget ``receiver.retry_timeout`` exhausted, logged at ERROR).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable, Mapping

import httpx

from agent.alerting.attempts import Attempts, Outcome
from agent.alerting.group_queue import GroupQueue
from agent.alerting.grouping import GroupKey, GroupPolicy, group_labels
from agent.alerting.outbox import RateLimit, RetryPolicy, Schedule
from agent.config.alerting import ReceiverConfig
from agent.notifiers import NOTIFIERS
from agent.notifiers.base import HttpNotifier
from agent.notifiers.errors import NotifyStatus
from agent.storage import OutboxRow, Store

__all__ = [
    "DEFAULT_GRACE_TIMEOUT",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_PROBE_MAX_INTERVAL",
    "Dispatcher",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_IN_FLIGHT = 8
#: How long a stop waits for attempts already on the wire.
DEFAULT_GRACE_TIMEOUT = 3.0
#: Longest pause between probes of a failing receiver: how late, at most, delivery
#: resumes after it recovers (a receiver's ``Retry-After`` may ask for longer).
DEFAULT_PROBE_MAX_INTERVAL = 2.0
#: Longest a worker sleeps without looking at its schedule (guards wall-clock jumps).
_MAX_IDLE = 60.0
#: How often a failing receiver's queue is swept for events past their retry budget.
_SWEEP_INTERVAL = 1.0


class Dispatcher:
    """Delivers outbox rows to receivers.

    Args:
        store: the outbox.
        receivers: receiver configs by name.
        clock: wall-clock source (Unix seconds).
        retry: backoff schedule.
        rng: jitter source.
        on_outcome: called ``(receiver, outcome)`` after every attempt.
        on_delivered: called with the row and time after a receiver accepted it.
        max_in_flight: concurrent attempts per receiver (over different checks).
    """

    def __init__(
        self,
        store: Store,
        receivers: Mapping[str, ReceiverConfig],
        *,
        clock: Callable[[], float],
        retry: RetryPolicy,
        rng: random.Random,
        on_outcome: Callable[[str, str], None],
        on_delivered: Callable[[OutboxRow, float], None],
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self._store = store
        self._receivers = dict(receivers)
        self._clock = clock
        self._retry = retry
        self._probe = RetryPolicy(
            initial_interval=min(retry.initial_interval, DEFAULT_PROBE_MAX_INTERVAL),
            max_interval=min(retry.max_interval, DEFAULT_PROBE_MAX_INTERVAL),
            multiplier=retry.multiplier,
        )
        self._rng = rng
        self._attempts = Attempts(
            store,
            clock=clock,
            retry=retry,
            rng=rng,
            on_outcome=on_outcome,
            on_delivered=on_delivered,
        )
        self._attempts.receivers = self._receivers
        self._max_in_flight = max_in_flight
        self._schedules: dict[str, Schedule] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._wakes: dict[str, asyncio.Event] = {}
        self._client: httpx.AsyncClient | None = None
        self._started = False
        self._closing = False
        self._groups = GroupQueue(store.outbox_payload)
        self._limits: dict[str, RateLimit] = {}
        #: When each idle worker will look at its schedule next (clock time).
        self._looks: dict[str, float] = {}

    def start(self) -> None:
        """Load the pending rows, open the HTTP client, start one worker per receiver."""
        self._closing = False
        self._schedules = {name: Schedule() for name in self._receivers}
        for row in self._store.outbox_pending_rows():
            schedule = self._schedules.get(row.receiver)
            if schedule is not None:
                schedule.add(row)
        now = self._clock()
        for name, schedule in self._schedules.items():
            self._drop_expired(name, schedule, now)  # e.g. queued before a long stop
        if self._client is None:
            # Redirects are not followed: a webhook answering 3xx is misconfigured.
            self._client = httpx.AsyncClient(follow_redirects=False)
        self._attempts.client = self._client
        self._started = True
        self._sync_workers()

    def enqueue(self, rows: Iterable[OutboxRow]) -> None:
        """Schedule rows just written to the store (before start: loaded by start)."""
        if not self._started:
            return
        for row in rows:
            schedule = self._schedules.get(row.receiver)
            if schedule is None:
                continue
            schedule.add(row)
            # A grouped event cannot be due before group_wait: when the worker will
            # look by then anyway, waking it would only redo an O(queue) pass per
            # event, quadratic over a mass failure.
            grouped = (
                self._groups.policy_for(row.check).enabled
                and self._groups.notifier(self._receivers.get(row.receiver)) is not None
            )
            if not grouped or self._groups.due_at(row) < self._looks.get(
                row.receiver, float("-inf")
            ):
                self._wakes[row.receiver].set()

    def set_receivers(self, receivers: Mapping[str, ReceiverConfig]) -> None:
        """Swap the receiver set (reload); workers start and stop accordingly."""
        self._receivers = dict(receivers)
        self._attempts.receivers = self._receivers
        if self._started:
            self._sync_workers()
            self.wake()

    def set_grouping(
        self, policy: GroupPolicy, *, per_check: Mapping[str, GroupPolicy] | None = None
    ) -> None:
        """Apply the grouping settings (reload).

        Args:
            policy: the agent-level ``group_wait``/``group_interval``/``group_by``.
            per_check: checks whose route sets its own grouping.
        """
        self._groups.configure(policy, per_check or {})
        self.wake()

    def wake(self) -> None:
        """Tell every worker to look at its schedule now."""
        for event in self._wakes.values():
            event.set()

    async def aclose(self, *, grace_timeout: float = DEFAULT_GRACE_TIMEOUT) -> None:
        """Stop workers, letting in-flight attempts finish for up to ``grace_timeout``.

        An attempt cut short is retried after the next start with the same delivery
        id; the grace period makes that (a possible duplicate) rare on a clean stop.
        """
        self._closing = True
        self._started = False
        self.wake()
        workers = list(self._workers.values())
        if workers:
            await asyncio.wait(workers, timeout=grace_timeout)
        self._workers.clear()
        self._wakes.clear()
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            self._attempts.client = None

    def _sync_workers(self) -> None:
        for name in list(self._workers):
            if name not in self._receivers:
                self._workers.pop(name).cancel()
                self._wakes.pop(name, None)
                self._schedules.pop(name, None)
        for name in self._receivers:
            self._schedules.setdefault(name, Schedule())
            if name not in self._workers:
                self._wakes[name] = asyncio.Event()
                self._workers[name] = asyncio.create_task(
                    self._worker(name), name=f"wsprobe-notify-{name}"
                )

    async def _worker(self, name: str) -> None:
        wake = self._wakes[name]
        schedule = self._schedules[name]
        while not self._closing:
            wake.clear()
            self._looks.pop(name, None)  # busy: anything enqueued now wakes it again
            try:
                idle = await self._pass(name, schedule)
            except Exception:
                # A store or programming error must not end delivery for good.
                logger.exception("notification worker for receiver %r failed; retrying", name)
                idle = self._retry.initial_interval
            if (idle is None or idle > 0) and not self._closing:
                sleep = min(idle or _MAX_IDLE, _MAX_IDLE)
                self._looks[name] = self._clock() + sleep
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(sleep):
                        await wake.wait()

    async def _pass(self, name: str, schedule: Schedule) -> float | None:
        """Attempt due heads; return seconds until the next one is due (0: go again).

        Attempts go out in waves of up to ``max_in_flight``. A wave in which every
        attempt failed retryably (none accepted, none answered) marks the receiver
        failing, once per wave however many events it held. While failing, the
        receiver is probed with one event (the one due soonest, due or not) every
        :data:`DEFAULT_PROBE_MAX_INTERVAL` at most: a receiver that is down costs one
        request per probe, not one per queued event, and a receiver that comes back
        gets its whole backlog within one probe period.
        """
        now = self._clock()
        if schedule.failing:
            if now - schedule.last_sweep >= _SWEEP_INTERVAL:
                schedule.last_sweep = now
                self._drop_expired(name, schedule, now)
            if schedule.blocked_until > now:
                return schedule.blocked_until - now
        grouped = self._groups.notifier(self._receivers.get(name))
        if grouped is not None:
            return await self._group_pass(name, schedule, grouped, now)
        limit = self._rate_limit(name, now)
        allowed = self._max_in_flight if limit is None else limit.available(now)
        if allowed < 1:
            assert limit is not None
            return max(0.001, limit.wait(now))
        if schedule.failing:
            probe = schedule.pop_earliest()
            due = [probe] if probe is not None else []
        else:
            due = schedule.pop_due(now, min(allowed, self._max_in_flight))
        if limit is not None:
            limit.take(len(due), now=now)
        if due:
            outcomes = await asyncio.gather(
                *(self._attempts.one(name, schedule, row) for row in due)
            )
            self._after_wave(name, schedule, outcomes)
            return 0.0
        next_due = schedule.next_due()
        return None if next_due is None else max(0.001, next_due - now)

    def _after_wave(self, name: str, schedule: Schedule, outcomes: list[Outcome]) -> None:
        """Receiver-level accounting: one failure per wave, recovery releases the backlog."""
        if any(o.answered for o in outcomes):
            if schedule.failing:
                schedule.failures = 0
                schedule.blocked_until = 0.0
                schedule.release(self._clock())
                logger.warning("receiver %r accepts events again", name)
            return
        errors = [o.error for o in outcomes if o.error is not None]
        if not errors:
            return  # nothing went on the wire (expired, pruned, receiver removed)
        first_failure = not schedule.failing
        schedule.failures += 1
        hints = [e.retry_after for e in errors if isinstance(e, NotifyStatus) and e.retry_after]
        delay = self._probe.delay(schedule.failures, rng=self._rng)
        if hints:
            # The receiver asked for a pause: honour it, up to the retry cap.
            delay = max(delay, min(max(hints), self._retry.max_interval))
        schedule.blocked_until = self._clock() + delay
        # One WARNING when a receiver starts failing, not one per event and retry:
        # an outage with thousands of queued events must not flood the log.
        if first_failure:
            logger.warning(
                "%s; probing it with one event every %gs at most until it accepts one"
                " (%d check(s) with queued events)",
                errors[0],
                self._probe.max_interval,
                len(schedule.by_check),
            )

    def _rate_limit(self, name: str, now: float) -> RateLimit | None:
        """The receiver's request budget, when it has one (PagerDuty by default)."""
        receiver = self._receivers.get(name)
        notifier = NOTIFIERS.get(receiver.type) if receiver else None
        per_minute = receiver.rate_limit if receiver else None
        if per_minute is None and isinstance(notifier, HttpNotifier):
            per_minute = notifier.default_rate_limit
        if per_minute is None:
            self._limits.pop(name, None)
            return None
        limit = self._limits.get(name)
        if limit is None or limit.per_minute != per_minute:
            limit = self._limits[name] = RateLimit(per_minute, now=now)
        return limit

    async def _group_pass(
        self, name: str, schedule: Schedule, notifier: HttpNotifier, now: float
    ) -> float | None:
        """Send the groups that are due, and events of ungrouped checks as they come due.

        While the receiver fails, one request (a group or an event) goes out as its probe.
        """
        todo = self._groups.select(name, schedule, now)
        limit = self._rate_limit(name, now)
        allowed = self._max_in_flight if limit is None else limit.available(now)
        allowed = 1 if schedule.failing else min(allowed, self._max_in_flight)
        ready = todo.ready[:allowed]
        singles = todo.singles[: allowed - len(ready)]
        sends = len(ready) + len(singles)
        if limit is not None:
            if (todo.ready or todo.singles) and not sends:
                return max(0.001, limit.wait(now))
            limit.take(sends, now=now)
        if sends:
            for _, rows in ready:
                schedule.take(rows)
            schedule.take(singles)
            outcomes = await asyncio.gather(
                *(self._send_group(name, schedule, notifier, k, rows) for k, rows in ready),
                *(self._attempts.one(name, schedule, row) for row in singles),
            )
            self._after_wave(name, schedule, outcomes)
            return 0.0
        return None if todo.next_at is None else max(0.001, todo.next_at - now)

    async def _send_group(
        self,
        name: str,
        schedule: Schedule,
        notifier: HttpNotifier,
        key: GroupKey,
        rows: list[OutboxRow],
    ) -> Outcome:
        self._groups.forget(rows)
        labels = group_labels(key)
        outcome = await self._attempts.group(name, schedule, notifier, rows, labels=labels)
        if outcome.answered:
            self._groups.sent(name, key, self._clock())
        return outcome

    def _drop_expired(self, name: str, schedule: Schedule, now: float) -> None:
        self._groups.forget(self._attempts.drop_expired(name, schedule, now))
