"""Alert links point at the agent as it can be reached: bound address or agent.external_url."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.alerting.events import agent_base_url


def _config(path: Path, receiver_url: str, **agent: Any) -> Path:
    config = {
        "agent": {"listen": "127.0.0.1:0", "location": "lab", "state_dir": "state", **agent},
        "check_files": [],
        "alerting": {"failure_threshold": 1, "receivers": ["am", "pd"]},
        "receivers": [
            {"name": "am", "type": "alertmanager", "url": receiver_url + "/am"},
            {"name": "pd", "type": "pagerduty", "url": receiver_url + "/pd", "routing_key": "k"},
        ],
        # Port 9 on loopback refuses: the check fails at once and fires.
        "checks": [{"name": "down", "url": "ws://127.0.0.1:9/", "interval": "1s",
                    "timeout": "800ms"}],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _links(requests: list[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in requests:
        body = r.json()
        if r.path.startswith("/am"):
            out["generatorURL"] = body[0]["generatorURL"]
        else:
            out["client_url"] = body["client_url"]
    return out


async def test_links_use_the_bound_port_not_port_zero(
    start_agent: Any, receiver: Any, tmp_path: Path
) -> None:
    """listen 127.0.0.1:0: generatorURL and client_url carry the port actually bound."""
    agent = await start_agent(_config(tmp_path / "wsprobe.yaml", receiver.url))
    try:
        requests = await receiver.wait_for(2, timeout=15)
    finally:
        await agent.stop()
    assert not agent.url.endswith(":0")
    expected = agent.url + "/api/v1/checks"
    assert _links(requests) == {"generatorURL": expected, "client_url": expected}


async def test_external_url_wins(start_agent: Any, receiver: Any, tmp_path: Path) -> None:
    """agent.external_url replaces the bound address in every alert link."""
    config = _config(
        tmp_path / "wsprobe.yaml", receiver.url, external_url="https://probe.example.com/ws/"
    )
    agent = await start_agent(config)
    try:
        requests = await receiver.wait_for(2, timeout=15)
    finally:
        await agent.stop()
    expected = "https://probe.example.com/ws/api/v1/checks"
    assert _links(requests) == {"generatorURL": expected, "client_url": expected}


@pytest.mark.parametrize(
    ("external", "bound", "expected"),
    [
        (None, "http://127.0.0.1:39155", "http://127.0.0.1:39155"),
        (None, "https://10.0.0.5:9470", "https://10.0.0.5:9470"),
        (None, "http://0.0.0.0:9470", f"http://{socket.gethostname()}:9470"),
        (None, "http://[::]:9470", f"http://{socket.gethostname()}:9470"),
        (None, "http://[::1]:9470", "http://[::1]:9470"),
        ("https://probe.example.com/", "http://0.0.0.0:9470", "https://probe.example.com"),
    ],
    ids=["loopback", "tls", "wildcard-v4", "wildcard-v6", "v6-loopback", "external"],
)
def test_agent_base_url(external: str | None, bound: str, expected: str) -> None:
    """A wildcard bind address becomes the host name (nobody can reach 0.0.0.0)."""
    assert agent_base_url(external_url=external, bound_url=bound) == expected
