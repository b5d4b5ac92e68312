"""The failure mapping table, row by row: class, reason and message of every translation."""

from __future__ import annotations

import asyncio
import socket
import ssl
import warnings

import pytest
import websockets.exceptions as wsx
from websockets.datastructures import Headers
from websockets.frames import Close
from websockets.http11 import Response

from agent.probes.errors import (
    AuthRejected,
    ConnectionClosed,
    ConnectRefused,
    ConnectTimeout,
    ExpectTimeout,
    HandshakeInvalid,
    HandshakeRejected,
    HandshakeTimeout,
    InternalError,
    MessageTooBig,
    NetworkError,
    PingTimeout,
    ProbeError,
    ProbeTimeout,
    ProtocolError,
    Redirected,
    ResolveFailed,
    TLSCertExpired,
    TLSCertUntrusted,
    TLSFailed,
    TLSHostnameMismatch,
)
from agent.probes.errors.mapping import deadline_failure, translate
from agent.result import Reason


def cert(code: int, message: str | None = "x") -> ssl.SSLCertVerificationError:
    """A verification failure with OpenSSL's code and text, as ssl raises it."""
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code = code
    if message is not None:
        exc.verify_message = message
    return exc


def ssl_reason(reason: str) -> ssl.SSLError:
    """An SSLError carrying OpenSSL's mnemonic."""
    exc = ssl.SSLError(1, "boom")
    exc.reason = reason
    return exc


def closed(
    sent: Close | None,
    rcvd: Close | None,
    cause: BaseException | None = None,
    rcvd_then_sent: bool | None = None,
) -> wsx.ConnectionClosedError:
    """A closed connection: who sent which close frame, and what caused it."""
    exc = wsx.ConnectionClosedError(rcvd, sent, rcvd_then_sent)
    exc.__cause__ = cause
    return exc


def status(code: int, location: str | None = None) -> wsx.InvalidStatus:
    """A handshake answered with HTTP ``code``."""
    headers = Headers({"Location": location} if location else {})
    return wsx.InvalidStatus(Response(code, "x", headers))


def too_big_text() -> wsx.PayloadTooBig:
    """The older form of the exception, with a message instead of sizes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return wsx.PayloadTooBig("frame too big")


def invalid_message(cause: BaseException) -> wsx.InvalidMessage:
    """An unreadable handshake response, caused by ``cause``."""
    exc = wsx.InvalidMessage("did not receive a valid HTTP response")
    exc.__cause__ = cause
    return exc


CASES: list[tuple[str, BaseException, str | None, type[ProbeError], Reason, str]] = [
    (
        "timeout-resolve",
        TimeoutError(),
        "resolve",
        ResolveFailed,
        Reason.DNS,
        "cannot resolve: timed out",
    ),
    (
        "timeout-connect",
        TimeoutError(),
        "connect",
        ConnectTimeout,
        Reason.CONNECT_TIMEOUT,
        "TCP connect timed out",
    ),
    (
        "timeout-tls",
        TimeoutError(),
        "tls",
        TLSFailed,
        Reason.TLS_HANDSHAKE,
        "TLS handshake failed: timed out",
    ),
    (
        "timeout-handshake",
        TimeoutError(),
        "handshake",
        HandshakeTimeout,
        Reason.HANDSHAKE_TIMEOUT,
        "no response to the WebSocket upgrade request",
    ),
    (
        "timeout-steps",
        TimeoutError(),
        "steps",
        ExpectTimeout,
        Reason.EXPECT_TIMEOUT,
        "no matching message",
    ),
    ("timeout-no-phase", TimeoutError(), None, ProbeTimeout, Reason.TIMEOUT, "deadline reached"),
    (
        "timeout-auth",
        TimeoutError(),
        "auth",
        AuthRejected,
        Reason.AUTH_REJECTED,
        "authentication rejected: no answer (timed out)",
    ),
    (
        "cert-expired",
        cert(10),
        "tls",
        TLSCertExpired,
        Reason.TLS_CERT_EXPIRED,
        "server certificate has expired",
    ),
    (
        "cert-hostname",
        cert(62, "Hostname mismatch"),
        "tls",
        TLSHostnameMismatch,
        Reason.TLS_HOSTNAME_MISMATCH,
        "server certificate does not match the host name: Hostname mismatch",
    ),
    (
        "cert-ip-address",
        cert(64, "IP address mismatch"),
        "tls",
        TLSHostnameMismatch,
        Reason.TLS_HOSTNAME_MISMATCH,
        "server certificate does not match the host name: IP address mismatch",
    ),
    (
        "cert-not-yet-valid",
        cert(9),
        "tls",
        TLSCertUntrusted,
        Reason.TLS_CERT_UNTRUSTED,
        "server certificate is not trusted: certificate is not yet valid",
    ),
    (
        "cert-untrusted",
        cert(20, "unable to get local issuer certificate"),
        "tls",
        TLSCertUntrusted,
        Reason.TLS_CERT_UNTRUSTED,
        "server certificate is not trusted: unable to get local issuer certificate",
    ),
    (
        "cert-no-message",
        cert(19, None),
        "tls",
        TLSCertUntrusted,
        Reason.TLS_CERT_UNTRUSTED,
        "server certificate is not trusted: certificate verify failed",
    ),
    (
        "ssl-mnemonic",
        ssl_reason("TLSV1_ALERT_PROTOCOL_VERSION"),
        "tls",
        TLSFailed,
        Reason.TLS_HANDSHAKE,
        "TLS handshake failed: tlsv1 alert protocol version",
    ),
    (
        "ssl-no-mnemonic",
        ssl.SSLEOFError(8, "eof"),
        "tls",
        TLSFailed,
        Reason.TLS_HANDSHAKE,
        "TLS handshake failed: ssleoferror",
    ),
    (
        "we-sent-1009",
        closed(Close(1009, "big"), None),
        "ping",
        MessageTooBig,
        Reason.MESSAGE_TOO_BIG,
        "server sent a message larger than max_size",
    ),
    (
        "we-sent-1002",
        closed(Close(1002, "bad"), None),
        "ping",
        ProtocolError,
        Reason.PROTOCOL_ERROR,
        "WebSocket protocol error: bad (closed with code 1002)",
    ),
    (
        "we-sent-1007",
        closed(Close(1007, "utf8"), None),
        "ping",
        ProtocolError,
        Reason.PROTOCOL_ERROR,
        "WebSocket protocol error: invalid UTF-8 in a text message (utf8; closed with code 1007)",
    ),
    (
        "we-sent-1000",
        closed(Close(1000, ""), None),
        "ping",
        ConnectionClosed,
        Reason.CLOSED,
        "connection lost without a close frame (1006)",
    ),
    (
        "they-sent-1011",
        closed(None, Close(1011, "oops")),
        "ping",
        ConnectionClosed,
        Reason.CLOSED,
        "server closed the connection with code 1011 ('oops')",
    ),
    (
        "both-sent",
        closed(Close(1009, "big"), Close(1000, "bye"), rcvd_then_sent=True),
        "ping",
        ConnectionClosed,
        Reason.CLOSED,
        "server closed the connection with code 1000 ('bye')",
    ),
    (
        "cause-too-big",
        closed(None, None, wsx.PayloadTooBig(2000, 1000)),
        "ping",
        MessageTooBig,
        Reason.MESSAGE_TOO_BIG,
        "server sent a message larger than max_size",
    ),
    (
        "cause-protocol",
        closed(None, None, wsx.ProtocolError("bad")),
        "ping",
        ProtocolError,
        Reason.PROTOCOL_ERROR,
        "WebSocket protocol error: bad",
    ),
    (
        "cause-reset",
        closed(None, None, ConnectionResetError()),
        "ping",
        ConnectionClosed,
        Reason.CLOSED,
        "connection lost without a close frame (1006): connection reset by peer",
    ),
    (
        "cause-other",
        closed(None, None, ValueError()),
        "ping",
        ConnectionClosed,
        Reason.CLOSED,
        "connection lost without a close frame (1006)",
    ),
    (
        "status-301",
        status(301, "wss://h.test/next"),
        "handshake",
        Redirected,
        Reason.REDIRECT,
        "server redirected with HTTP 301 to wss://h.test/next",
    ),
    (
        "status-300",
        status(300),
        "handshake",
        Redirected,
        Reason.REDIRECT,
        "server redirected with HTTP 300 to (no Location header)",
    ),
    (
        "status-399",
        status(399),
        "handshake",
        Redirected,
        Reason.REDIRECT,
        "server redirected with HTTP 399 to (no Location header)",
    ),
    (
        "status-400",
        status(400),
        "handshake",
        HandshakeRejected,
        Reason.HANDSHAKE_STATUS,
        "expected HTTP 101, server answered HTTP 400",
    ),
    (
        "status-299",
        status(299),
        "handshake",
        HandshakeRejected,
        Reason.HANDSHAKE_STATUS,
        "expected HTTP 101, server answered HTTP 299",
    ),
    (
        "status-200",
        status(200),
        "handshake",
        HandshakeRejected,
        Reason.HANDSHAKE_STATUS,
        "expected HTTP 101, server answered HTTP 200",
    ),
    (
        "proxy",
        wsx.ProxyError("nope"),
        "handshake",
        NetworkError,
        Reason.NETWORK,
        "network error: proxy: ProxyError",
    ),
    (
        "message-eof",
        invalid_message(EOFError()),
        "handshake",
        HandshakeInvalid,
        Reason.HANDSHAKE_INVALID,
        "invalid WebSocket handshake response: connection closed before a complete HTTP response",
    ),
    (
        "message-os",
        invalid_message(ConnectionResetError()),
        "handshake",
        NetworkError,
        Reason.NETWORK,
        "network error: ConnectionResetError during the handshake",
    ),
    (
        "message-other",
        invalid_message(ValueError()),
        "handshake",
        HandshakeInvalid,
        Reason.HANDSHAKE_INVALID,
        "invalid WebSocket handshake response: did not receive a valid HTTP response",
    ),
    (
        "bad-header",
        wsx.InvalidHeader("Sec-WebSocket-Accept", "nope"),
        "handshake",
        HandshakeInvalid,
        Reason.HANDSHAKE_INVALID,
        "invalid WebSocket handshake response: bad Sec-WebSocket-Accept header",
    ),
    (
        "negotiation",
        wsx.InvalidParameterName("x"),
        "handshake",
        HandshakeInvalid,
        Reason.HANDSHAKE_INVALID,
        "invalid WebSocket handshake response: negotiation failed (InvalidParameterName)",
    ),
    (
        "security",
        wsx.SecurityError("too long"),
        "handshake",
        HandshakeInvalid,
        Reason.HANDSHAKE_INVALID,
        "invalid WebSocket handshake response: response exceeds limits (SecurityError)",
    ),
    (
        "other-handshake",
        wsx.InvalidHandshake(),
        "handshake",
        HandshakeInvalid,
        Reason.HANDSHAKE_INVALID,
        "invalid WebSocket handshake response: InvalidHandshake",
    ),
    (
        "payload-too-big",
        wsx.PayloadTooBig(2000, 1000),
        "ping",
        MessageTooBig,
        Reason.MESSAGE_TOO_BIG,
        "server sent a message larger than max_size (1000 bytes)",
    ),
    (
        "payload-too-big-text",
        too_big_text(),
        "ping",
        MessageTooBig,
        Reason.MESSAGE_TOO_BIG,
        "server sent a message larger than max_size",
    ),
    (
        "protocol",
        wsx.ProtocolError("bad"),
        "ping",
        ProtocolError,
        Reason.PROTOCOL_ERROR,
        "WebSocket protocol error: bad",
    ),
    (
        "fragments",
        wsx.TooManyFragments("many"),
        "ping",
        ProtocolError,
        Reason.PROTOCOL_ERROR,
        "WebSocket protocol error: TooManyFragments",
    ),
    (
        "uri",
        wsx.InvalidURI("ws://u:pw@h/?t=1", "bad"),
        "handshake",
        HandshakeInvalid,
        Reason.HANDSHAKE_INVALID,
        "invalid WebSocket handshake response: invalid WebSocket URI",
    ),
    (
        "proxy-uri",
        wsx.InvalidProxy("http://p", "bad"),
        "connect",
        NetworkError,
        Reason.NETWORK,
        "network error: invalid proxy",
    ),
    (
        "state",
        wsx.InvalidState("closed"),
        "ping",
        InternalError,
        Reason.INTERNAL,
        "internal error: InvalidState",
    ),
    (
        "concurrency",
        wsx.ConcurrencyError("twice"),
        "ping",
        InternalError,
        Reason.INTERNAL,
        "internal error: ConcurrencyError",
    ),
    (
        "other-websockets",
        wsx.WebSocketException("?"),
        "ping",
        ProtocolError,
        Reason.PROTOCOL_ERROR,
        "WebSocket protocol error: WebSocketException",
    ),
    (
        "dns",
        socket.gaierror(-2, "Name or service not known"),
        "resolve",
        ResolveFailed,
        Reason.DNS,
        "cannot resolve: Name or service not known",
    ),
    (
        "dns-herror",
        socket.herror(1, "Unknown host"),
        "resolve",
        ResolveFailed,
        Reason.DNS,
        "cannot resolve: Unknown host",
    ),
    (
        "dns-no-strerror",
        socket.gaierror("weird"),
        "resolve",
        ResolveFailed,
        Reason.DNS,
        "cannot resolve: weird",
    ),
    (
        "refused",
        ConnectionRefusedError(111, "Connection refused"),
        "connect",
        ConnectRefused,
        Reason.CONNECT_REFUSED,
        "connection refused",
    ),
    (
        "reset-tls",
        ConnectionResetError(),
        "tls",
        TLSFailed,
        Reason.TLS_HANDSHAKE,
        "TLS handshake failed: connection reset by the server",
    ),
    (
        "reset-handshake",
        ConnectionResetError(),
        "handshake",
        NetworkError,
        Reason.NETWORK,
        "network error: connection reset during handshake",
    ),
    (
        "reset-ping",
        ConnectionResetError(),
        "ping",
        ConnectionClosed,
        Reason.CLOSED,
        "connection lost without a close frame (1006): connection reset by peer",
    ),
    (
        "broken-pipe-tls",
        BrokenPipeError(),
        "tls",
        TLSFailed,
        Reason.TLS_HANDSHAKE,
        "TLS handshake failed: connection reset by the server",
    ),
    (
        "aborted-handshake",
        ConnectionAbortedError(),
        "handshake",
        NetworkError,
        Reason.NETWORK,
        "network error: connection reset during handshake",
    ),
    (
        "os-strerror",
        OSError(113, "No route to host"),
        "connect",
        NetworkError,
        Reason.NETWORK,
        "network error: No route to host",
    ),
    (
        "os-no-strerror",
        PermissionError(),
        "connect",
        NetworkError,
        Reason.NETWORK,
        "network error: PermissionError",
    ),
    (
        "eof-tls",
        EOFError(),
        "tls",
        TLSFailed,
        Reason.TLS_HANDSHAKE,
        "TLS handshake failed: connection closed by the server",
    ),
    (
        "eof-handshake",
        asyncio.IncompleteReadError(b"", 10),
        "handshake",
        HandshakeInvalid,
        Reason.HANDSHAKE_INVALID,
        "invalid WebSocket handshake response: connection closed during handshake",
    ),
    (
        "eof-ping",
        EOFError(),
        "ping",
        ConnectionClosed,
        Reason.CLOSED,
        "connection lost without a close frame (1006)",
    ),
    (
        "not-a-library-error",
        ValueError("surprise"),
        "ping",
        InternalError,
        Reason.INTERNAL,
        "internal error: ValueError",
    ),
]


@pytest.mark.parametrize(
    ("exc", "phase", "cls", "reason", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_translation(
    exc: BaseException, phase: str | None, cls: type[ProbeError], reason: Reason, text: str
) -> None:
    """Each library exception, in its phase, becomes one failure with one reason and text."""
    error = translate(exc, phase)
    assert type(error) is cls
    assert error.reason is reason
    assert str(error) == text


def test_probe_errors_pass_through() -> None:
    """An exception that is already a failure is returned as it is."""
    mine = ConnectRefused()
    assert translate(mine, "tls") is mine


#: What most phases add when the check's deadline (here 2.5 s), not their own limit, cut them.
CUT = ": the check's deadline of 2.5s passed"

#: phase, failure, reason, text when the phase's own limit ran out, text when the deadline did.
DEADLINES: list[tuple[str | None, type[ProbeError], Reason, str, str]] = [
    ("resolve", ResolveFailed, Reason.DNS, "cannot resolve: timed out", "cannot resolve" + CUT),
    (
        "connect",
        ConnectTimeout,
        Reason.CONNECT_TIMEOUT,
        "TCP connect timed out",
        "TCP connect timed out" + CUT,
    ),
    (
        "tls",
        TLSFailed,
        Reason.TLS_HANDSHAKE,
        "TLS handshake failed: timed out",
        "TLS handshake failed" + CUT,
    ),
    (
        "handshake",
        HandshakeTimeout,
        Reason.HANDSHAKE_TIMEOUT,
        "no response to the WebSocket upgrade request",
        "no response to the WebSocket upgrade request" + CUT,
    ),
    (
        "auth",
        AuthRejected,
        Reason.AUTH_REJECTED,
        "authentication rejected: no answer (timed out)",
        "authentication rejected: no answer (the check's deadline of 2.5s passed)",
    ),
    (
        "steps",
        ExpectTimeout,
        Reason.EXPECT_TIMEOUT,
        "no matching message",
        "no matching message" + CUT,
    ),
    (
        "first_message",
        ExpectTimeout,
        Reason.EXPECT_TIMEOUT,
        "no matching message",
        "no matching message" + CUT,
    ),
    (
        "relay",
        ExpectTimeout,
        Reason.EXPECT_TIMEOUT,
        "no matching message",
        "no matching message" + CUT,
    ),
    ("ping", PingTimeout, Reason.PING_TIMEOUT, "no pong", "no pong" + CUT),
    (
        "close",
        ExpectTimeout,
        Reason.EXPECT_TIMEOUT,
        "no close frame from the server",
        "no close frame from the server" + CUT,
    ),
    (
        "custom",
        ProbeTimeout,
        Reason.TIMEOUT,
        "deadline reached during custom",
        "deadline of 2.5s reached during custom",
    ),
    (None, ProbeTimeout, Reason.TIMEOUT, "deadline reached", "deadline of 2.5s reached"),
]
CUT_OR_NOT = [
    pytest.param(phase, timeout, cls, reason, text, id=f"{phase}-{which}")
    for phase, cls, reason, own, cut in DEADLINES
    for timeout, text, which in ((None, own, "own-limit"), (2.5, cut, "deadline"))
]


@pytest.mark.parametrize(("phase", "timeout", "cls", "reason", "text"), CUT_OR_NOT)
def test_running_out_of_time_is_named_by_the_phase(
    phase: str | None, timeout: float | None, cls: type[ProbeError], reason: Reason, text: str
) -> None:
    """The phase that was waiting names the failure; the check's deadline is said when it cut."""
    error = deadline_failure(phase, timeout=timeout)
    assert type(error) is cls
    assert error.reason is reason
    assert str(error) == text


VIOLATIONS: list[tuple[str, str]] = [
    ("incorrect masking", "the server sent a masked frame"),
    ("reserved bits must be 0", "a frame has an RSV bit set that no extension negotiated"),
    ("fragmented control frame", "the server sent a fragmented control frame"),
    ("control frame too long", "the server sent a control frame longer than 125 bytes"),
    ("invalid opcode", "the server sent a frame with a reserved opcode"),
    ("unexpected continuation frame", "the server sent a continuation frame outside a message"),
    ("expected a continuation frame", "the server began a message before ending the last one"),
    ("incomplete fragmented message", "the server closed in the middle of a fragmented message"),
    ("close frame too short", "the server sent a close frame with a 1-byte payload"),
    ("invalid status code", "the server sent a close frame with an invalid code"),
    ("something new", "something new"),
    ("", "the server broke the WebSocket protocol"),
]


@pytest.mark.parametrize(
    ("library_text", "said"), VIOLATIONS, ids=[v[0] or "empty" for v in VIOLATIONS]
)
def test_protocol_violations_say_what_the_server_did(library_text: str, said: str) -> None:
    """websockets' reason for a refused frame becomes what the server did, raised or closed on."""
    raised = translate(wsx.ProtocolError(library_text), "ping")
    closed_on = translate(wsx.ConnectionClosedError(None, Close(1002, library_text), None), "ping")
    assert str(raised) == f"WebSocket protocol error: {said}"
    assert str(closed_on) == f"WebSocket protocol error: {said} (closed with code 1002)"


def test_invalid_utf8_close_without_detail() -> None:
    """Closing with 1007 and no reason still says it was invalid UTF-8."""
    error = translate(wsx.ConnectionClosedError(None, Close(1007, ""), None), "ping")
    assert (
        str(error)
        == "WebSocket protocol error: invalid UTF-8 in a text message (closed with code 1007)"
    )


def test_expired_certificate_says_when() -> None:
    """The expiry date is given when the TLS layer could read the certificate."""
    exc = cert(10)
    exc.not_after = 1577836800.0  # type: ignore[attr-defined]
    assert str(translate(exc, "tls")) == "server certificate expired on 2020-01-01 00:00:00 UTC"
