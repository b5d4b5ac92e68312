"""What the agent logs about requests it cannot parse: one line, rate-limited.

aiohttp logs every malformed request (too many headers, a line too long, bytes that
are not HTTP) at ERROR with a traceback, so whoever reaches the port can fill the log.
:class:`RequestErrorLog` is the logger handed to aiohttp instead.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["BAD_REQUEST_LOG_INTERVAL", "RequestErrorLog"]

log = logging.getLogger(__name__)

#: At most one log line per this many seconds about malformed requests.
BAD_REQUEST_LOG_INTERVAL = 60.0
#: Characters of the parser's message kept in that line (it may quote the request).
_BAD_REQUEST_DETAIL = 100


class RequestErrorLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger aiohttp's request handler writes to, made safe against any client.

    aiohttp logs every malformed request (too many headers, a line too long, bytes
    that are not HTTP) at ERROR with a traceback, so whoever reaches the port can fill
    the log. Those become one WARNING line without traceback, at most one per
    ``interval``, which counts the ones left out. Anything else (a bug in a handler)
    still goes to ``aiohttp.server`` with its traceback.

    Args:
        interval: seconds between two lines about malformed requests.
        clock: monotonic seconds (injected by tests).
    """

    def __init__(
        self,
        *,
        interval: float = BAD_REQUEST_LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})
        self.interval = interval
        self.clock = clock
        self._next_at: float | None = None
        self._suppressed = 0

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Route a malformed-request error to :meth:`bad_request`, anything else on."""
        exc_info = kwargs.get("exc_info")
        exc = exc_info if isinstance(exc_info, BaseException) else None
        if exc_info is True:
            exc = sys.exc_info()[1]
        if level >= logging.ERROR and isinstance(exc, HttpProcessingError):
            self.bad_request(exc, remote=args[0] if args else None)
            return
        super().log(level, msg, *args, **kwargs)

    def bad_request(self, exc: HttpProcessingError, *, remote: object = None) -> None:
        """Log one line about a malformed request, unless one was logged recently."""
        now = self.clock()
        if self._next_at is not None and now < self._next_at:
            self._suppressed += 1
            return
        self._next_at = now + self.interval
        detail = " ".join(str(exc.message).split())
        if len(detail) > _BAD_REQUEST_DETAIL:
            detail = detail[:_BAD_REQUEST_DETAIL] + "..."
        more = ""
        if self._suppressed:
            more = f" ({self._suppressed} more since the last such line)"
        self._suppressed = 0
        log.warning(
            "malformed HTTP request from %s answered 400: %s: %s%s",
            remote or "unknown",
            type(exc).__name__,
            detail,
            more,
        )
