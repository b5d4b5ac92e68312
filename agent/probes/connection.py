"""Open a WebSocket connection phase by phase, timing each one.

``resolve`` (getaddrinfo in the default executor) -> ``connect`` (TCP to the
resolved IP) -> ``tls`` (handshake on the connected socket, so it is timed on its
own) -> ``handshake`` (upgrade request sent until the 101). websockets' own
``connect()`` does these in one call; here its building blocks (the Sans-I/O
``ClientProtocol`` and the asyncio ``ClientConnection``) are driven step by step,
exactly as ``connect()`` does internally, so every phase gets its own clock and its
own failure reason. With ``proxy`` configured, ``connect()`` is used and ``connect``
covers the proxy tunnel and TLS.

Shared by the ``probe``, ``relay`` and ``watch`` kinds.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from websockets import exceptions as wsx
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.typing import Subprotocol
from websockets.uri import parse_uri
from websockets.version import version as websockets_version

from agent import __version__
from agent.config import CheckConfig
from agent.probes.errors import (
    HandshakeInvalid,
    NetworkError,
    ProbeError,
    Redirected,
    ResolveFailed,
    SubprotocolMismatch,
    map_errors,
    translate,
)
from agent.probes.tls import build_ssl_context, tls_info
from agent.result import ProbeResult

__all__ = [
    "DEFAULT_RESOLVE_TIMEOUT",
    "USER_AGENT",
    "bounded",
    "check_secrets",
    "close_connection",
    "open_connection",
    "request_url",
]

#: Upper bound of the resolve phase, inside the check's own deadline.
DEFAULT_RESOLVE_TIMEOUT = 5.0
USER_AGENT = f"wsprobe/{__version__} websockets/{websockets_version}"

# websockets logs every request header (Authorization included) at DEBUG. Its
# protocol objects get this logger, pinned at INFO whatever the root level is.
_WIRE_LOG = logging.getLogger("agent.probes.wire")
_WIRE_LOG.setLevel(logging.INFO)

_FAMILIES = {"auto": socket.AF_UNSPEC, "4": socket.AF_INET, "6": socket.AF_INET6}


@asynccontextmanager
async def bounded(deadline: float, limit: float | None = None) -> AsyncIterator[None]:
    """Time-box the body: until ``deadline`` (perf_counter) or ``limit`` seconds.

    Raises:
        TimeoutError: the box expired.
    """
    remaining = deadline - time.perf_counter()
    if limit is not None:
        remaining = min(remaining, limit)
    async with asyncio.timeout(max(remaining, 0.0)):
        yield


def _add_phase(result: ProbeResult, phase: str, seconds: float) -> None:
    # Summed, not overwritten: a followed redirect runs the phases again.
    result.phases[phase] = result.phases.get(phase, 0.0) + seconds


def request_url(check: CheckConfig, url: str | None = None) -> str:
    """The URL actually requested: ``url`` (default ``check.url``) plus a query token.

    Never show the return value: it holds the token. Use ``redact_url`` on it.
    """
    url = url or check.url
    query = check.auth.query
    if query is None:
        return url
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    pairs.append((query.param, query.value.get_secret_value()))
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def check_secrets(check: CheckConfig, *extra: str) -> tuple[str, ...]:
    """Every secret value a check holds, for scrubbing free text."""
    auth = check.auth
    values = list(extra)
    if auth.bearer:
        values.append(auth.bearer.get_secret_value())
    if auth.basic:
        password = auth.basic.password.get_secret_value()
        values.append(password)
        values.append(_basic(auth.basic.username, password))
    if auth.query:
        values.append(auth.query.value.get_secret_value())
    values.extend(v.get_secret_value() for v in auth.headers.values())
    if auth.oauth2:
        values.append(auth.oauth2.client_secret.get_secret_value())
    if check.tls.key_password:
        values.append(check.tls.key_password.get_secret_value())
    userinfo_password = urlsplit(check.url).password
    if userinfo_password:
        values.append(userinfo_password)
    return tuple(v for v in values if v)


def _basic(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _headers(
    check: CheckConfig, token: str | None, extra: Mapping[str, str] | None
) -> dict[str, str]:
    # Origin is only present if the check configures it: no default is invented.
    headers = dict(check.headers)
    auth = check.auth
    headers.update({k: v.get_secret_value() for k, v in auth.headers.items()})
    if auth.bearer is not None:
        headers["Authorization"] = f"Bearer {auth.bearer.get_secret_value()}"
    elif auth.basic is not None:
        creds = _basic(auth.basic.username, auth.basic.password.get_secret_value())
        headers["Authorization"] = f"Basic {creds}"
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if extra:
        headers.update(extra)
    return headers


async def _oauth2_token(check: CheckConfig, deadline: float) -> str | None:
    oauth2 = check.auth.oauth2
    if oauth2 is None or oauth2.use != "bearer":
        return None
    from agent.probes.oauth2 import fetch_token  # H5's module; cached per config

    with map_errors("auth"):
        async with bounded(deadline):
            return await fetch_token(oauth2)


async def open_connection(
    check: CheckConfig,
    result: ProbeResult,
    *,
    deadline: float,
    extra_headers: Mapping[str, str] | None = None,
) -> ClientConnection:
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
        extra_headers: headers added to (and overriding) the configured ones.

    Returns:
        An open connection with keepalive pings disabled.

    Raises:
        ProbeError: any failure, with its reason.
    """
    token = await _oauth2_token(check, deadline)
    headers = _headers(check, token, extra_headers)
    url = check.url
    for _hop in range(check.max_redirects + 1):
        outcome = await _open_once(check, result, request_url(check, url), headers, deadline)
        if isinstance(outcome, ClientConnection):
            try:
                _check_subprotocol(check, outcome)
            except ProbeError:
                outcome.transport.abort()
                raise
            return outcome
        status, location = outcome
        new_url = _redirect_target(url, location, status)
        if urlsplit(new_url)[:2] != urlsplit(url)[:2]:
            # Credentials are never replayed to another origin.
            headers = _headers(check.model_copy(update={"auth": type(check.auth)()}), None, None)
            check = check.model_copy(update={"auth": type(check.auth)()})
        url = new_url
    raise Redirected(status, location, detail=f"more than {check.max_redirects} redirects")


def _redirect_target(url: str, location: str, status: int) -> str:
    target = urljoin(url, location)
    parts = urlsplit(target)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise Redirected(status, location, detail="target is not a WebSocket URL")
    if urlsplit(url).scheme == "wss" and scheme == "ws":
        raise Redirected(status, location, detail="refusing to downgrade from wss to ws")
    return urlunsplit(parts._replace(scheme=scheme))


def _check_subprotocol(check: CheckConfig, conn: ClientConnection) -> None:
    want = check.expect.subprotocol
    if want is None:
        return
    got = conn.subprotocol or ""
    if got != want:
        raise SubprotocolMismatch(want, got or None)


async def _resolve(check: CheckConfig, host: str, port: int, deadline: float) -> list[Any]:
    family = _FAMILIES[check.ip_version]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:  # a literal needs no resolver round trip
        fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        if family not in (socket.AF_UNSPEC, fam):
            raise ResolveFailed(f"{host} is not an IPv{check.ip_version} address")
        return [(fam, socket.SOCK_STREAM, 0, "", (host, port))]
    loop = asyncio.get_running_loop()
    try:
        with map_errors("resolve"):
            async with bounded(deadline, DEFAULT_RESOLVE_TIMEOUT):
                infos = await loop.run_in_executor(
                    None, socket.getaddrinfo, host, port, family, socket.SOCK_STREAM
                )
    except ProbeError as exc:
        exc.detail = f"{host}: {exc.detail}" if exc.detail else host
        raise
    if not infos:
        raise ResolveFailed(f"no address for {host}")
    return infos


async def _connect(infos: list[Any], result: ProbeResult, deadline: float) -> socket.socket:
    loop = asyncio.get_running_loop()
    last: ProbeError | None = None
    # One connection per run, but every resolved address may be tried for it
    # (e.g. localhost -> ::1 refused, then 127.0.0.1), like any client does.
    for family, type_, proto, _, sockaddr in infos:
        sock = socket.socket(family, type_, proto)
        sock.setblocking(False)
        result.peer_ip = str(sockaddr[0])
        try:
            with map_errors("connect"):
                async with bounded(deadline):
                    await loop.sock_connect(sock, sockaddr)
        except ProbeError as exc:
            sock.close()
            where = _format_addr(sockaddr)
            exc.detail = f"{where}: {exc.detail}" if exc.detail else where
            if isinstance(exc.__cause__, TimeoutError):
                raise
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    assert last is not None
    raise last


def _format_addr(sockaddr: Any) -> str:
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _protocol(check: CheckConfig, url: str) -> ClientProtocol:
    extensions = enable_client_permessage_deflate(None) if check.compression else None
    return ClientProtocol(
        parse_uri(url),
        origin=None,
        extensions=extensions,
        subprotocols=[Subprotocol(s) for s in check.subprotocols] or None,
        max_size=int(check.max_size),
        logger=_WIRE_LOG,
    )


async def _open_once(
    check: CheckConfig,
    result: ProbeResult,
    url: str,
    headers: dict[str, str],
    deadline: float,
) -> ClientConnection | tuple[int, str]:
    """One attempt; returns the connection or (status, Location) of a redirect to follow."""
    if check.proxy:
        return await _open_via_proxy(check, result, url, headers, deadline)
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    ctx = build_ssl_context(check.tls, check_name=check.name) if secure else None
    loop = asyncio.get_running_loop()

    t0 = time.perf_counter()
    try:
        infos = await _resolve(check, host, port, deadline)
    finally:
        _add_phase(result, "resolve", time.perf_counter() - t0)

    t0 = time.perf_counter()
    try:
        sock = await _connect(infos, result, deadline)
    finally:
        _add_phase(result, "connect", time.perf_counter() - t0)

    def factory() -> ClientConnection:
        return ClientConnection(
            _protocol(check, url),
            ping_interval=None,
            ping_timeout=None,
            close_timeout=check.close_timeout,
        )

    t0 = time.perf_counter()
    try:
        if ctx is not None:
            # The socket is connected: create_connection only runs the TLS handshake.
            remaining = max(deadline - t0, 0.001)
            with map_errors("tls"):
                async with bounded(deadline):
                    _, conn = await loop.create_connection(
                        factory,
                        sock=sock,
                        ssl=ctx,
                        server_hostname=check.tls.server_name or host,
                        ssl_handshake_timeout=remaining,
                    )
            result.tls = tls_info(conn.transport.get_extra_info("ssl_object"))
        else:
            _, conn = await loop.create_connection(factory, sock=sock)
    except BaseException:
        sock.close()  # idempotent; create_connection may already have closed it
        raise
    finally:
        if ctx is not None:
            _add_phase(result, "tls", time.perf_counter() - t0)

    return await _handshake(check, result, conn, headers, deadline, time.perf_counter())


async def _handshake(
    check: CheckConfig,
    result: ProbeResult,
    conn: ClientConnection,
    headers: dict[str, str],
    deadline: float,
    t0: float,
) -> ClientConnection | tuple[int, str]:
    try:
        try:
            with map_errors("handshake"):
                async with bounded(deadline):
                    await conn.handshake(headers, USER_AGENT)
        finally:
            _add_phase(result, "handshake", time.perf_counter() - t0)
    except ProbeError as exc:
        conn.transport.abort()
        return _handshake_failure(check, result, conn, exc)
    except BaseException:
        conn.transport.abort()
        raise
    _record_handshake(result, conn)
    return conn


def _record_handshake(result: ProbeResult, conn: ClientConnection) -> None:
    result.status_code = conn.response.status_code if conn.response else 101
    result.subprotocol = conn.subprotocol
    result.extensions = [ext.name for ext in conn.protocol.extensions]


def _handshake_failure(
    check: CheckConfig, result: ProbeResult, conn: ClientConnection, exc: ProbeError
) -> tuple[int, str]:
    lost = conn.connection_exc
    if isinstance(lost, ssl.SSLError):
        # A TLS alert after our side finished the handshake (TLS 1.3 client-certificate
        # rejection): websockets only sees EOF, the transport kept the real cause.
        raise translate(lost, "tls") from lost
    cause = exc.__cause__
    response = conn.response
    if response is None and result.tls is not None and isinstance(exc, HandshakeInvalid):
        # asyncio reports a TLS 1.3 alert sent after the handshake (the usual way a
        # server rejects a missing/unknown client certificate) as a plain EOF.
        exc.detail += " (right after TLS: the server may require a client certificate)"
    if response is not None:
        result.status_code = response.status_code
    if isinstance(cause, wsx.NegotiationError) and response is not None:
        chosen = response.headers.get("Sec-WebSocket-Protocol")
        if chosen is not None:
            want = check.expect.subprotocol
            raise SubprotocolMismatch(
                want, chosen, detail="not among the requested subprotocols"
            ) from cause
    if (
        isinstance(exc, Redirected)
        and isinstance(cause, wsx.InvalidStatus)
        and check.follow_redirects
        and exc.status_code != check.expect.status
    ):
        location = cause.response.headers.get("Location")
        if location:
            return exc.status_code, location
    raise exc


class _MarkedConnection(ClientConnection):
    """Records when the transport (tunnel + TLS) became ready."""

    ready_at: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.ready_at = time.perf_counter()
        super().connection_made(transport)


class _NoRedirectConnect(connect):
    """``connect()`` that reports redirects instead of following them itself."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


async def _open_via_proxy(
    check: CheckConfig,
    result: ProbeResult,
    url: str,
    headers: dict[str, str],
    deadline: float,
) -> ClientConnection | tuple[int, str]:
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
        create_connection=_MarkedConnection,
        logger=_WIRE_LOG,
        **kwargs,
    )
    t0 = time.perf_counter()
    try:
        async with bounded(deadline):
            conn = await conn_factory
    except wsx.InvalidStatus as exc:
        result.status_code = exc.response.status_code
        failure = translate(exc, "handshake")
        location = exc.response.headers.get("Location")
        if (
            isinstance(failure, Redirected)
            and check.follow_redirects
            and location
            and failure.status_code != check.expect.status
        ):
            return failure.status_code, location
        raise failure from exc
    except (ssl.SSLError, wsx.ProxyError) as exc:
        raise translate(exc, "tls") from exc
    except OSError as exc:
        # Without the per-phase split, any socket error is about reaching the proxy.
        if isinstance(exc, TimeoutError):
            raise translate(exc, "connect") from exc
        raise NetworkError(f"via proxy: {exc.strerror or type(exc).__name__}") from exc
    except Exception as exc:
        raise translate(exc, "handshake") from exc
    finally:
        _add_phase(result, "connect", time.perf_counter() - t0)
    assert isinstance(conn, _MarkedConnection)
    ready = conn.ready_at or t0
    result.phases["connect"] -= time.perf_counter() - ready
    _add_phase(result, "handshake", time.perf_counter() - ready)
    if secure:
        result.tls = tls_info(conn.transport.get_extra_info("ssl_object"))
    _record_handshake(result, conn)
    return conn


async def close_connection(
    conn: ClientConnection,
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
