"""Turn a check's transitions into outbox rows: which receivers get which event.

A transition becomes one :class:`~agent.notifiers.base.AlertEvent` (with the link back
to the agent) and one row per receiver of the check's policy that exists and wants it
(``send_resolved: false`` receivers get no ``resolved``).
"""

from __future__ import annotations

from agent.alerting.events import CHECKS_API_PATH, agent_base_url, build_event
from agent.alerting.outbox import new_rows
from agent.alerting.policy import AlertPolicy
from agent.alerting.state import Transition
from agent.config import Config
from agent.result import ProbeResult
from agent.storage import NewOutboxRow

__all__ = ["EventRows"]


class EventRows:
    """Builds the outbox rows of transitions for the current configuration.

    Args:
        config: the whole configuration (receivers, agent address and location).
        agent_id: this agent's stable id, carried by every event.
    """

    def __init__(self, config: Config, *, agent_id: str) -> None:
        self.config = config
        self.agent_id = agent_id
        #: Base URL of the bound HTTP server, once it is listening.
        self.web_url: str | None = None

    def build(
        self,
        transitions: list[Transition],
        *,
        url: str,
        labels: dict[str, str],
        result: ProbeResult | None,
        policy: AlertPolicy,
        now: float,
    ) -> list[NewOutboxRow]:
        """One row per transition and receiver that gets it.

        Args:
            transitions: what happened to the check, in order.
            url: the check's target URL (events show it redacted).
            labels: the check's labels.
            result: the result that caused the transitions, if any.
            policy: the check's resolved policy (receivers, reminder period).
            now: the time the rows are queued at.

        Returns:
            The rows to store, in transition order.
        """
        if not transitions:  # nearly every result: skip the receiver lookup
            return []
        known = {r.name: r for r in self.config.receivers}
        receivers = [r for r in policy.receivers if r in known]
        rows: list[NewOutboxRow] = []
        for t in transitions:
            targets = receivers
            if t.event == "resolved":
                targets = [r for r in receivers if known[r].send_resolved]
            event = build_event(
                t,
                url=url,
                labels=labels,
                result=result,
                agent_id=self.agent_id,
                location=self.config.agent.location,
                generator_url=self._generator_url(),
                repeat_interval=policy.repeat_interval,
            )
            rows += new_rows(event, targets, now=now)
        return rows

    def _generator_url(self) -> str:
        agent = self.config.agent
        bound = self.web_url
        if bound is None:  # before the HTTP server started: the configured address
            bound = f"{'https' if agent.web.cert_file else 'http'}://{agent.listen}"
        base = agent_base_url(external_url=agent.external_url, bound_url=bound)
        return base + CHECKS_API_PATH
