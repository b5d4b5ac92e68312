"""What each demo path does once the WebSocket is open.

The protocols are specified for users in ``docs/demo.md``; this module is their one
implementation. Handlers never raise for a client that goes away: a closed connection
simply ends the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed

__all__ = [
    "AUTH_CLOSE_CODE",
    "DEMO_TOKEN",
    "FEED_AUTH_TIMEOUT",
    "FEED_HEARTBEAT_INTERVAL",
    "FEED_TICK_INTERVAL",
    "ChatRooms",
    "echo",
    "feed",
]

#: The one credential every demo path accepts.
DEMO_TOKEN = "demo-token"  # noqa: S105 - a public demo credential, documented
#: Close code of /feed for missing or wrong first-message auth (4000-4999: application).
AUTH_CLOSE_CODE = 4401
#: A client that sends nothing this long after connecting to /feed is closed with 4401.
FEED_AUTH_TIMEOUT = 10.0
FEED_TICK_INTERVAL = 0.25
FEED_HEARTBEAT_INTERVAL = 5.0
_TICKER = "ticker"

Handler = Callable[[ServerConnection], Awaitable[None]]


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def _loads(raw: str | bytes) -> dict[str, Any] | None:
    """Parse one JSON object; anything else (binary, invalid, non-object) is None."""
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def echo(ws: ServerConnection) -> None:
    """Send every message back unchanged, text as text and binary as binary."""
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            await ws.send(message)


async def _ticks(ws: ServerConnection) -> None:
    seq = 0
    while True:
        await asyncio.sleep(FEED_TICK_INTERVAL)
        seq += 1
        # A deterministic wiggle: looks alive on a chart, needs no random state.
        price = round(100.0 + 5.0 * math.sin(seq / 20.0), 2)
        tick = {"type": "tick", "channel": _TICKER, "seq": seq, "price": price}
        await ws.send(_dumps(tick))


async def _heartbeats(ws: ServerConnection) -> None:
    n = 0
    while True:
        await asyncio.sleep(FEED_HEARTBEAT_INTERVAL)
        n += 1
        await ws.send(_dumps({"type": "ping", "id": f"hb-{n}"}))


async def _until_closed(coro: Awaitable[None]) -> None:
    # Background senders stop quietly when the client goes away.
    with contextlib.suppress(ConnectionClosed):
        await coro


async def _feed_auth(ws: ServerConnection) -> bool:
    """Run first-message auth; True when the client may continue."""
    try:
        async with asyncio.timeout(FEED_AUTH_TIMEOUT):
            raw = await ws.recv()
    except TimeoutError:
        await ws.close(AUTH_CLOSE_CODE, "auth timeout")
        return False
    message = _loads(raw)
    if message is None or message.get("type") != "auth":
        await ws.close(AUTH_CLOSE_CODE, "auth required")
        return False
    if message.get("token") != DEMO_TOKEN:
        await ws.send(_dumps({"type": "error", "code": "unauthorized"}))
        await ws.close(AUTH_CLOSE_CODE, "unauthorized")
        return False
    await ws.send(_dumps({"type": "auth_ok", "session": secrets.token_hex(8)}))
    return True


async def feed(ws: ServerConnection) -> None:
    """First-message auth, then subscribe/ticks, app pings and server heartbeats."""
    ticker: asyncio.Task[None] | None = None
    heartbeat: asyncio.Task[None] | None = None
    try:
        if not await _feed_auth(ws):
            return
        heartbeat = asyncio.create_task(_until_closed(_heartbeats(ws)))
        async for raw in ws:
            message = _loads(raw) or {}
            kind = message.get("type")
            channel = message.get("channel")
            if kind == "ping":
                await ws.send(_dumps({"type": "pong", "id": message.get("id")}))
            elif kind == "pong":
                continue
            elif kind in ("subscribe", "unsubscribe") and channel != _TICKER:
                error = {"type": "error", "code": "unknown_channel", "channel": channel}
                await ws.send(_dumps(error))
            elif kind == "subscribe":
                await ws.send(_dumps({"type": "subscribed", "channel": _TICKER}))
                if ticker is None:
                    ticker = asyncio.create_task(_until_closed(_ticks(ws)))
            elif kind == "unsubscribe":
                if ticker is not None:
                    ticker.cancel()
                    ticker = None
                await ws.send(_dumps({"type": "unsubscribed", "channel": _TICKER}))
            else:
                await ws.send(_dumps({"type": "error", "code": "bad_request"}))
    except ConnectionClosed:
        pass
    finally:
        for task in (ticker, heartbeat):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


class ChatRooms:
    """Room membership for /chat: room -> {connection: user name}."""

    def __init__(self) -> None:
        self._rooms: dict[str, dict[ServerConnection, str]] = {}

    def members(self, room: str) -> int:
        """Number of connections currently in ``room``."""
        return len(self._rooms.get(room, {}))

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one /chat connection until it closes, then drop its memberships."""
        try:
            async for raw in ws:
                await self._dispatch(ws, _loads(raw) or {})
        except ConnectionClosed:
            pass
        finally:
            for room in list(self._rooms):
                self._leave(ws, room)

    def _leave(self, ws: ServerConnection, room: str) -> None:
        members = self._rooms.get(room)
        if members is not None:
            members.pop(ws, None)
            if not members:
                del self._rooms[room]

    async def _dispatch(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        kind, room = message.get("type"), message.get("room")
        if not isinstance(room, str):
            await ws.send(_dumps({"type": "error", "code": "bad_request"}))
        elif kind == "join" and isinstance(message.get("user"), str):
            self._rooms.setdefault(room, {})[ws] = message["user"]
            await ws.send(_dumps({"type": "joined", "room": room}))
        elif kind == "leave":
            self._leave(ws, room)
            await ws.send(_dumps({"type": "left", "room": room}))
        elif kind == "message" and isinstance(message.get("text"), str):
            members = self._rooms.get(room, {})
            if ws not in members:
                await ws.send(_dumps({"type": "error", "code": "not_joined", "room": room}))
                return
            out = {"type": "message", "room": room, "user": members[ws], "text": message["text"]}
            # broadcast() never waits on a slow member, so one stuck reader cannot stall
            # the room; per-connection order is still send order.
            broadcast(list(members), _dumps(out))
        else:
            await ws.send(_dumps({"type": "error", "code": "bad_request"}))
