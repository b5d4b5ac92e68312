"""Failing probes leave nothing behind: no file descriptors, no tasks."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Any

import pytest

from agent.result import Reason
from tests.servers import (
    Handler,
    RawServer,
    banner,
    free_port,
    http_status,
    make_check,
    silent,
    timed_probe,
)

# Every test here runs on both probe connections (tests/probes/conftest.py).
pytestmark = pytest.mark.usefixtures("engine")


BATCH = 100


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _settled(baseline_fds: int, baseline_tasks: int, *, timeout: float = 5.0) -> bool:
    """Let transports finish closing (they close on later loop iterations)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        gc.collect()
        if _open_fds() <= baseline_fds and len(asyncio.all_tasks()) <= baseline_tasks:
            return True
        await asyncio.sleep(0.01)  # yields to the loop; the condition is re-checked
    return False


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_thousand_failing_probes_leave_fds_and_tasks_at_baseline() -> None:
    """1,000 refused probes plus timeouts and 5xx, in concurrent batches, leak nothing."""
    refused = make_check(f"ws://127.0.0.1:{free_port()}/")
    await timed_probe(refused)  # first-use imports and caches are not leaks
    baseline_fds, baseline_tasks = _open_fds(), len(asyncio.all_tasks())
    reasons: dict[Reason | None, int] = {}
    async with RawServer(silent) as quiet, RawServer(http_status(503)) as broken:
        checks = [refused] * 1000
        checks += [make_check(quiet.url(), timeout=1.0)] * 20
        checks += [make_check(quiet.url(scheme="wss"), timeout=1.0)] * 20
        checks += [make_check(broken.url())] * 20
        for i in range(0, len(checks), BATCH):
            results = await asyncio.gather(*(timed_probe(c) for c in checks[i : i + BATCH]))
            for result, _ in results:
                reasons[result.reason] = reasons.get(result.reason, 0) + 1
    assert reasons == {
        Reason.CONNECT_REFUSED: 1000,
        Reason.HANDSHAKE_TIMEOUT: 20,
        Reason.TLS_HANDSHAKE: 20,
        Reason.HANDSHAKE_STATUS: 20,
    }
    assert await _settled(baseline_fds, baseline_tasks), (
        f"fds {_open_fds()} > {baseline_fds} or tasks {len(asyncio.all_tasks())} > {baseline_tasks}"
    )


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
@pytest.mark.parametrize("scheme", ["ws", "wss"], ids=["during-handshake", "during-tls"])
async def test_cancelled_probe_propagates_and_closes_its_socket(scheme: str) -> None:
    """Cancelling a run mid-connection raises CancelledError and leaks no socket."""
    async with RawServer(silent) as srv:
        check = make_check(srv.url(scheme=scheme), timeout=5.0)
        await timed_probe(make_check(srv.url(scheme=scheme), timeout=0.05))  # warm caches
        async with asyncio.timeout(2.0):
            await srv.idle.wait()  # the warm-up's server side must be gone too
        baseline_fds, baseline_tasks = _open_fds(), len(asyncio.all_tasks())
        srv.connected.clear()
        task = asyncio.create_task(timed_probe(check))
        async with asyncio.timeout(2.0):
            await srv.connected.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The server side of the connection is still open until the server exits.
        assert await _settled(baseline_fds + 1, baseline_tasks + 1)


@pytest.mark.parametrize(
    ("handler", "timeout"), [(banner, 2.0), (silent, 0.05)], ids=["not-tls", "tls-timeout"]
)
async def test_failed_tls_reports_nothing_to_the_loop(handler: Handler, timeout: float) -> None:
    """A TLS failure is the result's reason only: no error from a callback in the loop."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        async with RawServer(handler) as srv:
            for _ in range(5):
                result, _ = await timed_probe(make_check(srv.url(scheme="wss"), timeout=timeout))
                assert result.reason is Reason.TLS_HANDSHAKE, result.message
        for _ in range(5):  # connection_lost callbacks run on the next loop turns
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert reported == []
