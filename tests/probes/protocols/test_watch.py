"""Watch sessions over Socket.IO, GraphQL, STOMP and MQTT against real servers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from agent.config import CheckConfig
from agent.probes import watch as watch_kind
from agent.result import ProbeResult, Reason
from agent.watch import WatchSession
from tests.probes.protocols.conftest import Broker, run

# The first RabbitMQ test also waits for the broker to boot (~10 s idle, longer under load).
pytestmark = pytest.mark.timeout(150)


def watch_check(url: str, protocol: dict[str, Any], **fields: Any) -> CheckConfig:
    """A watch check speaking ``protocol`` with short test timings."""
    watch = {
        "initial_delay": 0.01,
        "max_delay": 0.05,
        "grace": 0.2,
        "ping_interval": None,
        **fields.pop("watch", {}),
    }
    data = {
        "name": "proto-watch",
        "kind": "watch",
        "url": url,
        "interval": 5,
        "timeout": 4,
        "protocol": protocol,
        "watch": watch,
        **fields,
    }
    return CheckConfig.model_validate(data)


class Held:
    """A running WatchSession and what it reported."""

    def __init__(self, session: WatchSession) -> None:
        self.session = session
        self.results: list[ProbeResult] = []
        self._changed = asyncio.Event()

    def report(self, result: ProbeResult) -> None:
        self.results.append(result)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds, re-checking on reports and every 10 ms."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                # Counters change without a report; a short poll re-reads them.
                with _suppress_timeout():
                    async with asyncio.timeout(0.01):
                        await self._changed.wait()


def _suppress_timeout() -> Any:
    import contextlib

    return contextlib.suppress(TimeoutError)


@asynccontextmanager
async def held(check: CheckConfig) -> AsyncIterator[Held]:
    """Start a WatchSession for ``check``; stop it afterwards."""
    box: list[Held] = []
    session = WatchSession(check, on_result=lambda r: box[0].report(r), random=lambda: 0.5)
    box.append(Held(session))
    session.start()
    try:
        yield box[0]
    finally:
        await session.stop()


def messages(h: Held) -> int:
    return h.session.stats().messages_total


def websocket_pongs(h: Held) -> float | None:
    """When the held connection last read a WebSocket pong (None: never)."""
    conn = h.session._conn
    assert conn is not None
    return conn.pong_at  # type: ignore[attr-defined, no-any-return]


# --- Socket.IO -----------------------------------------------------------------------


def socketio(port: int, **protocol: Any) -> tuple[str, dict[str, Any]]:
    steps = protocol.pop("steps", [{"emit": {"event": "follow"}}])
    return f"ws://127.0.0.1:{port}", {"name": "socketio", "steps": steps, **protocol}


async def test_socketio_events_counted_and_pings_answered(socketio_port: int) -> None:
    """Listened events are the messages; Engine.IO pings are answered past the ping timeout."""
    url, protocol = socketio(socketio_port, listen="tick")
    check = watch_check(url, protocol, watch={"stale_after": 0.3, "ping_interval": 0.1})
    async with held(check) as h:
        await h.until(lambda: messages(h) >= 3)
        # The server pings every 0.2 s and drops a client silent for 0.5 s.
        await asyncio.sleep(1.2)
        stats = h.session.stats()
        assert stats.connected
        assert stats.reconnects == {}
        assert stats.matched_total == stats.messages_total >= 30  # noise events not counted
        assert stats.last_rtt is not None
        assert stats.last_rtt > 0
        assert websocket_pongs(h) is not None  # Engine.IO v4 has no client ping
        assert not stats.stale


async def test_socketio_hung_server_is_ping_timeout(socketio_port: int) -> None:
    """A server whose Engine.IO pings stop (its loop hangs) ends the session as ping_timeout."""
    url, protocol = socketio(socketio_port)
    async with held(watch_check(url, protocol)) as h:
        await h.until(lambda: messages(h) >= 1)
        # Another client hangs the server for 1.5 s: longer than pingInterval +
        # pingTimeout of its open packet (0.3 s: python-engineio advertises a
        # sub-second interval as 0), after which a Socket.IO client gives up.
        freeze = [{"emit": {"event": "freeze", "args": [1.5]}}]
        assert (await run(url, {"name": "socketio", "steps": freeze})).success
        await h.until(lambda: "ping_timeout" in h.session.stats().reconnects)
        assert "no Engine.IO ping from the server for 0.3s" in h.session._down.message
        await h.until(lambda: h.session.stats().connected)


async def test_socketio_unlistened_events_leave_the_watch_stale(socketio_port: int) -> None:
    """Events outside protocol.listen are not messages: the feed is judged stale."""
    url, protocol = socketio(socketio_port, listen=["nothing"])
    check = watch_check(url, protocol, watch={"stale_after": 0.2})
    async with held(check) as h:
        await h.until(lambda: any(not r.success for r in h.results))
        failed = next(r for r in h.results if not r.success)
        assert failed.reason is Reason.EXPECT_TIMEOUT
        assert h.session.stats().messages_total == 0
        assert h.session.stats().connected


async def test_socketio_server_disconnect_reconnects_and_follows_again(socketio_port: int) -> None:
    """A namespace DISCONNECT is a closed reason; the reconnect re-emits the follow."""
    url, protocol = socketio(
        socketio_port, steps=[{"emit": {"event": "follow", "args": [{"drop_after": 3}]}}]
    )
    async with held(watch_check(url, protocol)) as h:
        await h.until(lambda: h.session.stats().reconnects.get("closed", 0) >= 2)
        # Three ticks per connection: more than three means the feed was followed again.
        await h.until(lambda: messages(h) > 6)
        assert "the server disconnected '/'" in h.session._down.message


# --- GraphQL -------------------------------------------------------------------------

FLAVOURS = [
    pytest.param("graphql-transport-ws", "/graphql", id="graphql-transport-ws"),
    pytest.param("subscriptions-transport-ws", "/legacy", id="subscriptions-transport-ws"),
]


def graphql(port: int, name: str, path: str, document: str) -> tuple[str, dict[str, Any]]:
    protocol = {
        "name": name,
        "payload": {"token": "{{token}}"},
        "steps": [{"subscribe": {"id": "feed", "query": document}}],
    }
    return f"ws://127.0.0.1:{port}{path}", protocol


@pytest.mark.parametrize(("name", "path"), FLAVOURS)
async def test_graphql_next_counted_and_ping_measured(
    graphql_port: int, name: str, path: str
) -> None:
    """Each ``next`` of the subscription is a message; pings report an RTT."""
    url, protocol = graphql(graphql_port, name, path, "subscription { ticks(every: 10) }")
    check = watch_check(
        url,
        protocol,
        auth={"token": "s3cret"},
        watch={"ping_interval": 0.05, "match": {"path": "$.data.ticks", "gt": 2}},
    )
    async with held(check) as h:
        await h.until(lambda: h.session.stats().matched_total >= 5)
        await h.until(lambda: h.session.stats().last_rtt is not None)
        # graphql-transport-ws pings itself; the legacy protocol has no ping.
        assert (websocket_pongs(h) is None) == (name == "graphql-transport-ws")
        stats = h.session.stats()
        # ticks 1 and 2 arrived but do not match
        assert stats.messages_total >= stats.matched_total + 2
        assert stats.reconnects == {}


async def test_graphql_legacy_keepalives_are_not_messages(graphql_port: int) -> None:
    """The legacy server's ``ka`` every 100 ms never counts: a silent subscription is stale."""
    url, protocol = graphql(
        graphql_port, "subscriptions-transport-ws", "/legacy", "subscription { said }"
    )
    check = watch_check(url, protocol, auth={"token": "s3cret"}, watch={"stale_after": 0.4})
    async with held(check) as h:
        await h.until(lambda: any(not r.success for r in h.results))
        failed = next(r for r in h.results if not r.success)
        assert failed.reason is Reason.EXPECT_TIMEOUT
        assert messages(h) == 0
        assert h.session.stats().connected


@pytest.mark.parametrize(("name", "path"), FLAVOURS)
async def test_graphql_completed_subscription_reconnects_and_resubscribes(
    graphql_port: int, name: str, path: str
) -> None:
    """The server completing the subscription is closed, with its id; it is subscribed again."""
    url, protocol = graphql(graphql_port, name, path, "subscription { ticks(every: 5, count: 3) }")
    async with held(watch_check(url, protocol, auth={"token": "s3cret"})) as h:
        await h.until(lambda: messages(h) > 3)  # the second subscription delivered too
        assert h.session.stats().reconnects.get("closed", 0) >= 1
        assert "the server completed subscription 'feed'" in h.session._down.message


async def test_graphql_subscription_error_is_reported(graphql_port: int) -> None:
    """A subscription the server answers with an error fails with the GraphQL message."""
    url, protocol = graphql(
        graphql_port, "graphql-transport-ws", "/graphql", "subscription { nosuchfield }"
    )
    async with held(watch_check(url, protocol, auth={"token": "s3cret"})) as h:
        await h.until(lambda: h.session.stats().reconnects.get("expect_mismatch", 0) >= 2)
        message = h.session._down.message
        assert "GraphQL error for subscription 'feed'" in message
        assert "nosuchfield" in message


# --- MQTT ----------------------------------------------------------------------------


def mqtt(topic: str, **protocol: Any) -> dict[str, Any]:
    return {"name": "mqtt", "steps": [{"subscribe": {"topic": topic, "qos": 1}}], **protocol}


async def publish(broker: Broker, topic: str, payload: str) -> None:
    """Publish one QoS 1 message with a probe check (a separate real client)."""
    steps = [{"publish": {"topic": topic, "payload": payload, "qos": 1}}]
    result = await run(broker.open_url, {"name": "mqtt", "steps": steps})
    assert result.success, result.message


async def test_mqtt_publishes_counted_and_keepalive_sent(mosquitto: Broker) -> None:
    """PUBLISHes on the filter are messages; PINGREQs keep a 1 s keep-alive session up."""
    run_id = uuid.uuid4().hex[:8]
    check = watch_check(
        mosquitto.open_url,
        mqtt(f"wsprobe/watch/{run_id}/#", keepalive=1),
        watch={"match": {"json": {"ok": True}}},
    )
    async with held(check) as h:
        await h.until(lambda: h.session.stats().connected)
        # Mosquitto drops a client silent for 1.5 keep-alives, but checks lazily: a
        # session sending nothing was dropped 3.5-6 s in. Hold past that.
        await asyncio.sleep(7.0)
        await publish(mosquitto, f"wsprobe/watch/{run_id}/a", '{"ok": true}')
        await publish(mosquitto, f"wsprobe/watch/{run_id}/b", '{"ok": false}')
        await h.until(lambda: messages(h) == 2)
        stats = h.session.stats()
        assert stats.matched_total == 1
        assert stats.reconnects == {}


async def test_mqtt_pings_are_the_rtt(mosquitto: Broker) -> None:
    """PINGREQ/PINGRESP round trips are reported as the watch's RTT."""
    check = watch_check(
        mosquitto.open_url, mqtt("wsprobe/watch/rtt"), watch={"ping_interval": 0.05}
    )
    async with held(check) as h:
        await h.until(lambda: h.session.stats().last_rtt is not None)
        assert h.session.stats().last_rtt > 0  # type: ignore[operator]
        assert websocket_pongs(h) is None  # PINGREQ, not a WebSocket ping


async def test_mqtt_taken_over_session_reconnects_and_resubscribes(mosquitto: Broker) -> None:
    """The broker dropping the session is closed; the reconnect subscribes again."""
    run_id = uuid.uuid4().hex[:8]
    client_id, topic = f"wsprobe-watch-{run_id}", f"wsprobe/watch/{run_id}"
    check = watch_check(mosquitto.open_url, mqtt(topic, client_id=client_id, version=5))
    async with held(check) as h:
        await h.until(lambda: h.session.stats().connected)
        taker = await run(mosquitto.open_url, {"name": "mqtt", "client_id": client_id})
        assert taker.success, taker.message
        await h.until(lambda: sum(h.session.stats().reconnects.values()) >= 1)
        await h.until(lambda: h.session.stats().connected)
        await publish(mosquitto, topic, "after")
        await h.until(lambda: messages(h) == 1)
        assert h.session.stats().reconnects.get("closed", 0) >= 1, h.session.stats()


# --- STOMP ---------------------------------------------------------------------------


def stomp(
    broker: Broker, destination: str, *extra: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    return {
        "name": "stomp",
        "username": broker.username,
        "password": broker.password,
        "steps": [{"subscribe": {"destination": destination}}, *extra],
        **fields,
    }


async def send(broker: Broker, destination: str, body: str) -> None:
    """SEND one message with a probe check (a separate real client)."""
    protocol = {
        "name": "stomp",
        "username": broker.username,
        "password": broker.password,
        "steps": [{"send": {"destination": destination, "payload": body, "receipt": True}}],
    }
    result = await run(broker.open_url, protocol)
    assert result.success, result.message


async def test_stomp_messages_counted_and_heartbeats_kept(rabbitmq: Broker) -> None:
    """MESSAGEs are counted; our heart-beats keep a 1 s heart-beat session up."""
    destination = f"/topic/wsprobe.watch.{uuid.uuid4().hex[:8]}"
    check = watch_check(
        rabbitmq.open_url,
        stomp(rabbitmq, destination, keepalive=1),
    )
    async with held(check) as h:
        await h.until(lambda: h.session.stats().connected)
        await send(rabbitmq, destination, "one")
        await h.until(lambda: messages(h) == 1)
        # RabbitMQ closes a connection that misses its heart-beats: one sending
        # none was closed 2.5-3 s in. Hold past that.
        await asyncio.sleep(3.5)
        await send(rabbitmq, destination, "two")
        await h.until(lambda: messages(h) == 2)
        assert h.session.stats().reconnects == {}


async def test_stomp_receipt_rtt(rabbitmq: Broker) -> None:
    """A watch's pings over STOMP are receipt round trips."""
    destination = f"/topic/wsprobe.watch.{uuid.uuid4().hex[:8]}"
    check = watch_check(
        rabbitmq.open_url, stomp(rabbitmq, destination), watch={"ping_interval": 0.05}
    )
    async with held(check) as h:
        await h.until(lambda: h.session.stats().last_rtt is not None)
        assert websocket_pongs(h) is None  # a receipt, not a WebSocket ping


async def test_stomp_error_frame_reported_and_session_rebuilt(rabbitmq: Broker) -> None:
    """An ERROR from the broker ends the session with its message; each reconnect resubscribes."""
    destination = f"/topic/wsprobe.watch.{uuid.uuid4().hex[:8]}"
    bad_send = {"send": {"destination": "/bogus/x", "payload": "hi"}}
    check = watch_check(rabbitmq.open_url, stomp(rabbitmq, destination, bad_send))
    async with held(check) as h:
        await h.until(lambda: h.session.stats().reconnects.get("expect_mismatch", 0) >= 2)
        assert "STOMP ERROR: Unknown destination" in h.session._down.message


# --- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["socketio", "graphql", "mqtt", "stomp"])
async def test_refused_credentials_are_auth_rejected(
    which: str, request: pytest.FixtureRequest
) -> None:
    """Each protocol's credential refusal fails the watch as auth_rejected, and it retries."""
    fields: dict[str, Any] = {}
    if which == "socketio":
        port = request.getfixturevalue("socketio_port")
        url, protocol = socketio(port, namespace="/private", payload={"token": "wrong-secret"})
    elif which == "graphql":
        port = request.getfixturevalue("graphql_port")
        url, protocol = graphql(port, "graphql-transport-ws", "/graphql", "subscription { said }")
        fields["auth"] = {"token": "wrong-secret"}
    elif which == "mqtt":
        broker: Broker = request.getfixturevalue("mosquitto")
        url = broker.auth_url
        protocol = mqtt("wsprobe/x", username=broker.username, password="wrong-secret")
    else:
        broker = request.getfixturevalue("rabbitmq")
        url = broker.open_url
        protocol = {**stomp(broker, "/topic/x"), "password": "wrong-secret"}
    async with held(watch_check(url, protocol, **fields)) as h:
        await h.until(lambda: any(not r.success for r in h.results))
        failed = next(r for r in h.results if not r.success)
        assert failed.reason is Reason.AUTH_REJECTED, failed.message
        assert "wrong-secret" not in failed.message
        await h.until(lambda: h.session.stats().reconnects.get("auth_rejected", 0) >= 2)


# --- one shot ------------------------------------------------------------------------


async def test_one_shot_watch_waits_for_the_first_protocol_message(graphql_port: int) -> None:
    """``wsprobe probe --check`` of a protocol watch: handshake, subscribe, first message."""
    url, protocol = graphql(
        graphql_port, "graphql-transport-ws", "/graphql", "subscription { ticks(every: 10) }"
    )
    check = watch_check(url, protocol, auth={"token": "s3cret"}, watch={"stale_after": 1})
    result = await watch_kind.run(check)
    assert result.success, result.message
    assert {"protocol", "steps", "first_message"} <= set(result.phases)


async def test_one_shot_watch_reports_a_completed_subscription(graphql_port: int) -> None:
    """The one-shot run fails as closed when the subscription ends before matching data."""
    url, protocol = graphql(
        graphql_port, "graphql-transport-ws", "/graphql", "subscription { dropped }"
    )
    check = watch_check(url, protocol, auth={"token": "s3cret"}, watch={"stale_after": 1})
    result = await watch_kind.run(check)
    assert result.reason is Reason.CLOSED, result.message
    assert "completed subscription 'feed'" in result.message
