"""Outbox rows and the retry schedule.

Each event is queued once per receiver with its own delivery id (a UUID reused on
every retry, so receivers can deduplicate). Retries back off exponentially with
"equal jitter" (half fixed, half random) so many agents recovering together do not
hit a receiver in lockstep; a ``Retry-After`` from the receiver is honoured up to the
cap.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from agent.notifiers.base import AlertEvent
from agent.store import NewOutboxRow

__all__ = [
    "DEFAULT_RETRY_INITIAL_INTERVAL",
    "DEFAULT_RETRY_MAX_INTERVAL",
    "RetryPolicy",
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
