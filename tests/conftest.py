"""Shared fixtures: websockets servers on loopback, trustme certificates on disk."""

from __future__ import annotations

import datetime
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from websockets.asyncio.server import serve

from tests.http_receiver import HttpReceiver
from tests.servers import echo


@dataclass(frozen=True)
class TLSFiles:
    """A CA and certificates on disk, plus the server-side contexts using them."""

    ca: trustme.CA
    ca_file: str
    client_cert_file: str
    client_key_file: str
    tmp: Path

    def server_context(
        self,
        *identities: str,
        not_after: datetime.datetime | None = None,
        require_client_cert: bool = False,
        ca: trustme.CA | None = None,
    ) -> ssl.SSLContext:
        """A server context with a certificate for ``identities`` (default 127.0.0.1)."""
        issuer = ca or self.ca
        cert = issuer.issue_cert(*(identities or ("127.0.0.1", "localhost")), not_after=not_after)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            self.ca.configure_trust(ctx)
        return ctx


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """One test CA for the session (key generation is the slow part)."""
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> TLSFiles:
    """The session CA's certificate and a client certificate, written to tmp_path."""
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    client = ca.issue_cert("probe-client@example.test")
    cert_file = tmp_path / "client.pem"
    key_file = tmp_path / "client.key"
    client.cert_chain_pems[0].write_to_path(str(cert_file))
    client.private_key_pem.write_to_path(str(key_file))
    return TLSFiles(ca, str(ca_file), str(cert_file), str(key_file), tmp_path)


#: ``await ws_server(handler=echo, **serve_kwargs)`` -> ``ws://127.0.0.1:PORT``
WsServerFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def ws_server() -> AsyncIterator[WsServerFactory]:
    """Factory: start a websockets server with ``handler``; returns its ws:// base URL."""
    servers = []

    async def start(handler: Any = echo, **kwargs: Any) -> str:
        server = await serve(handler, "127.0.0.1", 0, **kwargs)
        servers.append(server)
        return f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    """A started real HTTP receiver on loopback that records requests; stopped after."""
    server = HttpReceiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def restore_logging(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Put the root logger back after a test that calls ``main()``.

    ``main()`` installs a handler on ``sys.stderr``, which in a test is capsys' stream;
    left behind, that handler makes every later record (a server thread's included) a
    "Logging error" on a closed file. Requesting ``capsys`` makes this fixture end first.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _stream_handlers() -> list[tuple[str, logging.Handler]]:
    """Every StreamHandler on any logger, except pytest's own capture handlers."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    return [
        (logger.name, handler)
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler)
        and not type(handler).__module__.startswith("_pytest")
    ]


@pytest.fixture(autouse=True)
def _no_log_handler_left() -> Iterator[None]:
    """A test leaves no log handler behind: its stream closes with the test's capture."""
    before = {id(handler) for _, handler in _stream_handlers()}
    yield
    left = [(name, h) for name, h in _stream_handlers() if id(h) not in before]
    assert not left, f"log handlers left behind (use restore_logging): {left}"
