"""Title/text templates: rendered by every receiver, sandboxed, never a lost alert."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.alerting import AlertService
from agent.config import CheckConfig, Config
from agent.config.alerting import AgentAlertingConfig
from agent.notifiers import NOTIFIERS
from agent.notifiers.base import HttpNotifier
from agent.storage import Store
from tests.alerting.test_delivery import Outcomes, deliver, result
from tests.notifiers import samples

TEMPLATES = {
    "title": "{{ check | upper }} is {{ event }} ({{ labels.team }}) at {{ agent.location }}",
    "text": "{{ reason }}: {{ message }} <{{ url }}>",
}
EXPECTED_TITLE = "CHAT is firing (chat) at eu-west"
CONFIGS: dict[str, dict[str, Any]] = {
    "slack": {"url": "https://hooks.slack.com/services/T000/B000/XXXX"},
    "discord": {"url": "https://discord.com/api/webhooks/1/abc"},
    "pagerduty": {"routing_key": "R0UT1NGKEY"},
}
# Where each receiver puts the title and the text.
TITLE_AT: dict[str, tuple[Any, ...]] = {
    "slack": ("blocks", 0, "text", "text"),
    "discord": ("embeds", 0, "title"),
    "pagerduty": ("payload", "summary"),
}
TEXT_AT: dict[str, tuple[Any, ...]] = {
    "slack": ("blocks", 2, "text", "text"),
    "discord": ("embeds", 0, "description"),
}


def render(type_: str, templates: dict[str, str] | None, kind: str = "firing") -> Any:
    """The JSON body ``type_`` sends for the sample event with ``templates``."""
    notifier = NOTIFIERS[type_]
    assert isinstance(notifier, HttpNotifier)
    cfg = samples.receiver(type_, **CONFIGS[type_], templates=templates)
    return json.loads(notifier.render(cfg, samples.event(kind), samples.DELIVERY).body)


def at(body: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        body = body[key]
    return body


@pytest.mark.parametrize("type_", list(TITLE_AT))
def test_title_template_replaces_the_summary(type_: str) -> None:
    """Slack header, Discord title and PagerDuty summary come from the title template."""
    assert at(render(type_, TEMPLATES), TITLE_AT[type_]) == EXPECTED_TITLE
    assert at(render(type_, None), TITLE_AT[type_]).startswith("[FIRING] chat")


@pytest.mark.parametrize("type_", list(TEXT_AT))
def test_text_template_replaces_the_message(type_: str) -> None:
    """The text template sees the redacted URL only; Slack escapes what it rendered."""
    text = at(render(type_, TEMPLATES), TEXT_AT[type_])
    url = "wss://chat.example.com/ws?token=REDACTED"
    message = "closed: server closed the connection: code 1011 (internal error)"
    if type_ == "slack":
        assert text == f"{message} &lt;{url}&gt;"
    else:
        assert text == f"{message} <{url}>"
    assert "hunter2" not in text
    assert "s3cr3t" not in text


def test_slack_fallback_text_uses_the_title_template_escaped() -> None:
    """The notification text is the rendered title, escaped like any mrkdwn."""
    body = render("slack", {"title": "<!here> {{ check }}"})
    assert body["text"] == "&lt;!here&gt; chat"


async def test_log_line_uses_the_title_template(caplog: pytest.LogCaptureFixture) -> None:
    """The log receiver writes the rendered title."""
    cfg = samples.receiver("log", templates=TEMPLATES)
    with caplog.at_level(logging.WARNING, logger="agent.alerts"):
        async with httpx.AsyncClient() as client:
            await NOTIFIERS["log"].send(
                cfg, samples.event("firing"), samples.DELIVERY, client=client
            )
    assert [r.getMessage() for r in caplog.records] == [f"alert {EXPECTED_TITLE}"]


def test_template_failing_on_one_event_falls_back_to_the_built_in_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fine on the load-time sample, fails on a resolved event: built-in title, one WARNING."""
    source = "{{ 10 // consecutive_failures }} failures"  # 0 on resolved
    with caplog.at_level(logging.WARNING, logger="agent.notifiers.templates"):
        first = render("discord", {"title": source}, kind="resolved")
        render("discord", {"title": source}, kind="resolved")
    assert first["embeds"][0]["title"] == "[RESOLVED] chat: recovered"
    assert render("discord", {"title": source})["embeds"][0]["title"] == "3 failures"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "ZeroDivisionError" in warnings[0].getMessage()


@pytest.fixture
def store(tmp_path: Path) -> Any:
    """A fresh SQLite store."""
    s = Store(tmp_path)
    yield s
    s.close()


async def test_agent_level_templates_reach_receivers_without_their_own(
    receiver: Any, store: Store
) -> None:
    """alerting.templates applies to a Slack receiver on a real HTTP receiver; its own wins."""
    cfg = Config(
        alerting=AgentAlertingConfig.model_validate(
            {
                "failure_threshold": 1,
                "receivers": ["a", "b"],
                "templates": {"title": "agent: {{ check }}", "text": "agent text"},
                "group_wait": 0,
            }
        ),
        receivers=(
            samples.receiver("slack", receiver.url + "/a").model_copy(update={"name": "a"}),
            samples.receiver(
                "slack", receiver.url + "/b", templates={"title": "own: {{ check }}"}
            ).model_copy(update={"name": "b"}),
        ),
        checks=(CheckConfig(name="chat", url="ws://127.0.0.1:9/"),),
    )
    outcomes = Outcomes()
    service = AlertService(cfg, store, on_notification=outcomes)
    service.observe(cfg.checks[0], result("chat", False))
    await deliver(service, outcomes, lambda o: o.count("success") == 2)
    got = {
        r.path: (r.json()["text"], r.json()["blocks"][2]["text"]["text"]) for r in receiver.requests
    }
    assert got == {"/a": ("agent: chat", "agent text"), "/b": ("own: chat", "agent text")}


def test_check_config_rejects_a_broken_template_with_its_line(tmp_path: Path) -> None:
    """`wsprobe check-config` exits 1 and names file, line and key of the broken template."""
    config = tmp_path / "wsprobe.yaml"
    config.write_text(
        "check_files: []\nalerting:\n  templates:\n    title: '{{ check }'\n", encoding="utf-8"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "check-config", "-c", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "wsprobe.yaml:4: alerting.templates.title: template syntax error" in proc.stdout + (
        proc.stderr
    )
    assert "Traceback" not in proc.stdout + proc.stderr
