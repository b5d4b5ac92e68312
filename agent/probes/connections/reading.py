"""The connection for kinds that read messages: websockets' ``ClientConnection`` plus stamps.

Scripted steps, relay receivers and watch sessions read messages with ``recv()``, so
they keep websockets' asyncio connection (its message assembler, flow control and
``send``). This subclass adds what :class:`~agent.probes.connections.base.Connection`
promises: the phase stamps, taken in the protocol callbacks, and the closing mark as
soon as the closing handshake starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from websockets import exceptions as wsx
from websockets.asyncio.client import ClientConnection

from agent.probes.connections._shared import (
    CLOSING_STATES,
    ReplayUntilMade,
    closing_error,
    fail_pending_pings,
)

__all__ = ["ReadingConnection"]


class ReadingConnection(ReplayUntilMade, ClientConnection):
    """A ClientConnection that stamps its phases and marks closing as soon as it starts."""

    #: Messages wait in websockets' assembler until read.
    discards_messages = False

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
        if not self.closing_marked and self.protocol.state in CLOSING_STATES:
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
        if not self.closing_marked and self.protocol.state in CLOSING_STATES:
            self.mark_closing()

    def acknowledge_pings(self, data: bytes) -> None:
        if data in self.pending_pings:
            self.pong_at = time.perf_counter()
        super().acknowledge_pings(data)

    async def discard_until_closed(self) -> None:
        """Read and drop messages so pongs are never stuck behind unread frames.

        ``recv()`` is also where websockets validates UTF-8 and fails the connection
        (1007): closing is marked then, since no data arrival will.
        """
        with contextlib.suppress(Exception):  # ConnectionClosed, or a bug: reading is over
            while True:
                await self.recv()
        if not self.closing_marked:
            self.mark_closing()

    async def wait_closing(self) -> None:
        """Return once the closing handshake started or the connection was lost."""
        await self.closing.wait()

    def mark_closing(self) -> None:
        """Set :attr:`closing` and fail pending ping waiters with :meth:`closing_error`."""
        self.closing_marked = True
        self.closing.set()
        fail_pending_pings(self)

    def closing_error(self) -> wsx.ConnectionClosed:
        """The library exception describing this closing or closed connection."""
        return closing_error(self)

    def terminate_pending_pings(self) -> None:
        # websockets' own exception leaves out the transport's cause, so a reset
        # would read as a clean loss; closing_error() keeps it.
        fail_pending_pings(self)
        super().terminate_pending_pings()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._early is None:
            if self.response_at is None:  # the end of the connection is the answer
                self.response_at = time.perf_counter()
            self.mark_closing()
