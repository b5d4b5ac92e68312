"""Run scripted steps (send, expect, sleep, app ping) on an open connection.

:func:`run_script` is what the ``probe``, ``watch`` and ``relay`` kinds call after the
handshake: first-message auth (``check.auth.steps``, phase ``auth``), then ``check.steps``
or a relay's join steps (phase ``steps``). :func:`run_steps` runs any one list of steps.

Every step is timed into ``result.steps``; the first failing step raises a
:class:`~agent.probes.errors.ProbeError` whose message names it (index and name).
Failures during auth steps are all reported as ``auth_rejected``.

Exceptions raised (from :mod:`agent.probes.errors`)::

    ProbeError
     ├── AuthRejected       any failure while running auth steps
     ├── ExpectTimeout      no matching message within the step's timeout or the deadline
     ├── ExpectMismatch     a fail_if matched, an extract found nothing, a variable is undefined
     ├── ConnectionClosed   the server closed the connection mid-script
     └── ProbeTimeout       a sleep would pass the check's deadline
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection

from agent.config import CheckConfig
from agent.config.steps import AppPing, Expect, Step
from agent.probes.errors import (
    AuthRejected,
    ConnectionClosed,
    ExpectMismatch,
    ExpectTimeout,
    ProbeError,
    ProbeTimeout,
    map_errors,
)
from agent.probes.script.matchers import ExtractFailed, UndefinedVariable, extract, substitute
from agent.probes.script.receive import wait_for_match
from agent.result import ProbeResult, StepResult

# wait_for_match is re-exported: the watch kind imports it from here.
__all__ = [
    "AUTH_CLOSE_CODES",
    "name_step",
    "payload_of",
    "run_script",
    "run_steps",
    "timed_step",
    "wait_for_match",
]

#: Close codes that mean "not authenticated / not allowed" (RFC 6455 1008, and the
#: 4401/4403 convention mirroring HTTP 401/403).
AUTH_CLOSE_CODES: frozenset[int] = frozenset({1008, 4401, 4403})


def payload_of(value: Any, variables: dict[str, str]) -> str:
    """What a ``send`` step puts on the wire: strings as text, anything else as JSON.

    Raises:
        UndefinedVariable: a ``{{name}}`` in ``value`` has no value.
    """
    filled = substitute(value, variables)
    if isinstance(filled, str):
        return filled
    return json.dumps(filled, separators=(",", ":"))


@dataclass(slots=True)
class _Script:
    """State shared by the steps of one list: connection, variables, clocks."""

    conn: ClientConnection
    result: ProbeResult
    variables: dict[str, str]
    deadline: float
    phase: str
    last_send: float = field(default_factory=time.perf_counter)
    # Every send time, so first_message can be measured from the send that preceded
    # the message even when an earlier expect had already read it.
    sends: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.sends = [self.last_send]

    async def send(self, data: str | bytes) -> None:
        with map_errors(self.phase):
            await self.conn.send(data)
        self.last_send = time.perf_counter()
        self.sends.append(self.last_send)

    async def run(self, step: Step) -> None:
        action = step.action
        if action == "send":
            await self.send(payload_of(step.send, self.variables))
        elif action == "send_binary":
            assert step.send_binary is not None
            encoded = substitute(step.send_binary, self.variables)
            try:
                data = base64.b64decode(encoded, validate=True)
            except ValueError:
                raise ExpectMismatch("send_binary is not valid base64") from None
            await self.send(data)
        elif action == "sleep":
            assert step.sleep is not None
            await self.sleep(step.sleep)
        elif action == "expect":
            assert step.expect is not None
            await self.expect(step.expect)
        else:
            assert step.app_ping is not None
            await self.app_ping(step.app_ping)

    async def sleep(self, seconds: float) -> None:
        remaining = self.deadline - time.perf_counter()
        if seconds > remaining:
            # Fail now rather than sleep into a certain timeout.
            raise ProbeTimeout(
                phase=self.phase,
                timeout=round(max(remaining, 0.0), 3),
                detail=f"a sleep of {seconds:g}s does not fit in what is left",
            )
        await asyncio.sleep(seconds)

    async def expect(self, expect: Expect) -> None:
        started = time.perf_counter()
        until = min(started + expect.timeout, self.deadline)
        try:
            match = await wait_for_match(
                self.conn,
                expect,
                variables=self.variables,
                until=until,
                fail_if=expect.fail_if,
                phase=self.phase,
            )
        except ExpectTimeout as err:
            err.timeout = expect.timeout
            if until >= self.deadline:
                err.timeout = round(until - started, 3)
                err.detail += (
                    f" (the check's timeout left {err.timeout:g}s of its {expect.timeout:g}s)"
                )
            raise
        if expect.first_message:
            before = self.sends[max(bisect.bisect_right(self.sends, match.at) - 1, 0)]
            self.result.phases["first_message"] = max(match.at - before, 0.0)
        try:
            self.variables.update(extract(expect.extract, expect, match.message, self.variables))
        except (ExtractFailed, UndefinedVariable) as exc:
            raise ExpectMismatch(str(exc)) from None

    async def app_ping(self, ping: AppPing) -> None:
        for n in range(ping.count):
            if n and ping.interval:
                await self.sleep(ping.interval)
            scoped = {**self.variables, "id": uuid.uuid4().hex[:16]}
            try:
                payload = payload_of(ping.send, scoped)
            except UndefinedVariable as exc:
                raise ExpectMismatch(str(exc)) from None
            # Timed from before the send, like protocol pings: the RTT includes the write.
            sent = time.perf_counter()
            await self.send(payload)
            until = min(sent + ping.timeout, self.deadline)
            try:
                match = await wait_for_match(
                    self.conn,
                    ping.expect,
                    variables=scoped,
                    until=until,
                    fail_if=ping.expect.fail_if,
                    phase="app_ping",
                )
            except ExpectTimeout as err:
                err.timeout = ping.timeout
                err.detail = f"no reply to app ping {n + 1} of {ping.count}; {err.detail}"
                if until >= self.deadline:
                    err.timeout = round(until - sent, 3)
                    err.detail += " (cut short by the check's timeout)"
                raise
            self.result.app_pings.append(match.at - sent)
        rtts = self.result.app_pings
        self.result.phases["app_ping"] = sum(rtts) / len(rtts)


def name_step(err: ProbeError, where: str) -> None:
    """Put the failing step into the error so its message names it.

    Args:
        err: the step's failure; changed in place.
        where: the step's number and label, e.g. ``2 'subscribe'``.
    """
    if isinstance(err, ExpectTimeout | ExpectMismatch):
        err.step = where
    else:
        err.detail = f"{err.detail} during step {where}" if err.detail else f"during step {where}"


@contextmanager
def timed_step(result: ProbeResult, *, index: int, name: str) -> Iterator[None]:
    """Time the block as one step in ``result.steps``, failed unless it ends normally.

    Args:
        result: receives the :class:`~agent.result.StepResult`.
        index: the step's place in its list, from 0.
        name: the step's name as reported.
    """
    started = time.perf_counter()
    ok = False
    try:
        yield
        ok = True
    finally:
        result.steps.append(
            StepResult(index=index, name=name, duration=time.perf_counter() - started, ok=ok)
        )


def _auth_error(err: ProbeError, where: str) -> AuthRejected:
    """Any failure of an auth step is an authentication failure, said plainly."""
    if isinstance(err, ConnectionClosed) and err.code in AUTH_CLOSE_CODES:
        return AuthRejected(f"auth step {where}: server refused the credentials; {err}")
    return AuthRejected(f"auth step {where}: {err}")


async def run_steps(
    conn: ClientConnection,
    steps: Sequence[Step],
    *,
    result: ProbeResult,
    variables: dict[str, str],
    deadline: float,
    phase: str,
) -> None:
    """Run ``steps`` in order on ``conn``, timing each into ``result.steps``.

    The whole list is timed as ``result.phases[phase]``. Values extracted by a step are
    added to ``variables`` (the caller's dict), so later lists see them.

    Args:
        conn: an open connection.
        steps: the steps to run.
        result: receives step timings, phases and app ping RTTs.
        variables: run-time ``{{name}}`` values; updated in place by extracts.
        deadline: absolute ``time.perf_counter()`` limit for the whole list.
        phase: ``auth`` (any failure becomes ``auth_rejected``), ``steps`` or another
            phase name for the timing.

    Raises:
        ProbeError: the first failing step, named in the message.
    """
    script = _Script(conn, result, variables, deadline, phase)
    started = time.perf_counter()
    try:
        for index, step in enumerate(steps):
            name = f"auth:{step.label}" if phase == "auth" else step.label
            with timed_step(result, index=index, name=name):
                try:
                    try:
                        await script.run(step)
                    except UndefinedVariable as exc:
                        raise ExpectMismatch(str(exc)) from None
                except ProbeError as exc:
                    where = f"{index + 1} {step.label!r}"
                    if phase == "auth" and not isinstance(exc, AuthRejected):
                        raise _auth_error(exc, where) from exc
                    name_step(exc, where)
                    raise
    finally:
        result.phases[phase] = result.phases.get(phase, 0.0) + time.perf_counter() - started


async def run_script(
    conn: ClientConnection,
    check: CheckConfig,
    result: ProbeResult,
    *,
    deadline: float,
    variables: dict[str, str],
    steps: Sequence[Step] | None = None,
) -> None:
    """Run a check's auth steps (phase ``auth``) then its steps (phase ``steps``).

    Args:
        conn: the connection right after the handshake.
        check: supplies ``auth.steps`` and ``steps``.
        result: receives timings (``auth``, ``steps``, ``first_message``, ``app_ping``).
        deadline: absolute ``time.perf_counter()`` limit.
        variables: run-time values (e.g. ``token``); extracts are added to it, and
            ``token`` from ``check.auth.token`` unless already set.
        steps: what runs after the auth steps instead of ``check.steps`` (a relay's
            ``join`` steps).

    Raises:
        ProbeError: ``AuthRejected`` for any auth step failure, otherwise the failing
            step's error.
    """
    if check.auth.token is not None:
        variables.setdefault("token", check.auth.token.get_secret_value())
    if check.auth.steps:
        await run_steps(
            conn,
            check.auth.steps,
            result=result,
            variables=variables,
            deadline=deadline,
            phase="auth",
        )
    steps = check.steps if steps is None else steps
    if steps:
        await run_steps(
            conn,
            steps,
            result=result,
            variables=variables,
            deadline=deadline,
            phase="steps",
        )
