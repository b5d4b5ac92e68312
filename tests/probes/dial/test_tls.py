"""TLS modes of the probe against real TLS WebSocket servers (certificates by trustme)."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from websockets.asyncio.server import ServerConnection, serve

from agent.probes.dial.tls import cert_not_after
from agent.result import Reason
from tests.conftest import TLSFiles
from tests.servers import RawServer, make_check, timed_probe

# Every test here runs on both probe connections (tests/probes/conftest.py).
pytestmark = pytest.mark.usefixtures("engine")


SLACK = 0.1
UTC = datetime.UTC


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.fixture
async def wss_server() -> AsyncIterator[Any]:
    """Factory: start a TLS websockets server with ``ctx``; returns its wss:// URL."""
    servers = []

    async def start(ctx: ssl.SSLContext) -> str:
        server = await serve(echo, "127.0.0.1", 0, ssl=ctx)
        servers.append(server)
        return f"wss://127.0.0.1:{server.sockets[0].getsockname()[1]}/"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_custom_ca_succeeds_and_reports_version_and_expiry(
    wss_server: Any, tls_files: TLSFiles
) -> None:
    """Verified against ca_file: tls phase timed, TLS version and leaf notAfter reported."""
    not_after = datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    url = await wss_server(tls_files.server_context(not_after=not_after))
    result, _ = await timed_probe(make_check(url, tls={"ca_file": tls_files.ca_file}))
    assert result.success, result.message
    assert result.phases["tls"] > 0
    assert result.tls is not None
    assert result.tls.version in ("TLSv1.2", "TLSv1.3")
    assert result.tls.cert_not_after == not_after.timestamp()


async def test_server_name_override_verifies_against_that_name(
    wss_server: Any, tls_files: TLSFiles
) -> None:
    """server_name: the certificate is checked for that name, not the URL's IP."""
    url = await wss_server(tls_files.server_context("ws.internal.test"))
    tls = {"ca_file": tls_files.ca_file, "server_name": "ws.internal.test"}
    result, _ = await timed_probe(make_check(url, tls=tls))
    assert result.success, result.message


@pytest.mark.parametrize(
    ("server_max", "min_version", "reason", "version"),
    [
        (None, "1.3", None, "TLSv1.3"),
        (ssl.TLSVersion.TLSv1_2, "1.2", None, "TLSv1.2"),
        (ssl.TLSVersion.TLSv1_2, "1.3", Reason.TLS_HANDSHAKE, None),
    ],
    ids=["tls13-required-and-offered", "tls12-allowed", "tls13-required-server-12"],
)
async def test_min_version(
    wss_server: Any,
    tls_files: TLSFiles,
    server_max: ssl.TLSVersion | None,
    min_version: str,
    reason: Reason | None,
    version: str | None,
) -> None:
    """min_version refuses an older protocol as tls_handshake."""
    ctx = tls_files.server_context()
    if server_max is not None:
        ctx.maximum_version = server_max
    url = await wss_server(ctx)
    check = make_check(url, tls={"ca_file": tls_files.ca_file, "min_version": min_version})
    result, _ = await timed_probe(check)
    assert result.reason is reason, result.message
    if version:
        assert result.tls is not None
        assert result.tls.version == version


async def test_insecure_skip_verify_accepts_untrusted_and_still_reports_expiry(
    wss_server: Any, tls_files: TLSFiles, caplog: pytest.LogCaptureFixture, engine: str
) -> None:
    """insecure_skip_verify connects to an untrusted cert, warns, still reports notAfter."""
    not_after = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    url = await wss_server(tls_files.server_context(ca=trustme.CA(), not_after=not_after))
    # The warning is logged once per check name: one name per engine.
    name = f"insecure-check-{engine}"
    check = make_check(url, name=name, tls={"insecure_skip_verify": True})
    result, _ = await timed_probe(check)
    assert result.success, result.message
    assert result.tls is not None
    assert result.tls.cert_not_after == not_after.timestamp()
    assert "verification is OFF" in caplog.text


def _encrypted_key(tls_files: TLSFiles, password: bytes) -> str:
    key = serialization.load_pem_private_key(
        Path(tls_files.client_key_file).read_bytes(), password=None
    )
    path = tls_files.tmp / "client-encrypted.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
    )
    return str(path)


@pytest.mark.parametrize(
    ("client_cert", "server_max", "reason"),
    [
        ("plain", None, None),
        ("encrypted", None, None),
        ("none", ssl.TLSVersion.TLSv1_2, Reason.TLS_HANDSHAKE),
        ("none", None, Reason.TLS_HANDSHAKE),
    ],
    ids=["client-cert", "client-cert-encrypted-key", "none-tls12", "none-tls13"],
)
async def test_mutual_tls(
    wss_server: Any,
    tls_files: TLSFiles,
    client_cert: str,
    server_max: ssl.TLSVersion | None,
    reason: Reason | None,
) -> None:
    """mTLS: our certificate (also with key_password) is accepted; none is refused.

    TLS 1.2 refuses inside the TLS phase; TLS 1.3 refuses after it, which the event
    loop surfaces as a plain close: the server's request for a certificate says why.
    """
    ctx = tls_files.server_context(require_client_cert=True)
    if server_max is not None:
        ctx.maximum_version = server_max
    url = await wss_server(ctx)
    tls: dict[str, Any] = {"ca_file": tls_files.ca_file}
    if client_cert == "plain":
        tls |= {"cert_file": tls_files.client_cert_file, "key_file": tls_files.client_key_file}
    elif client_cert == "encrypted":
        key_file = _encrypted_key(tls_files, b"k3y-pass")
        tls |= {
            "cert_file": tls_files.client_cert_file,
            "key_file": key_file,
            "key_password": "k3y-pass",
        }
    check = make_check(url, tls=tls, timeout=1.0)
    result, elapsed = await timed_probe(check)
    assert result.reason is reason, result.message
    assert elapsed <= check.timeout + SLACK
    assert "k3y-pass" not in result.message
    if server_max is None and reason is not None:
        assert "asked for a client certificate and none is configured" in result.message


@pytest.mark.parametrize(
    ("server", "tls", "reason"),
    [
        ("other-ca", {"ca": True}, Reason.TLS_CERT_UNTRUSTED),
        ("other-ca", {}, Reason.TLS_CERT_UNTRUSTED),
        ("expired", {"ca": True}, Reason.TLS_CERT_EXPIRED),
        ("wrong-host", {"ca": True}, Reason.TLS_HOSTNAME_MISMATCH),
    ],
    ids=["untrusted-custom-ca", "untrusted-system-store", "expired", "wrong-host"],
)
async def test_certificate_failures(
    wss_server: Any, tls_files: TLSFiles, server: str, tls: dict[str, Any], reason: Reason
) -> None:
    """Certificate problems each get their own reason, within the deadline."""
    if server == "other-ca":
        ctx = tls_files.server_context(ca=trustme.CA())
    elif server == "expired":
        past = datetime.datetime(2021, 1, 1, tzinfo=UTC)
        ctx = tls_files.server_context(not_after=past)
    else:
        ctx = tls_files.server_context("somewhere-else.test")
    url = await wss_server(ctx)
    check = make_check(url, tls={"ca_file": tls_files.ca_file} if tls else {}, timeout=1.0)
    result, elapsed = await timed_probe(check)
    assert result.reason is reason, result.message
    assert "tls" in result.phases
    assert elapsed <= check.timeout + SLACK
    if server == "expired":
        assert result.message == "server certificate expired on 2021-01-01 00:00:00 UTC"


async def test_close_right_after_tls_without_a_certificate_request(tls_files: TLSFiles) -> None:
    """A TLS server that hangs up before answering, without asking for a client
    certificate (a terminator whose backend is down), stays handshake_invalid."""

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()
        await writer.wait_closed()

    async with RawServer(hang_up, ssl_context=tls_files.server_context()) as srv:
        check = make_check(srv.url(), tls={"ca_file": tls_files.ca_file}, timeout=1.0)
        result, _ = await timed_probe(check)
    assert result.reason is Reason.HANDSHAKE_INVALID, result.message
    assert "client certificate" not in result.message


async def test_missing_ca_file_is_a_tls_failure_not_a_crash(tls_files: TLSFiles) -> None:
    """A CA file that cannot be read fails the run as tls_handshake with a clear message."""
    check = make_check("wss://127.0.0.1:1/", tls={"ca_file": str(tls_files.tmp / "nope.pem")})
    result, _ = await timed_probe(check)
    assert result.reason is Reason.TLS_HANDSHAKE
    assert "CA file" in result.message


def test_cert_not_after_parses_der_and_rejects_garbage(ca: trustme.CA) -> None:
    """The DER walker finds notAfter in a real certificate and returns None for junk."""
    when = datetime.datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)
    pem = ca.issue_cert("x.test", not_after=when).cert_chain_pems[0].bytes().decode()
    assert cert_not_after(ssl.PEM_cert_to_DER_cert(pem)) == when.timestamp()
    assert cert_not_after(b"\x30\x03\x02\x01") is None
    assert cert_not_after(b"") is None


async def test_client_certificate_refused_under_tls13(wss_server: Any, tls_files: TLSFiles) -> None:
    """A client certificate the server does not trust fails as tls_handshake, naming it."""
    stranger = trustme.CA().issue_cert("probe-client@example.test")
    cert_file, key_file = tls_files.tmp / "stranger.pem", tls_files.tmp / "stranger.key"
    stranger.cert_chain_pems[0].write_to_path(str(cert_file))
    stranger.private_key_pem.write_to_path(str(key_file))
    url = await wss_server(tls_files.server_context(require_client_cert=True))
    tls = {"ca_file": tls_files.ca_file, "cert_file": str(cert_file), "key_file": str(key_file)}
    result, _ = await timed_probe(make_check(url, tls=tls, timeout=1.0))
    assert result.reason is Reason.TLS_HANDSHAKE, result.message
    assert "may have refused ours" in result.message
