"""The session's disconnect record: counts by reason, the scrubbed cause, one grace timer."""

from __future__ import annotations

import asyncio
import logging

import pytest

from agent.config import CheckConfig
from agent.result import Reason
from agent.watch.outage import Outage


def _check() -> CheckConfig:
    return CheckConfig.model_validate(
        {
            "name": "feed",
            "kind": "watch",
            "url": "ws://127.0.0.1:9/",
            "auth": {"bearer": "s3cr3t-token"},
        }
    )


async def test_counts_by_reason_keeps_the_latest_and_scrubs_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each disconnect is counted by reason; the cause kept and logged has no secret."""
    grace_ended = asyncio.Event()
    outage = Outage(_check(), on_grace=grace_ended.set)
    caplog.set_level(logging.INFO, logger="agent.watch.outage")
    outage.went_down(Reason.CLOSED, "closed", grace_left=60.0, was_connected=True)
    outage.went_down(
        Reason.HANDSHAKE_STATUS,
        "rejected Bearer s3cr3t-token",
        grace_left=60.0,
        was_connected=False,
    )
    outage.went_down(Reason.CLOSED, "closed again", grace_left=60.0, was_connected=True)
    assert outage.reconnects == {"closed": 2, "handshake_status": 1}
    assert (outage.reason, outage.message) == (Reason.CLOSED, "closed again")
    assert "s3cr3t-token" not in caplog.text
    assert "watch feed: connection attempt failed (handshake_status)" in caplog.text
    outage.cancel_grace()
    assert not grace_ended.is_set()


async def test_grace_runs_once_from_the_first_disconnect() -> None:
    """The grace clock armed by the first disconnect is not re-armed by later ones."""
    ended: list[float] = []
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_grace() -> None:
        ended.append(loop.time())
        done.set()

    outage = Outage(_check(), on_grace=on_grace)
    outage.went_down(Reason.CLOSED, "closed", grace_left=0.01, was_connected=True)
    outage.went_down(Reason.CLOSED, "closed", grace_left=30.0, was_connected=False)
    async with asyncio.timeout(5):
        await done.wait()
    assert len(ended) == 1
    outage.went_down(Reason.CLOSED, "closed", grace_left=0.0, was_connected=True)
    done.clear()
    async with asyncio.timeout(5):
        await done.wait()  # ended, so the next disconnect starts a new clock
    assert len(ended) == 2


def test_outage_is_slotted() -> None:
    """Held by every session: no instance dict."""
    assert not hasattr(Outage(_check(), on_grace=lambda: None), "__dict__")
