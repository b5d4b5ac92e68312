"""The plain ``probe``'s connection: websockets' Sans-I/O protocol on a bare asyncio.Protocol.

A plain probe (no steps, no expected close code, no proxy) never reads a message:
it upgrades, pings, closes. websockets' asyncio ``ClientConnection`` is built for
reading: a message ``Assembler`` with its queue and flow control, futures for
connection loss and draining, a ``send_context`` around every write, and the probe
then needs a second task that keeps reading so pongs are never stuck behind 16
unread frames. That machinery cost about as much CPU per cycle as all of
wsprobe's own measuring (docs/bench-log.md, "Profile"); overriding its hot paths
would still leave the Assembler, the futures and the reader task.

So :class:`DiscardingConnection` drives the same ``ClientProtocol`` (public Sans-I/O API:
the parsing, limits, compression and close handshake stay websockets') from
``data_received``: the handshake response wakes the one waiting task, a pong is
stamped and its waiter resolved as it is parsed, data frames are dropped there and
then. What the Assembler would have caught when a message is read is checked as
frames arrive instead, with websockets' own close codes: a text message that is
not UTF-8 fails the connection with 1007, one of more than ``MAX_FRAGMENTS``
frames with 1009. Both surface exactly as on
:class:`~agent.probes.connections.reading.ReadingConnection` (``mark_closing`` fails
the pending ping with ``closing_error()``).
"""

from __future__ import annotations

import asyncio
import codecs
import random
import time
from typing import cast

from websockets import ClientProtocol
from websockets import exceptions as wsx
from websockets.asyncio.messages import MAX_FRAGMENTS
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from agent.probes.connections._shared import (
    ReplayUntilMade,
    closing_error,
    fail_pending_pings,
    write_pending,
)

__all__ = ["DiscardingConnection"]

_getrandbits = random.getrandbits
_UTF8 = codecs.getincrementaldecoder("utf-8")
_OPEN = State.OPEN
_TEXT, _BINARY, _CONT, _PONG = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG


class DiscardingConnection(ReplayUntilMade):
    """A client connection that upgrades, pings and closes, and discards messages."""

    #: Data frames are dropped in ``data_received``; nothing waits to be read.
    discards_messages = True

    def __init__(self, protocol: ClientProtocol) -> None:
        self.protocol = protocol
        self.transport: asyncio.Transport
        self.request: Request | None = None
        self.response: Response | None = None
        self.connection_exc: BaseException | None = None
        self.pending_pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self.ready_at: float | None = None
        self.request_at: float | None = None
        self.response_at: float | None = None
        self.pong_at: float | None = None
        self.closing_marked = False
        self._early = []
        self._loop = asyncio.get_running_loop()
        # The one task waiting for something (handshake response or connection
        # loss), woken from the protocol callbacks.
        self._waiter: asyncio.Future[None] | None = None
        # Made only when someone waits for closing (expected close codes do not run
        # on this connection, so nearly never).
        self._closing: asyncio.Event | None = None
        self._lost = False
        # The text message in progress: its decoder and bytes decoded so far.
        self._decoder: codecs.IncrementalDecoder | None = None
        self._decoded = 0
        self._fragments = 0

    @property
    def state(self) -> State:
        """The WebSocket connection's state."""
        return self.protocol.state

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, if any."""
        return self.protocol.subprotocol

    @property
    def close_code(self) -> int | None:
        """The close code the server sent (1006 if none), once closed."""
        return self.protocol.close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason the server sent, once closed."""
        return self.protocol.close_reason

    # Calls from the probe

    async def handshake(self, headers: dict[str, str], user_agent: str) -> None:
        """Send the upgrade request and wait for the response.

        Raises:
            websockets.exceptions.InvalidHandshake: what the protocol made of the
                response (or of its absence).
        """
        protocol = self.protocol
        request = self.request = protocol.connect()
        request.headers.update(headers)
        request.headers.setdefault("User-Agent", user_agent)
        if not self._lost:  # else the peer left already: handshake_exc says so
            protocol.send_request(request)
            self.send_data()
        if self.response is None and protocol.handshake_exc is None and not self._lost:
            await self._wait()
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        if self.response is None:  # pragma: no cover - EOF sets handshake_exc
            raise wsx.InvalidMessage("no response") from EOFError()

    async def ping(self) -> asyncio.Future[float]:
        """Send a ping; the returned future resolves when its pong is parsed.

        Raises:
            websockets.exceptions.ConnectionClosed: the connection is closing.
        """
        if self.protocol.state is not _OPEN:
            raise closing_error(self)
        # As websockets does: random, not secret (os.urandom is a syscall per ping).
        data = _getrandbits(32).to_bytes(4, "big")
        while data in self.pending_pings:  # pragma: no cover - 1 in 2**32
            data = _getrandbits(32).to_bytes(4, "big")
        pong = self._loop.create_future()
        self.pending_pings[data] = (pong, time.perf_counter())
        self.protocol.send_ping(data)
        self.send_data()
        return pong

    async def close(self) -> None:
        """Start the closing handshake (if not started) and wait for the TCP close."""
        if self.protocol.state is _OPEN:
            self.protocol.send_close(CloseCode.NORMAL_CLOSURE)
            self.send_data()
        if not self._lost:
            await self._wait()

    async def discard_until_closed(self) -> None:
        """Wait until the connection closes: messages are dropped as they arrive."""
        await self.wait_closing()

    async def wait_closing(self) -> None:
        """Return once the closing handshake started or the connection was lost."""
        if self._closing is None:
            self._closing = asyncio.Event()
        if not self.closing_marked:
            await self._closing.wait()

    def mark_closing(self) -> None:
        """Fail pending ping waiters with :meth:`closing_error`; no new ping succeeds."""
        self.closing_marked = True
        if self._closing is not None:
            self._closing.set()
        fail_pending_pings(self)

    def closing_error(self) -> wsx.ConnectionClosed:
        """The library exception describing this closing or closed connection."""
        return closing_error(self)

    def _wait(self) -> asyncio.Future[None]:
        waiter = self._waiter = self._loop.create_future()
        return waiter

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # ReplayUntilMade.connection_made stamps ready_at, then calls this class's
        # base (asyncio.Protocol) and replays what came early.
        self.transport = cast("asyncio.Transport", transport)
        super().connection_made(transport)

    def send_data(self) -> None:
        """Write what the protocol has to send (an empty chunk means: half-close)."""
        if self.request_at is None:
            self.request_at = time.perf_counter()
        write_pending(self.protocol, self.transport)

    def data_received(self, data: bytes) -> None:
        if self._early is not None:
            super().data_received(data)  # kept for connection_made
            return
        protocol = self.protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        try:
            self.send_data()
        except Exception as exc:  # same policy as websockets: reported on close
            self._set_connection_exc(exc)
        for event in events:
            if self.response is None:  # the first event is the handshake response
                self.response = cast("Response", event)
                self.response_at = time.perf_counter()
                self._wake()
            else:
                self._frame(cast("Frame", event))
        if protocol.state is not _OPEN:
            if not self.closing_marked and protocol.state is not State.CONNECTING:
                self.mark_closing()
            elif protocol.handshake_exc is not None:
                # Unparsable response: no event, but the answer is known.
                if self.response_at is None:
                    self.response_at = time.perf_counter()
                self._wake()

    def eof_received(self) -> None:
        if self._early is not None:
            super().eof_received()
            return
        protocol = self.protocol
        protocol.receive_eof()
        events = protocol.events_received()
        self.send_data()
        for event in events:  # an HTTP response read to EOF
            if self.response is None:
                self.response = cast("Response", event)
                self.response_at = time.perf_counter()
        # Returning None: the transport closes itself; connection_lost follows.

    def connection_lost(self, exc: Exception | None) -> None:
        if self._early is not None:
            super().connection_lost(exc)
            return
        self.protocol.receive_eof()  # idempotent; the state becomes CLOSED
        if self.response_at is None:  # the end of the connection is the answer
            self.response_at = time.perf_counter()
        self._set_connection_exc(exc)
        self._lost = True
        self.mark_closing()
        self._wake()

    # Frames

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is _PONG:
            self._acknowledge(bytes(frame.data))
        elif self.protocol.state is _OPEN and (
            opcode is _TEXT or opcode is _BINARY or opcode is _CONT
        ):
            self._discard(frame)

    def _acknowledge(self, data: bytes) -> None:
        pings = self.pending_pings
        if data not in pings:
            return  # unsolicited pong
        now = self.pong_at = time.perf_counter()
        # A pong for the latest ping acknowledges the earlier ones too (RFC 6455).
        while pings:
            ping_id = next(iter(pings))
            pong, sent = pings.pop(ping_id)
            if not pong.done():
                pong.set_result(now - sent)
            if ping_id == data:
                break

    def _discard(self, frame: Frame) -> None:
        """Drop a data frame, failing the connection where websockets' reader would."""
        if frame.opcode is not _CONT:  # first frame of a message
            self._fragments = 1
            self._decoded = 0
            self._decoder = _UTF8() if frame.opcode is _TEXT else None
        elif self._fragments >= MAX_FRAGMENTS:
            exc = wsx.TooManyFragments(MAX_FRAGMENTS)
            self._fail(exc, CloseCode.MESSAGE_TOO_BIG, "too many fragments")
            return
        else:
            self._fragments += 1
        decoder = self._decoder
        if decoder is None:
            return
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(frame.data, frame.fin)
        except UnicodeDecodeError as exc:
            where = self._decoded - pending + exc.start
            self._fail(exc, CloseCode.INVALID_DATA, f"{exc.reason} at position {where}")
            return
        self._decoded += len(frame.data)

    def _fail(self, exc: Exception, code: CloseCode, reason: str) -> None:
        self._set_connection_exc(exc)
        self.protocol.fail(code, reason)
        self.send_data()
        self.mark_closing()

    def _set_connection_exc(self, exc: BaseException | None) -> None:
        if self.connection_exc is None:
            self.connection_exc = exc
