"""Build the event payload (PRODUCT.md section 8) from a transition.

The payload is the generic webhook body; every other receiver renders from it::

    {"version": 1, "event": "firing", "alert": "down", "check": "chat",
     "url": "wss://chat.example.com/ws?token=REDACTED", "labels": {...},
     "reason": "closed", "message": "...", "started_at": "2026-...Z",
     "resolved_at": null, "consecutive_failures": 3, "degraded": [],
     "timestamp": "2026-...Z", "last_result": {...}, "agent": {"id": ..., "location": ...}}
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

from agent.alerting.state import Transition
from agent.notifiers.base import AlertEvent, iso
from agent.redact import redact_url
from agent.result import ProbeResult

__all__ = [
    "CHECKS_API_PATH",
    "PAYLOAD_VERSION",
    "agent_base_url",
    "build_event",
    "iso",
    "summarize_result",
]

PAYLOAD_VERSION = 1
#: What alert links (Alertmanager ``generatorURL``, PagerDuty ``client_url``) point at.
CHECKS_API_PATH = "/api/v1/checks"
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}  # noqa: S104 (compared against, never bound)


def agent_base_url(*, external_url: str | None, bound_url: str) -> str:
    """The base URL alert links use to point back at this agent.

    Args:
        external_url: ``agent.external_url``, when set: used as is.
        bound_url: the URL the HTTP server actually bound (port 0 resolved), e.g.
            ``http://0.0.0.0:9470``.

    Returns:
        ``external_url``, else ``bound_url`` with a wildcard host (``0.0.0.0``,
        ``::``) replaced by this machine's host name, as Prometheus does for its
        default external URL: a wildcard is not an address anyone can reach.
    """
    if external_url:
        return external_url.rstrip("/")
    parts = urlsplit(bound_url)
    if parts.hostname in _WILDCARD_HOSTS:
        port = f":{parts.port}" if parts.port is not None else ""
        return f"{parts.scheme}://{socket.gethostname()}{port}"
    return bound_url.rstrip("/")


def summarize_result(result: ProbeResult | None) -> dict[str, Any] | None:
    """The ``last_result`` object: outcome, phases and ping figures, no secrets."""
    if result is None:
        return None
    pings = result.pings
    return {
        "success": result.success,
        "reason": result.reason.value if result.reason else None,
        "message": result.message,
        "started_at": iso(result.started_at),
        "status_code": result.status_code,
        "subprotocol": result.subprotocol,
        "close_code": result.close_code,
        "phases": dict(result.phases),
        "ping": (
            {
                "count": len(pings),
                "min": min(pings),
                "avg": sum(pings) / len(pings),
                "max": max(pings),
                "last": pings[-1],
            }
            if pings
            else None
        ),
        "degraded": list(result.degraded),
        "lag_suspect": result.lag_suspect,
    }


def build_event(
    transition: Transition,
    *,
    url: str,
    labels: dict[str, str],
    result: ProbeResult | None,
    agent_id: str,
    location: str,
    generator_url: str = "",
    repeat_interval: float = 0.0,
) -> AlertEvent:
    """Render one transition into the event queued for every receiver.

    Args:
        transition: what happened.
        url: the check's URL; credentials are removed here.
        labels: the check's labels.
        result: the result that caused the transition (None for a removed check).
        agent_id: stable id of this agent's state.
        location: the agent's ``location``.
        generator_url: link to this agent's check API.
        repeat_interval: the check's reminder period.

    Returns:
        The event, ready for the outbox.
    """
    payload: dict[str, Any] = {
        "version": PAYLOAD_VERSION,
        "event": transition.event,
        "alert": transition.alert,
        "check": transition.check,
        "url": redact_url(url),
        "labels": dict(labels),
        "reason": transition.reason,
        "message": transition.message,
        "started_at": iso(transition.started_at),
        "resolved_at": iso(transition.resolved_at),
        "consecutive_failures": transition.consecutive_failures,
        "degraded": list(transition.degraded),
        "timestamp": iso(transition.at),
        "last_result": summarize_result(result),
        "agent": {"id": agent_id, "location": location},
    }
    return AlertEvent(payload=payload, generator_url=generator_url, repeat_interval=repeat_interval)
