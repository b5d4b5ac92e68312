"""A real HTTP receiver on 127.0.0.1 that records requests and misbehaves on demand.

Shared by tests/alerting and tests/notifiers (loaded by each conftest). Scripted
answers are consumed one per request; when the script is empty it answers 200.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

__all__ = ["HttpReceiver", "Recorded"]


@dataclass(frozen=True)
class Recorded:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class HttpReceiver:
    """aiohttp server; ``script`` holds answers: int status, (status, headers),
    "hang" (never answers), "drip" (answers 200 then sends a byte every 50 ms),
    "close" (drops the connection without answering), "slow" (200 after 0.3 s)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: list[Any] = []
        self.port = 0
        self._changed = asyncio.Condition()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen (again on the same port after a stop)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._release = asyncio.Event()
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start`."""
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, count: int, *, timeout: float = 5.0) -> list[Recorded]:
        """Wait until ``count`` requests arrived; return them all."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        answer = self.script.pop(0) if self.script else 200
        self.requests.append(Recorded(request.method, request.path_qs, dict(request.headers), body))
        async with self._changed:
            self._changed.notify_all()
        if answer == "hang":
            await self._release.wait()
            return web.Response(status=200)
        if answer == "slow":
            # Answers, but only after the sender had time to start shutting down.
            await asyncio.sleep(0.3)
            return web.Response(status=200)
        if answer == "drip":
            response = web.StreamResponse(status=200)
            response.content_length = 10_000
            await response.prepare(request)
            while not self._release.is_set():
                await response.write(b" ")
                # The drip itself is the misbehaviour under test, not a wait.
                await asyncio.sleep(0.05)
            return response
        if answer == "close":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=200)
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return web.Response(status=status, headers=headers)
