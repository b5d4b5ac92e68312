"""The example Alertmanager routing under deploy/alertmanager: valid for amtool, and it
routes the rules' severities where its comments say."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.tools import require_tool

CONFIG = (
    Path(__file__).resolve().parents[2] / "deploy" / "alertmanager" / "alertmanager.example.yml"
)


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    amtool = require_tool("amtool", install="Debian package prometheus-alertmanager")
    return subprocess.run([amtool, *args], capture_output=True, text=True, timeout=30)


def test_amtool_check_config() -> None:
    """`amtool check-config` accepts the example, inhibit rules included."""
    proc = _amtool("check-config", str(CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 inhibit rules" in proc.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=WebSocketCheckDownFromSeveralLocations", "severity=critical"], "pager"),
        (["alertname=WebSocketCheckDown", "severity=warning", "location=eu"], "team-chat"),
        (["alertname=WsprobeAgentDown", "severity=critical"], "pager"),
    ],
    ids=["quorum-pages", "one-location-chat", "agent-down-pages"],
)
def test_routes(labels: list[str], receiver: str) -> None:
    """Critical alerts page, warnings go to the team's chat."""
    proc = _amtool("config", "routes", "test", f"--config.file={CONFIG}", "check=api", *labels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == [receiver]
