"""Alerting: per-check state machine, durable outbox, delivery to receivers.

Data flow (one way)::

    runner ─▶ AlertService.observe(check, result)          sync, never blocks
                ├─▶ in a maintenance window: stop here (suppression)
                ├─▶ state.update(state, result, now) ─▶ [Transition]   (pure)
                ├─▶ flap control, silences ─▶ [Transition]              (suppression)
                ├─▶ events.build_event(transition) ─▶ AlertEvent
                └─▶ store.save_alert(state, outbox rows)  one SQLite transaction
    Dispatcher (one task per receiver) ─▶ NOTIFIERS[type].send(event) ─▶ outcome
                └─▶ on success: state.mark_delivered ─▶ store

Because the state and its events are committed together before ``observe()``
returns, a crash right after loses nothing; delivered rows are marked in the same
file, so a restart resends only what was not yet accepted.
"""

from __future__ import annotations

from agent.alerting.policy import AlertPolicy
from agent.alerting.routing import routing_problems
from agent.alerting.service import AlertService
from agent.alerting.silences import SilenceError
from agent.alerting.state import Transition

__all__ = ["AlertPolicy", "AlertService", "SilenceError", "Transition", "routing_problems"]
