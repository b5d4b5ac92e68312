"""What a probe asserts about the handshake and the close: status, subprotocol,
close code, latency limits, and what it sends (compression, Origin, User-Agent)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from agent.result import Reason
from tests.servers import RawServer, accept_101, echo, make_check, timed_probe

#: How far past its deadline a probe may end.
# Every test here runs on both probe connections (tests/probes/conftest.py).
pytestmark = pytest.mark.usefixtures("engine")


SLACK = 0.1


async def close_1011(ws: ServerConnection) -> None:
    await ws.close(1011, "backend exploded")


async def close_4000_now(ws: ServerConnection) -> None:
    await ws.close(4000, "bye")


@pytest.mark.parametrize(
    ("handler", "pings", "expected", "success"),
    [
        (close_4000_now, 0, 4000, True),
        (close_4000_now, 3, 4000, True),
        (close_1011, 0, 4000, False),
    ],
    ids=["expected-code-no-pings", "expected-code-during-pings", "wrong-code"],
)
async def test_expect_close_code(
    ws_server: Any, handler: Any, pings: int, expected: int, success: bool
) -> None:
    """expect.close_code: the server must close with exactly that code."""
    url = await ws_server(handler)
    check = make_check(url, pings=pings, expect={"close_code": expected}, timeout=1.0)
    result, elapsed = await timed_probe(check)
    assert result.success is success, result.message
    assert elapsed <= check.timeout + SLACK
    if not success:
        assert result.reason is Reason.CLOSED
        assert "expected close code 4000" in result.message


@pytest.mark.parametrize(
    ("server_protocols", "requested", "expected", "reason"),
    [
        (["b"], ["a", "b"], "a", Reason.SUBPROTOCOL_MISMATCH),
        (["a"], ["a", "b"], "a", None),
        (["a"], ["a"], "", Reason.SUBPROTOCOL_MISMATCH),
        (None, [], "", None),
    ],
    ids=["server-picks-other", "server-picks-expected", "expected-none", "none-none"],
)
async def test_subprotocol_expectation(
    ws_server: Any,
    server_protocols: list[str] | None,
    requested: list[str],
    expected: str,
    reason: Reason | None,
) -> None:
    """The negotiated subprotocol must equal expect.subprotocol ('' = none)."""
    url = await ws_server(echo, subprotocols=server_protocols)
    check = make_check(url, subprotocols=requested, expect={"subprotocol": expected})
    result, elapsed = await timed_probe(check)
    assert result.reason is reason, result.message
    assert elapsed <= check.timeout + SLACK


async def test_server_choosing_unrequested_subprotocol_is_a_mismatch() -> None:
    """A 101 naming a subprotocol the probe never offered fails as subprotocol_mismatch."""

    async def rogue(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_101(reader, writer, extra="Sec-WebSocket-Protocol: rogue\r\n")
        await reader.read()

    async with RawServer(rogue) as srv:
        check = make_check(srv.url(), subprotocols=["chat"])
        result, elapsed = await timed_probe(check)
    assert result.reason is Reason.SUBPROTOCOL_MISMATCH
    assert "rogue" in result.message
    assert elapsed <= check.timeout + SLACK


def _require_bearer(ws: ServerConnection, request: Request) -> Response | None:
    if request.headers.get("Authorization") != "Bearer right":
        return ws.respond(401, "no\n")
    return None


@pytest.mark.parametrize(
    ("auth", "expect_status", "success", "reason"),
    [
        ({}, 401, True, None),
        ({"bearer": "right"}, 401, False, Reason.HANDSHAKE_STATUS),
        ({"bearer": "wrong"}, 101, False, Reason.HANDSHAKE_STATUS),
        ({"bearer": "right"}, 101, True, None),
    ],
    ids=[
        "negative-check-refused-as-expected",
        "negative-check-but-upgraded",
        "wrong-token",
        "right-token",
    ],
)
async def test_expected_status_including_negative_checks(
    ws_server: Any,
    auth: dict[str, str],
    expect_status: int,
    success: bool,
    reason: Reason | None,
) -> None:
    """expect.status: a 401 expected is a success; an upgrade then is handshake_status."""
    url = await ws_server(echo, process_request=_require_bearer)
    check = make_check(url, auth=auth, expect={"status": expect_status})
    result, elapsed = await timed_probe(check)
    assert result.success is success, result.message
    assert elapsed <= check.timeout + SLACK
    assert result.reason is reason
    if reason is Reason.HANDSHAKE_STATUS and expect_status == 401:
        assert "upgraded" in result.message


async def test_limits_mark_result_degraded_not_failed(ws_server: Any) -> None:
    """Phases over their limit are listed in degraded; the run still succeeds."""
    url = await ws_server()
    check = make_check(url, limits={"handshake": 0.0, "ping": 0.0, "resolve": 100.0})
    result, _ = await timed_probe(check)
    assert result.success
    assert sorted(result.degraded) == ["handshake", "ping"]


async def test_compression_is_off_unless_asked(ws_server: Any) -> None:
    """No permessage-deflate offered by default; negotiated when compression: true."""
    url = await ws_server()
    plain, _ = await timed_probe(make_check(url))
    deflate, _ = await timed_probe(make_check(url, compression=True))
    assert plain.extensions == []
    assert deflate.extensions == ["permessage-deflate"]


async def test_origin_only_sent_when_configured(ws_server: Any) -> None:
    """No Origin header unless the check sets one; User-Agent names wsprobe."""
    seen: list[Headers] = []

    def record(ws: ServerConnection, request: Request) -> None:
        seen.append(request.headers)

    url = await ws_server(echo, process_request=record)
    await timed_probe(make_check(url))
    await timed_probe(make_check(url, headers={"Origin": "https://app.example"}))
    assert "Origin" not in seen[0]
    assert seen[1]["Origin"] == "https://app.example"
    assert seen[0]["User-Agent"].startswith("wsprobe/")
