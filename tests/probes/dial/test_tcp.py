"""The connect phase's own socket handling (agent/probes/dial/tcp.py) on a real loopback server."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from agent.probes.dial.tcp import connect_tcp
from agent.probes.errors import ProbeError
from agent.result import ProbeResult, Reason


class _HangUp:
    """A loopback server that closes each connection it accepts; ``served`` once it did."""

    def __init__(self) -> None:
        self.served = asyncio.Event()

    async def __call__(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
        await writer.wait_closed()
        self.served.set()


def _result() -> ProbeResult:
    return ProbeResult(check="c", kind="probe", url="ws://127.0.0.1/", started_at=time.time())


async def test_connected_socket_sends_small_writes_at_once() -> None:
    """TCP_NODELAY is on even when the address info names no protocol (proto 0)."""
    handler = _HangUp()
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    infos = [(socket.AF_INET, socket.SOCK_STREAM, 0, "", ("127.0.0.1", port))]
    result = _result()
    before = time.perf_counter()
    try:
        transport, _, connected_at = await connect_tcp(infos, result, asyncio.Protocol)
        sock = transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert before <= connected_at <= time.perf_counter()
        assert result.peer_ip == "127.0.0.1"
        transport.close()
        await asyncio.wait_for(handler.served.wait(), 5)
    finally:
        server.close()
        await server.wait_closed()


async def test_every_resolved_address_is_tried_and_the_last_failure_named() -> None:
    """A refused address is skipped for the next one; when all refuse, the last is named."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused = closed.getsockname()[1]  # bound, not listening: connections are refused
        handler = _HangUp()
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        bad = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", refused))
        good = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))
        try:
            transport, _, _ = await connect_tcp([bad, good], _result(), asyncio.Protocol)
            assert transport.get_extra_info("peername") == ("127.0.0.1", port)
            transport.close()
            await asyncio.wait_for(handler.served.wait(), 5)
            with pytest.raises(ProbeError) as failed:
                await connect_tcp([bad, bad], _result(), asyncio.Protocol)
        finally:
            server.close()
            await server.wait_closed()
    assert failed.value.reason is Reason.CONNECT_REFUSED
    assert f"127.0.0.1:{refused}" in str(failed.value)
