"""Scripted checks end to end: the probe and relay kinds, OAuth2, and the example files."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve

from agent.config import CheckConfig
from agent.config.loader import load_config
from agent.demo.server import DemoServer
from agent.probes import PROBES
from agent.result import Reason
from agent.runtime.registries import REGISTRIES

REPO = Path(__file__).resolve().parents[3]
TOKEN = "oauth-access-token-123"
SECRET = "oauth-client-secret"


@asynccontextmanager
async def token_endpoint(
    status: int = 200, *, expires_in: int | None = 300, hits: list[str] | None = None
) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        if hits is not None:
            hits.append(request.path)
        if status != 200:
            return web.json_response({"error": "invalid_client"}, status=status)
        body: dict[str, Any] = {"access_token": TOKEN}
        if expires_in is not None:
            body["expires_in"] = expires_in
        return web.json_response(body)

    app = web.Application()
    app.router.add_post("/token/{unique}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        # A unique path per endpoint: tokens are cached per URL, and ports get reused.
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/token/{uuid.uuid4().hex}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def message_auth_server(seen_headers: list[str | None]) -> AsyncIterator[str]:
    """Accepts the first message {"type":"auth","token":TOKEN}; else closes 4403."""

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen_headers.append(ws.request.headers.get("Authorization"))
        msg = json.loads(await ws.recv())
        if msg.get("token") != TOKEN:
            await ws.close(4403, "forbidden")
            return
        await ws.send(json.dumps({"type": "noise"}))
        await ws.send(json.dumps({"type": "auth_ok"}))
        async for raw in ws:
            await ws.send(raw)

    async with serve(handler, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


AUTH_STEPS = [
    {"send": {"type": "auth", "token": "{{token}}"}},
    {"name": "accepted", "expect": {"json": {"type": "auth_ok"}, "timeout": 1}},
]


def oauth_check(url: str, token_url: str, use: str, **extra: Any) -> CheckConfig:
    return CheckConfig.model_validate(
        {
            "name": "oauth",
            "url": url,
            "timeout": 3,
            "pings": 1,
            "auth": {
                "oauth2": {
                    "token_url": token_url,
                    "client_id": "c",
                    "client_secret": SECRET,
                    "use": use,
                },
                "steps": AUTH_STEPS,
            },
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("use", "header"),
    [("message", None), ("bearer", f"Bearer {TOKEN}")],
    ids=["token-in-first-message", "token-as-bearer-too"],
)
async def test_oauth2_token_reaches_first_message(use: str, header: str | None) -> None:
    """The fetched token fills {{token}} in auth steps; with use=bearer it is a header too."""
    headers: list[str | None] = []
    async with token_endpoint() as token_url, message_auth_server(headers) as url:
        result = await PROBES["probe"](oauth_check(url, token_url, use))
    assert result.success, result.message
    assert headers == [header]
    assert "auth" in result.phases


@pytest.mark.parametrize("use", ["message", "bearer"])
async def test_oauth2_token_is_fetched_once_per_run(use: str) -> None:
    """A token that cannot be cached (no expires_in) costs one request per run, not two."""
    headers: list[str | None] = []
    hits: list[str] = []
    async with (
        token_endpoint(expires_in=None, hits=hits) as token_url,
        message_auth_server(headers) as url,
    ):
        for run in (1, 2):
            result = await PROBES["probe"](oauth_check(url, token_url, use))
            assert result.success, result.message
            assert len(hits) == run
    assert headers == [f"Bearer {TOKEN}" if use == "bearer" else None] * 2


async def test_token_endpoint_refusal_is_auth_rejected() -> None:
    """A 401 from the token endpoint fails the probe as auth_rejected before connecting."""
    headers: list[str | None] = []
    async with token_endpoint(401) as token_url, message_auth_server(headers) as url:
        result = await PROBES["probe"](oauth_check(url, token_url, "message"))
    assert result.reason is Reason.AUTH_REJECTED
    assert "HTTP 401" in result.message
    assert SECRET not in result.message
    assert headers == []


async def test_first_message_refusal_through_probe() -> None:
    """A close 4403 answering the auth message fails the probe as auth_rejected."""
    check = CheckConfig.model_validate(
        {
            "name": "fm",
            "url": "ws://127.0.0.1:1/",
            "timeout": 3,
            "auth": {"steps": [{"send": {"type": "auth", "token": "nope"}}, AUTH_STEPS[1]]},
        }
    )
    async with message_auth_server([]) as url:
        result = await PROBES["probe"](check.model_copy(update={"url": url}))
    assert result.reason is Reason.AUTH_REJECTED
    assert "4403" in result.message
    assert result.close_code == 4403


async def test_relay_with_oauth2_token_in_join() -> None:
    """Every relay connection can authenticate with the OAuth2 token."""

    async def room(ws: ServerConnection) -> None:
        msg = json.loads(await ws.recv())
        if msg.get("token") != TOKEN:
            await ws.close(4401, "unauthorized")
            return
        await ws.send(json.dumps({"type": "auth_ok"}))
        members.append(ws)
        async for raw in ws:
            for m in members:
                await m.send(raw)

    members: list[ServerConnection] = []
    async with token_endpoint() as token_url, serve(room, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        check = oauth_check(url, token_url, "message", kind="relay", relay={"receivers": 2})
        result = await PROBES["relay"](check)
    assert result.success, result.message
    assert sorted(result.relay) == ["receiver1", "receiver2"]


EXAMPLES = ["demo-feed", "demo-chat-relay", "demo-auth-required", "demo-feed-rejects-bad-token"]


@pytest.fixture
async def demo() -> AsyncIterator[DemoServer]:
    server = DemoServer()
    await server.start("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.stop()


async def test_example_checks_succeed_against_demo(demo: DemoServer, tmp_path: Path) -> None:
    """feed.yaml, chat.yaml and negative-auth.yaml all succeed against the demo targets."""
    config = tmp_path / "agent.yaml"
    files = [str(REPO / "checks" / f) for f in ("feed.yaml", "chat.yaml", "negative-auth.yaml")]
    config.write_text(json.dumps({"check_files": files}))
    checks = {c.name: c for c in load_config(config, registries=REGISTRIES).checks}
    assert sorted(checks) == sorted(EXAMPLES)
    for name in EXAMPLES:
        check = checks[name]
        check = check.model_copy(update={"url": check.url.replace("8765", str(demo.port))})
        result = await PROBES[check.kind](check)
        assert result.success, f"{name}: {result.reason} {result.message}"
    # Spot-check what the feed example measures.
    feed = checks["demo-feed"]
    result = await PROBES["probe"](
        feed.model_copy(update={"url": feed.url.replace("8765", str(demo.port))})
    )
    assert {"auth", "steps", "first_message", "app_ping"} <= result.phases.keys()
    assert len(result.app_pings) == 3
