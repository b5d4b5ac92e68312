"""What a held session keeps between events: nothing it no longer needs."""

from __future__ import annotations

import sys

from agent.watch.report import ConnectFacts
from tests.watch.conftest import make_session


async def test_connected_session_drops_upgrade_headers(feed, results, check_for) -> None:
    """Once connected, the upgrade's request and response headers are released."""
    session = make_session(check_for(feed.url), results)
    session.start()
    try:
        await feed.changes.until(lambda: feed.subscribes() == 1)
        await results.until(lambda r: r.success)
        conn = session._conn
        assert conn is not None
        assert conn.request is None
        assert conn.response is not None
        assert len(conn.response.headers) == 0
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
