"""The Prometheus rules under deploy/prometheus: valid for promtool, and unit-tested by it
with every alert both firing and not firing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import require_tool

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = RULES_DIR / "wsprobe.rules.yml"
RULE_TESTS = RULES_DIR / "wsprobe.rules.test.yml"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool", install="Debian package prometheus")
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, cwd=RULES_DIR
    )


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _load(RULES)["groups"] for rule in group["rules"]]


def test_promtool_check_rules() -> None:
    """`promtool check rules` accepts the rules file."""
    proc = _promtool("check", "rules", RULES.name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in proc.stdout


def test_promtool_test_rules() -> None:
    """`promtool test rules` passes every unit test of the rules."""
    proc = _promtool("test", "rules", RULE_TESTS.name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_rule_is_unit_tested_both_ways() -> None:
    """Each alert has a test where it fires and one where it does not; each recording
    rule has an expression test."""
    tests = _load(RULE_TESTS)["tests"]
    alert_cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    exprs = {case["expr"] for test in tests for case in test.get("promql_expr_test", [])}
    missing = []
    for rule in _rules():
        if "alert" in rule:
            name = rule["alert"]
            cases = [c for c in alert_cases if c["alertname"] == name]
            if not any(c["exp_alerts"] for c in cases):
                missing.append(f"{name}: no test where it fires")
            if not any(not c["exp_alerts"] for c in cases):
                missing.append(f"{name}: no test where it stays silent")
        elif rule["record"] not in exprs:
            missing.append(f"{rule['record']}: no expression test")
    assert not missing, missing


@pytest.mark.parametrize(
    "required",
    [
        "WebSocketCheckDown", "WebSocketCheckDownFromSeveralLocations",
        "WebSocketCertificateExpiresIn14Days", "WebSocketCertificateExpiresIn3Days",
        "WebSocketCheckOverLatencyLimit", "WebSocketWatchDisconnected", "WebSocketWatchStale",
        "WebSocketRelayDeliveryFailing", "WsprobeAgentDown", "WsprobeSchedulerLagging",
        "WsprobeProbesSkipped", "WsprobeLagSuspectRunsHigh", "WsprobeNotificationsFailing",
        "WsprobeConfigReloadFailed", "WsprobeStateWritesFailing",
    ],
)  # fmt: skip
def test_documented_alerts_exist(required: str) -> None:
    """Every alert docs/deploy.md promises is in the rules file, with a severity."""
    alerts = {rule["alert"]: rule for rule in _rules() if "alert" in rule}
    assert alerts[required]["labels"]["severity"] in ("warning", "critical")
