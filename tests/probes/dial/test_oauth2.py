"""OAuth2 client credentials against a real local token endpoint (aiohttp)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from agent.config.models import OAuth2Config
from agent.probes.dial.oauth2 import fetch_token, invalidate_token
from agent.probes.errors import AuthRejected
from agent.result import Reason

SECRET = "client-secret-value"

Respond = Callable[[web.Request, int], Awaitable[web.StreamResponse]]


class TokenEndpoint:
    """Records every request; ``respond`` decides the answer (n = request number)."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        form = dict(await request.post())
        self.requests.append({"auth": request.headers.get("Authorization"), "form": form})
        return await self.respond(request, len(self.requests))


@asynccontextmanager
async def endpoint(respond: Respond) -> AsyncIterator[tuple[TokenEndpoint, str]]:
    ep = TokenEndpoint(respond)
    app = web.Application()
    app.router.add_post("/token/{unique}", ep.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        # A unique path per endpoint: tokens are cached per URL, and ports get reused.
        yield ep, f"http://127.0.0.1:{port}/token/{uuid.uuid4().hex}"
    finally:
        await runner.cleanup()


def cfg(url: str, **extra: Any) -> OAuth2Config:
    return OAuth2Config.model_validate(
        {"token_url": url, "client_id": "probe-client", "client_secret": SECRET, **extra}
    )


def token_response(expires_in: Any = 3600) -> Respond:
    async def respond(_request: web.Request, n: int) -> web.StreamResponse:
        body: dict[str, Any] = {"access_token": f"tok-{n}", "token_type": "Bearer"}
        if expires_in is not None:
            body["expires_in"] = expires_in
        return web.json_response(body)

    return respond


async def test_posts_client_credentials_with_basic_auth() -> None:
    """The request is a client_credentials grant with basic auth, scope and audience."""
    async with endpoint(token_response()) as (ep, url):
        token = await fetch_token(cfg(url, scopes=["read", "feed"], audience="api://x"))
    assert token == "tok-1"
    (req,) = ep.requests
    expected = base64.b64encode(f"probe-client:{SECRET}".encode()).decode()
    assert req["auth"] == f"Basic {expected}"
    assert req["form"] == {
        "grant_type": "client_credentials",
        "scope": "read feed",
        "audience": "api://x",
    }


async def test_token_is_cached_until_expiry() -> None:
    """A second fetch for the same client reuses the cached token."""
    async with endpoint(token_response()) as (ep, url):
        first, second = await fetch_token(cfg(url)), await fetch_token(cfg(url))
    assert first == second == "tok-1"
    assert len(ep.requests) == 1


async def test_cache_keyed_by_scopes() -> None:
    """Different scopes are different tokens."""
    async with endpoint(token_response()) as (ep, url):
        a = await fetch_token(cfg(url, scopes=["a"]))
        b = await fetch_token(cfg(url, scopes=["b"]))
    assert (a, b) == ("tok-1", "tok-2")
    assert len(ep.requests) == 2


@pytest.mark.parametrize("expires_in", [None, 0, "soon"], ids=["absent", "zero", "garbage"])
async def test_no_usable_expiry_means_no_cache(expires_in: Any) -> None:
    """Without a usable expires_in the token is fetched again each time."""
    async with endpoint(token_response(expires_in)) as (ep, url):
        assert await fetch_token(cfg(url)) == "tok-1"
        assert await fetch_token(cfg(url)) == "tok-2"
    assert len(ep.requests) == 2


async def test_invalidate_forces_a_new_fetch() -> None:
    """invalidate_token drops the cached token (e.g. after the server refused it)."""
    async with endpoint(token_response()) as (ep, url):
        await fetch_token(cfg(url))
        invalidate_token(cfg(url))
        await fetch_token(cfg(url))
    assert len(ep.requests) == 2


async def test_concurrent_callers_share_one_request() -> None:
    """Many checks asking at once cause a single token request."""
    release, arrived = asyncio.Event(), asyncio.Event()

    async def slow(_request: web.Request, n: int) -> web.StreamResponse:
        arrived.set()
        await release.wait()
        return web.json_response({"access_token": f"tok-{n}", "expires_in": 60})

    async with endpoint(slow) as (ep, url):
        tasks = [asyncio.create_task(fetch_token(cfg(url))) for _ in range(5)]
        await asyncio.wait_for(arrived.wait(), 5)
        release.set()
        tokens = await asyncio.gather(*tasks)
    assert tokens == ["tok-1"] * 5
    assert len(ep.requests) == 1


def status(code: int, body: Any = None, *, raw: str | None = None) -> Respond:
    async def respond(_request: web.Request, _n: int) -> web.StreamResponse:
        if raw is not None:
            return web.Response(status=code, text=raw, content_type="application/json")
        return web.json_response(body or {}, status=code)

    return respond


FAILURES = [
    ("401-invalid-client", status(401, {"error": "invalid_client"}), "HTTP 401 (invalid_client)"),
    ("500", status(500, raw="oops"), "HTTP 500"),
    ("bad-json", status(200, raw="{not json"), "without a JSON object"),
    ("json-list", status(200, raw="[1]"), "without a JSON object"),
    ("no-access-token", status(200, {"token_type": "Bearer"}), "no access_token"),
    ("empty-access-token", status(200, {"access_token": ""}), "no access_token"),
]


@pytest.mark.parametrize(
    ("respond", "text"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES]
)
async def test_endpoint_failures_are_auth_rejected(respond: Respond, text: str) -> None:
    """Any token endpoint failure is auth_rejected naming the problem, never the secret."""
    async with endpoint(respond) as (_ep, url):
        with pytest.raises(AuthRejected) as info:
            await fetch_token(cfg(url))
    message = str(info.value)
    assert info.value.reason is Reason.AUTH_REJECTED
    assert text in message
    assert "token endpoint http://127.0.0.1:" in message
    assert SECRET not in message


async def test_unreachable_endpoint_is_auth_rejected() -> None:
    """A refused connection is auth_rejected naming the endpoint, without the query."""
    async with endpoint(token_response()) as (_ep, url):
        pass  # closed again: the port now refuses
    with pytest.raises(AuthRejected, match=r"cannot reach token endpoint .*ConnectError") as info:
        await fetch_token(cfg(url + "?client_secret=" + SECRET))
    assert SECRET not in str(info.value)


async def test_slow_endpoint_times_out() -> None:
    """An endpoint slower than oauth2.timeout is auth_rejected saying so."""
    release = asyncio.Event()

    async def hang(_request: web.Request, _n: int) -> web.StreamResponse:
        await release.wait()
        return web.json_response({"access_token": "late"})

    async with endpoint(hang) as (_ep, url):
        try:
            with pytest.raises(AuthRejected, match=r"did not answer within 0.2s"):
                await fetch_token(cfg(url, timeout=0.2))
        finally:
            release.set()  # let the server's handler finish so shutdown is prompt


async def test_failure_is_not_cached() -> None:
    """After a failed fetch the next call asks the endpoint again."""

    async def flaky(_request: web.Request, n: int) -> web.StreamResponse:
        if n == 1:
            return web.json_response({"error": "temporarily_unavailable"}, status=503)
        return web.json_response({"access_token": "tok-ok", "expires_in": 60})

    async with endpoint(flaky) as (_ep, url):
        with pytest.raises(AuthRejected):
            await fetch_token(cfg(url))
        assert await fetch_token(cfg(url)) == "tok-ok"
