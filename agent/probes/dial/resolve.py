"""The ``resolve`` phase: host name to addresses, under its own timeout."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from typing import Any

from agent.config.models import CheckConfig
from agent.probes.errors import ProbeError, ResolveFailed, map_errors
from agent.probes.timing import bounded

__all__ = ["DEFAULT_RESOLVE_TIMEOUT", "resolve"]

#: Upper bound of the resolve phase, inside the check's own deadline.
DEFAULT_RESOLVE_TIMEOUT = 5.0

_FAMILIES = {"auto": socket.AF_UNSPEC, "4": socket.AF_INET, "6": socket.AF_INET6}


async def resolve(check: CheckConfig, host: str, port: int, deadline: float) -> list[Any]:
    """Addresses for ``host:port`` honouring ``check.ip_version``, as getaddrinfo returns.

    An IP literal skips the resolver; a name is resolved in the default executor under
    :data:`DEFAULT_RESOLVE_TIMEOUT` and the check's deadline.

    Raises:
        ResolveFailed: no address, or a literal of the wrong family.
        ProbeError: what map_errors makes of a resolver error or timeout.
    """
    family = _FAMILIES[check.ip_version]
    fam = _literal_family(host)
    if fam is not None:  # a literal needs no resolver round trip
        if family not in (socket.AF_UNSPEC, fam):
            raise ResolveFailed(f"{host} is not an IPv{check.ip_version} address")
        return [(fam, socket.SOCK_STREAM, 0, "", (host, port))]
    loop = asyncio.get_running_loop()
    try:
        with map_errors("resolve"):
            async with bounded(deadline, DEFAULT_RESOLVE_TIMEOUT):
                infos = await loop.run_in_executor(
                    None, socket.getaddrinfo, host, port, family, socket.SOCK_STREAM
                )
    except ProbeError as exc:
        exc.detail = f"{host}: {exc.detail}" if exc.detail else host
        raise
    if not infos:
        raise ResolveFailed(f"no address for {host}")
    return infos


@functools.lru_cache(maxsize=4096)
def _literal_family(host: str) -> socket.AddressFamily | None:
    """AF_INET/AF_INET6 for an IP literal, None for a name (cached: once per check)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET
