"""The ``alertmanager`` receiver against a real Alertmanager process.

wsprobe's real delivery path (AlertService -> outbox -> dispatcher -> notifier) posts
to a real ``prometheus-alertmanager`` on loopback; the test then asks Alertmanager's
own API what it holds, and checks what Alertmanager itself sent on to a webhook
receiver (the recording HTTP receiver). Skipped when the binary is not installed
(``make test`` installs it where it can: see the Makefile's ``test-tools``).
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.alerting import AlertService
from agent.config import CheckConfig, Config
from agent.config.alerting import AgentAlertingConfig, ReceiverConfig
from agent.config.settings import AgentSettings
from agent.result import ProbeResult, Reason
from agent.storage import Store
from tests.http_receiver import HttpReceiver
from tests.tools import Daemons, require_tool

pytestmark = [pytest.mark.timeout(30)]

#: Alertmanager config: everything from wsprobe goes to the recording receiver, fast.
AM_CONFIG = """\
route:
  receiver: recorder
  group_by: [check, location]
  group_wait: 200ms
  group_interval: 500ms
  repeat_interval: 1h
  routes:
    - receiver: recorder
      matchers: ['alertname=~"Wsprobe.*"']
receivers:
  - name: recorder
    webhook_configs:
      - url: {url}/am-webhook
        send_resolved: true
"""


async def poll(probe: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Await ``probe()`` until it returns something truthy, within ``timeout`` seconds."""
    deadline = time.perf_counter() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.perf_counter() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        # Polling an external process's HTTP API: there is no event to wait on.
        await asyncio.sleep(0.05)


@pytest.fixture
async def alertmanager(tmp_path: Path, receiver: HttpReceiver) -> AsyncIterator[str]:
    """A real Alertmanager on 127.0.0.1 routing to ``receiver``; yields its base URL."""
    binary = require_tool(
        "prometheus-alertmanager", "alertmanager", install="Debian package prometheus-alertmanager"
    )
    daemons = Daemons(tmp_path)
    try:
        daemon = await daemons.start(
            binary,
            "alertmanager",
            AM_CONFIG.format(url=receiver.url),
            f"--storage.path={tmp_path / 'am-data'}",
            "--cluster.listen-address=",
            timeout=10.0,
        )
        yield daemon.url
    finally:
        daemons.stop()


def result(ok: bool) -> ProbeResult:
    """A success, or a failure with reason closed."""
    r = ProbeResult(check="chat", kind="probe", url="ws://127.0.0.1:9/chat", started_at=1.0)
    if ok:
        r.success = True
        return r
    return r.fail(Reason.CLOSED, "code 1011")


async def wait_delivered(service: AlertService) -> None:
    """Wait until the outbox is empty (Alertmanager accepted every queued event)."""

    async def empty() -> bool:
        return service.queue_depth() == 0

    await poll(empty, timeout=5.0, what="wsprobe to deliver to alertmanager")


def unix(stamp: str) -> float:
    """Alertmanager's RFC 3339 timestamp as Unix seconds."""
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def test_real_alertmanager_fires_and_resolves(
    alertmanager: str, receiver: HttpReceiver, tmp_path: Path
) -> None:
    """A real Alertmanager accepts firing then resolved, routes both, and ends the alert."""
    am = ReceiverConfig.model_validate({"name": "am", "type": "alertmanager", "url": alertmanager})
    check = CheckConfig(
        name="chat", url="ws://user:pw@127.0.0.1:9/chat?token=t0k3n", labels={"team": "rt"}
    )
    cfg = Config(
        agent=AgentSettings(location="lab-1"),
        # As docs/alerting.md advises with an Alertmanager: it groups, the agent does not.
        alerting=AgentAlertingConfig(
            failure_threshold=1, success_threshold=1, receivers=("am",), group_wait=0
        ),
        receivers=(am,),
        checks=(check,),
    )
    outcomes: list[tuple[str, str]] = []
    store = Store(tmp_path / "state")
    service = AlertService(
        cfg,
        store,
        on_notification=lambda r, o: outcomes.append((r, o)),
        retry_initial_interval=0.01,
        retry_max_interval=0.05,
    )
    await service.start()
    try:
        async with httpx.AsyncClient(base_url=alertmanager, timeout=2.0) as client:

            async def active() -> list[dict[str, Any]]:
                alerts = (await client.get("/api/v2/alerts")).json()
                return [a for a in alerts if a["labels"].get("check") == "chat"]

            assert [t.event for t in service.observe(check, result(ok=False))] == ["firing"]
            await wait_delivered(service)
            (alert,) = await poll(active, timeout=5.0, what="the alert in alertmanager")
            assert alert["status"]["state"] == "active"
            assert alert["labels"] == {
                "alertname": "WsprobeCheckFailed",
                "check": "chat",
                "location": "lab-1",
                "team": "rt",
            }
            annotations = alert["annotations"]
            assert annotations["reason"] == "closed"
            assert annotations["url"] == "ws://127.0.0.1:9/chat?token=REDACTED"
            assert annotations["summary"].startswith("[FIRING] chat")
            assert "code 1011" in annotations["description"]
            assert alert["generatorURL"].endswith("/api/v1/checks")
            # Our endsAt (two 4 h reminder periods ahead), not Alertmanager's 5 min default.
            assert unix(alert["endsAt"]) - unix(alert["startsAt"]) > 7 * 3600
            (firing,) = await receiver.wait_for(1, timeout=5.0)
            body = firing.json()
            assert (body["status"], body["groupLabels"]) == (
                "firing",
                {"check": "chat", "location": "lab-1"},
            )
            assert [a["labels"]["check"] for a in body["alerts"]] == ["chat"]

            assert [t.event for t in service.observe(check, result(ok=True))] == ["resolved"]
            await wait_delivered(service)

            async def gone() -> bool:
                return not await active()

            await poll(gone, timeout=5.0, what="alertmanager to end the alert")
            requests = await receiver.wait_for(2, timeout=5.0)
    finally:
        await service.aclose()
        store.close()
    assert [o for _, o in outcomes] == ["success", "success"]
    resolved = requests[1].json()
    assert [r.path for r in requests] == ["/am-webhook", "/am-webhook"]
    assert resolved["status"] == "resolved"
    assert [(a["status"], a["labels"]["check"]) for a in resolved["alerts"]] == [
        ("resolved", "chat")
    ]
    (gone_alert,) = resolved["alerts"]
    assert unix(alert["startsAt"]) <= unix(gone_alert["endsAt"]) <= time.time()
