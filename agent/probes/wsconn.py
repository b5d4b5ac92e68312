"""The client connection every probe kind gets: websockets' own, plus one signal.

websockets only reports a close to readers and ping waiters once the TCP connection
is gone, which a server may delay until ``close_timeout`` expires (it sent a close
frame, or we failed the connection on a bad frame, and it keeps the socket open).
A probe must not spend its deadline there: :attr:`ProbeConnection.closing` is set as
soon as the closing handshake starts, pending ping waiters fail at the same moment
(so a ping needs no second task watching ``closing``), and :func:`closing_error`
says why.

:attr:`ProbeConnection.pong_at` is when the last solicited pong was parsed: a ping's
RTT ends there, not when the waiting task is next scheduled (that wait is the agent's
own delay, not the target's).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from websockets import exceptions as wsx
from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

__all__ = ["ProbeConnection", "closing_error"]

_CLOSING = (State.CLOSING, State.CLOSED)


class ProbeConnection(ClientConnection):
    """A ClientConnection whose ``closing`` event fires when the close handshake starts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closing = asyncio.Event()
        # mark_closing() has run: later frames need no state check (hot path).
        self._marked = False
        #: perf_counter() when the transport (TLS included) became ready.
        self.ready_at: float | None = None
        #: perf_counter() when the last solicited pong was parsed.
        self.pong_at: float | None = None
        # With TLS, loop.start_tls() delivers to this protocol but leaves
        # connection_made to its caller, one loop turn later: what arrives in
        # between is kept here and replayed (None once connection_made ran).
        self._early: list[tuple[str, Any]] | None = []

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
        if not self._marked and self.protocol.state in _CLOSING:
            self.mark_closing()

    def send_data(self) -> None:
        # Also runs when websockets fails the connection from recv() (invalid UTF-8
        # is detected there, not when the frame arrives).
        super().send_data()
        if not self._marked and self.protocol.state in _CLOSING:
            self.mark_closing()

    def acknowledge_pings(self, data: bytes) -> None:
        if data in self.pending_pings:
            self.pong_at = time.perf_counter()
        super().acknowledge_pings(data)

    def mark_closing(self) -> None:
        """Set :attr:`closing` and fail pending ping waiters with :func:`closing_error`."""
        self._marked = True
        self.closing.set()
        waiters = [fut for fut, _sent in self.pending_pings.values() if not fut.done()]
        if waiters:
            exc = closing_error(self)
            for fut in waiters:
                fut.set_exception(exc)
                # Marks it retrieved: a ping nobody awaits any more must not be logged.
                fut.exception()

    def eof_received(self) -> None:
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
        self.closing.set()


def closing_error(conn: ClientConnection) -> wsx.ConnectionClosed:
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
