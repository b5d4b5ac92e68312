"""Alert routing and receivers as written in the agent config.

The agent-level ``alerting:`` block holds the defaults; a check's own ``alerting:``
block overrides them field by field (an unset field inherits). Concrete values are
resolved once per check by :func:`agent.alerting.policy.resolve_policy`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from agent.config._issues import ConfigIssue, Located
from agent.config.templates import TemplatesConfig
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
    "DEFAULT_GROUP_INTERVAL",
    "DEFAULT_GROUP_WAIT",
    "DEFAULT_RECEIVER_TIMEOUT",
    "DEFAULT_REPEAT_INTERVAL",
    "DEFAULT_RETRY_TIMEOUT",
    "DEFAULT_SUCCESS_THRESHOLD",
    "AgentAlertingConfig",
    "AlertingConfig",
    "FlapConfig",
    "ReceiverConfig",
    "RouteConfig",
    "check_external_url",
    "route_receiver_rules",
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
#: A receiver's events arriving within this window go out as one delivery, so a mass
#: failure is a handful of requests, not one per check; 0 sends each event at once.
DEFAULT_GROUP_WAIT = 10.0
#: Least time between two deliveries of the same group.
DEFAULT_GROUP_INTERVAL = 60.0


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
    #: False: ``resolved`` events are not sent to this receiver.
    send_resolved: bool = True
    #: Message title/text overrides for this receiver (else ``alerting.templates``).
    templates: TemplatesConfig | None = None
    #: False: one request per event even when ``alerting.group_wait`` groups them.
    group: bool = True
    #: Most requests per minute to this receiver (unset: the type's own default,
    #: 120 for pagerduty as its Events API allows per integration key, else none).
    rate_limit: Int | None = Field(None, ge=1)


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


class RouteConfig(Frozen):
    """One entry of ``alerting.routes``: checks whose labels match get these receivers.

    A check's labels include ``check`` (its name). ``match`` compares values for
    equality, ``match_re`` with a regular expression anchored at both ends (as
    Alertmanager does); every matcher of a route must hold.
    """

    match: dict[str, str] = {}
    match_re: dict[str, str] = {}
    receivers: tuple[str, ...] = ()
    #: True: later routes are evaluated too; false (default): the first match wins.
    continue_: bool = Field(False, alias="continue")
    #: False: matching checks do not get the agent-level default receivers.
    default_receivers: bool = True
    #: Reminder period for matching checks (a check's own setting still wins).
    repeat_interval: Duration | None = Field(None, ge=0)
    #: Grouping of matching checks' events, field by field over the agent-level one.
    group_wait: Duration | None = Field(None, ge=0)
    group_interval: Duration | None = Field(None, gt=0)
    group_by: tuple[str, ...] | None = None

    @field_validator("match_re")
    @classmethod
    def _regexes_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"{label}: invalid regular expression {pattern!r}: {exc}"
                ) from None
        return value

    def matches(self, labels: dict[str, str]) -> bool:
        """True when every matcher holds for ``labels`` (a missing label is ``""``)."""
        for label, value in self.match.items():
            if labels.get(label, "") != value:
                return False
        return all(
            re.fullmatch(pattern, labels.get(label, "")) for label, pattern in self.match_re.items()
        )


class AgentAlertingConfig(AlertingConfig):
    """The agent-level ``alerting:`` block: defaults plus what only exists at that level."""

    #: Ordered label-matching routes, applied on top of the defaults.
    routes: tuple[RouteConfig, ...] = ()
    #: Message title/text overrides for every receiver without its own.
    templates: TemplatesConfig | None = None
    #: Events for one receiver arriving within this window go out as one delivery;
    #: 0 sends each event on its own.
    group_wait: Duration = Field(DEFAULT_GROUP_WAIT, ge=0)
    #: Least time between two deliveries of the same group.
    group_interval: Duration = Field(DEFAULT_GROUP_INTERVAL, gt=0)
    #: Labels whose values split events into groups (``check`` included); [] = one group.
    group_by: tuple[str, ...] = ()


def route_receiver_rules(
    alerting: Mapping[str, Any], receivers: Collection[str], where: Located
) -> list[ConfigIssue]:
    """Every receiver named by a route exists.

    Args:
        alerting: the top-level ``alerting`` block as written.
        receivers: the names the ``receivers`` list defines.
        where: the agent config file, for line numbers.

    Returns:
        One issue per unknown name, at its line.
    """
    issues: list[ConfigIssue] = []
    routes = alerting.get("routes")
    if not isinstance(routes, list):
        return issues
    for i, route in enumerate(routes):
        names = route.get("receivers") if isinstance(route, dict) else None
        if not isinstance(names, list):
            continue
        for j, name in enumerate(names):
            if isinstance(name, str) and name not in receivers:
                path = ("alerting", "routes", i, "receivers", j)
                issues.append(
                    where.issue(path, f"receiver {name!r} is not defined under receivers:")
                )
    return issues
