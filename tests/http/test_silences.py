"""Silences over real HTTP against a real ``wsprobe run``: auth, restart, end, expiry.

The agent probes a real target the test switches down once the silence exists, and
notifies a real webhook receiver on loopback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest
import yaml

from tests.http_receiver import HttpReceiver
from tests.runtime.conftest import Agent, parse_samples, start_agent, value
from tests.toggle_target import ToggleTarget, toggle_target

__all__ = ["start_agent"]  # the fixture, imported for pytest

AUTH = ("ops", "s3cret")


@pytest.fixture
async def target() -> Any:
    """A real target, up until the test says otherwise."""
    async with toggle_target() as t:
        yield t


def write_config(tmp_path: Path, receiver: HttpReceiver, target: ToggleTarget) -> Path:
    """An agent with basic auth, one check of ``target`` and a webhook receiver."""
    hashed = bcrypt.hashpw(AUTH[1].encode(), bcrypt.gensalt(rounds=4)).decode()
    config = {
        "agent": {
            "listen": "127.0.0.1:0",
            "location": "lab",
            "state_dir": "state",
            "web": {"basic_auth_users": {AUTH[0]: hashed}},
        },
        "check_files": [],
        "alerting": {"failure_threshold": 1, "success_threshold": 1, "receivers": ["hook"],
                     "group_wait": 0},
        "receivers": [{"name": "hook", "type": "webhook", "url": receiver.url + "/hook"}],
        "checks": [
            {"name": "down", "url": target.url, "interval": "300ms", "timeout": "250ms",
             "pings": 0, "labels": {"team": "edge"}},
        ],
    }  # fmt: skip
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def client(agent: Agent, *, auth: tuple[str, str] | None = AUTH) -> httpx.AsyncClient:
    """An HTTP client for the agent."""
    return httpx.AsyncClient(base_url=agent.url, auth=auth, timeout=5.0)


async def scrape(agent: Agent) -> Any:
    """Scrape with credentials."""
    async with client(agent) as http:
        response = await http.get("/metrics")
    response.raise_for_status()
    return parse_samples(response.text)


async def until_firing_and_held(agent: Agent) -> Any:
    """Metrics once the check fires with its firing held by the silence."""
    import asyncio
    import time

    deadline = time.monotonic() + 10.0
    while True:
        samples = await scrape(agent)
        held = value(samples, "wsprobe_alert_notifications_suppressed_total", reason="silence")
        if value(samples, "wsprobe_alert_firing", check="down") == 1 and held:
            return samples
        assert time.monotonic() < deadline, "the check never fired under the silence"
        await asyncio.sleep(0.1)


SILENCE = {
    "matchers": ['team="edge"', {"name": "check", "value": "do.*", "isRegex": True}],
    "duration": "1h",
    "created_by": "alice",
    "comment": "deploying the edge",
}


async def test_silence_survives_a_restart_and_ending_it_notifies(
    start_agent: Any, receiver: HttpReceiver, target: ToggleTarget, tmp_path: Path
) -> None:
    """Created over HTTP (auth required), kept across a restart; DELETE sends the firing."""
    config = write_config(tmp_path, receiver, target)
    agent = await start_agent(config)
    async with client(agent, auth=None) as anonymous:
        assert (await anonymous.post("/api/v1/silences", json=SILENCE)).status_code == 401
        assert (await anonymous.get("/api/v1/silences")).status_code == 401
    async with client(agent) as http:
        form = await http.post("/api/v1/silences", data={"matchers": "x"})
        assert form.status_code == 415
        bad = await http.post("/api/v1/silences", json={**SILENCE, "duration": "later"})
        assert bad.status_code == 400
        assert bad.json()["error"].startswith("duration:")
        created = await http.post("/api/v1/silences", json=SILENCE)
        assert created.status_code == 201, created.text
        silence_id = created.json()["id"]
        assert created.json()["silence"]["status"] == "active"
    target.mode = "down"
    samples = await until_firing_and_held(agent)
    assert value(samples, "wsprobe_alert_silenced", check="down", team="edge") == 1
    assert value(samples, "wsprobe_alert_flapping", check="down") == 0
    assert value(samples, "wsprobe_alert_maintenance", check="down") == 0
    assert receiver.requests == []
    assert await agent.stop() == 0

    agent = await start_agent(config)
    async with client(agent) as http:
        listed = (await http.get("/api/v1/silences")).json()["silences"]
        assert [(s["id"], s["status"], s["created_by"]) for s in listed] == [
            (silence_id, "active", "alice")
        ]
        assert listed[0]["matchers"] == ['team="edge"', 'check=~"do.*"']
        (check,) = (await http.get("/api/v1/checks")).json()["checks"]
        assert check["alert"]["silenced_by"] == [silence_id]
        assert check["alert"]["firing"] is True
        assert receiver.requests == []

        ended = await http.delete(f"/api/v1/silences/{silence_id}")
        assert ended.status_code == 200
        assert ended.json()["silence"]["status"] == "expired"
        (request,) = await receiver.wait_for(1)
        assert (request.json()["event"], request.json()["check"]) == ("firing", "down")
        assert "silence ended" in request.json()["message"]
        assert (await http.delete(f"/api/v1/silences/{silence_id}")).status_code == 404
        assert (await http.delete("/api/v1/silences/nope")).status_code == 404
    assert await agent.stop() == 0


@pytest.mark.parametrize("duration", ["1s"], ids=["expires"])
async def test_silence_expires_and_the_firing_alert_is_notified_then(
    start_agent: Any, receiver: HttpReceiver, target: ToggleTarget, tmp_path: Path, duration: str
) -> None:
    """When a silence runs out, the still-firing alert reaches the receiver."""
    agent = await start_agent(write_config(tmp_path, receiver, target))
    async with client(agent) as http:
        created = await http.post("/api/v1/silences", json={**SILENCE, "duration": duration})
        assert created.status_code == 201
    target.mode = "down"
    (request,) = await receiver.wait_for(1, timeout=10.0)
    assert request.json()["event"] == "firing"
    assert "silence ended" in request.json()["message"]  # held first, not sent at once
    async with client(agent) as http:
        (silence,) = (await http.get("/api/v1/silences")).json()["silences"]
        assert silence["status"] == "expired"
    assert await agent.stop() == 0
