"""The demo's Socket.IO and GraphQL targets: real library servers on one aiohttp port.

``/socket.io/`` is a python-socketio ``AsyncServer`` (already a wsprobe dependency);
``/graphql`` is strawberry-graphql (:mod:`agent.demo.graphql_schema`) when the
``demo`` extra is installed, else it is left out with one log line. Protocols:
``docs/demo.md``.

Exceptions: :meth:`AppTargets.start` raises ``OSError`` when the address cannot be
bound; nothing else escapes.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import socketio
from aiohttp import web

from agent.demo.handlers import DEMO_TOKEN

__all__ = ["GRAPHQL_PATH", "SOCKETIO_PATH", "AppTargets", "DemoNamespace"]

SOCKETIO_PATH = "/socket.io/"
GRAPHQL_PATH = "/graphql"

_log = logging.getLogger(__name__)
# python-socketio and engineio log every packet at INFO when given a logger; keep them
# to warnings, as the websockets demo does with its connection lines.
for _name in ("socketio", "engineio", "aiohttp.access"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)


class DemoNamespace(socketio.AsyncNamespace):  # type: ignore[misc]  # untyped base
    """Namespace ``/``: connect auth ``{"token": "demo-token"}``, then ``echo`` and ``join``."""

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        """Refuse with CONNECT_ERROR ``invalid token`` unless the auth carries the token."""
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not hmac.compare_digest(token, DEMO_TOKEN):
            raise socketio.exceptions.ConnectionRefusedError("invalid token")

    async def on_echo(self, sid: str, *args: Any) -> list[Any]:
        """Emit ``echoed`` with the same arguments, and acknowledge with them too."""
        await self.emit("echoed", tuple(args), to=sid)
        return list(args)

    async def on_join(self, sid: str, room: Any = None) -> dict[str, Any]:
        """Join ``room`` (a string); acknowledge, and tell the room ``joined``."""
        if not isinstance(room, str) or not room:
            return {"error": "room must be a non-empty string"}
        await self.enter_room(sid, room)
        await self.emit("joined", {"room": room, "members": self._members(room)}, to=room)
        return {"ok": True, "room": room}

    def _members(self, room: str) -> int:
        participants = self.server.manager.get_participants(self.namespace, room)
        return sum(1 for _ in participants)


class AppTargets:
    """Socket.IO at ``/socket.io/`` and GraphQL at ``/graphql`` on one aiohttp site."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._sio: socketio.AsyncServer | None = None
        self._port = 0
        self.graphql = False

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._runner is None:
            raise RuntimeError("AppTargets is not started")
        return self._port

    async def start(self, host: str, port: int) -> None:
        """Bind and serve.

        Args:
            host: Address to bind.
            port: TCP port; 0 picks a free one (see :attr:`port`).

        Raises:
            OSError: The address cannot be bound.
        """
        app = web.Application()
        # Given as loggers, not left to their default: by default each library adds a
        # StreamHandler of its own, bound to whatever sys.stderr is at that moment, and
        # every line then also appears a second time, unformatted.
        sio = socketio.AsyncServer(
            async_mode="aiohttp",
            cors_allowed_origins="*",
            logger=logging.getLogger("socketio.server"),
            engineio_logger=logging.getLogger("engineio.server"),
        )
        sio.register_namespace(DemoNamespace("/"))
        sio.attach(app, socketio_path=SOCKETIO_PATH.strip("/"))
        try:
            from agent.demo.graphql_schema import graphql_view
        except ImportError:
            _log.warning(
                "demo GraphQL target skipped: strawberry-graphql is not installed"
                " (pip install 'wsprobe[demo]'; make run installs it)"
            )
        else:
            app.router.add_route("*", GRAPHQL_PATH, graphql_view())
            self.graphql = True
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self._sio = sio
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Close every connection and the listening socket."""
        runner, self._runner = self._runner, None
        sio, self._sio = self._sio, None
        if sio is not None:
            # Engine.IO's ping-timeout sweeper is a task of its own; left running it
            # outlives the loop and is destroyed pending at exit.
            await sio.shutdown()
        if runner is not None:
            await runner.cleanup()
