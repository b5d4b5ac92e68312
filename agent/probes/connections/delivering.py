"""A held connection that hands each message to a callback: no task, no queue.

A watch session holds its connection for hours and reads every message at once, so
websockets' reading machinery (the message ``Assembler`` with its queue, the
connection's futures, and a task parked in ``recv()`` with its await chain) is the
largest part of what it keeps. Connecting and the init steps still run on a
:class:`~agent.probes.connections.reading.ReadingConnection` (they read replies with
``recv()``); then :meth:`DeliveringConnection.take_over` moves the transport and
websockets' Sans-I/O ``ClientProtocol`` (parsing, limits, compression, the close
handshake stay websockets') to this small protocol object, and the reading
connection is dropped.

From then on, as in :class:`~agent.probes.connections.discarding.DiscardingConnection`,
``data_received`` drives the protocol: a complete message goes to
:meth:`Sink.message_received`, a pong resolves the ping waiter, and the end of the
connection goes to :meth:`Sink.connection_ended` with the exception websockets'
``recv()`` would have raised (its ``close_exc``, caused by what broke the connection).
What the Assembler checked when a message was read is checked as it completes, with
websockets' close codes and texts: more than ``MAX_FRAGMENTS`` frames fail the
connection with 1009 ``"too many fragments"``, a text message that is not UTF-8 with
1007 ``"<reason> at position <n>"``; ``max_size`` is the protocol's own limit (1009).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Protocol, cast

from websockets import ClientProtocol
from websockets import exceptions as wsx
from websockets.asyncio.messages import MAX_FRAGMENTS
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Protocol as SansIO
from websockets.protocol import State
from websockets.streams import StreamReader

from agent.probes.connections._shared import write_pending
from agent.probes.connections.reading import ReadingConnection

__all__ = ["DeliveringConnection", "Sink"]

_getrandbits = random.getrandbits
_FRAME_PARSER = SansIO.parse.__code__
_BETWEEN_FRAMES = StreamReader.at_eof.__code__
_OPEN, _CLOSED = State.OPEN, State.CLOSED
_TEXT, _BINARY, _CONT, _PONG = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG


class Sink(Protocol):
    """Who receives a :class:`DeliveringConnection`'s messages and its end."""

    def message_received(self, data: str | bytes, /) -> None:
        """One complete message (text as ``str``, binary as ``bytes``)."""

    def connection_ended(self, exc: wsx.ConnectionClosed, /) -> None:
        """The TCP connection is gone; ``exc`` is what ``recv()`` would have raised."""


class DeliveringConnection(asyncio.Protocol):
    """An open WebSocket connection whose messages go to a :class:`Sink` as they complete.

    Made by :meth:`take_over`. Thousands are held at once, so it keeps only the
    transport, the protocol, the sink and the state of what is in progress (a
    fragmented message, one ping, a close); every other field is made when needed.
    """

    __slots__ = (
        "_closed",
        "_closer",
        "_failed",
        "_parts",
        "_ping",
        "close_timeout",
        "connection_exc",
        "protocol",
        "sink",
        "transport",
    )

    def __init__(
        self,
        protocol: ClientProtocol,
        transport: asyncio.Transport,
        sink: Sink,
        *,
        close_timeout: float,
    ) -> None:
        self.protocol = protocol
        self.transport = transport
        self.sink = sink
        self.close_timeout = close_timeout
        self.connection_exc: BaseException | None = None
        # The frames of a fragmented message in progress.
        self._parts: list[Frame] | None = None
        # The one ping in flight: payload, pong waiter, when sent.
        self._ping: tuple[bytes, asyncio.Future[float], float] | None = None
        # Aborts the transport if the peer does not end TCP after the close frames.
        self._closer: asyncio.TimerHandle | None = None
        # Completed on connection_lost, for close(); made by close() only.
        self._closed: asyncio.Future[None] | None = None
        # A message failed the connection: nothing more is delivered.
        self._failed = False

    @classmethod
    def take_over(
        cls, conn: ReadingConnection, sink: Sink, *, close_timeout: float
    ) -> DeliveringConnection:
        """Move ``conn``'s transport and protocol to a new delivering connection.

        Messages ``conn`` received but nobody read are delivered first (from the next
        loop turn, so ``sink`` sees none before this returns). If ``conn`` already
        lost its TCP connection, ``sink.connection_ended`` follows them.

        Args:
            conn: an open reading connection no task reads from any more (its init
                steps are done); it must not be used afterwards.
            sink: receives the messages and the end of the connection.
            close_timeout: seconds the peer gets to end TCP once close frames were
                exchanged, before the transport is aborted.

        Returns:
            The connection now receiving the transport's callbacks.
        """
        protocol = conn.protocol
        # websockets wrapped its logger with a weak proxy to ``conn``, which dies now.
        if isinstance(protocol.logger, logging.LoggerAdapter):
            protocol.logger = protocol.logger.logger
        self = cls(protocol, conn.transport, sink, close_timeout=close_timeout)
        self.connection_exc = conn.connection_exc
        frames = list(conn.recv_messages.frames.queue)
        lost = conn.connection_lost_waiter.done()
        if not lost:
            _forget_handshake(protocol)
            self.transport.set_protocol(self)
            if conn.recv_messages.paused:  # the assembler's flow control paused reading
                self.transport.resume_reading()
            if protocol.close_expected():
                self._arm_closer()
        if frames or lost:
            asyncio.get_running_loop().call_soon(self._replay, frames, lost)
        return self

    def _replay(self, frames: list[Frame], lost: bool) -> None:
        for frame in frames:
            self._data(frame)
        if lost:
            self._ended()

    # Calls from the session

    @property
    def state(self) -> State:
        """The WebSocket connection's state."""
        return self.protocol.state

    def send(self, data: str | bytes) -> None:
        """Send one message now; nothing is sent once closing started (its end follows)."""
        if self.protocol.state is not _OPEN:
            return
        if isinstance(data, str):
            self.protocol.send_text(data.encode())
        else:
            self.protocol.send_binary(data)
        self.send_data()

    async def ping(self) -> asyncio.Future[float]:
        """Send a ping; the returned future resolves (RTT, seconds) when its pong is parsed.

        One ping is in flight at a time; a new one supersedes the previous one,
        whose waiter is cancelled.

        Raises:
            websockets.exceptions.ConnectionClosed: the connection is closing.
        """
        if self.protocol.state is not _OPEN:
            raise self._close_exc()
        if self._ping is not None:
            self._ping[1].cancel()
        # As websockets does: random, not secret (os.urandom is a syscall per ping).
        data = _getrandbits(32).to_bytes(4, "big")
        pong = asyncio.get_running_loop().create_future()
        self._ping = (data, pong, time.perf_counter())
        self.protocol.send_ping(data)
        self.send_data()
        return pong

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Send a close frame (if the connection is open) and wait for the TCP close.

        The peer gets ``close_timeout`` seconds to end TCP, then the transport is
        aborted.
        """
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
            if self.protocol.state is _CLOSED:
                self._closed.set_result(None)
        if self.protocol.state is _OPEN:
            self.protocol.send_close(code, reason)
            self.send_data()
            self._arm_closer()
        await asyncio.shield(self._closed)

    # asyncio.Protocol callbacks

    def send_data(self) -> None:
        """Write what the protocol has to send (an empty chunk means: half-close)."""
        try:
            write_pending(self.protocol, self.transport)
        except Exception as exc:  # as websockets: the cause of the close reported
            self._set_connection_exc(exc)
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        protocol = self.protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        self.send_data()
        if self._closer is None and protocol.close_expected():
            self._arm_closer()
        for event in events:
            frame = cast("Frame", event)
            if frame.opcode is _PONG:
                self._acknowledge(bytes(frame.data))
            else:
                self._data(frame)

    def eof_received(self) -> None:
        self.protocol.receive_eof()
        self.send_data()
        # Returning None: the transport closes itself; connection_lost follows.

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_connection_exc(exc)
        self._ended()

    def pause_writing(self) -> None:
        # A peer that does not read what is sent (replies, pongs) is not read
        # either, as websockets' reader would stop while its send waited to drain.
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    # Internals

    def _data(self, frame: Frame) -> None:
        """One data frame: deliver the message it completes (as websockets' Assembler)."""
        if self._failed or frame.opcode not in (_TEXT, _BINARY, _CONT):
            return
        parts = self._parts
        if frame.opcode is not _CONT:
            if frame.fin:
                self._deliver(frame.opcode, frame.data)
                return
            self._parts = [frame]
            return
        if parts is None:  # pragma: no cover - the parser rejects a stray continuation
            return
        if len(parts) >= MAX_FRAGMENTS:
            self._parts = None
            exc = wsx.TooManyFragments(MAX_FRAGMENTS)
            self._fail(exc, CloseCode.MESSAGE_TOO_BIG, "too many fragments")
            return
        parts.append(frame)
        if frame.fin:
            self._parts = None
            self._deliver(parts[0].opcode, b"".join(part.data for part in parts))

    def _deliver(self, opcode: Opcode, data: bytes | bytearray | memoryview) -> None:
        if opcode is _TEXT:
            try:
                message: str | bytes = bytes(data).decode()
            except UnicodeDecodeError as exc:
                self._fail(exc, CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
                return
        else:
            message = bytes(data)
        self.sink.message_received(message)

    def _fail(self, exc: Exception, code: CloseCode, reason: str) -> None:
        self._failed = True
        self._set_connection_exc(exc)
        if self.protocol.state is _OPEN:
            self.protocol.fail(code, reason)
            self.send_data()
            self._arm_closer()

    def _acknowledge(self, data: bytes) -> None:
        ping = self._ping
        if ping is None or ping[0] != data:
            return  # unsolicited pong
        self._ping = None
        if not ping[1].done():
            ping[1].set_result(time.perf_counter() - ping[2])

    def _arm_closer(self) -> None:
        if self._closer is None and self.protocol.state is not _CLOSED:
            loop = asyncio.get_running_loop()
            self._closer = loop.call_later(self.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        self._closer = None
        self._set_connection_exc(TimeoutError("timed out while closing connection"))
        self.transport.abort()

    def _ended(self) -> None:
        self.protocol.receive_eof()  # idempotent; the state becomes CLOSED
        if self._closer is not None:
            self._closer.cancel()
            self._closer = None
        exc = self._close_exc()
        ping, self._ping = self._ping, None
        if ping is not None and not ping[1].done():
            ping[1].set_exception(exc)
            ping[1].exception()  # retrieved: a ping nobody awaits must not be logged
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        self.sink.connection_ended(exc)

    def _close_exc(self) -> wsx.ConnectionClosed:
        """What websockets' ``recv()`` raises once the connection is closing or closed."""
        protocol = self.protocol
        if protocol.state is _CLOSED:
            exc = protocol.close_exc
        else:
            rcvd, sent = protocol.close_rcvd, protocol.close_sent
            then = protocol.close_rcvd_then_sent if rcvd is not None and sent is not None else None
            exc = wsx.ConnectionClosedError(rcvd, sent, then)
        if self.connection_exc is not None:
            exc.__cause__ = self.connection_exc
        return exc

    def _set_connection_exc(self, exc: BaseException | None) -> None:
        if self.connection_exc is None:
            self.connection_exc = exc


def _forget_handshake(protocol: ClientProtocol) -> None:
    """Give ``protocol`` a fresh frame parser when it waits between two frames.

    The client's parser is a generator that parsed the upgrade's response and then
    delegates to the frame parser for the connection's life, so its frame keeps the
    response (status line, body, headers object) alive. Between frames the frame
    parser holds no state of its own (sizes and limits are the protocol's fields), so
    a new one continues exactly where it was. Mid-frame, or if websockets' parser is
    not shaped as expected, the parser is left as it is.
    """
    client_parser = protocol.parser
    frame_parser = getattr(client_parser, "gi_yieldfrom", None)
    waiting = getattr(frame_parser, "gi_yieldfrom", None)
    if (
        protocol.state is not _OPEN
        or protocol.reader.buffer
        or protocol.reader.eof
        or getattr(frame_parser, "gi_code", None) is not _FRAME_PARSER
        or getattr(waiting, "gi_code", None) is not _BETWEEN_FRAMES
    ):
        return
    parser = SansIO.parse(protocol)
    next(parser)  # runs to its first wait for data, as websockets starts it
    protocol.parser = parser
    client_parser.close()
