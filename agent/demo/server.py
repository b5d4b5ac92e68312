"""The demo server: one websockets server routing /echo, /auth, /feed, /chat, /flaky,
and, when asked, the protocol targets beside it (:mod:`agent.demo.protocol_targets`).

Used by ``wsprobe demo-server`` (:func:`main`) and ``wsprobe run --demo`` (the daemon
starts a :class:`DemoServer` in its own loop). Protocols: ``docs/demo.md``.

Exceptions: :meth:`DemoServer.start` raises ``OSError`` when the address cannot be bound;
nothing else escapes.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import logging
import signal
from collections.abc import Sequence
from http import HTTPStatus
from types import TracebackType
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from agent.demo.handlers import DEMO_TOKEN, ChatRooms, echo, feed
from agent.demo.protocol_targets import ProtocolPorts, ProtocolTargets

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ECHO_SUBPROTOCOL",
    "FLAKY_CYCLE",
    "PATHS",
    "SILENT_HOLD_TIMEOUT",
    "DemoServer",
    "FlakyMode",
    "main",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
ECHO_SUBPROTOCOL = "echo.v1"
PATHS = ("/echo", "/auth", "/feed", "/chat", "/flaky")
#: How long a silent /flaky connection is held before the server drops it.
SILENT_HOLD_TIMEOUT = 30.0
#: Bounds stop(): a client that never answers our close frame is dropped after this.
_CLOSE_TIMEOUT = 2.0

_log = logging.getLogger(__name__)
# websockets logs every connection open/close at INFO; with a probe every few seconds that
# would bury the agent's own lines. Quiet by default, unless configured explicitly.
_ws_log = logging.getLogger(f"{__name__}.connections")
if _ws_log.level == logging.NOTSET:
    _ws_log.setLevel(logging.WARNING)


class FlakyMode(enum.Enum):
    """What /flaky does for one connection."""

    OK = "ok"
    HTTP_503 = "http_503"
    SILENT = "silent"
    CLOSE_1011 = "close_1011"


#: /flaky's behaviour for connection attempt n is FLAKY_CYCLE[n % len(FLAKY_CYCLE)].
#: Two OKs in a row let an alert with success_threshold 2 resolve, so a check every 5 s
#: shows firing (at the 2nd consecutive failure) and resolved within 30 s.
FLAKY_CYCLE = (
    FlakyMode.OK,
    FlakyMode.OK,
    FlakyMode.HTTP_503,
    FlakyMode.SILENT,
    FlakyMode.CLOSE_1011,
)


def _path(request: Request | None) -> str:
    # request is only None before the handshake, which never reaches our callbacks.
    return urlsplit(request.path).path if request is not None else ""


def _bearer_ok(authorization: str) -> bool:
    # The auth scheme is case-insensitive (RFC 9110 section 11.1); the token is not.
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), DEMO_TOKEN)


class DemoServer:
    """The demo targets on one host and port.

    Usable as ``async with DemoServer() as demo:`` (binds 127.0.0.1 on a free port)
    or with explicit :meth:`start` / :meth:`stop`.

    Args:
        protocol_ports: Also start the protocol targets (Socket.IO, GraphQL, MQTT,
            STOMP: :mod:`agent.demo.protocol_targets`) on these ports; None leaves
            them out.
    """

    def __init__(self, *, protocol_ports: ProtocolPorts | None = None) -> None:
        self._protocol_ports = protocol_ports
        #: The protocol targets, when ``protocol_ports`` was given and they started.
        self.protocols: ProtocolTargets | None = None
        self._server: Server | None = None
        self._host = DEFAULT_HOST
        self._flaky_attempts = 0
        self._flaky_modes: WeakKeyDictionary[ServerConnection, FlakyMode] = WeakKeyDictionary()
        self._rooms = ChatRooms()
        self._stopping: asyncio.Event | None = None

    @property
    def port(self) -> int:
        """The bound TCP port (useful after starting on port 0)."""
        if self._server is None:
            raise RuntimeError("DemoServer is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def url(self, path: str) -> str:
        """The ws:// URL of one demo path, e.g. ``url("/echo")``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"ws://{host}:{self.port}{path}"

    async def start(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        """Bind and start serving; logs one line listing the URLs.

        Args:
            host: Address to bind (loopback by default; the demo has no auth worth the name).
            port: TCP port; 0 picks a free one (see :attr:`port`).

        Raises:
            OSError: The address cannot be bound (e.g. already in use).
            RuntimeError: Already started.
        """
        if self._server is not None:
            raise RuntimeError("DemoServer already started")
        self._host = host
        # Created here, not in __init__: an Event binds to the loop that first waits on it.
        self._stopping = asyncio.Event()
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
            close_timeout=_CLOSE_TIMEOUT,
            logger=_ws_log,
        )
        _log.info("demo targets listening: %s", " ".join(self.url(p) for p in PATHS))
        if self._protocol_ports is not None:
            protocols = ProtocolTargets()
            try:
                await protocols.start(host, self._protocol_ports)
            except BaseException:
                await protocols.stop()
                await self.stop()
                raise
            self.protocols = protocols

    async def stop(self) -> None:
        """Close every connection (1001) and wait until all handlers have returned."""
        protocols, self.protocols = self.protocols, None
        if protocols is not None:
            await protocols.stop()
        server, self._server = self._server, None
        if server is None:
            return
        # Silent /flaky connections stop reading, so they would never answer our close
        # frame; tell them to drop first so stop() does not wait out the close timeout.
        if self._stopping is not None:
            self._stopping.set()
        server.close()
        await server.wait_closed()
        _log.info("demo targets stopped")

    async def __aenter__(self) -> DemoServer:
        await self.start(DEFAULT_HOST, 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _select_subprotocol(
        self, connection: ServerConnection, subprotocols: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        # Only /echo speaks echo.v1; elsewhere (and without an offer) go on without one
        # rather than websockets' default of refusing with 400.
        if _path(connection.request) == "/echo" and ECHO_SUBPROTOCOL in subprotocols:
            return Subprotocol(ECHO_SUBPROTOCOL)
        return None

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = _path(request)
        if path not in PATHS:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if path == "/auth" and not _bearer_ok(request.headers.get("Authorization", "")):
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "unauthorized\n")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        if path == "/flaky":
            mode = FLAKY_CYCLE[self._flaky_attempts % len(FLAKY_CYCLE)]
            self._flaky_attempts += 1
            if mode is FlakyMode.HTTP_503:
                return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "try again later\n")
            if mode is FlakyMode.SILENT:
                # The request is fully read; stop reading now so not even the first
                # ping gets an automatic pong.
                connection.transport.pause_reading()
            self._flaky_modes[connection] = mode
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        path = _path(ws.request)
        if path in ("/echo", "/auth"):
            await echo(ws)
        elif path == "/feed":
            await feed(ws)
        elif path == "/chat":
            await self._rooms.handle(ws)
        elif path == "/flaky":
            await self._flaky(ws, self._flaky_modes.pop(ws, FlakyMode.OK))

    async def _flaky(self, ws: ServerConnection, mode: FlakyMode) -> None:
        if mode is FlakyMode.CLOSE_1011:
            await ws.close(1011, "demo failure")
        elif mode is FlakyMode.SILENT:
            assert self._stopping is not None  # set by start() before serving
            try:
                async with asyncio.timeout(SILENT_HOLD_TIMEOUT):
                    await self._stopping.wait()
            except TimeoutError:
                pass
            ws.transport.abort()
        else:
            await echo(ws)


async def _serve_until_signalled(
    host: str, port: int, protocol_ports: ProtocolPorts | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    demo = DemoServer(protocol_ports=protocol_ports)
    try:
        await demo.start(host, port)
        try:
            await stop.wait()
        finally:
            await demo.stop()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def main(
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    protocol_ports: ProtocolPorts | None = None,
) -> int:
    """Run the demo targets until SIGINT or SIGTERM (``wsprobe demo-server``).

    Args:
        host: Address to bind.
        port: TCP port.
        protocol_ports: Also run the protocol targets there (None: not at all).

    Returns:
        0 after a clean stop, 1 when the address cannot be bound.
    """
    try:
        asyncio.run(_serve_until_signalled(host, port, protocol_ports))
    except OSError as exc:
        # The message names the address: the paths' port or a protocol target's.
        _log.error("demo server cannot listen: %s", exc)
        return 1
    return 0
