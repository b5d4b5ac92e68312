"""The interface of a probe's client connection: what dialing and probe code may use.

Two connections implement :class:`Connection`, and code outside this package reads
only the interface, never the concrete class:

- :class:`~agent.probes.connections.reading.ReadingConnection`: websockets' own
  ``ClientConnection`` plus the stamps below; it keeps messages for whoever reads them
  (scripted steps, relay receivers, watch sessions).
- :class:`~agent.probes.connections.discarding.DiscardingConnection`: websockets'
  Sans-I/O protocol on a bare ``asyncio.Protocol``; it drops messages as they are
  parsed (the plain ``probe``, which only upgrades, pings and closes).

Both are held to the same behaviour by ``tests/probes/connections/test_contract.py``.

Stamps are ``time.perf_counter()`` values taken by the connection when the event
happened, not when the waiting task next runs (that wait is the agent's own):

- ``ready_at``: the transport (TLS included) became ready; ``connect``/``tls`` end there.
- ``request_at``: the upgrade request was handed to the transport; ``handshake`` starts.
- ``response_at``: the upgrade's answer was parsed, found unparsable, or the connection
  ended before one; ``handshake`` ends there.
- ``pong_at``: the last solicited pong was parsed; a ping's RTT ends there.

Closing: websockets reports a close to waiters only once the TCP connection is gone,
which a server may delay until ``close_timeout``. A probe must not spend its deadline
there, so :meth:`Connection.mark_closing` runs as soon as the closing handshake
starts (or the connection fails a bad frame): pending pings fail at that moment with
:meth:`Connection.closing_error`, and :meth:`Connection.wait_closing` returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol

from websockets import ClientProtocol
from websockets import exceptions as wsx
from websockets.http11 import Response
from websockets.protocol import State

__all__ = ["Connection"]


class Connection(Protocol):
    """A client WebSocket connection as dialing, pings and closing use it."""

    @property
    def transport(self) -> asyncio.Transport:
        """The transport under the WebSocket (TLS included)."""
        ...

    @property
    def protocol(self) -> ClientProtocol:
        """websockets' Sans-I/O protocol: parsing, limits, close frames exchanged."""
        ...

    @property
    def response(self) -> Response | None:
        """The upgrade's HTTP response, once parsed."""
        ...

    @property
    def connection_exc(self) -> BaseException | None:
        """Why the transport was lost or failed (e.g. an ``ssl.SSLError``), if known."""
        ...

    @property
    def state(self) -> State:
        """The WebSocket connection's state."""
        ...

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, if any."""
        ...

    @property
    def close_code(self) -> int | None:
        """The close code received (1006 if none), once closed."""
        ...

    @property
    def close_reason(self) -> str | None:
        """The close reason received, once closed."""
        ...

    @property
    def ready_at(self) -> float | None:
        """When the transport became ready (see the module docstring)."""
        ...

    @property
    def request_at(self) -> float | None:
        """When the upgrade request was handed to the transport."""
        ...

    @property
    def response_at(self) -> float | None:
        """When the upgrade's answer arrived."""
        ...

    @property
    def pong_at(self) -> float | None:
        """When the last solicited pong was parsed."""
        ...

    @property
    def closing_marked(self) -> bool:
        """:meth:`mark_closing` has run: pending pings failed, no new one succeeds."""
        ...

    @property
    def discards_messages(self) -> bool:
        """True when messages are dropped as they are parsed, so none needs reading."""
        ...

    def connection_made(self, transport: asyncio.BaseTransport, /) -> None:
        """Take over ``transport`` (called by the caller of ``loop.start_tls``)."""
        ...

    def mark_ready(self, at: float, /) -> None:
        """Move ``ready_at`` back to ``at``, when the transport really became ready."""
        ...

    async def handshake(self, headers: dict[str, str], user_agent: str, /) -> None:
        """Send the upgrade request and wait for its answer.

        Raises:
            websockets.exceptions.InvalidHandshake: what was made of the answer.
        """
        ...

    async def ping(self) -> Awaitable[float]:
        """Send a ping; the returned awaitable completes when its pong is parsed.

        Raises:
            websockets.exceptions.ConnectionClosed: the connection is closing.
        """
        ...

    async def discard_until_closed(self) -> None:
        """Read and drop messages until the connection closes (never raises)."""
        ...

    async def wait_closing(self) -> None:
        """Return once the closing handshake started or the connection was lost."""
        ...

    def mark_closing(self) -> None:
        """Fail pending pings with :meth:`closing_error`; set the closing signal."""
        ...

    def closing_error(self) -> wsx.ConnectionClosed:
        """The library exception describing this closing or closed connection."""
        ...

    async def close(self) -> None:
        """Start the closing handshake (if not started) and wait for the TCP close."""
        ...
