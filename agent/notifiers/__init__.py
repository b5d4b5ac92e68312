"""Receivers of alert events, one module per type behind one registry.

``NOTIFIERS`` keys are the only list of receiver types: the config loader validates
``receivers[].type`` against them and calls each notifier's ``validate()`` for the
type's own required fields. Notifiers never import probes or alerting; no httpx
exception escapes this package (see :mod:`agent.notifiers.errors`).
"""

from __future__ import annotations

from agent.config.alerting import ReceiverConfig
from agent.notifiers.alertmanager import AlertmanagerNotifier
from agent.notifiers.base import AlertEvent, Delivery, Notifier
from agent.notifiers.discord import DiscordNotifier
from agent.notifiers.errors import NotifyError
from agent.notifiers.log import LogNotifier
from agent.notifiers.pagerduty import PagerDutyNotifier
from agent.notifiers.slack import SlackNotifier
from agent.notifiers.webhook import WebhookNotifier

__all__ = ["NOTIFIERS", "AlertEvent", "Delivery", "Notifier", "NotifyError", "validate_receiver"]

NOTIFIERS: dict[str, Notifier] = {
    "webhook": WebhookNotifier(),
    "slack": SlackNotifier(),
    "discord": DiscordNotifier(),
    "pagerduty": PagerDutyNotifier(),
    "alertmanager": AlertmanagerNotifier(),
    "log": LogNotifier(),
}


def validate_receiver(receiver: ReceiverConfig) -> list[str]:
    """All problems with one receiver: unknown type, or the type's own checks.

    Args:
        receiver: one entry of the config's ``receivers`` list.

    Returns:
        Messages (``field: problem``), empty when the receiver is usable.
    """
    notifier = NOTIFIERS.get(receiver.type)
    if notifier is None:
        known = ", ".join(sorted(NOTIFIERS))
        return [f"type: unknown receiver type {receiver.type!r} (known: {known})"]
    return notifier.validate(receiver)
