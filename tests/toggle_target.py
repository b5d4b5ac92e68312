"""A real WebSocket target the test switches up and down (or makes alternate).

Down answers the upgrade with HTTP 503, so a probe fails as ``handshake_status``;
up accepts and echoes. Each upgrade request is counted, so a test can wait for the
agent's next runs instead of sleeping.
"""

from __future__ import annotations

import asyncio
import http
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from websockets.asyncio.server import Request, Response, ServerConnection, serve

__all__ = ["ToggleTarget", "toggle_target"]


class ToggleTarget:
    """Mode ``up``, ``down`` or ``alternate`` (down, up, down, ... per request)."""

    def __init__(self) -> None:
        self.mode = "up"
        self.url = ""
        self.requests = 0
        self._flip = False
        self._seen = asyncio.Condition()

    def answer(self, connection: ServerConnection, request: Request) -> Response | None:
        """websockets' ``process_request``: None accepts, a response refuses."""
        self.requests += 1
        asyncio.get_running_loop().create_task(self._notify())
        if self.mode == "alternate":
            self._flip = not self._flip
            down = self._flip
        else:
            down = self.mode == "down"
        if down:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "down for the test\n")
        return None

    async def _notify(self) -> None:
        async with self._seen:
            self._seen.notify_all()

    async def runs(self, count: int, *, timeout: float = 10.0) -> None:
        """Wait until ``count`` more upgrade requests arrived."""
        target = self.requests + count
        async with asyncio.timeout(timeout), self._seen:
            await self._seen.wait_for(lambda: self.requests >= target)


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@asynccontextmanager
async def toggle_target() -> AsyncIterator[ToggleTarget]:
    """Serve a :class:`ToggleTarget` on 127.0.0.1 (a free port)."""
    target = ToggleTarget()
    async with serve(_echo, "127.0.0.1", 0, process_request=target.answer) as server:
        port = server.sockets[0].getsockname()[1]
        target.url = f"ws://127.0.0.1:{port}/"
        yield target
