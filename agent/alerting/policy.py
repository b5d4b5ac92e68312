"""A check's alerting settings, resolved from the agent's defaults and its overrides.

Raises nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.config.alerting import (
    DEFAULT_FAILURE_THRESHOLD,
    DEFAULT_REPEAT_INTERVAL,
    DEFAULT_SUCCESS_THRESHOLD,
    AlertingConfig,
)

__all__ = ["AlertPolicy", "resolve_policy"]


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Concrete alerting settings of one check (defaults and overrides resolved)."""

    failure_threshold: int = DEFAULT_FAILURE_THRESHOLD
    success_threshold: int = DEFAULT_SUCCESS_THRESHOLD
    repeat_interval: float = DEFAULT_REPEAT_INTERVAL
    degraded_threshold: int = 0
    receivers: tuple[str, ...] = ()


def resolve_policy(agent: AlertingConfig, check: AlertingConfig | None) -> AlertPolicy:
    """Merge agent-level defaults with a check's overrides, field by field.

    Args:
        agent: the config's top-level ``alerting`` block.
        check: the check's own block, if any.

    Returns:
        The policy; receivers are the agent's followed by the check's own, deduplicated
        (the check's only, when it sets ``default_receivers: false``).
    """

    def pick(name: str, default: Any) -> Any:
        for source in (check, agent):
            value = getattr(source, name) if source is not None else None
            if value is not None:
                return value
        return default

    receivers = list(check.receivers) if check else []
    if check is None or check.default_receivers:
        receivers = list(agent.receivers) + receivers
    return AlertPolicy(
        failure_threshold=pick("failure_threshold", DEFAULT_FAILURE_THRESHOLD),
        success_threshold=pick("success_threshold", DEFAULT_SUCCESS_THRESHOLD),
        repeat_interval=pick("repeat_interval", DEFAULT_REPEAT_INTERVAL),
        degraded_threshold=pick("degraded_threshold", 0),
        receivers=tuple(dict.fromkeys(receivers)),
    )
