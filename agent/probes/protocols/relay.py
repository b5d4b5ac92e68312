"""One connection of a ``relay`` check that speaks a protocol.

The relay kind (:mod:`agent.probes.relay`) opens the connections; on each one a
:class:`RelayEnd` runs the protocol's handshake (the ``protocol`` phase) and
``protocol.steps`` (``steps``: e.g. joining a Socket.IO room), and on a receiver the
protocol's subscription from the check's :class:`~agent.probes.protocols.spec.RelayPlan`
(its acknowledgement awaited: SUBACK, a STOMP receipt; a ping round trip for GraphQL,
whose subscriptions have none). Only then does the publisher publish, so the first
message cannot be missed. A delivery is the plan's event holding the run's marker; its
arrival time is the one stamped when the frame was read.

Failures are the session's (:mod:`agent.probes.protocols.base`): a refused handshake
(``auth_rejected``, ``handshake_status``), a malformed frame (``protocol_error``), a
refused subscription or publish (``expect_mismatch``), the session ending (``closed``).
"""

from __future__ import annotations

from agent.config import CheckConfig
from agent.config.protocols import ProtocolConfig, ProtocolExpect
from agent.config.relay import RelayConfig
from agent.config.steps import Matcher
from agent.probes.connections.reading import ReadingConnection
from agent.probes.errors import ExpectTimeout, ProbeError
from agent.probes.protocols import PROTOCOLS, prepare
from agent.probes.protocols.base import Session
from agent.probes.protocols.events import Event
from agent.probes.protocols.session import open_protocol, round_trip, run_step, run_steps
from agent.probes.protocols.spec import RelayPlan
from agent.probes.script.steps import name_step
from agent.result import ProbeResult

__all__ = ["RelayEnd", "delivery", "dialled", "relay_plan"]


def relay_plan(check: CheckConfig) -> RelayPlan:
    """The protocol's plan for ``check`` (a relay with ``protocol:``, validated)."""
    assert check.protocol is not None
    plan = PROTOCOLS[check.protocol.name].relay
    assert plan is not None  # validated
    return plan(check.relay or RelayConfig())


def dialled(check: CheckConfig) -> CheckConfig:
    """``check`` as its connections dial it: the protocol's URL form and subprotocols."""
    assert check.protocol is not None
    return prepare(check, PROTOCOLS[check.protocol.name])


def delivery(plan: RelayPlan, match: Matcher | None) -> ProtocolExpect:
    """What a receiver waits for: the plan's event, holding the marker, matching ``match``."""
    extra = {} if match is None else {k: getattr(match, k) for k in match.model_fields_set}
    return plan.delivery.model_copy(update={**extra, "contains": "{{marker}}"})


def _own_config(config: ProtocolConfig, connection: str) -> ProtocolConfig:
    # One MQTT client id on several connections: each would take the others' session over.
    if config.client_id is None:
        return config
    return config.model_copy(update={"client_id": f"{config.client_id}-{connection}"})


class RelayEnd:
    """The protocol session of one relay connection (the publisher or a receiver)."""

    def __init__(self, check: CheckConfig, plan: RelayPlan, connection: str) -> None:
        assert check.protocol is not None
        self.check = check.model_copy(update={"protocol": _own_config(check.protocol, connection)})
        self.plan = plan
        self.connection = connection
        self.session: Session | None = None

    async def join(
        self,
        conn: ReadingConnection,
        result: ProbeResult,
        *,
        deadline: float,
        variables: dict[str, str],
        receiver: bool,
    ) -> None:
        """Handshake, ``protocol.steps``, and on a receiver the subscription, settled.

        Raises:
            ProbeError: the first failure (steps named as in a probe).
        """
        self.session = session = await open_protocol(
            conn,
            self.check,
            result=result,
            deadline=deadline,
            variables=variables,
            on_phase=lambda phase: None,  # the relay reports its own phase ("join")
        )
        if not receiver:
            return
        if self.plan.subscribe:
            await run_steps(session, self.plan.subscribe, result, deadline)
        if self.plan.settle:
            try:
                await round_trip(session, until=deadline)
            except (ExpectTimeout, TimeoutError):
                raise ExpectTimeout(
                    "no answer to the ping that confirms the subscription was read"
                ) from None

    async def publish(self, *, until: float) -> None:
        """Run the plan's publish steps (awaiting their acknowledgements) by ``until``."""
        assert self.session is not None
        for index, step in enumerate(self.plan.publish):
            try:
                await run_step(self.session, step, until)
            except ProbeError as exc:
                name_step(exc, f"{index + 1} {step.label!r}")
                raise

    async def receive(self, expect: ProtocolExpect, *, until: float) -> Event:
        """The delivery ``expect`` describes, as read (its ``at`` is the arrival time)."""
        assert self.session is not None
        return await self.session.expect(expect, until=until)

    async def leave(self) -> None:
        """Say goodbye in the protocol and stop reading; the caller closes the connection."""
        if self.session is not None:
            await self.session.goodbye()
            await self.session.stop()

    def abort(self) -> None:
        """Stop the session's tasks at once (the run was cancelled)."""
        if self.session is not None:
            self.session.cancel()
