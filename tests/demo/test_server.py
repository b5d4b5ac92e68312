"""DemoServer lifecycle and ``main()``: clean start/stop, bind errors, signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agent.demo import DEMO_TOKEN, PATHS, DemoServer, main

DEADLINE = 2.0
ROOT = Path(__file__).resolve().parents[2]


def _busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


async def test_stop_leaves_no_tasks_with_clients_open() -> None:
    """stop() with feed, chat and a silent /flaky client open ends every task, promptly."""
    baseline = asyncio.all_tasks()
    demo = DemoServer()
    await demo.start("127.0.0.1", 0)
    opts = {"proxy": None, "ping_interval": None, "close_timeout": 0.2}
    feed = await connect(demo.url("/feed"), **opts)
    await feed.send(json.dumps({"type": "auth", "token": DEMO_TOKEN}))
    await feed.recv()
    await feed.send(json.dumps({"type": "subscribe", "channel": "ticker"}))
    chat = await connect(demo.url("/chat"), **opts)
    await chat.send(json.dumps({"type": "join", "room": "r", "user": "u"}))
    await chat.recv()
    flaky_ok = await connect(demo.url("/flaky"), **opts)
    await (await connect(demo.url("/flaky"), **opts)).close()  # the 2nd ok turn
    with pytest.raises(InvalidStatus):
        await connect(demo.url("/flaky"), **opts)  # the 503 turn of the cycle
    flaky_silent = await connect(demo.url("/flaky"), **opts)
    # Bounded under the 2 s close timeout: the silent connection must not hold stop().
    async with asyncio.timeout(1.5):
        await demo.stop()
    for ws in (feed, chat, flaky_ok, flaky_silent):
        async with asyncio.timeout(DEADLINE):
            await ws.wait_closed()
    assert asyncio.all_tasks() - baseline == set()


async def test_start_twice_and_port_before_start() -> None:
    """start() twice raises, and .port before start() raises instead of lying."""
    demo = DemoServer()
    with pytest.raises(RuntimeError):
        _ = demo.port
    await demo.start("127.0.0.1", 0)
    try:
        with pytest.raises(RuntimeError):
            await demo.start("127.0.0.1", 0)
    finally:
        await demo.stop()
    await demo.stop()  # idempotent


async def test_start_on_busy_port_raises_oserror() -> None:
    """start() on a port already in use raises OSError."""
    with _busy_port() as sock, pytest.raises(OSError, match="address already in use"):
        await DemoServer().start("127.0.0.1", sock.getsockname()[1])


def test_main_returns_1_on_busy_port() -> None:
    """main() reports a port in use with exit code 1, not a traceback."""
    with _busy_port() as sock:
        assert main(host="127.0.0.1", port=sock.getsockname()[1]) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_main_runs_until_signal(sig: signal.Signals) -> None:
    """main() logs every demo URL at start and exits 0 on SIGTERM or SIGINT."""
    with _busy_port() as sock:
        port = sock.getsockname()[1]
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout);"
        "from agent.demo import main;"
        f"raise SystemExit(main(host='127.0.0.1', port={port}))"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        # Blocks until written: per-connection chatter of websockets is kept out of the
        # log, so the first line is the one listing the URLs.
        line = proc.stdout.readline()
        for path in PATHS:
            assert f"ws://127.0.0.1:{port}{path}" in line
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_module_constants_match_docs() -> None:
    """The documented default address and paths are the ones served."""
    docs = (ROOT / "docs" / "demo.md").read_text(encoding="utf-8")
    for path in PATHS:
        assert f"ws://127.0.0.1:8765{path}" in docs


@pytest.mark.parametrize(
    ("flags", "protocols"),
    [([], True), (["--no-protocols"], False)],
    ids=["with-protocols", "no-protocols"],
)
def test_demo_server_command_and_its_protocol_targets(flags: list[str], protocols: bool) -> None:
    """`wsprobe demo-server` also serves the protocol targets, unless --no-protocols."""
    argv = [sys.executable, "-m", "agent", "demo-server", "--port", "0", *flags]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline()]
        assert "demo targets listening" in lines[0]
        if protocols:
            # A broker that is not installed adds its "skipped" line first.
            while "protocol targets listening" not in lines[-1] and len(lines) < 5:
                lines.append(proc.stderr.readline())
            assert "/socket.io/" in lines[-1]
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[1]
        assert proc.returncode == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert ("protocol targets" in out + "".join(lines)) is protocols
    assert "demo targets stopped" in out
