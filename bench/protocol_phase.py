"""The MQTT ``protocol`` phase against a raw client's CONNECT -> CONNACK, same broker.

Usage (a Mosquitto WebSocket listener on URL)::

    python -m bench.protocol_phase ws://127.0.0.1:PORT 300

Alternates one raw websockets client (stopwatch from writing CONNECT to reading
CONNACK) and one ``wsprobe`` probe with ``protocol: mqtt``, and prints both medians.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

from websockets.asyncio.client import connect

from agent.config import CheckConfig
from agent.probes import probe
from agent.probes.protocols import mqtt_codec


async def _raw(url: str) -> float:
    async with connect(url, subprotocols=["mqtt"], ping_interval=None, proxy=None) as ws:  # type: ignore[list-item]
        started = time.perf_counter()
        await ws.send(mqtt_codec.connect(client_id="bench-raw", version=4, keepalive=60))
        await ws.recv()
        return time.perf_counter() - started


async def _wsprobe(url: str) -> float:
    check = CheckConfig.model_validate({"name": "m", "url": url, "protocol": "mqtt", "pings": 0})
    result = await probe.run(check)
    if not result.success:
        raise SystemExit(result.message)
    return result.phases["protocol"]


async def _main(url: str, runs: int) -> None:
    raw, ours = [], []
    for _ in range(runs):
        raw.append(await _raw(url))
        ours.append(await _wsprobe(url))
    for name, values in (("raw client", raw), ("wsprobe protocol phase", ours)):
        ordered = sorted(values)
        print(
            f"{name}: median {statistics.median(values) * 1e3:.3f} ms,"
            f" p90 {ordered[int(len(ordered) * 0.9)] * 1e3:.3f} ms"
        )


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300))
