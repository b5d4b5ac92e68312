"""An explicitly configured HTTP CONNECT proxy is used; none is used otherwise."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve

from agent.result import Reason
from tests.conftest import TLSFiles
from tests.servers import RawServer, connect_proxy, make_check, timed_probe


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """Port of a plain echo server."""
    async with serve(echo, "127.0.0.1", 0) as server:
        yield server.sockets[0].getsockname()[1]


async def test_probe_goes_through_configured_proxy(echo_port: int) -> None:
    """With proxy set, the connection is tunnelled through it and still measured."""
    targets: list[str] = []
    async with RawServer(connect_proxy(targets)) as proxy:
        check = make_check(f"ws://127.0.0.1:{echo_port}/", proxy=f"http://127.0.0.1:{proxy.port}")
        result, _ = await timed_probe(check)
    assert result.success, result.message
    assert targets == [f"127.0.0.1:{echo_port}"]
    assert result.phases["connect"] > 0
    assert result.phases["handshake"] > 0
    assert len(result.pings) == 3


async def test_wss_through_proxy_verifies_the_target(tls_files: TLSFiles) -> None:
    """TLS to the target runs inside the tunnel, verified against the configured CA."""
    targets: list[str] = []
    ctx: ssl.SSLContext = tls_files.server_context()
    async with serve(echo, "127.0.0.1", 0, ssl=ctx) as server:
        port = server.sockets[0].getsockname()[1]
        async with RawServer(connect_proxy(targets)) as proxy:
            check = make_check(
                f"wss://127.0.0.1:{port}/",
                proxy=f"http://127.0.0.1:{proxy.port}",
                tls={"ca_file": tls_files.ca_file},
            )
            result, _ = await timed_probe(check)
    assert result.success, result.message
    assert result.tls is not None
    assert result.tls.version is not None


async def test_proxy_refusing_the_tunnel_is_a_network_failure(echo_port: int) -> None:
    """A proxy answering 407 fails the run as network, naming the proxy."""
    async with RawServer(connect_proxy([], refuse=407)) as proxy:
        check = make_check(f"ws://127.0.0.1:{echo_port}/", proxy=f"http://127.0.0.1:{proxy.port}")
        result, _ = await timed_probe(check)
    assert result.reason is Reason.NETWORK
    assert "proxy" in result.message


async def test_environment_proxy_is_ignored(
    echo_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY in the environment is not used unless the check configures a proxy."""
    targets: list[str] = []
    async with RawServer(connect_proxy(targets)) as proxy:
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        result, _ = await timed_probe(make_check(f"ws://127.0.0.1:{echo_port}/"))
    assert result.success, result.message
    assert targets == []
