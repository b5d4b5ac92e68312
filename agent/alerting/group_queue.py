"""The dispatcher's grouping memory: settings per check, each row's group, last sends.

:mod:`agent.alerting.grouping` decides, purely, which queued heads form a group and
when it is due; this module holds what that decision needs between passes of a
receiver's worker: the grouping in force (agent level, and per check where a route
sets its own), the group of each queued row (read once from its payload), and when
each group was last delivered (for ``group_interval``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from agent.alerting.grouping import GroupKey, GroupPlan, GroupPolicy, group_key, plan
from agent.alerting.outbox import Schedule
from agent.config.alerting import ReceiverConfig
from agent.notifiers import NOTIFIERS
from agent.notifiers.base import AlertEvent, HttpNotifier
from agent.storage import OutboxRow

__all__ = ["GroupQueue", "GroupedPass"]


@dataclass(frozen=True, slots=True)
class GroupedPass:
    """What a grouped receiver may send now, and when to look again."""

    #: Groups due now, oldest first.
    ready: list[tuple[GroupKey, list[OutboxRow]]]
    #: Due events of checks whose grouping is off (all heads while probing).
    singles: list[OutboxRow]
    #: When the next group or single becomes due (None: nothing is waiting).
    next_at: float | None


class GroupQueue:
    """Grouping settings and state for every receiver of one dispatcher.

    Args:
        payload: reads a queued row's JSON payload by id (None when it is gone).
    """

    def __init__(self, payload: Callable[[int], str | None]) -> None:
        self._payload = payload
        self._policy = GroupPolicy()
        self._per_check: dict[str, GroupPolicy] = {}
        self._any = False
        #: Group key of each queued row seen in grouped mode (saves re-reading payloads).
        self._keys: dict[int, GroupKey] = {}
        self._last_sent: dict[tuple[str, GroupKey], float] = {}

    def configure(self, policy: GroupPolicy, per_check: Mapping[str, GroupPolicy]) -> None:
        """Apply the grouping settings (reload); cached groups of queued rows are redone."""
        per_check = dict(per_check)
        if policy != self._policy or per_check != self._per_check:
            self._keys.clear()
        self._policy = policy
        self._per_check = per_check
        self._any = policy.enabled or any(p.enabled for p in per_check.values())

    def policy_for(self, check: str) -> GroupPolicy:
        """The grouping of ``check``'s events."""
        return self._per_check.get(check, self._policy)

    def notifier(self, receiver: ReceiverConfig | None) -> HttpNotifier | None:
        """The receiver's notifier when its events are grouped, else None."""
        if not self._any or receiver is None or not receiver.group:
            return None
        notifier = NOTIFIERS.get(receiver.type)
        return notifier if isinstance(notifier, HttpNotifier) and notifier.groups else None

    def due_at(self, row: OutboxRow) -> float:
        """The earliest time a just-queued grouped row can go out."""
        return row.next_attempt_at + self.policy_for(row.check).group_wait

    def select(self, name: str, schedule: Schedule, now: float) -> GroupedPass:
        """The groups and single events of receiver ``name`` that are due at ``now``.

        While the receiver fails, rows' retry times are not waited for (the caller
        sends one of them as its probe).
        """
        schedule.compact()
        heads: list[tuple[OutboxRow, GroupKey]] = []
        singles: list[OutboxRow] = []
        for row in schedule.heads():
            policy = self.policy_for(row.check)
            if not policy.enabled:
                singles.append(row)
                continue
            key = self._keys.get(row.id)
            if key is None:
                payload = self._payload(row.id)
                data = AlertEvent.from_json(payload).payload if payload else {}
                key = self._keys[row.id] = group_key(data, policy)
            heads.append((row, key))
        last_sent = {k: t for (r, k), t in self._last_sent.items() if r == name}
        todo: GroupPlan = plan(heads, last_sent=last_sent, now=now, ignore_backoff=schedule.failing)
        next_at = todo.next_at
        if schedule.failing:
            singles.sort(key=lambda r: r.next_attempt_at)
        else:
            due_at = [r.next_attempt_at for r in singles if r.next_attempt_at > now]
            if due_at and (next_at is None or min(due_at) < next_at):
                next_at = min(due_at)
            singles = [r for r in singles if r.next_attempt_at <= now]
        return GroupedPass(ready=todo.ready, singles=singles, next_at=next_at)

    def forget(self, rows: Iterable[OutboxRow]) -> None:
        """Drop the cached groups of rows that left the queue."""
        for row in rows:
            self._keys.pop(row.id, None)

    def sent(self, name: str, key: GroupKey, at: float) -> None:
        """Record that receiver ``name`` accepted or answered group ``key`` at ``at``."""
        self._last_sent[(name, key)] = at
