"""The translation table behind :func:`agent.probes.errors.map_errors`.

Which library exception means which failure reason. Kept apart from the exception
tree so each module stays small; only ``map_errors`` (and tests) call it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

from websockets import exceptions as wsx

from agent.probes.errors.failures import (
    ConnectionClosed,
    ConnectRefused,
    ConnectTimeout,
    HandshakeInvalid,
    HandshakeRejected,
    HandshakeTimeout,
    InternalError,
    MessageTooBig,
    NetworkError,
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

__all__ = ["translate"]

# OpenSSL X509_V_ERR_* codes (x509_vfy.h) that deserve a reason of their own.
_X509_EXPIRED = {10}  # CERT_HAS_EXPIRED
_X509_HOSTNAME = {62, 64}  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH
_X509_NOT_YET_VALID = {9}


def _timeout_error(phase: str | None) -> ProbeError:
    """A TimeoutError means the limit of the phase it happened in."""
    if phase == "resolve":
        return ResolveFailed("timed out")
    if phase == "connect":
        return ConnectTimeout()
    if phase == "tls":
        return TLSFailed("timed out")
    if phase == "handshake":
        return HandshakeTimeout()
    return ProbeTimeout(phase=phase or "probe", timeout=0.0, detail="")


def _ssl_error(exc: ssl.SSLError) -> ProbeError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        text = str(getattr(exc, "verify_message", None) or "certificate verify failed")
        if code in _X509_EXPIRED:
            return TLSCertExpired()
        if code in _X509_HOSTNAME:
            return TLSHostnameMismatch(text)
        if code in _X509_NOT_YET_VALID:
            return TLSCertUntrusted("certificate is not yet valid")
        return TLSCertUntrusted(text)
    # reason is OpenSSL's short mnemonic (e.g. TLSV1_ALERT_PROTOCOL_VERSION): no secrets.
    mnemonic = getattr(exc, "reason", None) or type(exc).__name__
    return TLSFailed(str(mnemonic).lower().replace("_", " "))


def _closed_error(exc: wsx.ConnectionClosed) -> ProbeError:
    # A close frame WE sent tells why the library failed the connection.
    if exc.sent is not None and exc.rcvd is None:
        if exc.sent.code == 1009:
            return MessageTooBig()
        if exc.sent.code in (1002, 1007):
            return ProtocolError(f"closed with code {exc.sent.code}")
    if exc.rcvd is not None:
        return ConnectionClosed(exc.rcvd.code, exc.rcvd.reason)
    cause = exc.__cause__
    if isinstance(cause, wsx.PayloadTooBig):
        return MessageTooBig()
    if isinstance(cause, wsx.ProtocolError):
        return ProtocolError()
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
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return _timeout_error(phase)
    if isinstance(exc, wsx.ConnectionClosed):
        return _closed_error(exc)
    if isinstance(exc, wsx.InvalidHandshake):
        return _handshake_error(exc)
    if isinstance(exc, wsx.PayloadTooBig):
        return MessageTooBig(exc.max_size if exc.message is None else None)
    if isinstance(exc, wsx.ProtocolError | wsx.TooManyFragments):
        return ProtocolError(type(exc).__name__)
    if isinstance(exc, wsx.InvalidURI):
        return HandshakeInvalid("invalid WebSocket URI")
    if isinstance(exc, wsx.InvalidProxy):
        return NetworkError("invalid proxy")
    if isinstance(exc, wsx.InvalidState | wsx.ConcurrencyError):
        # Our own misuse of the connection: a bug, not a target failure.
        return InternalError(type(exc).__name__)
    if isinstance(exc, wsx.WebSocketException):
        return ProtocolError(type(exc).__name__)
    if isinstance(exc, ssl.SSLError):
        return _ssl_error(exc)
    if isinstance(exc, socket.gaierror | socket.herror):
        return ResolveFailed(str(exc.strerror or exc))
    if isinstance(exc, ConnectionRefusedError):
        return ConnectRefused()
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        if phase == "tls":
            # Servers answer an unacceptable ClientHello (version, cipher, SNI) this way.
            return TLSFailed("connection reset by the server")
        if phase == "handshake":
            return NetworkError(f"connection reset during {phase}")
        return ConnectionClosed(None, detail="connection reset by peer")
    if isinstance(exc, OSError):
        return NetworkError(exc.strerror or type(exc).__name__)
    if isinstance(exc, EOFError):
        if phase == "tls":
            return TLSFailed("connection closed by the server")
        if phase == "handshake":
            return HandshakeInvalid(f"connection closed during {phase}")
        return ConnectionClosed(None)
    return InternalError(type(exc).__name__)
