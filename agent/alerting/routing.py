"""Which receivers get a check's events, and how often it is reminded: routes by label.

The receivers of a check are, in order and without duplicates:

1. the agent-level ``alerting.receivers`` (the defaults), unless the check or a
   matching route sets ``default_receivers: false``;
2. the receivers of each matching route in ``alerting.routes``, in order: the first
   match ends the walk unless that route sets ``continue: true``;
3. the check's own ``alerting.receivers``.

``repeat_interval`` comes from the check's own block if set, else from the first
matching route that sets one, else from the agent-level default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from agent.alerting.state import AlertPolicy, resolve_policy
from agent.config.alerting import AgentAlertingConfig, AlertingConfig, RouteConfig

__all__ = ["matching_routes", "routed_policy"]


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
