"""The reading connection's footprint: watch sessions hold thousands of them for hours."""

from __future__ import annotations

import asyncio
import collections
import time
import tracemalloc

import pytest
from websockets import ClientProtocol
from websockets.asyncio.server import ServerConnection, serve
from websockets.uri import parse_uri

from agent.probes.connections.reading import ReadingConnection, _FrameQueue
from agent.probes.dial.opener import open_connection
from agent.result import new_result
from tests.servers import echo, make_check

#: CPython shares the keys of instance dicts of up to 30 names; past that, each
#: instance carries a dict of its own (about 1.6 KiB at this size).
SHARED_KEYS_MAX = 30


async def test_instance_keeps_shared_keys_and_list_queues() -> None:
    """An open connection has at most 30 attribute names and no empty deque of its own."""
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        check = make_check(f"ws://127.0.0.1:{port}/")
        conn = await open_connection(check, new_result(check), deadline=time.perf_counter() + 5)
        try:
            assert isinstance(conn, ReadingConnection)
            await (await conn.ping())
            assert len(vars(conn)) <= SHARED_KEYS_MAX, sorted(vars(conn))
            assert not isinstance(conn.drain_waiters, collections.deque)
            assert not isinstance(conn.recv_messages.frames.queue, collections.deque)
        finally:
            conn.transport.abort()


async def test_messages_in_order_across_a_burst() -> None:
    """Frames queued faster than they are read come out in order (the list queue)."""
    count = 200

    async def burst(ws: ServerConnection) -> None:
        for i in range(count):
            await ws.send(str(i))
        await ws.wait_closed()

    async with serve(burst, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        check = make_check(f"ws://127.0.0.1:{port}/")
        conn = await open_connection(check, new_result(check), deadline=time.perf_counter() + 5)
        try:
            got = [await conn.recv() for _ in range(count)]
        finally:
            conn.transport.abort()
    assert got == [str(i) for i in range(count)]


async def test_wait_closing_after_closing_was_marked() -> None:
    """wait_closing() returns at once when closing was marked before anyone waited."""

    async def close_now(ws: ServerConnection) -> None:
        await ws.close(4000, "bye")

    async with serve(close_now, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        check = make_check(f"ws://127.0.0.1:{port}/")
        conn = await open_connection(check, new_result(check), deadline=time.perf_counter() + 5)
        try:
            await conn.discard_until_closed()
            assert conn.closing_marked
            await conn.wait_closing()
        finally:
            conn.transport.abort()


@pytest.mark.parametrize(
    ("start", "back", "taken"),
    [([], [1, 2], 1), ([3], [1, 2], 1), ([3, 4], [], 3)],
    ids=["put-back-into-empty", "put-back-before-queued", "nothing-put-back"],
)
def test_frame_queue_behaves_as_a_deque(start: list[int], back: list[int], taken: int) -> None:
    """popleft/extendleft(reversed(...)) on the list queue match a deque's order."""
    queue, reference = _FrameQueue(start), collections.deque(start)
    for q in (queue, reference):
        q.extendleft(reversed(back))
        q.append(9)
    assert queue.popleft() == reference.popleft() == taken
    assert list(queue) == list(reference)


async def test_connections_made_together_keep_no_dict_of_their_own() -> None:
    """Connections created before any of them is made (sessions connecting at once)
    get no per-instance dict when websockets adds its attributes in connection_made."""

    class _Transport(asyncio.Transport):
        def pause_reading(self) -> None: ...
        def resume_reading(self) -> None: ...
        def set_write_buffer_limits(
            self, high: int | None = None, low: int | None = None
        ) -> None: ...

    class _Fresh(ReadingConnection):
        """A new class: its shared keys start empty, as in a new process."""

    count = 50
    conns = [_Fresh(ClientProtocol(parse_uri("ws://x/"))) for _ in range(count)]
    transports = [_Transport() for _ in range(count)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for conn, transport in zip(conns, transports, strict=True):
            conn.connection_made(transport)
        per_connection = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    # The assembler and its queue are ~300 B; a dict of its own would add ~1.6 KB.
    assert per_connection < 1000, per_connection
