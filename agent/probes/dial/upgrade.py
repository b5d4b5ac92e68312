"""The HTTP upgrade: what the request carries (URL, headers, credentials) and what
the response told (status, subprotocol, extensions, a redirect, why it failed).

Credentials are assembled here and only here, so :func:`check_secrets` knows every
value that must never be printed.
"""

from __future__ import annotations

import base64
import logging
import ssl
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from websockets import exceptions as wsx
from websockets.version import version as websockets_version

from agent import __version__
from agent.config import CheckConfig
from agent.probes.connections.base import Connection
from agent.probes.dial.tls import client_cert_requested
from agent.probes.errors import (
    HandshakeInvalid,
    ProbeError,
    Redirected,
    SubprotocolMismatch,
    TLSFailed,
    map_errors,
)
from agent.probes.timing import bounded
from agent.result import ProbeResult

__all__ = [
    "USER_AGENT",
    "WIRE_LOG",
    "build_headers",
    "check_secrets",
    "check_subprotocol",
    "fetch_check_token",
    "handshake_failure",
    "record_handshake",
    "redirect_target",
    "redirect_to_follow",
    "request_url",
]

USER_AGENT = f"wsprobe/{__version__} websockets/{websockets_version}"

# websockets logs every request header (Authorization included) at DEBUG. Its
# protocol objects get this logger, pinned at INFO whatever the root level is.
WIRE_LOG = logging.getLogger("agent.probes.wire")
WIRE_LOG.setLevel(logging.INFO)


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
    if auth.token:
        values.append(auth.token.get_secret_value())
    if check.tls.key_password:
        values.append(check.tls.key_password.get_secret_value())
    if check.protocol is not None and check.protocol.password is not None:
        values.append(check.protocol.password.get_secret_value())
    userinfo_password = urlsplit(check.url).password
    if userinfo_password:
        values.append(userinfo_password)
    return tuple(v for v in values if v)


def _basic(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def build_headers(
    check: CheckConfig, token: str | None, extra: Mapping[str, str] | None
) -> dict[str, str]:
    """The upgrade request's headers: configured, secret, Authorization, then ``extra``."""
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


async def fetch_check_token(check: CheckConfig, deadline: float) -> str | None:
    """The check's OAuth2 token (fetched or cached), or None when it has no ``oauth2``.

    The one place a probe kind gets its token: fetch it once per run and hand it to
    ``open_connection(token=...)`` and to steps as ``{{token}}``.

    Raises:
        ProbeError: ``auth_rejected`` from the token endpoint, or the deadline.
    """
    oauth2 = check.auth.oauth2
    if oauth2 is None:
        return None
    # Imported on first use: it pulls in httpx, which checks without OAuth2 never need.
    from agent.probes.dial.oauth2 import fetch_token

    with map_errors("auth"):
        async with bounded(deadline):
            return await fetch_token(oauth2)


def record_handshake(result: ProbeResult, conn: Connection) -> None:
    """Copy what the successful upgrade negotiated into ``result``."""
    result.status_code = conn.response.status_code if conn.response else 101
    result.subprotocol = conn.subprotocol
    result.extensions = [ext.name for ext in conn.protocol.extensions]
    if WIRE_LOG.isEnabledFor(logging.DEBUG):  # `wsprobe probe -v` only
        WIRE_LOG.debug(
            "* negotiated: subprotocol %s, extensions %s",
            result.subprotocol or "(none)",
            ", ".join(result.extensions) or "(none)",
        )


def check_subprotocol(check: CheckConfig, conn: Connection) -> None:
    """Raise :class:`SubprotocolMismatch` unless the server chose ``expect.subprotocol``."""
    want = check.expect.subprotocol
    if want is None:
        return
    got = conn.subprotocol or ""
    if got != want:
        raise SubprotocolMismatch(want, got or None)


def redirect_target(url: str, location: str, status: int) -> str:
    """The ws(s):// URL a redirect points to, refusing other schemes and a downgrade.

    Raises:
        Redirected: the target cannot be followed.
    """
    target = urljoin(url, location)
    parts = urlsplit(target)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise Redirected(status, location, detail="target is not a WebSocket URL")
    if urlsplit(url).scheme == "wss" and scheme == "ws":
        raise Redirected(status, location, detail="refusing to downgrade from wss to ws")
    return urlunsplit(parts._replace(scheme=scheme))


def redirect_to_follow(check: CheckConfig, exc: ProbeError) -> tuple[int, str] | None:
    """(status, Location) when ``exc`` is a redirect ``check`` follows, else None.

    A redirect is followed when the check allows it, the answer carries a Location, and
    its status is not the one the check expects (a check may expect the redirect itself).
    """
    cause = exc.__cause__
    if (
        isinstance(exc, Redirected)
        and isinstance(cause, wsx.InvalidStatus)
        and check.follow_redirects
        and exc.status_code != check.expect.status
    ):
        location = cause.response.headers.get("Location")
        if location:
            return exc.status_code, location
    return None


def handshake_failure(
    check: CheckConfig, result: ProbeResult, conn: Connection, exc: ProbeError
) -> tuple[int, str]:
    """What a failed upgrade means: a redirect to follow, or the failure to raise.

    Returns:
        (status, Location) of a redirect the check follows.

    Raises:
        ProbeError: ``exc`` or a more precise failure (TLS alert, subprotocol).
    """
    lost = conn.connection_exc
    if isinstance(lost, ssl.SSLError):
        # A TLS alert after our side finished the handshake (TLS 1.3 client-certificate
        # rejection): websockets only sees EOF, the transport kept the real cause.
        with map_errors("tls"):
            raise lost
    cause = exc.__cause__
    response = conn.response
    if (
        response is None
        and isinstance(exc, HandshakeInvalid)
        and client_cert_requested(conn.transport.get_extra_info("ssl_object"))
    ):
        # A TLS 1.3 server refuses a client certificate after the handshake, with an
        # alert the event loop reports as a plain close: the request for one says why.
        if check.tls.cert_file:
            why = "the server asked for a client certificate and may have refused ours"
        else:
            why = "the server asked for a client certificate and none is configured"
        raise TLSFailed(f"{why} (it closed the connection right after the handshake)") from exc
    if response is not None:
        result.status_code = response.status_code
    if isinstance(cause, wsx.NegotiationError) and response is not None:
        chosen = response.headers.get("Sec-WebSocket-Protocol")
        if chosen is not None:
            want = check.expect.subprotocol
            detail = "" if want is None else "it was not among the offered subprotocols"
            raise SubprotocolMismatch(want, chosen, detail=detail) from cause
    redirect = redirect_to_follow(check, exc)
    if redirect is not None:
        return redirect
    raise exc
