"""An injected delay lands in the phase where it happened, not in its neighbours."""

from __future__ import annotations

import pytest
from websockets.asyncio.server import ServerConnection, serve

from tests.conftest import TLSFiles
from tests.servers import (
    RawServer,
    delayed_101,
    delayed_pong,
    delaying_relay,
    make_check,
    timed_probe,
)

# Every test here runs on both probe connections (tests/probes/conftest.py).
pytestmark = pytest.mark.usefixtures("engine")


DELAY = 0.25
CONNECT_PHASES = ("resolve", "connect", "tls", "handshake")


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def _largest(phases: dict[str, float]) -> str:
    return max((p for p in CONNECT_PHASES if p in phases), key=lambda p: phases[p])


async def test_slow_upgrade_response_is_handshake_time() -> None:
    """A server answering the upgrade late adds the delay to handshake only."""
    async with RawServer(delayed_101(DELAY)) as srv:
        result, _ = await timed_probe(make_check(srv.url(), pings=0, close_timeout=0.1))
    assert result.success, result.message
    assert result.phases["handshake"] >= DELAY
    assert _largest(result.phases) == "handshake"
    assert result.phases["total"] >= result.phases["handshake"]


async def test_slow_server_hello_is_tls_time(tls_files: TLSFiles) -> None:
    """A delayed ServerHello adds the delay to tls, not connect or handshake."""
    async with serve(echo, "127.0.0.1", 0, ssl=tls_files.server_context()) as server:
        port = server.sockets[0].getsockname()[1]
        async with RawServer(delaying_relay(port, first_reply_delay=DELAY)) as relay:
            check = make_check(relay.url(scheme="wss"), tls={"ca_file": tls_files.ca_file})
            result, _ = await timed_probe(check)
    assert result.success, result.message
    assert result.phases["tls"] >= DELAY
    assert _largest(result.phases) == "tls"


@pytest.mark.parametrize("pings", [1, 3], ids=["one-ping", "three-pings"])
async def test_late_pongs_are_the_measured_rtts(pings: int) -> None:
    """Each RTT includes the server's pong delay; the ping phase holds all of them."""
    async with RawServer(delayed_pong(DELAY / 2)) as srv:
        result, _ = await timed_probe(make_check(srv.url(), pings=pings))
    assert result.success, result.message
    assert len(result.pings) == pings
    assert all(rtt >= DELAY / 2 for rtt in result.pings)
    assert result.phases["ping"] >= sum(result.pings)
