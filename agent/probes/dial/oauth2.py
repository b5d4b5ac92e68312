"""OAuth2 client-credentials tokens, fetched over HTTP before connecting and cached.

:func:`fetch_token` POSTs ``grant_type=client_credentials`` to the token endpoint (client
id and secret as HTTP basic auth, RFC 6749 section 2.3.1) and caches the access token
until shortly before ``expires_in`` runs out, keyed by (token URL, client id, scopes,
audience), so checks sharing a client share one token. Concurrent callers for the same
key share one request instead of each fetching.

Every failure is an :class:`~agent.probes.errors.AuthRejected` naming the endpoint
(redacted) and the HTTP status or the problem, never the secret::

    ProbeError
     └── AuthRejected   connect error, timeout, non-2xx, bad JSON, no access_token
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from typing import Any

import httpx

from agent.config.models import OAuth2Config
from agent.probes.errors import AuthRejected
from agent.redact import redact_url

__all__ = ["EXPIRY_MARGIN", "MAX_EXPIRY_MARGIN", "fetch_token", "invalidate_token"]

#: Fraction of a token's lifetime given up before expiry, so a token is never used
#: in its last moments (clock skew, a probe that runs long).
EXPIRY_MARGIN = 0.1
#: Upper bound of that margin, in seconds.
MAX_EXPIRY_MARGIN = 60.0
# Longest OAuth2 ``error`` code quoted in a message (it is a short ASCII code by spec).
_ERROR_CODE_CHARS = 64

_CacheKey = tuple[str, str, tuple[str, ...], str | None]


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    expires_at: float  # time.monotonic()


_cache: dict[_CacheKey, _Token] = {}
_inflight: dict[_CacheKey, asyncio.Future[str]] = {}


def _key(cfg: OAuth2Config) -> _CacheKey:
    return (cfg.token_url, cfg.client_id, tuple(sorted(cfg.scopes)), cfg.audience)


def invalidate_token(cfg: OAuth2Config) -> None:
    """Forget the cached token for ``cfg`` (e.g. after the server rejected it)."""
    _cache.pop(_key(cfg), None)


async def fetch_token(cfg: OAuth2Config) -> str:
    """Return an access token for ``cfg``, from the cache while it is still valid.

    Args:
        cfg: the check's ``auth.oauth2`` settings.

    Returns:
        The access token (a secret: never log or print it).

    Raises:
        AuthRejected: the token endpoint could not be reached, answered non-2xx, or
            did not return JSON with an ``access_token``.
    """
    key = _key(cfg)
    cached = _cache.get(key)
    if cached is not None and time.monotonic() < cached.expires_at:
        return cached.value
    task = _inflight.get(key)
    if task is None or task.done():
        task = asyncio.ensure_future(_refresh(cfg, key))
        _inflight[key] = task
        task.add_done_callback(functools.partial(_finished, key))
    # shield: one caller cancelled (its check timed out) must not cancel the fetch
    # the other callers are waiting on.
    return await asyncio.shield(task)


def _finished(key: _CacheKey, task: asyncio.Future[str]) -> None:
    if _inflight.get(key) is task:
        del _inflight[key]
    if not task.cancelled():
        # Mark the outcome retrieved: when every waiter was cancelled nobody else will.
        task.exception()


async def _refresh(cfg: OAuth2Config, key: _CacheKey) -> str:
    token, expires_in = await _request(cfg)
    if expires_in is not None and expires_in > 0:
        margin = min(expires_in * EXPIRY_MARGIN, MAX_EXPIRY_MARGIN)
        _cache[key] = _Token(token, time.monotonic() + expires_in - margin)
    else:
        # Without expires_in we cannot know when it lapses: fetch again next time.
        _cache.pop(key, None)
    return token


async def _request(cfg: OAuth2Config) -> tuple[str, float | None]:
    where = redact_url(cfg.token_url)
    form: dict[str, str] = {"grant_type": "client_credentials"}
    if cfg.scopes:
        form["scope"] = " ".join(cfg.scopes)
    if cfg.audience:
        form["audience"] = cfg.audience
    auth = httpx.BasicAuth(cfg.client_id, cfg.client_secret.get_secret_value())
    try:
        # trust_env=False: no proxy or netrc from the environment; wsprobe uses a proxy
        # only when configured.
        async with httpx.AsyncClient(timeout=cfg.timeout, trust_env=False) as client:
            response = await client.post(
                cfg.token_url, data=form, auth=auth, headers={"Accept": "application/json"}
            )
    except httpx.TimeoutException:
        raise AuthRejected(
            f"token endpoint {where} did not answer within {cfg.timeout:g}s"
        ) from None
    except httpx.HTTPError as exc:
        # The exception text may quote the URL; name only the class.
        raise AuthRejected(f"cannot reach token endpoint {where} ({type(exc).__name__})") from None
    body = _json(response)
    if not response.is_success:
        code = body.get("error") if isinstance(body, dict) else None
        detail = f" ({str(code)[:_ERROR_CODE_CHARS]})" if isinstance(code, str) else ""
        raise AuthRejected(f"token endpoint {where} answered HTTP {response.status_code}{detail}")
    if not isinstance(body, dict):
        raise AuthRejected(
            f"token endpoint {where} answered HTTP {response.status_code} without a JSON object"
        )
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise AuthRejected(f"token endpoint {where} returned no access_token")
    expires_in = body.get("expires_in")
    try:
        lifetime = float(expires_in) if expires_in is not None else None
    except (TypeError, ValueError):
        lifetime = None
    return token, lifetime


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
