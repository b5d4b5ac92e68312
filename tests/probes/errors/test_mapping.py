"""The single error boundary: every library exception becomes one named reason."""

from __future__ import annotations

import asyncio
import builtins
import inspect
import socket
import ssl
from typing import Any

import pytest
import websockets.exceptions as wsx
from websockets.datastructures import Headers
from websockets.frames import Close
from websockets.http11 import Response

from agent.probes.errors import (
    ConnectionClosed,
    HandshakeRejected,
    ProbeError,
    Redirected,
    SubprotocolMismatch,
    map_errors,
)
from agent.probes.errors.mapping import translate
from agent.result import Reason

#: Library exceptions that can only mean a bug in wsprobe itself.
EXPECTED_INTERNAL = {wsx.InvalidState, wsx.ConcurrencyError}

_ARGS: dict[str, Any] = {
    "rcvd": Close(1011, "boom"),
    "sent": None,
    "rcvd_then_sent": None,
    "response": Response(503, "Unavailable", Headers()),
    "uri": "ws://user:pw@example.test/?token=s3cr3t",
    "proxy": "http://proxy.test",
    "msg": "bad",
    "name": "Sec-WebSocket-Accept",
    "value": "nope",
    "error": "bad",
    "header": "x",
    "pos": 0,
    "method": "PUT",
    "protocol": "HTTP/1.0",
    "origin": "https://evil.test",
    "size_or_message": 2000,
    "max_size": 1000,
    "current_size": None,
    "max_fragments": 3,
}


def _instance(cls: type[BaseException]) -> BaseException:
    params = [
        p
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if not params:
        return cls("message")
    return cls(*(_ARGS[p.name] for p in params if p.default is p.empty or p.name in _ARGS))


def _subclasses(base: type[BaseException]) -> list[type[BaseException]]:
    seen: list[type[BaseException]] = []
    todo = [base]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.append(cls)
            todo.extend(cls.__subclasses__())
    return seen


WEBSOCKETS_CLASSES = [
    c
    for c in _subclasses(wsx.WebSocketException)
    if c.__module__.startswith("websockets") and not c.__module__.startswith("websockets.legacy")
]
SSL_CLASSES = [c for c in _subclasses(ssl.SSLError) if c.__module__ in ("ssl", "_ssl")]
OS_CLASSES = [
    c
    for c in _subclasses(OSError)
    if c.__module__ in ("builtins", "socket", "_socket") and not issubclass(c, ssl.SSLError)
]


@pytest.mark.parametrize("cls", WEBSOCKETS_CLASSES, ids=lambda c: c.__name__)
def test_every_websockets_exception_maps_to_a_reason(cls: type[BaseException]) -> None:
    """Each websockets exception class maps to a non-internal reason (bugs excepted)."""
    error = translate(_instance(cls), "handshake")
    assert isinstance(error, ProbeError)
    if cls in EXPECTED_INTERNAL:
        assert error.reason is Reason.INTERNAL
    else:
        assert error.reason is not Reason.INTERNAL, cls


@pytest.mark.parametrize("cls", SSL_CLASSES + OS_CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("phase", ["resolve", "connect", "tls", "handshake", "ping"])
def test_every_ssl_and_os_exception_maps_to_a_reason(cls: type[BaseException], phase: str) -> None:
    """ssl.SSLError and OSError families never end up as internal, in any phase."""
    error = translate(cls(1, "failure"), phase)
    assert error.reason is not Reason.INTERNAL


def test_all_os_error_builtins_are_covered() -> None:
    """The walked OSError family includes every builtin subclass (the list is not empty)."""
    builtin_os = {
        v for v in vars(builtins).values() if isinstance(v, type) and issubclass(v, OSError)
    }
    assert builtin_os <= set(OS_CLASSES) | {OSError}
    assert socket.gaierror in OS_CLASSES


@pytest.mark.parametrize(
    ("exc", "phase", "reason"),
    [
        (TimeoutError(), "resolve", Reason.DNS),
        (TimeoutError(), "connect", Reason.CONNECT_TIMEOUT),
        (TimeoutError(), "tls", Reason.TLS_HANDSHAKE),
        (TimeoutError(), "handshake", Reason.HANDSHAKE_TIMEOUT),
        (TimeoutError(), "auth", Reason.AUTH_REJECTED),
        (TimeoutError(), "steps", Reason.EXPECT_TIMEOUT),
        (TimeoutError(), "first_message", Reason.EXPECT_TIMEOUT),
        (TimeoutError(), "relay", Reason.EXPECT_TIMEOUT),
        (TimeoutError(), "ping", Reason.PING_TIMEOUT),
        (TimeoutError(), "close", Reason.EXPECT_TIMEOUT),
        (TimeoutError(), "join", Reason.TIMEOUT),
        (TimeoutError(), None, Reason.TIMEOUT),
        (EOFError(), "handshake", Reason.HANDSHAKE_INVALID),
        (EOFError(), "ping", Reason.CLOSED),
        (asyncio.IncompleteReadError(b"", 10), "handshake", Reason.HANDSHAKE_INVALID),
        (ConnectionRefusedError(), "connect", Reason.CONNECT_REFUSED),
        (ConnectionResetError(), "handshake", Reason.NETWORK),
        (ConnectionResetError(), "tls", Reason.TLS_HANDSHAKE),
        (socket.gaierror(-2, "Name or service not known"), "resolve", Reason.DNS),
        (OSError(113, "No route to host"), "connect", Reason.NETWORK),
        (ValueError("surprise"), "ping", Reason.INTERNAL),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_phase_decides_what_timeouts_and_eof_mean(
    exc: BaseException, phase: str | None, reason: Reason
) -> None:
    """A timeout or EOF is named after the phase it interrupted."""
    assert translate(exc, phase).reason is reason


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (10, Reason.TLS_CERT_EXPIRED),
        (62, Reason.TLS_HOSTNAME_MISMATCH),
        (64, Reason.TLS_HOSTNAME_MISMATCH),
        (20, Reason.TLS_CERT_UNTRUSTED),
        (19, Reason.TLS_CERT_UNTRUSTED),
        (9, Reason.TLS_CERT_UNTRUSTED),
    ],
    ids=["expired", "hostname", "ip-address", "unknown-issuer", "self-signed", "not-yet-valid"],
)
def test_certificate_verification_codes(code: int, reason: Reason) -> None:
    """OpenSSL verify codes pick the specific TLS reason."""
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code = code
    exc.verify_message = "x"
    assert translate(exc, "tls").reason is reason


@pytest.mark.parametrize(
    ("sent", "rcvd", "reason", "code"),
    [
        (Close(1009, "too big"), None, Reason.MESSAGE_TOO_BIG, None),
        (Close(1002, "bad frame"), None, Reason.PROTOCOL_ERROR, None),
        (Close(1007, "bad utf-8"), None, Reason.PROTOCOL_ERROR, None),
        (None, Close(1011, "oops"), Reason.CLOSED, 1011),
        (None, None, Reason.CLOSED, None),
    ],
    ids=["we-sent-1009", "we-sent-1002", "we-sent-1007", "server-1011", "no-frames"],
)
def test_connection_closed_variants(
    sent: Close | None, rcvd: Close | None, reason: Reason, code: int | None
) -> None:
    """Who sent which close frame decides between closed, message_too_big, protocol_error."""
    error = translate(wsx.ConnectionClosedError(rcvd, sent), "ping")
    assert error.reason is reason
    if isinstance(error, ConnectionClosed):
        assert error.code == code


def test_map_errors_chains_and_passes_probe_errors_through() -> None:
    """map_errors raises the translation from the original and leaves ProbeError alone."""
    original = ConnectionRefusedError()
    with pytest.raises(ProbeError) as info, map_errors("connect"):
        raise original
    assert info.value.__cause__ is original
    mine = HandshakeRejected(403)
    with pytest.raises(HandshakeRejected) as again, map_errors("handshake"):
        raise mine
    assert again.value is mine


async def test_map_errors_never_swallows_cancellation() -> None:
    """CancelledError passes through untouched."""
    with pytest.raises(asyncio.CancelledError), map_errors("ping"):
        raise asyncio.CancelledError


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (HandshakeRejected(403), "expected HTTP 101, server answered HTTP 403"),
        (HandshakeRejected(101, expected=401), "expected HTTP 401 but the server upgraded"),
        (Redirected(302, "wss://h.test/p?token=abc"), "HTTP 302 to wss://h.test/p?token=REDACTED"),
        (ConnectionClosed(4001, "kicked"), "code 4001 ('kicked')"),
        (ConnectionClosed(None), "without a close frame (1006)"),
        (SubprotocolMismatch("chat.v2", "chat.v1"), "expected subprotocol 'chat.v2', server"),
        (SubprotocolMismatch("", "chat.v1"), "expected no subprotocol, server chose 'chat.v1'"),
        (SubprotocolMismatch(None, "x"), "server chose subprotocol 'x', which was not offered"),
    ],
    ids=[
        "status",
        "negative-upgraded",
        "redirect-redacted",
        "close-code",
        "abnormal",
        "subprotocol-other",
        "subprotocol-none-wanted",
        "subprotocol-not-offered",
    ],
)
def test_messages_name_the_specifics(error: ProbeError, text: str) -> None:
    """Messages are built from structured fields and name status, code, location."""
    assert text in str(error)


def test_no_library_text_with_a_secret_leaks_into_messages() -> None:
    """An InvalidURI quoting a tokenised URL translates without the token."""
    error = translate(wsx.InvalidURI("ws://u:pw@h.test/?token=s3cr3t", "bad"), "handshake")
    assert "s3cr3t" not in str(error)
    assert "pw" not in str(error)
