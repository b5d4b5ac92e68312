"""What the discarding connection checks as frames arrive, where websockets' reader would.

Each server case runs on both probe connections (the ``engine`` fixture): the discarding one must
fail (or not) exactly like websockets' ``ClientConnection`` does when reading.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest
from websockets.asyncio.messages import MAX_FRAGMENTS
from websockets.asyncio.server import ServerConnection

from agent.config import CheckConfig
from agent.probes.probe import uses_discarding_connection
from agent.result import Reason
from tests.servers import RawServer, accept_101, make_check, raw_frame, timed_probe

TEXT, BINARY, CONT, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9


def fragment(opcode: int, data: bytes, *, fin: bool) -> bytes:
    """An unmasked frame, final or not (payload < 126 bytes)."""
    assert len(data) < 126
    return bytes([(0x80 if fin else 0) | opcode, len(data)]) + data


def message(opcode: int, *parts: bytes) -> bytes:
    """One message in ``len(parts)`` frames."""
    frames = [fragment(opcode if i == 0 else CONT, p, fin=False) for i, p in enumerate(parts)]
    return b"".join(frames[:-1]) + fragment(
        opcode if len(parts) == 1 else CONT, parts[-1], fin=True
    )


class CloseRecorder:
    """Upgrade, send ``raw``, answer pings; record the close frame the client sends.

    ``go`` (set by default) holds ``raw`` back while cleared; with ``answer_close``
    False the close frame is not answered and TCP stays open until the client ends it.
    """

    def __init__(self, raw: bytes, *, answer_close: bool = True) -> None:
        self.raw = raw
        self.answer_close = answer_close
        self.closes: list[tuple[int, str]] = []
        self.go = asyncio.Event()
        self.go.set()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_101(reader, writer)
        await self.go.wait()
        writer.write(self.raw)
        for _ in range(100):  # bounded: a client sends a handful of frames
            opcode, data = await _client_frame(reader)
            if opcode == PING:
                writer.write(raw_frame(0xA, data))
            elif opcode == CLOSE:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                self.closes.append((code, data[2:].decode()))
                if not self.answer_close:
                    await reader.read()  # hold TCP open until the client ends it
                    return
                writer.write(raw_frame(CLOSE, data[:2]))
                await writer.drain()
                return
            await writer.drain()


async def _client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    mask = await reader.readexactly(4)
    data = await reader.readexactly(length)
    return head[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize(
    ("raw", "close"),
    [
        (message(TEXT, b"ab", b"c\xff"), (1007, "invalid start byte at position 3")),
        (message(TEXT, b"a\xc3", b"\xa9\xff"), (1007, "invalid start byte at position 3")),
        (message(TEXT, b"\xe2\x82", b"x"), (1007, "invalid continuation byte at position 0")),
        (
            message(TEXT, *([b"x"] * (MAX_FRAGMENTS + 1))),
            (1009, "too many fragments"),
        ),
    ],
    ids=["bad-byte-in-2nd-frame", "bad-byte-after-split-char", "truncated-char", "fragments"],
)
async def test_invalid_message_fails_the_connection_like_websockets(
    raw: bytes, close: tuple[int, str]
) -> None:
    """A bad fragmented message: same reason, same close frame (code and text) on both."""
    recorder = CloseRecorder(raw)
    async with RawServer(recorder) as srv:
        result, _ = await timed_probe(make_check(srv.url(), pings=3, timeout=2.0))
        async with asyncio.timeout(2.0):
            await srv.idle.wait()
    want = Reason.PROTOCOL_ERROR if close[0] == 1007 else Reason.MESSAGE_TOO_BIG
    assert result.reason is want, result.message
    assert recorder.closes == [close]


@pytest.mark.usefixtures("engine")
@pytest.mark.parametrize(
    "raw",
    [
        message(TEXT, "é€😀".encode()),
        message(TEXT, b"a\xc3", b"\xa9\xe2\x82", b"\xac"),
        message(BINARY, b"\xff\xfe", b"\x00"),
        message(TEXT, *([b"x"] * MAX_FRAGMENTS)),
        fragment(TEXT, b"unfinished", fin=False),
    ],
    ids=["utf8-one-frame", "utf8-split-across-frames", "binary", "max-fragments", "no-fin"],
)
async def test_valid_messages_are_discarded_and_pings_measured(raw: bytes) -> None:
    """Valid messages (split characters, binary, MAX_FRAGMENTS frames) never fail a probe."""
    recorder = CloseRecorder(raw)
    async with RawServer(recorder) as srv:
        result, _ = await timed_probe(make_check(srv.url(), pings=3))
    assert result.success, result.message
    assert len(result.pings) == 3
    assert recorder.closes == [(1000, "")]


async def test_bad_byte_fails_a_plain_probe_before_the_message_ends() -> None:
    """On the discarding connection a bad byte fails at once, not when the last fragment comes."""
    recorder = CloseRecorder(fragment(TEXT, b"ok\xff", fin=False))
    async with RawServer(recorder) as srv:
        result, _ = await timed_probe(make_check(srv.url(), pings=3))
        async with asyncio.timeout(2.0):
            await srv.idle.wait()  # the server has read our close frame
    assert result.reason is Reason.PROTOCOL_ERROR, result.message
    assert recorder.closes == [(1007, "invalid start byte at position 2")]


async def compressed_flood(ws: ServerConnection) -> None:
    # Compressible text and binary messages while the probe pings.
    for _ in range(200):
        await ws.send("abc" * 300)
        await ws.send(b"\x00" * 900)
        await asyncio.sleep(0)


@pytest.mark.usefixtures("engine")
async def test_compressed_messages_during_pings(ws_server: Any) -> None:
    """With permessage-deflate negotiated, compressed messages are discarded cleanly."""
    url = await ws_server(compressed_flood)
    result, _ = await timed_probe(make_check(url, compression=True, pings=5))
    assert result.success, result.message
    assert result.extensions == ["permessage-deflate"]
    assert len(result.pings) == 5


@pytest.mark.parametrize(
    ("fields", "discards"),
    [
        ({}, True),
        ({"compression": True, "subprotocols": ["chat"], "max_size": 10}, True),
        ({"auth": {"bearer": "t0ken-x"}}, True),
        ({"expect": {"close_code": 1000}}, False),
        ({"steps": [{"send": "hi"}]}, False),
        ({"proxy": "http://127.0.0.1:3128"}, False),
    ],
    ids=["plain", "negotiating", "bearer", "close-code", "steps", "proxy"],
)
def test_which_checks_discard_messages(fields: dict[str, Any], discards: bool) -> None:
    """Only probes that never read a message (no steps, close code or proxy) discard them."""
    check: CheckConfig = make_check("ws://127.0.0.1:9/", **fields)
    assert uses_discarding_connection(check) is discards
