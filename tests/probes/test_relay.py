"""The relay kind against a real chat-room server on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from agent.config import CheckConfig
from agent.probes import PROBES
from agent.probes.relay import run
from agent.result import ProbeResult, Reason

Handler = Callable[[ServerConnection], Awaitable[None]]
TOKEN = "relay-s3cret"


class Rooms:
    """A chat server: join a room, messages are broadcast to its members.

    ``deliver`` decides, per member's user name, whether it gets a message:
    the lever for a room that drops messages.
    """

    def __init__(self, deliver: Callable[[str], bool] = lambda _user: True) -> None:
        self.rooms: dict[str, dict[ServerConnection, str]] = {}
        self.deliver = deliver
        self.connections = 0
        self.closed = 0
        #: Tokens presented in ``auth`` messages, in order; only ``TOKEN`` is accepted.
        self.tokens: list[str] = []

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "auth":
                    self.tokens.append(msg["token"])
                    ok = msg["token"] == TOKEN
                    await ws.send(json.dumps({"type": "authed" if ok else "denied"}))
                    continue
                room = self.rooms.setdefault(msg["room"], {})
                if msg["type"] == "join":
                    room[ws] = msg["user"]
                    await ws.send(json.dumps({"type": "presence", "room": msg["room"]}))
                    await ws.send(json.dumps({"type": "joined", "user": msg["user"]}))
                elif msg["type"] == "message":
                    targets = [m for m, user in room.items() if self.deliver(user)]
                    broadcast(targets, json.dumps({"type": "message", "text": msg["text"]}))
        except ConnectionClosed:
            pass
        finally:
            self.closed += 1


@asynccontextmanager
async def chat(rooms: Rooms) -> AsyncIterator[str]:
    async with serve(rooms.handle, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/chat"


JOIN = [
    {"send": {"type": "join", "room": "probe-{{run}}", "user": "{{connection}}"}},
    {"expect": {"json": {"type": "joined", "user": "{{connection}}"}}},
]
PUBLISH = {"type": "message", "room": "probe-{{run}}", "text": "{{marker}}"}


AUTH_STEPS = [
    {"send": {"type": "auth", "token": "{{token}}"}},
    {"expect": {"json": {"type": "authed"}, "fail_if": {"json": {"type": "denied"}}}},
]


def relay_check(
    url: str, *, timeout: float = 3.0, auth: dict[str, Any] | None = None, **relay: Any
) -> CheckConfig:
    return CheckConfig.model_validate(
        {
            "name": "relay",
            "kind": "relay",
            "url": url,
            "timeout": timeout,
            "relay": {"join": JOIN, "publish": PUBLISH, **relay},
            **({"auth": auth} if auth is not None else {}),
        }
    )


async def run_relay(rooms: Rooms, auth: dict[str, Any] | None = None, **relay: Any) -> ProbeResult:
    async with chat(rooms) as url:
        return await run(relay_check(url, auth=auth, **relay))


@pytest.mark.parametrize("receivers", [1, 3], ids=["one-receiver", "three-receivers"])
async def test_marker_reaches_every_receiver(receivers: int) -> None:
    """Every receiver sees the marker; each one's delivery latency is reported."""
    rooms = Rooms()
    result = await run_relay(rooms, receivers=receivers, match={"json": {"type": "message"}})
    assert result.success, result.message
    assert sorted(result.relay) == [f"receiver{i}" for i in range(1, receivers + 1)]
    assert all(0 < v < 3 for v in result.relay.values())
    assert rooms.connections == receivers + 1
    assert {"connect", "handshake", "steps", "total", "close"} <= result.phases.keys()


async def test_auth_steps_run_on_every_connection_before_joining() -> None:
    """Each connection runs the check's auth steps (``{{token}}`` from auth.token) first."""
    rooms = Rooms()
    result = await run_relay(rooms, auth={"token": TOKEN, "steps": AUTH_STEPS}, receivers=2)
    assert result.success, result.message
    assert rooms.tokens == [TOKEN] * 3
    # The publisher's result holds its auth steps, then its join steps.
    assert [s.name for s in result.steps][:2] == ["auth:send", "auth:expect"]
    assert {"auth", "steps"} <= result.phases.keys()


async def test_refused_auth_step_fails_as_auth_rejected() -> None:
    """A connection whose auth step is refused fails the run as auth_rejected."""
    rooms = Rooms()
    result = await run_relay(rooms, auth={"token": "wrong", "steps": AUTH_STEPS}, receivers=1)
    assert result.reason is Reason.AUTH_REJECTED, result.message
    assert rooms.tokens == ["wrong", "wrong"]
    assert "wrong" not in result.message


async def test_all_connections_closed() -> None:
    """Every connection is closed by the end of the run."""
    rooms = Rooms()
    result = await run_relay(rooms, receivers=2)
    assert result.success
    assert rooms.closed == 3


async def test_dropping_room_fails_naming_receiver() -> None:
    """A room that drops messages for one member fails as expect_timeout naming it."""
    rooms = Rooms(deliver=lambda user: user != "receiver2")
    result = await run_relay(rooms, receivers=3, deadline=0.3)
    assert result.reason is Reason.EXPECT_TIMEOUT
    assert "did not receive the published marker" in result.message
    assert "2 of 3 receivers got it" in result.message
    assert result.message.startswith("no matching message within 0.3s: receiver")
    assert sorted(result.relay) == ["receiver1", "receiver3"]
    assert "receiver2 did not receive" in result.message
    assert rooms.closed == 4


async def test_room_dropping_everything() -> None:
    """A room that delivers nothing fails, listing every receiver."""
    result = await run_relay(Rooms(deliver=lambda _user: False), receivers=2, deadline=0.2)
    assert result.reason is Reason.EXPECT_TIMEOUT
    assert "receiver1, receiver2" in result.message
    assert result.relay == {}


async def test_join_failure_names_connection() -> None:
    """A server that never confirms the join fails naming the connection and step."""

    async def mute(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with serve(mute, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        join = [JOIN[0], {"name": "joined", "expect": {"json": {"type": "joined"}, "timeout": 0.2}}]
        result = await run(relay_check(f"ws://127.0.0.1:{port}/", timeout=1.0, join=join))
    assert result.reason is Reason.EXPECT_TIMEOUT
    assert result.message.startswith("no matching message at step 2 'joined' on publisher")


async def test_refused_connection_is_connect_refused() -> None:
    """Nothing listening fails as connect_refused without hanging."""
    async with serve(Rooms().handle, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
    result = await run(relay_check(f"ws://127.0.0.1:{port}/"))
    assert result.reason is Reason.CONNECT_REFUSED


async def test_match_filters_marker_messages() -> None:
    """With match set, a marker in a non-matching message does not count."""
    result = await run_relay(Rooms(), match={"json": {"type": "dm"}}, deadline=0.2)
    assert result.reason is Reason.EXPECT_TIMEOUT


def test_relay_is_registered() -> None:
    """The relay kind is in the probe registry."""
    assert PROBES["relay"] is run


@pytest.mark.parametrize(
    ("relay", "message"),
    [
        ({"publish": "no marker here"}, "must contain {{marker}}"),
        ({"match": {"contains": "x"}}, "taken by the marker"),
        ({"receivers": 0}, "greater than or equal to 1"),
    ],
    ids=["publish-without-marker", "match-contains", "zero-receivers"],
)
def test_relay_config_errors(relay: dict[str, Any], message: str) -> None:
    """Relay settings that cannot work are rejected at validation."""
    with pytest.raises(ValueError, match=message):
        CheckConfig.model_validate({"name": "r", "kind": "relay", "url": "ws://h/", "relay": relay})
