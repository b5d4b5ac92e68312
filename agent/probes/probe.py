"""The ``probe`` kind: one connection, measured phase by phase, under a hard deadline.

resolve -> connect -> tls -> handshake -> auth/steps (scripted, optional) -> N
protocol pings -> close. ``total`` spans resolve to the end of the last measured
phase (the probe's own task wake-ups between phases included: they are in no
phase); ``close`` is bounded by ``close_timeout`` (and the deadline) and never part
of ``total``.

A plain probe (no steps, no expected close code, no proxy:
:func:`uses_discarding_connection`) runs on
:class:`~agent.probes.connections.discarding.DiscardingConnection`, which drops messages
as they arrive; the others on
:class:`~agent.probes.connections.reading.ReadingConnection` (websockets'
``ClientConnection``), read by a draining task during the pings. Everything else here
is the same code for both, written against their interface,
:class:`~agent.probes.connections.base.Connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import cast
from urllib.parse import urlsplit

from websockets.protocol import State

from agent.config import CheckConfig
from agent.probes.connections.base import Connection
from agent.probes.connections.reading import ReadingConnection
from agent.probes.deadline import run_guarded
from agent.probes.dial.opener import (
    bounded,
    check_secrets,
    close_connection,
    open_connection,
    open_discarding_connection,
)
from agent.probes.dial.tls import warm_ssl_context
from agent.probes.dial.upgrade import fetch_check_token
from agent.probes.errors import (
    ConnectionClosed,
    ExpectTimeout,
    HandshakeRejected,
    PingTimeout,
    ProbeError,
    Redirected,
    map_errors,
)
from agent.probes.script.steps import run_script
from agent.redact import scrub
from agent.result import ProbeResult, Reason, new_result

__all__ = ["run", "uses_discarding_connection"]

log = logging.getLogger(__name__)

# A ping's timeout may end this much early or late rather than re-arm its timer:
# uvloop's clock moves in 1 ms steps anyway.
_REARM_SLACK = 0.001


async def run(check: CheckConfig) -> ProbeResult:
    """Run one ``probe`` of ``check`` and return what it measured.

    Never raises for a failing target: the failure is the result's ``reason`` and
    ``message``. Only ``asyncio.CancelledError`` propagates.

    Args:
        check: the check to run.

    Returns:
        The result; ``success`` is True when every expectation held.
    """
    result = new_result(check)
    start = time.perf_counter()
    deadline = start + check.timeout
    state = _RunState(start)
    token: str | None = None

    async def body() -> None:
        nonlocal token
        token = await _probe(check, result, deadline, state)

    def abort() -> None:
        # Cancelled: no polite close, the caller wants us gone now.
        if state.conn is not None:
            state.conn.transport.abort()

    await run_guarded(check, result, body, phase=lambda: state.phase, abort=abort)
    if "total" not in result.phases:
        result.phases["total"] = time.perf_counter() - state.start
    if state.conn is not None:
        await _finish(check, result, state.conn, deadline)
    if result.message:
        result.message = scrub(result.message, check_secrets(check, *([token] if token else [])))
    result.judge_limits(check.limits)
    return result


def uses_discarding_connection(check: CheckConfig) -> bool:
    """Whether ``check`` runs on the discarding connection (it never reads a message)."""
    return not (check.proxy or check.steps or check.auth.steps or check.protocol) and (
        check.expect.close_code is None
    )


class _RunState:
    """What the deadline net needs to know about a run it may have to cut short."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.phase = "resolve"
        self.conn: Connection | None = None


async def _probe(
    check: CheckConfig, result: ProbeResult, deadline: float, state: _RunState
) -> str | None:
    variables: dict[str, str] = {}
    if check.protocol is not None:
        from agent.probes.protocols import PROTOCOLS, prepare

        check = prepare(check, PROTOCOLS[check.protocol.name])
    if check.auth.oauth2 is not None:
        state.phase = "auth"
    token = await fetch_check_token(check, deadline)
    if token is not None:
        variables["token"] = token
    if urlsplit(check.url).scheme == "wss":
        # Loading the trust store takes milliseconds on first use: done in a thread,
        # and before the clock starts, as it is not a phase of the target.
        await warm_ssl_context(check.tls)
    state.start = time.perf_counter()
    state.phase = "handshake"
    reader: ReadingConnection | None = None
    try:
        conn: Connection
        if uses_discarding_connection(check):
            conn = await open_discarding_connection(check, result, deadline=deadline, token=token)
        else:
            conn = reader = await open_connection(check, result, deadline=deadline, token=token)
    except (HandshakeRejected, Redirected) as exc:
        if exc.status_code == check.expect.status:
            # A negative check: the refusal it expects is its success.
            result.phases["total"] = time.perf_counter() - state.start
            return token
        raise
    state.conn = conn
    if check.expect.status != 101:
        raise HandshakeRejected(101, expected=check.expect.status)
    # total ends where the last measured phase ended: the handshake's at the
    # parsed 101 (not at this task's wake-up), the others when they return.
    last_end = conn.response_at
    if check.protocol is not None:
        from agent.probes.protocols.session import run_session

        assert reader is not None  # a check with a protocol never discards messages
        await run_session(
            reader,
            check,
            result,
            deadline=deadline,
            variables=variables,
            on_phase=functools.partial(setattr, state, "phase"),
        )
        result.phases["total"] = time.perf_counter() - state.start
        return token
    if check.auth.steps or check.steps:
        assert reader is not None  # a check with steps never discards messages
        state.phase = "steps"
        with map_errors("steps"):
            await run_script(reader, check, result, deadline=deadline, variables=variables)
        last_end = None
    state.phase = "ping"
    await _pings(check, result, conn, deadline)
    if check.pings > 0:
        last_end = None
    result.phases["total"] = (time.perf_counter() if last_end is None else last_end) - state.start
    if check.expect.close_code is not None:
        state.phase = "close"
        await _await_server_close(check, result, conn, deadline)
    return token


def _raise_closing(conn: Connection) -> None:
    with map_errors("ping"):
        raise conn.closing_error()


async def _one_ping(conn: Connection, result: ProbeResult) -> None:
    """Ping once and time it; end early when the connection starts closing.

    Both connections fail the pong waiter as soon as closing starts, so the pong is
    awaited directly. The RTT ends when the pong was parsed.
    """
    if conn.closing_marked:
        _raise_closing(conn)
    t0 = time.perf_counter()
    try:
        pong = cast("asyncio.Future[float]", await conn.ping())
    except Exception:
        # Only a closed connection makes ping() fail (payloads are unique); a
        # map_errors block per ping was measurable (docs/bench-log.md).
        _raise_closing(conn)
    try:
        if conn.closing_marked and not pong.done():
            raise conn.closing_error()  # closing started before this ping was sent
        await pong
    except Exception:
        # Closed or closing; closing_error() also knows a reset from a clean close.
        _raise_closing(conn)
    pong_at = conn.pong_at
    result.pings.append((time.perf_counter() if pong_at is None else pong_at) - t0)


async def _pings(
    check: CheckConfig, result: ProbeResult, conn: Connection, deadline: float
) -> None:
    if check.pings <= 0:
        return
    loop = asyncio.get_running_loop()
    # Unread messages would hold pongs back (websockets stops reading at 16 frames).
    drain = None if conn.discards_messages else asyncio.create_task(conn.discard_until_closed())
    t_phase = time.perf_counter()
    index = 0
    by_ping_timeout = False
    try:
        # One timeout box for all pings, re-armed per ping (ping_timeout or what is
        # left of the deadline): a new asyncio.timeout per ping was measurable, and
        # so was re-arming it (a timer handle each): a box already due within
        # _REARM_SLACK of the new expiry is left as it is.
        # No map_errors either: _one_ping raises ProbeError already; anything else
        # is an internal error for the deadline net.
        async with asyncio.timeout(None) as box:
            for index in range(check.pings):  # noqa: B007 - the timeout handler reads it
                remaining = deadline - time.perf_counter()
                by_ping_timeout = remaining > check.ping_timeout
                when = loop.time() + max(min(remaining, check.ping_timeout), 0.0)
                due = box.when()
                if due is None or abs(when - due) >= _REARM_SLACK:
                    box.reschedule(when)
                try:
                    await _one_ping(conn, result)
                except ProbeError as exc:
                    if isinstance(exc.__cause__, TimeoutError):
                        raise TimeoutError from None
                    if isinstance(exc, ConnectionClosed) and _closed_as_expected(check, exc):
                        return
                    raise
    except TimeoutError:
        if by_ping_timeout:
            raise PingTimeout(index=index, timeout=check.ping_timeout) from None
        # The deadline cut the wait short: still the pong that did not come.
        cut = f"the check's deadline of {check.timeout:g}s came first"
        raise PingTimeout(index=index, detail=cut) from None
    finally:
        result.phases["ping"] = time.perf_counter() - t_phase
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain


def _closed_as_expected(check: CheckConfig, exc: ConnectionClosed) -> bool:
    return check.expect.close_code is not None and exc.code == check.expect.close_code


async def _await_server_close(
    check: CheckConfig, result: ProbeResult, conn: Connection, deadline: float
) -> None:
    """With ``expect.close_code``, the server must close the connection with it."""
    drain = asyncio.create_task(conn.discard_until_closed())
    try:
        async with bounded(deadline):
            await conn.wait_closing()
    except TimeoutError:
        want = check.expect.close_code
        cut = f"expected close code {want}; the check's deadline of {check.timeout:g}s passed"
        raise ExpectTimeout(cut, awaited="close frame from the server") from None
    finally:
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain
    rcvd = conn.protocol.close_rcvd
    code = rcvd.code if rcvd is not None else 1006
    result.close_code = code
    result.close_reason = (rcvd.reason if rcvd is not None else "") or None
    if code != check.expect.close_code:
        raise ConnectionClosed(code, result.close_reason or "", expected=check.expect.close_code)


async def _finish(
    check: CheckConfig, result: ProbeResult, conn: Connection, deadline: float
) -> None:
    """Close (not counted in total); a close the server initiated is recorded."""
    if conn.state is State.CLOSED and result.close_code is None:
        result.close_code = conn.close_code
        result.close_reason = conn.close_reason or None
    # After a timeout the peer is unresponsive, and after we failed the connection
    # (bad frame, too big) it is broken: waiting for its close would be useless.
    if conn.state is State.OPEN:
        polite = result.reason not in (Reason.PING_TIMEOUT, Reason.TIMEOUT)
    else:
        polite = conn.protocol.close_rcvd is not None
    remaining = deadline - time.perf_counter()
    timeout = min(check.close_timeout, remaining) if polite else 0.0
    await close_connection(conn, result, timeout=timeout)
