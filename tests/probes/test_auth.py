"""Handshake credentials: each auth mode reaches a real server exactly as configured."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from agent.probes.dial.opener import open_connection
from agent.probes.errors import ProbeError
from agent.result import Reason, new_result
from tests.servers import make_check, timed_probe

# Every test here runs on both probe connections (tests/probes/conftest.py).
pytestmark = pytest.mark.usefixtures("engine")


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


class Recorder:
    """A websockets server admitting only requests that satisfy ``accept``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.accept: Any = lambda request: True
        self.url = ""

    def process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        self.requests.append(request)
        return None if self.accept(request) else ws.respond(401, "denied\n")


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    """A recording server on 127.0.0.1; ``recorder.url`` is its ws:// URL."""
    rec = Recorder()
    async with serve(echo, "127.0.0.1", 0, process_request=rec.process_request) as server:
        rec.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        yield rec


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("fields", "path", "header", "value"),
    [
        ({"auth": {"bearer": "tok-123"}}, "/", "Authorization", "Bearer tok-123"),
        (
            {"auth": {"basic": {"username": "ops", "password": "pa:ss"}}},
            "/",
            "Authorization",
            _basic("ops", "pa:ss"),
        ),
        ({"auth": {"headers": {"X-Api-Key": "k-9"}}}, "/", "X-Api-Key", "k-9"),
        ({"headers": {"X-Tenant": "blue"}}, "/", "X-Tenant", "blue"),
        ({}, "userinfo", "Authorization", _basic("alice", "wonder")),
    ],
    ids=["bearer", "basic", "secret-header", "plain-header", "url-userinfo"],
)
async def test_header_credentials_reach_the_server(
    recorder: Recorder, fields: dict[str, Any], path: str, header: str, value: str
) -> None:
    """Bearer, basic, secret headers, plain headers and URL userinfo are sent as configured."""
    recorder.accept = lambda request: request.headers.get(header) == value
    url = recorder.url + "/"
    if path == "userinfo":
        url = url.replace("ws://", "ws://alice:wonder@")
    result, _ = await timed_probe(make_check(url, **fields))
    assert result.success, result.message
    assert "wonder" not in result.url


@pytest.mark.parametrize(
    ("url_query", "param", "expected_path"),
    [
        ("", "token", "/feed?token=q-77"),
        ("?room=1", "access_token", "/feed?room=1&access_token=q-77"),
    ],
    ids=["plain-url", "url-with-query"],
)
async def test_query_token_is_added_to_the_request_url(
    recorder: Recorder, url_query: str, param: str, expected_path: str
) -> None:
    """auth.query appends the token to the requested path; the result URL never shows it."""
    check = make_check(
        f"{recorder.url}/feed{url_query}", auth={"query": {"param": param, "value": "q-77"}}
    )
    result, _ = await timed_probe(check)
    assert result.success, result.message
    assert recorder.requests[-1].path == expected_path
    assert "q-77" not in json.dumps(result.to_json())


async def test_missing_credentials_fail_as_handshake_status(recorder: Recorder) -> None:
    """A server refusing the upgrade with 401 fails as handshake_status naming 401."""
    recorder.accept = lambda request: False
    result, _ = await timed_probe(make_check(recorder.url))
    assert result.reason is Reason.HANDSHAKE_STATUS
    assert "401" in result.message
    assert result.status_code == 401


async def test_cross_origin_redirect_drops_credentials(recorder: Recorder) -> None:
    """Credentials are not replayed to another origin after a redirect."""

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(recorder.url.replace("ws://", "http://") + "/landed")

    app = web.Application()
    app.router.add_get("/{tail:.*}", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        check = make_check(
            f"ws://127.0.0.1:{port}/start",
            follow_redirects=True,
            auth={"bearer": "tok-123", "query": {"value": "q-77"}},
        )
        result, _ = await timed_probe(check)
    finally:
        await runner.cleanup()
    assert result.success, result.message
    landed = recorder.requests[-1]
    assert landed.path == "/landed"
    assert "Authorization" not in landed.headers


async def test_open_connection_is_reusable_with_extra_headers(recorder: Recorder) -> None:
    """open_connection (used by relay/watch) adds extra headers and returns an open socket."""
    recorder.accept = lambda request: request.headers.get("X-Role") == "publisher"
    check = make_check(recorder.url)
    result = new_result(check)
    conn = await open_connection(
        check, result, deadline=time.perf_counter() + 2, header_overrides={"X-Role": "publisher"}
    )
    try:
        await conn.send("hi")
        assert await conn.recv() == "hi"
    finally:
        await conn.close()
    assert {"resolve", "connect", "handshake"} <= set(result.phases)
    with pytest.raises(ProbeError) as info:
        await open_connection(check, new_result(check), deadline=time.perf_counter() + 2)
    assert info.value.reason is Reason.HANDSHAKE_STATUS
