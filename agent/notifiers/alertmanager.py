"""Prometheus Alertmanager: POST ``{url}/api/v2/alerts``.

Alertmanager resolves an alert whose ``endsAt`` passes, and fills a missing
``endsAt`` with ``now + resolve_timeout`` (5 minutes by default). wsprobe sends
events, not a scrape-like stream, so a firing alert carries ``endsAt`` two
``repeat_interval`` periods ahead: each reminder pushes it further, the resolved
event sets it to the recovery time, and an agent that dies stops refreshing it so the
alert still ends on its own eventually.
"""

from __future__ import annotations

from typing import Any

from agent.config.alerting import ReceiverConfig
from agent.notifiers.base import (
    AlertEvent,
    Delivery,
    Group,
    HttpNotifier,
    HttpRequest,
    iso,
    summary,
)

__all__ = ["ALERTNAMES", "NO_REMINDER_HORIZON", "AlertmanagerNotifier"]

ALERTNAMES = {"down": "WsprobeCheckFailed", "degraded": "WsprobeCheckDegraded"}
#: ``endsAt`` horizon when reminders are off (repeat_interval 0).
NO_REMINDER_HORIZON = 7 * 86400.0


class AlertmanagerNotifier(HttpNotifier):
    """POST one alert per event to the Alertmanager v2 API."""

    type_name = "alertmanager"
    groups = True

    def target_url(self, receiver: ReceiverConfig) -> str:
        """``url`` is the Alertmanager base URL; the API path is appended."""
        return super().target_url(receiver).rstrip("/") + "/api/v2/alerts"

    def render(
        self, receiver: ReceiverConfig, event: AlertEvent, delivery: Delivery
    ) -> HttpRequest:
        """Identical labels on every event of one alert so Alertmanager groups them."""
        return self.json_request(receiver, [_alert(event, delivery)])

    def render_group(
        self, receiver: ReceiverConfig, group: Group, delivery: Delivery
    ) -> HttpRequest:
        """All the group's alerts in one array, as the v2 API takes them."""
        alerts = [_alert(event, delivery) for event in group.events]
        return self.json_request(receiver, alerts)


def _alert(event: AlertEvent, delivery: Delivery) -> dict[str, Any]:
    """One postable alert of the v2 API."""
    p = event.payload
    location = str(p.get("agent", {}).get("location", "default"))
    # The check's own labels first: the identifying ones must not be overridden.
    labels: dict[str, str] = {str(k): str(v) for k, v in (p.get("labels") or {}).items()}
    labels |= {
        "alertname": ALERTNAMES.get(event.alert, ALERTNAMES["down"]),
        "check": event.check,
        "location": location,
    }
    description = str(p.get("message") or "")
    annotations = {"summary": summary(event), "description": description, "url": p["url"]}
    if p.get("reason"):
        annotations["reason"] = str(p["reason"])
    alert: dict[str, Any] = {"labels": labels, "annotations": annotations}
    if p.get("started_at"):
        alert["startsAt"] = p["started_at"]
    if event.is_resolved:
        alert["endsAt"] = p.get("resolved_at") or iso(delivery.now)
    else:
        horizon = 2 * event.repeat_interval if event.repeat_interval > 0 else None
        alert["endsAt"] = iso(delivery.now + (horizon or NO_REMINDER_HORIZON))
    if event.generator_url:
        alert["generatorURL"] = event.generator_url
    return alert
