"""Real protocol servers, started once per test session on loopback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import CheckConfig
from agent.probes import probe
from agent.result import ProbeResult
from tests.protocol_servers.launch import missing, python_server, serve

SERVERS = Path(__file__).resolve().parents[2] / "protocol_servers"


@pytest.fixture(scope="session")
def socketio_port() -> Iterator[int]:
    """A python-socketio server (aiohttp)."""
    with serve(python_server(str(SERVERS / "socketio_server.py"))) as port:
        yield int(port)


async def run(url: str, protocol: dict[str, Any], **fields: Any) -> ProbeResult:
    """Run a ``probe`` check speaking ``protocol`` against ``url``."""
    fields.setdefault("pings", 0)
    fields.setdefault("timeout", 5)
    check = CheckConfig.model_validate(
        {"name": "proto", "url": url, "protocol": protocol, **fields}
    )
    return await probe.run(check)


NODE_SERVERS = SERVERS / "node"


@pytest.fixture(scope="session")
def graphql_port() -> Iterator[int]:
    """The node graphql-ws (/graphql) and subscriptions-transport-ws (/legacy) servers."""
    if shutil.which("node") is None:
        missing("node")
    if not (NODE_SERVERS / "node_modules" / "graphql-ws").is_dir():
        missing("the npm packages of tests/protocol_servers/node (npm ci there)")
    with serve(["node", "graphql_server.mjs"], cwd=str(NODE_SERVERS)) as port:
        yield int(port)
