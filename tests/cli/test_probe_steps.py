"""`wsprobe probe --send/--send-json/--expect` against the demo targets in a thread."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.cli.main import main
from tests.cli.conftest import DemoThread


@pytest.fixture(scope="module")
def demo(demo_thread: DemoThread) -> DemoThread:
    return demo_thread


@pytest.fixture(autouse=True)
def _restore_logging(restore_logging: None) -> None:
    """Every test here calls main(), which installs a handler on the captured stderr."""


def probe_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["probe", *argv, "--json", "--pings", "0"])
    return code, json.loads(capsys.readouterr().out)


def test_send_and_expect_run_in_order(demo: DemoThread, capsys: pytest.CaptureFixture[str]) -> None:
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


def test_feed_conversation_from_flags(demo: DemoThread, capsys: pytest.CaptureFixture[str]) -> None:
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


def test_unmet_expect_exits_1(demo: DemoThread, capsys: pytest.CaptureFixture[str]) -> None:
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
    demo: DemoThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """--send-binary BASE64 sends a binary frame; the echo comes back and matches."""
    code, result = probe_json(
        capsys, demo.url("/echo"), "--send-binary", "aGVsbG8gYmluYXJ5", "--expect", "hello binary"
    )
    assert code == 0, result["message"]
    assert [step["name"] for step in result["steps"]] == ["send_binary", "expect"]
