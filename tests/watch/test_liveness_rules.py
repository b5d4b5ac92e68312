"""Liveness rules at their exact boundaries, with the exact verdict messages."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from agent.result import Reason
from agent.watch.liveness import RateWindow, Verdict, WatchStats, judge

BASE: dict[str, Any] = {
    "now": 100.0,
    "connected": True,
    "state_since": 50.0,
    "watching_since": 0.0,
    "grace": 5.0,
}

DOWN = {"connected": False, "down_reason": Reason.CLOSED}

CASES: list[tuple[str, dict[str, Any], Verdict]] = [
    ("healthy", {}, Verdict(True, None, "")),
    (
        "grace-just-short",
        {**DOWN, "state_since": 95.5},
        Verdict(True, None, "reconnecting for 4.5 s"),
    ),
    (
        "grace-reached-is-down",
        {**DOWN, "state_since": 95.0},
        Verdict(False, Reason.CLOSED, "disconnected for 5.0 s"),
    ),
    (
        "grace-with-detail",
        {**DOWN, "state_since": 97.0, "down_message": "peer closed"},
        Verdict(True, None, "reconnecting for 3.0 s: peer closed"),
    ),
    (
        "seconds-at-ten-are-whole",
        {**DOWN, "state_since": 90.0},
        Verdict(False, Reason.CLOSED, "disconnected for 10 s"),
    ),
    (
        "seconds-below-ten-keep-a-decimal",
        {**DOWN, "state_since": 90.5},
        Verdict(False, Reason.CLOSED, "disconnected for 9.5 s"),
    ),
    (
        "gave-up-default-reason-and-attempts",
        {"connected": False, "gave_up": True},
        Verdict(False, Reason.CLOSED, "gave up reconnecting after 0 attempts"),
    ),
    (
        "gave-up-with-detail",
        {
            "gave_up": True,
            "attempts": 4,
            "down_reason": Reason.CONNECT_REFUSED,
            "down_message": "x",
        },
        Verdict(False, Reason.CONNECT_REFUSED, "gave up reconnecting after 4 attempts: x"),
    ),
    (
        "stale-exactly-at-limit",
        {"stale_after": 30.0, "last_match": 70.0},
        Verdict(False, Reason.EXPECT_TIMEOUT, "no matching message for 30 s"),
    ),
    ("stale-just-inside-limit", {"stale_after": 30.0, "last_match": 70.5}, Verdict(True)),
    (
        "rate-judged-at-a-full-window",
        {"rate": 0.5, "min_rate": 1.0, "rate_window": 60.0, "watching_since": 40.0},
        Verdict(False, Reason.EXPECT_TIMEOUT, "message rate 0.5/s is below min_rate 1/s over 60 s"),
    ),
    (
        "rate-not-judged-before-a-full-window",
        {"rate": 0.5, "min_rate": 1.0, "rate_window": 60.0, "watching_since": 50.0},
        Verdict(True),
    ),
    (
        "rate-judged-at-once-without-window",
        {"rate": 0.5, "min_rate": 1.0, "watching_since": 100.0},
        Verdict(False, Reason.EXPECT_TIMEOUT, "message rate 0.5/s is below min_rate 1/s over 0 s"),
    ),
    (
        "rate-equal-to-min-is-live",
        {"rate": 1.0, "min_rate": 1.0, "rate_window": 60.0},
        Verdict(True),
    ),
    ("rate-without-min-is-live", {"rate": 0.0, "rate_window": 60.0}, Verdict(True)),
    ("min-without-rate-is-live", {"min_rate": 1.0, "rate_window": 60.0}, Verdict(True)),
]


@pytest.mark.parametrize(
    ("overrides", "verdict"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_verdict_is_exact(overrides: dict[str, Any], verdict: Verdict) -> None:
    """Liveness, reason and the whole message, at each rule's boundary."""
    assert judge(**{**BASE, **overrides}) == verdict


def _required_only(*, connected: bool) -> WatchStats:
    """A snapshot given only the fields a session must report."""
    return WatchStats(
        connected=connected,
        reconnects={},
        last_message_ts=None,
        messages_total=0,
        session_started=None,
        last_rtt=None,
        stale=False,
    )


def test_snapshot_and_verdict_are_immutable() -> None:
    """Snapshots handed to metrics and verdicts cannot be changed by their readers."""
    stats = _required_only(connected=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.connected = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Verdict(True).live = False  # type: ignore[misc]


def test_snapshot_counters_start_at_zero() -> None:
    """A session that reports only its required fields has counted nothing and not given up."""
    stats = _required_only(connected=False)
    counters = (stats.matched_total, stats.answered_total, stats.gaps_total, stats.missed_total)
    assert counters == (0, 0, 0, 0)
    assert stats.gave_up is False


def test_rate_window_keeps_its_length() -> None:
    """The window length given is the one reported."""
    assert RateWindow(7.5).window == 7.5


def test_first_event_counts_over_the_covered_span() -> None:
    """One event at the start: the rate divides by the nine full buckets plus the elapsed part."""
    window = RateWindow(10.0)
    window.add(0.5)
    assert window.rate(0.5) == pytest.approx(1 / 9.5)


def test_event_on_a_bucket_edge_counts_over_one_window() -> None:
    """One event at the end of the first window: one event per window length."""
    window = RateWindow(1.0)
    window.add(1.0)
    assert window.rate(1.0) == pytest.approx(1.0)


def test_small_window_rate_is_not_zero() -> None:
    """A window shorter than a second still reports its rate."""
    window = RateWindow(0.5)
    for t in (0.01, 0.11, 0.21, 0.31, 0.41):
        window.add(t)
    assert window.rate(0.47) == pytest.approx(5 / 0.47)


def test_sliding_by_one_bucket_drops_only_the_oldest() -> None:
    """Moving one bucket on forgets the oldest bucket's events and keeps the other nine."""
    window = RateWindow(10.0)
    for t in range(10):
        window.add(t + 0.5)
    assert window.rate(10.5) == pytest.approx(9 / 9.5)


def test_earlier_reading_does_not_rewind_the_window() -> None:
    """A rate read with an older clock value loses none of the newer events."""
    steady, read_early = RateWindow(10.0), RateWindow(10.0)
    for t in range(10):
        steady.add(t + 0.5)
        read_early.add(t + 0.5)
    read_early.rate(5.0)
    steady.add(9.7)
    read_early.add(9.7)
    assert read_early.rate(9.9) == steady.rate(9.9) == pytest.approx(11 / 9.9)


def test_silence_of_a_whole_window_forgets_everything() -> None:
    """A window's length after the newest bucket, even the oldest bucket's events are gone."""
    window = RateWindow(10.0)
    window.add(0.5)
    window.add(9.5)
    assert window.rate(19.5) == 0.0


@pytest.mark.parametrize("now", [91.0, 50.0], ids=["span-zero", "span-negative"])
def test_reading_far_before_the_newest_event_is_zero(now: float) -> None:
    """A clock value more than a window before the newest event gives 0, never an error."""
    window = RateWindow(10.0)
    window.add(100.5)
    assert window.rate(now) == 0.0
