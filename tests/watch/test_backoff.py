"""The reconnect schedule: exponential caps, full jitter, retries and reset."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.watch.backoff import Backoff, backoff_cap, backoff_delay


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (5, 30.0), (10_000, 30.0)],
    ids=["first", "doubles", "quadruples", "eight", "capped", "huge-attempt-no-overflow"],
)
def test_cap_doubles_up_to_max(attempt: int, expected: float) -> None:
    """The cap is initial_delay * 2**attempt, never above max_delay."""
    assert backoff_cap(attempt, initial_delay=1.0, max_delay=30.0) == expected


@pytest.mark.parametrize(
    ("rand", "expected"),
    [(0.0, 0.0), (0.25, 1.0), (0.999, 3.996)],
    ids=["zero", "quarter", "almost-one"],
)
def test_full_jitter_scales_the_cap(rand: float, expected: float) -> None:
    """The delay is random() times the cap: anywhere in [0, cap)."""
    delay = backoff_delay(2, initial_delay=1.0, max_delay=30.0, random=lambda: rand)
    assert delay == pytest.approx(expected)


def test_negative_attempt_is_rejected() -> None:
    """A negative attempt number is a programming error."""
    with pytest.raises(ValueError, match="attempt"):
        backoff_cap(-1, initial_delay=1.0, max_delay=2.0)


def test_schedule_with_injected_random() -> None:
    """A sequence of delays follows the caps exactly with a scripted random source."""
    rolls = itertools.cycle([0.5, 1.0, 0.1])
    backoff = Backoff(initial_delay=0.5, max_delay=4.0, random=lambda: next(rolls))
    delays = [backoff.next_delay() for _ in range(7)]
    # caps: 0.5, 1, 2, 4, 4, 4, 4
    assert delays == pytest.approx([0.25, 1.0, 0.2, 2.0, 4.0, 0.4, 2.0])
    assert backoff.attempts == 7


def test_max_retries_then_none_and_reset_starts_over() -> None:
    """After max_retries delays the next is None; reset() restarts the schedule."""
    backoff = Backoff(initial_delay=1.0, max_delay=8.0, max_retries=3, random=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(4)] == [1.0, 2.0, 4.0, None]
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_zero_retries_gives_up_at_once() -> None:
    """max_retries 0 means the first disconnect is final."""
    assert Backoff(initial_delay=1.0, max_delay=1.0, max_retries=0).next_delay() is None


@pytest.mark.parametrize(
    ("initial", "maximum"), [(0.0, 1.0), (2.0, 1.0)], ids=["zero-initial", "initial-above-max"]
)
def test_invalid_policy_rejected(initial: float, maximum: float) -> None:
    """Nonsensical delays are refused at construction."""
    with pytest.raises(ValueError, match="initial_delay"):
        Backoff(initial_delay=initial, max_delay=maximum)


@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    initial=st.floats(min_value=0.001, max_value=100.0),
    spread=st.floats(min_value=1.0, max_value=1000.0),
    rand=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_delay_always_within_zero_and_cap(
    attempt: int, initial: float, spread: float, rand: float
) -> None:
    """Whatever the attempt and roll, 0 <= delay <= min(max_delay, initial * 2**attempt)."""
    maximum = initial * spread
    delay = backoff_delay(attempt, initial_delay=initial, max_delay=maximum, random=lambda: rand)
    assert 0.0 <= delay <= min(maximum, initial * 2.0 ** min(attempt, 64))
