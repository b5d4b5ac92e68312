"""`wsprobe probe --send/--send-json/--expect` against the demo targets in a thread."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from agent.cli.main import main
from agent.demo.server import DemoServer


class ThreadDemo:
    """The demo server on its own loop in a thread, so main() may call asyncio.run()."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.demo = DemoServer()

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.demo.port}{path}"

    def __enter__(self) -> ThreadDemo:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.demo.start("127.0.0.1", 0), self.loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.demo.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def demo() -> Iterator[ThreadDemo]:
    with ThreadDemo() as server:
        yield server


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # main() installs a handler on the captured stderr; drop it before capsys closes it.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def probe_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["probe", *argv, "--json", "--pings", "0"])
    return code, json.loads(capsys.readouterr().out)


def test_send_and_expect_run_in_order(demo: ThreadDemo, capsys: pytest.CaptureFixture[str]) -> None:
    """Interleaved --send/--send-json/--expect become steps in the order given."""
    code, out = probe_json(
        capsys,
        demo.url("/echo"),
        "--send",
        "hello",
        "--expect",
        "hello",
        "--send-json",
        '{"n": 1}',
        "--expect",
        r'/"n":\s*1/',
    )
    assert code == 0, out["message"]
    assert [(s["name"], s["ok"]) for s in out["steps"]] == [
        ("send", True),
        ("expect", True),
        ("send", True),
        ("expect", True),
    ]


def test_feed_conversation_from_flags(demo: ThreadDemo, capsys: pytest.CaptureFixture[str]) -> None:
    """A first-message auth and subscription can be scripted ad hoc."""
    code, out = probe_json(
        capsys,
        demo.url("/feed"),
        "--send-json",
        '{"type": "auth", "token": "demo-token"}',
        "--expect",
        "auth_ok",
        "--send-json",
        '{"type": "subscribe", "channel": "ticker"}',
        "--expect",
        '/"type":"tick"/',
    )
    assert code == 0, out["message"]


def test_unmet_expect_exits_1(demo: ThreadDemo, capsys: pytest.CaptureFixture[str]) -> None:
    """An --expect nothing satisfies fails the probe as expect_timeout (exit 1)."""
    code, out = probe_json(
        capsys, demo.url("/echo"), "--send", "a", "--expect", "zzz", "--timeout", "0.5"
    )
    assert code == 1
    assert out["reason"] == "expect_timeout"
    assert "contains 'zzz'" in out["message"]


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["ws://127.0.0.1:1/", "--send-json", "{bad"], "--send-json must be valid JSON"),
        (["--check", "demo-feed", "--send", "x"], "drop --send/--send-json/--send-binary/--expect"),
        (["ws://127.0.0.1:1/", "--send-binary", "not base64!"], "--send-binary"),
    ],
    ids=["bad-json", "with-check", "bad-base64"],
)
def test_script_usage_errors(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unusable script flags exit 2 naming the flag."""
    assert main(["probe", *argv]) == 2
    assert error in capsys.readouterr().err


def test_send_binary_from_the_command_line(
    demo: ThreadDemo, capsys: pytest.CaptureFixture[str]
) -> None:
    """--send-binary BASE64 sends a binary frame; the echo comes back and matches."""
    code, result = probe_json(
        capsys, demo.url("/echo"), "--send-binary", "aGVsbG8gYmluYXJ5", "--expect", "hello binary"
    )
    assert code == 0, result["message"]
    assert [step["name"] for step in result["steps"]] == ["send_binary", "expect"]
