"""Golden payloads of every HTTP receiver, and the webhook signature known answer.

Regenerate after an intended format change with ``WSPROBE_UPDATE_GOLDEN=1``; review
the diff of tests/golden/ like code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any

import pytest

from agent.notifiers import NOTIFIERS
from agent.notifiers.base import HttpNotifier
from agent.notifiers.webhook import sign

GOLDEN = Path(__file__).parent.parent / "golden"
UPDATE = os.environ.get("WSPROBE_UPDATE_GOLDEN") == "1"

CONFIGS: dict[str, dict[str, Any]] = {
    "webhook": {"url": "https://hooks.example.com/wsprobe", "secret": "whsec_test"},
    "slack": {"url": "https://hooks.slack.com/services/T000/B000/XXXX"},
    "discord": {"url": "https://discord.com/api/webhooks/1/abc"},
    "pagerduty": {"routing_key": "R0UT1NGKEY"},
    "alertmanager": {"url": "http://alertmanager.example.com:9093/"},
}
CASES = [(t, e) for t in CONFIGS for e in ("firing", "reminder", "resolved", "degraded")]


@pytest.mark.parametrize(("type_", "kind"), CASES, ids=[f"{t}-{e}" for t, e in CASES])
def test_golden_payload(samples: Any, type_: str, kind: str) -> None:
    """The rendered request (URL, headers, JSON body) matches its golden file."""
    notifier = NOTIFIERS[type_]
    assert isinstance(notifier, HttpNotifier)
    cfg = samples.receiver(type_, **CONFIGS[type_])
    request = notifier.render(cfg, samples.event(kind), samples.DELIVERY)
    actual = {"url": request.url, "headers": request.headers, "body": json.loads(request.body)}
    path = GOLDEN / f"{type_}-{kind}.json"
    if UPDATE:
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
    assert actual == json.loads(path.read_text())
    # The payload must never carry the URL's credentials.
    for secret in ("hunter2", "s3cr3t"):
        assert secret not in request.body.decode()


def test_signature_known_answer() -> None:
    """Fixed secret, timestamp and body give the HMAC-SHA256 hex computed independently."""
    # The pinned hex was checked with `openssl dgst -sha256 -hmac whsec_test`.
    body = b'{"version":1,"event":"firing","check":"chat"}'
    expected = hmac.new(
        b"whsec_test", b'1795000130.{"version":1,"event":"firing","check":"chat"}', hashlib.sha256
    ).hexdigest()
    assert sign(body, ["whsec_test"], 1795000130) == f"t=1795000130,v1={expected}"
    assert expected == "a751265df0ad315ceeae2d2b224be003d988eebb20d56f40b3a23e681349e2f9"


def test_signature_during_rotation_has_one_entry_per_secret() -> None:
    """Two configured secrets give t=..,v1=(old),v1=(new), in configured order."""
    header = sign(b"{}", ["old", "new"], 1700000000)
    t, v1_old, v1_new = header.split(",")
    assert t == "t=1700000000"
    assert v1_old == "v1=" + hmac.new(b"old", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert v1_new == "v1=" + hmac.new(b"new", b"1700000000.{}", hashlib.sha256).hexdigest()


def test_webhook_body_is_signed_as_sent(samples: Any) -> None:
    """The signature verifies against the exact body bytes with the attempt's timestamp."""
    cfg = samples.receiver("webhook", "https://h.example.com/", secret="a", secrets=["b"])
    request = NOTIFIERS["webhook"].render(cfg, samples.event("firing"), samples.DELIVERY)  # type: ignore[attr-defined]
    header = request.headers["X-Wsprobe-Signature"]
    assert header.startswith(f"t={int(samples.DELIVERY.now)},v1=")
    assert header.count("v1=") == 2
    assert request.headers["X-Wsprobe-Delivery"] == samples.DELIVERY.id
    assert request.headers["X-Wsprobe-Event"] == "firing"


def test_unsigned_webhook_without_secret(samples: Any) -> None:
    """Without a secret no signature header is sent."""
    cfg = samples.receiver("webhook", "https://h.example.com/")
    request = NOTIFIERS["webhook"].render(cfg, samples.event("firing"), samples.DELIVERY)  # type: ignore[attr-defined]
    assert "X-Wsprobe-Signature" not in request.headers


def test_pagerduty_dedup_key_is_stable(samples: Any) -> None:
    """Trigger, reminder and resolve of one alert share a dedup key; degraded has its own."""
    cfg = samples.receiver("pagerduty", routing_key="k")
    keys = {
        kind: json.loads(
            NOTIFIERS["pagerduty"].render(cfg, samples.event(kind), samples.DELIVERY).body  # type: ignore[attr-defined]
        )["dedup_key"]
        for kind in ("firing", "reminder", "resolved", "degraded")
    }
    assert keys["firing"] == keys["reminder"] == keys["resolved"] == "wsprobe/eu-west/chat/down"
    assert keys["degraded"] == "wsprobe/eu-west/chat/degraded"


def test_alertmanager_labels_identical_across_events(samples: Any) -> None:
    """Firing and resolved carry the same label set so Alertmanager matches them."""
    cfg = samples.receiver("alertmanager", "http://am:9093")
    bodies = {
        kind: json.loads(
            NOTIFIERS["alertmanager"].render(cfg, samples.event(kind), samples.DELIVERY).body  # type: ignore[attr-defined]
        )[0]
        for kind in ("firing", "reminder", "resolved")
    }
    assert (
        bodies["firing"]["labels"] == bodies["resolved"]["labels"] == bodies["reminder"]["labels"]
    )
    assert bodies["firing"]["labels"]["alertname"] == "WsprobeCheckFailed"
    assert bodies["resolved"]["endsAt"] == samples.event("resolved").payload["resolved_at"]


def test_discord_embed_stays_under_total_limit(samples: Any) -> None:
    """Huge messages and URLs are cut so the embed stays under Discord's 6000 characters."""
    event = samples.event("firing")
    event.payload["message"] = "x" * 10_000
    event.payload["url"] = "wss://h/" + "p" * 5_000
    cfg = samples.receiver("discord", "https://discord.com/api/webhooks/1/abc")
    request = NOTIFIERS["discord"].render(cfg, event, samples.DELIVERY)  # type: ignore[attr-defined]
    (embed,) = json.loads(request.body)["embeds"]
    total = len(embed["title"]) + len(embed.get("description", "")) + len(embed["footer"]["text"])
    total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= 6000
