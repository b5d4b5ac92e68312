"""Slack incoming webhook: a readable message built from blocks.

The plain ``text`` is the notification fallback; the blocks show the check, reason,
message, URL (credentials removed) and timing.
"""

from __future__ import annotations

from typing import Any

from agent.config.alerting import ReceiverConfig
from agent.notifiers.base import AlertEvent, Delivery, Group, HttpNotifier, HttpRequest, facts
from agent.notifiers.limits import ELLIPSIS, cut, fit_lines
from agent.notifiers.templates import message_of, title_of

__all__ = ["SLACK_LIMITS", "SlackNotifier", "escape"]

#: Slack's documented limits (characters), see docs/alerting.md.
SLACK_LIMITS = {
    "text": 40_000,  # top-level text: Slack truncates longer messages
    "header": 150,  # header block, plain_text
    "section_text": 3000,  # section block text
    "fields": 10,  # items in a section's fields
    "field_text": 2000,  # each field's text
    "context_elements": 10,
    "context_text": 3000,  # a text object in a context block
}


def escape(text: str) -> str:
    """Escape Slack's three control characters so text shows literally.

    Unescaped, ``<!channel>`` in a server's close reason would notify a whole channel
    and ``<https://x|y>`` would render a disguised link.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut_escaped(text: str, limit: int) -> str:
    """Escape ``text`` and cut it to ``limit`` without splitting an ``&amp;``-style entity."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    head = escaped[: limit - len(ELLIPSIS)]
    amp = head.rfind("&", max(0, len(head) - 4))
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head + ELLIPSIS


def _field(label: str, value: object) -> dict[str, str]:
    prefix = f"*{label}*\n"
    body = _cut_escaped(str(value), SLACK_LIMITS["field_text"] - len(prefix))
    return {"type": "mrkdwn", "text": prefix + body}


def _message(title: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """The webhook body: ``title`` as the notification's fallback text, then ``blocks``."""
    return {"text": _cut_escaped(title, SLACK_LIMITS["text"]), "blocks": blocks}


class SlackNotifier(HttpNotifier):
    """POST a Block Kit message to a Slack incoming-webhook URL."""

    type_name = "slack"
    groups = True

    def render(
        self, receiver: ReceiverConfig, event: AlertEvent, delivery: Delivery
    ) -> HttpRequest:
        """Header, a field grid, the failure message, and an agent context line."""
        p = event.payload
        title = title_of(receiver, event)
        shown = facts(event)
        shown.insert(1, ("Event", event.event))
        fields = [_field(label, value) for label, value in shown]
        header = {"type": "plain_text", "text": cut(title, SLACK_LIMITS["header"])}
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": header},
            {"type": "section", "fields": fields[: SLACK_LIMITS["fields"]]},
        ]
        message = message_of(receiver, event)
        if message:
            text = _cut_escaped(message, SLACK_LIMITS["section_text"])
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
        agent = p.get("agent", {})
        context = f"wsprobe · location {agent.get('location', '-')} · agent {agent.get('id', '-')}"
        context = _cut_escaped(context, SLACK_LIMITS["context_text"])
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
        return self.json_request(receiver, _message(title, blocks))

    def render_group(
        self, receiver: ReceiverConfig, group: Group, delivery: Delivery
    ) -> HttpRequest:
        """One message: counts in the header, one line per event, then ``and N more``."""
        title = group.heading()
        lines = [
            "• " + _cut_escaped(title_of(receiver, e), SLACK_LIMITS["section_text"] // 4)
            for e in group.events
        ]
        text = fit_lines(lines, SLACK_LIMITS["section_text"])
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": cut(title, SLACK_LIMITS["header"])},
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        ]
        return self.json_request(receiver, _message(title, blocks))
