"""Generic webhook: the documented JSON body, signed with HMAC-SHA256.

Headers: ``X-Wsprobe-Event`` (firing|resolved|reminder|degraded), ``X-Wsprobe-Delivery``
(UUID, the same on every retry) and, when a secret is configured,
``X-Wsprobe-Signature: t=UNIX,v1=HEX[,v1=HEX]`` where each HEX is
HMAC-SHA256(secret, "UNIX.BODY"); one ``v1`` per configured secret so receivers can
rotate without a gap. The timestamp is fresh on every attempt so a receiver may reject
anything older than 300 seconds.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from agent.config.alerting import ReceiverConfig
from agent.notifiers.base import AlertEvent, Delivery, Group, HttpNotifier, HttpRequest, dumps

__all__ = ["WebhookNotifier", "sign"]


def sign(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """Build the ``X-Wsprobe-Signature`` value.

    Args:
        body: the exact request body bytes.
        secrets: one or more signing secrets (two during a rotation).
        timestamp: Unix seconds of the attempt.

    Returns:
        ``t=UNIX,v1=HEX`` with one ``v1`` entry per secret, in order.
    """
    signed = f"{timestamp}.".encode() + body
    parts = [f"t={timestamp}"]
    for secret in secrets:
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        parts.append(f"v1={digest}")
    return ",".join(parts)


class WebhookNotifier(HttpNotifier):
    """POST the generic JSON event to any URL."""

    type_name = "webhook"
    groups = True

    def render(
        self, receiver: ReceiverConfig, event: AlertEvent, delivery: Delivery
    ) -> HttpRequest:
        """Body is the payload as-is; headers carry event, delivery id and signature."""
        return self._signed(receiver, dumps(event.payload), event.event, delivery)

    def render_group(
        self, receiver: ReceiverConfig, group: Group, delivery: Delivery
    ) -> HttpRequest:
        """``{"version", "group", "count", "events": [payload + delivery_id, ...]}``, signed."""
        events = [
            {**event.payload, "delivery_id": delivery_id}
            for event, delivery_id in zip(group.events, group.delivery_ids, strict=True)
        ]
        body = dumps({"version": 1, "group": group.labels, "count": len(events), "events": events})
        return self._signed(receiver, body, "group", delivery)

    def _signed(
        self, receiver: ReceiverConfig, body: bytes, kind: str, delivery: Delivery
    ) -> HttpRequest:
        headers = {"X-Wsprobe-Event": kind, "X-Wsprobe-Delivery": delivery.id}
        secrets = [s.get_secret_value() for s in (receiver.secret, *receiver.secrets) if s]
        if secrets:
            headers["X-Wsprobe-Signature"] = sign(body, secrets, int(delivery.now))
        return HttpRequest(url=self.target_url(receiver), body=body, headers=headers)
