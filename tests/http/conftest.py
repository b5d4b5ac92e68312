"""A real agent (the Daemon, in this process) probing a real echo server and a closed
port, for the status page, badge and API tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import yaml
from websockets.asyncio.server import ServerConnection, serve

from agent.runtime.daemon import Daemon

USER, PASSWORD = "viewer", "s3cret-pw"
#: A secret in a check's URL: it must never reach a page.
URL_SECRET = "tok-do-not-show"


@dataclass
class LiveAgent:
    """A started Daemon, its base URL and a client with credentials."""

    daemon: Daemon
    url: str
    client: httpx.AsyncClient
    anonymous: httpx.AsyncClient

    async def wait_results(self, *names: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until every check in ``names`` has a last result; the checks by name."""
        deadline = time.monotonic() + timeout
        while True:
            checks = (await self.client.get("/api/v1/checks", params={"history": 0})).json()
            by_name = {c["name"]: c for c in checks["checks"]}
            if all(by_name[n]["last_result"] for n in names):
                return by_name
            if time.monotonic() > deadline:
                raise AssertionError(f"no results for {names} within {timeout}s")
            await asyncio.sleep(0.05)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveAgent]:
    async with serve(_echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        config = {
            "agent": {
                "listen": "127.0.0.1:0",
                "location": "lab-1",
                "state_dir": str(tmp_path / "state"),
                "web": {
                    "basic_auth_users": {USER: hashed},
                    "public_status": {"checks": ["echo"]},
                },
            },
            "alerting": {"receivers": []},
            "checks": [
                {
                    "name": "echo",
                    "url": f"ws://127.0.0.1:{port}/",
                    "interval": "1s",
                    "timeout": "500ms",
                    "pings": 1,
                    "labels": {"team": "core"},
                    "auth": {"query": {"param": "token", "value": URL_SECRET}},
                },
                {
                    "name": "refused",
                    "url": f"ws://127.0.0.1:{_closed_port()}/",
                    "interval": "1s",
                    "timeout": "500ms",
                    "labels": {"team": "edge"},
                },
            ],
        }
        path = tmp_path / "agent.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        daemon = Daemon(path, demo=False, shard=None)
        task = asyncio.create_task(daemon.run())
        deadline = time.monotonic() + 10
        while not daemon.ready()[0]:
            assert not task.done(), "the agent stopped while starting"
            assert time.monotonic() < deadline, "the agent did not become ready"
            await asyncio.sleep(0.02)
        assert daemon.web is not None
        url = daemon.web.url
        async with (
            httpx.AsyncClient(base_url=url, auth=(USER, PASSWORD), timeout=10) as client,
            httpx.AsyncClient(base_url=url, timeout=10) as anonymous,
        ):
            try:
                yield LiveAgent(daemon, url, client, anonymous)
            finally:
                daemon.request_stop()
                with contextlib.suppress(asyncio.CancelledError):
                    assert await asyncio.wait_for(task, 15) == 0
