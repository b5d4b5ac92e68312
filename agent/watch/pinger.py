"""Protocol pings on a held connection: one timer, at most one ping in flight.

A ping is a WebSocket ping, or the application protocol's own (GraphQL ping/pong,
MQTT PINGREQ/PINGRESP, STOMP receipt) when the session speaks one that has it. RTTs
are timed with ``time.perf_counter()`` around the ping frame and its pong. A pong
that does not come within ``timeout`` records a :class:`PingTimeout` and aborts the
transport, so the session's reader sees the connection end and reports the missing pong
as the cause (a dead peer would not answer a close either).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from agent.probes.errors import ExpectTimeout, PingTimeout, ProbeError, map_errors
from agent.result import Reason
from agent.watch.ticker import Tick, ticker

__all__ = ["MAX_RTTS", "Measure", "Pingable", "Pinger"]

#: A protocol's own ping: given the ``perf_counter()`` limit, its RTT in seconds, or
#: None when the protocol has no ping (a WebSocket ping is measured instead).
Measure = Callable[[float], Awaitable[float | None]]

#: Ping RTTs kept between two reports; older ones are dropped.
MAX_RTTS = 16


class Pingable(Protocol):
    """A held connection as the pinger uses it."""

    @property
    def transport(self) -> asyncio.Transport:
        """Aborted when a pong does not come in time."""
        ...

    async def ping(self) -> Awaitable[float]:
        """Send a WebSocket ping; the awaitable completes when its pong is parsed."""
        ...


class Pinger:
    """Pings one connection every ``interval`` seconds until stopped.

    Args:
        interval: seconds between pings; None turns pinging off.
        timeout: seconds to wait for each pong.
    """

    __slots__ = (
        "_conn",
        "_handle",
        "_interval",
        "_measure",
        "_rtts",
        "_task",
        "_timeout",
        "failure",
        "last_rtt",
    )

    def __init__(self, *, interval: float | None, timeout: float) -> None:
        self._interval = interval
        self._timeout = timeout
        self._conn: Pingable | None = None
        self._measure: Measure | None = None
        self._handle: Tick | None = None
        self._task: asyncio.Task[None] | None = None
        self._rtts: list[float] = []
        #: Why the current connection's pinging failed (a missing pong), else None.
        self.failure: ProbeError | None = None
        #: Round trip of the last answered ping, seconds (kept across connections).
        self.last_rtt: float | None = None

    def start(self, conn: Pingable, *, measure: Measure | None = None) -> None:
        """Ping ``conn`` from now on; forgets the previous connection's failure.

        Args:
            conn: the held connection.
            measure: the application protocol's ping, when the session speaks one.
        """
        self._conn = conn
        self._measure = measure
        self.failure = None
        self._arm()

    def stop(self) -> asyncio.Task[None] | None:
        """Stop pinging; returns the cancelled in-flight ping task, if any, to await."""
        self._conn = None
        self._measure = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            return task
        return None

    def take_rtts(self) -> list[float]:
        """The RTTs measured since the last call (at most :data:`MAX_RTTS`)."""
        rtts, self._rtts = self._rtts, []
        return rtts

    def _arm(self) -> None:
        if self._interval is None or self._conn is None:
            return
        self._handle = ticker().call_later(self._interval, self._due)

    def _due(self) -> None:
        self._handle = None
        conn = self._conn
        if conn is not None:
            self._task = asyncio.get_running_loop().create_task(self._ping(conn))

    async def _ping(self, conn: Pingable) -> None:
        try:
            await self._one_ping(conn)
        finally:
            # A finished task kept until the next ping would be held by every session.
            if self._task is asyncio.current_task():
                self._task = None

    async def _one_ping(self, conn: Pingable) -> None:
        start = time.perf_counter()
        measure = self._measure
        rtt: float | None = None
        try:
            if measure is not None:
                try:
                    rtt = await measure(start + self._timeout)
                except ExpectTimeout:
                    raise PingTimeout(index=0, timeout=self._timeout) from None
            if rtt is None:
                with map_errors("ping"):
                    waiter = await conn.ping()
                    async with asyncio.timeout(self._timeout):
                        await waiter
                rtt = time.perf_counter() - start
        except ProbeError as exc:
            if exc.reason is Reason.PING_TIMEOUT:
                self.failure = PingTimeout(index=0, timeout=self._timeout)
                conn.transport.abort()
            return
        self.last_rtt = rtt
        self._rtts.append(rtt)
        del self._rtts[:-MAX_RTTS]
        if self._conn is conn:
            self._arm()
