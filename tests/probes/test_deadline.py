"""The deadline policy: when the deadline cuts a wait, the waiting phase names the reason."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.config import CheckConfig
from agent.probes.deadline import GRACE, call_probe, run_guarded
from agent.result import ProbeResult, Reason, new_result
from tests.servers import RawServer, accept_101, make_check, silent_after_101, timed_probe

# Generous against a shared, loaded machine; the point is "not the whole GRACE again".
SLACK = GRACE + 1.0


async def _upgrade_then_ignore(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Upgrade, then read and answer nothing, never close (steps and close codes wait)."""
    await accept_101(reader, writer)
    while await reader.read(65536):
        pass


@pytest.mark.parametrize(
    ("fields", "reason", "text"),
    [
        ({"ping_timeout": 5}, Reason.PING_TIMEOUT, "no pong for ping 1: the check's deadline"),
        (
            {"steps": [{"send": "hello"}, {"expect": {"contains": "world", "timeout": 5}}]},
            Reason.EXPECT_TIMEOUT,
            "no matching message at step 2",
        ),
        (
            {"pings": 0, "expect": {"close_code": 4000}},
            Reason.EXPECT_TIMEOUT,
            "no close frame from the server: expected close code 4000; the check's deadline",
        ),
    ],
    ids=["pong-wait", "expect-wait", "close-wait"],
)
async def test_deadline_during_a_wait_names_that_wait(
    fields: dict[str, Any], reason: Reason, text: str
) -> None:
    """A server that upgrades and then goes silent fails as the phase that was waiting."""
    handler = silent_after_101 if "ping_timeout" in fields else _upgrade_then_ignore
    async with RawServer(handler) as srv:
        check = make_check(srv.url(), timeout=0.5, **fields)
        result, elapsed = await timed_probe(check)
    assert result.reason is reason, result.message
    assert result.message.startswith(text), result.message
    assert elapsed <= check.timeout + SLACK


@pytest.mark.parametrize(
    ("phase", "reason"),
    [
        ("resolve", Reason.DNS),
        ("connect", Reason.CONNECT_TIMEOUT),
        ("tls", Reason.TLS_HANDSHAKE),
        ("handshake", Reason.HANDSHAKE_TIMEOUT),
        ("auth", Reason.AUTH_REJECTED),
        ("steps", Reason.EXPECT_TIMEOUT),
        ("first_message", Reason.EXPECT_TIMEOUT),
        ("relay", Reason.EXPECT_TIMEOUT),
        ("ping", Reason.PING_TIMEOUT),
        ("close", Reason.EXPECT_TIMEOUT),
        ("join", Reason.TIMEOUT),
        (None, Reason.TIMEOUT),
    ],
    ids=lambda value: str(value),
)
async def test_net_names_the_phase_that_was_waiting(phase: str | None, reason: Reason) -> None:
    """When the net itself cuts a body, the phase it was in decides the reason."""
    check = make_check("ws://127.0.0.1:9/", timeout=0.05)
    result = new_result(check)
    aborted: list[bool] = []

    async def hang() -> None:
        await asyncio.Event().wait()

    await run_guarded(check, result, hang, phase=lambda: phase, abort=lambda: aborted.append(True))
    assert result.reason is reason, result.message
    assert "0.05s" in result.message
    assert aborted == []  # only cancellation aborts


async def test_outer_net_turns_an_overrunning_probe_into_a_timeout() -> None:
    """A probe function that ignores its deadline is cut one GRACE after its own net."""

    async def stuck(check: CheckConfig) -> ProbeResult:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    check = make_check("ws://127.0.0.1:9/", timeout=0.05)
    result = await asyncio.wait_for(call_probe(stuck, check), 2 * GRACE + 2.0)
    assert result.reason is Reason.TIMEOUT
    assert result.message == "deadline of 0.05s reached"
    assert (result.check, result.kind) == (check.name, check.kind)
