"""Bench-only instrumentation: absolute timestamps inside the agent's probe connections.

The agent publishes durations; to split an error into the agent's send side, its
receive side and its task wake-ups, the fidelity scenario needs the absolute
``perf_counter`` instants behind them, to line up with the delay proxy's kernel
stamps. :func:`instrumented` patches the agent's two probe connections
(``DiscardingConnection``, ``ReadingConnection``) for the duration of a ``with`` block (the
agent itself has no such hooks, and should not) and records, for connections whose
request path starts with a prefix:

- ``ready``: the connection's ``connection_made`` ran (TCP connected);
- ``hs_start``: ``handshake()`` called (the request is written synchronously next);
- ``hs_parsed``: the upgrade's answer was parsed (the agent's ``response_at``; before
  the agent stamped it, the first bytes that arrived after connect);
- ``hs_end``: ``handshake()`` returned to the probe;
- ``pings``: (sent, pong parsed, waited) per ping, where ``waited`` is how long the
  event loop's thread sat runnable but not running (the kernel's ``run_delay`` in
  ``/proc/thread-self/schedstat``) between the two: CPU taken by other processes,
  as opposed to the loop being busy with its own callbacks.

Each hook costs a few hundred nanoseconds per call on every connection, plus a
``pread`` (~2 us) per measured ping. :func:`legs` turns
the stamps and the proxy's records into the split of each error.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.stats import summary

__all__ = ["PREEMPTED", "ConnStamps", "instrumented", "legs", "run_delay"]

PREEMPTED = 0.0002  # s of run-queue wait in a ping's window that count as preemption


@dataclass
class ConnStamps:
    """perf_counter instants of one measured connection (see the module docstring)."""

    ready: float | None = None
    hs_start: float | None = None
    hs_parsed: float | None = None
    hs_end: float | None = None
    pings: list[tuple[float, float, float]] = field(default_factory=list)
    sent: float | None = None
    sent_waited: float = 0.0


#: The calling thread's scheduler statistics: on-CPU ns, run-queue wait ns, slices.
_SCHEDSTAT = "/proc/thread-self/schedstat"


def open_schedstat() -> int | None:
    """A descriptor on the calling thread's schedstat, or None where there is none."""
    try:
        fd = os.open(_SCHEDSTAT, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except (OSError, AttributeError):
        return None
    if _run_delay(fd) is None:
        os.close(fd)
        return None
    return fd


def _run_delay(fd: int) -> float | None:
    """Seconds the thread behind ``fd`` has waited runnable for a CPU, in total."""
    try:
        return int(os.pread(fd, 128, 0).split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def _waited(fd: int | None) -> float:
    """The loop thread's run-queue wait so far (seconds; 0.0 where unknown)."""
    value = None if fd is None else _run_delay(fd)
    return 0.0 if value is None else value


def run_delay() -> float:
    """The calling thread's run-queue wait so far (seconds; 0.0 where unknown)."""
    fd = open_schedstat()
    try:
        return _waited(fd)
    finally:
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def instrumented(prefix: str) -> Iterator[dict[str, ConnStamps]]:
    """Patch both probe connections while the block runs; yields {request path: stamps}.

    Plain probes run on ``DiscardingConnection``, the others on ``ReadingConnection``: the
    same hooks wrap both. A pong is recognised by ``pong_at`` changing during a
    ``data_received`` call (both stamp it while parsing).
    """
    from agent.probes.connections.discarding import DiscardingConnection
    from agent.probes.connections.reading import ReadingConnection

    by_path: dict[str, ConnStamps] = {}
    # The calling thread is the event loop's: its scheduler statistics.
    schedstat = open_schedstat()
    names = ("handshake", "data_received", "ping")
    classes: list[type[Any]] = [ReadingConnection, DiscardingConnection]
    originals = {(cls, name): cls.__dict__.get(name) for cls in classes for name in names}

    def stamps(conn: Any) -> ConnStamps | None:
        found: ConnStamps | None = conn.__dict__.get("_fid")
        return found

    def hooks(cls: type[Any]) -> dict[str, Any]:
        base_handshake = cls.handshake
        base_data = cls.data_received
        base_ping = cls.ping

        async def handshake(self: Any, *args: Any, **kwargs: Any) -> None:
            began = time.perf_counter()
            self.__dict__["_fid_pending"] = ConnStamps(ready=self.ready_at, hs_start=began)
            try:
                await base_handshake(self, *args, **kwargs)
            finally:
                record: ConnStamps = self.__dict__.pop("_fid_pending")
                request = getattr(self, "request", None)
                if request is not None and request.path.startswith(prefix):
                    record.hs_end = time.perf_counter()
                    # The agent's own stamp when it has one (the answer was parsed).
                    record.hs_parsed = getattr(self, "response_at", None) or record.hs_parsed
                    self.__dict__["_fid"] = by_path[request.path] = record

        def data_received(self: Any, data: bytes) -> None:
            pending: ConnStamps | None = self.__dict__.get("_fid_pending")
            if pending is not None and pending.hs_parsed is None:
                pending.hs_parsed = time.perf_counter()
            before = self.pong_at
            base_data(self, data)
            record = stamps(self)
            if record is not None and record.sent is not None and self.pong_at is not before:
                waited = _waited(schedstat) - record.sent_waited
                record.pings.append((record.sent, self.pong_at, waited))
                record.sent = None

        async def ping(self: Any, *args: Any) -> Any:
            record = stamps(self)
            if record is not None:
                record.sent_waited = _waited(schedstat)
                record.sent = time.perf_counter()
            return await base_ping(self, *args)

        return {"handshake": handshake, "data_received": data_received, "ping": ping}

    for cls in classes:
        for name, fn in hooks(cls).items():
            setattr(cls, name, fn)
    try:
        yield by_path
    finally:
        if schedstat is not None:
            os.close(schedstat)
        for (cls, name), original in originals.items():
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)


def legs(records: list[tuple[dict[str, Any], ConnStamps]]) -> dict[str, Any]:
    """Where each error lies: the agent's send and receive legs against kernel stamps.

    ``send``: agent wrote -> kernel received it at the proxy; ``receive``: proxy gave
    the reply to the kernel -> agent parsed it; ``resume``: 101 parsed -> handshake()
    returned (for ``connect``: connection_made -> handshake() called, which includes
    the probe's own work between the two phases); ``proxy_late``: reader thread vs
    kernel stamp of the request; ``cpu_wait``: the loop thread's run-queue wait.
    """
    out: dict[str, list[float]] = defaultdict(list)
    for record, st in records:
        up_arrived, _ = record["up"]
        _, down_delivered = record["down"]
        up_late = record.get("late", [[], []])[0]
        if st.ready is not None and st.hs_start is not None:
            out["connect_resume"].append(st.hs_start - st.ready)
        if st.hs_start is not None and up_arrived:
            out["handshake_send"].append(up_arrived[0] - st.hs_start)
            if up_late:
                out["handshake_proxy_late"].append(up_late[0])
        if st.hs_parsed is not None and down_delivered:
            out["handshake_receive"].append(st.hs_parsed - down_delivered[0])
            if st.hs_end is not None:
                out["handshake_resume"].append(st.hs_end - st.hs_parsed)
        for sent, parsed, waited in st.pings:
            j = bisect.bisect_left(up_arrived, sent)
            k = bisect.bisect_right(down_delivered, parsed) - 1
            if j < len(up_arrived) and k >= 0:
                out["ping_send"].append(up_arrived[j] - sent)
                out["ping_receive"].append(parsed - down_delivered[k])
                # Split by whether other processes held the CPU during this ping.
                preempted = "preempted" if waited > PREEMPTED else "not_preempted"
                out[f"ping_receive_{preempted}"].append(parsed - down_delivered[k])
                out[f"ping_error_{preempted}"].append(
                    parsed - down_delivered[k] + up_arrived[j] - sent
                )
                out["ping_cpu_wait"].append(waited)
                if j < len(up_late):
                    out["ping_proxy_late"].append(up_late[j])
                    # The error as the proxy's old thread-clock arrival made it look.
                    out["ping_error_if_thread_stamped"].append(
                        parsed - down_delivered[k] + up_arrived[j] - sent + up_late[j]
                    )
    return {name: summary(values) for name, values in sorted(out.items())}
