"""The example Alertmanager routing under deploy/alertmanager: valid for amtool, and it
routes the rules' severities where its comments say."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.http_receiver import HttpReceiver
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


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    server = HttpReceiver()
    await server.start()
    yield server
    await server.stop()


def _alert(alertname: str, severity: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": alertname, "severity": severity, "check": "api", **labels},
            "annotations": {"summary": f"{alertname} {labels}"}}  # fmt: skip


async def test_three_locations_notify_once_and_the_quorum_pages(
    start_alertmanager: Any, receiver: HttpReceiver
) -> None:
    """A real Alertmanager with the example routing: three locations' WebSocketCheckDown
    make one chat notification; the quorum alert pages and inhibits them."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    # Only the endpoints and the waits change: routes, grouping and inhibition are the example's.
    for name in ("pager", "team-chat"):
        (entry,) = (r for r in config["receivers"] if r["name"] == name)
        entry["webhook_configs"][0]["url"] = f"{receiver.url}/{name}"
    config["route"] |= {"group_wait": "300ms", "group_interval": "1s"}
    url = await start_alertmanager(config)
    down = [
        _alert("WebSocketCheckDown", "warning", location=loc, instance=f"agent-{loc}")
        for loc in ("eu", "us", "ap")
    ]
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
        assert (await client.post("/api/v2/alerts", json=down)).status_code == 200
        (chat,) = await receiver.wait_for(1, timeout=10.0)
        body = chat.json()
        assert chat.path == "/team-chat"
        assert body["groupLabels"] == {"alertname": "WebSocketCheckDown", "check": "api"}
        assert sorted(a["labels"]["location"] for a in body["alerts"]) == ["ap", "eu", "us"]

        quorum = [_alert("WebSocketCheckDownFromSeveralLocations", "critical")]
        assert (await client.post("/api/v2/alerts", json=quorum)).status_code == 200
        requests = await receiver.wait_for(2, timeout=10.0)
        assert requests[1].path == "/pager"
        (paged,) = requests[1].json()["alerts"]
        assert paged["labels"]["alertname"] == "WebSocketCheckDownFromSeveralLocations"
        deadline = time.monotonic() + 10.0
        while True:
            alerts = (await client.get("/api/v2/alerts")).json()
            inhibited = [a for a in alerts if a["status"]["inhibitedBy"]]
            if len(inhibited) == 3 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)  # Alertmanager's API: no event to wait on
        assert {a["labels"]["alertname"] for a in inhibited} == {"WebSocketCheckDown"}
        assert len(inhibited) == 3
