"""Drive one protocol session: handshake (``protocol``), steps (``steps``), pings.

The ``probe`` kind calls :func:`run_session` right after the WebSocket handshake of a
check with ``protocol:``; a watch session calls :func:`open_protocol` (handshake and
steps, on every (re)connect) and then holds the session it returns; the ``relay`` kind
opens one on each of its connections and adds steps (:func:`run_steps`,
:func:`run_step`) and a round trip (:func:`round_trip`) of its own. Pings are the
protocol's own where it has one (GraphQL ping/pong, MQTT PINGREQ/PINGRESP, STOMP
receipt); Socket.IO and the legacy GraphQL protocol have no client-initiated ping,
so WebSocket pings are measured there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import cast

from agent.config import CheckConfig
from agent.config.protocols import ProtocolStep
from agent.probes.connections.reading import ReadingConnection
from agent.probes.errors import (
    ExpectTimeout,
    PingTimeout,
    ProbeError,
    ProbeTimeout,
    map_errors,
)
from agent.probes.protocols import PROTOCOLS
from agent.probes.protocols.base import Session
from agent.probes.script.steps import name_step, timed_step
from agent.result import ProbeResult

__all__ = ["open_protocol", "round_trip", "run_session", "run_step", "run_steps"]


async def run_session(
    conn: ReadingConnection,
    check: CheckConfig,
    result: ProbeResult,
    *,
    deadline: float,
    variables: dict[str, str],
    on_phase: Callable[[str], None],
) -> None:
    """Speak ``check.protocol`` on ``conn``: handshake, steps, pings, goodbye.

    Args:
        conn: the connection right after the WebSocket handshake.
        check: the check (as dialled); ``check.protocol`` is set.
        result: receives the ``protocol``, ``steps`` and ``ping`` phases, steps, pings.
        deadline: absolute ``time.perf_counter()`` limit.
        variables: run-time ``{{name}}`` values (``token``).
        on_phase: told the phase being run, for the deadline's message.

    Raises:
        ProbeError: the first failure.
    """
    session = await open_protocol(
        conn, check, result=result, deadline=deadline, variables=variables, on_phase=on_phase
    )
    try:
        if check.pings > 0:
            on_phase("ping")
            await _pings(session, check, result, deadline)
        await session.goodbye()
    finally:
        await session.stop()


async def open_protocol(
    conn: ReadingConnection,
    check: CheckConfig,
    *,
    result: ProbeResult,
    deadline: float,
    variables: dict[str, str],
    held: bool = False,
    on_phase: Callable[[str], None],
) -> Session:
    """Start speaking ``check.protocol`` on ``conn``: its handshake, then its steps.

    Args:
        conn: the connection right after the WebSocket handshake.
        check: the check (as dialled); ``check.protocol`` is set.
        result: receives the ``protocol`` and ``steps`` phases and the steps.
        deadline: absolute ``time.perf_counter()`` limit.
        variables: run-time ``{{name}}`` values (``token``).
        on_phase: told the phase being run, for the deadline's message.
        held: a watch holds the session: the protocol's keepalive is negotiated and
            kept from the handshake on.

    Returns:
        The running session (stop it with :meth:`Session.stop`).

    Raises:
        ProbeError: the first failure; the session is stopped then.
    """
    config = check.protocol
    assert config is not None
    if check.auth.token is not None:
        variables.setdefault("token", check.auth.token.get_secret_value())
    session = PROTOCOLS[config.name].session(conn, check, config, variables, held=held)
    session.start()
    try:
        on_phase("protocol")
        started = time.perf_counter()
        until = min(time.perf_counter() + config.handshake_timeout, deadline)
        try:
            await session.handshake(result, until=until)
        except ExpectTimeout as exc:
            raise _late(check, config.handshake_timeout, until, deadline, "handshake") from exc
        finally:
            # Like a raw client's stopwatch: from writing the first frame (or from the
            # 101 when the server speaks first) to reading the acknowledgement.
            if session.server_speaks_first and conn.response_at is not None:
                started = conn.response_at
            elif session.first_sent_at is not None:
                started = session.first_sent_at
            result.phases["protocol"] = (session.acked_at or time.perf_counter()) - started
        if held:
            session.start_keepalive()
        if config.steps:
            on_phase("steps")
            await run_steps(session, config.steps, result, deadline)
    except BaseException:
        await session.stop()
        raise
    return session


def _late(
    check: CheckConfig, timeout: float, until: float, deadline: float, what: str
) -> Exception:
    if until >= deadline:
        return ProbeTimeout(phase="protocol", timeout=check.timeout, detail=f"during the {what}")
    from agent.probes.protocols.events import ProtocolRefused

    return ProtocolRefused(f"the server did not finish the {what} within {timeout:g}s")


async def run_steps(
    session: Session, steps: tuple[ProtocolStep, ...], result: ProbeResult, deadline: float
) -> None:
    """Run ``steps``, each timed into ``result.steps``, all into the ``steps`` phase.

    Raises:
        ProbeError: the first failing step's, naming it.
    """
    started = time.perf_counter()
    try:
        for index, step in enumerate(steps):
            with timed_step(result, index=index, name=step.label):
                try:
                    await run_step(session, step, deadline)
                except ProbeError as exc:
                    name_step(exc, f"{index + 1} {step.label!r}")
                    raise
    finally:
        result.phases["steps"] = time.perf_counter() - started


async def run_step(session: Session, step: ProtocolStep, deadline: float) -> None:
    """Run one step (an action, an ``expect`` within its timeout, a ``sleep``)."""
    if step.sleep is not None:
        if time.perf_counter() + step.sleep > deadline:
            raise ProbeTimeout(
                phase="steps", timeout=step.sleep, detail="the sleep does not fit in what is left"
            )
        await asyncio.sleep(step.sleep)
        return
    if step.expect is not None:
        started = time.perf_counter()
        until = min(started + step.expect.timeout, deadline)
        try:
            await session.expect(step.expect, until=until)
        except ExpectTimeout as err:
            err.timeout = step.expect.timeout if until < deadline else round(until - started, 3)
            raise
        return
    await session.step(step, until=deadline)


async def _pings(
    session: Session, check: CheckConfig, result: ProbeResult, deadline: float
) -> None:
    started = time.perf_counter()
    try:
        for index in range(check.pings):
            until = min(time.perf_counter() + check.ping_timeout, deadline)
            try:
                rtt = await round_trip(session, until=until)
            except (ExpectTimeout, TimeoutError):
                if until >= deadline:
                    raise ProbeTimeout(phase="ping", timeout=check.timeout) from None
                raise PingTimeout(index=index, timeout=check.ping_timeout) from None
            result.pings.append(rtt)
    finally:
        result.phases["ping"] = time.perf_counter() - started


async def round_trip(session: Session, *, until: float) -> float:
    """One ping's RTT: the protocol's own, or a WebSocket ping where it has none.

    Raises:
        ExpectTimeout, TimeoutError: no answer by ``until``.
    """
    rtt = await session.ping(until=until)
    return rtt if rtt is not None else await _websocket_ping(session.conn, until)


async def _websocket_ping(conn: ReadingConnection, until: float) -> float:
    """A WebSocket ping's RTT (the session's reader keeps frames flowing meanwhile)."""
    started = time.perf_counter()
    with map_errors("ping"):
        try:
            waiter = cast("asyncio.Future[float]", await conn.ping())
        except Exception:
            raise conn.closing_error() from None
    async with asyncio.timeout(max(until - time.perf_counter(), 0.0)):
        try:
            await waiter
        except Exception:
            with map_errors("ping"):
                raise conn.closing_error() from None
    return (conn.pong_at or time.perf_counter()) - started
