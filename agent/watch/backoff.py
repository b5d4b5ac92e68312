"""Reconnect delays: exponential backoff with full jitter, pure and injectable.

Full jitter (a uniformly random delay between 0 and the exponential cap) spreads a
herd of sessions that a server dropped at the same moment over the whole window,
instead of having them return together at ``initial_delay``, ``2 * initial_delay``...

Nothing here raises except ``ValueError`` on nonsensical arguments.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable

__all__ = ["Backoff", "backoff_cap", "backoff_delay"]

#: Beyond this many doublings the cap is reached for any sane initial delay; bounding
#: the exponent keeps ``2.0 ** attempt`` from overflowing after days of retries.
_MAX_EXPONENT = 64


def backoff_cap(attempt: int, *, initial_delay: float, max_delay: float) -> float:
    """The upper bound of the delay before reconnect number ``attempt`` (0-based).

    Args:
        attempt: Consecutive reconnects already tried since the last healthy connection.
        initial_delay: Cap of the first attempt, seconds.
        max_delay: Cap of every attempt, seconds.

    Returns:
        ``min(max_delay, initial_delay * 2 ** attempt)``.

    Raises:
        ValueError: ``attempt`` is negative.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    return min(max_delay, initial_delay * 2.0 ** min(attempt, _MAX_EXPONENT))


def backoff_delay(
    attempt: int,
    *,
    initial_delay: float,
    max_delay: float,
    random: Callable[[], float] = _random.random,
) -> float:
    """The full-jitter delay before reconnect number ``attempt``.

    Args:
        attempt: Consecutive reconnects already tried since the last healthy connection.
        initial_delay: Cap of the first attempt, seconds.
        max_delay: Cap of every attempt, seconds.
        random: Returns a float in [0, 1); injected by tests.

    Returns:
        ``random() * backoff_cap(attempt, ...)`` seconds.
    """
    return random() * backoff_cap(attempt, initial_delay=initial_delay, max_delay=max_delay)


class Backoff:
    """Counts consecutive failed reconnects of one session and hands out delays.

    Args:
        initial_delay: Cap of the first delay, seconds.
        max_delay: Cap of every delay, seconds.
        max_retries: Consecutive reconnects allowed before giving up; ``None``: forever.
        random: Returns a float in [0, 1); injected by tests.
    """

    __slots__ = ("_random", "attempts", "initial_delay", "max_delay", "max_retries")

    def __init__(
        self,
        *,
        initial_delay: float,
        max_delay: float,
        max_retries: int | None = None,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if initial_delay <= 0 or max_delay < initial_delay:
            raise ValueError("need 0 < initial_delay <= max_delay")
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.max_retries = max_retries
        self._random = random
        self.attempts = 0

    def next_delay(self) -> float | None:
        """Delay before the next reconnect, counting it; ``None`` once retries are spent."""
        if self.max_retries is not None and self.attempts >= self.max_retries:
            return None
        delay = backoff_delay(
            self.attempts,
            initial_delay=self.initial_delay,
            max_delay=self.max_delay,
            random=self._random,
        )
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """Start over: the connection has been healthy long enough."""
        self.attempts = 0
