"""Delivery attempts: send one event (or one group) and settle its outbox rows.

Every row ends in exactly one of: ``delivered``; back in the schedule with a backoff
(``retry``, within the receiver's ``retry_timeout`` budget); ``failed`` (the receiver
refused it for good, e.g. HTTP 400); ``dropped`` (budget spent). The outcome of each
attempt also tells the dispatcher whether the receiver itself answered (it is up) or
failed retryably (it may be down).
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable

import httpx

from agent.alerting.grouping import group_delivery_id
from agent.alerting.outbox import RetryPolicy, Schedule
from agent.config.alerting import DEFAULT_RETRY_TIMEOUT, ReceiverConfig
from agent.notifiers import NOTIFIERS
from agent.notifiers.base import AlertEvent, Delivery, Group, HttpNotifier
from agent.notifiers.errors import NotifyError, NotifyStatus
from agent.storage import OutboxRow, Store

__all__ = ["Attempts", "Outcome"]

logger = logging.getLogger("agent.alerting.dispatcher")


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt went, as far as the receiver's own health is concerned."""

    #: The receiver answered (accepted, or refused for good): it is up.
    answered: bool = False
    #: The retryable error, when the attempt failed and may be retried.
    error: NotifyError | None = None


class Attempts:
    """Sends rows and settles them in the store and the in-memory schedule.

    Args:
        store: the outbox.
        clock: wall-clock source (Unix seconds).
        retry: per-event backoff schedule.
        rng: jitter source.
        on_outcome: called ``(receiver, outcome)`` for every settled or retried row.
        on_delivered: called with the row and time after a receiver accepted it.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float],
        retry: RetryPolicy,
        rng: random.Random,
        on_outcome: Callable[[str, str], None],
        on_delivered: Callable[[OutboxRow, float], None],
    ) -> None:
        self.store = store
        self.receivers: dict[str, ReceiverConfig] = {}
        self.client: httpx.AsyncClient | None = None
        self._clock = clock
        self._retry = retry
        self._rng = rng
        self._on_outcome = on_outcome
        self._on_delivered = on_delivered

    def drop_expired(self, name: str, schedule: Schedule, now: float) -> list[OutboxRow]:
        """Drop every queued event whose retry budget is spent (one transaction)."""
        receiver = self.receivers.get(name)
        budget = receiver.retry_timeout if receiver else DEFAULT_RETRY_TIMEOUT
        expired = schedule.expired(now - budget)
        if not expired:
            return expired
        self.store.outbox_drop([row.id for row in expired], at=now)
        logger.error(
            "receiver %r: dropped %d event(s) undelivered for over %gs (retry budget spent),"
            " oldest: %s event of check %r, delivery %s",
            name,
            len(expired),
            budget,
            expired[0].event,
            expired[0].check,
            expired[0].delivery_id,
        )
        for _ in expired:
            self.outcome(name, "dropped")
        return expired

    async def one(self, name: str, schedule: Schedule, row: OutboxRow) -> Outcome:
        """Send one row to receiver ``name``; settle it (delivered, retry, failed, dropped)."""
        receiver = self.receivers.get(name)
        payload = self.store.outbox_payload(row.id)
        if receiver is None or payload is None:
            schedule.done(row)  # receiver removed by a reload, or row pruned
            return Outcome()
        attempts = row.attempts + 1
        now = self._clock()
        if now - row.created_at > receiver.retry_timeout:
            # Queued before a long stop, or backed off past its budget: sending it now
            # would page about something the budget says is too old to matter.
            self.finish(schedule, row, "dropped", row.attempts, "retry budget spent")
            return Outcome()
        notifier = NOTIFIERS.get(receiver.type)
        if notifier is None:
            self.finish(schedule, row, "failed", attempts, f"unknown type {receiver.type!r}")
            return Outcome()
        assert self.client is not None
        delivery = Delivery(id=row.delivery_id, attempt=attempts, now=now)
        event = AlertEvent.from_json(payload)
        try:
            await notifier.send(receiver, event, delivery, client=self.client)
        except NotifyError as exc:
            return self.failed(schedule, row, attempts, exc)
        except Exception as exc:
            # Notifiers map their own errors; anything else is a bug worth a traceback,
            # but the event is still retried within its budget.
            logger.exception("receiver %r: unexpected error delivering %s", name, row.delivery_id)
            return self.failed(schedule, row, attempts, NotifyError(name, type(exc).__name__), True)
        now = self._clock()
        self.store.outbox_finish(row.id, status="delivered", attempts=attempts, at=now)
        schedule.done(row)
        logger.debug("receiver %r accepted %s %s (%s)", name, row.event, row.check, row.delivery_id)
        self.outcome(name, "success")
        self._on_delivered(row, now)
        return Outcome(answered=True)

    def failed(
        self,
        schedule: Schedule,
        row: OutboxRow,
        attempts: int,
        exc: NotifyError,
        retryable: bool | None = None,
    ) -> Outcome:
        """Settle a failed attempt: retry with backoff within the budget, else give up."""
        if not (exc.retryable if retryable is None else retryable):
            self.finish(schedule, row, "failed", attempts, str(exc))
            return Outcome(answered=True)  # it answered: the receiver itself is up
        now = self._clock()
        retry_after = exc.retry_after if isinstance(exc, NotifyStatus) else None
        delay = self._retry.delay(attempts, rng=self._rng, retry_after=retry_after)
        receiver = self.receivers.get(row.receiver)
        budget = receiver.retry_timeout if receiver else DEFAULT_RETRY_TIMEOUT
        if now + delay - row.created_at > budget:
            self.finish(schedule, row, "dropped", attempts, str(exc))
            return Outcome(error=exc)
        self.store.outbox_retry(row.id, attempts=attempts, next_attempt_at=now + delay)
        schedule.reschedule(
            dataclasses.replace(row, attempts=attempts, next_attempt_at=now + delay)
        )
        logger.debug(
            "%s; retrying %s event of check %r in %.1fs (attempt %d, delivery %s)",
            exc,
            row.event,
            row.check,
            delay,
            attempts,
            row.delivery_id,
        )
        self.outcome(row.receiver, "retry")
        return Outcome(error=exc)

    def finish(
        self, schedule: Schedule, row: OutboxRow, outcome: str, attempts: int, why: str
    ) -> None:
        self.store.outbox_finish(row.id, status=outcome, attempts=attempts, at=self._clock())
        schedule.done(row)
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
        self.outcome(row.receiver, outcome)

    def outcome(self, receiver: str, outcome: str) -> None:
        """Report one row's outcome; a failing callback never stops delivery."""
        try:
            self._on_outcome(receiver, outcome)
        except Exception:
            logger.exception("notification outcome callback failed")

    async def group(
        self,
        name: str,
        schedule: Schedule,
        notifier: HttpNotifier,
        rows: list[OutboxRow],
        *,
        labels: dict[str, str],
    ) -> Outcome:
        """Send ``rows`` to receiver ``name`` as one grouped request; settle each row."""
        receiver = self.receivers.get(name)
        now = self._clock()
        live: list[tuple[OutboxRow, AlertEvent]] = []
        for row in rows:
            payload = self.store.outbox_payload(row.id)
            if receiver is None or payload is None:
                schedule.done(row)
            elif now - row.created_at > receiver.retry_timeout:
                self.finish(schedule, row, "dropped", row.attempts, "retry budget spent")
            else:
                live.append((row, AlertEvent.from_json(payload)))
        if receiver is None or not live:
            return Outcome()
        ids = tuple(row.delivery_id for row, _ in live)
        attempt = max(row.attempts for row, _ in live) + 1
        delivery = Delivery(id=group_delivery_id(ids), attempt=attempt, now=now)
        group = Group(events=tuple(e for _, e in live), delivery_ids=ids, labels=labels)
        error: NotifyError | None = None
        try:
            request = notifier.render_group(receiver, group, delivery)
            await notifier.post(receiver, request, client=self._client_or_fail())
        except NotifyError as exc:
            error = exc
        except Exception as exc:
            logger.exception("receiver %r: unexpected error delivering %s", name, delivery.id)
            # As for one event: a notifier bug is logged, the events are still retried.
            error = NotifyError(name, type(exc).__name__)
            error.retryable = True
        if error is not None:
            outcomes = [self.failed(schedule, row, row.attempts + 1, error) for row, _ in live]
            return outcomes[0]  # the same error for every row: one receiver-level outcome
        now = self._clock()
        for row, _ in live:
            self.store.outbox_finish(row.id, status="delivered", attempts=row.attempts + 1, at=now)
            schedule.done(row)
            self.outcome(name, "success")
            self._on_delivered(row, now)
        logger.debug("receiver %r accepted %d event(s) as %s", name, len(live), delivery.id)
        return Outcome(answered=True)

    def _client_or_fail(self) -> httpx.AsyncClient:
        assert self.client is not None  # start() opened it
        return self.client
