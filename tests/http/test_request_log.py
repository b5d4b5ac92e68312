"""Malformed requests from a raw socket to the real server: one log line, no traceback."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config.models import CheckConfig
from agent.config.settings import WebConfig
from agent.http.request_log import BAD_REQUEST_LOG_INTERVAL
from agent.http.server import WebServer
from agent.result import ProbeResult


class IdleAgent:
    """An AgentView with no checks: only /healthz matters here."""

    def ready(self) -> tuple[bool, str]:
        return True, "ready"

    def metrics_chunks(self) -> Iterator[str]:
        return iter([])

    def checks_json(self, *, name: str | None, history: int) -> list[dict[str, Any]]:
        return []

    async def reload(self) -> list[str]:
        return []

    def find_check(self, name: str) -> CheckConfig | None:
        return None

    def silence_view(self) -> None:
        return None

    async def probe_now(self, check: CheckConfig) -> tuple[ProbeResult, float]:
        raise AssertionError("no check to probe")


@pytest.fixture
async def server() -> AsyncIterator[tuple[WebServer, str, int]]:
    web = WebServer(IdleAgent(), listen="127.0.0.1:0", web_config=WebConfig())
    url = await web.start()
    host, port = url.removeprefix("http://").rsplit(":", 1)
    yield web, host, int(port)
    await web.stop()


TOO_MANY_HEADERS = (
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    + b"".join(f"X-H{i}: v\r\n".encode() for i in range(500))
    + b"\r\n"
)
LINE_TOO_LONG = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n"
BAD_HEADER = b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"


async def send_raw(host: str, port: int, request: bytes) -> bytes:
    """Send ``request`` on a fresh connection; return everything the server answers."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()


def request_log_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name in ("agent.http.request_log", "aiohttp.server")]


@pytest.mark.parametrize(
    ("request_bytes", "error"),
    [
        (TOO_MANY_HEADERS, "BadHttpMessage"),
        (LINE_TOO_LONG, "LineTooLong"),
        (BAD_HEADER, "BadHttpMessage"),
    ],
    ids=["too-many-headers", "line-too-long", "header-without-colon"],
)
async def test_malformed_requests_log_one_line_without_traceback(
    server: tuple[WebServer, str, int],
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
    error: str,
) -> None:
    """Many malformed requests: each answered 400, one WARNING line, no traceback."""
    _web, host, port = server
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    caplog.set_level(logging.DEBUG, logger="agent.http.request_log")
    for _ in range(20):
        answer = await send_raw(host, port, request_bytes)
        assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 "))
    records = request_log_records(caplog)
    assert [(r.name, r.levelname) for r in records] == [("agent.http.request_log", "WARNING")]
    line = records[0].getMessage()
    assert line.startswith(f"malformed HTTP request from 127.0.0.1 answered 400: {error}: ")
    assert "\n" not in line
    assert len(line) < 250  # the request's bytes are not copied into the log
    assert records[0].exc_info is None
    async with httpx.AsyncClient() as client:  # the server still serves
        assert (await client.get(f"http://{host}:{port}/healthz")).status_code == 200


async def test_next_line_after_the_interval_counts_the_ones_left_out(
    server: tuple[WebServer, str, int], caplog: pytest.LogCaptureFixture
) -> None:
    """Once the interval has passed, the next malformed request is logged with a count."""
    web, host, port = server
    now = [1000.0]
    web.request_log.clock = lambda: now[0]
    caplog.set_level(logging.WARNING, logger="agent.http.request_log")
    for _ in range(4):
        await send_raw(host, port, BAD_HEADER)
    now[0] += BAD_REQUEST_LOG_INTERVAL - 0.5
    await send_raw(host, port, BAD_HEADER)
    assert len(request_log_records(caplog)) == 1
    now[0] += 0.5
    await send_raw(host, port, LINE_TOO_LONG)
    lines = [r.getMessage() for r in request_log_records(caplog)]
    assert len(lines) == 2
    assert lines[1].startswith("malformed HTTP request from 127.0.0.1 answered 400: LineTooLong")
    assert lines[1].endswith("(4 more since the last such line)")


def test_other_errors_keep_their_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """An error that is not a malformed request (a handler bug) still logs its traceback."""
    web = WebServer(IdleAgent(), listen="127.0.0.1:0", web_config=WebConfig())
    caplog.set_level(logging.ERROR, logger="aiohttp.server")
    try:
        raise RuntimeError("handler bug")
    except RuntimeError as exc:
        web.request_log.exception("Error handling request from %s", "127.0.0.1", exc_info=exc)
    (record,) = request_log_records(caplog)
    assert record.name == "aiohttp.server"
    assert record.exc_info is not None
    assert record.exc_info[1] is not None
    assert str(record.exc_info[1]) == "handler bug"


async def _read_until(
    stream: asyncio.StreamReader, lines: list[str], pattern: str, *, timeout: float = 20.0
) -> re.Match[str]:
    """Read log lines into ``lines`` until one matches ``pattern`` (a deadline, no sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no line matching {pattern!r}:\n" + "\n".join(lines))
        raw = await asyncio.wait_for(stream.readline(), remaining)
        if not raw:
            raise AssertionError(f"agent exited before {pattern!r}:\n" + "\n".join(lines))
        lines.append(raw.decode(errors="replace").rstrip())
        found = re.search(pattern, lines[-1])
        if found:
            return found


async def test_running_agent_logs_malformed_requests_as_one_line(tmp_path: Path) -> None:
    """`wsprobe run`: a burst of malformed requests leaves one log line and no traceback."""
    config = tmp_path / "wsprobe.yaml"
    config.write_text(
        f"agent: {{listen: '127.0.0.1:0', state_dir: '{tmp_path / 'state'}'}}\ncheck_files: []\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSPROBE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "-c", str(config),
        cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        found = await _read_until(proc.stderr, lines, r"listening on http://([\d.]+):(\d+)")
        host, port = found.group(1), int(found.group(2))
        for request in (TOO_MANY_HEADERS, LINE_TOO_LONG, BAD_HEADER) * 5:
            answer = await send_raw(host, port, request)
            assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 "))
        async with httpx.AsyncClient() as client:  # the agent still serves
            assert (await client.get(f"http://{host}:{port}/healthz")).status_code == 200
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        lines += [raw.decode(errors="replace").rstrip() async for raw in proc.stderr]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    malformed = [line for line in lines if "malformed HTTP request" in line]
    assert len(malformed) == 1, lines
    assert "answered 400: BadHttpMessage" in malformed[0]
    assert not any("Traceback" in line or "aiohttp.server" in line for line in lines), lines
