"""One log line per run as ``agent.log_results`` asks (failures, changes, all), in logfmt."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config.models import CheckConfig
from agent.config.settings import AgentSettings
from agent.logs import setup_logging
from agent.result import ProbeResult, Reason
from agent.runtime.result_log import LogResults, ResultLog
from tests.runtime.conftest import Targets
from tests.test_logs import parse_logfmt

CHECK = CheckConfig(name="feed", url="ws://127.0.0.1:9/", interval=10.0, timeout=2.0)
#: Outcomes of six runs in a row: ok, ok, fail, fail, ok, ok.
RUNS = (True, True, False, False, True, True)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    out = io.StringIO()
    setup_logging(level="info", fmt="text", stream=out)
    yield out
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def _result(success: bool) -> ProbeResult:
    result = ProbeResult(check=CHECK.name, kind="probe", url=CHECK.url, started_at=time.time())
    result.phases = {"resolve": 0.0001, "connect": 0.0012, "handshake": 0.0031, "total": 0.0044}
    if success:
        result.success = True
        return result
    return result.fail(Reason.HANDSHAKE_STATUS, "server answered the upgrade with HTTP 503")


def _lines(stream: io.StringIO) -> list[dict[str, str]]:
    return [parse_logfmt(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("policy", "logged"),
    [
        ("failures", [2, 3]),
        ("changes", [0, 2, 4]),
        ("all", [0, 1, 2, 3, 4, 5]),
    ],
    ids=["failures", "changes", "all"],
)
def test_policy_picks_the_runs(stream: io.StringIO, policy: LogResults, logged: list[int]) -> None:
    """failures logs failed runs; changes the first run and each flip; all every run."""
    result_log = ResultLog(policy=policy)
    for index, success in enumerate(RUNS):
        result_log.record(CHECK, _result(success), duration=0.0044 + index)
    lines = _lines(stream)
    assert [float(line["duration"]) - 0.0044 for line in lines] == pytest.approx(logged)
    assert [line["success"] for line in lines] == [str(RUNS[i]).lower() for i in logged]


def test_line_carries_check_success_reason_duration_and_phases(stream: io.StringIO) -> None:
    """A failed run's line: the message, check, reason, success, duration, each phase."""
    ResultLog(policy="all").record(CHECK, _result(False), duration=0.0044)
    ResultLog(policy="all").record(CHECK, _result(True), duration=0.0044)
    failed, ok = _lines(stream)
    assert failed["level"] == "warning"
    assert failed["msg"] == "probe failed: server answered the upgrade with HTTP 503"
    assert {k: failed[k] for k in ("check", "reason", "success", "duration", "kind")} == {
        "check": "feed", "reason": "handshake_status", "success": "false",
        "duration": "0.0044", "kind": "probe",
    }  # fmt: skip
    assert (failed["resolve"], failed["connect"], failed["handshake"]) == (
        "0.0001",
        "0.0012",
        "0.0031",
    )
    assert "total" not in failed  # that is the duration
    assert ok["level"] == "info"
    assert ok["msg"] == "probe ok"
    assert "reason" not in ok


def test_default_is_failures() -> None:
    """agent.log_results defaults to failures, as documented."""
    assert AgentSettings().log_results == "failures"
    assert ResultLog().policy == "failures"


async def test_agent_logs_every_run_when_asked(
    start_agent: Any, targets: Targets, tmp_path: Path
) -> None:
    """``log_results: all`` makes a real agent write a logfmt line for a successful run."""
    config = tmp_path / "agent.yaml"
    check = {"name": "echo", "url": f"ws://127.0.0.1:{targets.ws_port}/", "interval": "1s",
             "timeout": "800ms", "pings": 1}  # fmt: skip
    agent_section = {"listen": "127.0.0.1:0", "state_dir": "state", "log_results": "all"}
    config.write_text(yaml.safe_dump({"agent": agent_section, "checks": [check]}), "utf-8")
    agent = await start_agent(config)
    line = (await agent.wait_line(r"^ts=.* msg=\"probe ok\" check=echo success=true .*")).group(0)
    pairs = parse_logfmt(line)
    assert float(pairs["duration"]) > 0
    assert {"connect", "handshake", "ping"} <= set(pairs)
    assert await agent.stop() == 0
