"""Alert routing and receivers as written in the agent config.

The agent-level ``alerting:`` block holds the defaults; a check's own ``alerting:``
block overrides them field by field (an unset field inherits). Concrete values are
resolved once per check by :func:`agent.alerting.state.resolve_policy`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field

from agent.config.types import (
    Duration,
    Frozen,
    HeaderName,
    HttpSecretUrl,
    Int,
    Secret,
    SecretHeaderValue,
)

__all__ = [
    "DEFAULT_FAILURE_THRESHOLD",
    "DEFAULT_FLAP_MAX_CHANGES",
    "DEFAULT_FLAP_WINDOW",
    "DEFAULT_RECEIVER_TIMEOUT",
    "DEFAULT_REPEAT_INTERVAL",
    "DEFAULT_RETRY_TIMEOUT",
    "DEFAULT_SUCCESS_THRESHOLD",
    "AlertingConfig",
    "FlapConfig",
    "ReceiverConfig",
    "check_external_url",
]

DEFAULT_FAILURE_THRESHOLD = 3
DEFAULT_SUCCESS_THRESHOLD = 2
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0
DEFAULT_RECEIVER_TIMEOUT = 10.0
#: How long an event may keep being retried before it is dropped.
DEFAULT_RETRY_TIMEOUT = 3600.0
#: Firing/resolved changes allowed within the flap window; one more means flapping.
#: Four is two whole incidents: a third firing within half an hour pages no more.
DEFAULT_FLAP_MAX_CHANGES = 4
#: The flap window, and how long a flapping check must stay unchanged to settle.
DEFAULT_FLAP_WINDOW = 1800.0


class ReceiverConfig(Frozen):
    """One named receiver; ``type`` is a key of ``agent.notifiers.NOTIFIERS``.

    Which fields a type requires is checked by that notifier's ``validate()``.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    type: str
    #: Endpoint. A secret because Slack and Discord webhook URLs carry their token.
    url: HttpSecretUrl | None = None
    #: Webhook signing secret; ``secrets`` adds more during a rotation.
    secret: Secret | None = None
    secrets: tuple[Secret, ...] = ()
    #: PagerDuty integration (routing) key.
    routing_key: Secret | None = None
    #: PagerDuty severity of a ``firing`` event (``degraded`` events use ``warning``).
    severity: str = Field("error", pattern=r"^(critical|error|warning|info)$")
    #: Extra HTTP headers (e.g. ``Authorization`` for an Alertmanager behind a proxy).
    headers: dict[HeaderName, SecretHeaderValue] = {}
    #: Total time one delivery attempt may take, connect to last response byte.
    timeout: Duration = Field(DEFAULT_RECEIVER_TIMEOUT, gt=0)
    #: Retry budget: an event still undelivered this long after it was queued is dropped.
    retry_timeout: Duration = Field(DEFAULT_RETRY_TIMEOUT, gt=0)


class FlapConfig(Frozen):
    """Flap control: more than ``max_changes`` firing/resolved within ``window`` is flapping.

    Unset fields inherit (check level from agent level, agent level from the defaults).
    """

    #: 0 turns flap control off.
    max_changes: Int | None = Field(None, ge=0)
    window: Duration | None = Field(None, gt=0)


class AlertingConfig(Frozen):
    """When a check's alert fires and resolves, and where it goes.

    Every field is optional: at agent level an unset field takes the module default,
    at check level it inherits the agent-level value.
    """

    failure_threshold: Int | None = Field(None, ge=1)
    success_threshold: Int | None = Field(None, ge=1)
    #: Reminder period while firing; 0 turns reminders off.
    repeat_interval: Duration | None = Field(None, ge=0)
    #: Consecutive degraded (over-limit) successful runs before a ``degraded`` event;
    #: 0 or unset at agent level turns degraded alerts off.
    degraded_threshold: Int | None = Field(None, ge=0)
    #: Receiver names. A check's list is added to the agent-level (default) list.
    receivers: tuple[str, ...] = ()
    #: Per check: false sends this check's events only to its own ``receivers``.
    default_receivers: bool = True
    #: Flap control (see :mod:`agent.alerting.flap`).
    flap: FlapConfig | None = None


def check_external_url(value: str | None) -> str | None:
    """Validate ``agent.external_url``: where people and tools reach this agent.

    Args:
        value: the setting as written, or None.

    Returns:
        The URL without a trailing slash, or None.

    Raises:
        ValueError: not an absolute http(s) URL with a host, or it carries user info,
            a query or a fragment (it is prefixed to paths in alert links).
    """
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port  # raises for a port outside 0-65535 or not a number
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "must be an absolute http:// or https:// URL, e.g."
            f" https://wsprobe.example.com:9470, not {value!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry user info (it goes into alert links)")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment (paths are appended to it)")
    del port
    return value.rstrip("/")
