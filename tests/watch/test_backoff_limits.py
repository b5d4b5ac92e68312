"""Backoff limits: how far the cap grows, and what nonsensical arguments are told."""

from __future__ import annotations

import pytest

from agent.watch.backoff import Backoff, backoff_cap

TINY = 2.0**-80


@pytest.mark.parametrize(
    ("attempt", "cap"),
    [(63, 2.0**-17), (64, 2.0**-16), (65, 2.0**-16), (10**9, 2.0**-16)],
    ids=["63", "64", "65", "a-billion"],
)
def test_cap_stops_doubling_after_64_attempts(attempt: int, cap: float) -> None:
    """The cap doubles up to attempt 64 and stays there, so it never overflows."""
    assert backoff_cap(attempt, initial_delay=TINY, max_delay=1.0) == cap


def test_negative_attempt_message() -> None:
    """A negative attempt is refused with the rule it broke."""
    with pytest.raises(ValueError, match=r"^attempt must be >= 0$"):
        backoff_cap(-1, initial_delay=1.0, max_delay=2.0)
    assert backoff_cap(0, initial_delay=1.0, max_delay=2.0) == 1.0


def test_bad_delays_message() -> None:
    """Delays out of order are refused with the rule they broke; equal delays are fine."""
    with pytest.raises(ValueError, match=r"^need 0 < initial_delay <= max_delay$"):
        Backoff(initial_delay=2.0, max_delay=1.0)
    assert Backoff(initial_delay=2.0, max_delay=2.0, random=lambda: 1.0).next_delay() == 2.0
