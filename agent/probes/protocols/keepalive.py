"""The keepalive timer of a held protocol session: ours sent when idle, theirs watched.

A watch holds a protocol session for as long as the agent runs. Brokers drop a client
that stays silent (MQTT after 1.5 keep-alive periods, STOMP after missed heart-beats),
and a client should give up a server whose own keepalive stopped (Socket.IO after
``pingInterval + pingTimeout``, STOMP after missed heart-beats). :class:`KeepaliveTimer`
does both with one ``loop.call_later`` handle, firing every half of the shorter period:
it sends the protocol's keepalive frame when nothing was sent for half the keepalive
period, and ends the session with :class:`ServerSilent` when nothing was read for the
protocol's silence limit. A tick that fires late (our own loop stalled, so frames may
be waiting unread) does not judge silence.

Exceptions::

    ProbeError
     └── ServerSilent   [ping_timeout] the server's own keepalive stopped
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from agent.probes.errors import ProbeError
from agent.result import Reason

__all__ = ["KeepaliveTimer", "ServerSilent"]


class ServerSilent(ProbeError):
    """The server's own keepalive (Engine.IO pings, STOMP heart-beats) stopped coming."""

    reason = Reason.PING_TIMEOUT
    title = "the server's keepalive stopped"


class _Held(Protocol):
    """What the timer needs of a session (a ``Session`` of ``base``)."""

    last_read_at: float
    last_sent_at: float

    @property
    def server_keepalive(self) -> str: ...

    def keepalive_interval(self) -> float | None: ...

    def silence_limit(self) -> float | None: ...

    def keepalive_frame(self) -> str | bytes: ...

    def send_soon(self, data: str | bytes) -> None: ...

    def end(self, error: ProbeError) -> None: ...


class KeepaliveTimer:
    """Keeps one held session alive and watches its server's keepalive.

    Args:
        session: the held session.
    """

    __slots__ = ("_due", "_handle", "_session")

    def __init__(self, session: _Held) -> None:
        self._session = session
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    @staticmethod
    def period(session: _Held) -> float | None:
        """Seconds between ticks for ``session``; None when it needs no timer."""
        periods = [p / 2 for p in (session.keepalive_interval(), session.silence_limit()) if p]
        return min(periods) if periods else None

    def start(self) -> None:
        """Arm the first tick (when the session needs one)."""
        delay = self.period(self._session)
        if delay is not None:
            self._due = time.perf_counter() + delay
            self._handle = asyncio.get_running_loop().call_later(delay, self._tick)

    def cancel(self) -> None:
        """Stop ticking."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        self._handle = None
        session = self._session
        now = time.perf_counter()
        limit = session.silence_limit()
        punctual = now - self._due < (limit or 0.0) / 2
        if limit and punctual and now - session.last_read_at > limit:
            who = session.server_keepalive
            session.end(ServerSilent(f"no {who} from the server for {limit:g}s"))
            return
        interval = session.keepalive_interval()
        if interval and now - session.last_sent_at >= interval / 2:
            session.send_soon(session.keepalive_frame())
        self.start()
