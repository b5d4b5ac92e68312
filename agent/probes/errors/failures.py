"""Why a probe failed: one exception class per :class:`~agent.result.Reason`.

Probes raise these internally; the probe's entry point turns them into a failed
:class:`~agent.result.ProbeResult`. Library exceptions become these in one place,
:func:`agent.probes.errors.map_errors` (its table: :mod:`agent.probes.errors.mapping`).
The classes live apart from ``map_errors`` so the table can import them and
``map_errors`` the table, both at module level, without an import cycle.

Exception tree (reason in brackets)::

    ProbeError                      base; .reason, .detail
    ├── ResolveFailed               [dns]
    ├── ConnectRefused              [connect_refused]
    ├── ConnectTimeout              [connect_timeout]
    ├── NetworkError                [network]
    ├── TLSFailed                   [tls_handshake]
    │   ├── TLSCertExpired          [tls_cert_expired]   .not_after
    │   ├── TLSCertUntrusted        [tls_cert_untrusted]
    │   └── TLSHostnameMismatch     [tls_hostname_mismatch]
    ├── HandshakeTimeout            [handshake_timeout]
    ├── HandshakeRejected           [handshake_status]   .status_code, .expected
    ├── HandshakeInvalid            [handshake_invalid]
    ├── Redirected                  [redirect]           .status_code, .location
    ├── SubprotocolMismatch         [subprotocol_mismatch] .expected, .actual
    ├── AuthRejected                [auth_rejected]
    ├── ExpectTimeout               [expect_timeout]     .step, .timeout, .awaited
    ├── ExpectMismatch              [expect_mismatch]    .step
    ├── PingTimeout                 [ping_timeout]       .index, .timeout
    ├── ConnectionClosed            [closed]             .code, .close_reason
    ├── MessageTooBig               [message_too_big]    .max_size
    ├── ProtocolError               [protocol_error]
    ├── ProbeTimeout                [timeout]            .phase, .timeout
    └── InternalError               [internal]

Messages are built in ``__str__`` from structured fields. Nothing here ever formats
a library exception's own text blindly: those may quote a URL holding a token.
"""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

from agent.redact import redact_url
from agent.result import Reason

__all__ = [
    "AuthRejected",
    "ConnectRefused",
    "ConnectTimeout",
    "ConnectionClosed",
    "ExpectMismatch",
    "ExpectTimeout",
    "HandshakeInvalid",
    "HandshakeRejected",
    "HandshakeTimeout",
    "InternalError",
    "MessageTooBig",
    "NetworkError",
    "PingTimeout",
    "ProbeError",
    "ProbeTimeout",
    "ProtocolError",
    "Redirected",
    "ResolveFailed",
    "SubprotocolMismatch",
    "TLSCertExpired",
    "TLSCertUntrusted",
    "TLSFailed",
    "TLSHostnameMismatch",
]


class ProbeError(Exception):
    """Base class: a probe failure with exactly one reason."""

    reason: ClassVar[Reason] = Reason.INTERNAL
    title: ClassVar[str] = "probe failed"

    def __init_subclass__(
        cls, *, reason: Reason | None = None, title: str | None = None, **kwargs: Any
    ) -> None:
        # A failure class is its reason and its fixed message; the class line says both.
        super().__init_subclass__(**kwargs)
        if reason is not None:
            cls.reason = reason
        if title is not None:
            cls.title = title

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail

    def summary(self) -> str:
        """The fixed part of the message, before any detail."""
        return self.title

    def __str__(self) -> str:
        head = self.summary()
        return f"{head}: {self.detail}" if self.detail else head


class ResolveFailed(ProbeError, reason=Reason.DNS, title="cannot resolve"):
    """The host name could not be resolved to an address."""


class ConnectRefused(ProbeError, reason=Reason.CONNECT_REFUSED, title="connection refused"):
    """The TCP connection was refused (nothing listening)."""


class ConnectTimeout(ProbeError, reason=Reason.CONNECT_TIMEOUT, title="TCP connect timed out"):
    """The TCP connection did not complete in time."""


class NetworkError(ProbeError, reason=Reason.NETWORK, title="network error"):
    """A network-level failure: reset, unreachable, broken pipe, proxy failure."""


class TLSFailed(ProbeError, reason=Reason.TLS_HANDSHAKE, title="TLS handshake failed"):
    """The TLS handshake failed or did not complete."""


class TLSCertExpired(TLSFailed, reason=Reason.TLS_CERT_EXPIRED):
    """The server's certificate (or one in its chain) has expired."""

    def __init__(self, detail: str = "", *, not_after: float | None = None) -> None:
        super().__init__(detail)
        #: The expired certificate's ``notAfter`` (Unix time), when it could be read.
        self.not_after = not_after

    def summary(self) -> str:
        if self.not_after is None:
            return "server certificate has expired"
        when = datetime.datetime.fromtimestamp(self.not_after, datetime.UTC)
        return f"server certificate expired on {when:%Y-%m-%d %H:%M:%S} UTC"


class TLSCertUntrusted(
    TLSFailed, reason=Reason.TLS_CERT_UNTRUSTED, title="server certificate is not trusted"
):
    """The server's certificate does not chain to a trusted CA."""


class TLSHostnameMismatch(
    TLSFailed,
    reason=Reason.TLS_HOSTNAME_MISMATCH,
    title="server certificate does not match the host name",
):
    """The server's certificate is not valid for the requested host name."""


class HandshakeTimeout(
    ProbeError,
    reason=Reason.HANDSHAKE_TIMEOUT,
    title="no response to the WebSocket upgrade request",
):
    """No HTTP response to the upgrade request in time."""


class HandshakeRejected(ProbeError, reason=Reason.HANDSHAKE_STATUS):
    """The server answered the upgrade with an unexpected HTTP status."""

    def __init__(self, status_code: int, *, expected: int = 101, detail: str = "") -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.expected = expected

    def summary(self) -> str:
        if self.status_code == 101:
            return f"expected HTTP {self.expected} but the server upgraded the connection (101)"
        return f"expected HTTP {self.expected}, server answered HTTP {self.status_code}"


class HandshakeInvalid(
    ProbeError, reason=Reason.HANDSHAKE_INVALID, title="invalid WebSocket handshake response"
):
    """The server's response to the upgrade request is not a valid WebSocket handshake."""


class Redirected(ProbeError, reason=Reason.REDIRECT):
    """The server redirected and redirects are not allowed (or could not be followed)."""

    def __init__(self, status_code: int, location: str | None, *, detail: str = "") -> None:
        super().__init__(detail)
        self.status_code = status_code
        # Stored redacted: a Location may carry a token in its query string.
        self.location = redact_url(location) if location else None

    def summary(self) -> str:
        where = self.location or "(no Location header)"
        return f"server redirected with HTTP {self.status_code} to {where}"


class SubprotocolMismatch(ProbeError, reason=Reason.SUBPROTOCOL_MISMATCH):
    """The server chose a different subprotocol than the check demands."""

    def __init__(self, expected: str | None, actual: str | None, *, detail: str = "") -> None:
        super().__init__(detail)
        self.expected = expected
        self.actual = actual

    def summary(self) -> str:
        got = repr(self.actual) if self.actual else "none"
        if self.expected is None:  # no expectation: the server chose one never offered
            return f"server chose subprotocol {got}, which was not offered"
        want = f"subprotocol {self.expected!r}" if self.expected else "no subprotocol"
        return f"expected {want}, server chose {got}"


class AuthRejected(ProbeError, reason=Reason.AUTH_REJECTED, title="authentication rejected"):
    """Authentication failed: token endpoint, first-message auth or auth steps."""


class ExpectTimeout(ProbeError, reason=Reason.EXPECT_TIMEOUT):
    """What a step (or ``expect.close_code``) waited for did not arrive in time."""

    def __init__(
        self,
        detail: str = "",
        *,
        step: str | None = None,
        timeout: float | None = None,
        awaited: str = "matching message",
    ) -> None:
        super().__init__(detail)
        self.step = step
        self.timeout = timeout
        self.awaited = awaited

    def summary(self) -> str:
        where = f" at step {self.step}" if self.step else ""
        within = f" within {self.timeout:g}s" if self.timeout is not None else ""
        return f"no {self.awaited}{where}{within}"


class ExpectMismatch(ProbeError, reason=Reason.EXPECT_MISMATCH):
    """A message matched a step's fail condition or could not satisfy it."""

    def __init__(self, detail: str = "", *, step: str | None = None) -> None:
        super().__init__(detail)
        self.step = step

    def summary(self) -> str:
        return f"unexpected message at step {self.step}" if self.step else "unexpected message"


class PingTimeout(ProbeError, reason=Reason.PING_TIMEOUT):
    """A protocol ping got no pong in time (its ``ping_timeout``, or the deadline)."""

    def __init__(
        self, *, index: int | None = None, timeout: float | None = None, detail: str = ""
    ) -> None:
        super().__init__(detail)
        self.index = index
        self.timeout = timeout

    def summary(self) -> str:
        which = f" for ping {self.index + 1}" if self.index is not None else ""
        within = f" within {self.timeout:g}s" if self.timeout is not None else ""
        return f"no pong{which}{within}"


class ConnectionClosed(ProbeError, reason=Reason.CLOSED):
    """The connection closed before the probe finished (or with the wrong code)."""

    def __init__(
        self,
        code: int | None,
        close_reason: str = "",
        *,
        expected: int | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.close_reason = close_reason
        self.expected = expected

    def summary(self) -> str:
        if self.code is None or self.code == 1006:
            text = "connection lost without a close frame (1006)"
        else:
            text = f"server closed the connection with code {self.code}"
            if self.close_reason:
                text += f" ({self.close_reason[:120]!r})"
        if self.expected is not None:
            text = f"expected close code {self.expected}; {text}"
        return text


class MessageTooBig(ProbeError, reason=Reason.MESSAGE_TOO_BIG):
    """The server sent a message larger than the check's max_size."""

    def __init__(self, max_size: int | None = None, *, detail: str = "") -> None:
        super().__init__(detail)
        self.max_size = max_size

    def summary(self) -> str:
        if self.max_size is None:
            return "server sent a message larger than max_size"
        return f"server sent a message larger than max_size ({self.max_size} bytes)"


class ProtocolError(ProbeError, reason=Reason.PROTOCOL_ERROR, title="WebSocket protocol error"):
    """The server broke the WebSocket protocol (bad frame, bad UTF-8, ...)."""


class ProbeTimeout(ProbeError, reason=Reason.TIMEOUT):
    """The check's deadline passed while no phase was waiting on the target."""

    def __init__(self, *, phase: str | None, timeout: float | None, detail: str = "") -> None:
        super().__init__(detail)
        self.phase = phase
        self.timeout = timeout

    def summary(self) -> str:
        of = f" of {self.timeout:g}s" if self.timeout is not None else ""
        during = f" during {self.phase}" if self.phase is not None else ""
        return f"deadline{of} reached{during}"


class InternalError(ProbeError, reason=Reason.INTERNAL, title="internal error"):
    """A bug or an exception nobody anticipated; never a target failure."""
