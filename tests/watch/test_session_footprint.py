"""What a held session keeps between events: nothing it no longer needs."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from agent.probes.connections.delivering import DeliveringConnection
from agent.watch.report import ConnectFacts
from tests.watch.conftest import make_session


def _session_tasks(name: str) -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == f"watch:{name}" and not t.done()]


async def test_connected_plain_session_runs_no_task(feed, results, check_for) -> None:
    """Once connected, a plain session holds no task: its connection delivers by callback."""
    check = check_for(feed.url, interval=0.05, timeout=0.04)
    session = make_session(check, results)
    session.start()
    try:
        await results.until(lambda r: r.success and session.stats().messages_total >= 3)
        assert isinstance(session._conn, DeliveringConnection)
        assert session._task is None
        assert _session_tasks(check.name) == []
        with pytest.raises(RuntimeError, match="already started"):
            session.start()
        # A drop starts a task for the next connect only; connected again, it is gone.
        await feed.drop_all(1012)
        await feed.changes.until(lambda: feed.subscribes() == 2)
        count = session.stats().messages_total
        await results.until(lambda r: session.stats().messages_total >= count + 3)
        assert session._task is None
        assert _session_tasks(check.name) == []
    finally:
        await session.stop()


async def test_connect_phases_reported_once_then_released(feed, results, check_for) -> None:
    """The first report carries the connect phases; later ones keep status, not phases."""
    check = check_for(feed.url, interval=0.05, timeout=0.04)
    session = make_session(check, results)
    session.start()
    try:
        first = await results.until(lambda r: bool(r.phases))
        later = await results.until(lambda r: r is not first and r.success)
        assert "handshake" in first.phases
        assert later.phases == {}
        assert later.status_code == first.status_code == 101
        held = session._connect_result
        assert isinstance(held, ConnectFacts)
        assert held.status_code == 101
        assert sys.getsizeof(held) < sys.getsizeof(first)
    finally:
        await session.stop()


async def test_pinger_keeps_no_finished_ping_task(feed, results, check_for) -> None:
    """Between pings no finished task is held (only one in flight, if any)."""
    check = check_for(feed.url, interval=0.05, timeout=0.04, watch={"ping_interval": 0.05})
    session = make_session(check, results)
    session.start()
    try:
        for _ in range(5):
            await results.until(lambda r: bool(r.pings))
            results.items.clear()
            task = session._pinger._task
            assert task is None or not task.done()
    finally:
        await session.stop()
