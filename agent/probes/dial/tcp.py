"""The ``connect`` phase: a TCP connection to a resolved address, stamped when made.

The socket is connected here (non-blocking ``connect``) and only then handed to
``loop.create_connection(sock=...)``. When the connection is not established by the
time ``connect`` returns (it always is on loopback), a writer callback stamps its
completion: uvloop runs those while it polls, ahead of the callbacks already queued.
The ``connection_made`` that ``create_connection`` delivers on its own comes after all
of them, so on a busy agent it carried the agent's queue into ``connect`` (~1.4 ms at
p99 with 10,000 checks per core, docs/bench-log.md). The full resolved address is used,
so an IPv6 link-local address keeps its scope id.

Raises ProbeError (``connect_*`` reasons via :func:`~agent.probes.errors.map_errors`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from agent.probes.errors import ProbeError, map_errors
from agent.result import ProbeResult

__all__ = ["ADDRESS_LOG", "connect_tcp", "format_addr"]

#: The addresses resolved and tried, at DEBUG (``wsprobe probe -vv``); a child of the
#: wire log, so disabled (and never formatted) unless the CLI enables it.
ADDRESS_LOG = logging.getLogger("agent.probes.wire.addresses")


def format_addr(sockaddr: Any) -> str:
    """``host:port``, with IPv6 hosts in brackets."""
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


async def connect_tcp(
    infos: list[Any],
    result: ProbeResult,
    factory: Callable[[], asyncio.Protocol],
) -> tuple[asyncio.Transport, asyncio.Protocol, float]:
    """Connect to the first resolved address that accepts; ``result.peer_ip`` is it.

    One connection per run, but every resolved address may be tried for it (e.g.
    localhost -> ::1 refused, then 127.0.0.1), like any client does.

    Returns:
        The transport, ``factory()``'s protocol on it, and the ``perf_counter()``
        when the TCP connection was established.
    """
    loop = asyncio.get_running_loop()
    last: ProbeError | None = None
    trace = ADDRESS_LOG.isEnabledFor(logging.DEBUG)
    if trace:
        ADDRESS_LOG.debug("* resolved: %s", ", ".join(format_addr(i[4]) for i in infos))
    for family, _type, proto, _, sockaddr in infos:
        result.peer_ip = str(sockaddr[0])
        if trace:
            ADDRESS_LOG.debug("* trying %s", format_addr(sockaddr))
        try:
            with map_errors("connect"):
                sock, connected_at = await _connected_socket(loop, family, proto, sockaddr)
                try:
                    transport, protocol = await loop.create_connection(factory, sock=sock)
                except BaseException:
                    sock.close()
                    raise
        except ProbeError as exc:
            where = format_addr(sockaddr)
            exc.detail = f"{where}: {exc.detail}" if exc.detail else where
            if trace:
                ADDRESS_LOG.debug("* %s failed: %s", where, exc)
            if isinstance(exc.__cause__, TimeoutError):  # the OS gave up (ETIMEDOUT)
                raise
            last = exc
            continue
        return transport, protocol, connected_at
    assert last is not None
    raise last


def _established(sock: socket.socket) -> bool:
    """Whether a non-blocking connect in progress has completed already."""
    try:
        sock.getpeername()
    except OSError:  # ENOTCONN: not yet (or failed: SO_ERROR says so after the wait)
        return False
    return True


async def _connected_socket(
    loop: asyncio.AbstractEventLoop, family: int, proto: int, sockaddr: Any
) -> tuple[socket.socket, float]:
    """A non-blocking socket connected to ``sockaddr``, and when it got connected.

    Raises:
        OSError: the connection failed (``ConnectionRefusedError`` and the like).
    """
    sock = socket.socket(family, socket.SOCK_STREAM, proto)
    try:
        sock.setblocking(False)
        # Small frames (pings, the upgrade) go out at once: Nagle would hold a ping
        # behind an unacknowledged write and add that wait to its RTT. (uvloop sets it
        # too; Python's own loop only when getaddrinfo named the protocol.)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(sockaddr)
        connected_at = time.perf_counter()
        if code == errno.EINPROGRESS and _established(sock):
            # Often already done (always on loopback): no wait for a loop turn.
            code = 0
        if code == errno.EINPROGRESS:
            fd = sock.fileno()
            done: asyncio.Future[float] = loop.create_future()

            def writable() -> None:
                if not done.done():
                    done.set_result(time.perf_counter())
                loop.remove_writer(fd)

            loop.add_writer(fd, writable)
            try:
                connected_at = await done
            finally:
                loop.remove_writer(fd)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            # OSError(errno, ...) is the errno's own subclass (ConnectionRefusedError...).
            raise OSError(code, os.strerror(code))
        return sock, connected_at
    except BaseException:
        sock.close()
        raise
