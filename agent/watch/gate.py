"""A per-event-loop bound on connection attempts in flight across all watch sessions.

Thousands of sessions started together (agent start, reload, a server dropping every
client at once) would otherwise all be mid-handshake at the same moment. One core
then runs each handshake slower than ``check.timeout`` allows, so many attempts
time out and retry (at 5,000 sessions on loopback, ~7 % of first connects did),
and the transient objects of thousands of concurrent handshakes leave the
allocator's arenas fragmented for good (~6 KiB more RSS per held session, see
docs/bench-log.md "Watch sessions"). Waiting for the gate is not part of the
attempt: its timeout starts once admitted.

Raises nothing of its own.
"""

from __future__ import annotations

import asyncio
import weakref

__all__ = ["DEFAULT_CONNECT_CONCURRENCY", "connect_gate"]

#: Connection attempts (connect, handshake, init steps) in flight per event loop.
#: Loopback handshakes take ~1 ms of CPU each, so 64 keep one core busy without
#: queueing inside the loop; against a remote server at 50 ms RTT they still allow
#: over 1,000 connects per second.
DEFAULT_CONNECT_CONCURRENCY = 64

_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def connect_gate() -> asyncio.Semaphore:
    """The running loop's shared gate, created on first use.

    Returns:
        A semaphore of :data:`DEFAULT_CONNECT_CONCURRENCY` slots, one per loop (a
        semaphore is bound to the loop it first waits on).

    Raises:
        RuntimeError: No running event loop.
    """
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(DEFAULT_CONNECT_CONCURRENCY)
    return gate
