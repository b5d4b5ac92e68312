"""PagerDuty Events API v2: trigger and resolve with a stable dedup key.

The dedup key is ``wsprobe/<location>/<check>/<alert>``: reminders re-trigger the
same incident instead of opening new ones, and the resolve closes it. Agents in
different locations raise separate incidents for the same check.
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
)
from agent.notifiers.limits import cut, cut_key, shrink_strings
from agent.notifiers.templates import title_of

__all__ = ["DEFAULT_PAGERDUTY_URL", "PAGERDUTY_LIMITS", "PagerDutyNotifier", "dedup_key"]

DEFAULT_PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
#: PagerDuty Events API v2 documented limits, see docs/alerting.md.
PAGERDUTY_LIMITS = {
    "summary": 1024,  # characters
    "dedup_key": 255,  # characters
    "event_bytes": 512 * 1024,  # the whole request body
}
#: Strings in custom_details are cut to this when the event would be too large.
_DETAIL_MAX = 1024


def dedup_key(event: AlertEvent) -> str:
    """Stable per check, alert and agent location (at most 255 characters, still unique)."""
    location = event.payload.get("agent", {}).get("location", "default")
    key = f"wsprobe/{location}/{event.check}/{event.alert}"
    return cut_key(key, PAGERDUTY_LIMITS["dedup_key"])


class PagerDutyNotifier(HttpNotifier):
    """POST Events API v2 ``trigger``/``resolve`` events."""

    type_name = "pagerduty"
    #: Events API v2: 120 events a minute per integration key (PagerDuty support).
    default_rate_limit = 120
    default_url = DEFAULT_PAGERDUTY_URL

    def validate_extra(self, receiver: ReceiverConfig) -> list[str]:
        """A routing key (integration key) is required."""
        if receiver.routing_key is None or not receiver.routing_key.get_secret_value():
            return ["routing_key: required for pagerduty receivers"]
        return []

    def render(
        self, receiver: ReceiverConfig, event: AlertEvent, delivery: Delivery
    ) -> HttpRequest:
        """``resolve`` carries only the key; ``trigger`` carries summary and details."""
        assert receiver.routing_key is not None  # validate() guarantees it
        body: dict[str, Any] = {
            "routing_key": receiver.routing_key.get_secret_value(),
            "event_action": "resolve" if event.is_resolved else "trigger",
            "dedup_key": dedup_key(event),
        }
        if not event.is_resolved:
            p = event.payload
            severity = "warning" if event.alert == "degraded" else receiver.severity
            body["payload"] = {
                "summary": cut(title_of(receiver, event), PAGERDUTY_LIMITS["summary"]),
                "source": f"wsprobe@{p.get('agent', {}).get('location', 'default')}",
                "severity": severity,
                "component": p["check"],
                "class": p.get("reason") or event.alert,
                "custom_details": p,
            }
            if p.get("timestamp"):
                body["payload"]["timestamp"] = p["timestamp"]
            body["client"] = "wsprobe"
            if event.generator_url:
                body["client_url"] = event.generator_url
        encoded = dumps(body)
        if len(encoded) > PAGERDUTY_LIMITS["event_bytes"] and "payload" in body:
            # Over the size limit PagerDuty refuses the event: keep the incident, lose detail.
            details = shrink_strings(body["payload"]["custom_details"], _DETAIL_MAX)
            body["payload"]["custom_details"] = details
            encoded = dumps(body)
            if len(encoded) > PAGERDUTY_LIMITS["event_bytes"]:
                body["payload"]["custom_details"] = {"note": "details too large for PagerDuty"}
                encoded = dumps(body)
        return HttpRequest(url=self.target_url(receiver), body=encoded)
