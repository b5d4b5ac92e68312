"""Discord webhook: one embed per event, coloured by event type."""

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

__all__ = ["DiscordNotifier"]

_COLORS = {"firing": 0xE01E5A, "reminder": 0xE8912D, "degraded": 0xECB22E, "resolved": 0x2EB67D}
# Discord rejects (HTTP 400, not retried) an embed over 6000 characters in total, so
# parts are capped well below their own limits (256/4096/1024) to stay under it.
_TITLE_MAX = 256
_DESCRIPTION_MAX = 2000
_FIELD_MAX = 300


def _field(name: str, value: object) -> dict[str, Any]:
    return {"name": name, "value": str(value)[:_FIELD_MAX] or "-", "inline": True}


class DiscordNotifier(HttpNotifier):
    """POST an embed to a Discord webhook URL."""

    type_name = "discord"

    def render(
        self, receiver: ReceiverConfig, event: AlertEvent, delivery: Delivery
    ) -> HttpRequest:
        """Title, description (the failure message) and fields; no mentions parsed."""
        p = event.payload
        fields = [
            _field("Check", p["check"]),
            _field("URL", p["url"]),
            _field("Last failure" if event.is_resolved else "Reason", p.get("reason") or "-"),
            _field("Started", p.get("started_at") or "-"),
        ]
        if event.is_resolved:
            fields.append(_field("Resolved", p.get("resolved_at") or "-"))
        else:
            fields.append(_field("Consecutive failures", p.get("consecutive_failures", 0)))
        agent = p.get("agent", {})
        embed: dict[str, Any] = {
            "title": summary(event)[:_TITLE_MAX],
            "color": _COLORS.get(event.event, 0x808080),
            "fields": fields,
            "footer": {"text": f"wsprobe · {agent.get('location', '-')}"},
        }
        if p.get("message") and not event.is_resolved:
            embed["description"] = str(p["message"])[:_DESCRIPTION_MAX]
        if p.get("timestamp"):
            embed["timestamp"] = p["timestamp"]
        # A check name or message must never ping @everyone.
        body = dumps({"username": "wsprobe", "embeds": [embed], "allowed_mentions": {"parse": []}})
        return HttpRequest(url=self.target_url(receiver), body=body)
