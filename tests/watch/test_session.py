"""WatchSession against real feed servers that drop, stall, refuse, ping and close."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from agent.result import Reason
from agent.watch import WatchSession


def make_session(check, results) -> WatchSession:
    return WatchSession(check, on_result=results, random=lambda: 0.5)


async def test_connects_subscribes_and_reads(feed, results, check_for) -> None:
    """A healthy feed: subscribed once, messages counted, periodic results succeed."""
    session = make_session(check_for(feed.url), results)
    session.start()
    try:
        await feed.changes.until(lambda: feed.subscribes() == 1)
        ok = await results.until(lambda r: True)
        assert ok.success, ok.message
        assert ok.kind == "watch"
        stats = session.stats()
        assert stats.connected
        assert stats.messages_total >= 2
        assert stats.last_message_ts is not None
        assert stats.session_started is not None
        assert stats.reconnects == {}
        assert set(ok.phases) >= {"resolve", "connect", "handshake", "steps", "total"}
    finally:
        await session.stop()
