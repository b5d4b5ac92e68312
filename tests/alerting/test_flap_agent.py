"""Flap control in a real ``wsprobe run`` against a real target the test makes flap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.http_receiver import HttpReceiver
from tests.runtime.conftest import start_agent, value
from tests.toggle_target import toggle_target

__all__ = ["start_agent"]  # the fixture, imported for pytest


async def test_flapping_target_sends_flapping_then_nothing_until_stable(
    start_agent: Any, receiver: HttpReceiver, tmp_path: Path
) -> None:
    """Alternating up/down: firing, resolved, flapping; then silence; then one settle event."""
    async with toggle_target() as target:
        config = {
            "agent": {"listen": "127.0.0.1:0", "location": "lab", "state_dir": "state"},
            "check_files": [],
            "alerting": {
                "failure_threshold": 1,
                "success_threshold": 1,
                "receivers": ["hook"],
                "flap": {"max_changes": 2, "window": "3s"},
                "group_wait": 0,
            },
            "receivers": [{"name": "hook", "type": "webhook", "url": receiver.url + "/hook"}],
            "checks": [{"name": "flappy", "url": target.url, "interval": "200ms",
                        "timeout": "150ms", "pings": 0}],
        }  # fmt: skip
        path = tmp_path / "agent.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        target.mode = "alternate"
        agent = await start_agent(path)
        received = await receiver.wait_for(3, timeout=10.0)
        assert [r.json()["event"] for r in received] == ["firing", "resolved", "flapping"]
        assert received[2].headers["X-Wsprobe-Event"] == "flapping"

        await target.runs(10)  # still alternating: ten more changes, all held back
        samples = await agent.scrape()
        assert value(samples, "wsprobe_alert_flapping", check="flappy") == 1
        held = value(samples, "wsprobe_alert_notifications_suppressed_total", reason="flapping")
        assert held is not None
        assert held >= 9
        async with httpx.AsyncClient(base_url=agent.url, timeout=5.0) as http:
            (check,) = (await http.get("/api/v1/checks")).json()["checks"]
        assert check["alert"]["flapping"] is True
        assert len(receiver.requests) == 3

        target.mode = "up"  # stable: one event after a whole window without a change
        settled = (await receiver.wait_for(4, timeout=15.0))[3].json()
        assert settled["event"] == "resolved"
        assert "stopped flapping" in settled["message"]
        await target.runs(3)
        assert len(receiver.requests) == 4
        samples = await agent.scrape()
        assert value(samples, "wsprobe_alert_flapping", check="flappy") == 0
        assert await agent.stop() == 0
