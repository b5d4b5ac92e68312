"""Real feed servers on loopback for watch-session tests, and waiting helpers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from agent.config import CheckConfig
from agent.result import ProbeResult
from agent.watch import WatchSession


class Changes:
    """Something that changes over time, awaited until a predicate holds (no sleeps)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    async def until(self, predicate: Callable[[], bool], *, timeout: float = 3.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._event.clear()
                await self._event.wait()


class FeedServer:
    """A live feed: subscribe, then ticks; can stall, drop, refuse, ping and close."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.changes = Changes()
        self.received: list[Any] = []  # messages from clients, JSON-decoded when possible
        self.connections = 0
        self.connected_at: list[float] = []  # perf_counter time of each connection
        self.ticks_sent = 0
        self.close_codes: list[int | None] = []
        self.tick_interval: float | None = 0.02
        self.tick_step = 1  # 2: every tick skips a sequence number (a gap)
        self.paused = False
        self.refuse_status: int | None = None
        self.refused = 0
        self.app_ping_interval: float | None = None
        self.close_on_subscribe: int | None = None  # close code sent right after subscribing
        self.big_message: int | None = None  # bytes sent once after subscribing
        self.fragments = 1  # frames per tick and app ping (websockets sends fragments)
        self.open: set[ServerConnection] = set()
        self._server: Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "ws" if self.ssl_context is None else "wss"
        return f"{scheme}://127.0.0.1:{self.port}/feed"

    def subscribes(self) -> int:
        return sum(1 for m in self.received if isinstance(m, dict) and m.get("op") == "subscribe")

    async def start(self) -> None:
        self._server = await serve(
            self._handler,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            ssl=self.ssl_context,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if self.refuse_status is None:
            return None
        self.refused += 1
        self.changes.notify()
        return Response(self.refuse_status, HTTPStatus(self.refuse_status).phrase, Headers())

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.connected_at.append(time.perf_counter())
        self.open.add(ws)
        self.changes.notify()
        tasks: list[asyncio.Task[None]] = []
        try:
            async for raw in ws:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    msg = raw
                self.received.append(msg)
                self.changes.notify()
                if isinstance(msg, dict) and msg.get("op") == "subscribe":
                    await ws.send(json.dumps({"type": "subscribed"}))
                    if self.close_on_subscribe is not None:
                        await ws.close(self.close_on_subscribe, "bye")
                        break
                    if self.big_message is not None:
                        await ws.send("x" * self.big_message)
                    tasks.append(asyncio.create_task(self._ticks(ws)))
                    if self.app_ping_interval is not None:
                        tasks.append(asyncio.create_task(self._app_pings(ws)))
        except ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self.open.discard(ws)
            self.close_codes.append(ws.close_code)
            self.changes.notify()

    async def _ticks(self, ws: ServerConnection) -> None:
        n = 0
        with contextlib.suppress(ConnectionClosed):
            while self.tick_interval is not None:
                await asyncio.sleep(self.tick_interval)  # the feed's own pace
                if not self.paused:
                    n += self.tick_step
                    await self._send(ws, json.dumps({"type": "tick", "n": n}))
                    self.ticks_sent += 1
                    self.changes.notify()

    async def _app_pings(self, ws: ServerConnection) -> None:
        n = 0
        with contextlib.suppress(ConnectionClosed):
            while self.app_ping_interval is not None:
                await asyncio.sleep(self.app_ping_interval)
                n += 1
                await self._send(ws, json.dumps({"type": "ping", "id": n}))

    async def _send(self, ws: ServerConnection, text: str) -> None:
        if self.fragments <= 1:
            await ws.send(text)
            return
        size = -(-len(text) // self.fragments)
        await ws.send([text[i : i + size] for i in range(0, len(text), size)])

    async def drop_all(self, code: int = 1012) -> None:
        """Close every open connection from the server side."""
        await asyncio.gather(*(ws.close(code, "restart") for ws in list(self.open)))


class Results:
    """Collects what a session reports through on_result."""

    def __init__(self) -> None:
        self.items: list[ProbeResult] = []
        self.times: list[float] = []
        self.changes = Changes()

    def __call__(self, result: ProbeResult) -> None:
        self.items.append(result)
        self.times.append(time.perf_counter())
        self.changes.notify()

    async def until(
        self, predicate: Callable[[ProbeResult], bool], *, timeout: float = 3.0
    ) -> ProbeResult:
        """Wait for a result (reported from now on) satisfying ``predicate``."""
        start = len(self.items)
        found: list[ProbeResult] = []

        def seen() -> bool:
            found.extend(r for r in self.items[start:] if predicate(r))
            return bool(found)

        await self.changes.until(seen, timeout=timeout)
        return found[0]


def make_session(check: CheckConfig, results: Results) -> WatchSession:
    """A session reporting into ``results``, its backoff jitter fixed at the middle."""
    return WatchSession(check, on_result=results, random=lambda: 0.5)


def watch_check(url: str, **overrides: Any) -> CheckConfig:
    """A watch check with short test timings; ``watch`` keys merge into the defaults."""
    watch = {
        "initial_delay": 0.01,
        "max_delay": 0.05,
        "grace": 0.3,
        "ping_interval": None,
        **overrides.pop("watch", {}),
    }
    data: dict[str, Any] = {
        "name": "feed",
        "kind": "watch",
        "url": url,
        "interval": 0.3,
        "timeout": 0.25,
        "steps": [
            {"send": {"op": "subscribe", "channel": "trades"}},
            {"expect": {"json": {"type": "subscribed"}, "timeout": 0.5}},
        ],
        "watch": watch,
        **overrides,
    }
    return CheckConfig.model_validate(data)


@pytest.fixture
async def feed() -> AsyncIterator[FeedServer]:
    server = FeedServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def results() -> Results:
    return Results()


@pytest.fixture
def check_for() -> Callable[..., CheckConfig]:
    """Builds a watch check for a URL (see :func:`watch_check`)."""
    return watch_check
