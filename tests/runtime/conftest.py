"""A real ``wsprobe run`` subprocess and the real servers it probes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.server import ServerConnection, serve

_LISTENING = re.compile(r"listening on (https?://[^\s]+?:\d+)")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_samples(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and label set."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The value of the one sample of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and wanted <= ls]
    return found[0] if len(found) == 1 else None


@dataclass
class Agent:
    """A running ``python -m agent run`` with its log lines and HTTP base URL."""

    proc: asyncio.subprocess.Process
    workdir: Path
    lines: list[str] = field(default_factory=list)
    url: str = ""
    _line_added: asyncio.Event = field(default_factory=asyncio.Event)

    async def _pump(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())
            self._line_added.set()

    async def wait_line(self, pattern: str, *, timeout: float = 10.0) -> re.Match[str]:
        """Wait until a log line matches ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                match = regex.search(line)
                if match:
                    return match
            seen = len(self.lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.returncode is not None:
                raise AssertionError(f"no log line matching {pattern!r}:\n" + "\n".join(self.lines))
            self._line_added.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._line_added.wait(), remaining)

    async def scrape(self) -> Samples:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(self.url + "/metrics")
        response.raise_for_status()
        return parse_samples(response.text)

    async def until(
        self, predicate: Callable[[Samples], bool], *, timeout: float = 10.0
    ) -> Samples:
        """Scrape until ``predicate`` holds (a deadline, not a fixed sleep)."""
        deadline = time.monotonic() + timeout
        while True:
            samples = await self.scrape()
            if predicate(samples):
                return samples
            if time.monotonic() > deadline:
                raise AssertionError("metrics never satisfied the condition")
            await asyncio.sleep(0.1)

    async def stop(self, sig: int = signal.SIGTERM, *, timeout: float = 10.0) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await asyncio.wait_for(self.proc.wait(), timeout)


async def spawn_run(config: Path, *extra: str) -> asyncio.subprocess.Process:
    """``python -m agent run -c CONFIG ...`` in the config's directory, stderr piped.

    The ``WSPROBE_*`` variables of the test runner's environment are left out, so the
    config file alone decides.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSPROBE_")}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "-c", str(config), *extra,
        cwd=config.parent, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@pytest.fixture
async def start_agent() -> AsyncIterator[Callable[..., object]]:
    """Start ``python -m agent run -c CONFIG`` in the config's directory."""
    agents: list[Agent] = []
    pumps: list[asyncio.Task[None]] = []

    async def start(config: Path, *extra: str) -> Agent:
        agent = Agent(proc=await spawn_run(config, *extra), workdir=config.parent)
        agents.append(agent)
        pumps.append(asyncio.create_task(agent._pump()))
        agent.url = (await agent.wait_line(_LISTENING.pattern)).group(1)
        return agent

    yield start
    for agent in agents:
        if agent.proc.returncode is None:
            agent.proc.kill()
            await agent.proc.wait()
    for pump in pumps:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pump, 5.0)


@dataclass
class Targets:
    """Real servers the agent probes: a websockets echo server and a silent TCP port."""

    ws_port: int
    hang_port: int
    hung: asyncio.Event
    #: Connections the websockets server accepted, and the close codes it received.
    opened: list[str]
    close_codes: list[int | None]
    closed: asyncio.Event


@pytest.fixture
async def targets() -> AsyncIterator[Targets]:
    opened: list[str] = []
    close_codes: list[int | None] = []
    closed = asyncio.Event()

    async def echo(ws: ServerConnection) -> None:
        opened.append(ws.request.path if ws.request else "")
        try:
            async for message in ws:
                await ws.send(message)
        finally:
            close_codes.append(ws.close_code)
            closed.set()

    hung = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Accepts and never answers the upgrade: a probe hangs in its handshake.
        writers.append(writer)
        hung.set()
        await reader.read()

    async with serve(echo, "127.0.0.1", 0) as ws_server:
        hang_server = await asyncio.start_server(silent, "127.0.0.1", 0)
        try:
            ws_port = ws_server.sockets[0].getsockname()[1]
            hang_port = hang_server.sockets[0].getsockname()[1]
            yield Targets(
                ws_port=ws_port,
                hang_port=hang_port,
                hung=hung,
                opened=opened,
                close_codes=close_codes,
                closed=closed,
            )
        finally:
            for writer in writers:
                writer.close()
            hang_server.close()
            await hang_server.wait_closed()
