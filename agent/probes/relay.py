"""The ``relay`` kind: end-to-end delivery from one connection to others.

One run opens ``relay.receivers + 1`` connections (concurrently, each through
:func:`~agent.probes.dial.opener.open_connection`), runs the check's auth steps and the
``relay.join`` steps on each, then the publisher sends ``relay.publish`` holding a
marker unique to the run. Every receiver must read a message containing the marker
(and matching ``relay.match``) within ``relay.deadline`` of the publish; its delivery
latency goes to ``result.relay["receiverN"]``. All connections are closed, bounded by
``close_timeout``, whatever happened.

With ``protocol:`` each connection speaks the protocol instead
(:mod:`agent.probes.protocols.relay`): handshake and ``protocol.steps`` on all, the
subscription on each receiver, then the protocol's publish; a delivery is the
protocol's event (MQTT PUBLISH, STOMP MESSAGE, GraphQL ``next``, Socket.IO event)
holding the marker, timed from before the publish to the frame's arrival.

The publisher's phases (resolve ... handshake, ``auth``, ``protocol``, ``steps`` for its
join) are the result's phases. Failures (a :class:`~agent.probes.errors.ProbeError` each)::

    ProbeError
     ├── (any connection failure)   prefixed with the connection: "receiver2: ..."
     ├── AuthRejected               auth steps failed on one connection
     ├── ExpectTimeout              a receiver did not see the marker in time
     └── (the deadline)             expect_timeout while waiting for the marker; timeout
                                    while the connections were still joining
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol

from agent.config import CheckConfig
from agent.config.relay import RelayConfig
from agent.config.steps import Matcher
from agent.probes.connections.reading import ReadingConnection
from agent.probes.deadline import run_guarded
from agent.probes.dial.opener import (
    check_secrets,
    close_connection,
    open_connection,
)
from agent.probes.dial.upgrade import fetch_check_token
from agent.probes.errors import (
    ExpectMismatch,
    ExpectTimeout,
    InternalError,
    ProbeError,
    map_errors,
)
from agent.probes.protocols.relay import RelayEnd, delivery, dialled, relay_plan
from agent.probes.script.matchers import UndefinedVariable
from agent.probes.script.receive import wait_for_match
from agent.probes.script.steps import payload_of, run_script
from agent.redact import scrub
from agent.result import ProbeResult, new_result

__all__ = ["PUBLISHER", "run"]

log = logging.getLogger(__name__)


class _Arrival(Protocol):
    """A delivered message or protocol event: when it was read."""

    @property
    def at(self) -> float: ...


#: Name of the publishing connection in messages (receivers are receiver1..N).
PUBLISHER = "publisher"
_DEFAULT_RELAY = RelayConfig()


def _name(index: int) -> str:
    return PUBLISHER if index == 0 else f"receiver{index}"


def _prefix(err: ProbeError, text: str) -> None:
    err.detail = f"{text}: {err.detail}" if err.detail else text


class _Relay:
    """One run: the connections, their scratch results and the shared variables."""

    def __init__(self, check: CheckConfig, result: ProbeResult, *, start: float) -> None:
        self.check = check
        self.cfg = check.relay or _DEFAULT_RELAY
        self.result = result
        self.start = start
        self.deadline = start + check.timeout
        self.phase = "handshake"
        self.token: str | None = None
        run_id = uuid.uuid4().hex[:12]
        self.variables = {"run": run_id, "marker": f"wsprobe-{run_id}-{uuid.uuid4().hex[:8]}"}
        if check.auth.token is not None:
            self.variables["token"] = check.auth.token.get_secret_value()
        count = self.cfg.receivers + 1
        # The publisher writes into the real result; receivers into scratch ones, so
        # their phases do not overwrite the publisher's.
        self.results = [result] + [new_result(check) for _ in range(count - 1)]
        self.conns: list[ReadingConnection | None] = [None] * count
        #: With ``protocol:``: the check as dialled, and each connection's session.
        self.dialled = check
        self.ends: list[RelayEnd] = []
        if check.protocol is not None:
            self.dialled = dialled(check)
            plan = relay_plan(check)
            self.ends = [RelayEnd(check, plan, _name(i)) for i in range(count)]

    async def run(self) -> None:
        if self.check.auth.oauth2 is not None:
            self.phase = "auth"
        self.token = await fetch_check_token(self.check, self.deadline)
        if self.token is not None:
            self.variables["token"] = self.token
        self.phase = "join"
        await _all_or_first_error([self._prepare(i) for i in range(len(self.conns))])
        self.phase = "relay"
        await self._relay()

    async def _prepare(self, index: int) -> None:
        """Connect, authenticate and join one connection; errors name it."""
        result = self.results[index]
        variables = {**self.variables, "connection": _name(index)}
        try:
            conn = await open_connection(
                self.dialled, result, deadline=self.deadline, token=self.token
            )
            self.conns[index] = conn
            if self.ends:
                await self.ends[index].join(
                    conn, result, deadline=self.deadline, variables=variables, receiver=index > 0
                )
                return
            await run_script(
                conn,
                self.check,
                result,
                deadline=self.deadline,
                variables=variables,
                steps=self.cfg.join,
            )
        except ProbeError as err:
            if isinstance(err, ExpectTimeout | ExpectMismatch) and err.step:
                err.step = f"{err.step} on {_name(index)}"
            else:
                _prefix(err, _name(index))
            raise

    async def _relay(self) -> None:
        if self.ends:
            await self._relay_protocol()
            return
        publisher = self.conns[0]
        assert publisher is not None
        receivers = [c for c in self.conns[1:] if c is not None]
        try:
            payload = payload_of(self.cfg.publish, {**self.variables, "connection": PUBLISHER})
        except UndefinedVariable as exc:
            raise ExpectMismatch(f"relay.publish: {exc}") from None
        matcher = _marker_matcher(self.cfg.match)
        published = time.perf_counter()
        until = min(published + self.cfg.deadline, self.deadline)
        try:
            with map_errors("relay"):
                await publisher.send(payload)
        except ProbeError as err:
            _prefix(err, f"{PUBLISHER} (publishing)")
            raise
        await self._deliveries(
            [
                wait_for_match(conn, matcher, variables=self.variables, until=until, phase="relay")
                for conn in receivers
            ],
            published,
        )

    async def _relay_protocol(self) -> None:
        expect = delivery(self.ends[0].plan, self.cfg.match)
        published = time.perf_counter()
        until = min(published + self.cfg.deadline, self.deadline)
        try:
            await self.ends[0].publish(until=until)
        except ProbeError as err:
            _prefix(err, f"{PUBLISHER} (publishing)")
            raise
        await self._deliveries(
            [end.receive(expect, until=until) for end in self.ends[1:]], published
        )

    async def _deliveries(
        self, waits: Sequence[Coroutine[Any, Any, _Arrival]], published: float
    ) -> None:
        """Await every receiver's delivery; record each latency; raise for the misses."""
        outcomes = await asyncio.gather(*waits, return_exceptions=True)
        self.result.phases["total"] = time.perf_counter() - self.start
        failures: list[tuple[str, BaseException]] = []
        for index, outcome in enumerate(outcomes, start=1):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, BaseException):
                failures.append((_name(index), outcome))
            else:
                self.result.relay[_name(index)] = outcome.at - published
        if failures:
            # Compared as sums: until - published may round below the deadline itself.
            raise self._failure(failures, cut_short=self.deadline < published + self.cfg.deadline)

    def _failure(self, failures: list[tuple[str, BaseException]], *, cut_short: bool) -> ProbeError:
        tally = f"{self.cfg.receivers - len(failures)} of {self.cfg.receivers} receivers got it"
        name, first = failures[0]
        if isinstance(first, ExpectTimeout):
            names = ", ".join(n for n, e in failures if isinstance(e, ExpectTimeout))
            cut = " (the check's timeout cut the wait short)" if cut_short else ""
            return ExpectTimeout(
                f"{names} did not receive the published marker{cut}; {tally}",
                timeout=self.cfg.deadline,
            )
        if isinstance(first, ProbeError):
            _prefix(first, name)
            first.detail += f"; {tally}"
            return first
        log.error("check %s: unexpected error in relay receiver", self.check.name, exc_info=first)
        return InternalError(type(first).__name__)

    async def close(self) -> None:
        """Close every open connection concurrently, within close_timeout."""
        for end in self.ends:
            await end.leave()
        remaining = self.deadline - time.perf_counter()
        timeout = max(min(self.check.close_timeout, remaining), 0.0)
        await asyncio.gather(
            *(
                close_connection(conn, result, timeout=timeout)
                for conn, result in zip(self.conns, self.results, strict=True)
                if conn is not None
            )
        )

    def abort(self) -> None:
        """Drop every connection at once (the run was cancelled)."""
        for end in self.ends:
            end.abort()
        for conn in self.conns:
            if conn is not None:
                conn.transport.abort()


def _marker_matcher(match: Matcher | None) -> Matcher:
    if match is None:
        return Matcher(contains="{{marker}}")
    return match.model_copy(update={"contains": "{{marker}}"})


async def _all_or_first_error(coros: Sequence[Coroutine[Any, Any, None]]) -> None:
    """Run ``coros`` concurrently; on the first failure cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    # Report the lowest-numbered failing connection: the publisher first.
    for task in tasks:
        if not task.cancelled() and (exc := task.exception()) is not None:
            raise exc


async def run(check: CheckConfig) -> ProbeResult:
    """Run one ``relay`` check and return what it measured.

    Never raises for a failing target; only ``asyncio.CancelledError`` propagates.

    Args:
        check: a check with ``kind: relay`` (``check.relay`` defaults apply if unset).

    Returns:
        The result; ``relay`` holds each receiver's delivery latency in seconds.
    """
    result = new_result(check)
    relay = _Relay(check, result, start=time.perf_counter())
    await run_guarded(check, result, relay.run, phase=lambda: relay.phase, abort=relay.abort)
    if "total" not in result.phases:
        result.phases["total"] = time.perf_counter() - relay.start
    await relay.close()
    secrets = check_secrets(check, *([relay.token] if relay.token else []))
    result.message = scrub(result.message, secrets)
    result.judge_limits(check.limits)
    return result
