"""Each demo path's protocol, spoken by a real websockets client (docs/demo.md)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent.demo import DEMO_TOKEN, DemoServer
from agent.demo import handlers as demo_handlers

DEADLINE = 2.0


def _open(url: str, **kwargs: Any) -> connect:
    return connect(url, proxy=None, ping_interval=None, open_timeout=DEADLINE, **kwargs)


async def _send(ws: ClientConnection, message: dict[str, Any]) -> None:
    await ws.send(json.dumps(message))


async def _recv(ws: ClientConnection) -> Any:
    async with asyncio.timeout(DEADLINE):
        return json.loads(await ws.recv())


async def _closed_code(ws: ClientConnection) -> int | None:
    """Wait (bounded) until the server closes, return the close code it sent."""
    async with asyncio.timeout(DEADLINE):
        await ws.wait_closed()
    return ws.close_code


async def _authed_feed(demo: DemoServer) -> ClientConnection:
    ws = await _open(demo.url("/feed"))
    await _send(ws, {"type": "auth", "token": DEMO_TOKEN})
    reply = await _recv(ws)
    assert reply["type"] == "auth_ok"
    return ws


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["echo.v1"], "echo.v1"),
        ([], None),
        (["other.v2"], None),
        (["other.v2", "echo.v1"], "echo.v1"),
    ],
    ids=["echo.v1", "none-offered", "other-only", "among-others"],
)
async def test_echo_subprotocol(demo: DemoServer, offered: list[str], chosen: str | None) -> None:
    """/echo picks echo.v1 when offered and goes on without a subprotocol otherwise."""
    async with _open(demo.url("/echo"), subprotocols=offered or None) as ws:
        assert ws.subprotocol == chosen


@pytest.mark.parametrize("message", ["hello", b"\x00\x01binary"], ids=["text", "binary"])
async def test_echo_echoes(demo: DemoServer, message: str | bytes) -> None:
    """/echo sends each message back with its frame type."""
    async with _open(demo.url("/echo")) as ws:
        await ws.send(message)
        async with asyncio.timeout(DEADLINE):
            assert await ws.recv() == message


@pytest.mark.parametrize(
    "headers",
    [None, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {DEMO_TOKEN}"}],
    ids=["missing", "wrong-token", "wrong-scheme"],
)
async def test_auth_rejects_with_401(demo: DemoServer, headers: dict[str, str] | None) -> None:
    """/auth refuses the upgrade with HTTP 401 without the demo bearer token."""
    with pytest.raises(InvalidStatus) as info:
        async with _open(demo.url("/auth"), additional_headers=headers):
            pass
    assert info.value.response.status_code == 401
    assert info.value.response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"], ids=["Bearer", "lowercase"])
async def test_auth_accepts_bearer_and_echoes(demo: DemoServer, scheme: str) -> None:
    """/auth upgrades with the demo bearer token (scheme case-insensitive) and echoes."""
    headers = {"Authorization": f"{scheme} {DEMO_TOKEN}"}
    async with _open(demo.url("/auth"), additional_headers=headers) as ws:
        await ws.send("ping me")
        async with asyncio.timeout(DEADLINE):
            assert await ws.recv() == "ping me"


async def test_unknown_path_is_404(demo: DemoServer) -> None:
    """A path that is not a demo target is refused with HTTP 404."""
    with pytest.raises(InvalidStatus) as info:
        async with _open(demo.url("/nope")):
            pass
    assert info.value.response.status_code == 404


async def test_feed_auth_subscribe_and_ticks(
    demo: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/feed: auth_ok with a session, subscribed, then ticks numbered 1, 2, 3 without gaps."""
    monkeypatch.setattr(demo_handlers, "FEED_TICK_INTERVAL", 0.02)
    ws = await _open(demo.url("/feed"))
    async with ws:
        await _send(ws, {"type": "auth", "token": DEMO_TOKEN})
        ok = await _recv(ws)
        assert ok["type"] == "auth_ok"
        assert ok["session"]
        await _send(ws, {"type": "subscribe", "channel": "ticker"})
        assert await _recv(ws) == {"type": "subscribed", "channel": "ticker"}
        ticks = [await _recv(ws) for _ in range(3)]
    assert [t["seq"] for t in ticks] == [1, 2, 3]
    assert all(t["type"] == "tick" and t["channel"] == "ticker" for t in ticks)
    assert all(isinstance(t["price"], float) for t in ticks)


@pytest.mark.parametrize("ping_id", ["abc-1", 42], ids=["string-id", "number-id"])
async def test_feed_app_ping(demo: DemoServer, ping_id: object) -> None:
    """/feed answers an application ping with a pong carrying the same id."""
    async with await _authed_feed(demo) as ws:
        await _send(ws, {"type": "ping", "id": ping_id})
        assert await _recv(ws) == {"type": "pong", "id": ping_id}


@pytest.mark.parametrize(
    ("message", "reply"),
    [
        ({"type": "subscribe", "channel": "nope"}, {"type": "error", "code": "unknown_channel"}),
        ({"type": "dance"}, {"type": "error", "code": "bad_request"}),
    ],
    ids=["unknown-channel", "unknown-type"],
)
async def test_feed_errors_keep_connection(
    demo: DemoServer, message: dict[str, Any], reply: dict[str, Any]
) -> None:
    """/feed answers a bad request after auth with an error and stays open."""
    async with await _authed_feed(demo) as ws:
        await _send(ws, message)
        assert (await _recv(ws)).items() >= reply.items()
        await _send(ws, {"type": "ping", "id": "still-there"})
        assert await _recv(ws) == {"type": "pong", "id": "still-there"}


async def test_feed_unsubscribe_stops_ticks(demo: DemoServer) -> None:
    """/feed: after unsubscribed, the next reply to a ping is the pong, not a tick."""
    async with await _authed_feed(demo) as ws:
        await _send(ws, {"type": "subscribe", "channel": "ticker"})
        await _recv(ws)
        await _send(ws, {"type": "unsubscribe", "channel": "ticker"})
        while (msg := await _recv(ws))["type"] == "tick":
            pass
        assert msg == {"type": "unsubscribed", "channel": "ticker"}
        await _send(ws, {"type": "ping", "id": "after"})
        assert await _recv(ws) == {"type": "pong", "id": "after"}


async def test_feed_wrong_token(demo: DemoServer) -> None:
    """/feed: a wrong token gets an unauthorized error, then close 4401."""
    async with _open(demo.url("/feed")) as ws:
        await _send(ws, {"type": "auth", "token": "guess"})
        assert await _recv(ws) == {"type": "error", "code": "unauthorized"}
        assert await _closed_code(ws) == 4401


@pytest.mark.parametrize(
    "first",
    ['{"type":"subscribe","channel":"ticker"}', "not json", b"\x01"],
    ids=["subscribe", "invalid-json", "binary"],
)
async def test_feed_requires_auth_first(demo: DemoServer, first: str | bytes) -> None:
    """/feed closes with 4401 when the first message is not auth."""
    async with _open(demo.url("/feed")) as ws:
        await ws.send(first)
        assert await _closed_code(ws) == 4401


async def test_feed_heartbeat(demo: DemoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """/feed sends heartbeats ping hb-1, hb-2 after auth (interval shortened for the test)."""
    monkeypatch.setattr(demo_handlers, "FEED_HEARTBEAT_INTERVAL", 0.05)
    async with await _authed_feed(demo) as ws:
        beats = [await _recv(ws), await _recv(ws)]
        await _send(ws, {"type": "pong", "id": "hb-1"})  # optional answer is accepted
        await _send(ws, {"type": "ping", "id": "x"})
        while (msg := await _recv(ws))["type"] == "ping":
            pass
    assert beats == [{"type": "ping", "id": "hb-1"}, {"type": "ping", "id": "hb-2"}]
    assert msg == {"type": "pong", "id": "x"}


async def test_feed_auth_timeout(demo: DemoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """/feed closes a client that never authenticates with 4401."""
    monkeypatch.setattr(demo_handlers, "FEED_AUTH_TIMEOUT", 0.05)
    async with _open(demo.url("/feed")) as ws:
        assert await _closed_code(ws) == 4401


async def _join(demo: DemoServer, room: str, user: str) -> ClientConnection:
    ws = await _open(demo.url("/chat"))
    await _send(ws, {"type": "join", "room": room, "user": user})
    assert await _recv(ws) == {"type": "joined", "room": room}
    return ws


async def test_chat_broadcast_to_room_including_sender(demo: DemoServer) -> None:
    """/chat delivers a message to every member of the room, sender included, not others."""
    alice, bob = await _join(demo, "ops", "alice"), await _join(demo, "ops", "bob")
    carol = await _join(demo, "dev", "carol")
    async with alice, bob, carol:
        await _send(alice, {"type": "message", "room": "ops", "text": "hi"})
        expected = {"type": "message", "room": "ops", "user": "alice", "text": "hi"}
        assert await _recv(alice) == expected
        assert await _recv(bob) == expected
        # carol's next message must be her own, proving nothing from "ops" was queued.
        await _send(carol, {"type": "message", "room": "dev", "text": "solo"})
        assert (await _recv(carol))["text"] == "solo"


@pytest.mark.parametrize(
    ("message", "reply"),
    [
        ({"type": "message", "room": "ops", "text": "x"}, {"code": "not_joined", "room": "ops"}),
        ({"type": "join", "room": "ops"}, {"code": "bad_request"}),
        ({"type": "shout"}, {"code": "bad_request"}),
    ],
    ids=["not-joined", "join-without-user", "unknown-type"],
)
async def test_chat_errors(
    demo: DemoServer, message: dict[str, Any], reply: dict[str, Any]
) -> None:
    """/chat answers invalid requests with a typed error."""
    async with _open(demo.url("/chat")) as ws:
        await _send(ws, message)
        assert await _recv(ws) == {"type": "error", **reply}


async def test_chat_members_leave_on_close(demo: DemoServer) -> None:
    """/chat drops a member when it leaves or its connection closes."""
    a, b = await _join(demo, "r", "a"), await _join(demo, "r", "b")
    await _send(a, {"type": "leave", "room": "r"})
    assert await _recv(a) == {"type": "left", "room": "r"}
    await a.close()
    await b.close()
    # Membership is cleaned up by the handler; wait for it with a deadline.
    async with asyncio.timeout(DEADLINE):
        while demo._rooms.members("r"):
            await asyncio.sleep(0.01)


async def _flaky_outcome(demo: DemoServer) -> str:
    try:
        async with _open(demo.url("/flaky"), close_timeout=0.2) as ws:
            try:
                async with asyncio.timeout(1.0):
                    await (await ws.ping())
            except TimeoutError:
                return "no-pong"
            except ConnectionClosed:
                return f"closed-{ws.close_code}"
            return "ok"
    except InvalidStatus as exc:
        return f"http-{exc.response.status_code}"


async def test_flaky_cycle(demo: DemoServer) -> None:
    """/flaky cycles ok, ok, HTTP 503, no pong, close 1011 by connection count, then repeats."""
    outcomes = [await _flaky_outcome(demo) for _ in range(6)]
    assert outcomes == ["ok", "ok", "http-503", "no-pong", "closed-1011", "ok"]
