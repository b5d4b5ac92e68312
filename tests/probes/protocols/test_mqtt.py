"""MQTT 3.1.1 and 5 over WebSocket against a real Mosquitto."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from websockets.asyncio.server import ServerConnection, serve

from agent.probes.protocols.mqtt_codec import topic_matches
from agent.result import Reason
from tests.probes.protocols.conftest import Broker, answered_with, run

VERSIONS = [pytest.param("3.1.1", id="mqtt-3.1.1"), pytest.param("5", id="mqtt-5")]


@pytest.mark.parametrize("version", VERSIONS)
async def test_connects_with_credentials_and_pings(mosquitto: Broker, version: str) -> None:
    """CONNECT/CONNACK is the protocol phase; PINGREQ/PINGRESP RTTs are the pings."""
    protocol = {
        "name": "mqtt",
        "version": version,
        "username": mosquitto.username,
        "password": mosquitto.password,
    }
    result = await run(mosquitto.auth_url, protocol, pings=3)
    assert result.success, result.message
    assert result.subprotocol == "mqtt"
    assert result.phases["protocol"] > 0
    assert len(result.pings) == 3


@pytest.mark.parametrize(
    ("version", "code"),
    [("3.1.1", "0x05 not authorized"), ("5", "0x87 not authorized")],
    ids=["mqtt-3.1.1", "mqtt-5"],
)
async def test_wrong_password_is_auth_rejected(mosquitto: Broker, version: str, code: str) -> None:
    """A CONNACK refusing the credentials is auth_rejected naming the code, not the secret."""
    protocol = {
        "name": "mqtt",
        "version": version,
        "username": mosquitto.username,
        "password": "wrong-secret",
    }
    result = await run(mosquitto.auth_url, protocol)
    assert result.reason is Reason.AUTH_REJECTED, result.message
    assert code in result.message
    assert "wrong-secret" not in result.message


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_publish_is_acknowledged_and_delivered(
    mosquitto: Broker, version: str, qos: int
) -> None:
    """Subscribe (SUBACK), publish at each QoS (its ack), expect it on a wildcard filter."""
    base = f"wsprobe/{uuid.uuid4().hex[:8]}"
    protocol = {
        "name": "mqtt",
        "version": version,
        "steps": [
            {"name": "sub", "subscribe": {"topic": f"{base}/+/price", "qos": qos}},
            {
                "name": "pub",
                "publish": {"topic": f"{base}/btc/price", "payload": {"p": 42}, "qos": qos},
            },
            {"name": "got", "expect": {"topic": f"{base}/#", "path": "$.p", "eq": 42}},
        ],
    }
    result = await run(mosquitto.open_url, protocol)
    assert result.success, result.message
    assert [s.name for s in result.steps] == ["sub", "pub", "got"]


async def test_retained_message_reaches_a_later_subscriber(mosquitto: Broker) -> None:
    """A retained publish is delivered to a subscriber that arrives afterwards."""
    topic = f"wsprobe/retained/{uuid.uuid4().hex[:8]}"
    publisher = {
        "name": "mqtt",
        "steps": [{"publish": {"topic": topic, "payload": "kept", "qos": 1, "retain": True}}],
    }
    assert (await run(mosquitto.open_url, publisher)).success
    subscriber = {
        "name": "mqtt",
        "steps": [
            {"subscribe": {"topic": topic}},
            {"expect": {"topic": topic, "eq": None, "contains": "kept"}},
        ],
    }
    result = await run(mosquitto.open_url, subscriber)
    clear = {"name": "mqtt", "steps": [{"publish": {"topic": topic, "retain": True}}]}
    await run(mosquitto.open_url, clear)
    assert result.success, result.message


async def test_no_delivery_is_expect_timeout(mosquitto: Broker) -> None:
    """A subscription nothing is published to fails as expect_timeout."""
    topic = f"wsprobe/silent/{uuid.uuid4().hex[:8]}"
    protocol = {
        "name": "mqtt",
        "steps": [{"subscribe": {"topic": topic}}, {"expect": {"topic": topic, "timeout": 0.3}}],
    }
    result = await run(mosquitto.open_url, protocol)
    assert result.reason is Reason.EXPECT_TIMEOUT
    assert topic in result.message


async def test_session_taken_over_fails_the_waiting_subscriber(mosquitto: Broker) -> None:
    """A broker dropping the session (another client took its id) fails the wait as closed."""
    run_id = uuid.uuid4().hex[:8]
    client_id, ready = f"wsprobe-dup-{run_id}", f"wsprobe/ready/{run_id}"
    waiting = asyncio.create_task(
        run(
            mosquitto.open_url,
            {
                "name": "mqtt",
                "version": 5,
                "client_id": client_id,
                "steps": [
                    {"subscribe": {"topic": f"wsprobe/never/{run_id}"}},
                    {"publish": {"topic": ready, "payload": "up", "qos": 1, "retain": True}},
                    {"expect": {"topic": f"wsprobe/never/{run_id}", "timeout": 4}},
                ],
            },
            timeout=6,
        )
    )
    watcher = {
        "name": "mqtt",
        "steps": [{"subscribe": {"topic": ready}}, {"expect": {"topic": ready}}],
    }
    assert (await run(mosquitto.open_url, watcher)).success  # the first session is subscribed
    assert (await run(mosquitto.open_url, {"name": "mqtt", "client_id": client_id})).success
    result = await waiting
    await run(
        mosquitto.open_url,
        {"name": "mqtt", "steps": [{"publish": {"topic": ready, "retain": True}}]},
    )
    assert result.reason is Reason.CLOSED, result.message
    assert "during step 3 'expect'" in result.message


async def test_server_disconnect_packet_fails_with_its_reason() -> None:
    """An MQTT 5 DISCONNECT while waiting fails as closed with its reason code and string."""
    # Mosquitto 2.0 drops a taken-over WebSocket client without a DISCONNECT packet, so
    # this one is sent by a socket: CONNACK, then DISCONNECT 0x8E "taken over".
    disconnect = b"\xe0\x0f\x8e\x0d\x1f\x00\x0ataken over"

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(b"\x20\x03\x00\x00\x00")
        await ws.send(disconnect)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, subprotocols=["mqtt"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        protocol = {"name": "mqtt", "version": 5, "steps": [{"expect": {"topic": "t"}}]}
        result = await run(f"ws://127.0.0.1:{port}", protocol)
    assert result.reason is Reason.CLOSED, result.message
    assert "DISCONNECT 0x8e session taken over: taken over" in result.message


@pytest.mark.parametrize(
    ("frame", "says"),
    [
        ("a text frame", "text frame"),
        (b"\x00\x00", "reserved"),
        (b"\x20\x01\x00", "shorter than its fields"),
        (b"\x20\xff\xff\xff\xff\x01", "longer than 4 bytes"),
        (b"\x80\x00", "not sent by servers"),
    ],
    ids=["text-frame", "reserved-type", "short-connack", "bad-length", "client-packet"],
)
async def test_malformed_packets_are_protocol_errors(frame: str | bytes, says: str) -> None:
    """Each malformed MQTT frame fails as protocol_error saying what was wrong."""
    result = await answered_with(frame, subprotocol="mqtt", protocol="mqtt")
    assert result.reason is Reason.PROTOCOL_ERROR, result.message
    assert says in result.message


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("a/+/c", "a/b/c", True),
        ("a/+/c", "a/b/d", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("+/b", "$SYS/b", False),
        ("a/b", "a/b/c", False),
    ],
)
def test_topic_filters(pattern: str, topic: str, expected: bool) -> None:
    """Topic filter wildcards follow the MQTT rules."""
    assert topic_matches(pattern, topic) is expected
