"""Would a picows connection make a probe cheaper? CPU per cycle and stamp fidelity, A/B.

picows (a Cython WebSocket client) runs the same cycle as wsprobe's plain probe:
connect + upgrade + 3 pings + close. Its stamps are taken where picows lets a client
take them: ``connect`` by wsprobe's own non-blocking connect (picows' ``socket_factory``
hands it the connected socket, so the figure is the same code's), the upgrade's answer
in ``on_ws_connected`` (called as the 101 is parsed), each pong in ``on_ws_frame``.
What picows does not expose: when the upgrade request was written (it writes it in
its own ``connection_made``; the handshake here runs from the connected socket, so it
includes the transport's creation), the first byte of the answer, and TLS as a phase
of its own (picows runs TLS inside ``create_connection``).

Two measurements, each engine in ONE process with alternating rounds (the machine is
shared: absolute figures move with other load, the interleaved ratios stay meaningful)::

    .venv/bin/python -m bench.picows_ab                    # CPU: c=10,100, 4 rounds x 1.5 s
    .venv/bin/python -m bench.picows_ab --rounds 6 --concurrency 1,10,100
    .venv/bin/python -m bench.picows_ab --fidelity 300     # 300 cycles each via the delay proxy

CPU: ``wsprobe`` is the agent's probe function (``PROBES['probe']``: the result, the
deadline, the discarding connection), ``picows`` the bare picows cycle with its stamps
(aiofastnet when installed, as picows does by default), ``picows-loop`` the same on the
event loop's own ``create_connection``. Fidelity: alternating cycles of wsprobe and
picows through the delay proxy (5 ms each way), each phase's error against the
proxy's kernel-stamped wire truth, as bench/fidelity.py computes it.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time
from typing import Any

from bench import engine, procs
from bench.clients import PINGS, Cycle, CycleFn, wsprobe_engine
from bench.fidelity import DELAY, Wire, calibrate, errors

__all__: list[str] = []


def picows_cycle(*, aiofastnet: bool | None) -> CycleFn:
    """A probe cycle on picows, stamped as described in the module docstring."""
    import logging

    from picows import WSListener, WSMsgType, WSTransport, ws_connect

    from agent.probes.dial.tcp import _connected_socket

    # picows logs every connection at INFO; the agent would not.
    logging.getLogger("picows").setLevel(logging.WARNING)

    class Listener(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.connected_at = 0.0
            self.pong: asyncio.Future[float] | None = None

        def on_ws_connected(self, transport: WSTransport) -> None:
            self.connected_at = time.perf_counter()

        def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
            kind = frame.msg_type
            if kind == WSMsgType.PONG:
                if self.pong is not None and not self.pong.done():
                    self.pong.set_result(time.perf_counter())
            elif kind == WSMsgType.CLOSE:
                transport.disconnect()

    async def cycle(url: str) -> Cycle:
        loop = asyncio.get_running_loop()
        hostport = url.split("//", 1)[1].split("/", 1)[0]
        host, port = hostport.rsplit(":", 1)
        stamps: dict[str, float] = {}

        async def connected(_parsed: Any) -> socket.socket:
            t0 = time.perf_counter()
            sock, at = await _connected_socket(loop, socket.AF_INET, 0, (host, int(port)))
            stamps["connect"], stamps["ready"] = at - t0, at
            return sock

        kwargs: dict[str, Any] = {"socket_factory": connected}
        if aiofastnet is not None:
            kwargs["use_aiofastnet"] = aiofastnet
        transport, listener = await ws_connect(Listener, url, **kwargs)
        assert isinstance(listener, Listener)
        try:
            pings = []
            for i in range(PINGS):
                listener.pong = loop.create_future()
                sent = time.perf_counter()
                transport.send_ping(i.to_bytes(4, "big"))
                pings.append(await asyncio.wait_for(listener.pong, 5) - sent)
            transport.send_close()
            await asyncio.wait_for(transport.wait_disconnected(), 5)
        finally:
            transport.disconnect(graceful=False)
        return Cycle(
            ok=True,
            connect=stamps["connect"],
            handshake=listener.connected_at - stamps["ready"],
            pings=pings,
        )

    return cycle


async def _cpu(
    url: str, engines: dict[str, CycleFn], levels: list[int], rounds: int, duration: float
) -> dict[str, Any]:
    for fn in engines.values():  # warm every path before measuring
        await engine._point(fn, url, 4, 0.5)
    out: dict[str, Any] = {}
    for concurrency in levels:
        cpu: dict[str, list[float]] = {name: [] for name in engines}
        for r in range(rounds):
            order = list(engines) if r % 2 == 0 else list(reversed(engines))
            for name in order:
                point = await engine._point(engines[name], url, concurrency, duration)
                if point["cpu_s_per_cycle"]:
                    cpu[name].append(point["cpu_s_per_cycle"] * 1000)
        medians = {n: statistics.median(v) for n, v in cpu.items() if v}
        level = {
            n: {"min_ms": round(min(cpu[n]), 3), "median_ms": round(m, 3)}
            for n, m in medians.items()
        }
        if "wsprobe" in medians:
            for n, m in medians.items():
                level[n]["wsprobe_over_this"] = round(medians["wsprobe"] / m, 3)
        out[f"c={concurrency}"] = level
        print(f"c={concurrency}: {level}", flush=True)
    return out


async def _fidelity(
    proxy_url: str, wire: Wire, engines: dict[str, CycleFn], samples: int
) -> dict[str, Any]:
    cal = await calibrate(proxy_url, wire, 30)
    done: dict[str, list[tuple[Cycle, str]]] = {name: [] for name in engines}
    for i in range(samples):
        for name, fn in engines.items():
            path = f"fid-{name}-{i}"
            cycle = await fn(proxy_url + path)
            if cycle.ok:
                done[name].append((cycle, "/" + path))
    await wire.wait_for([p for runs in done.values() for _, p in runs[-5:]])
    out: dict[str, Any] = {"truth_ms": cal["truth_ms"], "truth_meter": cal["truth_meter"]}
    print(f"truth meter (hand-written client, idle): {cal['truth_meter']}", flush=True)
    for name, runs in done.items():
        pairs = [(c, Wire.truths(wire.by_path[p][-1])) for c, p in runs if wire.by_path.get(p)]
        out[name] = {"paired": len(pairs), **errors(pairs, cal["connect"])}
        print(f"{name}: {out[name]}", flush=True)
    return out


def main() -> None:
    """Parse the options, start the target server (and proxy) on the other core, compare."""
    parser = argparse.ArgumentParser(prog="python -m bench.picows_ab", description=__doc__)
    parser.add_argument("--concurrency", default="10,100", help="comma-separated levels")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=1.5, help="seconds per round")
    parser.add_argument("--fidelity", type=int, metavar="N", help="N cycles each via the proxy")
    args = parser.parse_args()
    wsprobe, note = wsprobe_engine()
    if wsprobe is None:
        raise SystemExit(f"wsprobe engine not available: {note}")
    engines: dict[str, CycleFn] = {"wsprobe": wsprobe, "picows": picows_cycle(aiofastnet=None)}
    import uvloop

    procs.pin_self()
    with procs.target_server() as server:
        url = f"ws://127.0.0.1:{server.port}/"
        if args.fidelity:
            with procs.delay_proxy(server.port, delay=DELAY) as proxy:
                proxy_url = f"ws://127.0.0.1:{proxy.port}/"
                uvloop.run(_fidelity(proxy_url, Wire(proxy.lines), engines, args.fidelity))
            return
        engines["picows-loop"] = picows_cycle(aiofastnet=False)
        levels = [int(x) for x in args.concurrency.split(",")]
        uvloop.run(_cpu(url, engines, levels, args.rounds, args.duration))


if __name__ == "__main__":
    main()
