"""Phases end when their event happened, not when the probe's task next runs.

Each test keeps the probe's event loop busy right after one event (a blocking call
inside the callback that saw it, as a loaded agent's other work would), against a
real server on 127.0.0.1. The phase that the event ends must not contain that
wait; ``total`` must (it is the agent's own time between phases, in no phase).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.client import ClientProtocol

import agent.probes.dial.opener as connection_module
from agent.probes.connections._shared import ReplayUntilMade
from agent.probes.connections.discarding import DiscardingConnection
from agent.probes.connections.reading import ReadingConnection
from agent.probes.dial.tls import StampedSSLObject
from agent.result import ProbeResult
from tests.conftest import TLSFiles
from tests.servers import make_check, timed_probe

# Every test here runs on both probe connections (tests/probes/conftest.py).
pytestmark = pytest.mark.usefixtures("engine")

BUSY = 0.2  # s the loop is kept busy right after the event


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def _probe_echo() -> ProbeResult:
    """One plain probe (one ping) of an echo server on 127.0.0.1."""
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        result, _ = await timed_probe(make_check(f"ws://127.0.0.1:{port}/", pings=1))
    return result


def _busy_after(
    monkeypatch: pytest.MonkeyPatch, cls: type, name: str, when: Callable[[Any], bool]
) -> list[float]:
    """Patch ``cls.name`` to block the loop for BUSY after it ran, once ``when(self)``."""
    original = getattr(cls, name)
    blocked: list[float] = []

    def wrapper(self: Any, *args: Any) -> Any:
        out = original(self, *args)
        if not blocked and when(self):
            blocked.append(time.perf_counter())
            time.sleep(BUSY)  # the busy loop itself, not a wait for a condition
        return out

    monkeypatch.setattr(cls, name, wrapper)
    return blocked


async def test_connect_ends_at_connection_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loop kept busy right after connection_made is not counted as connect time."""
    blocked = _busy_after(monkeypatch, ReplayUntilMade, "connection_made", lambda _: True)
    result = await _probe_echo()
    assert result.success, result.message
    assert blocked, "the busy callback never ran"
    assert result.phases["connect"] < BUSY / 2
    assert result.phases["handshake"] < BUSY / 2
    assert result.phases["total"] >= BUSY  # the agent's own wait: in total, in no phase


def test_connect_excludes_work_queued_while_it_completed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On uvloop (the agent's loop), callbacks queued while the TCP connection was
    being made are not connect time: the completion is stamped while the loop polls,
    ahead of them (``connection_made`` would come after them)."""
    uvloop = pytest.importorskip("uvloop")
    hog, hogs = 0.02, 5  # callbacks that each keep the loop busy this long
    original = connection_module.resolve

    async def resolve_then_queue_work(*args: Any, **kwargs: Any) -> Any:
        infos = await original(*args, **kwargs)
        # The probe connects right after this returns, in the same loop turn.
        loop = asyncio.get_running_loop()
        for _ in range(hogs):
            loop.call_soon(time.sleep, hog)
        return infos

    monkeypatch.setattr(connection_module, "resolve", resolve_then_queue_work)

    result = uvloop.run(_probe_echo())
    assert result.success, result.message
    assert result.phases["connect"] < hog
    assert result.phases["total"] >= hogs * hog


async def test_handshake_ends_when_the_101_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loop kept busy right after the 101 was parsed is not counted as handshake time."""
    blocked = [
        _busy_after(monkeypatch, cls, "data_received", lambda conn: conn.response is not None)
        for cls in (DiscardingConnection, ReadingConnection)
    ]
    result = await _probe_echo()
    assert result.success, result.message
    assert any(blocked), "the busy callback never ran"
    assert result.phases["handshake"] < BUSY / 2
    assert result.phases["ping"] < BUSY / 2
    assert result.phases["total"] >= BUSY


async def test_handshake_starts_when_the_request_is_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The time the agent takes to build the upgrade request is not handshake time."""
    blocked = _busy_after(monkeypatch, ClientProtocol, "connect", lambda _: True)
    result = await _probe_echo()
    assert result.success, result.message
    assert blocked, "the request was not built by ClientProtocol.connect"
    assert result.phases["handshake"] < BUSY / 2
    assert result.phases["total"] >= BUSY


async def test_tls_ends_when_the_handshake_completed(
    monkeypatch: pytest.MonkeyPatch, tls_files: TLSFiles
) -> None:
    """A loop kept busy right after the TLS handshake completed is not counted as tls time."""
    blocked = _busy_after(
        monkeypatch, StampedSSLObject, "do_handshake", lambda obj: obj.handshake_at is not None
    )
    async with serve(echo, "127.0.0.1", 0, ssl=tls_files.server_context()) as server:
        port = server.sockets[0].getsockname()[1]
        check = make_check(f"wss://127.0.0.1:{port}/", tls={"ca_file": tls_files.ca_file})
        result, _ = await timed_probe(check)
    assert result.success, result.message
    assert blocked, "the client's TLS handshake did not run through StampedSSLObject"
    assert result.phases["tls"] < BUSY / 2
    assert result.phases["handshake"] < BUSY / 2
    assert result.phases["total"] >= BUSY
