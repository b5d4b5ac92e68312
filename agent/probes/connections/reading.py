"""The connection for kinds that read messages: websockets' ``ClientConnection`` plus stamps.

Scripted steps, relay receivers and watch sessions (their init steps, and the readers
of ``protocol:`` sessions) read messages with ``recv()``, so they keep websockets'
asyncio connection (its message assembler, flow control and
``send``). This subclass adds what :class:`~agent.probes.connections.base.Connection`
promises: the phase stamps, taken in the protocol callbacks, and the closing mark as
soon as the closing handshake starts.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Iterable
from typing import Any, cast

from websockets import exceptions as wsx
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.messages import Assembler

from agent.probes.connections._shared import (
    CLOSING_STATES,
    ReplayUntilMade,
    closing_error,
    fail_pending_pings,
)

__all__ = ["ReadingConnection"]


class _FrameQueue(list[Any]):
    """websockets' frame queue on a list: a ``deque`` always allocates a 64-slot block.

    Holds at most ``max_queue`` frames before reading pauses, so ``pop(0)`` stays cheap.
    """

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)

    def extendleft(self, items: Iterable[Any]) -> None:
        self[:0] = reversed(list(items))


class _Marks:
    """The stamps and the closing mark, in one slotted object (see ``ReadingConnection``)."""

    __slots__ = ("closing", "closing_marked", "pong_at", "ready_at", "request_at", "response_at")

    def __init__(self) -> None:
        self.ready_at: float | None = None
        self.request_at: float | None = None
        self.response_at: float | None = None
        self.pong_at: float | None = None
        self.closing_marked = False
        # Made only when someone waits for closing (a relay receiver, an expected close).
        self.closing: asyncio.Event | None = None


class ReadingConnection(ReplayUntilMade, ClientConnection):
    """A ClientConnection that stamps its phases and marks closing as soon as it starts.

    Watch sessions hold thousands of these for hours, so what this class adds stays
    small: its state lives in one slotted object, which keeps the instance at no more
    than 30 attribute names (CPython shares their keys then, instead of a ~1.6 KiB
    dict each), and the two queues websockets makes as deques are lists.
    """

    #: Messages wait in websockets' assembler until read.
    discards_messages = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._marks = _Marks()
        self._early = []
        # Only appended to, removed from and iterated by websockets.
        self.drain_waiters = cast("collections.deque[asyncio.Future[None]]", [])
        # websockets adds these two in connection_made. Added there, they gave every
        # connection created before the process's first connection_made (all the
        # watch sessions an agent starts at once) a ~1.6 KB dict of its own on
        # CPython 3.11 (measured); named here, every instance keeps shared keys.
        self.recv_messages = cast("Assembler", None)
        self.transport = cast("asyncio.Transport", None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # websockets makes the assembler here
        frames = self.recv_messages.frames
        frames.queue = cast("collections.deque[Any]", _FrameQueue(frames.queue))

    @property
    def ready_at(self) -> float | None:
        """When the transport became ready."""
        return self._marks.ready_at

    @ready_at.setter
    def ready_at(self, at: float | None) -> None:
        self._marks.ready_at = at

    @property
    def request_at(self) -> float | None:
        """When the upgrade request was handed to the transport."""
        return self._marks.request_at

    @property
    def response_at(self) -> float | None:
        """When the upgrade's answer arrived."""
        return self._marks.response_at

    @property
    def pong_at(self) -> float | None:
        """When the last solicited pong was parsed."""
        return self._marks.pong_at

    @property
    def closing_marked(self) -> bool:
        """:meth:`mark_closing` has run."""
        return self._marks.closing_marked

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        marks = self._marks
        if marks.response_at is None and (
            self.response is not None or self.protocol.handshake_exc is not None
        ):
            marks.response_at = time.perf_counter()
        if not marks.closing_marked and self.protocol.state in CLOSING_STATES:
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
        marks = self._marks
        if marks.request_at is None:
            marks.request_at = time.perf_counter()
        # Also runs when websockets fails the connection from recv() (invalid UTF-8
        # is detected there, not when the frame arrives).
        super().send_data()
        if not marks.closing_marked and self.protocol.state in CLOSING_STATES:
            self.mark_closing()

    def acknowledge_pings(self, data: bytes) -> None:
        if data in self.pending_pings:
            self._marks.pong_at = time.perf_counter()
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
        marks = self._marks
        if marks.closing is None:
            marks.closing = asyncio.Event()
        if not marks.closing_marked:
            await marks.closing.wait()

    def mark_closing(self) -> None:
        """Wake :meth:`wait_closing` and fail pending ping waiters with :meth:`closing_error`."""
        marks = self._marks
        marks.closing_marked = True
        if marks.closing is not None:
            marks.closing.set()
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
            if self._marks.response_at is None:  # the end of the connection is the answer
                self._marks.response_at = time.perf_counter()
            self.mark_closing()
