"""The HTTP upgrade: what the request carries (URL, headers, credentials) and what
the response told (status, subprotocol, extensions).

Credentials are assembled here and only here, so :func:`check_secrets` knows every
value that must never be printed.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.version import version as websockets_version

from agent import __version__
from agent.config import CheckConfig
from agent.probes.errors import map_errors
from agent.probes.timing import bounded
from agent.probes.wsconn import WireConnection
from agent.result import ProbeResult

__all__ = [
    "USER_AGENT",
    "WIRE_LOG",
    "build_headers",
    "check_secrets",
    "fetch_check_token",
    "record_handshake",
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
    from agent.probes.oauth2 import fetch_token  # H5's module; cached per config

    with map_errors("auth"):
        async with bounded(deadline):
            return await fetch_token(oauth2)


def record_handshake(result: ProbeResult, conn: WireConnection) -> None:
    """Copy what the successful upgrade negotiated into ``result``."""
    result.status_code = conn.response.status_code if conn.response else 101
    result.subprotocol = conn.subprotocol
    result.extensions = [ext.name for ext in conn.protocol.extensions]
