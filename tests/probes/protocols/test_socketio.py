"""Socket.IO against a real python-socketio server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve

from agent.config.protocols import ProtocolConfig
from agent.probes.protocols import PROTOCOLS
from agent.probes.protocols.socketio import socketio_url
from agent.result import Reason
from tests.probes.protocols.conftest import run


async def test_connects_times_the_handshake_and_pings(socketio_port: int) -> None:
    """Open packet and namespace CONNECT are the protocol phase; pings are measured."""
    result = await run(f"ws://127.0.0.1:{socketio_port}", {"name": "socketio"}, pings=2)
    assert result.success, result.message
    assert result.phases["protocol"] > 0
    assert len(result.pings) == 2
    assert result.phases["total"] >= result.phases["protocol"]


async def test_auth_payload_accepted_and_emit_ack_and_event(socketio_port: int) -> None:
    """The auth payload reaches the server; emit with ack; the echoed event matches."""
    protocol = {
        "name": "socketio",
        "namespace": "/private",
        "payload": {"token": "{{token}}"},
        "steps": [
            {"name": "send", "emit": {"event": "echo", "args": ["lobby", {"n": 3}], "ack": True}},
            {"expect": {"event": "echoed", "path": "$[1].n", "eq": 3}},
        ],
    }
    result = await run(f"ws://127.0.0.1:{socketio_port}/", protocol, auth={"token": "s3cret"})
    assert result.success, result.message
    assert [s.name for s in result.steps] == ["send", "expect"]
    assert all(s.ok for s in result.steps)


async def test_connect_error_is_auth_rejected_with_the_server_message(socketio_port: int) -> None:
    """CONNECT_ERROR fails as auth_rejected quoting the server, never the secret."""
    protocol = {"name": "socketio", "namespace": "/private", "payload": {"token": "{{token}}"}}
    result = await run(f"ws://127.0.0.1:{socketio_port}", protocol, auth={"token": "wrong-secret"})
    assert result.reason is Reason.AUTH_REJECTED
    assert "invalid token" in result.message
    assert "wrong-secret" not in result.message


async def test_event_not_matching_times_out(socketio_port: int) -> None:
    """An echoed event whose arguments do not match fails as expect_timeout."""
    protocol = {
        "name": "socketio",
        "steps": [
            {"emit": {"event": "echo", "args": ["a"]}},
            {"expect": {"event": "echoed", "json": ["b"], "timeout": 0.3}},
        ],
    }
    result = await run(f"ws://127.0.0.1:{socketio_port}", protocol)
    assert result.reason is Reason.EXPECT_TIMEOUT
    assert "echoed" in result.message


async def test_server_disconnecting_the_namespace_fails_the_wait(socketio_port: int) -> None:
    """The server leaving the namespace while an event is awaited fails as closed."""
    protocol = {
        "name": "socketio",
        "steps": [{"emit": {"event": "bye"}}, {"expect": {"event": "never"}}],
    }
    result = await run(f"ws://127.0.0.1:{socketio_port}", protocol)
    assert result.reason is Reason.CLOSED
    assert "disconnected" in result.message


@pytest.fixture
async def garbage_server() -> AsyncIterator[int]:
    """A WebSocket server that answers the upgrade, then sends a non-Engine.IO frame."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send("x-not-a-packet")
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        yield server.sockets[0].getsockname()[1]


async def test_malformed_packet_is_protocol_error(garbage_server: int) -> None:
    """A frame that is no Engine.IO packet fails as protocol_error."""
    result = await run(f"ws://127.0.0.1:{garbage_server}", {"name": "socketio"})
    assert result.reason is Reason.PROTOCOL_ERROR
    assert "Engine.IO" in result.message


@pytest.mark.parametrize(
    ("url", "path", "expected"),
    [
        ("ws://h:1", None, "ws://h:1/socket.io/?EIO=4&transport=websocket"),
        ("ws://h:1/?a=1", None, "ws://h:1/socket.io/?a=1&EIO=4&transport=websocket"),
        ("ws://h:1/x/", "/y/", "ws://h:1/y/?EIO=4&transport=websocket"),
    ],
    ids=["default-path", "keeps-query", "configured-path"],
)
def test_url_form(url: str, path: str | None, expected: str) -> None:
    """The dialled URL is the Engine.IO WebSocket endpoint."""
    assert socketio_url(url, ProtocolConfig(name="socketio", path=path)) == expected


def test_validation_refuses_other_protocols_steps() -> None:
    """A publish step is not a Socket.IO step."""
    config = ProtocolConfig.model_validate(
        {"name": "socketio", "steps": [{"publish": {"topic": "t"}}]}
    )
    [(path, message)] = PROTOCOLS["socketio"].validate(config)
    assert path == ("steps", 0, "publish")
    assert "no 'publish' step" in message


async def test_engineio_pings_are_answered_while_the_check_waits(socketio_port: int) -> None:
    """A check idle past the server's ping timeout stays connected: its pings are answered."""
    protocol = {
        "name": "socketio",
        "steps": [{"sleep": 1.0}, {"emit": {"event": "echo", "args": [1], "ack": True}}],
    }
    result = await run(f"ws://127.0.0.1:{socketio_port}", protocol)
    assert result.success, result.message
