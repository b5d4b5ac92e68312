"""A real agent on the demo targets, and a real Prometheus scraping it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import yaml
from websockets.asyncio.server import ServerConnection, serve

from tests.runtime.conftest import _LISTENING, Agent
from tests.tools import Daemon, Daemons, require_tool

REPO = Path(__file__).resolve().parents[2]
_DEMO = re.compile(r"demo targets listening: ws://127\.0\.0\.1:(\d+)/")
#: The demo checks run this often (with a generous timeout, for a loaded machine), so a few
#: seconds give every series some history.
DEMO_INTERVAL = "2s"


@dataclass
class DemoAgent:
    """``wsprobe run`` on the example checks, pointed at a ``demo-server`` on a free port,
    plus one ``wss://`` check (the demo has no TLS target) for the certificate series."""

    agent: Agent
    demo: Agent
    checks: list[str]

    @property
    def address(self) -> str:
        return self.agent.url.removeprefix("http://")


async def _spawn(*args: str, cwd: Path) -> tuple[Agent, asyncio.Task[None]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSPROBE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    agent = Agent(proc=proc, workdir=cwd)
    return agent, asyncio.create_task(agent._pump())


@pytest.fixture
async def demo_agent(tmp_path: Path) -> AsyncIterator[DemoAgent]:
    """The example checks every second against real demo targets, and a TLS echo check."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ssl_context)

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    spawned: list[tuple[Agent, asyncio.Task[None]]] = []
    async with serve(echo, "127.0.0.1", 0, ssl=ssl_context) as tls_server:
        tls_port = tls_server.sockets[0].getsockname()[1]
        try:
            demo, pump = await _spawn("demo-server", "--port", "0", "--no-protocols", cwd=tmp_path)
            spawned.append((demo, pump))
            port = (await demo.wait_line(_DEMO.pattern)).group(1)
            checks: list[dict[str, Any]] = []
            for path in sorted((REPO / "checks").glob("*.yaml")):
                for check in yaml.safe_load(path.read_text(encoding="utf-8"))["checks"]:
                    if "protocol" in check:
                        continue  # the protocol targets are tested in tests/demo
                    check["url"] = check["url"].replace("127.0.0.1:8765", f"127.0.0.1:{port}")
                    check |= {"interval": DEMO_INTERVAL, "timeout": "1800ms"}
                    checks.append(check)
            checks.append({
                "name": "tls-echo", "url": f"wss://127.0.0.1:{tls_port}/", "interval": "1s",
                "timeout": "900ms", "pings": 1, "tls": {"ca_file": str(ca_file)},
                "labels": {"service": "tls"},
            })  # fmt: skip
            config = {
                "agent": {"listen": "127.0.0.1:0", "location": "lab", "state_dir": "state"},
                "receivers": [{"name": "log", "type": "log"}],
                "alerting": {"receivers": ["log"], "failure_threshold": 1},
                "checks": checks,
            }
            path = tmp_path / "agent.yaml"
            path.write_text(yaml.safe_dump(config), encoding="utf-8")
            agent, pump = await _spawn("run", "-c", str(path), cwd=tmp_path)
            spawned.append((agent, pump))
            agent.url = (await agent.wait_line(_LISTENING.pattern)).group(1)
            yield DemoAgent(agent=agent, demo=demo, checks=[c["name"] for c in checks])
        finally:
            for proc, pump in reversed(spawned):
                if proc.proc.returncode is None:
                    proc.proc.terminate()
                    try:
                        await asyncio.wait_for(proc.proc.wait(), 10.0)
                    except TimeoutError:
                        proc.proc.kill()
                        await proc.proc.wait()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pump, 5.0)


@dataclass
class Prometheus(Daemon):
    """A real Prometheus on a free loopback port; ``url`` is its base URL."""

    async def query(self, expr: str) -> dict[str, Any]:
        """``/api/v1/query`` at now; the JSON answer (status, data or error)."""
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(f"{self.url}/api/v1/query", params={"query": expr})
        answer: dict[str, Any] = response.json()
        return answer


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    """Start real Prometheus-family daemons; all are stopped when the test ends."""
    started = Daemons(tmp_path)
    yield started
    started.stop()


@pytest.fixture
def start_prometheus(tmp_path: Path, daemons: Daemons) -> Callable[..., Any]:
    """Start Prometheus with a scrape config; waits until it answers /-/ready."""
    binary = require_tool("prometheus", install="Debian package prometheus")

    async def start(config: dict[str, Any], *, timeout: float = 30.0) -> Prometheus:
        daemon = await daemons.start(
            binary,
            "prometheus",
            yaml.safe_dump(config),
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            timeout=timeout,
        )
        return Prometheus(url=daemon.url, log=daemon.log)

    return start


@pytest.fixture
def start_alertmanager(tmp_path: Path, daemons: Daemons) -> Callable[..., Any]:
    """Start a real Alertmanager with a config; returns its base URL once /-/ready."""
    binary = require_tool(
        "prometheus-alertmanager", "alertmanager", install="Debian package prometheus-alertmanager"
    )

    async def start(config: dict[str, Any], *, timeout: float = 20.0) -> str:
        daemon = await daemons.start(
            binary,
            "alertmanager",
            yaml.safe_dump(config),
            f"--storage.path={tmp_path / 'am-data'}",
            "--cluster.listen-address=",
            timeout=timeout,
        )
        return daemon.url

    return start
