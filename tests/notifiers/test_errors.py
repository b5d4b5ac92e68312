"""The httpx error boundary maps every httpx exception to a NotifyError."""

from __future__ import annotations

import httpx
import pytest

from agent.notifiers.errors import (
    NotifyConnectError,
    NotifyError,
    NotifyNetworkError,
    NotifyRequestError,
    NotifyStatus,
    NotifyTimeout,
    map_httpx_errors,
)

REQUEST = httpx.Request("POST", "https://hooks.example.com/secret-token")
RESPONSE = httpx.Response(502, request=REQUEST)

#: Every exception class httpx exports, and what it must become.
EXPECTED: dict[type[Exception], type[NotifyError]] = {
    httpx.HTTPError: NotifyRequestError,
    httpx.RequestError: NotifyRequestError,
    httpx.TransportError: NotifyRequestError,
    httpx.TimeoutException: NotifyTimeout,
    httpx.ConnectTimeout: NotifyTimeout,
    httpx.ReadTimeout: NotifyTimeout,
    httpx.WriteTimeout: NotifyTimeout,
    httpx.PoolTimeout: NotifyTimeout,
    httpx.NetworkError: NotifyNetworkError,
    httpx.ConnectError: NotifyConnectError,
    httpx.ReadError: NotifyNetworkError,
    httpx.WriteError: NotifyNetworkError,
    httpx.CloseError: NotifyNetworkError,
    httpx.ProtocolError: NotifyRequestError,
    httpx.LocalProtocolError: NotifyRequestError,
    httpx.RemoteProtocolError: NotifyNetworkError,
    httpx.ProxyError: NotifyConnectError,
    httpx.UnsupportedProtocol: NotifyRequestError,
    httpx.DecodingError: NotifyRequestError,
    httpx.TooManyRedirects: NotifyRequestError,
    httpx.HTTPStatusError: NotifyStatus,
    httpx.InvalidURL: NotifyRequestError,
    httpx.CookieConflict: NotifyRequestError,
    httpx.StreamError: NotifyRequestError,
    httpx.StreamConsumed: NotifyRequestError,
    httpx.StreamClosed: NotifyRequestError,
    httpx.ResponseNotRead: NotifyRequestError,
    httpx.RequestNotRead: NotifyRequestError,
}


def exported_exceptions() -> set[type[Exception]]:
    """Exception classes in httpx's public namespace."""
    out = set()
    for name in httpx.__all__:
        obj = getattr(httpx, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            out.add(obj)
    return out


def make(cls: type[Exception]) -> Exception:
    """Instantiate any httpx exception with the arguments its constructor wants."""
    if issubclass(cls, httpx.HTTPStatusError):
        return cls("bad gateway", request=REQUEST, response=RESPONSE)
    if issubclass(cls, httpx.RequestError):
        return cls("boom", request=REQUEST)
    if issubclass(cls, httpx.StreamError) and cls is not httpx.StreamError:
        return cls()
    return cls("boom")


def test_table_covers_every_httpx_exception() -> None:
    """A new httpx exception class fails this test until it is classified here."""
    assert set(EXPECTED) == exported_exceptions()


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda c: c.__name__)
def test_every_httpx_exception_is_mapped(cls: type[Exception]) -> None:
    """Each httpx exception becomes the expected NotifyError with the cause chained."""
    exc = make(cls)
    with pytest.raises(NotifyError) as info, map_httpx_errors("ops", timeout=2.0):
        raise exc
    assert type(info.value) is EXPECTED[cls]
    assert info.value.__cause__ is exc
    assert "secret-token" not in str(info.value)
    assert "ops" in str(info.value)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (NotifyTimeout("ops", 2.0), True),
        (NotifyConnectError("ops"), True),
        (NotifyNetworkError("ops"), True),
        (NotifyRequestError("ops"), False),
        (NotifyStatus("ops", 500), True),
        (NotifyStatus("ops", 503), True),
        (NotifyStatus("ops", 429), True),
        (NotifyStatus("ops", 400), False),
        (NotifyStatus("ops", 401), False),
        (NotifyStatus("ops", 404), False),
        (NotifyStatus("ops", 301), False),
    ],
    ids=[
        "timeout",
        "connect",
        "network",
        "request",
        "500",
        "503",
        "429",
        "400",
        "401",
        "404",
        "301",
    ],
)
def test_retryable(error: NotifyError, retryable: bool) -> None:
    """5xx, 429, timeouts and connection errors are retried; other 4xx never."""
    assert error.retryable is retryable


def test_asyncio_timeout_is_mapped() -> None:
    """The total per-attempt timeout (TimeoutError) maps to NotifyTimeout."""
    with pytest.raises(NotifyTimeout, match=r"within 2.5s"), map_httpx_errors("ops", timeout=2.5):
        raise TimeoutError
