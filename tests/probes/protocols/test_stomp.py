"""STOMP over WebSocket against a real RabbitMQ (rabbitmq_web_stomp)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from agent.probes.protocols.stomp import _beat_interval
from agent.probes.protocols.stomp_frames import FrameReader, encode
from agent.result import Reason
from tests.probes.protocols.conftest import Broker, answered_with, run

# The first test also waits for the broker to boot (~10 s idle, longer under load).
pytestmark = pytest.mark.timeout(150)


def stomp(broker: Broker, **fields: Any) -> dict[str, Any]:
    return {"name": "stomp", "username": broker.username, "password": broker.password, **fields}


async def test_connects_and_measures_receipts(rabbitmq: Broker) -> None:
    """CONNECT/CONNECTED is the protocol phase; receipt round trips are the pings."""
    result = await run(rabbitmq.open_url, stomp(rabbitmq), pings=3)
    assert result.success, result.message
    assert result.subprotocol == "v12.stomp"
    assert result.phases["protocol"] > 0
    assert len(result.pings) == 3


async def test_wrong_passcode_is_auth_rejected(rabbitmq: Broker) -> None:
    """An ERROR refusing the login is auth_rejected with the broker's words, not the secret."""
    protocol = {**stomp(rabbitmq), "password": "wrong-secret"}
    result = await run(rabbitmq.open_url, protocol)
    assert result.reason is Reason.AUTH_REJECTED, result.message
    assert "STOMP ERROR" in result.message
    assert "wrong-secret" not in result.message


async def test_unknown_virtual_host_is_handshake_status(rabbitmq: Broker) -> None:
    """An ERROR not about credentials (no such vhost) is handshake_status."""
    result = await run(rabbitmq.open_url, stomp(rabbitmq, host="no-such-vhost"))
    assert result.reason is Reason.HANDSHAKE_STATUS, result.message
    assert "no-such-vhost" in result.message


async def test_subscribe_send_and_receive_with_receipts(rabbitmq: Broker) -> None:
    """SUBSCRIBE and SEND are acknowledged by receipts; the MESSAGE matches body and headers."""
    destination = f"/topic/wsprobe.{uuid.uuid4().hex[:8]}"
    steps = [
        {"name": "sub", "subscribe": {"destination": destination}},
        {
            "name": "send",
            "send": {
                "destination": destination,
                "payload": {"price": 7},
                "headers": {"x-probe": "yes"},
                "receipt": True,
            },
        },
        {
            "name": "got",
            "expect": {
                "destination": destination,
                "headers": {"x-probe": "yes"},
                "path": "$.price",
                "eq": 7,
            },
        },
    ]
    result = await run(rabbitmq.open_url, stomp(rabbitmq, steps=steps))
    assert result.success, result.message
    assert [s.name for s in result.steps] == ["sub", "send", "got"]


async def test_subscription_the_broker_drops_fails_as_closed(rabbitmq: Broker) -> None:
    """A subscription to a queue that does not exist: RabbitMQ ends the session."""
    steps = [{"subscribe": {"destination": f"/amq/queue/missing-{uuid.uuid4().hex[:6]}"}}]
    result = await run(rabbitmq.open_url, stomp(rabbitmq, steps=steps))
    assert result.reason is Reason.CLOSED, result.message
    assert "STOMP died" in result.message
    assert "step 1 'subscribe'" in result.message


async def test_error_frame_fails_the_step_with_the_broker_message(rabbitmq: Broker) -> None:
    """An ERROR answering a SEND fails the step with the broker's own message."""
    steps = [{"send": {"destination": "/bogus/x", "payload": "hi", "receipt": True}}]
    result = await run(rabbitmq.open_url, stomp(rabbitmq, steps=steps))
    assert result.reason is Reason.EXPECT_MISMATCH, result.message
    assert "STOMP ERROR: Unknown destination" in result.message


async def test_nothing_delivered_is_expect_timeout(rabbitmq: Broker) -> None:
    """A destination nothing is sent to fails as expect_timeout."""
    destination = f"/topic/wsprobe.silent.{uuid.uuid4().hex[:8]}"
    steps = [
        {"subscribe": {"destination": destination}},
        {"expect": {"destination": destination, "timeout": 0.3}},
    ]
    result = await run(rabbitmq.open_url, stomp(rabbitmq, steps=steps))
    assert result.reason is Reason.EXPECT_TIMEOUT


@pytest.mark.parametrize(
    ("frame", "says"),
    [
        (b"HELLO\n\n\0", "unknown server command"),
        (b"CONNECTED\nno-colon-here\n\n\0", "without a colon"),
        (b"MESSAGE\ncontent-length:x\n\n\0", "not a number"),
        (b"MESSAGE\ncontent-length:2\n\nabc\0", "no NUL"),
        (b"MESSAGE\nbad:\\q\n\n\0", "undefined escape"),
    ],
    ids=["unknown-command", "header-without-colon", "bad-length", "length-mismatch", "escape"],
)
async def test_malformed_frames_are_protocol_errors(frame: bytes, says: str) -> None:
    """Each malformed STOMP frame fails as protocol_error saying what was wrong."""
    result = await answered_with(frame, subprotocol="v12.stomp", protocol="stomp")
    assert result.reason is Reason.PROTOCOL_ERROR, result.message
    assert says in result.message


@pytest.mark.parametrize(
    ("offered", "answer", "theirs", "expected"),
    [
        (1000, "1000,1000", False, 1.0),
        (1000, "0,5000", False, 5.0),
        (1000, "2000,0", False, None),
        (0, "0,1000", False, None),
        (1000, "x", False, None),
        (1000, "3000,0", True, 3.0),
        (1000, "0,1000", True, None),
    ],
    ids=[
        "both",
        "server-wants-slower",
        "server-wants-none",
        "we-offer-none",
        "garbled",
        "server-beats-slower",
        "server-beats-none",
    ],
)
def test_heartbeat_negotiation(
    offered: int, answer: str, theirs: bool, expected: float | None
) -> None:
    """Each side beats at the larger of its offer and the other's wish, or not at all."""
    assert _beat_interval(offered, answer, theirs=theirs) == expected


def test_frames_round_trip_with_escapes_and_heartbeats() -> None:
    """Escaped headers, a binary body with NUL, heart-beats and split messages decode."""
    frame = encode("MESSAGE", {"destination": "/q/a:b", "note": "two\nlines"}, b"x\0y")
    reader = FrameReader()
    assert reader.feed(b"\n\r\n" + frame[:10]) == []
    [decoded] = reader.feed(frame[10:] + b"\n")
    assert decoded.headers["destination"] == "/q/a:b"
    assert decoded.headers["note"] == "two\nlines"
    assert decoded.body == b"x\0y"
