"""Opening one watch connection: connect, then run the init steps.

Every (re)connect of a :class:`~agent.watch.session.WatchSession` goes through
:func:`open_session`: the shared phase-by-phase :func:`~agent.probes.connection.open_connection`
(resolve, TCP, TLS, upgrade; OAuth2 bearer included), then the check's ``auth.steps``
and ``steps`` (authenticate, subscribe) with the shared step runner, all under
``check.timeout`` as one hard deadline. Failures arrive as one
:class:`~agent.probes.errors.ProbeError`, never as a library exception.

Raises (all from :mod:`agent.probes.errors`)::

    ProbeError          any connect/TLS/handshake/auth/step failure, with its reason
    └── ProbeTimeout    [timeout] open + init exceeded check.timeout
"""

from __future__ import annotations

import time

from websockets.asyncio.client import ClientConnection

from agent.config import CheckConfig
from agent.probes.connection import bounded, open_connection
from agent.probes.errors import HandshakeRejected, ProbeTimeout, map_errors
from agent.probes.steps import run_script
from agent.redact import redact_url
from agent.result import ProbeResult

__all__ = ["open_session"]


async def _token_variable(check: CheckConfig, variables: dict[str, str], deadline: float) -> None:
    """Expose the OAuth2 token to steps as ``{{token}}`` (first-message auth)."""
    oauth2 = check.auth.oauth2
    if oauth2 is None:
        return
    # H5's module; cached until expiry, so the bearer path's fetch is not repeated.
    from agent.probes.oauth2 import fetch_token

    with map_errors("auth"):
        async with bounded(deadline):
            variables["token"] = await fetch_token(oauth2)


async def open_session(
    check: CheckConfig, *, started_at: float | None = None
) -> tuple[ClientConnection, ProbeResult, dict[str, str]]:
    """Connect and run the check's init steps (``auth.steps`` then ``steps``).

    Args:
        check: A ``watch`` check.
        started_at: Unix time stamped on the connect result (default: now).

    Returns:
        The open connection, the result holding this connect's facts (phases
        resolve ... handshake, auth, steps; TLS info, peer IP, status) and the
        variables the steps extracted (matchers of the session may use them).

    Raises:
        ProbeError: The connection or an init step failed; nothing is left open.
    """
    result = ProbeResult(
        check=check.name,
        kind="watch",
        url=redact_url(check.url),
        started_at=time.time() if started_at is None else started_at,
    )
    start = time.perf_counter()
    deadline = start + check.timeout
    variables: dict[str, str] = {}
    try:
        await _token_variable(check, variables, deadline)
        conn = await open_connection(check, result, deadline=deadline)
    except TimeoutError:
        raise ProbeTimeout(phase="connect", timeout=check.timeout) from None
    try:
        if check.expect.status != 101:
            # A watch needs an open session; a negative status check belongs to a probe.
            raise HandshakeRejected(101, expected=check.expect.status)
        if check.auth.steps or check.steps:
            try:
                await run_script(conn, check, result, deadline=deadline, variables=variables)
            except TimeoutError:
                raise ProbeTimeout(phase="steps", timeout=check.timeout) from None
    except BaseException:
        conn.transport.abort()
        raise
    result.phases["total"] = time.perf_counter() - start
    return conn, result, variables
