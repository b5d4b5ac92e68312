"""Every rendered field fits its service's documented limit; Slack text is escaped.

One oversized, hostile event (a 2,508-character URL, a 10,000-character message that
starts with ``<!channel>``, a 300-character check name) is rendered by each receiver;
each limit has its own row. A field over its limit makes the service answer 400,
which is never retried: the alert would be lost.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from agent.alerting.events import build_event
from agent.alerting.state import Transition
from agent.notifiers import NOTIFIERS
from agent.notifiers.base import AlertEvent, HttpNotifier
from agent.notifiers.discord import DISCORD_LIMITS
from agent.notifiers.limits import ELLIPSIS, cut_key
from agent.notifiers.pagerduty import PAGERDUTY_LIMITS
from agent.notifiers.slack import SLACK_LIMITS
from tests.notifiers import samples

CHECK = "c" * 300
URL = "wss://chat.example.com/" + "p" * 2485  # 2,508 characters
MESSAGE = "<!channel> server said: " + "x&<>" * 2500
CONFIGS: dict[str, dict[str, Any]] = {
    "slack": {"url": "https://hooks.slack.com/services/T000/B000/XXXX"},
    "discord": {"url": "https://discord.com/api/webhooks/1/abc"},
    "pagerduty": {"routing_key": "R0UT1NGKEY"},
}


def hostile(kind: str = "firing", *, message: str = MESSAGE) -> AlertEvent:
    """An event whose every free-text part is too long for any chat service."""
    transition = Transition(
        check=CHECK,
        alert="down",
        event=kind,  # type: ignore[arg-type]
        at=samples.T0 + 120.0,
        started_at=samples.T0,
        resolved_at=None,
        consecutive_failures=3,
        reason="closed",
        message=message,
    )
    return build_event(
        transition,
        url=URL,
        labels={"team": "chat"},
        result=samples.last_result(success=False),
        agent_id="0b7d1c1e-7f5e-4a53-a1b2-2c3d4e5f6a7b",
        location="eu-west",
        generator_url="http://127.0.0.1:9470/api/v1/checks",
        repeat_interval=3600.0,
    )


def render(type_: str, event: AlertEvent | None = None) -> Any:
    """The JSON body ``type_`` would POST for ``event`` (default: the hostile one)."""
    notifier = NOTIFIERS[type_]
    assert isinstance(notifier, HttpNotifier)
    cfg = samples.receiver(type_, **CONFIGS[type_])
    request = notifier.render(cfg, event or hostile(), samples.DELIVERY)
    return json.loads(request.body)


def _slack_fields(body: Any) -> list[str]:
    return [f["text"] for f in body["blocks"][1]["fields"]]


def _discord_total(body: Any) -> int:
    e = body["embeds"][0]
    return (
        len(e["title"])
        + len(e.get("description", ""))
        + len(e["footer"]["text"])
        + sum(len(f["name"]) + len(f["value"]) for f in e["fields"])
    )


# (receiver type, what is measured, limit, measure(body) -> length)
LIMITS: list[tuple[str, str, int, Any]] = [
    ("slack", "text", SLACK_LIMITS["text"], lambda b: len(b["text"])),
    ("slack", "header", SLACK_LIMITS["header"], lambda b: len(b["blocks"][0]["text"]["text"])),
    ("slack", "field_text", SLACK_LIMITS["field_text"], lambda b: max(map(len, _slack_fields(b)))),
    ("slack", "fields", SLACK_LIMITS["fields"], lambda b: len(_slack_fields(b))),
    ("slack", "section_text", SLACK_LIMITS["section_text"],
     lambda b: len(b["blocks"][2]["text"]["text"])),
    ("slack", "context_text", SLACK_LIMITS["context_text"],
     lambda b: max(len(e["text"]) for e in b["blocks"][-1]["elements"])),
    ("discord", "title", DISCORD_LIMITS["title"], lambda b: len(b["embeds"][0]["title"])),
    ("discord", "description", DISCORD_LIMITS["description"],
     lambda b: len(b["embeds"][0]["description"])),
    ("discord", "field_name", DISCORD_LIMITS["field_name"],
     lambda b: max(len(f["name"]) for f in b["embeds"][0]["fields"])),
    ("discord", "field_value", DISCORD_LIMITS["field_value"],
     lambda b: max(len(f["value"]) for f in b["embeds"][0]["fields"])),
    ("discord", "fields", DISCORD_LIMITS["fields"], lambda b: len(b["embeds"][0]["fields"])),
    ("discord", "footer_text", DISCORD_LIMITS["footer_text"],
     lambda b: len(b["embeds"][0]["footer"]["text"])),
    ("discord", "total", DISCORD_LIMITS["total"], _discord_total),
    ("pagerduty", "summary", PAGERDUTY_LIMITS["summary"], lambda b: len(b["payload"]["summary"])),
    ("pagerduty", "dedup_key", PAGERDUTY_LIMITS["dedup_key"], lambda b: len(b["dedup_key"])),
    ("pagerduty", "event_bytes", PAGERDUTY_LIMITS["event_bytes"],
     lambda b: len(json.dumps(b, separators=(",", ":"), ensure_ascii=False).encode())),
]  # fmt: skip


@pytest.mark.parametrize(
    ("type_", "limit", "measure"),
    [row[:1] + row[2:] for row in LIMITS],
    ids=[f"{t}-{what}" for t, what, _, _ in LIMITS],
)
def test_every_field_fits_its_documented_limit(type_: str, limit: int, measure: Any) -> None:
    """The hostile event renders within the limit, as firing and as reminder."""
    for kind in ("firing", "reminder"):
        assert measure(render(type_, hostile(kind))) <= limit


@pytest.mark.parametrize(
    ("type_", "path", "limit"),
    [
        ("slack", ("blocks", 0, "text", "text"), SLACK_LIMITS["header"]),
        ("slack", ("blocks", 2, "text", "text"), SLACK_LIMITS["section_text"]),
        ("discord", ("embeds", 0, "title"), DISCORD_LIMITS["title"]),
        ("discord", ("embeds", 0, "description"), DISCORD_LIMITS["description"]),
        ("pagerduty", ("payload", "summary"), PAGERDUTY_LIMITS["summary"]),
    ],
    ids=["slack-header", "slack-section", "discord-title", "discord-description", "pd-summary"],
)
def test_a_cut_field_uses_its_whole_limit_and_says_so(
    type_: str, path: tuple[Any, ...], limit: int
) -> None:
    """Cut text keeps as much as fits and ends with an ellipsis, not silently short."""
    value: Any = render(type_)
    for key in path:
        value = value[key]
    assert len(value) == limit
    assert value.endswith(ELLIPSIS)


def test_slack_url_field_of_2508_characters_is_cut_to_2000() -> None:
    """The issue's case: a 2,508-character URL made a field Slack refused with 400."""
    url_field = next(t for t in _slack_fields(render("slack")) if t.startswith("*URL*"))
    assert len(url_field) == SLACK_LIMITS["field_text"]
    assert url_field.startswith("*URL*\nwss://chat.example.com/ppp")


def test_slack_escapes_control_characters_everywhere() -> None:
    """<!channel> in a close reason is text, not a channel-wide mention, in every mrkdwn part."""
    body = render("slack", hostile(message="<!channel> bye & <https://evil.test|click>"))
    mrkdwn = [body["text"], body["blocks"][2]["text"]["text"], *_slack_fields(body)]
    assert body["text"].endswith("&lt;!channel&gt; bye &amp; &lt;https://evil.test|click&gt;")
    for text in mrkdwn:
        assert "<" not in text
        assert ">" not in text
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), text


def test_slack_cut_never_splits_an_escape_entity() -> None:
    """Cutting escaped text drops a partial &amp; instead of leaving '&am'."""
    for pad in range(6):
        body = render("slack", hostile(message="a" * pad + "&" * 5000))
        text = body["blocks"][2]["text"]["text"]
        assert len(text) <= SLACK_LIMITS["section_text"]
        assert text.endswith(ELLIPSIS)
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), text[-12:]


def test_long_dedup_keys_stay_distinct() -> None:
    """Two long check names that share their first 255 characters keep separate incidents."""
    a = cut_key("wsprobe/eu/" + "c" * 300 + "/a/down", 255)
    b = cut_key("wsprobe/eu/" + "c" * 300 + "/b/down", 255)
    assert len(a) == len(b) == 255
    assert a != b
    assert cut_key("wsprobe/eu/chat/down", 255) == "wsprobe/eu/chat/down"


def test_pagerduty_oversized_details_are_cut_not_the_event() -> None:
    """A 600 KB message still triggers: custom_details strings are cut below the size limit."""
    body = render("pagerduty", hostile(message="m" * 600_000))
    assert body["event_action"] == "trigger"
    assert len(body["payload"]["custom_details"]["message"]) == 1024
    assert body["dedup_key"].startswith("wsprobe/eu-west/ccc")


def test_ordinary_events_are_not_cut() -> None:
    """Nothing in a normal event comes near a limit: no ellipsis anywhere."""
    for type_ in CONFIGS:
        for kind in ("firing", "reminder", "resolved", "degraded"):
            body = render(type_, samples.event(kind))
            assert ELLIPSIS not in json.dumps(body, ensure_ascii=False)
