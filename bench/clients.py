"""The probe cycles the benchmarks compare: bare websockets, wsprobe's engine, raw bytes.

Each cycle is connect + HTTP upgrade + 3 pings + close against one URL and returns a
:class:`Cycle` with what it measured. ``wsprobe_engine()`` returns None (and why) while
the agent's probe engine is not importable, so scenarios can skip it cleanly.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import connect

__all__ = ["PINGS", "Cycle", "CycleFn", "bare_cycle", "raw_cycle", "wsprobe_engine"]

PINGS = 3


@dataclass
class Cycle:
    """What one cycle measured (seconds); ``None`` where the client cannot tell."""

    ok: bool
    connect: float | None = None
    handshake: float | None = None
    pings: list[float] = field(default_factory=list)
    lag_suspect: bool = False


CycleFn = Callable[[str], Awaitable[Cycle]]


async def bare_cycle(url: str) -> Cycle:
    """The reference: websockets' own client, nothing else."""
    t0 = time.perf_counter()
    async with connect(
        url, ping_interval=None, proxy=None, compression=None, open_timeout=10
    ) as ws:
        opened = time.perf_counter() - t0
        pings = []
        for _ in range(PINGS):
            p0 = time.perf_counter()
            await (await ws.ping())
            pings.append(time.perf_counter() - p0)
    return Cycle(ok=True, handshake=opened, pings=pings)


def wsprobe_engine() -> tuple[CycleFn | None, str]:
    """wsprobe's probe engine as a cycle, or (None, why it is unavailable)."""
    try:
        from agent.config.models import CheckConfig
        from agent.probes import PROBES
    except ImportError as exc:
        return None, f"agent.probes not importable yet ({exc})"
    if "probe" not in PROBES:
        return None, "PROBES has no 'probe' kind yet"
    probe = PROBES["probe"]
    checks: dict[str, CheckConfig] = {}

    async def cycle(url: str) -> Cycle:
        check = checks.get(url)
        if check is None:
            check = checks[url] = CheckConfig(name="bench", url=url, pings=PINGS)
        result = await probe(check)
        return Cycle(
            ok=result.success,
            connect=result.phases.get("connect"),
            handshake=result.phases.get("handshake"),
            pings=list(result.pings),
            lag_suspect=result.lag_suspect,
        )

    return cycle, "agent.probes.PROBES['probe']"


def _masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(2)
    length = head[1] & 0x7F
    return head[0] & 0x0F, await reader.readexactly(length)


async def raw_cycle(url: str) -> Cycle:
    """The truth-meter: hand-written frames over asyncio streams, minimal overhead.

    Used only on an idle loop to calibrate what the network path (proxy delays plus
    loopback plus server) really costs, phase by phase.
    """
    hostport, _, path = url.split("//", 1)[1].partition("/")
    host, port = hostport.rsplit(":", 1)
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, int(port))
    t1 = time.perf_counter()
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        t2 = time.perf_counter()
        if not head.startswith(b"HTTP/1.1 101"):
            return Cycle(ok=False)
        pings = []
        for i in range(PINGS):
            p0 = time.perf_counter()
            writer.write(_masked(0x9, i.to_bytes(4, "big")))
            opcode, _ = await _read_frame(reader)
            pings.append(time.perf_counter() - p0)
            if opcode != 0xA:
                return Cycle(ok=False)
        writer.write(_masked(0x8, (1000).to_bytes(2, "big")))
        await _read_frame(reader)
    finally:
        writer.close()
        await writer.wait_closed()
    return Cycle(ok=True, connect=t1 - t0, handshake=t2 - t1, pings=pings)
