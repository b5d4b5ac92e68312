"""Real servers on 127.0.0.1 for tests: well-behaved and deliberately broken ones.

Raw asyncio servers play the misbehaviours a real WebSocket library refuses to
(silence, banners, resets, never answering pings); ``websockets`` servers play the
well-behaved parts. Every server binds port 0 and is an async context manager.

Usage::

    async with RawServer(silent) as srv:
        url = srv.url()            # ws://127.0.0.1:PORT/
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from websockets.asyncio.server import ServerConnection

from agent.config import CheckConfig
from agent.probes import PROBES
from agent.result import ProbeResult

__all__ = [
    "Handler",
    "RawServer",
    "accept_101",
    "banner",
    "close_frame",
    "connect_proxy",
    "delayed_101",
    "delayed_pong",
    "delaying_relay",
    "echo",
    "free_port",
    "has_ipv6_loopback",
    "http_status",
    "make_check",
    "never_pong",
    "raw_frame",
    "read_request",
    "reset_after_101",
    "send_after_101",
    "silent",
    "silent_after_101",
    "text_frame",
    "timed_probe",
]

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """A TCP (optionally TLS) server running ``handler`` for each connection."""

    def __init__(self, handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.port = 0
        self.connections = 0
        #: Set when the first connection arrives (wait on it, never sleep).
        self.connected = asyncio.Event()
        #: Set while no connection handler is running.
        self.idle = asyncio.Event()
        self.idle.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def open_connections(self) -> int:
        """Connections whose handler is still running."""
        return len(self._writers)

    def url(self, path: str = "/", *, scheme: str | None = None, host: str = "127.0.0.1") -> str:
        """The ws(s):// URL of this server."""
        scheme = scheme or ("wss" if self.ssl_context else "ws")
        return f"{scheme}://{host}:{self.port}{path}"

    async def _run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.connected.set()
        self.idle.clear()
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.transport.abort()
            if not self._writers:
                self.idle.set()

    async def __aenter__(self) -> RawServer:
        tls: dict[str, Any] = {}
        if self.ssl_context is not None:
            tls = {"ssl": self.ssl_context, "ssl_handshake_timeout": 60}
        self._server = await asyncio.start_server(self._run, "127.0.0.1", 0, **tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        # Aborted transports end every handler (reads see EOF, writes fail). Cancelling
        # them instead trips asyncio's stream callback on 3.11, so it is a last resort.
        if self._tasks:
            _, stuck = await asyncio.wait(list(self._tasks), timeout=2.0)
            for task in stuck:
                task.cancel()
        await self._server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> dict[str, str]:
    """Read an HTTP request head; return its headers (lower-case names) plus ``:path``."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {":path": lines[0].split(" ")[1] if " " in lines[0] else ""}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return headers


async def accept_101(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    extra: str = "",
) -> dict[str, str]:
    """Read the upgrade request and answer a valid 101 (``extra``: more header lines)."""
    headers = await read_request(reader)
    key = headers.get("sec-websocket-key", "")
    digest = hashlib.sha1((key + _GUID).encode(), usedforsecurity=False).digest()  # RFC 6455
    accept = base64.b64encode(digest).decode()
    writer.write(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
        ).encode()
    )
    await writer.drain()
    return headers


def text_frame(text: str) -> bytes:
    """An unmasked (server-to-client) text frame."""
    data = text.encode()
    return _frame(0x1, data)


def close_frame(code: int, reason: str = "") -> bytes:
    """An unmasked close frame."""
    return _frame(0x8, struct.pack("!H", code) + reason.encode())


def raw_frame(opcode: int, data: bytes) -> bytes:
    """An unmasked frame with any opcode and payload (valid or not)."""
    return _frame(opcode, data)


def _frame(opcode: int, data: bytes) -> bytes:
    head = bytes([0x80 | opcode])
    if len(data) < 126:
        return head + bytes([len(data)]) + data
    if len(data) < 65536:
        return head + bytes([126]) + struct.pack("!H", len(data)) + data
    return head + bytes([127]) + struct.pack("!Q", len(data)) + data


async def _forever(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept TCP, then never send a byte (as TLS server: a handshake that never completes)."""
    await _forever(reader)


async def banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Speak another protocol: an SSH banner instead of HTTP."""
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
    await writer.drain()
    await _forever(reader)


def http_status(status: int, *, headers: str = "", body: bytes = b"") -> Handler:
    """Answer the upgrade request with a plain HTTP ``status`` (e.g. 401, 302)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            f"HTTP/1.1 {status} Nope\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        await _forever(reader)

    return handler


async def silent_after_101(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Upgrade, then never write again: pings are never answered."""
    await accept_101(reader, writer)
    await _forever(reader)


def send_after_101(raw: bytes) -> Handler:
    """Upgrade, then send ``raw`` bytes (e.g. an invalid frame) and keep reading."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_101(reader, writer)
        writer.write(raw)
        await writer.drain()
        await _forever(reader)

    return handler


async def never_pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Upgrade and keep sending messages, but never answer a ping."""
    await accept_101(reader, writer)
    reading = asyncio.create_task(_forever(reader))
    try:
        while True:
            writer.write(text_frame("tick"))
            await writer.drain()
            await asyncio.sleep(0.01)  # a live feed's pace, not a wait for a condition
    finally:
        reading.cancel()


async def reset_after_101(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Upgrade, then reset the TCP connection (RST, no close frame) at the first frame.

    Waiting for the client's first frame guarantees it has read the 101: Linux may
    drop unread data when an RST arrives.
    """
    await accept_101(reader, writer)
    await reader.read(1)
    sock = writer.get_extra_info("socket")
    # SO_LINGER with a zero timeout turns close() into an RST.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def echo(ws: ServerConnection) -> None:
    """websockets handler: send every message back."""
    async for message in ws:
        await ws.send(message)


def make_check(url: str, **fields: Any) -> CheckConfig:
    """A ``probe`` check of ``url`` with short test timeouts (override via ``fields``)."""
    fields.setdefault("timeout", 2.0)
    fields.setdefault("interval", 60.0)
    fields.setdefault("name", "test")
    return CheckConfig(url=url, **fields)


async def timed_probe(check: CheckConfig) -> tuple[ProbeResult, float]:
    """Run the check's probe; return the result and the wall time it took."""
    t0 = time.perf_counter()
    result = await PROBES[check.kind](check)
    return result, time.perf_counter() - t0


def free_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def connect_proxy(targets: list[str], *, refuse: int | None = None) -> Handler:
    """An HTTP CONNECT proxy; records each ``host:port`` asked for (``refuse``: answer that)."""

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.transport.abort()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        target = head.decode("latin-1").split(" ")[1]
        targets.append(target)
        if refuse is not None:
            writer.write(f"HTTP/1.1 {refuse} No\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            return
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.transport.abort()

    return handler


def delayed_101(delay: float) -> Handler:
    """Answer the upgrade after ``delay`` seconds (injected server think time)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers = await read_request(reader)
        await asyncio.sleep(delay)  # the injected delay itself, not a wait for a condition
        key = headers.get("sec-websocket-key", "")
        digest = hashlib.sha1((key + _GUID).encode(), usedforsecurity=False).digest()
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {base64.b64encode(digest).decode()}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        await _forever(reader)

    return handler


async def _client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one masked client frame: (opcode, unmasked payload)."""
    head = await reader.readexactly(2)
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    mask = await reader.readexactly(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(length)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def delayed_pong(delay: float) -> Handler:
    """Upgrade, then answer every ping ``delay`` seconds late (injected RTT)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_101(reader, writer)
        while True:
            opcode, data = await _client_frame(reader)
            if opcode == 0x9:
                await asyncio.sleep(delay)  # the injected delay itself
                writer.write(_frame(0xA, data))
            elif opcode == 0x8:
                writer.write(_frame(0x8, data))
                await writer.drain()
                return
            await writer.drain()

    return handler


def delaying_relay(port: int, *, first_reply_delay: float) -> Handler:
    """Relay to 127.0.0.1:``port``, holding the upstream's first bytes back ``delay`` s.

    In front of a TLS server that first reply is the ServerHello: the delay belongs
    to the ``tls`` phase.
    """

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float) -> None:
        first = True
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                if first and delay:
                    await asyncio.sleep(delay)  # the injected delay itself
                first = False
                dst.write(data)
                await dst.drain()
        dst.transport.abort()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await asyncio.gather(
                pipe(reader, up_writer, 0.0), pipe(up_reader, writer, first_reply_delay)
            )
        finally:
            up_writer.transport.abort()

    return handler


def has_ipv6_loopback() -> bool:
    """True when ::1 can be bound (IPv6 is often disabled in containers)."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True
