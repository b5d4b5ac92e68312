"""WatchSession against real feed servers that drop, stall, refuse, ping and close."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from agent.result import Reason
from agent.watch import WatchSession
from agent.watch.messages import FeedState
from tests.watch.conftest import FeedServer, make_session


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


@pytest.mark.parametrize(
    ("code", "reason"),
    [(1000, Reason.CLOSED), (1011, Reason.CLOSED), (4000, Reason.CLOSED)],
    ids=["normal", "server-error", "app-code"],
)
async def test_server_close_reconnects_and_resubscribes(
    feed, results, check_for, code: int, reason: Reason
) -> None:
    """A server close is counted by reason and the session resubscribes on reconnect."""
    session = make_session(check_for(feed.url), results)
    session.start()
    try:
        await feed.changes.until(lambda: feed.subscribes() == 1)
        await feed.drop_all(code)
        await feed.changes.until(lambda: feed.subscribes() == 2)
        assert session.stats().reconnects == {reason.value: 1}
        assert session._down.message.endswith(f"code {code} ('restart')")
    finally:
        await session.stop()


async def test_stale_feed_detected_then_recovers(feed, results, check_for) -> None:
    """Connected but silent: reported as expect_timeout within stale_after, then live again."""
    check = check_for(feed.url, interval=5.0, timeout=1.0, watch={"stale_after": 0.15})
    session = make_session(check, results)
    session.start()
    try:
        await feed.changes.until(lambda: feed.subscribes() == 1)
        await feed.changes.until(lambda: feed.ticks_sent >= 3)
        feed.paused = True
        paused_at = time.perf_counter()
        stale = await results.until(lambda r: not r.success)
        noticed = results.times[results.items.index(stale)] - paused_at
        assert stale.reason is Reason.EXPECT_TIMEOUT
        assert stale.message.startswith("no matching message for 0.")
        # Bound: stale_after after the last tick (before the pause), far below the interval.
        assert noticed < 0.15 + 1.0
        assert session.stats().stale
        assert session.stats().connected
        feed.paused = False
        recovered = await results.until(lambda r: r.success)
        assert recovered.reason is None
        assert not session.stats().stale
    finally:
        await session.stop()


async def test_matching_rule_ignores_other_messages(feed, results, check_for) -> None:
    """Only messages matching watch.match keep the session fresh."""
    check = check_for(
        feed.url,
        interval=5.0,
        timeout=1.0,
        watch={"stale_after": 0.15, "match": {"json": {"type": "trade"}}},
    )
    session = make_session(check, results)
    session.start()
    try:
        stale = await results.until(lambda r: not r.success)
        assert stale.reason is Reason.EXPECT_TIMEOUT
        stats = session.stats()
        assert stats.messages_total >= 1  # ticks arrive, but none is a trade
        assert stats.matched_total == 0
    finally:
        await session.stop()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            {"match": {"json": {"type": "ping"}}, "reply": {"type": "pong", "id": "{{id}}"}},
            {"type": "pong", "id": "1"},
        ),
        (
            {"match": {"json": {"type": "ping"}}, "reply": {"type": "pong"}, "echo": ["id"]},
            {"type": "pong", "id": 1},
        ),
    ],
    ids=["template", "echo-keeps-type"],
)
async def test_app_pings_answered_and_not_counted_fresh(
    feed, results, check_for, answer, expected
) -> None:
    """Server app pings get the configured reply; they do not count as data."""
    feed.tick_interval = None
    feed.app_ping_interval = 0.02
    check = check_for(feed.url, watch={"answer": answer})
    session = make_session(check, results)
    session.start()
    try:
        await feed.changes.until(lambda: expected in feed.received)
        assert session.stats().answered_total >= 1
        assert session.stats().matched_total == 0
    finally:
        await session.stop()


async def test_fragmented_messages_matched_and_answered_whole(feed, results, check_for) -> None:
    """Ticks and app pings sent in several frames are judged and answered as whole messages."""
    feed.fragments = 3
    feed.app_ping_interval = 0.02
    check = check_for(
        feed.url,
        watch={
            "match": {"json": {"type": "tick"}},
            "answer": {
                "match": {"json": {"type": "ping"}},
                "reply": {"type": "pong"},
                "echo": ["id"],
            },
        },
    )
    session = make_session(check, results)
    session.start()
    try:
        await feed.changes.until(lambda: {"type": "pong", "id": 2} in feed.received)
        await feed.changes.until(lambda: session.stats().matched_total >= 3)
        stats = session.stats()
        assert stats.answered_total >= 2
        assert stats.reconnects == {}
    finally:
        await session.stop()


async def test_fragmented_message_over_max_size_is_message_too_big(
    feed, results, check_for
) -> None:
    """max_size holds for a message sent in fragments: message_too_big, then reconnects."""
    feed.fragments = 4
    feed.tick_interval = 0.01
    check = check_for(feed.url, max_size=20, watch={"grace": 0.0})  # a tick is ~22 bytes
    session = make_session(check, results)
    session.start()
    try:
        failed = await results.until(lambda r: r.reason is Reason.MESSAGE_TOO_BIG)
        assert not failed.success
        await feed.changes.until(lambda: feed.subscribes() >= 2)
        assert 1009 in feed.close_codes
    finally:
        await session.stop()


async def test_stop_is_bounded_by_close_timeout(results, check_for) -> None:
    """A peer that never answers the close frame: stop() returns after close_timeout."""
    from tests.servers import RawServer, silent_after_101

    async with RawServer(silent_after_101) as server:
        check = check_for(server.url(), steps=[], close_timeout=0.2)
        session = make_session(check, results)
        session.start()
        await results.until(lambda r: session.stats().connected)
        t0 = time.perf_counter()
        await session.stop()
        # Not before close_timeout (uvloop's clock may fire a timer ~1 ms early).
        assert 0.19 <= time.perf_counter() - t0 < 1.5
        assert not session.stats().connected
        async with asyncio.timeout(2.0):
            await server.idle.wait()  # the transport was aborted: the peer saw it end


async def test_error_while_handling_a_message_is_internal_and_reconnects(
    feed, results, check_for, monkeypatch
) -> None:
    """A bug met while judging a message ends that connection as internal; it reconnects."""
    session = make_session(check_for(feed.url, watch={"grace": 0.0}), results)

    def broken(self: FeedState, data: object) -> None:
        raise RuntimeError("a bug")

    session.start()
    try:
        await feed.changes.until(lambda: feed.subscribes() == 1)
        monkeypatch.setattr(FeedState, "on_message", broken)
        failed = await results.until(lambda r: r.reason is Reason.INTERNAL)
        assert not failed.success
        await feed.changes.until(lambda: feed.subscribes() >= 2)
        assert session.stats().reconnects.get("internal", 0) >= 1
    finally:
        await session.stop()


@pytest.mark.parametrize("path", ["tls", "proxy", "tls-via-proxy"])
async def test_held_over_tls_and_proxy(results, check_for, tls_files, path: str) -> None:
    """Over TLS, a proxy tunnel or both: messages read, app pings answered, drops reconnect."""
    from tests.servers import RawServer, connect_proxy

    tls = "tls" in path
    feed = FeedServer(ssl_context=tls_files.server_context() if tls else None)
    feed.app_ping_interval = 0.02
    await feed.start()
    targets: list[str] = []
    try:
        async with RawServer(connect_proxy(targets)) as proxy:
            extra: dict[str, object] = {}
            if tls:
                extra["tls"] = {"ca_file": tls_files.ca_file}
            if "proxy" in path:
                extra["proxy"] = f"http://127.0.0.1:{proxy.port}"
            answer = {"match": {"json": {"type": "ping"}}, "reply": {"type": "pong"}}
            # A TLS handshake through a tunnel on a loaded machine: not 0.25 s.
            check = check_for(
                feed.url, interval=3.0, timeout=2.0, watch={"answer": answer}, **extra
            )
            session = make_session(check, results)
            session.start()
            try:
                await feed.changes.until(lambda: {"type": "pong"} in feed.received)
                await feed.drop_all(1012)
                await feed.changes.until(lambda: feed.subscribes() == 2)
                count = feed.received.count({"type": "pong"})
                await feed.changes.until(lambda: feed.received.count({"type": "pong"}) > count)
                assert session.stats().reconnects == {"closed": 1}
                assert session.stats().messages_total >= 2
            finally:
                await session.stop()
        assert len(targets) == (2 if "proxy" in path else 0)
    finally:
        await feed.stop()


async def test_refused_reconnects_then_recovery(feed, results, check_for) -> None:
    """HTTP 503 on reconnect fails past grace as handshake_status, then resubscribes."""
    check = check_for(feed.url, watch={"grace": 0.05})
    session = make_session(check, results)
    session.start()
    try:
        await feed.changes.until(lambda: feed.subscribes() == 1)
        feed.refuse_status = 503
        await feed.drop_all(1012)
        # The first failure may still be the drop itself ("closed") if grace ends
        # before the first refused attempt; the refusals follow.
        failed = await results.until(lambda r: r.reason is Reason.HANDSHAKE_STATUS)
        assert "503" in failed.message
        await feed.changes.until(lambda: feed.refused >= 3)
        feed.refuse_status = None
        ok = await results.until(lambda r: r.success)
        assert ok.reason is None
        assert feed.subscribes() == 2
        reconnects = session.stats().reconnects
        assert reconnects["closed"] == 1
        assert reconnects["handshake_status"] >= 3
    finally:
        await session.stop()


async def test_short_drop_within_grace_is_not_a_failure(feed, results, check_for) -> None:
    """A disconnect healed within grace never produces a failed result."""
    check = check_for(feed.url, watch={"grace": 2.0})
    session = make_session(check, results)
    session.start()
    try:
        await feed.changes.until(lambda: feed.subscribes() == 1)
        await feed.drop_all(1012)
        await feed.changes.until(lambda: feed.subscribes() == 2)
        await results.until(lambda r: session.stats().connected)
        assert all(r.success for r in results.items)
        assert session.stats().reconnects == {"closed": 1}
    finally:
        await session.stop()


async def test_gives_up_after_max_retries(results, check_for) -> None:
    """With max_retries spent the session stops and reports the last reason."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens: refused
        check = check_for(f"ws://127.0.0.1:{port}/", watch={"max_retries": 2, "grace": 0.0})
        session = make_session(check, results)
        session.start()
        try:
            failed = await results.until(lambda r: r.message.startswith("gave up"))
            assert failed.reason is Reason.CONNECT_REFUSED
            assert failed.message.startswith("gave up reconnecting after 2 attempts")
            assert session.stats().reconnects == {"connect_refused": 3}
            assert session._task is not None
            await asyncio.wait_for(session._task, 1.0)
        finally:
            await session.stop()


async def test_stop_sends_going_away(feed, results, check_for) -> None:
    """stop() closes with 1001 and the session reports nothing afterwards."""
    session = make_session(check_for(feed.url), results)
    session.start()
    await results.until(lambda r: session.stats().connected)
    await session.stop()
    await feed.changes.until(lambda: feed.close_codes == [1001])
    count = len(results.items)
    assert not session.stats().connected
    await session.stop()  # idempotent
    assert len(results.items) == count


async def test_protocol_pings_measure_rtt(feed, results, check_for) -> None:
    """Protocol pings on ping_interval report RTTs in results and stats."""
    check = check_for(feed.url, watch={"ping_interval": 0.02})
    session = make_session(check, results)
    session.start()
    try:
        with_pings = await results.until(lambda r: bool(r.pings))
        assert all(0 < rtt < 0.2 for rtt in with_pings.pings)
        assert session.stats().last_rtt is not None
    finally:
        await session.stop()


async def test_low_message_rate_fails(feed, results, check_for) -> None:
    """Fewer matching messages per second than min_rate over the window fails."""
    feed.tick_interval = 0.05  # ~20/s
    check = check_for(
        feed.url, interval=0.1, timeout=0.08, watch={"min_rate": 200, "rate_window": 0.2}
    )
    session = make_session(check, results)
    session.start()
    try:
        slow = await results.until(lambda r: not r.success)
        assert slow.reason is Reason.EXPECT_TIMEOUT
        assert "below min_rate 200/s" in slow.message
    finally:
        await session.stop()


async def test_no_task_leak_after_many_reconnects(feed, results, check_for) -> None:
    """Fifty connect/close cycles leave no task behind once stopped."""
    before = asyncio.all_tasks()
    feed.close_on_subscribe = 1011
    check = check_for(
        feed.url,
        watch={"initial_delay": 0.001, "max_delay": 0.002, "ping_interval": 0.001},
    )
    session = make_session(check, results)
    session.start()
    await feed.changes.until(lambda: feed.connections >= 50, timeout=10)
    await session.stop()
    await feed.changes.until(lambda: not feed.open)
    await feed.stop()
    assert sum(session.stats().reconnects.values()) >= 49
    leftover = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert leftover == set()


async def test_unanswered_protocol_ping_drops_and_reconnects(results, check_for) -> None:
    """A peer that never answers pings is dropped as ping_timeout and reconnected."""
    from tests.servers import RawServer, never_pong

    async with RawServer(never_pong) as server:
        check = check_for(server.url(), steps=[], ping_timeout=0.05, watch={"ping_interval": 0.02})
        session = make_session(check, results)
        session.start()
        try:
            async with asyncio.timeout(3):
                while server.connections < 2:
                    server.connected.clear()
                    await server.connected.wait()
            assert session.stats().reconnects.get("ping_timeout", 0) >= 1
            assert "no pong" in session._down.message
        finally:
            await session.stop()


async def test_oversized_message_is_message_too_big(feed, results, check_for) -> None:
    """A message over max_size drops the session with reason message_too_big."""
    feed.big_message = 4096
    check = check_for(feed.url, max_size=1024, watch={"grace": 0.0})
    session = make_session(check, results)
    session.start()
    try:
        failed = await results.until(lambda r: not r.success)
        assert failed.reason is Reason.MESSAGE_TOO_BIG
        assert session.stats().reconnects.get("message_too_big", 0) >= 1
    finally:
        await session.stop()


async def test_sequence_gaps_counted_and_degraded(feed, results, check_for) -> None:
    """A counter that jumps is reported as gaps (degraded), not as a failure."""
    feed.tick_step = 2
    check = check_for(feed.url, interval=0.1, timeout=0.08, watch={"sequence": "$.n"})
    session = make_session(check, results)
    session.start()
    try:
        report = await results.until(lambda r: "gap" in r.degraded)
        assert report.success
        assert "sequence gap(s)" in report.message
        stats = session.stats()
        assert stats.gaps_total >= 1
        assert stats.missed_total == stats.gaps_total
    finally:
        await session.stop()


async def test_never_connecting_fails_after_grace(results, check_for) -> None:
    """A target that refuses from the start fails once grace has passed since watching began."""
    from tests.servers import free_port

    check = check_for(f"ws://127.0.0.1:{free_port()}/", interval=5.0, timeout=1.0)
    session = make_session(check, results)
    start = time.perf_counter()
    session.start()
    try:
        failed = await results.until(lambda r: not r.success)
        assert failed.reason is Reason.CONNECT_REFUSED
        assert failed.message.startswith("disconnected for 0.")
        assert "connection refused" in failed.message
        # Reported when grace expires, long before the 5 s interval.
        assert 0.3 <= time.perf_counter() - start < 0.3 + 1.0
    finally:
        await session.stop()


async def test_backoff_resets_after_a_healthy_connection(feed, results, check_for) -> None:
    """Quick drops keep backing off; a connection up for reset_after starts over."""
    check = check_for(feed.url, watch={"reset_after": 0.1, "max_delay": 0.02})
    session = make_session(check, results)
    session.start()
    try:
        feed.close_on_subscribe = 1011
        await feed.changes.until(lambda: feed.connections >= 4)
        assert session._backoff.attempts >= 2
        feed.close_on_subscribe = None
        await feed.changes.until(lambda: feed.ticks_sent >= 10)  # up > 0.1 s
        subscribed = feed.subscribes()
        await feed.drop_all(1012)
        await feed.changes.until(lambda: feed.subscribes() > subscribed)
        assert session._backoff.attempts == 1
    finally:
        await session.stop()


async def test_mass_drop_reconnects_spread_by_jitter(feed, results, check_for) -> None:
    """Twenty sessions dropped at once come back spread over initial_delay, not together."""
    check = check_for(
        feed.url, timeout=2.0, interval=3.0, watch={"initial_delay": 0.3, "max_delay": 1.0}
    )
    sessions = [WatchSession(check, on_result=results) for _ in range(20)]
    for session in sessions:
        session.start()
    try:
        await feed.changes.until(lambda: feed.subscribes() == 20)
        dropped = time.perf_counter()
        await feed.drop_all(1012)
        await feed.changes.until(lambda: feed.subscribes() == 40)
        back = sorted(t - dropped for t in feed.connected_at[20:])
        # Uniform over [0, 0.3): twenty draws all within 0.1 s has odds of about 1e-8;
        # without jitter they would all return together after the same delay.
        assert back[-1] - back[0] > 0.1
    finally:
        await asyncio.gather(*(s.stop() for s in sessions))


async def test_stall_across_reconnect_reported_at_connect(feed, results, check_for) -> None:
    """Silent past stale_after while refused, then accepted without data: stale at once."""
    feed.refuse_status = 503
    feed.tick_interval = None
    check = check_for(feed.url, interval=5.0, timeout=1.0, watch={"stale_after": 0.2, "grace": 5.0})
    session = make_session(check, results)
    session.start()
    try:
        await feed.changes.until(lambda: feed.refused >= 1)
        await asyncio.sleep(0.25)  # the behaviour under test: stale_after passes, refused
        assert session.stats().stale
        assert results.items == []  # down within grace: nothing to report yet
        feed.refuse_status = None
        accepted = time.perf_counter()
        stale = await results.until(lambda r: not r.success)
        assert stale.reason is Reason.EXPECT_TIMEOUT
        assert session.stats().connected
        assert results.times[-1] - accepted < 1.0  # at connect, not at the 5 s interval
    finally:
        await session.stop()


async def test_deadline_during_init_names_the_waiting_step(results, check_for) -> None:
    """A server that upgrades but never confirms the subscription: expect_timeout, per attempt."""
    from tests.servers import RawServer, silent_after_101

    async with RawServer(silent_after_101) as server:
        session = make_session(check_for(server.url(), watch={"grace": 0.0}), results)
        session.start()
        try:
            failed = await results.until(lambda r: not r.success)
            assert failed.reason is Reason.EXPECT_TIMEOUT, failed.message
            assert "no matching message at step 2" in failed.message
            assert set(session.stats().reconnects) == {"expect_timeout"}
        finally:
            await session.stop()
