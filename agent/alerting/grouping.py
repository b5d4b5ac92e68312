"""Which queued events of a receiver go out together, and when (pure, clock passed in).

With ``group_wait`` > 0 (agent level, or on the route a check matches), a receiver's
queued events are grouped by their grouping settings and the values of the
``group_by`` labels (``check`` and ``alert`` are labels too; no labels = one group per
receiver). A group is sent when its oldest event has waited ``group_wait`` and at
least ``group_interval`` has passed since the group's last delivery, as Alertmanager
does; events arriving in the meantime join it. Only each check's oldest queued event
is in a group, so a check's events still arrive in order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.storage import OutboxRow

__all__ = [
    "GroupKey",
    "GroupPlan",
    "GroupPolicy",
    "group_delivery_id",
    "group_key",
    "group_labels",
    "plan",
]

#: Most events in one grouped request; a larger group goes out as several requests.
MAX_GROUP_EVENTS = 500
_NAMESPACE = uuid.UUID("6f1c7d2e-4b0a-4f4e-9a53-0c2b9e1d7a10")


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    """The agent's grouping settings."""

    group_wait: float = 0.0
    group_interval: float = 60.0
    group_by: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        """False when ``group_wait`` is 0: every event goes out on its own."""
        return self.group_wait > 0


#: A group: the grouping settings and the values of their ``group_by`` labels.
GroupKey = tuple[GroupPolicy, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """What to send now, and when to look again."""

    ready: list[tuple[GroupKey, list[OutboxRow]]]
    #: When the next group becomes ready (None: nothing is waiting).
    next_at: float | None


def group_key(payload: Mapping[str, Any], policy: GroupPolicy) -> GroupKey:
    """The group of one event: its settings and its ``group_by`` values."""
    labels = {**(payload.get("labels") or {}), "check": payload.get("check", "")}
    labels["alert"] = payload.get("alert", "down")
    return policy, tuple(str(labels.get(name, "")) for name in policy.group_by)


def group_labels(key: GroupKey) -> dict[str, str]:
    """``{label: value}`` of a group, for the grouped message."""
    return dict(zip(key[0].group_by, key[1], strict=True))


def plan(
    heads: Iterable[tuple[OutboxRow, GroupKey]],
    *,
    last_sent: Mapping[GroupKey, float],
    now: float,
    ignore_backoff: bool = False,
) -> GroupPlan:
    """Split the queued heads into groups and pick those due at ``now``.

    Args:
        heads: each check's oldest queued row with its group key (settings included).
        last_sent: when each group was last delivered.
        now: current time.
        ignore_backoff: True while probing a failing receiver (rows' retry times
            are not waited for).

    Returns:
        The groups to send now (oldest first, cut to :data:`MAX_GROUP_EVENTS`) and
        the time the next one is due.
    """
    groups: dict[GroupKey, list[OutboxRow]] = {}
    for row, key in heads:
        groups.setdefault(key, []).append(row)
    ready: list[tuple[GroupKey, list[OutboxRow]]] = []
    next_at: float | None = None
    for key, rows in groups.items():
        rows.sort(key=lambda r: (r.created_at, r.id))
        policy = key[0]
        send_at = rows[0].created_at + policy.group_wait
        if key in last_sent:
            send_at = max(send_at, last_sent[key] + policy.group_interval)
        if not ignore_backoff:
            send_at = max(send_at, max(r.next_attempt_at for r in rows))
        if send_at <= now:
            for start in range(0, len(rows), MAX_GROUP_EVENTS):
                ready.append((key, rows[start : start + MAX_GROUP_EVENTS]))
        elif next_at is None or send_at < next_at:
            next_at = send_at
    ready.sort(key=lambda item: item[1][0].created_at)
    return GroupPlan(ready=ready, next_at=next_at)


def group_delivery_id(delivery_ids: Iterable[str]) -> str:
    """A UUID naming one grouped delivery: the same for the same events (retries)."""
    return str(uuid.uuid5(_NAMESPACE, ",".join(sorted(delivery_ids))))
