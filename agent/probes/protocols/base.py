"""What every protocol session shares: one reader, an inbox of decoded events, waits.

A :class:`Session` owns the connection once the WebSocket handshake is done: a single
reader task takes every frame off it, stamps its arrival with ``time.perf_counter()``,
hands it to the protocol's :meth:`Session.decode` (which answers keepalives itself)
and files the resulting :class:`Event` objects in an inbox. Steps and pings wait on
the inbox with a deadline (:meth:`Session.wait`); an event no wait wanted stays there
for a later one, bounded like the raw steps' backlog.

A watch session holds the conversation (:meth:`Session.watch`): then the protocol's
data events (Socket.IO events, GraphQL ``next``, STOMP ``MESSAGE``, MQTT ``PUBLISH``)
go straight to the watch's callback instead of the inbox, an event that ends the
subscription (:meth:`Session.ended`) ends the reader with its error, and only a few
control events (pongs, receipts) are kept for the pinger. A held session also keeps
the connection alive with the protocol's keepalive frame (MQTT PINGREQ, STOMP
heart-beat) and ends with :class:`ServerSilent` when the server's own keepalive stops
(:mod:`.keepalive`).

A frame the protocol cannot parse makes the reader stop with
:class:`~agent.probes.errors.ProtocolError` (``protocol_error``); the connection
closing makes it stop with the mapped close. Either is raised by the next wait.

Exceptions (from :mod:`agent.probes.errors`, plus :class:`~.events.ProtocolRefused` and
:class:`~agent.probes.protocols.keepalive.ServerSilent`)::

    ProbeError
     ├── ProtocolRefused    [handshake_status] the protocol's handshake was refused
     ├── ServerSilent       [ping_timeout] the server's own keepalive stopped
     ├── AuthRejected       [auth_rejected] refused for the credentials
     ├── ProtocolError      [protocol_error] a malformed protocol frame
     ├── ExpectTimeout      nothing wanted arrived in time
     ├── ExpectMismatch     the server answered with an error for what was awaited
     └── ConnectionClosed   the connection or the protocol session ended
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import ClassVar

from agent.config import CheckConfig
from agent.config.protocols import ProtocolConfig, ProtocolExpect, ProtocolStep
from agent.probes.connections.reading import ReadingConnection
from agent.probes.errors import (
    ConnectionClosed,
    ExpectTimeout,
    ProbeError,
    map_errors,
)
from agent.probes.protocols.events import Event, describe_expect
from agent.probes.protocols.keepalive import KeepaliveTimer, ServerSilent
from agent.probes.script.matchers import Message, matches
from agent.result import ProbeResult

__all__ = ["ServerSilent", "Session"]

#: Events kept for later waits; keepalive-free protocols rarely get near it.
_INBOX_EVENTS = 256
#: Control events kept while a watch holds the session: only the pinger waits then,
#: and an agent holds thousands of sessions.
_HELD_INBOX_EVENTS = 8


class Session:
    """One protocol conversation on an open connection (subclassed per protocol)."""

    #: The protocol's name as written in ``protocol.name``.
    name: ClassVar[str] = ""
    #: The server opens the conversation (Engine.IO's open packet): the ``protocol``
    #: phase then starts at the 101, otherwise when our first frame is sent.
    server_speaks_first: ClassVar[bool] = False
    #: What the server's keepalive is called, for :class:`ServerSilent`'s message.
    server_keepalive: ClassVar[str] = "keepalive"

    # Slots: a watch holds one session per check, and an agent thousands of checks.
    __slots__ = (
        "_arrived",
        "_failure",
        "_inbox",
        "_keepalive",
        "_on_message",
        "_reader",
        "_waits",
        "_writes",
        "acked_at",
        "check",
        "config",
        "conn",
        "first_sent_at",
        "held",
        "last_read_at",
        "last_sent_at",
        "variables",
    )

    def __init__(
        self,
        conn: ReadingConnection,
        check: CheckConfig,
        config: ProtocolConfig,
        variables: dict[str, str],
        *,
        held: bool = False,
    ) -> None:
        self.conn = conn
        #: Held by a watch: the protocol's keepalive is negotiated and sent.
        self.held = held
        self.check = check
        self.config = config
        self.variables = variables
        # A list, not a deque: an empty deque holds a 64-slot block (~0.6 KiB), and a
        # held session's inbox is empty nearly always.
        self._inbox: list[Event] = []
        # Made by the first wait; a held session drops it between its (rare) waits.
        self._arrived: asyncio.Event | None = None
        self._waits = 0
        self._failure: ProbeError | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] | None = None
        #: When the handshake's acknowledgement was read: the ``protocol`` phase ends there.
        self.acked_at: float | None = None
        #: When the first frame was written: the ``protocol`` phase starts there unless
        #: the server speaks first.
        self.first_sent_at: float | None = None
        #: When the last frame was written (keepalives are sent when idle).
        self.last_sent_at = 0.0
        #: When the last frame was read (the server's keepalive is watched by it).
        self.last_read_at = 0.0
        self._on_message: Callable[[Message | None], None] | None = None
        self._keepalive: KeepaliveTimer | None = None

    # --- what a protocol implements -------------------------------------------------

    def decode(self, data: str | bytes, at: float) -> list[Event]:
        """Decode one WebSocket message; answer keepalives; raise ``malformed`` on junk."""
        raise NotImplementedError

    async def handshake(self, result: ProbeResult, *, until: float) -> None:
        """Run the protocol's own handshake (the ``protocol`` phase)."""
        raise NotImplementedError

    async def ping(self, *, until: float) -> float | None:
        """One protocol ping's RTT in seconds; None when the protocol has none."""
        return None

    async def step(self, step: ProtocolStep, *, until: float) -> None:
        """Run one action step (anything but ``expect`` and ``sleep``)."""
        raise ProbeError(f"{self.name} has no {step.action} step")

    def wanted(self, expect: ProtocolExpect, event: Event) -> bool:
        """Whether ``event`` is the kind of event ``expect`` waits for (data aside)."""
        raise NotImplementedError

    def refusal(self, expect: ProtocolExpect, event: Event) -> ProbeError | None:
        """An error when ``event`` ends what ``expect`` waits for (error, completion)."""
        return None

    async def goodbye(self) -> None:
        """Leave politely (DISCONNECT and the like); never waits for an answer."""

    def watched(self, event: Event) -> bool:
        """Whether ``event`` is a message of the subscriptions a watch counts."""
        return False

    def ended(self, event: Event) -> ProbeError | None:
        """An error when ``event`` ends what a watch is subscribed to (e.g. completion)."""
        return None

    def keepalive_interval(self) -> float | None:
        """Seconds the client may stay silent before the server drops it; None: no limit."""
        return None

    def keepalive_frame(self) -> str | bytes:
        """The frame that keeps the connection alive (sent when idle)."""
        raise NotImplementedError

    def silence_limit(self) -> float | None:
        """Seconds without a frame from the server after which it is dead; None: no limit."""
        return None

    # --- shared machinery -----------------------------------------------------------

    def start(self) -> None:
        """Start reading the connection."""
        self.last_read_at = time.perf_counter()
        self._reader = asyncio.create_task(self._read())

    def watch(self, on_message: Callable[[Message | None], None]) -> None:
        """Hold the session for a watch: data events go to ``on_message`` from now on.

        Events already in the inbox (they may arrive with the subscription's
        acknowledgement) are handed over first, an ending one included.
        """
        self._on_message = on_message
        kept, self._inbox = self._inbox, []
        for event in kept:
            try:
                self._held_event(event, on_message)
            except ProbeError as exc:  # ended before the watch began
                self.end(exc)
                return

    async def finished(self) -> ProbeError:
        """Wait until the reader stops; return why (the connection or subscription ended)."""
        reader = self._reader
        if reader is not None:
            try:
                await reader
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # we are cancelled, not just the reader
        return self._failure or ConnectionClosed(None, detail="the protocol session ended")

    def start_keepalive(self) -> None:
        """Keep the connection alive and watch the server's keepalive (held sessions)."""
        if KeepaliveTimer.period(self) is not None:
            self._keepalive = KeepaliveTimer(self)
            self._keepalive.start()

    def end(self, error: ProbeError) -> None:
        """End the session with ``error`` from outside the reader (waits raise it)."""
        self._failure = error
        self.conn.mark_closing()
        if self._reader is not None:
            self._reader.cancel()

    async def stop(self) -> None:
        """Stop reading (the connection is closed by the probe afterwards)."""
        tasks = [t for t in (self._reader, *(self._writes or ())) if t is not None]
        self.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def cancel(self) -> None:
        """Cancel the reader, the keepalive and pending writes without waiting for them."""
        if self._keepalive is not None:
            self._keepalive.cancel()
        for task in (self._reader, *(self._writes or ())):
            if task is not None:
                task.cancel()

    async def _read(self) -> None:
        try:
            while True:
                with map_errors("protocol"):
                    data = await self.conn.recv()
                at = self.last_read_at = time.perf_counter()
                for event in self.decode(data, at):
                    event.at = at
                    if self._on_message is not None:
                        self._held_event(event, self._on_message)
                    else:
                        self._keep(event, _INBOX_EVENTS)
                self._wake()
        except ProbeError as exc:
            self._failure = exc
            self.conn.mark_closing()
        finally:
            self._wake()

    def _wake(self) -> None:
        if self._arrived is not None:
            self._arrived.set()

    def _held_event(self, event: Event, on_message: Callable[[Message | None], None]) -> None:
        error = self.ended(event)
        if error is not None:
            raise error
        if self.watched(event):
            on_message(event.data)
            return
        self._keep(event, _HELD_INBOX_EVENTS)

    def _keep(self, event: Event, limit: int) -> None:
        """File ``event`` for a later wait, dropping the oldest beyond ``limit``."""
        self._inbox.append(event)
        if len(self._inbox) > limit:
            del self._inbox[0]

    async def send(self, data: str | bytes) -> float:
        """Send one message; return the time it was handed to the connection."""
        if self.first_sent_at is None:
            self.first_sent_at = time.perf_counter()
        self.last_sent_at = time.perf_counter()
        with map_errors("protocol"):
            await self.conn.send(data)
        return time.perf_counter()

    def send_soon(self, data: str | bytes) -> None:
        """Send from the reader (keepalive answers) without blocking it."""
        task = asyncio.create_task(self.send_quietly(data))
        if self._writes is None:
            self._writes = set()
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def send_quietly(self, data: str | bytes) -> None:
        """Send, ignoring a connection that is gone (its reader reports that)."""
        self.last_sent_at = time.perf_counter()
        with contextlib.suppress(Exception):
            await self.conn.send(data)

    async def wait(
        self,
        want: Callable[[Event], bool],
        *,
        until: float,
        what: str,
        refuse: Callable[[Event], ProbeError | None] | None = None,
        since: float = 0.0,
    ) -> Event:
        """The first inbox event ``want`` accepts (oldest first), waiting until ``until``.

        Events that arrived before ``since`` are dropped unseen (a pong answering an
        earlier ping must not time a later one).

        Raises:
            ExpectTimeout: nothing wanted by ``until`` (``what`` says what was awaited).
            ProbeError: ``refuse`` returned one for an event, or the reader failed.
        """
        arrived = self._arrived
        if arrived is None:
            arrived = self._arrived = asyncio.Event()
        self._waits += 1
        try:
            while True:
                for event in list(self._inbox):
                    if event.at < since:
                        self._inbox.remove(event)
                        continue
                    if refuse is not None:
                        err = refuse(event)
                        if err is not None:
                            self._inbox.remove(event)
                            raise err
                    if want(event):
                        self._inbox.remove(event)
                        return event
                if self._failure is not None:
                    raise self._failure
                remaining = until - time.perf_counter()
                if remaining <= 0:
                    raise ExpectTimeout(f"wanted {what}; {len(self._inbox)} other event(s) kept")
                arrived.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await arrived.wait()
        finally:
            self._waits -= 1
            if self._waits == 0 and self._on_message is not None:
                self._arrived = None

    async def expect(self, expect: ProtocolExpect, *, until: float) -> Event:
        """Wait for the event ``expect`` describes with data its matcher accepts."""

        def want(event: Event) -> bool:
            if not self.wanted(expect, event):
                return False
            if expect.is_empty() and expect.binary is None:
                return True
            return event.data is not None and matches(expect, event.data, self.variables)

        return await self.wait(
            want,
            until=until,
            what=describe_expect(expect),
            refuse=lambda event: self.refusal(expect, event),
        )
