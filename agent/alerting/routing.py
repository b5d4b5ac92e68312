"""Which receivers get a check's events, and how often it is reminded: routes by label.

The receivers of a check are, in order and without duplicates:

1. the agent-level ``alerting.receivers`` (the defaults), unless the check or a
   matching route sets ``default_receivers: false``;
2. the receivers of each matching route in ``alerting.routes``, in order: the first
   match ends the walk unless that route sets ``continue: true``;
3. the check's own ``alerting.receivers``.

``repeat_interval`` comes from the check's own block if set, else from the first
matching route that sets one, else from the agent-level default. ``group_wait``,
``group_interval`` and ``group_by`` come from the first matching route that sets each,
else from the agent level.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from agent.alerting.grouping import GroupPolicy
from agent.alerting.policy import AlertPolicy, resolve_policy
from agent.config import CheckConfig, Config
from agent.config.alerting import AgentAlertingConfig, AlertingConfig, ReceiverConfig, RouteConfig

__all__ = [
    "agent_grouping",
    "check_grouping",
    "check_policies",
    "check_policy",
    "matching_routes",
    "routed_grouping",
    "routed_policy",
    "routing_problems",
    "with_templates",
]


def matching_routes(
    routes: tuple[RouteConfig, ...], labels: Mapping[str, str]
) -> list[RouteConfig]:
    """The routes that apply to a check with ``labels``, in order.

    Args:
        routes: ``alerting.routes``.
        labels: the check's labels plus ``check`` (its name).

    Returns:
        Matching routes up to and including the first one without ``continue``.
    """
    out: list[RouteConfig] = []
    for route in routes:
        if route.matches(dict(labels)):
            out.append(route)
            if not route.continue_:
                break
    return out


def routed_policy(
    agent: AgentAlertingConfig,
    check: AlertingConfig | None,
    *,
    name: str,
    labels: Mapping[str, str],
) -> AlertPolicy:
    """The check's alert policy with routes applied.

    Args:
        agent: the top-level ``alerting`` block (defaults and routes).
        check: the check's own ``alerting`` block, if any.
        name: the check's name (matched as the label ``check``).
        labels: the check's labels.

    Returns:
        Thresholds from :func:`resolve_policy`; receivers and ``repeat_interval`` as
        described in the module docstring.
    """
    policy = resolve_policy(agent, check)
    routes = matching_routes(agent.routes, {**labels, "check": name})
    if not routes:
        return policy
    defaults = (check is None or check.default_receivers) and all(
        r.default_receivers for r in routes
    )
    receivers = list(agent.receivers) if defaults else []
    for route in routes:
        receivers += route.receivers
    receivers += check.receivers if check else ()
    repeat = policy.repeat_interval
    if check is None or check.repeat_interval is None:
        repeat = next((r.repeat_interval for r in routes if r.repeat_interval is not None), repeat)
    return dataclasses.replace(
        policy, receivers=tuple(dict.fromkeys(receivers)), repeat_interval=repeat
    )


def agent_grouping(agent: AgentAlertingConfig) -> GroupPolicy:
    """The agent-level grouping settings."""
    return GroupPolicy(
        group_wait=agent.group_wait,
        group_interval=agent.group_interval,
        group_by=agent.group_by,
    )


def routed_grouping(
    agent: AgentAlertingConfig, *, name: str, labels: Mapping[str, str]
) -> GroupPolicy | None:
    """The grouping of a check whose matching routes change it, else None.

    Args:
        agent: the top-level ``alerting`` block.
        name: the check's name (matched as the label ``check``).
        labels: the check's labels.

    Returns:
        Agent-level settings overridden field by field by the first matching route
        that sets each, or None when no matching route sets any.
    """
    routes = matching_routes(agent.routes, {**labels, "check": name})
    wait = next((r.group_wait for r in routes if r.group_wait is not None), None)
    interval = next((r.group_interval for r in routes if r.group_interval is not None), None)
    group_by = next((r.group_by for r in routes if r.group_by is not None), None)
    if wait is None and interval is None and group_by is None:
        return None
    base = agent_grouping(agent)
    return GroupPolicy(
        group_wait=base.group_wait if wait is None else wait,
        group_interval=base.group_interval if interval is None else interval,
        group_by=base.group_by if group_by is None else group_by,
    )


def routing_problems(config: Config) -> list[tuple[str, str]]:
    """Receiver names used in ``alerting.receivers`` that no receiver defines.

    Args:
        config: the whole configuration.

    Returns:
        ``(key path, message)`` pairs, e.g. ``("checks[2].alerting.receivers[0]", ...)``.
    """
    known = {r.name for r in config.receivers}
    problems: list[tuple[str, str]] = []
    blocks: list[tuple[str, Any]] = [("alerting", config.alerting)]
    blocks += [(f"alerting.routes[{i}]", r) for i, r in enumerate(config.alerting.routes)]
    blocks += [
        (f"checks[{i}].alerting", c.alerting) for i, c in enumerate(config.checks) if c.alerting
    ]
    for path, block in blocks:
        for j, name in enumerate(block.receivers):
            if name not in known:
                problems.append((f"{path}.receivers[{j}]", f"no receiver named {name!r}"))
    return problems


def with_templates(receiver: ReceiverConfig, config: Config) -> ReceiverConfig:
    """The receiver with ``alerting.templates`` filling what its own templates leave unset."""
    default = config.alerting.templates
    if default is None:
        return receiver
    own = receiver.templates
    merged = own.merged(default) if own is not None else default
    return receiver.model_copy(update={"templates": merged})


def check_policy(config: Config, check: CheckConfig) -> AlertPolicy:
    """``check``'s alert policy: its own block over the routes over the defaults."""
    return routed_policy(config.alerting, check.alerting, name=check.name, labels=check.labels)


def check_policies(config: Config) -> dict[str, AlertPolicy]:
    """Every check's alert policy, by name.

    Most checks have no alerting block of their own and no route: they share one
    policy object rather than each holding an equal copy.
    """
    shared = resolve_policy(config.alerting, None)
    return {
        c.name: shared
        if c.alerting is None and not config.alerting.routes
        else check_policy(config, c)
        for c in config.checks
    }


def check_grouping(config: Config) -> dict[str, GroupPolicy]:
    """The checks whose routes group their events otherwise than the agent level does."""
    return {
        c.name: p
        for c in config.checks
        if (p := routed_grouping(config.alerting, name=c.name, labels=c.labels))
    }
