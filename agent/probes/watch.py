"""The ``watch`` kind, one shot: connect, initialise, see the feed deliver, close.

The persistent session lives in :mod:`agent.watch`; this module holds what both share,
:func:`open_session` (every (re)connect of a session goes through it), and
:func:`run`, the :data:`~agent.probes.ProbeFn` behind ``wsprobe probe --check NAME``
and ``/probe?check=NAME`` for a watch check: the connection and its init steps
(auth, subscribe) as a session would run them, then, when the check says data must
flow (``watch.match`` or ``watch.stale_after``), the first matching message within
the deadline, timed as ``first_message``.

Failures (a :class:`~agent.probes.errors.ProbeError` each)::

    ProbeError
     ├── (any connect/TLS/handshake failure)   from open_connection
     ├── AuthRejected                          an auth step failed
     ├── ExpectTimeout / ExpectMismatch        an init step, or no first message
     ├── HandshakeRejected                     expect.status is not 101 (a watch needs a session)
     └── (the deadline)                        named by the phase that was waiting
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, NamedTuple

from agent.config import CheckConfig
from agent.config.steps import Matcher
from agent.probes.connections.reading import ReadingConnection
from agent.probes.deadline import run_guarded
from agent.probes.dial.opener import check_secrets, close_connection, open_connection
from agent.probes.dial.upgrade import fetch_check_token
from agent.probes.errors import (
    HandshakeRejected,
    map_errors,
)
from agent.probes.script.matchers import Message, matches
from agent.probes.script.steps import run_script, wait_for_match
from agent.redact import scrub
from agent.result import ProbeResult, Reason, new_result

if TYPE_CHECKING:  # the protocol modules load their codecs: only when a check speaks one
    from agent.probes.protocols.base import Session

__all__ = ["Opened", "open_session", "run", "session_phase"]

log = logging.getLogger(__name__)


class Opened(NamedTuple):
    """A connected, initialised session of a watch check."""

    conn: ReadingConnection
    #: The values the init steps extracted (a session's matchers may use them).
    variables: dict[str, str]
    #: The protocol session speaking ``check.protocol``, when the check has one.
    protocol: Session | None


async def open_session(check: CheckConfig, result: ProbeResult, *, deadline: float) -> Opened:
    """Connect and run the check's init steps (``auth.steps`` then ``steps``).

    With ``protocol:``, the init is the protocol's handshake and its ``protocol.steps``
    (the subscribe), and the protocol session is returned running, its keepalive on.

    Args:
        check: A ``watch`` check.
        result: Receives this connect's facts: phases resolve ... handshake, ``auth``,
            ``protocol``, ``steps``, TLS info, peer IP, status, step results.
        deadline: Absolute ``time.perf_counter()`` limit of connect plus init.

    Returns:
        The open connection, the variables the steps extracted, the protocol session.

    Raises:
        ProbeError: The connection or an init step failed; nothing is left open.
    """
    variables: dict[str, str] = {}
    configured = check
    if check.protocol is not None:
        from agent.probes.protocols import PROTOCOLS, prepare

        check = prepare(check, PROTOCOLS[check.protocol.name])
    token = await fetch_check_token(check, deadline)
    if token is not None:
        variables["token"] = token
    conn = await open_connection(check, result, deadline=deadline, token=token)
    protocol: Session | None = None
    try:
        if check.expect.status != 101:
            # A negative status check belongs to a probe: a watch needs an open session.
            raise HandshakeRejected(101, expected=check.expect.status)
        if check.protocol is not None:
            from agent.probes.protocols.session import open_protocol

            # The held session keeps the configured check, not this connect's
            # dialled copy (~2 KiB per held session).
            protocol = await open_protocol(
                conn,
                configured,
                result=result,
                deadline=deadline,
                variables=variables,
                on_phase=_ignore_phase,
                held=True,
            )
        elif check.auth.steps or check.steps:
            with map_errors("steps"):
                await run_script(conn, check, result, deadline=deadline, variables=variables)
    except BaseException:
        conn.transport.abort()
        raise
    return Opened(conn, variables, protocol)


def _ignore_phase(phase: str) -> None:
    """The deadline net reads the phase from the result (:func:`session_phase`)."""


def session_phase(result: ProbeResult) -> str | None:
    """The phase an :func:`open_session` filling ``result`` waits in, for the deadline net.

    Connecting names its own phases when its deadline passes; the init steps start
    once the upgrade was answered.
    """
    return "steps" if "handshake" in result.phases else None


def _data_matcher(check: CheckConfig) -> Matcher | None:
    """What the first data message must look like, or None when data is not required."""
    watch = check.watch
    if watch is None or (watch.match is None and watch.stale_after is None):
        return None
    return watch.match or Matcher()


async def _first_protocol_message(
    protocol: Session, matcher: Matcher, variables: dict[str, str], *, until: float
) -> None:
    """Wait for the first message of the protocol's subscriptions that ``matcher`` accepts.

    Raises:
        ExpectTimeout: none by ``until``.
        ProbeError: the server ended the subscription or the connection first.
    """
    everything = matcher.is_empty() and matcher.binary is None

    def accepts(data: Message | None) -> bool:
        return everything or (data is not None and matches(matcher, data, variables))

    await protocol.wait(
        lambda e: protocol.watched(e) and accepts(e.data),
        until=until,
        what="the first message of the subscription",
        refuse=protocol.ended,
    )


async def run(check: CheckConfig) -> ProbeResult:
    """Run one watch check once and return what it measured.

    Never raises for a failing target; only ``asyncio.CancelledError`` propagates.

    Args:
        check: A ``watch`` check.

    Returns:
        The result: connect phases, ``auth``/``steps``, ``first_message`` when data
        is required, ``total`` and ``close``.
    """
    result = new_result(check)
    start = time.perf_counter()
    deadline = start + check.timeout
    conn: ReadingConnection | None = None
    protocol: Session | None = None
    variables: dict[str, str] = {}

    waiting_for_data = False

    async def body() -> None:
        nonlocal conn, variables, protocol, waiting_for_data
        conn, variables, protocol = await open_session(check, result, deadline=deadline)
        matcher = _data_matcher(check)
        if matcher is not None:
            waiting_for_data = True
            t0 = time.perf_counter()
            try:
                if protocol is not None:
                    await _first_protocol_message(protocol, matcher, variables, until=deadline)
                else:
                    await wait_for_match(
                        conn, matcher, variables=variables, until=deadline, phase="first_message"
                    )
            finally:
                result.phases["first_message"] = time.perf_counter() - t0

    def abort() -> None:
        if conn is not None:
            conn.transport.abort()

    def phase() -> str | None:
        return "first_message" if waiting_for_data else session_phase(result)

    try:
        await run_guarded(check, result, body, phase=phase, abort=abort)
    finally:
        if protocol is not None:
            await protocol.stop()
    result.phases["total"] = time.perf_counter() - start
    if protocol is not None and result.success:
        await protocol.goodbye()
    if conn is not None:
        polite = result.reason not in (Reason.TIMEOUT, Reason.PING_TIMEOUT)
        remaining = max(deadline - time.perf_counter(), 0.0)
        await close_connection(
            conn, result, timeout=min(check.close_timeout, remaining) if polite else 0.0
        )
    secrets = check_secrets(check, *([variables["token"]] if "token" in variables else []))
    result.message = scrub(result.message, secrets)
    return result
