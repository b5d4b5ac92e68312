"""Alert routing and receivers as written in the agent config."""

from __future__ import annotations

from pydantic import Field

from agent.config.types import Duration, Frozen, Secret

__all__ = [
    "DEFAULT_FAILURE_THRESHOLD",
    "DEFAULT_REPEAT_INTERVAL",
    "DEFAULT_SUCCESS_THRESHOLD",
    "AlertingConfig",
    "ReceiverConfig",
]

DEFAULT_FAILURE_THRESHOLD = 3
DEFAULT_SUCCESS_THRESHOLD = 2
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0


class ReceiverConfig(Frozen):
    """One named receiver; ``type`` is a key of ``agent.notifiers.NOTIFIERS``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    type: str
    url: str | None = None
    secret: Secret | None = None
    secrets: tuple[Secret, ...] = ()
    routing_key: Secret | None = None
    headers: dict[str, Secret] = {}
    timeout: Duration = 10.0


class AlertingConfig(Frozen):
    """When a check's alert fires and resolves, and where it goes."""

    failure_threshold: int = Field(DEFAULT_FAILURE_THRESHOLD, ge=1)
    success_threshold: int = Field(DEFAULT_SUCCESS_THRESHOLD, ge=1)
    repeat_interval: Duration = DEFAULT_REPEAT_INTERVAL
    degraded_threshold: int | None = Field(None, ge=1)
    receivers: tuple[str, ...] = ()
