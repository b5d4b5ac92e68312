"""The connection interface's contract, held against both connections and real servers.

Every test runs once on the reading connection and once on the discarding one, through
the interface only (:class:`agent.probes.connections.base.Connection`): the same
stamps, the same ping RTT, the same close code, the same failure reasons.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets import exceptions as wsx
from websockets.asyncio.server import ServerConnection, serve
from websockets.protocol import State

from agent.config import CheckConfig
from agent.probes.connections.base import Connection
from agent.probes.dial.opener import (
    close_connection,
    open_connection,
    open_discarding_connection,
)
from agent.probes.errors.mapping import translate
from agent.result import ProbeResult, Reason, new_result
from tests.conftest import TLSFiles
from tests.servers import (
    RawServer,
    echo,
    make_check,
    raw_frame,
    reset_after_101,
    send_after_101,
    text_frame,
)

Opener = Callable[[CheckConfig, ProbeResult], Awaitable[Connection]]


async def _reading(check: CheckConfig, result: ProbeResult) -> Connection:
    return await open_connection(check, result, deadline=time.perf_counter() + check.timeout)


async def _discarding(check: CheckConfig, result: ProbeResult) -> Connection:
    deadline = time.perf_counter() + check.timeout
    return await open_discarding_connection(check, result, deadline=deadline)


@pytest.fixture(params=["reading", "discarding"])
def opener(request: pytest.FixtureRequest) -> Opener:
    """Opens a connection of one kind; the contract holds for both."""
    return _reading if request.param == "reading" else _discarding


@pytest.fixture
async def conns() -> AsyncIterator[list[Connection]]:
    """Connections opened by a test, aborted after it whatever happened."""
    opened: list[Connection] = []
    yield opened
    for conn in opened:
        conn.transport.abort()


async def _open(opener: Opener, check: CheckConfig, opened: list[Connection]) -> Connection:
    conn = await opener(check, new_result(check))
    opened.append(conn)
    return conn


async def _ping_failure(conn: Connection) -> Exception:
    """Ping while reading as a probe does; return the library exception that ended it."""
    reading = asyncio.create_task(conn.discard_until_closed())
    try:
        async with asyncio.timeout(2.0):
            await (await conn.ping())
    except wsx.ConnectionClosed as exc:
        return exc
    finally:
        reading.cancel()
    raise AssertionError("the ping succeeded")


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
async def test_stamps_and_ping_rtt(
    opener: Opener, conns: list[Connection], tls_files: TLSFiles, secure: bool
) -> None:
    """Stamps come in phase order, and a ping's RTT ends at its pong's stamp."""
    ssl = tls_files.server_context() if secure else None
    async with serve(echo, "127.0.0.1", 0, ssl=ssl) as server:
        port = server.sockets[0].getsockname()[1]
        scheme = "wss" if secure else "ws"
        check = make_check(f"{scheme}://127.0.0.1:{port}/", tls={"ca_file": tls_files.ca_file})
        result = new_result(check)
        before = time.perf_counter()
        conn = await opener(check, result)
        conns.append(conn)
        assert conn.state is State.OPEN
        assert conn.ready_at is not None
        assert conn.request_at is not None
        assert conn.response_at is not None
        assert before < conn.ready_at <= conn.request_at <= conn.response_at
        assert (result.tls is not None) is secure
        assert conn.pong_at is None
        for _ in range(3):
            sent = time.perf_counter()
            await (await conn.ping())
            done = time.perf_counter()
            assert conn.pong_at is not None
            assert sent < conn.pong_at <= done
        assert conn.closing_marked is False
        await close_connection(conn, result, timeout=1.0)
    assert conn.state is State.CLOSED
    assert result.close_code == 1000


async def test_server_close_code(opener: Opener, conns: list[Connection]) -> None:
    """A server's close is seen at once, with its code and reason, and fails the next ping."""

    async def close_4000(ws: ServerConnection) -> None:
        await ws.close(4000, "bye")

    async with serve(close_4000, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        check = make_check(f"ws://127.0.0.1:{port}/")
        conn = await _open(opener, check, conns)
        reading = asyncio.create_task(conn.discard_until_closed())
        async with asyncio.timeout(2.0):
            await conn.wait_closing()
        reading.cancel()
        assert conn.closing_marked
        with pytest.raises(wsx.ConnectionClosed) as caught:
            await (await conn.ping())
        error = translate(caught.value, "ping")
        assert error.reason is Reason.CLOSED
        assert "4000" in str(error)
        assert "bye" in str(error)
        result = new_result(check)
        await close_connection(conn, result, timeout=1.0)
    assert (result.close_code, result.close_reason) == (4000, "bye")


# Frames a server must never send: the reason and what the message must name, on both.
_MISBEHAVIOURS = {
    "masked-frame": (
        bytes([0x81, 0x82]) + b"\x01\x02\x03\x04" + b"hi",
        Reason.PROTOCOL_ERROR,
        "the server sent a masked frame (closed with code 1002)",
    ),
    "fragmented-control": (
        bytes([0x09, 0x00]),
        Reason.PROTOCOL_ERROR,
        "the server sent a fragmented control frame (closed with code 1002)",
    ),
    "rsv1-without-extension": (
        bytes([0xC1, 0x01]) + b"x",
        Reason.PROTOCOL_ERROR,
        "a frame has an RSV bit set that no extension negotiated (closed with code 1002)",
    ),
    "invalid-utf8": (
        raw_frame(0x1, b"ok\xff"),
        Reason.PROTOCOL_ERROR,
        "invalid UTF-8 in a text message (invalid start byte at position 2; closed with code 1007)",
    ),
    "unknown-opcode": (
        raw_frame(0x3, b""),
        Reason.PROTOCOL_ERROR,
        "the server sent a frame with a reserved opcode (closed with code 1002)",
    ),
    "too-big": (text_frame("x" * 200), Reason.MESSAGE_TOO_BIG, "larger than max_size"),
    "close-1011": (
        raw_frame(0x8, struct.pack("!H", 1011) + b"boom"),
        Reason.CLOSED,
        "server closed the connection with code 1011 ('boom')",
    ),
}


@pytest.mark.parametrize("name", list(_MISBEHAVIOURS))
async def test_misbehaving_server_reasons(
    opener: Opener, conns: list[Connection], name: str
) -> None:
    """A server breaking the protocol fails a pending ping with the same reason on both."""
    raw, reason, text = _MISBEHAVIOURS[name]
    async with RawServer(send_after_101(raw)) as srv:
        conn = await _open(opener, make_check(srv.url(), max_size=100), conns)
        error = translate(await _ping_failure(conn), "ping")
    assert error.reason is reason, str(error)
    assert text in str(error)
    assert conn.closing_marked


async def test_reset_after_upgrade(opener: Opener, conns: list[Connection]) -> None:
    """A TCP reset after the 101 reads as a lost connection (1006) naming the reset."""
    async with RawServer(reset_after_101) as srv:
        conn = await _open(opener, make_check(srv.url()), conns)
        error = translate(await _ping_failure(conn), "ping")
    assert error.reason is Reason.CLOSED
    assert "1006" in str(error)
    assert "reset" in str(error)
