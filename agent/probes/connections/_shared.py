"""What the connections are built from: the TLS replay buffer, writing, the closing error."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Protocol

from websockets import ClientProtocol
from websockets import exceptions as wsx
from websockets.protocol import State

__all__ = [
    "CLOSING_STATES",
    "ReplayUntilMade",
    "closing_error",
    "fail_pending_pings",
    "write_pending",
]

CLOSING_STATES = (State.CLOSING, State.CLOSED)


class _Pinging(Protocol):
    @property
    def protocol(self) -> ClientProtocol: ...
    @property
    def connection_exc(self) -> BaseException | None: ...
    @property
    def pending_pings(self) -> dict[bytes, tuple[asyncio.Future[float], float]]: ...


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

    def mark_ready(self, at: float) -> None:
        """Move ``ready_at`` back to ``at`` (the TLS handshake's completion)."""
        self.ready_at = at

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


def fail_pending_pings(conn: _Pinging) -> None:
    """Fail every pending ping waiter with :func:`closing_error`."""
    waiters = [fut for fut, _sent in conn.pending_pings.values() if not fut.done()]
    if waiters:
        exc = closing_error(conn)
        for fut in waiters:
            fut.set_exception(exc)
            # Marks it retrieved: a ping nobody awaits any more must not be logged.
            fut.exception()


def closing_error(conn: _Pinging) -> wsx.ConnectionClosed:
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


def write_pending(protocol: ClientProtocol, transport: asyncio.Transport) -> None:
    """Write what ``protocol`` has to send (an empty chunk means: half-close)."""
    for data in protocol.data_to_send():
        if data:
            transport.write(data)
        elif transport.can_write_eof():
            # Undocumented errors (uvloop: RuntimeError while closing): the close
            # follows anyway.
            with contextlib.suppress(Exception):
                transport.write_eof()
        else:
            transport.close()
