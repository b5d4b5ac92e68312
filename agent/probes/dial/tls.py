"""TLS for probes: the client SSL context of a check and what the handshake revealed.

Contexts are cached per TLS configuration (and the modification times of the files
it names, so a rotated client certificate is picked up): loading the system trust
store costs milliseconds that would otherwise be paid on every run.

Certificate expiry: the earliest ``notAfter`` of the peer's chain. Python 3.13+
exposes the verified chain (``SSLObject.get_verified_chain``); on older versions,
or when verification is off, only the leaf certificate is available and its
``notAfter`` is reported.

When the handshake completed: every context builds :class:`StampedSSLObject` objects
(``SSLContext.sslobject_class``), which stamp ``handshake_at`` as the handshake
succeeds inside the event loop's TLS protocol (asyncio's and uvloop's both drive
``SSLObject.do_handshake``). ``loop.start_tls()`` only returns once the probe's task
is next scheduled: the ``tls`` phase ends at the stamp, not there.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import os
import ssl
import time
from typing import Any

from agent.config.models import TLSConfig
from agent.probes.errors import TLSFailed
from agent.result import TLSInfo

__all__ = [
    "StampedSSLObject",
    "build_ssl_context",
    "cert_not_after",
    "client_cert_requested",
    "handshake_done_at",
    "tls_info",
    "warm_ssl_context",
]

log = logging.getLogger(__name__)

# The wire log (see agent.probes.dial.upgrade), at DEBUG only under `wsprobe probe -v`.
_TRACE = logging.getLogger("agent.probes.wire")
_CACHE_SIZE = 64
_cache: dict[tuple[Any, ...], ssl.SSLContext] = {}
_pending: dict[tuple[Any, ...], asyncio.Future[ssl.SSLContext]] = {}
_warned_insecure: set[str] = set()

_MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class StampedSSLObject(ssl.SSLObject):
    """An ``SSLObject`` that records what its handshake showed, and when it completed."""

    #: perf_counter() when do_handshake() succeeded (None until then).
    handshake_at: float | None = None
    #: The server asked for a client certificate (a CertificateRequest arrived).
    client_cert_requested = False

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except ssl.SSLCertVerificationError as exc:
            if exc.verify_code == _X509_CERT_HAS_EXPIRED:
                # The failed handshake leaves no peer certificate to ask about later:
                # the expiry date travels with the exception (see errors.mapping).
                exc.not_after = self._expired_not_after()  # type: ignore[attr-defined]
            raise
        self.handshake_at = time.perf_counter()

    def _expired_not_after(self) -> float | None:
        """The earliest ``notAfter`` already past in the chain the server sent."""
        try:
            # Unverified: verification is what failed. Public from Python 3.13 (DER
            # bytes), private but present in 3.11/3.12 (certificate objects).
            getter = getattr(self, "get_unverified_chain", None)
            if getter is None:
                getter = getattr(self, "_sslobj").get_unverified_chain  # noqa: B009
            ders = [_der(cert) for cert in getter() or ()]
        except (AttributeError, ValueError, ssl.SSLError):
            return None
        now = time.time()
        past = [t for t in map(cert_not_after, ders) if t is not None and t <= now]
        return min(past, default=None)


# OpenSSL's X509_V_ERR_CERT_HAS_EXPIRED (x509_vfy.h).
_X509_CERT_HAS_EXPIRED = 10
_HANDSHAKE = 22  # TLS content type
_CERTIFICATE_REQUEST = 13  # TLS handshake message type


def _note_message(
    conn: object, direction: str, version: object, content_type: int, msg_type: int, data: bytes
) -> None:
    """OpenSSL's message callback: notes the server's request for a client certificate.

    Under TLS 1.3 a server refusing a missing or unknown client certificate does so
    after the handshake, with an alert the event loop's TLS layer never surfaces: the
    probe only sees the connection close. The CertificateRequest tells it why.
    """
    if (
        msg_type == _CERTIFICATE_REQUEST
        and content_type == _HANDSHAKE
        and direction == "read"
        and isinstance(conn, StampedSSLObject)
    ):
        conn.client_cert_requested = True


def client_cert_requested(ssl_object: object) -> bool:
    """Whether the server of ``ssl_object``'s session asked for a client certificate."""
    return isinstance(ssl_object, StampedSSLObject) and ssl_object.client_cert_requested


def handshake_done_at(ssl_object: object) -> float | None:
    """When the TLS handshake of ``ssl_object`` completed (perf_counter), if known."""
    return ssl_object.handshake_at if isinstance(ssl_object, StampedSSLObject) else None


def _mtime(path: str | None) -> float | None:
    if not path:
        return None
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def build_ssl_context(tls: TLSConfig, *, check_name: str = "") -> ssl.SSLContext:
    """Return the client SSL context for a check's TLS settings.

    Args:
        tls: the check's TLS configuration.
        check_name: used only to warn once per check when verification is off.

    Returns:
        A context verifying against the system store, or ``ca_file`` alone when
        set; presenting the client certificate when configured.

    Raises:
        TLSFailed: a CA file, certificate or key cannot be loaded.
    """
    if tls.insecure_skip_verify and check_name not in _warned_insecure:
        _warned_insecure.add(check_name)
        log.warning(
            "check %s: TLS certificate verification is OFF (insecure_skip_verify)", check_name
        )
    key = _key(tls)
    ctx = _cache.pop(key, None)
    if ctx is None:
        ctx = _new_context(tls)
    _store(key, ctx)  # (re)inserted last: eviction drops the least recently used
    return ctx


async def warm_ssl_context(tls: TLSConfig) -> None:
    """Build and cache the context off the event loop (loading a trust store blocks).

    Concurrent runs needing the same context share one build. Afterwards
    :func:`build_ssl_context` is a cache hit; build errors surface there.
    """
    key = _key(tls)
    if key in _cache:
        return
    pending = _pending.get(key)
    if pending is None:
        loop = asyncio.get_running_loop()
        pending = loop.run_in_executor(None, _new_context, tls)
        _pending[key] = pending
        pending.add_done_callback(lambda fut: _built(key, fut))
    with contextlib.suppress(TLSFailed):
        await asyncio.shield(pending)


def _built(key: tuple[Any, ...], fut: asyncio.Future[ssl.SSLContext]) -> None:
    _pending.pop(key, None)
    if not fut.cancelled() and fut.exception() is None:
        _store(key, fut.result())


def _key(tls: TLSConfig) -> tuple[Any, ...]:
    return (tls, _mtime(tls.ca_file), _mtime(tls.cert_file), _mtime(tls.key_file))


def _store(key: tuple[Any, ...], ctx: ssl.SSLContext) -> None:
    if len(_cache) >= _CACHE_SIZE:
        _cache.pop(next(iter(_cache)))
    _cache[key] = ctx


def _new_context(tls: TLSConfig) -> ssl.SSLContext:
    try:
        ctx = ssl.create_default_context(cafile=tls.ca_file)
        if tls.min_version:
            ctx.minimum_version = _MIN_VERSIONS[tls.min_version]
        if tls.cert_file:
            password = tls.key_password.get_secret_value() if tls.key_password else None
            ctx.load_cert_chain(tls.cert_file, tls.key_file, password=password)
    except (OSError, ssl.SSLError) as exc:
        # Deliberately not str(exc): it would not hold a secret, but names are enough.
        what = "client certificate/key" if tls.cert_file else "CA file"
        raise TLSFailed(f"cannot load {what} ({type(exc).__name__})") from exc
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.sslobject_class = StampedSSLObject
    # CPython's hook for OpenSSL's message callback (a debugging aid, present since
    # 3.8); without it a refused client certificate reads as a plain close.
    if hasattr(ctx, "_msg_callback"):
        ctx._msg_callback = _note_message
    return ctx


def tls_info(ssl_object: Any) -> TLSInfo:
    """Describe a completed TLS session.

    Args:
        ssl_object: the ``ssl.SSLObject`` from ``transport.get_extra_info("ssl_object")``.

    Returns:
        Version, cipher and the earliest certificate ``notAfter`` (Unix time).
    """
    if ssl_object is None:
        return TLSInfo()
    cipher = ssl_object.cipher()
    ders: list[bytes] = []
    chain_fn = getattr(ssl_object, "get_verified_chain", None)
    if chain_fn is not None:  # Python 3.13+
        try:
            ders = [_der(c) for c in chain_fn() or ()]
        except (ssl.SSLError, ValueError, AttributeError):
            ders = []
    if not ders:
        leaf = ssl_object.getpeercert(binary_form=True)
        ders = [leaf] if leaf else []
    expiries = [t for t in (cert_not_after(d) for d in ders) if t is not None]
    if _TRACE.isEnabledFor(logging.DEBUG):
        _trace_session(ssl_object, cipher, ders)
    return TLSInfo(
        version=ssl_object.version(),
        cipher=cipher[0] if cipher else None,
        cert_not_after=min(expiries) if expiries else None,
    )


def _trace_session(ssl_object: Any, cipher: Any, ders: list[bytes]) -> None:
    """Log the session, the peer certificate's names and every chain expiry (``-v``).

    The chain is what the ssl module exposes: the whole verified chain on Python 3.13+,
    the leaf before. Names are decoded only for a verified leaf.
    """
    _TRACE.debug("* TLS %s, cipher %s", ssl_object.version(), cipher[0] if cipher else "?")
    for i, der in enumerate(ders):
        expiry = cert_not_after(der)
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expiry)) if expiry else "?"
        _TRACE.debug("* chain certificate %d of %d expires %s", i + 1, len(ders), when)
    peer = ssl_object.getpeercert() or {}
    if not peer:
        _TRACE.debug("* certificate not verified, so its names are not decoded")
        return

    def name(rdns: Any) -> str:
        return ", ".join(f"{k}={v}" for rdn in rdns for k, v in rdn)

    _TRACE.debug("* certificate subject: %s", name(peer.get("subject", ())))
    _TRACE.debug("* certificate issuer: %s", name(peer.get("issuer", ())))
    _TRACE.debug("* certificate valid %s to %s", peer.get("notBefore"), peer.get("notAfter"))
    alt = ", ".join(v for _kind, v in peer.get("subjectAltName", ()))
    if alt:
        _TRACE.debug("* certificate names: %s", alt)


def _der(cert: Any) -> bytes:
    if isinstance(cert, bytes):
        return cert
    return bytes(cert.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]


def _read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """Read one DER element at ``pos``: (tag, content start, content end)."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    end = pos + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, pos, end


def cert_not_after(der: bytes) -> float | None:
    """Return a DER certificate's ``notAfter`` as a Unix timestamp (None if unparsable).

    Only the few fields in front of ``validity`` are walked, which avoids a
    dependency on a full X.509 library.

    Args:
        der: the certificate in DER form.
    """
    try:
        _, cert_start, _ = _read_tlv(der, 0)  # Certificate
        _, pos, _ = _read_tlv(der, cert_start)  # TBSCertificate
        tag, _, end = _read_tlv(der, pos)
        if tag == 0xA0:  # [0] version (optional)
            pos = end
            tag, _, end = _read_tlv(der, pos)
        for _ in range(3):  # after serialNumber: signature, issuer, validity
            pos = end
            tag, start, end = _read_tlv(der, pos)
        # tag/start/end now describe validity
        _, _, nb_end = _read_tlv(der, start)  # notBefore
        na_tag, na_start, na_end = _read_tlv(der, nb_end)  # notAfter
        text = der[na_start:na_end].decode("ascii")
    except (IndexError, ValueError, UnicodeDecodeError):
        return None
    try:
        if na_tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
            parsed = time.strptime(text, "%y%m%d%H%M%SZ")
        elif na_tag == 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
            parsed = time.strptime(text, "%Y%m%d%H%M%SZ")
        else:
            return None
    except ValueError:
        return None
    return float(calendar.timegm(parsed))
