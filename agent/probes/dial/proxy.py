"""Connecting through an explicitly configured proxy (``proxy:`` in a check).

Through a proxy the TCP connection goes to the proxy and TLS runs inside the tunnel,
so websockets' own ``connect()`` is used and the phases are coarser: ``connect``
covers the proxy tunnel and TLS (until ``connection_made``), ``handshake`` the
upgrade (from there until the response was parsed). Without ``proxy`` no proxy
is ever used (environment variables such as ``HTTPS_PROXY`` are ignored).
"""

from __future__ import annotations

import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from websockets import exceptions as wsx
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from agent.config import CheckConfig
from agent.probes.connections.reading import ReadingConnection
from agent.probes.dial.tls import build_ssl_context, tls_info
from agent.probes.dial.upgrade import USER_AGENT, WIRE_LOG, record_handshake, redirect_to_follow
from agent.probes.errors import NetworkError, ProbeError, map_errors
from agent.probes.timing import add_phase, bounded
from agent.result import ProbeResult

__all__ = ["open_via_proxy"]


class _NoRedirectConnect(connect):
    """``connect()`` that reports redirects instead of following them itself."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


async def open_via_proxy(
    check: CheckConfig,
    result: ProbeResult,
    url: str,
    headers: dict[str, str],
    deadline: float,
) -> ReadingConnection | tuple[int, str]:
    """Connect through ``check.proxy``; return the connection or a redirect to follow.

    Raises:
        ProbeError: any failure, with its reason.
    """
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    kwargs: dict[str, Any] = {}
    if secure:
        kwargs["ssl"] = build_ssl_context(check.tls, check_name=check.name)
        kwargs["server_hostname"] = check.tls.server_name or parts.hostname
    conn_factory = _NoRedirectConnect(
        url,
        subprotocols=[Subprotocol(s) for s in check.subprotocols] or None,
        compression="deflate" if check.compression else None,
        additional_headers=headers,
        user_agent_header=USER_AGENT,
        proxy=check.proxy,
        open_timeout=None,
        ping_interval=None,
        ping_timeout=None,
        close_timeout=check.close_timeout,
        max_size=int(check.max_size),
        create_connection=ReadingConnection,
        logger=WIRE_LOG,
        **kwargs,
    )
    t0 = time.perf_counter()
    try:
        try:
            with map_errors("handshake"):
                async with bounded(deadline):
                    conn = await conn_factory
        except BaseException:
            add_phase(result, "connect", time.perf_counter() - t0)
            raise
    except ProbeError as exc:
        cause = exc.__cause__
        if isinstance(cause, wsx.InvalidStatus):
            result.status_code = cause.response.status_code
            redirect = redirect_to_follow(check, exc)
            if redirect is not None:
                return redirect
        elif isinstance(cause, OSError) and not isinstance(cause, ssl.SSLError | TimeoutError):
            # Without the per-phase split, a socket error is about reaching the proxy.
            raise NetworkError(f"via proxy: {cause.strerror or type(cause).__name__}") from cause
        raise
    assert isinstance(conn, ReadingConnection)
    # connect: until connection_made (tunnel and TLS done); handshake: from there
    # until the 101 was parsed, so it holds the task's wake-up in between.
    ready = conn.ready_at or t0
    answered = conn.response_at or time.perf_counter()
    add_phase(result, "connect", ready - t0)
    add_phase(result, "handshake", answered - ready)
    if secure:
        result.tls = tls_info(conn.transport.get_extra_info("ssl_object"))
    record_handshake(result, conn)
    return conn
