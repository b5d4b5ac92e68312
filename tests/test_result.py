"""ProbeResult helpers shared by every probe kind."""

from __future__ import annotations

import pytest

from agent.result import ProbeResult


def _result() -> ProbeResult:
    result = ProbeResult(check="c", kind="probe", url="ws://h/", started_at=0.0)
    result.phases = {"handshake": 0.030, "total": 0.050}
    result.pings = [0.001, 0.009, 0.002]
    result.relay = {"receiver1": 0.004, "receiver2": 0.120}
    return result


@pytest.mark.parametrize(
    ("limits", "degraded"),
    [
        ({"handshake": 0.020, "total": 0.100}, ["handshake"]),
        ({"ping": 0.005}, ["ping"]),
        ({"ping": 0.010}, []),
        ({"relay": 0.100}, ["relay"]),
        ({"tls": 0.001, "app_ping": 0.001}, []),
        ({"ping": 0.005, "relay": 0.100, "handshake": 0.020}, ["ping", "relay", "handshake"]),
    ],
    ids=["phase", "slowest-ping", "pings-within", "slowest-relay", "unmeasured", "all-in-order"],
)
def test_judge_limits_marks_exceeded_keys(limits: dict[str, float], degraded: list[str]) -> None:
    """Each limit over its measured value (max for ping/relay) is degraded; unmeasured are not."""
    result = _result()
    result.judge_limits(limits)
    assert result.degraded == degraded
