"""The ``probe`` kind against real, sometimes misbehaving, servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from typing import Any

import pytest
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from agent.result import Reason
from tests.servers import (
    Handler,
    RawServer,
    banner,
    close_frame,
    echo,
    free_port,
    has_ipv6_loopback,
    http_status,
    make_check,
    never_pong,
    raw_frame,
    reset_after_101,
    send_after_101,
    silent,
    silent_after_101,
    timed_probe,
)

#: How far past its deadline a probe may end.
# Every test here runs on both probe connections (tests/probes/conftest.py).
pytestmark = pytest.mark.usefixtures("engine")


SLACK = 0.1


async def flood(ws: ServerConnection) -> None:
    # Bursts far above the 16-frame receive queue; the yield between bursts only keeps
    # this in-process server from starving the probe sharing its event loop.
    while True:
        for _ in range(64):
            await ws.send("x" * 200)
        await asyncio.sleep(0)


async def oversized(ws: ServerConnection) -> None:
    await ws.send("y" * 5000)
    await ws.wait_closed()


async def close_1011(ws: ServerConnection) -> None:
    await ws.close(1011, "backend exploded")


async def test_echo_server_succeeds_with_every_phase_and_ping_measured(ws_server: Any) -> None:
    """A healthy server gives success, each phase timed, N RTTs and a normal close."""
    url = await ws_server()
    result, elapsed = await timed_probe(make_check(url + "/", pings=4))
    assert result.success, result.message
    assert result.reason is None
    assert set(result.phases) >= {"resolve", "connect", "handshake", "ping", "total", "close"}
    assert "tls" not in result.phases
    assert len(result.pings) == 4
    assert all(rtt > 0 for rtt in result.pings)
    assert result.status_code == 101
    assert result.peer_ip == "127.0.0.1"
    assert result.close_code == 1000
    assert result.phases["total"] >= result.phases["handshake"] + result.phases["ping"]
    assert elapsed < 2.0


@pytest.mark.parametrize(
    ("handler", "scheme", "fields", "reason", "status"),
    [
        (silent, "ws", {}, Reason.HANDSHAKE_TIMEOUT, None),
        (silent, "wss", {}, Reason.TLS_HANDSHAKE, None),
        (http_status(401), "ws", {}, Reason.HANDSHAKE_STATUS, 401),
        (http_status(403), "ws", {}, Reason.HANDSHAKE_STATUS, 403),
        (http_status(500), "ws", {}, Reason.HANDSHAKE_STATUS, 500),
        (banner, "ws", {}, Reason.HANDSHAKE_INVALID, None),
        (silent_after_101, "ws", {"ping_timeout": 0.2}, Reason.PING_TIMEOUT, 101),
        (never_pong, "ws", {"ping_timeout": 0.2}, Reason.PING_TIMEOUT, 101),
        (silent_after_101, "ws", {"ping_timeout": 5}, Reason.PING_TIMEOUT, 101),
        (reset_after_101, "ws", {}, Reason.CLOSED, 101),
        (send_after_101(raw_frame(0x1, b"\xff\xfe")), "ws", {}, Reason.PROTOCOL_ERROR, 101),
        (send_after_101(raw_frame(0x3, b"")), "ws", {}, Reason.PROTOCOL_ERROR, 101),
        (send_after_101(close_frame(1011, "bye")), "ws", {}, Reason.CLOSED, 101),
        (
            http_status(302, headers="Location: /elsewhere?token=hunter22\r\n"),
            "ws",
            {},
            Reason.REDIRECT,
            302,
        ),
    ],
    ids=[
        "silent-listener",
        "tls-never-completes",
        "http-401",
        "http-403",
        "http-500",
        "ssh-banner",
        "silent-after-101",
        "never-pong-while-sending",
        "deadline-before-ping-timeout",
        "reset-after-101",
        "invalid-utf8-text",
        "reserved-opcode",
        "close-frame-1011",
        "redirect-not-allowed",
    ],
)
async def test_misbehaving_server_fails_with_its_reason_within_deadline(
    handler: Handler,
    scheme: str,
    fields: dict[str, Any],
    reason: Reason,
    status: int | None,
) -> None:
    """Each misbehaviour yields exactly its reason, before the deadline plus slack."""
    async with RawServer(handler) as srv:
        check = make_check(srv.url(scheme=scheme), timeout=0.6, **fields)
        result, elapsed = await timed_probe(check)
    assert result.reason is reason, result.message
    assert not result.success
    assert result.message
    assert result.status_code == status
    assert elapsed <= check.timeout + SLACK


async def test_redirect_message_names_status_and_redacted_location() -> None:
    """A refused redirect names the status and the Location without its token."""
    handler = http_status(301, headers="Location: ws://other.test/x?token=hunter22\r\n")
    async with RawServer(handler) as srv:
        result, _ = await timed_probe(make_check(srv.url()))
    assert "301" in result.message
    assert "other.test/x?token=REDACTED" in result.message
    assert "hunter22" not in result.message


async def test_redirect_followed_when_allowed(ws_server: Any) -> None:
    """With follow_redirects, a 302 to a live server is followed and succeeds."""
    target = await ws_server()
    async with RawServer(http_status(302, headers=f"Location: {target}/\r\n")) as srv:
        result, _ = await timed_probe(make_check(srv.url(), follow_redirects=True))
    assert result.success, result.message
    assert result.status_code == 101


async def test_redirect_loop_stops_at_max_redirects() -> None:
    """A redirect loop fails as redirect after max_redirects hops."""
    async with RawServer(http_status(307, headers="Location: /again\r\n")) as srv:
        check = make_check(srv.url(), follow_redirects=True, max_redirects=2)
        result, _ = await timed_probe(check)
        assert srv.connections == 3
    assert result.reason is Reason.REDIRECT
    assert "more than 2 redirects" in result.message


@pytest.mark.parametrize(
    ("fields", "reason"),
    [({"ip_version": "4"}, Reason.CONNECT_REFUSED), ({}, Reason.CONNECT_REFUSED)],
    ids=["ipv4-only", "auto"],
)
async def test_refused_port_fails_as_connect_refused(
    fields: dict[str, Any], reason: Reason
) -> None:
    """Nothing listening fails as connect_refused, naming the address."""
    port = free_port()
    result, elapsed = await timed_probe(make_check(f"ws://127.0.0.1:{port}/", **fields))
    assert result.reason is reason
    assert f"127.0.0.1:{port}" in result.message
    assert elapsed <= 2.0 + SLACK


async def test_unresolvable_name_fails_as_dns() -> None:
    """A name under .invalid never resolves: reason dns, message names the host."""
    check = make_check("ws://no-such-host.invalid/", timeout=3.0)
    result, elapsed = await timed_probe(check)
    assert result.reason is Reason.DNS
    assert "no-such-host.invalid" in result.message
    assert "resolve" in result.phases
    assert elapsed <= check.timeout + SLACK


async def test_localhost_name_is_resolved_and_connected(ws_server: Any) -> None:
    """A host name goes through the resolver and connects to an address it returned."""
    url = (await ws_server()).replace("127.0.0.1", "localhost")
    result, _ = await timed_probe(make_check(url + "/", ip_version="4"))
    assert result.success, result.message
    assert result.peer_ip == "127.0.0.1"


async def test_message_flood_during_pings_is_not_a_ping_timeout(ws_server: Any) -> None:
    """A server flooding messages still gets every ping measured (reader keeps draining)."""
    url = await ws_server(flood)
    result, _ = await timed_probe(make_check(url, pings=5, ping_timeout=1.0))
    assert result.success, result.message
    assert len(result.pings) == 5


async def test_oversized_message_fails_as_message_too_big(ws_server: Any) -> None:
    """A message larger than max_size fails as message_too_big."""
    url = await ws_server(oversized)
    check = make_check(url, max_size=1000, timeout=1.0)
    result, elapsed = await timed_probe(check)
    assert result.reason is Reason.MESSAGE_TOO_BIG, result.message
    assert elapsed <= check.timeout + SLACK


async def test_unexpected_close_code_fails_as_closed_naming_the_code(ws_server: Any) -> None:
    """A server closing with 1011 fails as closed; code and reason are reported."""
    url = await ws_server(close_1011)
    check = make_check(url, timeout=1.0)
    result, elapsed = await timed_probe(check)
    assert result.reason is Reason.CLOSED
    assert "1011" in result.message
    assert result.close_code == 1011
    assert result.close_reason == "backend exploded"
    assert elapsed <= check.timeout + SLACK


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_literal_connects_and_reports_peer_ip() -> None:
    """ws://[::1]:port/ connects over IPv6 and reports ::1 as the peer."""
    async with serve(echo, "::1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        result, _ = await timed_probe(make_check(f"ws://[::1]:{port}/"))
        wrong_family, _ = await timed_probe(make_check(f"ws://[::1]:{port}/", ip_version="4"))
    assert result.success, result.message
    assert result.peer_ip == "::1"
    assert wrong_family.reason is Reason.DNS
    assert "IPv4" in wrong_family.message


async def test_oauth2_token_is_sent_as_bearer(ws_server: Any) -> None:
    """auth.oauth2 (use: bearer): the token from the token endpoint is the Authorization."""

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "oa-555", "expires_in": 60})

    app = web.Application()
    app.router.add_post("/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    seen: list[str | None] = []

    def record(ws: ServerConnection, request: Request) -> None:
        seen.append(request.headers.get("Authorization"))

    try:
        url = await ws_server(echo, process_request=record)
        oauth2 = {
            "token_url": f"http://127.0.0.1:{runner.addresses[0][1]}/token",
            "client_id": "probe",
            "client_secret": "cs-1",
        }
        result, _ = await timed_probe(make_check(url, auth={"oauth2": oauth2}))
    finally:
        await runner.cleanup()
    assert result.success, result.message
    assert seen == ["Bearer oa-555"]


async def test_reset_after_101_message_says_reset() -> None:
    """A TCP reset after the upgrade is named as such, not just as a missing close frame."""
    async with RawServer(reset_after_101) as srv:
        result, _ = await timed_probe(make_check(srv.url(), timeout=1.0))
    assert result.reason is Reason.CLOSED
    assert "1006" in result.message
    assert "reset by peer" in result.message


@pytest.mark.parametrize(
    ("scheme", "reason", "pattern"),
    [
        ("ws", Reason.HANDSHAKE_TIMEOUT, r"no response to the WebSocket upgrade request: waited "),
        ("wss", Reason.TLS_HANDSHAKE, r"TLS handshake failed: timed out after "),
    ],
    ids=["handshake", "tls"],
)
async def test_phase_timeouts_name_the_phase_and_time_waited(
    scheme: str, reason: Reason, pattern: str
) -> None:
    """A deadline passing in TLS or the upgrade names that phase and how long it waited."""
    async with RawServer(silent) as srv:
        result, _ = await timed_probe(make_check(srv.url(scheme=scheme), timeout=0.5))
    assert result.reason is reason, result.message
    assert re.fullmatch(pattern + r"0\.[45]\ds", result.message), result.message


async def test_connect_timeout_names_the_address() -> None:
    """A listener whose accept queue is full drops SYNs: connect_timeout, naming the address."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):  # more than the queue holds (backlog 0: one)
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
                fillers.append(sock)
            result, elapsed = await timed_probe(make_check(f"ws://127.0.0.1:{port}/", timeout=0.5))
        finally:
            for sock in fillers:
                sock.close()
    assert result.reason is Reason.CONNECT_TIMEOUT, result.message
    assert result.message == f"TCP connect timed out: 127.0.0.1:{port}"
    assert elapsed <= 0.5 + SLACK


async def test_connect_that_completes_later_is_timed_to_its_completion() -> None:
    """A SYN dropped once (accept queue full) connects on its retransmission ~1 s later:
    the probe waits for the socket to become connected and times connect to that."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):  # more than the queue holds (backlog 0: one)
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            fillers.append(sock)
        probe = asyncio.ensure_future(
            timed_probe(make_check(f"ws://127.0.0.1:{port}/", timeout=3.0, pings=0))
        )
        await asyncio.sleep(0.2)  # the probe's first SYN has been dropped by now
        for sock in fillers:
            sock.close()
        while not probe.done():  # make room: accept (and close) whatever arrives
            with contextlib.suppress(BlockingIOError):
                listener.accept()[0].close()
            await asyncio.sleep(0.01)
        result, _ = await probe
    # Connected at the SYN's retransmission; then the server closed before answering.
    assert result.phases["connect"] >= 0.9, result.phases
    assert result.reason is not None
    assert not result.reason.value.startswith("connect"), result.message


async def garbage_then_hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer the upgrade with something that is not HTTP, then hold the socket open."""
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
    await writer.drain()
    await asyncio.sleep(10)  # ended by RawServer's exit: the probe must not wait for it


async def test_invalid_response_fails_at_once_even_if_the_socket_stays_open() -> None:
    """An unparsable upgrade response is handshake_invalid at once, not a timeout."""
    async with RawServer(garbage_then_hold) as srv:
        result, elapsed = await timed_probe(make_check(srv.url(), timeout=1.0))
    assert result.reason is Reason.HANDSHAKE_INVALID, result.message
    assert elapsed < 0.5
