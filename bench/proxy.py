"""Delay proxy: a TCP relay that holds every chunk for a known delay in each direction.

It is the benchmarks' ground truth for latency. The TCP connect completes against
the proxy itself (the kernel accepts at once), so ``connect`` carries no added delay;
every byte of data is held ``delay`` seconds on the way in and again on the way out,
so the HTTP upgrade (request sent -> 101) and each ping/pong take ``2 x delay`` plus the
loopback and server time.

Per direction, a reader thread time-stamps each chunk on arrival and a writer thread
sends it at ``arrival + delay``, sleeping to that absolute ``perf_counter`` deadline and
spinning the last few hundred microseconds: an asyncio relay would round every timer
to the selector's 1 ms resolution, which is the size of the error we want to measure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import socket
import sys
import threading
import time

__all__ = ["main"]

_SPIN = 0.0003  # last stretch busy-waited: time.sleep overshoots by ~50-100 us


def _hold_until(deadline: float) -> None:
    remaining = deadline - time.perf_counter()
    if remaining > _SPIN:
        time.sleep(remaining - _SPIN)
    while time.perf_counter() < deadline:
        pass


class _Log:
    """What one direction of one connection saw: arrival and delivery of each chunk."""

    def __init__(self) -> None:
        self.arrived: list[float] = []
        self.delivered: list[float] = []
        self.first = b""


def _read(
    src: socket.socket, held: queue.SimpleQueue[tuple[float, bytes]], delay: float, log: _Log
) -> None:
    """Time-stamp each chunk the moment it is read; an empty chunk marks the end."""
    try:
        while True:
            data = src.recv(65536)
            arrived = time.perf_counter()
            if not data:
                break
            if not log.arrived:
                log.first = data[:200]
            log.arrived.append(arrived)
            held.put((arrived + delay, data))
    except OSError:
        pass
    held.put((0.0, b""))


def _deliver(held: queue.SimpleQueue[tuple[float, bytes]], dst: socket.socket, log: _Log) -> None:
    """Send each chunk at its due time, then half-close ``dst``."""
    try:
        while True:
            due, data = held.get()
            if not data:
                break
            _hold_until(due)
            dst.sendall(data)
            log.delivered.append(time.perf_counter())
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


_print_lock = threading.Lock()


def _report(accepted: float, up: _Log, down: _Log) -> None:
    """One JSON line per connection: its request path and every chunk's timestamps.

    ``perf_counter`` is CLOCK_MONOTONIC, shared by every process on the machine, so
    the bench can compare these with its own readings.
    """
    line = up.first.split(b"\r\n", 1)[0].split(b" ")
    path = line[1].decode("latin-1") if len(line) > 2 else ""
    record = {
        "path": path,
        "accepted": accepted,
        "up": [up.arrived, up.delivered],
        "down": [down.arrived, down.delivered],
    }
    with _print_lock:
        print(json.dumps(record), flush=True)


def _relay(
    client: socket.socket, upstream_port: int, delay: float, *, accepted: float, log: bool
) -> None:
    """Relay one connection: a reader and a writer thread per direction.

    The client is read (and its chunks time-stamped) before the upstream connection
    exists, so the proxy's own connect to the server never adds to the delay of a
    request sent right after the TCP handshake.
    """
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    upward: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
    downward: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
    up, down = _Log(), _Log()
    threads = [threading.Thread(target=_read, args=(client, upward, delay, up), daemon=True)]
    threads[0].start()
    try:
        server = socket.create_connection(("127.0.0.1", upstream_port))
    except OSError:
        client.close()
        threads[0].join()
        return
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threads += [
        threading.Thread(target=_deliver, args=(upward, server, up), daemon=True),
        threading.Thread(target=_read, args=(server, downward, delay, down), daemon=True),
        threading.Thread(target=_deliver, args=(downward, client, down), daemon=True),
    ]
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    server.close()
    if log:
        _report(accepted, up, down)


def main() -> None:
    """Listen on 127.0.0.1 (port printed as ``PORT <n>``) and relay until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--delay", type=float, required=True, help="seconds, each direction")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", action="store_true", help="print one JSON line per connection")
    args = parser.parse_args()
    # Short GIL slices so a spinning relay thread delays the others by microseconds.
    sys.setswitchinterval(0.0001)
    listener = socket.create_server(("127.0.0.1", args.port), backlog=1024)
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    while True:
        client, _ = listener.accept()
        accepted = time.perf_counter()
        threading.Thread(
            target=_relay,
            args=(client, args.upstream_port, args.delay),
            kwargs={"accepted": accepted, "log": args.log},
            daemon=True,
        ).start()


if __name__ == "__main__":
    main()
