"""The ``log`` receiver: writes the event to the agent's log (never fails)."""

from __future__ import annotations

import logging

import httpx

from agent.config.alerting import ReceiverConfig
from agent.notifiers.base import AlertEvent, Delivery
from agent.notifiers.templates import title_of

__all__ = ["LogNotifier"]

logger = logging.getLogger("agent.alerts")


class LogNotifier:
    """Log each event: WARNING while something is wrong, INFO when it resolves."""

    type_name = "log"

    def validate(self, receiver: ReceiverConfig) -> list[str]:
        """Nothing to configure."""
        return []

    async def send(
        self,
        receiver: ReceiverConfig,
        event: AlertEvent,
        delivery: Delivery,
        *,
        client: httpx.AsyncClient,
    ) -> None:
        """Write one log line with the event's summary and identifiers."""
        level = logging.INFO if event.is_resolved else logging.WARNING
        logger.log(
            level,
            "alert %s",
            title_of(receiver, event),
            extra={
                "receiver": receiver.name,
                "check": event.check,
                "alert_event": event.event,
                "delivery_id": delivery.id,
            },
        )
