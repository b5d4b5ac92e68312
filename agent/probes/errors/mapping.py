"""The translation table behind :func:`agent.probes.errors.map_errors`.

Which library exception means which failure reason: :data:`_TABLE` maps each class to
a factory; the few whose meaning depends on fields (close frames, HTTP status,
certificate verification codes) or on the phase (timeouts, resets, EOF) get a
function of their own below. Kept apart from the exception tree so each module stays
small; only ``map_errors`` (and tests) call it.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import cast

from websockets import exceptions as wsx

from agent.probes.errors.failures import (
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

__all__ = ["deadline_failure", "translate"]

#: Builds the failure for one library exception raised in a phase.
_Factory = Callable[[BaseException, str | None], ProbeError]

# OpenSSL X509_V_ERR_* codes (x509_vfy.h) that deserve a reason of their own.
_X509_EXPIRED = {10}  # CERT_HAS_EXPIRED
_X509_HOSTNAME = {62, 64}  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH
_X509_NOT_YET_VALID = {9}


def deadline_failure(phase: str | None, *, timeout: float | None = None) -> ProbeError:
    """What running out of time means: the phase that was waiting names the reason.

    A server that upgrades and then goes silent is a ``ping_timeout`` whether the
    ping's own limit or the check's deadline came first; ``timeout`` is left for time
    in no phase that waits on the target.

    Args:
        phase: the phase that was waiting (None: none was).
        timeout: the check's timeout when its deadline is what passed, for the message.

    Returns:
        The failure for that phase.
    """
    cut = f"the check's deadline of {timeout:g}s passed" if timeout is not None else ""
    failure = _DEADLINE_IN.get(phase or "")
    if failure is None:
        return ProbeTimeout(phase=phase, timeout=timeout)
    return failure(cut)


#: Phase -> the failure its wait running out means (given the detail to show).
_DEADLINE_IN: dict[str, Callable[[str], ProbeError]] = {
    "resolve": lambda cut: ResolveFailed(cut or "timed out"),
    "connect": ConnectTimeout,
    "tls": lambda cut: TLSFailed(cut or "timed out"),
    "handshake": HandshakeTimeout,
    "auth": lambda cut: AuthRejected(f"no answer ({cut or 'timed out'})"),
    "steps": ExpectTimeout,
    "first_message": ExpectTimeout,
    "relay": ExpectTimeout,
    "ping": lambda cut: PingTimeout(detail=cut),
    "close": lambda cut: ExpectTimeout(cut, awaited="close frame from the server"),
}


def _ssl_error(exc: ssl.SSLError) -> ProbeError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        text = str(getattr(exc, "verify_message", None) or "certificate verify failed")
        if code in _X509_EXPIRED:
            # The TLS layer attaches the expired certificate's date when it could read it.
            return TLSCertExpired(not_after=getattr(exc, "not_after", None))
        if code in _X509_HOSTNAME:
            return TLSHostnameMismatch(text)
        if code in _X509_NOT_YET_VALID:
            return TLSCertUntrusted("certificate is not yet valid")
        return TLSCertUntrusted(text)
    # reason is OpenSSL's short mnemonic (e.g. TLSV1_ALERT_PROTOCOL_VERSION): no secrets.
    mnemonic = getattr(exc, "reason", None) or type(exc).__name__
    return TLSFailed(str(mnemonic).lower().replace("_", " "))


#: websockets' text for a frame it refused -> what the server did, for an operator.
_VIOLATIONS = {
    "incorrect masking": "the server sent a masked frame",
    "reserved bits must be 0": "a frame has an RSV bit set that no extension negotiated",
    "fragmented control frame": "the server sent a fragmented control frame",
    "control frame too long": "the server sent a control frame longer than 125 bytes",
    "invalid opcode": "the server sent a frame with a reserved opcode",
    "unexpected continuation frame": "the server sent a continuation frame outside a message",
    "expected a continuation frame": "the server began a message before ending the last one",
    "incomplete fragmented message": "the server closed in the middle of a fragmented message",
    "close frame too short": "the server sent a close frame with a 1-byte payload",
    "invalid status code": "the server sent a close frame with an invalid code",
}


def _violation(code: int | None, text: str) -> str:
    """The protocol violation behind closing with ``code``; ``text`` is websockets' reason.

    websockets' reasons are its own fixed texts (plus a byte position for UTF-8), never
    data from the server, so they may be shown.
    """
    if code == 1007:
        where = f"{text}; " if text else ""
        return f"invalid UTF-8 in a text message ({where}closed with code 1007)"
    what = _VIOLATIONS.get(text, text or "the server broke the WebSocket protocol")
    return what if code is None else f"{what} (closed with code {code})"


def _closed_error(exc: wsx.ConnectionClosed) -> ProbeError:
    # A close frame WE sent tells why the library failed the connection.
    if exc.sent is not None and exc.rcvd is None:
        if exc.sent.code == 1009:
            return MessageTooBig()
        if exc.sent.code in (1002, 1007):
            return ProtocolError(_violation(exc.sent.code, exc.sent.reason))
    if exc.rcvd is not None:
        return ConnectionClosed(exc.rcvd.code, exc.rcvd.reason)
    cause = exc.__cause__
    if isinstance(cause, wsx.PayloadTooBig):
        return MessageTooBig()
    if isinstance(cause, wsx.ProtocolError):
        return ProtocolError(_violation(None, str(cause)))
    if isinstance(cause, ConnectionResetError):
        return ConnectionClosed(None, detail="connection reset by peer")
    return ConnectionClosed(None)


def _handshake_error(exc: wsx.InvalidHandshake) -> ProbeError:
    if isinstance(exc, wsx.InvalidStatus):
        status = exc.response.status_code
        if 300 <= status < 400:
            return Redirected(status, exc.response.headers.get("Location"))
        return HandshakeRejected(status)
    if isinstance(exc, wsx.ProxyError):
        return NetworkError(f"proxy: {type(exc).__name__}")
    if isinstance(exc, wsx.InvalidMessage):
        cause = exc.__cause__
        if isinstance(cause, EOFError):
            return HandshakeInvalid("connection closed before a complete HTTP response")
        if isinstance(cause, OSError):
            return NetworkError(f"{type(cause).__name__} during the handshake")
        return HandshakeInvalid("did not receive a valid HTTP response")
    if isinstance(exc, wsx.InvalidHeader):
        return HandshakeInvalid(f"bad {exc.name} header")
    if isinstance(exc, wsx.NegotiationError):
        return HandshakeInvalid(f"negotiation failed ({type(exc).__name__})")
    if isinstance(exc, wsx.SecurityError):
        return HandshakeInvalid(f"response exceeds limits ({type(exc).__name__})")
    return HandshakeInvalid(type(exc).__name__)


def _closed(exc: BaseException, phase: str | None) -> ProbeError:
    return _closed_error(cast("wsx.ConnectionClosed", exc))


def _handshake(exc: BaseException, phase: str | None) -> ProbeError:
    return _handshake_error(cast("wsx.InvalidHandshake", exc))


def _ssl(exc: BaseException, phase: str | None) -> ProbeError:
    return _ssl_error(cast("ssl.SSLError", exc))


def _timeout(exc: BaseException, phase: str | None) -> ProbeError:
    return deadline_failure(phase)


def _too_big(exc: BaseException, phase: str | None) -> ProbeError:
    big = cast("wsx.PayloadTooBig", exc)
    return MessageTooBig(big.max_size if big.message is None else None)


def _unresolved(exc: BaseException, phase: str | None) -> ProbeError:
    return ResolveFailed(str(cast("OSError", exc).strerror or exc))


def _reset(exc: BaseException, phase: str | None) -> ProbeError:
    if phase == "tls":
        # Servers answer an unacceptable ClientHello (version, cipher, SNI) this way.
        return TLSFailed("connection reset by the server")
    if phase == "handshake":
        return NetworkError(f"connection reset during {phase}")
    return ConnectionClosed(None, detail="connection reset by peer")


def _os_error(exc: BaseException, phase: str | None) -> ProbeError:
    return NetworkError(cast("OSError", exc).strerror or type(exc).__name__)


def _eof(exc: BaseException, phase: str | None) -> ProbeError:
    if phase == "tls":
        return TLSFailed("connection closed by the server")
    if phase == "handshake":
        return HandshakeInvalid(f"connection closed during {phase}")
    return ConnectionClosed(None)


def _named(cls: type[ProbeError]) -> _Factory:
    """A failure of ``cls`` whose detail is the library class's name (never its text)."""

    def factory(exc: BaseException, phase: str | None) -> ProbeError:
        return cls(type(exc).__name__)

    return factory


def _fixed(cls: type[ProbeError], detail: str) -> _Factory:
    def factory(exc: BaseException, phase: str | None) -> ProbeError:
        return cls(detail)

    return factory


#: Library exception class -> what it means. :func:`translate` walks the raised
#: exception's MRO, so the most specific class listed wins (``ssl.SSLError`` and
#: ``TimeoutError`` before ``OSError``, ``InvalidURI`` before ``WebSocketException``).
_TABLE: dict[type[BaseException], _Factory] = {
    TimeoutError: _timeout,
    wsx.ConnectionClosed: _closed,
    wsx.InvalidHandshake: _handshake,
    wsx.PayloadTooBig: _too_big,
    wsx.ProtocolError: lambda exc, phase: ProtocolError(_violation(None, str(exc))),
    wsx.TooManyFragments: _named(ProtocolError),
    wsx.InvalidURI: _fixed(HandshakeInvalid, "invalid WebSocket URI"),
    wsx.InvalidProxy: _fixed(NetworkError, "invalid proxy"),
    # Our own misuse of the connection: a bug, not a target failure.
    wsx.InvalidState: _named(InternalError),
    wsx.ConcurrencyError: _named(InternalError),
    wsx.WebSocketException: _named(ProtocolError),
    ssl.SSLError: _ssl,
    socket.gaierror: _unresolved,
    socket.herror: _unresolved,
    ConnectionRefusedError: lambda exc, phase: ConnectRefused(),
    ConnectionResetError: _reset,
    BrokenPipeError: _reset,
    ConnectionAbortedError: _reset,
    OSError: _os_error,
    EOFError: _eof,
}


def translate(exc: BaseException, phase: str | None = None) -> ProbeError:
    """Translate one library exception into a :class:`ProbeError`.

    Args:
        exc: the exception raised by websockets, ssl, the OS or asyncio.
        phase: the phase being run, which decides what a timeout or EOF means.

    Returns:
        The matching ProbeError (``InternalError`` for anything unanticipated).
    """
    if isinstance(exc, ProbeError):
        return exc
    for cls in type(exc).__mro__:
        factory = _TABLE.get(cls)
        if factory is not None:
            return factory(exc, phase)
    return InternalError(type(exc).__name__)
