"""The client connections probes get: websockets' own plus one signal, or a lean one.

websockets only reports a close to readers and ping waiters once the TCP connection
is gone, which a server may delay until ``close_timeout`` expires (it sent a close
frame, or we failed the connection on a bad frame, and it keeps the socket open).
A probe must not spend its deadline there: :meth:`ProbeConnection.mark_closing`
runs as soon as the closing handshake starts, pending ping waiters fail at that
moment (so a ping needs no second task watching for it) and :func:`closing_error`
says why.

``pong_at`` is when the last solicited pong was parsed: a ping's RTT ends there,
not when the waiting task is next scheduled (that wait is the agent's own delay,
not the target's). Likewise ``ready_at`` (``connection_made``: the ``connect``
phase ends there), ``request_at`` (the upgrade request was handed to the transport:
the ``handshake`` phase starts there, not before the request was built) and
``response_at`` (the upgrade's answer was parsed: the ``handshake`` phase ends there).

Two classes satisfy :class:`WireConnection`, the interface the shared phases
(connect, TLS, handshake, pings, close) use: :class:`ProbeConnection` (websockets'
``ClientConnection``, for kinds that read messages) and
:class:`~agent.probes.connections.discarding.LeanConnection` (the plain ``probe``). What both need
(the TLS replay buffer, the closing mark) lives here once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from websockets import ClientProtocol
from websockets import exceptions as wsx
from websockets.asyncio.client import ClientConnection
from websockets.http11 import Response
from websockets.protocol import State

__all__ = [
    "MarkedConnection",
    "ProbeConnection",
    "ReplayUntilMade",
    "WireConnection",
    "closing_error",
    "fail_pending_pings",
]

_CLOSING = (State.CLOSING, State.CLOSED)


class WireConnection(Protocol):
    """What the shared phases need from a client connection (websockets' has it too)."""

    @property
    def transport(self) -> asyncio.Transport: ...
    @property
    def protocol(self) -> ClientProtocol: ...
    @property
    def response(self) -> Response | None: ...
    @property
    def connection_exc(self) -> BaseException | None: ...
    @property
    def state(self) -> State: ...
    @property
    def subprotocol(self) -> str | None: ...
    @property
    def close_code(self) -> int | None: ...
    @property
    def close_reason(self) -> str | None: ...
    @property
    def pending_pings(self) -> dict[bytes, tuple[asyncio.Future[float], float]]: ...

    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...
    async def handshake(self, headers: dict[str, str], user_agent: str, /) -> None: ...
    async def ping(self) -> Awaitable[float]: ...
    async def close(self) -> None: ...


class MarkedConnection(WireConnection, Protocol):
    """A :class:`WireConnection` with the probe's closing mark and pong stamp."""

    #: perf_counter() when the transport (TLS included) became ready.
    ready_at: float | None
    #: perf_counter() when the first bytes (the upgrade request) were written.
    request_at: float | None
    #: perf_counter() when the upgrade's answer arrived: the response was parsed,
    #: found unparsable, or the connection ended before one.
    response_at: float | None
    #: perf_counter() when the last solicited pong was parsed.
    pong_at: float | None
    #: mark_closing() has run: pending pings failed, no new ones will succeed.
    closing_marked: bool

    def mark_closing(self) -> None: ...


class ReplayUntilMade(asyncio.Protocol):
    """Keeps what arrives before ``connection_made`` and replays it then.

    With TLS, ``loop.start_tls()`` delivers to the protocol but leaves
    ``connection_made`` to its caller, one loop turn later.
    """

    # None once connection_made ran.
    _early: list[tuple[str, Any]] | None
    ready_at: float | None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.ready_at = time.perf_counter()
        super().connection_made(transport)
        early, self._early = self._early, None
        for name, arg in early or ():
            getattr(self, name)(*arg)

    def data_received(self, data: bytes) -> None:
        if self._early is not None:
            self._early.append(("data_received", (data,)))
            return
        super().data_received(data)

    def eof_received(self) -> None:
        # None: the transport closes itself (WebSocket never writes after EOF).
        if self._early is not None:
            self._early.append(("eof_received", ()))
            return
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._early is not None:
            # TLS failed (connection_made will never come) or the peer left right
            # after it: replayed by connection_made if the probe goes on.
            self._early.append(("connection_lost", (exc,)))
            return
        super().connection_lost(exc)


def fail_pending_pings(conn: WireConnection) -> None:
    """Fail every pending ping waiter with :func:`closing_error`."""
    waiters = [fut for fut, _sent in conn.pending_pings.values() if not fut.done()]
    if waiters:
        exc = closing_error(conn)
        for fut in waiters:
            fut.set_exception(exc)
            # Marks it retrieved: a ping nobody awaits any more must not be logged.
            fut.exception()


class ProbeConnection(ReplayUntilMade, ClientConnection):
    """A ClientConnection whose ``closing`` event fires when the close handshake starts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closing = asyncio.Event()
        self.closing_marked = False
        self.ready_at: float | None = None
        self.request_at: float | None = None
        self.response_at: float | None = None
        self.pong_at: float | None = None
        self._early = []

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.response_at is None and (
            self.response is not None or self.protocol.handshake_exc is not None
        ):
            self.response_at = time.perf_counter()
        if not self.closing_marked and self.protocol.state in _CLOSING:
            self.mark_closing()
        elif (
            self.response is None
            and self.protocol.handshake_exc is not None
            and not self.response_rcvd.done()
        ):
            # An unparsable response gives no event: websockets' handshake() would
            # wait for the server to close the socket (or time out), not fail now.
            self.response_rcvd.set_result(None)

    def send_data(self) -> None:
        if self.request_at is None:
            self.request_at = time.perf_counter()
        # Also runs when websockets fails the connection from recv() (invalid UTF-8
        # is detected there, not when the frame arrives).
        super().send_data()
        if not self.closing_marked and self.protocol.state in _CLOSING:
            self.mark_closing()

    def acknowledge_pings(self, data: bytes) -> None:
        if data in self.pending_pings:
            self.pong_at = time.perf_counter()
        super().acknowledge_pings(data)

    def mark_closing(self) -> None:
        """Set :attr:`closing` and fail pending ping waiters with :func:`closing_error`."""
        self.closing_marked = True
        self.closing.set()
        fail_pending_pings(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._early is None:
            if self.response_at is None:  # the end of the connection is the answer
                self.response_at = time.perf_counter()
            self.closing.set()


def closing_error(conn: WireConnection) -> wsx.ConnectionClosed:
    """The library exception describing a connection that is closing or closed.

    Unlike ``protocol.close_exc`` this works in the CLOSING state too (the close
    frames exchanged so far are known; the TCP connection may still be open).
    """
    protocol = conn.protocol
    if protocol.state is State.CLOSED:
        exc = protocol.close_exc
    else:
        rcvd, sent = protocol.close_rcvd, protocol.close_sent
        then = protocol.close_rcvd_then_sent if rcvd is not None and sent is not None else None
        exc = wsx.ConnectionClosedError(rcvd, sent, then)
        exc.__cause__ = protocol.parser_exc
    if isinstance(conn.connection_exc, OSError) and not isinstance(
        exc.__cause__, wsx.WebSocketException
    ):
        # e.g. ConnectionResetError says "reset" where the parser only saw EOF (1006).
        exc.__cause__ = conn.connection_exc
    return exc
