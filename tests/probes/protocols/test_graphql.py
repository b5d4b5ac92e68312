"""graphql-transport-ws and subscriptions-transport-ws against the real node servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from agent.result import Reason
from tests.probes.protocols.conftest import answered_with, run

FLAVOURS = [
    pytest.param("graphql-transport-ws", "/graphql", id="graphql-transport-ws"),
    pytest.param("subscriptions-transport-ws", "/legacy", id="subscriptions-transport-ws"),
]


def greetings(count: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "subscribe": {
                "id": "g",
                "query": "subscription ($n: Int) { greetings(count: $n) }",
                "variables": {"n": count},
            }
        },
        {"name": "first", "expect": {"id": "g", "json": {"data": {"greetings": "hi 1"}}}},
        {"name": "last", "expect": {"id": "g", "path": "$.data.greetings", "eq": f"hi {count}"}},
        {"name": "done", "expect": {"id": "g", "complete": True}},
    ]


@pytest.mark.parametrize(("name", "path"), FLAVOURS)
async def test_subscription_data_and_complete(graphql_port: int, name: str, path: str) -> None:
    """connection_init is acked; next data matches in order; complete arrives."""
    protocol = {"name": name, "payload": {"token": "{{token}}"}, "steps": greetings(3)}
    result = await run(
        f"ws://127.0.0.1:{graphql_port}{path}", protocol, auth={"token": "s3cret"}, pings=2
    )
    assert result.success, result.message
    assert result.subprotocol == ("graphql-ws" if "subscriptions" in name else name)
    assert result.phases["protocol"] > 0
    assert [s.name for s in result.steps] == ["subscribe", "first", "last", "done"]
    assert len(result.pings) == 2


@pytest.mark.parametrize(("name", "path"), FLAVOURS)
async def test_refused_credentials_are_auth_rejected(
    graphql_port: int, name: str, path: str
) -> None:
    """A refused connection_init (4403 close, or connection_error) is auth_rejected."""
    protocol = {"name": name, "payload": {"token": "{{token}}"}}
    result = await run(
        f"ws://127.0.0.1:{graphql_port}{path}", protocol, auth={"token": "wrong-secret"}
    )
    assert result.reason is Reason.AUTH_REJECTED, result.message
    assert "wrong-secret" not in result.message
    assert (
        ("4403" in result.message)
        if name == "graphql-transport-ws"
        else ("invalid token" in result.message)
    )


@pytest.mark.parametrize(("name", "path"), FLAVOURS)
async def test_resolver_error_fails_with_the_graphql_message(
    graphql_port: int, name: str, path: str
) -> None:
    """An operation's GraphQL error fails the expect with the server's message."""
    steps = [{"query": {"id": "q", "query": "{ fail }"}}, {"expect": {"id": "q"}}]
    result = await run(f"ws://127.0.0.1:{graphql_port}{path}", {"name": name, "steps": steps})
    assert result.reason is Reason.EXPECT_MISMATCH
    assert "kaboom: the resolver failed" in result.message


@pytest.mark.parametrize(("name", "path"), FLAVOURS)
async def test_query_data_matches(graphql_port: int, name: str, path: str) -> None:
    """A query's single result is matched like subscription data."""
    steps = [
        {
            "query": {
                "id": "q",
                "query": "query Hi($n: String) { hello(name: $n) }",
                "variables": {"n": "probe"},
                "operation_name": "Hi",
            }
        },
        {"expect": {"id": "q", "json": {"data": {"hello": "hello probe"}}}},
    ]
    result = await run(f"ws://127.0.0.1:{graphql_port}{path}", {"name": name, "steps": steps})
    assert result.success, result.message


@pytest.mark.parametrize(("name", "path"), FLAVOURS)
async def test_server_completing_the_subscription_fails_the_wait(
    graphql_port: int, name: str, path: str
) -> None:
    """A subscription the server ends before any data fails as expect_mismatch."""
    steps = [
        {"subscribe": {"id": "d", "query": "subscription { dropped }"}},
        {"expect": {"id": "d"}},
    ]
    result = await run(f"ws://127.0.0.1:{graphql_port}{path}", {"name": name, "steps": steps})
    assert result.reason is Reason.EXPECT_MISMATCH
    assert "completed operation 'd'" in result.message


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts graphql-transport-ws and reads connection_init, but never acks it."""

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.wait_closed()

    async with serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
    ) as server:
        yield server.sockets[0].getsockname()[1]


async def test_missing_ack_is_handshake_status(silent_server: int) -> None:
    """No connection_ack within handshake_timeout fails as handshake_status."""
    protocol = {"name": "graphql-transport-ws", "handshake_timeout": 0.3}
    result = await run(f"ws://127.0.0.1:{silent_server}", protocol)
    assert result.reason is Reason.HANDSHAKE_STATUS
    assert "0.3s" in result.message


@pytest.mark.parametrize(
    "frame",
    ['{"type": "connection_ack"', '{"payload": 1}', '{"type": "surprise"}', "[1, 2]"],
    ids=["not-json", "no-type", "unknown-type", "not-an-object"],
)
async def test_malformed_messages_are_protocol_errors(frame: str) -> None:
    """Each malformed graphql-transport-ws message fails as protocol_error."""
    result = await answered_with(
        frame, subprotocol="graphql-transport-ws", protocol="graphql-transport-ws"
    )
    assert result.reason is Reason.PROTOCOL_ERROR, result.message
    assert "graphql-transport-ws" in result.message
