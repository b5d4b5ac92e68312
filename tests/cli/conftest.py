"""Shared by the command-line tests: the demo targets in a thread, a real wsprobe process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.demo.server import DemoServer

ROOT = Path(__file__).resolve().parents[2]


class DemoThread:
    """The demo server on its own loop in a thread, so main() may call asyncio.run()."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.demo = DemoServer()

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.demo.port}{path}"

    def __enter__(self) -> DemoThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.demo.start("127.0.0.1", 0), self.loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.demo.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def demo_thread() -> Iterator[DemoThread]:
    with DemoThread() as server:
        yield server


def wsprobe_argv(*argv: str) -> list[str]:
    """The command line of a real ``wsprobe`` process (``python -m agent``)."""
    return [sys.executable, "-m", "agent", *argv]


def wsprobe_env(**extra: str) -> dict[str, str]:
    """The environment of a real ``wsprobe`` process, without NO_COLOR unless given."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(extra)
    return env


def run_wsprobe(
    *argv: str, stdin: str | None = None, timeout: float = 30, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``wsprobe ARGV`` to completion in the repository root."""
    return subprocess.run(
        wsprobe_argv(*argv),
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=wsprobe_env(**env),
        timeout=timeout,
        check=False,
    )
