"""Why a notification attempt failed, and the one place httpx errors are mapped.

Exception tree::

    NotifyError                  base; ``retryable`` says whether to try again
     ├── NotifyTimeout           the attempt exceeded the receiver's timeout (retry)
     ├── NotifyConnectError      TCP/TLS/proxy connection failed (retry)
     ├── NotifyNetworkError      the connection broke mid-request (retry)
     ├── NotifyStatus            non-2xx answer; retry on 5xx and 429 only
     └── NotifyRequestError      the request itself is wrong (bad URL, scheme,
                                 redirect, ...): retrying cannot help

Messages name the receiver and the failure class, never a URL, header or body: a
Slack or Discord URL is itself a credential.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

__all__ = [
    "NotifyConnectError",
    "NotifyError",
    "NotifyNetworkError",
    "NotifyRequestError",
    "NotifyStatus",
    "NotifyTimeout",
    "check_status",
    "map_httpx_errors",
]


class NotifyError(Exception):
    """A notification attempt failed."""

    retryable: bool = False

    def __init__(self, receiver: str, detail: str = "") -> None:
        super().__init__(receiver, detail)
        self.receiver = receiver
        self.detail = detail

    def __str__(self) -> str:
        text = f"receiver {self.receiver!r}: {self.describe()}"
        return f"{text} ({self.detail})" if self.detail else text

    def describe(self) -> str:
        """One phrase saying what went wrong."""
        return "notification failed"


class NotifyTimeout(NotifyError):
    """The attempt did not complete within the receiver's timeout."""

    retryable = True

    def __init__(self, receiver: str, timeout: float, detail: str = "") -> None:
        super().__init__(receiver, detail)
        self.timeout = timeout

    def describe(self) -> str:
        """One phrase saying what went wrong."""
        return f"no complete answer within {self.timeout:g}s"


class NotifyConnectError(NotifyError):
    """The connection to the receiver could not be established."""

    retryable = True

    def describe(self) -> str:
        """One phrase saying what went wrong."""
        return "cannot connect"


class NotifyNetworkError(NotifyError):
    """The connection failed or the peer broke the protocol mid-request."""

    retryable = True

    def describe(self) -> str:
        """One phrase saying what went wrong."""
        return "connection failed during the request"


class NotifyStatus(NotifyError):
    """The receiver answered with a non-success HTTP status."""

    def __init__(
        self, receiver: str, status_code: int, *, retry_after: float | None = None
    ) -> None:
        super().__init__(receiver)
        self.status_code = status_code
        #: Seconds from a ``Retry-After`` header, when the receiver sent one.
        self.retry_after = retry_after
        # 5xx and 429 are worth retrying; any other status is final.
        self.retryable = status_code >= 500 or status_code == 429

    def describe(self) -> str:
        """One phrase saying what went wrong."""
        return f"answered HTTP {self.status_code}"


class NotifyRequestError(NotifyError):
    """The request cannot succeed as configured; retrying will not help."""

    def describe(self) -> str:
        """One phrase saying what went wrong."""
        return "request rejected before sending"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # HTTP-date form: ignored, our own backoff applies


def check_status(receiver: str, response: httpx.Response) -> None:
    """Raise :class:`NotifyStatus` unless ``response`` is 2xx."""
    if not 200 <= response.status_code < 300:
        raise NotifyStatus(receiver, response.status_code, retry_after=_retry_after(response))


@contextmanager
def map_httpx_errors(receiver: str, *, timeout: float) -> Iterator[None]:
    """Turn every httpx (and timeout) exception raised inside into a :class:`NotifyError`.

    Args:
        receiver: receiver name, for messages.
        timeout: the attempt's total timeout, for :class:`NotifyTimeout` messages.

    Raises:
        NotifyError: a subclass chosen by the failure; the cause is chained.
    """
    try:
        yield
    except NotifyError:
        raise
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise NotifyTimeout(receiver, timeout, type(exc).__name__) from exc
    except (httpx.ConnectError, httpx.ProxyError) as exc:
        raise NotifyConnectError(receiver, type(exc).__name__) from exc
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise NotifyNetworkError(receiver, type(exc).__name__) from exc
    except httpx.HTTPStatusError as exc:
        raise NotifyStatus(receiver, exc.response.status_code) from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.CookieConflict, httpx.StreamError) as exc:
        # LocalProtocolError, UnsupportedProtocol, TooManyRedirects, DecodingError,
        # InvalidURL and stream misuse: the request is wrong, not the receiver down.
        raise NotifyRequestError(receiver, type(exc).__name__) from exc
