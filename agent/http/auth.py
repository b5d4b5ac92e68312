"""HTTP basic auth of the agent's endpoints, against bcrypt hashes (``agent.web``).

Like Prometheus' exporter-toolkit web config: no users configured means open; every
path but ``/public/`` and ``/static/`` asks for credentials. Verifying is bcrypt's
work, done off the event loop and remembered for recent good credentials.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import Mapping

import bcrypt
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

__all__ = ["Authenticator", "basic_auth"]

_REALM = 'Basic realm="wsprobe", charset="UTF-8"'
#: Verified credentials are remembered (as digests) so a scrape every few seconds
#: does not cost a bcrypt round each time; bounded so junk cannot grow it.
_AUTH_CACHE_SIZE = 256
#: Paths served without basic auth: the public page guards itself, assets hold nothing.
_OPEN_PREFIXES = ("/public/", "/static/")


class Authenticator:
    """HTTP basic auth against bcrypt hashes; no users configured means open.

    Args:
        users: username -> bcrypt hash.
    """

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users: dict[str, bytes] = {}
        self._dummy = b""
        self._cache: dict[bytes, None] = {}
        self.update(users)

    def update(self, users: Mapping[str, str]) -> None:
        """Replace the users (on reload); forgets every cached verification."""
        self._users = {name: hashed.encode("utf-8") for name, hashed in users.items()}
        self._cache.clear()
        if self._users:
            # Unknown users are checked against a hash of the same cost, so the
            # response time does not tell which usernames exist.
            first = next(iter(self._users.values())).split(b"$")
            cost = int(first[2]) if len(first) > 3 and first[2].isdigit() else 12
            self._dummy = bcrypt.hashpw(b"-", bcrypt.gensalt(rounds=max(4, min(cost, 16))))

    @property
    def enabled(self) -> bool:
        """Whether credentials are required."""
        return bool(self._users)

    async def verify(self, header: str) -> bool:
        """Whether an ``Authorization`` header holds a valid username and password."""
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        hashed = self._users.get(user)
        key = hashlib.sha256(b"\0".join((user.encode(), password.encode(), hashed or b""))).digest()
        if hashed is not None and key in self._cache:
            return True
        # bcrypt is deliberately slow (tens of ms): keep it off the event loop.
        ok = await asyncio.to_thread(_checkpw, password.encode(), hashed or self._dummy)
        ok = ok and hashed is not None
        if ok:
            if len(self._cache) >= _AUTH_CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = None
        return ok


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # not a bcrypt hash: never matches
        return False


def basic_auth(auth: Authenticator) -> Middleware:
    """The middleware that asks for credentials on every path but the open ones.

    Args:
        auth: the users; with none configured every request passes.
    """

    @web.middleware
    async def require_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(_OPEN_PREFIXES):
            return await handler(request)
        if auth.enabled and not await auth.verify(request.headers.get("Authorization", "")):
            return web.Response(
                status=401, text="unauthorized\n", headers={"WWW-Authenticate": _REALM}
            )
        return await handler(request)

    return require_auth
