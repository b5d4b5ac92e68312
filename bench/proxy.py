"""Delay proxy: a TCP relay that holds every chunk for a known delay in each direction.

It is the benchmarks' ground truth for latency. The TCP connect completes against
the proxy itself (the kernel accepts at once), so ``connect`` carries no added delay;
every byte of data is held ``delay`` seconds on the way in and again on the way out,
so the HTTP upgrade (request sent -> 101) and each ping/pong take ``2 x delay`` plus the
loopback and server time.

Per direction, a reader thread reads each chunk and a writer thread sends it at
``arrival + delay``, sleeping to that absolute ``perf_counter`` deadline and spinning
the last few hundred microseconds: an asyncio relay would round every timer to the
selector's 1 ms resolution, which is the size of the error we want to measure.

**Arrival is the kernel's receive timestamp** (``SO_TIMESTAMPNS``, read with
``recvmsg``), not the time the reader thread got to the data: this process shares a
core with the target server, and a reader thread that wakes late would stamp the
chunk late, make the truth too short and the client under test look slow. The
kernel stamps the segment when loopback hands it to the TCP stack, microseconds
after the client's ``send``. The user-space stamp is logged beside it (``late``) so
the bench can show how wrong it was. **Delivery is the kernel's send timestamp**
(``SO_TIMESTAMPING``, software TX stamps read back from the error queue): the writer
thread can lose the GIL or the CPU between reading the clock and the ``send`` call,
which would make the truth too short again. How much later than the thread's own
clock reading the kernel sent each chunk is logged too (``spread``). Without kernel
stamps (another OS) both fall back to the threads' clock readings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import socket
import struct
import sys
import threading
import time

__all__ = ["main"]

_SPIN = 0.0003  # last stretch busy-waited: time.sleep overshoots by ~50-100 us
#: Linux ``SO_TIMESTAMPNS`` (``socket`` does not export it): a ``struct timespec`` of
#: CLOCK_REALTIME in a control message of every ``recvmsg``.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")
# Room for SCM_TIMESTAMPNS and, since the same socket also has send stamps enabled,
# an SCM_TIMESTAMPING (three timespecs) the kernel may add on receive.
_CMSG_SPACE = (
    socket.CMSG_SPACE(_TIMESPEC.size) + socket.CMSG_SPACE(3 * _TIMESPEC.size)
    if hasattr(socket, "CMSG_SPACE")
    else 0
)


def _enable_timestamps(sock: socket.socket) -> bool:
    """Ask the kernel to stamp received data; False where it cannot."""
    if not _CMSG_SPACE:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


_SO_TIMESTAMPING = getattr(socket, "SO_TIMESTAMPING", 37)
# SOF_TIMESTAMPING_TX_SOFTWARE | SOFTWARE | OPT_ID | OPT_TSONLY: a software stamp of
# each send call's last byte, read back from the socket's error queue.
_TX_FLAGS = (1 << 1) | (1 << 4) | (1 << 7) | (1 << 11)
_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
#: ``struct sock_extended_err``: errno, origin, type, code, pad, info, data (the key).
_EXTENDED_ERR = struct.Struct("@IBBBBII")


def _enable_tx_timestamps(sock: socket.socket) -> bool:
    """Ask the kernel to stamp each send as it hands it to the (loopback) device."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPING, _TX_FLAGS)
    except OSError:
        return False
    return True


def _tx_stamp(sock: socket.socket, last_byte: int) -> float | None:
    """The send timestamp of the byte numbered ``last_byte``, as perf_counter.

    With ``OPT_ID`` the kernel keys each stamp by the number of the last byte of its
    send call, counted from when stamping was enabled: that pairs a stamp with its
    chunk, should the kernel have deferred an earlier one.
    """
    found = None
    for _ in range(16):  # one message per send call; sendall makes few
        try:
            _data, ancdata, _flags, _addr = sock.recvmsg(0, 512, _ERRQUEUE | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            return None
        stamp = key = None
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPING and len(data) >= 16:
                sec, nsec = (int(x) for x in _TIMESPEC.unpack_from(data))
                stamp = sec + nsec / 1e9 if sec or nsec else None
            elif len(data) >= _EXTENDED_ERR.size:  # IP_RECVERR / IPV6_RECVERR
                key = int(_EXTENDED_ERR.unpack_from(data)[-1])
        if stamp is not None and key == last_byte % 2**32:
            found = stamp - _realtime_offset()
    return found


def _realtime_offset() -> float:
    """CLOCK_REALTIME minus perf_counter (CLOCK_MONOTONIC), read back to back.

    Taken per chunk, so a clock step or NTP slew during the run costs nothing. The
    tightest of three readings bounds the error by the gap between two vDSO calls.
    """
    best_gap, offset = 1.0, 0.0
    for _ in range(3):
        before = time.perf_counter()
        real = time.clock_gettime(time.CLOCK_REALTIME)
        after = time.perf_counter()
        if after - before < best_gap:
            best_gap, offset = after - before, real - (before + after) / 2
    return offset


def _kernel_stamp(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    """The receive timestamp in a ``recvmsg`` control message, as perf_counter."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = (int(x) for x in _TIMESPEC.unpack_from(data))
            if sec or nsec:
                return sec + nsec / 1e9 - _realtime_offset()
    return None


def _hold_until(deadline: float) -> None:
    remaining = deadline - time.perf_counter()
    if remaining > _SPIN:
        time.sleep(remaining - _SPIN)
    while time.perf_counter() < deadline:
        pass


class _Log:
    """What one direction of one connection saw: arrival and delivery of each chunk."""

    def __init__(self) -> None:
        #: Kernel receive timestamps (perf_counter clock), or user-space ones where
        #: the kernel gave none.
        self.arrived: list[float] = []
        #: How much later than ``arrived`` the reader thread got each chunk.
        self.late: list[float] = []
        #: Kernel send timestamps (or just before ``sendall`` where there are none).
        self.delivered: list[float] = []
        #: Kernel send stamp minus the clock read before ``sendall``: how late the
        #: writer thread's own stamp would have been.
        self.spread: list[float] = []
        self.first = b""
        #: Chunks stamped by this process's clock because the kernel gave no stamp.
        self.fallbacks = 0


def _read(
    src: socket.socket, held: queue.SimpleQueue[tuple[float, bytes]], delay: float, log: _Log
) -> None:
    """Time-stamp each chunk by its kernel arrival; an empty chunk marks the end."""
    stamped = _enable_timestamps(src)
    try:
        while True:
            if stamped:
                data, ancdata, _flags, _addr = src.recvmsg(65536, _CMSG_SPACE)
            else:
                data, ancdata = src.recv(65536), []
            read_at = time.perf_counter()
            if not data:
                break
            kernel = _kernel_stamp(ancdata)
            if kernel is None:
                log.fallbacks += 1
            arrived = read_at if kernel is None else min(kernel, read_at)
            if not log.arrived:
                log.first = data[:200]
            log.arrived.append(arrived)
            log.late.append(read_at - arrived)
            held.put((arrived + delay, data))
    except OSError:
        pass
    held.put((0.0, b""))


def _deliver(held: queue.SimpleQueue[tuple[float, bytes]], dst: socket.socket, log: _Log) -> None:
    """Send each chunk at its due time, then half-close ``dst``.

    Delivery is the kernel's send timestamp where there is one: this thread can lose
    the GIL or the CPU between reading the clock and the ``send`` system call.
    """
    stamped = _enable_tx_timestamps(dst)
    sent = 0
    try:
        while True:
            due, data = held.get()
            if not data:
                break
            _hold_until(due)
            before = time.perf_counter()
            dst.sendall(data)
            sent += len(data)
            kernel = _tx_stamp(dst, sent - 1) if stamped else None
            if kernel is None:
                log.fallbacks += 1
            delivered = before if kernel is None else max(kernel, before)
            log.delivered.append(delivered)
            log.spread.append(delivered - before)
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
        "late": [up.late, down.late],
        "spread": [up.spread, down.spread],
        "fallbacks": up.fallbacks + down.fallbacks,
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
