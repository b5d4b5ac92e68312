"""The liveness rules, judged with explicit clocks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agent.config.watch import WatchConfig
from agent.result import Reason
from agent.watch.liveness import RateWindow, judge

BASE: dict[str, Any] = {
    "now": 100.0,
    "connected": True,
    "state_since": 50.0,
    "watching_since": 0.0,
    "grace": 5.0,
}

CASES: list[tuple[str, dict[str, Any], bool, Reason | None, str]] = [
    ("healthy", {}, True, None, ""),
    (
        "first-connect-in-progress",
        {"connected": False, "state_since": 0.0},
        True,
        None,
        "connecting",
    ),
    (
        "down-within-grace",
        {"connected": False, "state_since": 97.0, "down_reason": Reason.CLOSED},
        True,
        None,
        "reconnecting for 3.0 s",
    ),
    (
        "down-past-grace",
        {
            "connected": False,
            "state_since": 80.0,
            "down_reason": Reason.HANDSHAKE_STATUS,
            "down_message": "expected HTTP 101, server answered HTTP 503",
        },
        False,
        Reason.HANDSHAKE_STATUS,
        "disconnected for 20 s: expected HTTP 101, server answered HTTP 503",
    ),
    (
        "gave-up",
        {"connected": False, "gave_up": True, "attempts": 3, "down_reason": Reason.CONNECT_REFUSED},
        False,
        Reason.CONNECT_REFUSED,
        "gave up reconnecting after 3 attempts",
    ),
    (
        "stale",
        {"stale_after": 30.0, "last_match": 58.0},
        False,
        Reason.EXPECT_TIMEOUT,
        "no matching message for 42 s",
    ),
    ("fresh", {"stale_after": 30.0, "last_match": 90.0}, True, None, ""),
    (
        "stale-since-watching-never-matched",
        {"stale_after": 30.0},
        False,
        Reason.EXPECT_TIMEOUT,
        "no matching message for 100 s",
    ),
    (
        "rate-too-low",
        {"rate": 0.1, "min_rate": 1.0, "rate_window": 60.0},
        False,
        Reason.EXPECT_TIMEOUT,
        "message rate 0.1/s is below min_rate 1/s over 60 s",
    ),
    (
        "rate-not-judged-before-a-full-window",
        {"rate": 0.1, "min_rate": 1.0, "rate_window": 200.0},
        True,
        None,
        "",
    ),
    ("rate-ok", {"rate": 2.0, "min_rate": 1.0, "rate_window": 60.0}, True, None, ""),
]


@pytest.mark.parametrize(
    ("overrides", "live", "reason", "message"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_judge(overrides: dict[str, Any], live: bool, reason: Reason | None, message: str) -> None:
    """Each rule decides liveness, reason and a specific message."""
    verdict = judge(**{**BASE, **overrides})
    assert verdict.live is live
    assert verdict.reason == reason
    assert verdict.message.startswith(message)


def test_rate_window_slides() -> None:
    """Events older than the window stop counting; the rate is over the covered span."""
    window = RateWindow(10.0)
    for t in range(10):
        window.add(float(t))  # one per second for 10 s
    assert window.rate(9.999) == pytest.approx(1.0, rel=0.01)
    assert window.rate(15.0) == pytest.approx(4 / 9)  # events at 6..9 over [6, 15)
    assert window.rate(100.0) == 0.0


def test_rate_window_long_gap_clears_everything() -> None:
    """A gap longer than a lap of the ring empties every bucket exactly once."""
    window = RateWindow(1.0)
    window.add(0.05)
    window.add(5.05)
    assert window.rate(5.05) == pytest.approx(1 / 0.955, rel=0.01)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"initial_delay": 10, "max_delay": 1}, "initial_delay"),
        (
            {"answer": {"match": {"json": {"type": "ping"}}, "reply": "pong", "echo": ["id"]}},
            "echo",
        ),
        ({"min_rate": 0}, "greater than 0"),
    ],
    ids=["delays-reversed", "echo-needs-object", "zero-rate"],
)
def test_config_rejects(data: dict[str, Any], match: str) -> None:
    """Contradictory watch settings are config errors."""
    with pytest.raises(ValidationError, match=match):
        WatchConfig.model_validate(data)


def test_reset_after_defaults_to_max_delay() -> None:
    """Without reset_after, a connection up for max_delay resets the backoff."""
    assert WatchConfig(max_delay=12.0).effective_reset_after == 12.0
    assert WatchConfig(reset_after=3.0).effective_reset_after == 3.0
