"""The one-shot watch probe (wsprobe probe --check, /probe): connect, init, first data."""

from __future__ import annotations

import time

import pytest

from agent.probes import PROBES
from agent.result import Reason


async def test_registered_and_succeeds_with_first_message(feed, check_for) -> None:
    """PROBES["watch"] connects, subscribes and times the first matching message."""
    check = check_for(
        feed.url, timeout=1.0, interval=2.0, watch={"match": {"json": {"type": "tick"}}}
    )
    result = await PROBES["watch"](check)
    assert result.success, result.message
    assert result.kind == "watch"
    assert {"connect", "handshake", "steps", "first_message", "total", "close"} <= set(
        result.phases
    )
    assert feed.subscribes() == 1
    await feed.changes.until(lambda: feed.close_codes == [1000])


async def test_without_data_rules_only_connects(feed, check_for) -> None:
    """With neither match nor stale_after, no data is awaited."""
    feed.tick_interval = None
    result = await PROBES["watch"](check_for(feed.url, timeout=1.0, interval=2.0))
    assert result.success, result.message
    assert "first_message" not in result.phases


@pytest.mark.parametrize(
    ("setup", "watch", "reason", "text"),
    [
        ({"tick_interval": None}, {"stale_after": 5.0}, Reason.EXPECT_TIMEOUT, "no matching"),
        ({"refuse_status": 503}, {}, Reason.HANDSHAKE_STATUS, "HTTP 503"),
        ({"close_on_subscribe": 4401}, {"stale_after": 5.0}, Reason.CLOSED, "code 4401"),
    ],
    ids=["no-data", "refused", "closed-after-subscribe"],
)
async def test_failures_have_one_reason(feed, check_for, setup, watch, reason, text) -> None:
    """A silent feed, a refusal or a close after subscribing each fail with one reason."""
    for key, value in setup.items():
        setattr(feed, key, value)
    check = check_for(feed.url, timeout=0.3, interval=1.0, watch=watch)
    start = time.perf_counter()
    result = await PROBES["watch"](check)
    assert time.perf_counter() - start < 0.3 + 0.5
    assert not result.success
    assert result.reason is reason, result.message
    assert text in result.message


async def test_auth_step_failure_is_auth_rejected(feed, check_for) -> None:
    """A first-message auth that gets no success reply fails as auth_rejected."""
    check = check_for(
        feed.url,
        timeout=0.3,
        interval=1.0,
        auth={"steps": [{"send": {"op": "auth"}}, {"expect": {"json": {"type": "auth_ok"}}}]},
    )
    result = await PROBES["watch"](check)
    assert result.reason is Reason.AUTH_REJECTED, result.message
