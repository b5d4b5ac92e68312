"""The alerting facade: :class:`AlertService` wires state, suppression and delivery.

It keeps each check's :class:`~agent.alerting.state.AlertState`, asks
:mod:`agent.alerting.suppression` what stays quiet, has
:mod:`agent.alerting.emission` turn transitions into outbox rows, commits state and
rows in one SQLite transaction, and hands the rows to the
:class:`~agent.alerting.dispatcher.Dispatcher`.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from agent.alerting.dispatcher import DEFAULT_MAX_IN_FLIGHT, Dispatcher
from agent.alerting.emission import EventRows
from agent.alerting.flap import FlapPolicy, check_flaps, resolve_flap
from agent.alerting.maintenance import MaintenanceSchedule
from agent.alerting.outbox import (
    DEFAULT_RETRY_INITIAL_INTERVAL,
    DEFAULT_RETRY_MAX_INTERVAL,
    RetryPolicy,
)
from agent.alerting.policy import AlertPolicy, resolve_policy
from agent.alerting.routing import (
    agent_grouping,
    check_grouping,
    check_policies,
    check_policy,
    routing_problems,
    with_templates,
)
from agent.alerting.silence_book import SilenceBook
from agent.alerting.silences import Silence
from agent.alerting.state import (
    AlertState,
    Transition,
    api_view,
    mark_delivered,
    removed,
    steady_ok,
    update,
)
from agent.alerting.suppression import Suppression
from agent.config import CheckConfig, Config
from agent.redact import redact_url
from agent.result import ProbeResult
from agent.storage import NewOutboxRow, OutboxRow, Store

__all__ = ["AlertService"]

logger = logging.getLogger(__name__)


class AlertService:
    """The alerting facade the runner, daemon, metrics and API use.

    Args:
        config: the whole configuration (receivers, defaults, checks).
        store: the agent's SQLite store (alert state and outbox live there).
        on_notification: called ``(receiver, outcome)`` after every delivery attempt,
            outcome in ``success``, ``retry``, ``failed``, ``dropped``.
        clock: wall-clock source (Unix seconds) for state and timestamps.
        retry_initial_interval: first retry delay (doubles per attempt, jittered).
        retry_max_interval: cap of the retry delay.
        rng: jitter source; seed it for reproducible schedules.
        max_in_flight: concurrent attempts per receiver.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        on_notification: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.time,
        retry_initial_interval: float = DEFAULT_RETRY_INITIAL_INTERVAL,
        retry_max_interval: float = DEFAULT_RETRY_MAX_INTERVAL,
        rng: random.Random | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self._store = store
        self._clock = clock
        self._on_notification = on_notification
        persisted = store.load_alert_states()
        self._states = {name: AlertState.from_dict(data) for name, data in persisted.items()}
        # Kept as states change so a scrape's flags (flagged()) cost nothing per check.
        self._firing = {name for name, state in self._states.items() if state.firing}
        # URL and labels of the checks in the state file, so a check removed before its
        # first result here can still be named by its "resolved"; an observed check's
        # are its config's (no entry per check).
        self._targets: dict[str, tuple[str, dict[str, str]]] = {
            name: (str(data.get("url", "")), dict(data.get("labels", {})))
            for name, data in persisted.items()
        }
        self._silences = SilenceBook(store.path, clock=clock)
        self._quiet = Suppression(location=config.agent.location, silences=self._silences.silences)
        for name, data in persisted.items():
            self._quiet.restore(name, data)
        self._config = config
        self._rows = EventRows(config, agent_id=store.agent_id())
        self._policies: dict[str, AlertPolicy] = {}
        self._flap: dict[str, FlapPolicy] = {}
        self._checks: dict[str, CheckConfig] = {}
        self._dispatcher = Dispatcher(
            store,
            {},
            clock=clock,
            retry=RetryPolicy(
                initial_interval=retry_initial_interval, max_interval=retry_max_interval
            ),
            rng=rng or random.Random(),
            on_outcome=self._outcome,
            on_delivered=self._delivered,
            max_in_flight=max_in_flight,
        )
        self.reconfigure(config)

    async def start(self) -> None:
        """Start delivering (events queued before a restart are sent now)."""
        # Backoff scheduled by a previous run must not delay the backlog: the outage
        # that caused it may be long over.
        backlog = self._store.outbox_retry_now(at=self._clock())
        if backlog:
            logger.info("alerting: %d queued event(s) from before the restart", backlog)
        self._dispatcher.start()

    async def aclose(self) -> None:
        """Stop delivering; undelivered events stay queued for the next start."""
        await self._dispatcher.aclose()
        self._silences.close()

    def reconfigure(self, config: Config) -> None:
        """Apply a reloaded configuration.

        Thresholds and routing change for the next result. A check that disappeared
        gets its open alerts resolved ("check removed") and its state deleted. Queued
        events for a receiver that no longer exists are dropped (logged at ERROR).
        """
        self._config = config
        self._rows.config = config
        before = self._checks
        self._checks = {c.name: c for c in config.checks}
        # A new object per reload: flagged() works out windows and silences once per one.
        self._labels = {c.name: c.labels for c in config.checks}
        self._policies = check_policies(config)
        self._flap = check_flaps(config)
        self._quiet.location = config.agent.location
        self._quiet.maintenance = MaintenanceSchedule(config.maintenance)
        receivers = {r.name: with_templates(r, config) for r in config.receivers}
        for path, message in routing_problems(config):
            logger.warning("alerting: %s: %s; ignored", path, message)
        now = self._clock()
        for name in [n for n in self._states if n not in self._checks]:
            state = self._states.pop(name)
            self._firing.discard(name)
            if self._quiet.flapping(name).flapping and not state.firing:
                # Receivers were told it flaps (an open incident): close it too.
                state = dataclasses.replace(state, status="firing")
            self._quiet.forget(name)
            url, labels = self._target(name, before)
            self._targets.pop(name, None)
            rows = self._rows.build(
                removed(state, check=name, now=now),
                url=url,
                labels=labels,
                result=None,
                policy=resolve_policy(config.alerting, None),
                now=now,
            )
            self._dispatcher.enqueue(self._store.save_alert(name, None, rows))
        dropped = self._store.outbox_drop_receivers(receivers, at=now)
        for receiver, count in dropped.items():
            logger.error(
                "receiver %r is no longer configured: dropped %d queued event(s)", receiver, count
            )
            for _ in range(count):
                self._outcome(receiver, "dropped")
        self._dispatcher.set_grouping(
            agent_grouping(config.alerting), per_check=check_grouping(config)
        )
        self._dispatcher.set_receivers(receivers)

    def observe(self, check: CheckConfig, result: ProbeResult) -> list[Transition]:
        """Feed one result; queue an event per transition and receiver durably.

        Synchronous and short: a state update plus one SQLite transaction. Delivery
        happens later, in the dispatcher.

        Args:
            check: the check that produced ``result``.
            result: the finished result.

        Returns:
            The transitions (``firing``, ``resolved``, ``reminder``, ``degraded``).
        """
        now = self._clock()
        policy = self._policies.get(check.name)
        if policy is None or self._checks.get(check.name) is not check:
            policy = check_policy(self._config, check)
        before = self._states.get(check.name, AlertState())
        if self._targets:
            self._targets.pop(check.name, None)  # from now on, its config's
        if self._quiet.window(check.name, check.labels, now) is not None:
            return []  # maintenance: the result counts for nothing, the state is frozen
        after, raw = update(before, result, policy=policy, now=now)
        flap = self._flap.get(check.name) or resolve_flap(self._config.alerting, check.alerting)
        transitions, changed = self._quiet.filter(
            check.name,
            check.labels,
            before=before,
            after=after,
            transitions=raw,
            flap_policy=flap,
            now=now,
        )
        rows = self._rows.build(
            transitions, url=check.url, labels=check.labels, result=result, policy=policy, now=now
        )
        self._put(check.name, after)
        queued: list[OutboxRow] = []
        if rows or changed or not steady_ok(before, after):
            queued = self._save(check.name, after, rows, target=check)
        for t in transitions:
            detail = "" if t.event == "resolved" else f" ({t.reason or t.message})"
            logger.info("alert %s: check %r %s%s", t.alert, t.check, t.event, detail)
        self._dispatcher.enqueue(queued)
        return transitions

    def flagged(self) -> dict[str, frozenset[str]]:
        """The configured checks each alert-state flag applies to now.

        The flags of every check at once, for a scrape: ``firing``, ``flapping``,
        ``maintenance`` and ``silenced`` (what :meth:`firing`, :meth:`flapping`,
        :meth:`in_maintenance` and :meth:`silenced` say one check at a time). Nothing
        is worked out per check unless a window or a silence is in force, and then once
        per change of the windows open, the silences active or the checks.
        """
        now = self._clock()
        return {
            "firing": frozenset(self._firing),
            "flapping": self._quiet.flapping_checks(),
            "maintenance": self._quiet.maintenance.in_force(self._labels, at=now),
            "silenced": self._quiet.silenced_checks(self._labels, now),
        }

    def firing(self, check: str) -> bool:
        """True while ``check``'s down alert is firing."""
        state = self._states.get(check)
        return state is not None and state.firing

    def flapping(self, check: str) -> bool:
        """True while ``check`` is flapping (its firing/resolved held back)."""
        return self._quiet.flapping(check).flapping

    def in_maintenance(self, check: str) -> bool:
        """True while ``check`` is in a maintenance window."""
        if not self._quiet.maintenance:
            return False  # asked per check at every scrape, like silenced()
        labels = self._target_labels(check)
        return self._quiet.window(check, labels, self._clock()) is not None

    def silenced(self, check: str) -> bool:
        """True while an active silence mutes ``check``'s ``down`` alert."""
        if not self._quiet.silences:
            return False  # asked per check at every scrape: no label set built for nothing
        return bool(self._quiet.silenced_by(check, self._target_labels(check), self._clock()))

    def suppressed_counts(self) -> dict[str, int]:
        """Notifications held back so far, by reason (``flapping``, ``silence``)."""
        return dict(self._quiet.suppressed)

    def state(self, check: str) -> dict[str, Any]:
        """Alert state for ``/api/v1/checks`` (times are Unix seconds or null)."""
        now = self._clock()
        labels = self._target_labels(check)
        flap = self._quiet.flapping(check)
        return api_view(
            self._states.get(check, AlertState()),
            flapping=flap.flapping,
            flapping_since=flap.since,
            window=self._quiet.window(check, labels, now),
            silenced_by=self._quiet.silenced_by(check, labels, now),
            held_events=sum(h.count for h in self._quiet.held(check).values()),
        )

    # -- silences ------------------------------------------------------------------------

    def create_silence(self, body: Any) -> Silence:
        """Validate, store and apply a silence (``POST /api/v1/silences``).

        Raises:
            SilenceError: for a bad request (the message names the field).
            sqlite3.Error: when the state file cannot be written.
        """
        return self._silences.create(body)

    def silences(self) -> list[dict[str, Any]]:
        """Every silence (active, pending and recently expired), newest first."""
        return self._silences.listing()

    def expire_silence(self, silence_id: str) -> Silence | None:
        """End a silence now; held notifications it muted go out at once.

        Returns:
            The ended silence, or None when no silence with that id is in force.

        Raises:
            sqlite3.Error: when the state file cannot be written.
        """
        ended = self._silences.expire(silence_id)
        if ended is not None:
            self.release_held()
        return ended

    def release_held(self) -> None:
        """Send what silences that are over held back (checks out of maintenance)."""
        now = self._clock()
        for name in self._quiet.held_checks():
            check = self._checks.get(name)
            state = self._states.get(name)
            if check is None or state is None:
                continue
            if self._quiet.window(name, check.labels, now) is not None:
                continue
            transitions = self._quiet.release(name, check.labels, state, now)
            policy = self._policies.get(name) or resolve_policy(self._config.alerting, None)
            rows = self._rows.build(
                transitions, url=check.url, labels=check.labels, result=None, policy=policy, now=now
            )
            self._dispatcher.enqueue(self._save(name, state, rows))

    def _put(self, check: str, state: AlertState) -> None:
        self._states[check] = state
        if state.firing:
            self._firing.add(check)
        else:
            self._firing.discard(check)

    def _target_labels(self, check: str) -> dict[str, str]:
        conf = self._checks.get(check)
        return conf.labels if conf is not None else self._targets.get(check, ("", {}))[1]

    def queue_depth(self) -> int:
        """Events waiting for delivery, over all receivers."""
        return self._store.outbox_pending()

    def set_web_url(self, url: str) -> None:
        """Tell alert links where the agent's HTTP server is bound (after it started).

        Args:
            url: base URL of the bound server, e.g. ``http://127.0.0.1:39155``.
        """
        self._rows.web_url = url

    def _delivered(self, row: OutboxRow, at: float) -> None:
        state = self._states.get(row.check)
        if state is None:
            return  # check removed meanwhile
        after = mark_delivered(state, at=at)
        if after != state:
            self._put(row.check, after)
            self._save(row.check, after)

    def _target(self, check: str, checks: dict[str, CheckConfig]) -> tuple[str, dict[str, str]]:
        """URL and labels ``check``'s events name: from the state file until observed."""
        found = self._targets.get(check)
        if found is not None:
            return found
        conf = checks.get(check)
        return (conf.url, conf.labels) if conf is not None else ("", {})

    def _save(
        self,
        check: str,
        state: AlertState,
        rows: list[NewOutboxRow] | None = None,
        *,
        target: CheckConfig | None = None,
    ) -> list[OutboxRow]:
        url, labels = (
            (target.url, target.labels) if target is not None else self._target(check, self._checks)
        )
        # The file keeps what a "resolved" for a removed check needs, and no secret:
        # the URL as the events show it (no userinfo, query values masked).
        data = (
            state.to_dict()
            | {"url": redact_url(url), "labels": labels}
            | self._quiet.persisted(check)
        )
        return self._store.save_alert(check, data, rows or ())

    def _outcome(self, receiver: str, outcome: str) -> None:
        if self._on_notification is not None:
            self._on_notification(receiver, outcome)
