"""Discord webhook: one embed per event, coloured by event type."""

from __future__ import annotations

from typing import Any

from agent.config.alerting import ReceiverConfig
from agent.notifiers.base import AlertEvent, Delivery, Group, HttpNotifier, HttpRequest, facts
from agent.notifiers.limits import ELLIPSIS, cut, fit_lines
from agent.notifiers.templates import message_of, title_of

__all__ = ["DISCORD_LIMITS", "DiscordNotifier"]

_COLORS = {"firing": 0xE01E5A, "reminder": 0xE8912D, "degraded": 0xECB22E, "resolved": 0x2EB67D}
#: Colour of a grouped message: its most urgent event's (an unknown kind counts as firing).
_SEVERITY = ["resolved", "degraded", "reminder", "flapping", "firing"]


def _severity(event: str) -> int:
    return _SEVERITY.index(event) if event in _SEVERITY else len(_SEVERITY)


#: Discord's documented embed limits (characters), see docs/alerting.md. Over any
#: of them the webhook answers 400, which is not retried.
DISCORD_LIMITS = {
    "title": 256,
    "description": 4096,
    "fields": 25,
    "field_name": 256,
    "field_value": 1024,
    "footer_text": 2048,
    "total": 6000,  # title + description + field names and values + footer, all embeds
}


def _field(name: str, value: object) -> dict[str, Any]:
    text = cut(str(value), DISCORD_LIMITS["field_value"]) or "-"
    return {"name": cut(name, DISCORD_LIMITS["field_name"]), "value": text, "inline": True}


def _fit_total(embed: dict[str, Any]) -> None:
    """Shorten the description, then field values, until the embed fits Discord's total."""
    fields: list[dict[str, Any]] = embed["fields"]
    fixed = len(embed["title"]) + len(embed["footer"]["text"]) + sum(len(f["name"]) for f in fields)
    over = fixed + len(embed.get("description", "")) + sum(len(f["value"]) for f in fields)
    over -= DISCORD_LIMITS["total"]
    if over <= 0:
        return
    if "description" in embed:
        keep = max(len(ELLIPSIS), len(embed["description"]) - over)
        over -= len(embed["description"]) - keep
        embed["description"] = cut(embed["description"], keep)
    for field in sorted(fields, key=lambda f: -len(f["value"])):
        if over <= 0:
            break
        keep = max(len(ELLIPSIS), len(field["value"]) - over)
        over -= len(field["value"]) - keep
        field["value"] = cut(field["value"], keep)


def _message(embed: dict[str, Any]) -> dict[str, Any]:
    """The webhook body carrying ``embed``, shortened to fit Discord's total."""
    _fit_total(embed)
    # A check name or message must never ping @everyone.
    return {"username": "wsprobe", "embeds": [embed], "allowed_mentions": {"parse": []}}


class DiscordNotifier(HttpNotifier):
    """POST an embed to a Discord webhook URL."""

    type_name = "discord"
    groups = True

    def render(
        self, receiver: ReceiverConfig, event: AlertEvent, delivery: Delivery
    ) -> HttpRequest:
        """Title, description (the failure message) and fields; no mentions parsed."""
        p = event.payload
        fields = [_field(label, value) for label, value in facts(event)]
        agent = p.get("agent", {})
        footer = cut(f"wsprobe · {agent.get('location', '-')}", DISCORD_LIMITS["footer_text"])
        embed: dict[str, Any] = {
            "title": cut(title_of(receiver, event), DISCORD_LIMITS["title"]),
            "color": _COLORS.get(event.event, 0x808080),
            "fields": fields[: DISCORD_LIMITS["fields"]],
            "footer": {"text": footer},
        }
        message = message_of(receiver, event)
        if message:
            embed["description"] = cut(message, DISCORD_LIMITS["description"])
        if p.get("timestamp"):
            embed["timestamp"] = p["timestamp"]
        return self.json_request(receiver, _message(embed))

    def render_group(
        self, receiver: ReceiverConfig, group: Group, delivery: Delivery
    ) -> HttpRequest:
        """One embed: counts as the title, one line per event, then ``and N more``."""
        title = group.heading()
        lines = [cut(title_of(receiver, e), DISCORD_LIMITS["title"]) for e in group.events]
        worst = max((e.event for e in group.events), key=_severity, default="resolved")
        footer = f"wsprobe · {group.events[0].payload.get('agent', {}).get('location', '-')}"
        embed: dict[str, Any] = {
            "title": cut(title, DISCORD_LIMITS["title"]),
            "color": _COLORS.get(worst, 0x808080),
            # Title and footer are short: the description may use the rest of the total.
            "description": fit_lines(lines, DISCORD_LIMITS["description"]),
            "fields": [],
            "footer": {"text": cut(footer, DISCORD_LIMITS["footer_text"])},
        }
        return self.json_request(receiver, _message(embed))
