"""Against another WebSocket implementation (aiohttp's server), not just websockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from agent.result import Reason
from tests.servers import make_check, timed_probe

# Every test here runs on both probe connections (tests/probes/conftest.py).
pytestmark = pytest.mark.usefixtures("engine")


async def _echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("chat.v1",))
    await ws.prepare(request)
    async for message in ws:
        await ws.send_str(message.data)
    return ws


async def _go_away(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.close(code=4002, message=b"go away")
    return ws


@pytest.fixture
async def aiohttp_url() -> AsyncIterator[str]:
    """ws://127.0.0.1:PORT of an aiohttp app with /ws (echo) and /close (closes 4002)."""
    app = web.Application()
    app.router.add_get("/ws", _echo)
    app.router.add_get("/close", _go_away)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"ws://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize(
    ("path", "fields", "reason", "check_result"),
    [
        ("/ws", {}, None, {"close_code": 1000, "extensions": []}),
        (
            "/ws",
            {"subprotocols": ["chat.v1"], "expect": {"subprotocol": "chat.v1"}},
            None,
            {"subprotocol": "chat.v1"},
        ),
        ("/ws", {"compression": True}, None, {"extensions": ["permessage-deflate"]}),
        ("/close", {}, Reason.CLOSED, {"close_code": 4002}),
        ("/close", {"expect": {"close_code": 4002}}, None, {"close_code": 4002}),
        ("/missing", {}, Reason.HANDSHAKE_STATUS, {"status_code": 404}),
    ],
    ids=["echo", "subprotocol", "deflate", "server-closes", "expected-close", "404"],
)
async def test_aiohttp_server(
    aiohttp_url: str,
    path: str,
    fields: dict[str, Any],
    reason: Reason | None,
    check_result: dict[str, Any],
) -> None:
    """Negotiation, pings, close codes and refusals work the same against aiohttp."""
    check = make_check(aiohttp_url + path, **fields)
    result, elapsed = await timed_probe(check)
    assert result.reason is reason, result.message
    for field, value in check_result.items():
        assert getattr(result, field) == value, field
    if path == "/ws":
        assert len(result.pings) == check.pings
    assert elapsed <= check.timeout + 0.1
