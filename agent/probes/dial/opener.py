"""Open a WebSocket connection phase by phase, timing each one.

``resolve`` (getaddrinfo in the default executor) -> ``connect`` (TCP to the
resolved IP) -> ``tls`` (handshake on the connected socket, so it is timed on its
own) -> ``handshake`` (upgrade request sent until the 101). websockets' own
``connect()`` does these in one call; here its building blocks (the Sans-I/O
``ClientProtocol`` and the asyncio ``ClientConnection``) are driven step by step,
exactly as ``connect()`` does internally, so every phase gets its own clock and its
own failure reason. With ``proxy`` configured, see :mod:`agent.probes.dial.proxy`.

Each phase ends when its event happened, not when the probe's task next runs (that
wait is the agent's own, and grows with its load): ``connect`` when the socket was
connected (:mod:`agent.probes.dial.tcp`), ``tls`` at
the handshake's completion inside the TLS protocol
(:func:`~agent.probes.dial.tls.handshake_done_at`), ``handshake`` when the upgrade's
answer was parsed (``response_at``). The next phase starts when the task resumes,
so the task's wake-up between two phases is in no phase but in ``total``
(docs/probe.md, "Phase boundaries").

:func:`open_connection` gives a
:class:`~agent.probes.connections.reading.ReadingConnection` (websockets'
``ClientConnection``), for kinds that read messages; :func:`open_discarding_connection`
gives a :class:`~agent.probes.connections.discarding.DiscardingConnection` for the plain
``probe``. Every phase above is the same code for both, written against their
interface, :class:`~agent.probes.connections.base.Connection`.

``bounded``, ``check_secrets`` and ``request_url`` are re-exported for other kinds.

Shared by the ``probe``, ``relay`` and ``watch`` kinds.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from websockets import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.typing import Subprotocol
from websockets.uri import WebSocketURI, parse_uri

from agent.config import CheckConfig
from agent.probes.connections.base import Connection
from agent.probes.connections.discarding import DiscardingConnection
from agent.probes.connections.reading import ReadingConnection
from agent.probes.dial.proxy import open_via_proxy
from agent.probes.dial.resolve import DEFAULT_RESOLVE_TIMEOUT, resolve
from agent.probes.dial.tcp import connect_tcp, format_addr
from agent.probes.dial.tls import build_ssl_context, handshake_done_at, tls_info
from agent.probes.dial.upgrade import (
    USER_AGENT,
    WIRE_LOG,
    build_headers,
    check_secrets,
    check_subprotocol,
    fetch_check_token,
    handshake_failure,
    record_handshake,
    redirect_target,
    request_url,
)
from agent.probes.errors import (
    ConnectTimeout,
    HandshakeTimeout,
    ProbeError,
    Redirected,
    TLSFailed,
    map_errors,
)
from agent.probes.timing import add_phase, bounded
from agent.result import ProbeResult

_Conn = TypeVar("_Conn", bound=Connection)

__all__ = [
    "DEFAULT_RESOLVE_TIMEOUT",
    "USER_AGENT",
    "bounded",
    "check_secrets",
    "close_connection",
    "open_connection",
    "open_discarding_connection",
    "request_url",
]


async def open_connection(
    check: CheckConfig,
    result: ProbeResult,
    *,
    deadline: float,
    header_overrides: Mapping[str, str] | None = None,
    token: str | None = None,
) -> ReadingConnection:
    """Connect to ``check.url``; time resolve/connect/tls/handshake into ``result``.

    Fills ``result.phases``, ``peer_ip``, ``tls``, ``status_code``, ``subprotocol``
    and ``extensions``. Follows redirects only when ``check.follow_redirects``.
    Checks ``check.expect.subprotocol``; does NOT judge ``check.expect.status``
    (any non-101 answer raises :class:`HandshakeRejected`/:class:`Redirected`
    carrying the status, for the caller to accept as a negative check).

    Args:
        check: the check to connect for.
        result: where phase timings and handshake facts are recorded.
        deadline: absolute ``time.perf_counter()`` value nothing may outlast.
        header_overrides: headers added to (and overriding) the configured ones.
        token: the check's OAuth2 token if the caller already fetched it this run
            (see ``fetch_check_token``); fetched here otherwise.

    Returns:
        An open connection with keepalive pings disabled.

    Raises:
        ProbeError: any failure, with its reason.
    """

    async def attempt(
        check: CheckConfig, url: str, headers: dict[str, str]
    ) -> ReadingConnection | tuple[int, str]:
        if check.proxy:
            return await open_via_proxy(check, result, url, headers, deadline)
        return await _open_once(check, result, url, headers, deadline, _reading_connection)

    return await _open(check, result, deadline, header_overrides, token, attempt)


async def open_discarding_connection(
    check: CheckConfig, result: ProbeResult, *, deadline: float, token: str | None = None
) -> DiscardingConnection:
    """:func:`open_connection` for a check without proxy, giving a :class:`DiscardingConnection`.

    The connection upgrades, pings and closes; it discards every message it gets.

    Raises:
        ProbeError: any failure, with its reason (the same as ``open_connection``'s).
    """
    assert not check.proxy, "the discarding connection has no proxy support"

    async def attempt(
        check: CheckConfig, url: str, headers: dict[str, str]
    ) -> DiscardingConnection | tuple[int, str]:
        return await _open_once(check, result, url, headers, deadline, _discarding_connection)

    return await _open(check, result, deadline, None, token, attempt)


async def _open(
    check: CheckConfig,
    result: ProbeResult,
    deadline: float,
    header_overrides: Mapping[str, str] | None,
    token: str | None,
    attempt: Callable[[CheckConfig, str, dict[str, str]], Awaitable[_Conn | tuple[int, str]]],
) -> _Conn:
    """Credentials, then one ``attempt`` per redirect hop (each phase timed by it)."""
    oauth2 = check.auth.oauth2
    if token is None and oauth2 is not None and oauth2.use == "bearer":
        token = await fetch_check_token(check, deadline)
    bearer = token if oauth2 is not None and oauth2.use == "bearer" else None
    headers = build_headers(check, bearer, header_overrides)
    url = check.url
    for _hop in range(check.max_redirects + 1):
        outcome = await attempt(check, request_url(check, url), headers)
        if not isinstance(outcome, tuple):
            try:
                check_subprotocol(check, outcome)
            except ProbeError:
                outcome.transport.abort()
                raise
            return outcome
        status, location = outcome
        new_url = redirect_target(url, location, status)
        if urlsplit(new_url)[:2] != urlsplit(url)[:2]:
            # Credentials (auth headers, query token, caller's extras) never follow
            # a redirect to another origin.
            check = check.model_copy(update={"auth": type(check.auth)()})
            headers = build_headers(check, None, None)
        url = new_url
    raise Redirected(status, location, detail=f"more than {check.max_redirects} redirects")


@functools.lru_cache(maxsize=1 << 15)
def _parse_uri(url: str) -> WebSocketURI:
    # Parsed once per URL, not per run; ClientProtocol only reads it. Room for every
    # check's URL at 10,000+ checks: at 4,096 entries every run missed the cache.
    return parse_uri(url)


class _TCPReady(asyncio.Protocol):
    """The TCP connection's protocol until TLS takes over."""


def _protocol(check: CheckConfig, url: str) -> ClientProtocol:
    extensions = enable_client_permessage_deflate(None) if check.compression else None
    return ClientProtocol(
        _parse_uri(url),
        origin=None,
        extensions=extensions,
        subprotocols=[Subprotocol(s) for s in check.subprotocols] or None,
        max_size=int(check.max_size),
        logger=WIRE_LOG,
    )


def _reading_connection(check: CheckConfig, url: str) -> ReadingConnection:
    return ReadingConnection(
        _protocol(check, url),
        ping_interval=None,
        ping_timeout=None,
        close_timeout=check.close_timeout,
    )


def _discarding_connection(check: CheckConfig, url: str) -> DiscardingConnection:
    return DiscardingConnection(_protocol(check, url))


async def _open_once(
    check: CheckConfig,
    result: ProbeResult,
    url: str,
    headers: dict[str, str],
    deadline: float,
    make: Callable[[CheckConfig, str], _Conn],
) -> _Conn | tuple[int, str]:
    """One direct attempt; returns the connection or (status, Location) of a redirect."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    ctx = build_ssl_context(check.tls, check_name=check.name) if secure else None

    t0 = time.perf_counter()
    try:
        infos = await resolve(check, host, port, deadline)
    finally:
        add_phase(result, "resolve", time.perf_counter() - t0)

    def factory() -> asyncio.Protocol:
        return cast("asyncio.Protocol", make(check, url))

    # One timeout box for connect, TLS and handshake (they share the deadline; a
    # box per phase was measurable, docs/bench-log.md). Its TimeoutError surfaces
    # here, so the phase it cut short is tracked to name the reason.
    phase = "connect"
    t0 = time.perf_counter()
    try:
        async with bounded(deadline):
            try:
                # With TLS, the TCP connection first gets a placeholder protocol:
                # the WebSocket connection is only made once TLS is done.
                transport, protocol, made = await connect_tcp(
                    infos, result, _TCPReady if ctx is not None else factory
                )
            except BaseException:
                add_phase(result, "connect", time.perf_counter() - t0)
                raise
            add_phase(result, "connect", made - t0)
            if ctx is None:
                conn = cast("_Conn", protocol)
            else:
                # TLS started on this task's resumption, but the server's part of it
                # ran from the TCP connection on: the phase starts there.
                phase, t0 = "tls", made
                conn = await _start_tls(
                    check, result, transport, make(check, url), ctx, host, deadline, t0
                )
            phase, t0 = "handshake", time.perf_counter()
            return await _handshake(check, result, conn, headers, t0)
    except TimeoutError as exc:
        raise _timed_out(phase, time.perf_counter() - t0, (result.peer_ip, port)) from exc


def _timed_out(phase: str, elapsed: float, sockaddr: Any) -> ProbeError:
    """The failure for the open sequence's deadline passing in ``phase``."""
    if phase == "connect":
        return ConnectTimeout(format_addr(sockaddr))
    if phase == "tls":
        return TLSFailed(f"timed out after {elapsed:.2f}s")
    return HandshakeTimeout(f"waited {elapsed:.2f}s")


async def _start_tls(
    check: CheckConfig,
    result: ProbeResult,
    transport: asyncio.Transport,
    conn: _Conn,
    ctx: ssl.SSLContext,
    host: str,
    deadline: float,
    t0: float,
) -> _Conn:
    """TLS on the connected transport, timed as its own phase; then hand it to ``conn``.

    Bounded by the caller's box; asyncio's own TLS limit is a second past it, so
    the box, which names the phase, ends it first.
    """
    loop = asyncio.get_running_loop()
    try:
        with map_errors("tls"):
            tls_transport = await loop.start_tls(
                transport,
                cast("asyncio.Protocol", conn),
                ctx,
                server_hostname=check.tls.server_name or host,
                ssl_handshake_timeout=max(deadline - t0, 0.0) + 1.0,
            )
            if tls_transport is None:  # typeshed allows it; asyncio never returns it
                raise ConnectionAbortedError("connection lost during TLS")
        # start_tls() leaves connection_made to its caller.
        conn.connection_made(tls_transport)
        ssl_object = tls_transport.get_extra_info("ssl_object")
        result.tls = tls_info(ssl_object)
    except BaseException:
        transport.abort()  # idempotent; start_tls may already have closed it
        add_phase(result, "tls", time.perf_counter() - t0)
        raise
    done = handshake_done_at(ssl_object)
    if done is not None:
        conn.mark_ready(done)  # the transport was ready then, not at connection_made
    add_phase(result, "tls", (time.perf_counter() if done is None else done) - t0)
    return conn


async def _handshake(
    check: CheckConfig,
    result: ProbeResult,
    conn: _Conn,
    headers: dict[str, str],
    t0: float,
) -> _Conn | tuple[int, str]:
    """The upgrade, bounded by the caller's box."""
    try:
        try:
            with map_errors("handshake"):
                await conn.handshake(headers, USER_AGENT)
        finally:
            # Starts when the request was written (building it is the agent's own
            # time, counted in total only); ends when the answer was parsed (or the
            # peer left: perhaps before the request was even sent, hence the
            # floor); on a timeout, now.
            start = t0 if conn.request_at is None else max(t0, conn.request_at)
            end = conn.response_at
            end = time.perf_counter() if end is None else max(end, start)
            add_phase(result, "handshake", end - start)
    except ProbeError as exc:
        conn.transport.abort()
        return handshake_failure(check, result, conn, exc)
    except BaseException:
        conn.transport.abort()
        raise
    record_handshake(result, conn)
    return conn


async def close_connection(
    conn: Connection,
    result: ProbeResult,
    *,
    timeout: float,  # noqa: ASYNC109 - the shared interface's name; bounds only the close
) -> None:
    """Close politely within ``timeout`` seconds, then abort; time it as ``close``.

    Records the close code/reason the server sent unless a failure already did.
    Never raises (except CancelledError).

    Args:
        conn: the connection to close.
        result: where ``phases["close"]``, ``close_code`` and ``close_reason`` go.
        timeout: upper bound of the closing handshake, in seconds.
    """
    t0 = time.perf_counter()
    try:
        if timeout <= 0:
            conn.transport.abort()
        else:
            async with asyncio.timeout(timeout):
                await conn.close()
    except (Exception, asyncio.CancelledError) as exc:
        conn.transport.abort()
        if isinstance(exc, asyncio.CancelledError):
            raise
    finally:
        result.phases["close"] = time.perf_counter() - t0
    if result.close_code is None and conn.close_code is not None:
        result.close_code = conn.close_code
        result.close_reason = conn.close_reason or None
