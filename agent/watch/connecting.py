"""The waits of a watch session: connecting, a protocol's reader, the close on stop.

:class:`~agent.watch.session.WatchSession` keeps the state; these functions hold none
of their own, so a connected session costs nothing for them.

Raises nothing: failures are recorded on the result or returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from agent.config import CheckConfig
from agent.probes.deadline import run_guarded
from agent.probes.errors import InternalError, ProbeError
from agent.probes.errors.mapping import translate
from agent.probes.watch import Opened, open_session, session_phase
from agent.result import ProbeResult, new_result

if TYPE_CHECKING:
    from agent.probes.connections.delivering import DeliveringConnection
    from agent.probes.connections.reading import ReadingConnection
    from agent.probes.protocols.base import Session
    from agent.watch.pinger import Pinger

__all__ = ["attempt", "close_bounded", "protocol_ended"]

log = logging.getLogger("agent.watch.session")


async def attempt(check: CheckConfig, gate: asyncio.Semaphore) -> tuple[ProbeResult, Opened | None]:
    """One connection attempt: connect, upgrade and init steps within ``check.timeout``.

    Args:
        check: The watch check.
        gate: Admits the attempt; the deadline covers the attempt, not the queue
            before it.

    Returns:
        The attempt's result (its reason and message on failure; the phases, with
        ``total``, on success) and the opened session, or None when it failed.
    """
    opened: Opened | None = None
    async with gate:
        result = new_result(check)
        start = time.perf_counter()

        async def run() -> None:
            nonlocal opened
            opened = await open_session(check, result, deadline=start + check.timeout)

        await run_guarded(check, result, run, phase=lambda: session_phase(result))
    if opened is not None:
        result.phases["total"] = time.perf_counter() - start
        # The upgrade's headers are of no use once connected (the init steps have read
        # them), and an agent holds thousands of sessions. websockets' parser holds the
        # response object itself; the delivering connection releases it when it can.
        opened.conn.request = None
        if opened.conn.response is not None:
            opened.conn.response.headers.clear()
    return result, opened


async def protocol_ended(check_name: str, protocol: Session, pinger: Pinger) -> ProbeError:
    """Wait until the protocol session's reader ends; why the connection ended.

    Its reader decodes every frame and answers keepalives; it stops when the
    connection or the subscription ends.
    """
    try:
        raise await protocol.finished()
    except Exception as exc:
        # The boundary's table (what map_errors applies), used once, where reading ends.
        error = translate(exc, "watch")
        if isinstance(error, InternalError):  # a bug must not end the session
            log.exception("watch %s: unexpected error while reading", check_name)
        # A ping timeout aborts the transport, so the reader sees a lost connection;
        # the cause worth reporting is the missing pong.
        return pinger.failure or error


async def close_bounded(
    conn: ReadingConnection | DeliveringConnection,
    protocol: Session | None,
    *,
    code: int,
    close_timeout: float,
) -> None:
    """Say the protocol's goodbye, then close with ``code``, within ``close_timeout``.

    Errors are ignored: the connection is going either way. The transport is aborted
    at the end (a no-op once closed), which frees a peer that never answered.
    """
    with contextlib.suppress(Exception):
        async with asyncio.timeout(close_timeout + 0.5):
            if protocol is not None:
                await protocol.goodbye()
            await conn.close(code, "going away")
    conn.transport.abort()
