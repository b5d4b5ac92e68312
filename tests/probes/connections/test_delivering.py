"""The delivering connection hands over what websockets' ``recv()`` would have returned.

Each case runs against a real server twice: once read with ``recv()`` on a
:class:`ReadingConnection`, once taken over by a :class:`DeliveringConnection`: the
messages, the end (reason and message) and the close frame the server receives
must be the same.
"""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from websockets import exceptions as wsx
from websockets.asyncio.messages import MAX_FRAGMENTS
from websockets.asyncio.server import ServerConnection

from agent.probes.connections.delivering import DeliveringConnection
from agent.probes.connections.reading import ReadingConnection
from agent.probes.dial.opener import open_connection
from agent.probes.errors.mapping import translate
from agent.result import Reason, new_result
from tests.probes.connections.test_discarding import (
    TEXT,
    CloseRecorder,
    fragment,
    message,
)
from tests.servers import RawServer, _client_frame, accept_101, close_frame, make_check, raw_frame

BINARY = 0x2


class Sink:
    """Records what a delivering connection hands over."""

    def __init__(self) -> None:
        self.messages: list[str | bytes] = []
        self.ended: wsx.ConnectionClosed | None = None
        self.changed = asyncio.Event()

    def message_received(self, data: str | bytes) -> None:
        self.messages.append(data)
        self.changed.set()

    def connection_ended(self, exc: wsx.ConnectionClosed) -> None:
        assert self.ended is None, "ended twice"
        self.ended = exc
        self.changed.set()

    async def until(self, predicate: Callable[[], bool], *, timeout: float = 3.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


async def _open(url: str, **fields: Any) -> ReadingConnection:
    check = make_check(url, **fields)
    return await open_connection(check, new_result(check), deadline=time.perf_counter() + 3)


async def _read_all(conn: ReadingConnection) -> tuple[list[str | bytes], wsx.ConnectionClosed]:
    messages: list[str | bytes] = []
    while True:
        try:
            messages.append(await conn.recv())
        except wsx.ConnectionClosed as exc:
            return messages, exc


async def _deliver_all(
    conn: ReadingConnection,
) -> tuple[list[str | bytes], wsx.ConnectionClosed, DeliveringConnection]:
    sink = Sink()
    held = DeliveringConnection.take_over(conn, sink, close_timeout=1.0)
    await sink.until(lambda: sink.ended is not None)
    assert sink.ended is not None
    return sink.messages, sink.ended, held


async def _both(raw: bytes, **fields: Any) -> list[Any]:
    """(messages, reason, message, close frames received) for recv() and for delivery."""
    outcomes = []
    for read in (_read_all, _deliver_all):
        server = CloseRecorder(raw)
        async with RawServer(server) as srv:
            conn = await _open(srv.url(), **fields)
            async with asyncio.timeout(3.0):
                got = await read(conn)
                await srv.idle.wait()
        failure = translate(got[1], "watch")
        outcomes.append((got[0], failure.reason, str(failure), server.closes))
    return outcomes


ENDED_BY_SERVER = close_frame(1000, "done")


@pytest.mark.parametrize(
    "raw",
    [
        message(TEXT, "é€😀".encode()) + ENDED_BY_SERVER,
        message(TEXT, b"a\xc3", b"\xa9\xe2\x82", b"\xac")
        + message(TEXT, b"next")
        + ENDED_BY_SERVER,
        message(BINARY, b"\xff\xfe", b"\x00", b"!") + ENDED_BY_SERVER,
        message(TEXT, *([b"x"] * MAX_FRAGMENTS)) + ENDED_BY_SERVER,
        message(TEXT, b"ab", b"c\xff"),
        message(TEXT, b"\xe2\x82", b"x"),
        message(TEXT, *([b"x"] * (MAX_FRAGMENTS + 1))),
        message(TEXT, b"before") + raw_frame(0x3, b""),  # reserved opcode: 1002
        fragment(TEXT, b"unfinished", fin=False) + ENDED_BY_SERVER,
    ],
    ids=[
        "utf8-one-frame",
        "utf8-split-across-frames",
        "binary-fragments",
        "max-fragments",
        "bad-byte-in-2nd-frame",
        "truncated-char",
        "too-many-fragments",
        "protocol-error",
        "close-mid-message",
    ],
)
async def test_delivers_what_recv_returns(raw: bytes) -> None:
    """Messages, the end's reason and the close frame sent are those of websockets' recv()."""
    by_recv, by_callback = await _both(raw)
    assert by_callback == by_recv
    assert by_recv[3], "the client sent a close frame"


async def test_fragmented_message_over_max_size_is_message_too_big(ws_server: Any) -> None:
    """max_size holds for a whole fragmented message (a real websockets server sends it)."""

    async def fragmented(ws: ServerConnection) -> None:
        await ws.send(["a" * 300, "b" * 300])  # 600 bytes: fits
        await ws.send(["c" * 600, "d" * 600])  # 1,200 bytes: over
        await ws.wait_closed()

    url = await ws_server(fragmented)
    conn = await _open(url + "/", max_size=1000)
    messages, exc, _ = await _deliver_all(conn)
    assert messages == ["a" * 300 + "b" * 300]
    assert translate(exc, "watch").reason is Reason.MESSAGE_TOO_BIG
    assert exc.sent is not None
    assert exc.sent.code == 1009


async def test_messages_unread_before_take_over_come_first() -> None:
    """What arrived while the init steps ran, unread, is delivered first, in order."""
    server = CloseRecorder(
        message(TEXT, b"one") + message(TEXT, b"tw", b"o") + message(BINARY, b"3")
    )
    async with RawServer(server) as srv:
        conn = await _open(srv.url())
        async with asyncio.timeout(3.0):
            while len(conn.recv_messages.frames.queue) < 4:
                await asyncio.sleep(0)  # the frames are in flight on loopback
        sink = Sink()
        held = DeliveringConnection.take_over(conn, sink, close_timeout=1.0)
        assert sink.messages == []  # from the next loop turn, not inside take_over
        await sink.until(lambda: len(sink.messages) == 3)
        assert sink.messages == ["one", "two", b"3"]
        await held.close()
    assert server.closes == [(1000, "")]


async def test_upgrade_response_released_and_frames_parsed_after_take_over() -> None:
    """Taken over between frames, the upgrade's response goes; later frames parse as before."""
    server = CloseRecorder(
        message(TEXT, b"one")
        + message(TEXT, b"t", b"w", b"o")
        + raw_frame(0x9, b"hb")
        + close_frame(1000, "done")
    )
    server.go.clear()  # nothing after the 101 until the take-over is done
    async with RawServer(server) as srv:
        conn = await _open(srv.url())
        response = weakref.ref(conn.response) if conn.response is not None else None
        assert response is not None
        sink = Sink()
        DeliveringConnection.take_over(conn, sink, close_timeout=1.0)
        del conn
        gc.collect()
        assert response() is None
        server.go.set()
        await sink.until(lambda: sink.ended is not None)
    assert sink.messages == ["one", "two"]
    assert translate(sink.ended, "watch").reason is Reason.CLOSED
    assert server.closes == [(1000, "done")]


async def test_connection_lost_before_take_over_is_reported() -> None:
    """A connection that ended during the init steps ends at once after its messages."""
    server = CloseRecorder(message(TEXT, b"last") + close_frame(1012, "restart"))
    async with RawServer(server) as srv:
        conn = await _open(srv.url())
        async with asyncio.timeout(3.0):
            await conn.wait_closed()
        messages, exc, _ = await _deliver_all(conn)
    assert messages == ["last"]
    assert translate(exc, "watch").reason is Reason.CLOSED
    assert exc.rcvd is not None
    assert (exc.rcvd.code, exc.rcvd.reason) == (1012, "restart")


async def test_ping_rtt_and_pong_lost_with_the_connection() -> None:
    """A ping resolves with its RTT; one pending when the connection ends fails."""
    server = CloseRecorder(b"")
    async with RawServer(server) as srv:
        conn = await _open(srv.url())
        sink = Sink()
        held = DeliveringConnection.take_over(conn, sink, close_timeout=1.0)
        async with asyncio.timeout(3.0):
            rtt = await (await held.ping())
        assert 0 < rtt < 3.0
    mute = CloseRecorder(b"")
    mute.go.clear()  # never answers anything
    async with RawServer(mute) as srv:
        conn = await _open(srv.url())
        sink = Sink()
        held = DeliveringConnection.take_over(conn, sink, close_timeout=1.0)
        pong = await held.ping()
        held.transport.abort()
        with pytest.raises(wsx.ConnectionClosed):
            async with asyncio.timeout(3.0):
                await pong
        await sink.until(lambda: sink.ended is not None)


async def test_server_pings_are_answered() -> None:
    """The server's pings get their pongs from the protocol (nothing reads them)."""
    pongs: list[bytes] = []

    async def pinging(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_101(reader, writer)
        writer.write(raw_frame(0x9, b"are you there"))
        opcode, data = await _client_frame(reader)
        if opcode == 0xA:
            pongs.append(data)
        writer.write(close_frame(1000))
        await _client_frame(reader)

    async with RawServer(pinging) as srv:
        conn = await _open(srv.url())
        sink = Sink()
        DeliveringConnection.take_over(conn, sink, close_timeout=1.0)
        await sink.until(lambda: sink.ended is not None)
    assert pongs == [b"are you there"]


async def test_close_is_bounded_when_the_peer_keeps_tcp_open() -> None:
    """close() sends its code and aborts after close_timeout if TCP is not ended."""
    server = CloseRecorder(b"", answer_close=False)
    async with RawServer(server) as srv:
        conn = await _open(srv.url())
        sink = Sink()
        held = DeliveringConnection.take_over(conn, sink, close_timeout=0.2)
        t0 = time.perf_counter()
        async with asyncio.timeout(3.0):
            await held.close(1001, "going away")
        # Not before close_timeout (uvloop's clock may fire a timer ~1 ms early).
        assert 0.19 <= time.perf_counter() - t0 < 2.0
        assert sink.ended is not None
        assert isinstance(sink.ended.__cause__, TimeoutError)
    assert server.closes == [(1001, "going away")]


async def test_server_close_without_tcp_end_is_bounded() -> None:
    """After the server's close frame, a peer that keeps TCP open is cut at close_timeout."""

    async def lingering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_101(reader, writer)
        writer.write(close_frame(1001, "away"))
        await reader.read()  # reads the client's close, keeps TCP open

    async with RawServer(lingering) as srv:
        conn = await _open(srv.url())
        sink = Sink()
        DeliveringConnection.take_over(conn, sink, close_timeout=0.2)
        await sink.until(lambda: sink.ended is not None)
    assert sink.ended is not None
    assert sink.ended.rcvd is not None
    assert sink.ended.rcvd.code == 1001


async def test_reply_sent_from_the_callback(ws_server: Any) -> None:
    """send() from the message callback reaches the server at once (text and binary)."""
    got: list[str | bytes] = []

    async def asks(ws: ServerConnection) -> None:
        await ws.send("ping")
        got.append(await ws.recv())
        got.append(await ws.recv())

    url = await ws_server(asks)
    conn = await _open(url + "/")

    class Replying(Sink):
        def message_received(self, data: str | bytes) -> None:
            super().message_received(data)
            held.send("pong")
            held.send(b"\x00")

    sink = Replying()
    held = DeliveringConnection.take_over(conn, sink, close_timeout=1.0)
    await sink.until(lambda: sink.ended is not None)
    assert got == ["pong", b"\x00"]
