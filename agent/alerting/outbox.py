"""Outbox rows, the retry schedule, and the in-memory delivery schedule.

Each event is queued once per receiver with its own delivery id (a UUID reused on
every retry, so receivers can deduplicate). Retries back off exponentially with
"equal jitter" (half fixed, half random) so many agents recovering together do not
hit a receiver in lockstep; a ``Retry-After`` from the receiver is honoured up to the
cap.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from agent.notifiers.base import AlertEvent
from agent.storage import NewOutboxRow, OutboxRow

__all__ = [
    "DEFAULT_RETRY_INITIAL_INTERVAL",
    "DEFAULT_RETRY_MAX_INTERVAL",
    "RateLimit",
    "RetryPolicy",
    "Schedule",
    "new_rows",
]

DEFAULT_RETRY_INITIAL_INTERVAL = 1.0
#: Low enough that a receiver back from an outage gets the backlog within a minute.
DEFAULT_RETRY_MAX_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter between delivery attempts."""

    initial_interval: float = DEFAULT_RETRY_INITIAL_INTERVAL
    max_interval: float = DEFAULT_RETRY_MAX_INTERVAL
    multiplier: float = 2.0

    def delay(
        self, attempts: int, *, rng: random.Random, retry_after: float | None = None
    ) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt.

        Args:
            attempts: failed attempts so far (1 after the first failure).
            rng: jitter source (seeded in tests).
            retry_after: the receiver's ``Retry-After``, if any.

        Returns:
            The delay, at most ``max_interval``.
        """
        base = min(self.max_interval, self.initial_interval * self.multiplier ** (attempts - 1))
        delay = base / 2 + rng.uniform(0, base / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_interval))
        return delay


class RateLimit:
    """A token bucket: at most ``per_minute`` sends per minute, bursts up to that many.

    Args:
        per_minute: the receiver's allowance (e.g. PagerDuty's 120 events a minute
            per integration key).
        now: current time; the bucket starts full.
    """

    def __init__(self, per_minute: int, *, now: float) -> None:
        self.per_minute = per_minute
        self._tokens = float(per_minute)
        self._at = now

    def _refill(self, now: float) -> None:
        rate = self.per_minute / 60.0
        self._tokens = min(float(self.per_minute), self._tokens + max(0.0, now - self._at) * rate)
        self._at = now

    def available(self, now: float) -> int:
        """Sends allowed right now."""
        self._refill(now)
        return int(self._tokens)

    def take(self, count: int, *, now: float) -> None:
        """Spend ``count`` sends."""
        self._refill(now)
        self._tokens -= count

    def wait(self, now: float) -> float:
        """Seconds until one more send is allowed (0 if one is now)."""
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) * 60.0 / self.per_minute)


def new_rows(event: AlertEvent, receivers: Iterable[str], *, now: float) -> list[NewOutboxRow]:
    """One outbox row per receiver for ``event``, each with a fresh delivery id."""
    payload = event.to_json()
    return [
        NewOutboxRow(
            delivery_id=str(uuid.uuid4()),
            receiver=name,
            check=event.check,
            event=event.event,
            payload=payload,
            created_at=now,
        )
        for name in receivers
    ]


class Schedule:
    """One receiver's pending rows: a FIFO per check and a heap of due heads.

    Heap entries are validated lazily: an entry is live only while its row is still
    its check's head and not in flight.
    """

    def __init__(self) -> None:
        self.by_check: dict[str, deque[OutboxRow]] = {}
        self.heap: list[tuple[float, int, str]] = []
        self.in_flight: set[int] = set()
        #: Consecutive failed waves of attempts (all retryable failures, none accepted).
        self.failures = 0
        #: While failing, nothing is attempted before this time (receiver-level backoff).
        self.blocked_until = 0.0
        self.last_sweep = 0.0

    @property
    def failing(self) -> bool:
        """True after a retryable failure until the receiver accepts an event again."""
        return self.failures > 0

    def add(self, row: OutboxRow) -> None:
        """Queue a new row behind its check's earlier rows."""
        queue = self.by_check.setdefault(row.check, deque())
        queue.append(row)
        if len(queue) == 1:
            heapq.heappush(self.heap, (row.next_attempt_at, row.id, row.check))

    def pop_due(self, now: float, limit: int) -> list[OutboxRow]:
        """Take up to ``limit`` heads due at ``now`` and mark them in flight."""
        due: list[OutboxRow] = []
        while self.heap and self.heap[0][0] <= now and len(due) < limit:
            _, row_id, check = heapq.heappop(self.heap)
            queue = self.by_check.get(check)
            if not queue or queue[0].id != row_id or row_id in self.in_flight:
                continue  # stale entry
            self.in_flight.add(row_id)
            due.append(queue[0])
        return due

    def pop_earliest(self) -> OutboxRow | None:
        """Take the head due soonest, due or not, and mark it in flight.

        Used to probe a failing receiver: whether it is back does not depend on which
        event asks, so the probe does not wait for a particular event's own backoff.
        """
        while self.heap:
            _, row_id, check = heapq.heappop(self.heap)
            queue = self.by_check.get(check)
            if not queue or queue[0].id != row_id or row_id in self.in_flight:
                continue  # stale entry
            self.in_flight.add(row_id)
            return queue[0]
        return None

    def release(self, now: float) -> None:
        """Make every queued head due by ``now`` (the receiver is back from an outage).

        Heads backed off while the receiver was down would otherwise wait out their
        own delays; the heap is rebuilt, so no stale later entry survives.
        """
        self.heap = []
        for check, queue in self.by_check.items():
            head = queue[0]
            if head.id in self.in_flight:
                continue
            if head.next_attempt_at > now:
                head = dataclasses.replace(head, next_attempt_at=now)
                queue[0] = head
            self.heap.append((head.next_attempt_at, head.id, check))
        heapq.heapify(self.heap)

    def heads(self) -> list[OutboxRow]:
        """Each check's oldest row that is not in flight."""
        return [q[0] for q in self.by_check.values() if q[0].id not in self.in_flight]

    def take(self, rows: list[OutboxRow]) -> None:
        """Mark heads chosen outside :meth:`pop_due` (a group) as in flight."""
        self.in_flight.update(row.id for row in rows)

    def compact(self) -> None:
        """Rebuild the heap from the heads when stale entries pile up (grouped mode)."""
        if len(self.heap) > 2 * len(self.by_check) + 64:
            self.heap = [(q[0].next_attempt_at, q[0].id, c) for c, q in self.by_check.items()]
            heapq.heapify(self.heap)

    def next_due(self) -> float | None:
        """When the earliest head is due (may be a stale entry: then earlier)."""
        return self.heap[0][0] if self.heap else None

    def reschedule(self, row: OutboxRow) -> None:
        """The head was retried: put it back with its new due time."""
        self.in_flight.discard(row.id)
        self.by_check[row.check][0] = row
        heapq.heappush(self.heap, (row.next_attempt_at, row.id, row.check))

    def done(self, row: OutboxRow) -> None:
        """The head finished: the check's next row (if any) becomes its head."""
        self.in_flight.discard(row.id)
        queue = self.by_check[row.check]
        queue.popleft()
        if queue:
            head = queue[0]
            heapq.heappush(self.heap, (head.next_attempt_at, head.id, head.check))
        else:
            del self.by_check[row.check]

    def expired(self, before: float) -> list[OutboxRow]:
        """Remove and return every queued row created before ``before`` (not in flight)."""
        out: list[OutboxRow] = []
        for check in list(self.by_check):
            queue = self.by_check[check]
            while queue and queue[0].created_at < before and queue[0].id not in self.in_flight:
                out.append(queue.popleft())
            if not queue:
                del self.by_check[check]
            elif out and out[-1].check == check:
                head = queue[0]
                heapq.heappush(self.heap, (head.next_attempt_at, head.id, head.check))
        return out
