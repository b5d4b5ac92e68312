"""Slack incoming webhook: a readable message built from blocks.

The plain ``text`` is the notification fallback; the blocks show the check, reason,
message, URL (credentials removed) and timing.
"""

from __future__ import annotations

from typing import Any

from agent.config.alerting import ReceiverConfig
from agent.notifiers.base import (
    AlertEvent,
    Delivery,
    HttpNotifier,
    HttpRequest,
    dumps,
    summary,
)

__all__ = ["SlackNotifier"]

_HEADER_MAX = 150  # Slack's limit for a header block's text
_TEXT_MAX = 3000  # Slack's limit for a section's text


def _escape(text: str) -> str:
    # Slack mrkdwn treats these three as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _field(label: str, value: object) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{label}*\n{_escape(str(value))}"}


class SlackNotifier(HttpNotifier):
    """POST a Block Kit message to a Slack incoming-webhook URL."""

    type_name = "slack"

    def render(
        self, receiver: ReceiverConfig, event: AlertEvent, delivery: Delivery
    ) -> HttpRequest:
        """Header, a field grid, the failure message, and an agent context line."""
        p = event.payload
        title = summary(event)
        fields = [
            _field("Check", p["check"]),
            _field("Event", event.event),
            _field("URL", p["url"]),
            _field("Last failure" if event.is_resolved else "Reason", p.get("reason") or "-"),
            _field("Started", p.get("started_at") or "-"),
        ]
        if event.is_resolved:
            fields.append(_field("Resolved", p.get("resolved_at") or "-"))
        else:
            fields.append(_field("Consecutive failures", p.get("consecutive_failures", 0)))
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:_HEADER_MAX]}},
            {"type": "section", "fields": fields},
        ]
        if p.get("message") and not event.is_resolved:
            text = _escape(str(p["message"]))[:_TEXT_MAX]
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
        agent = p.get("agent", {})
        context = f"wsprobe · location {agent.get('location', '-')} · agent {agent.get('id', '-')}"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
        body = dumps({"text": title, "blocks": blocks})
        return HttpRequest(url=self.target_url(receiver), body=body)
