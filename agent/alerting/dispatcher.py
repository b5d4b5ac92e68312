"""Drain the outbox: one worker task per receiver, in order per check.

A worker attempts only the oldest pending row of each check, so a check's events
reach a receiver in the order they happened even across retries and restarts; other
checks' events are not held up by one check's retries. Workers run beside probing
and never block it: ``observe()`` only writes rows and sets an event.

Outcomes: ``success`` (row delivered, never sent again), ``retry`` (retryable error,
scheduled with backoff), ``failed`` (non-retryable error, e.g. HTTP 400: given up),
``dropped`` (retry budget ``receiver.retry_timeout`` exhausted, logged at ERROR).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping

import httpx

from agent.alerting.outbox import RetryPolicy
from agent.config.alerting import DEFAULT_RETRY_TIMEOUT, ReceiverConfig
from agent.notifiers import NOTIFIERS
from agent.notifiers.base import AlertEvent, Delivery
from agent.notifiers.errors import NotifyError, NotifyStatus
from agent.store import DONE_RETENTION, OutboxRow, Store

__all__ = ["DEFAULT_GRACE_TIMEOUT", "DEFAULT_MAX_IN_FLIGHT", "Dispatcher"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_IN_FLIGHT = 8
#: How long a stop waits for attempts already on the wire.
DEFAULT_GRACE_TIMEOUT = 3.0
#: Longest a worker sleeps without re-reading the outbox (guards wall-clock jumps).
_MAX_IDLE = 60.0
_PRUNE_INTERVAL = 3600.0


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
        self._rng = rng
        self._on_outcome = on_outcome
        self._on_delivered = on_delivered
        self._max_in_flight = max_in_flight
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._wakes: dict[str, asyncio.Event] = {}
        self._client: httpx.AsyncClient | None = None
        self._last_prune = 0.0
        self._closing = False

    def start(self) -> None:
        """Open the HTTP client and start one worker per receiver (needs a running loop)."""
        self._closing = False
        if self._client is None:
            # Redirects are not followed: a webhook answering 3xx is misconfigured.
            self._client = httpx.AsyncClient(follow_redirects=False)
        self._sync_workers()

    def set_receivers(self, receivers: Mapping[str, ReceiverConfig]) -> None:
        """Swap the receiver set (reload); workers start and stop accordingly."""
        self._receivers = dict(receivers)
        if self._client is not None:
            self._sync_workers()
        self.wake()

    def wake(self) -> None:
        """Tell every worker the outbox changed."""
        for event in self._wakes.values():
            event.set()

    async def aclose(self, *, grace_timeout: float = DEFAULT_GRACE_TIMEOUT) -> None:
        """Stop workers, letting in-flight attempts finish for up to ``grace_timeout``.

        An attempt cut short is retried after the next start with the same delivery
        id; the grace period makes that (a possible duplicate) rare on a clean stop.
        """
        self._closing = True
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

    def _sync_workers(self) -> None:
        for name in list(self._workers):
            if name not in self._receivers:
                self._workers.pop(name).cancel()
                self._wakes.pop(name, None)
        for name in self._receivers:
            if name not in self._workers:
                self._wakes[name] = asyncio.Event()
                self._workers[name] = asyncio.create_task(
                    self._worker(name), name=f"wsprobe-notify-{name}"
                )

    async def _worker(self, name: str) -> None:
        wake = self._wakes[name]
        while not self._closing:
            wake.clear()
            try:
                idle = await self._pass(name)
            except Exception:
                # A store or programming error must not end delivery for good.
                logger.exception("notification worker for receiver %r failed; retrying", name)
                idle = self._retry.initial_interval
            if (idle is None or idle > 0) and not self._closing:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(idle or _MAX_IDLE, _MAX_IDLE)):
                        await wake.wait()

    async def _pass(self, name: str) -> float | None:
        """Attempt due heads; return seconds until the next one is due (0: go again)."""
        now = self._clock()
        if now - self._last_prune > _PRUNE_INTERVAL:
            self._last_prune = now
            self._store.outbox_prune(before=now - DONE_RETENTION)
        heads = self._store.outbox_heads(name)
        due = [row for row in heads if row.next_attempt_at <= now]
        if due:
            await asyncio.gather(*(self._attempt(name, row) for row in due[: self._max_in_flight]))
            return 0.0
        if not heads:
            return None
        return max(0.001, min(row.next_attempt_at for row in heads) - now)

    async def _attempt(self, name: str, row: OutboxRow) -> None:
        receiver = self._receivers.get(name)
        if receiver is None:
            return  # removed by a reload while queued; reconfigure drops its rows
        attempts = row.attempts + 1
        notifier = NOTIFIERS.get(receiver.type)
        if notifier is None:
            self._finish(row, "failed", attempts, f"unknown receiver type {receiver.type!r}")
            return
        assert self._client is not None
        delivery = Delivery(id=row.delivery_id, attempt=attempts, now=self._clock())
        try:
            await notifier.send(
                receiver, AlertEvent.from_json(row.payload), delivery, client=self._client
            )
        except NotifyError as exc:
            self._failed(row, attempts, exc)
            return
        except Exception as exc:
            # Notifiers map their own errors; anything else is a bug worth a traceback,
            # but the event is still retried within its budget.
            logger.exception("receiver %r: unexpected error delivering %s", name, row.delivery_id)
            self._failed(row, attempts, NotifyError(name, type(exc).__name__), retryable=True)
            return
        now = self._clock()
        self._store.outbox_finish(row.id, status="delivered", attempts=attempts, at=now)
        logger.debug("receiver %r accepted %s %s (%s)", name, row.event, row.check, row.delivery_id)
        self._outcome(name, "success")
        self._on_delivered(row, now)

    def _failed(
        self, row: OutboxRow, attempts: int, exc: NotifyError, *, retryable: bool | None = None
    ) -> None:
        if not (exc.retryable if retryable is None else retryable):
            self._finish(row, "failed", attempts, str(exc))
            return
        now = self._clock()
        retry_after = exc.retry_after if isinstance(exc, NotifyStatus) else None
        delay = self._retry.delay(attempts, rng=self._rng, retry_after=retry_after)
        receiver = self._receivers.get(row.receiver)
        budget = receiver.retry_timeout if receiver else DEFAULT_RETRY_TIMEOUT
        if now + delay - row.created_at > budget:
            self._finish(row, "dropped", attempts, str(exc))
            return
        self._store.outbox_retry(row.id, attempts=attempts, next_attempt_at=now + delay)
        logger.warning(
            "%s; retrying %s event of check %r in %.1fs (attempt %d, delivery %s)",
            exc,
            row.event,
            row.check,
            delay,
            attempts,
            row.delivery_id,
        )
        self._outcome(row.receiver, "retry")

    def _finish(self, row: OutboxRow, outcome: str, attempts: int, why: str) -> None:
        self._store.outbox_finish(row.id, status=outcome, attempts=attempts, at=self._clock())
        what = "gave up (not retryable)" if outcome == "failed" else "dropped (retry budget spent)"
        logger.error(
            "%s: %s %s event of check %r after %d attempt(s), delivery %s",
            why,
            what,
            row.event,
            row.check,
            attempts,
            row.delivery_id,
        )
        self._outcome(row.receiver, outcome)

    def _outcome(self, receiver: str, outcome: str) -> None:
        try:
            self._on_outcome(receiver, outcome)
        except Exception:
            logger.exception("notification outcome callback failed")
