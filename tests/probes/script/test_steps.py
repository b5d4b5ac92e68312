"""Scripted steps against real WebSocket servers speaking small JSON protocols."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from agent.config import CheckConfig
from agent.config.steps import Step
from agent.probes.errors import ExpectMismatch, ProbeError
from agent.probes.script.steps import run_script, run_steps
from agent.result import ProbeResult, Reason

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def session(handler: Handler) -> AsyncIterator[ClientConnection]:
    """A real server running ``handler`` and a client connected to it."""
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(
            f"ws://127.0.0.1:{port}/", ping_interval=None, proxy=None, close_timeout=1
        ) as conn:
            yield conn


def check(**fields: Any) -> CheckConfig:
    return CheckConfig.model_validate({"name": "t", "url": "ws://127.0.0.1:1/", **fields})


def new_result() -> ProbeResult:
    return ProbeResult(check="t", kind="probe", url="ws://127.0.0.1:1/", started_at=time.time())


async def script(
    handler: Handler, variables: dict[str, str] | None = None, timeout: float = 5.0, **fields: Any
) -> tuple[ProbeResult, ProbeError | None]:
    """Run a check's auth steps and steps against ``handler``; return result and error.

    A ``token`` in ``variables`` becomes ``auth.token``, as an operator would write it;
    run_script puts it back into ``variables``.
    """
    variables = variables if variables is not None else {}
    if "token" in variables:
        fields["auth"] = {**fields.get("auth", {}), "token": variables.pop("token")}
    result = new_result()
    error: ProbeError | None = None
    async with session(handler) as conn:
        try:
            await run_script(
                conn,
                check(**fields),
                result,
                deadline=time.perf_counter() + timeout,
                variables=variables,
            )
        except ProbeError as exc:
            error = exc
    return result, error


async def feed_server(ws: ServerConnection) -> None:
    """A feed: auth message, subscribe, noisy heartbeats, ticks, app ping."""
    authed = False
    async for raw in ws:
        msg = json.loads(raw)
        await ws.send(json.dumps({"type": "heartbeat"}))  # noise before every reply
        if msg["type"] == "auth":
            if msg.get("token") != "s3cret-token":
                await ws.send(json.dumps({"type": "error", "message": "bad token"}))
                continue
            authed = True
            await ws.send(json.dumps({"type": "auth_ok", "session": "sess-42"}))
        elif not authed:
            await ws.close(4401, "not authenticated")
            return
        elif msg["type"] == "subscribe":
            await ws.send(json.dumps({"type": "subscribed", "channel": msg["channel"]}))
            await ws.send("not json at all")
            for n in range(3):
                await ws.send(json.dumps({"type": "tick", "seq": n, "price": 100 + n}))
        elif msg["type"] == "ping":
            await ws.send(json.dumps({"type": "pong", "id": msg["id"]}))
        elif msg["type"] == "whoami":
            await ws.send(json.dumps({"type": "you", "session": msg["session"]}))


AUTH_STEPS = [
    {"send": {"type": "auth", "token": "{{token}}"}},
    {
        "name": "auth ok",
        "expect": {
            "json": {"type": "auth_ok"},
            "fail_if": {"json": {"type": "error"}},
            "extract": {"session": "$.session"},
        },
    },
]

FEED_STEPS = [
    {"name": "subscribe", "send": {"type": "subscribe", "channel": "ticker"}},
    {"expect": {"json": {"type": "subscribed"}}},
    {
        "name": "first tick",
        "expect": {"json": {"type": "tick"}, "path": "$.price", "gt": 0, "first_message": True},
    },
    {"name": "price up", "expect": {"path": "$.price", "ge": 102}},
    {"send": {"type": "whoami", "session": "{{session}}"}},
    {"expect": {"json": {"type": "you", "session": "sess-42"}}},
    {"name": "heartbeat", "app_ping": {"count": 3, "timeout": 2}},
]


async def test_full_feed_conversation() -> None:
    """Auth, subscribe, data and app ping succeed through heartbeats and noise."""
    result, error = await script(
        feed_server,
        {"token": "s3cret-token"},
        auth={"steps": AUTH_STEPS},
        steps=FEED_STEPS,
    )
    assert error is None
    assert [s.name for s in result.steps] == [
        "auth:send",
        "auth:auth ok",
        "subscribe",
        "expect",
        "first tick",
        "price up",
        "send",
        "expect",
        "heartbeat",
    ]
    assert all(s.ok for s in result.steps)
    assert {"auth", "steps", "first_message", "app_ping"} <= result.phases.keys()
    assert len(result.app_pings) == 3
    assert result.phases["first_message"] <= result.phases["steps"]


async def test_extracted_variables_reach_the_caller() -> None:
    """Values extracted by auth steps are left in the caller's variables."""
    variables = {"token": "s3cret-token"}
    _, error = await script(feed_server, variables, auth={"steps": AUTH_STEPS})
    assert error is None
    assert variables["session"] == "sess-42"


async def test_error_reply_to_auth_is_auth_rejected_without_secret() -> None:
    """An error reply during auth fails as auth_rejected naming the step, not the token."""
    result, error = await script(
        feed_server, {"token": "wrong-token-value"}, auth={"steps": AUTH_STEPS}
    )
    assert error is not None
    assert error.reason is Reason.AUTH_REJECTED
    assert "auth step 2 'auth ok'" in str(error)
    assert "bad token" in str(error)
    assert "wrong-token-value" not in str(error)
    assert result.steps[-1].ok is False
    assert "auth" in result.phases


def closing_server(code: int, reason: str) -> Handler:
    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.close(code, reason)

    return handler


@pytest.mark.parametrize("code", [4401, 4403, 1008], ids=str)
async def test_auth_close_codes_are_auth_rejected(code: int) -> None:
    """A close with an auth code during auth steps fails as auth_rejected with the code."""
    _, error = await script(
        closing_server(code, "go away"), {"token": "t0k"}, auth={"steps": AUTH_STEPS}
    )
    assert error is not None
    assert error.reason is Reason.AUTH_REJECTED
    assert f"code {code}" in str(error)
    assert "refused the credentials" in str(error)


async def test_auth_never_answered_is_auth_rejected() -> None:
    """A server that never answers the auth message fails as auth_rejected after the timeout."""

    async def silent(ws: ServerConnection) -> None:
        await ws.wait_closed()

    steps = [AUTH_STEPS[0], {"expect": {"json": {"type": "auth_ok"}, "timeout": 0.2}}]
    _, error = await script(silent, {"token": "t0k"}, auth={"steps": steps})
    assert error is not None
    assert error.reason is Reason.AUTH_REJECTED
    assert "within 0.2s" in str(error)


async def test_close_during_steps_is_closed_with_code() -> None:
    """A server closing mid-script fails as closed, naming the step and the close code."""
    _, error = await script(
        closing_server(1011, "internal oops"),
        steps=[{"send": "hi"}, {"name": "reply", "expect": {"contains": "x"}}],
    )
    assert error is not None
    assert error.reason is Reason.CLOSED
    assert "1011" in str(error)
    assert "internal oops" in str(error)
    assert "step 2 'reply'" in str(error)


async def test_expect_timeout_names_step_and_what_was_awaited() -> None:
    """No matching message fails as expect_timeout naming step, predicate and skipped count."""

    async def noisy(ws: ServerConnection) -> None:
        async for _ in ws:
            await ws.send('{"type": "heartbeat"}')

    result, error = await script(
        noisy,
        steps=[
            {"send": "x"},
            {"name": "wait data", "expect": {"json": {"type": "data"}, "timeout": 0.2}},
        ],
    )
    assert error is not None
    assert error.reason is Reason.EXPECT_TIMEOUT
    text = str(error)
    assert "step 2 'wait data'" in text
    assert "within 0.2s" in text
    assert 'json {"type": "data"}' in text
    assert "skipped 1 message" in text
    assert [s.ok for s in result.steps] == [True, False]


async def test_check_deadline_cuts_expect_short() -> None:
    """The overall deadline bounds an expect with a longer timeout."""

    async def silent(ws: ServerConnection) -> None:
        await ws.wait_closed()

    started = time.perf_counter()
    _, error = await script(
        silent, timeout=0.2, steps=[{"expect": {"contains": "x", "timeout": 30}}]
    )
    assert error is not None
    assert error.reason is Reason.EXPECT_TIMEOUT
    assert "the check's timeout left" in str(error)
    assert time.perf_counter() - started < 5


async def test_fail_if_is_expect_mismatch() -> None:
    """A message matching fail_if fails the step as expect_mismatch, quoting it."""

    async def erring(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send('{"type": "error", "code": "no_such_channel"}')
        await ws.wait_closed()

    _, error = await script(
        erring,
        steps=[
            {"send": {"type": "subscribe"}},
            {
                "name": "sub",
                "expect": {"json": {"type": "subscribed"}, "fail_if": {"json": {"type": "error"}}},
            },
        ],
    )
    assert error is not None
    assert error.reason is Reason.EXPECT_MISMATCH
    assert "step 2 'sub'" in str(error)
    assert "no_such_channel" in str(error)


async def test_out_of_order_replies_match_by_id() -> None:
    """Expects pick their reply by content even when replies arrive in reverse order."""

    async def reverse(ws: ServerConnection) -> None:
        first, second = json.loads(await ws.recv()), json.loads(await ws.recv())
        for req in (second, first):
            await ws.send(json.dumps({"re": req["id"], "ok": True}))
        await ws.wait_closed()

    _, error = await script(
        reverse,
        steps=[
            {"send": {"id": "a"}},
            {"send": {"id": "b"}},
            {"expect": {"json": {"re": "a"}, "timeout": 1}},
            {"expect": {"json": {"re": "b"}, "timeout": 1}},
        ],
    )
    assert error is None


async def test_undefined_variable_is_expect_mismatch() -> None:
    """A send using a variable no step extracted fails as expect_mismatch naming it."""

    async def echo(ws: ServerConnection) -> None:
        async for m in ws:
            await ws.send(m)

    steps = TypeAdapter(tuple[Step, ...]).validate_python(
        [{"name": "use", "send": {"sid": "{{session}}"}}]
    )
    async with session(echo) as conn:
        with pytest.raises(ExpectMismatch) as info:
            await run_steps(
                conn,
                steps,
                result=new_result(),
                variables={},
                deadline=time.perf_counter() + 5,
                phase="steps",
            )
    assert "{{session}}" in str(info.value)
    assert "step 1 'use'" in str(info.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"steps": [{"send": "{{sesion}}"}]}, r"steps\[0\] uses \{\{sesion\}\}"),
        ({"steps": [{"send": "{{token}}"}]}, "set auth.token or auth.oauth2"),
        ({"steps": [{"expect": {"json": {"id": "{{id}}"}}}]}, "only inside app_ping"),
        (
            {"steps": [{"send": "{{later}}"}, {"expect": {"extract": {"later": "$.x"}}}]},
            r"steps\[0\] uses \{\{later\}\}",
        ),
    ],
    ids=["typo", "token-without-source", "id-outside-app-ping", "used-before-extracted"],
)
def test_undefined_variables_are_config_errors(fields: dict[str, Any], message: str) -> None:
    """A {{var}} no earlier step defines is rejected when the config is validated."""
    with pytest.raises(ValidationError, match=message):
        check(**fields)


async def test_binary_send_and_expect() -> None:
    """send_binary sends a binary frame; a binary expect matches the echo."""

    async def echo(ws: ServerConnection) -> None:
        async for m in ws:
            await ws.send("text noise")
            await ws.send(m)

    payload = base64.b64encode(b"\x00\x01hello").decode()
    _, error = await script(
        echo,
        steps=[{"send_binary": payload}, {"expect": {"binary": True, "contains": "hello"}}],
    )
    assert error is None


async def test_text_and_list_sends() -> None:
    """A string is sent verbatim, a list as compact JSON, with variables filled."""
    got: list[str] = []

    async def record(ws: ServerConnection) -> None:
        await ws.send('{"who": "me"}')
        async for m in ws:
            got.append(str(m))
            await ws.send("ack")

    _, error = await script(
        record,
        steps=[
            {"expect": {"extract": {"who": "$.who"}}},
            {"send": "hello {{who}}"},
            {"expect": {"contains": "ack"}},
            {"send": [1, "{{who}}"]},
            {"expect": {"contains": "ack"}},
        ],
    )
    assert error is None
    assert got == ["hello me", '[1,"me"]']


async def test_app_ping_uses_fresh_ids_and_records_rtts() -> None:
    """Each app ping carries a new id; replies with a stale id do not count."""
    ids: list[str] = []

    async def pong(ws: ServerConnection) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            ids.append(msg["id"])
            await ws.send(json.dumps({"type": "pong", "id": "stale"}))
            await ws.send(json.dumps({"type": "pong", "id": msg["id"]}))

    result, error = await script(pong, steps=[{"app_ping": {"count": 4}}])
    assert error is None
    assert len(set(ids)) == 4
    assert len(result.app_pings) == 4
    assert all(r > 0 for r in result.app_pings)
    assert result.phases["app_ping"] == pytest.approx(sum(result.app_pings) / 4)


async def test_app_ping_without_reply_is_expect_timeout() -> None:
    """An app ping that gets no pong fails as expect_timeout naming which ping."""

    async def once(ws: ServerConnection) -> None:
        msg = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "pong", "id": msg["id"]}))
        await ws.wait_closed()

    result, error = await script(
        once, steps=[{"name": "hb", "app_ping": {"count": 2, "timeout": 0.2}}]
    )
    assert error is not None
    assert error.reason is Reason.EXPECT_TIMEOUT
    assert "app ping 2 of 2" in str(error)
    assert "step 1 'hb'" in str(error)
    assert len(result.app_pings) == 1


async def test_custom_app_ping_protocol() -> None:
    """App ping send/expect are configurable (e.g. op codes and numeric ids)."""

    async def hb(ws: ServerConnection) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            await ws.send(json.dumps({"op": 11, "d": msg["d"]}))

    _, error = await script(
        hb,
        steps=[
            {
                "app_ping": {
                    "send": {"op": 1, "d": "{{id}}"},
                    "expect": {"json": {"op": 11, "d": "{{id}}"}},
                }
            }
        ],
    )
    assert error is None


async def test_sleep_past_deadline_is_timeout() -> None:
    """A sleep longer than the time left fails as timeout at once."""

    async def silent(ws: ServerConnection) -> None:
        await ws.wait_closed()

    _, error = await script(silent, timeout=0.1, steps=[{"name": "nap", "sleep": "10s"}])
    assert error is not None
    assert error.reason is Reason.TIMEOUT
    assert "step 1 'nap'" in str(error)


async def test_run_steps_times_named_phase() -> None:
    """run_steps times the list under the phase it is given (watch init, relay join)."""

    async def echo(ws: ServerConnection) -> None:
        async for m in ws:
            await ws.send(m)

    result = new_result()
    steps = check(steps=[{"send": "a"}, {"expect": {"contains": "a"}}, {"sleep": "10ms"}]).steps
    async with session(echo) as conn:
        await run_steps(
            conn,
            steps,
            result=result,
            variables={},
            deadline=time.perf_counter() + 5,
            phase="steps",
        )
    assert result.phases["steps"] >= 0.01
    assert [s.index for s in result.steps] == [0, 1, 2]


async def test_connection_lost_is_closed() -> None:
    """A server that drops the TCP connection mid-expect fails as closed."""

    async def drop(ws: ServerConnection) -> None:
        await ws.recv()
        ws.transport.abort()

    _, error = await script(drop, steps=[{"send": "x"}, {"expect": {"contains": "y"}}])
    assert error is not None
    assert error.reason is Reason.CLOSED
    assert "step 2" in str(error)


async def test_secret_token_masked_in_quoted_messages() -> None:
    """A server echoing the token in a fail_if message never leaks it."""

    async def echo_err(ws: ServerConnection) -> None:
        m = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "error", "echo": m["token"]}))
        await ws.wait_closed()

    _, error = await script(
        echo_err,
        {"token": "super-secret-xyz"},
        steps=[
            {"send": {"token": "{{token}}"}},
            {"expect": {"json": {"type": "ok"}, "fail_if": {"json": {"type": "error"}}}},
        ],
    )
    assert error is not None
    assert error.reason is Reason.EXPECT_MISMATCH
    assert "super-secret-xyz" not in str(error)


async def test_flood_of_heartbeats_before_reply() -> None:
    """Hundreds of heartbeats before the reply are skipped without stalling the reader."""

    async def flood(ws: ServerConnection) -> None:
        await ws.recv()
        for n in range(300):
            await ws.send(json.dumps({"type": "heartbeat", "n": n}))
        await ws.send(json.dumps({"type": "reply"}))
        await ws.wait_closed()

    _, error = await script(
        flood, steps=[{"send": "go"}, {"expect": {"json": {"type": "reply"}, "timeout": 3}}]
    )
    assert error is None


async def test_message_arriving_during_sleep_is_not_lost() -> None:
    """A reply that arrives while a sleep step runs is matched by the next expect."""

    async def quick(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send("early reply")
        await ws.wait_closed()

    _, error = await script(
        quick,
        steps=[{"send": "go"}, {"sleep": "50ms"}, {"expect": {"contains": "early", "timeout": 1}}],
    )
    assert error is None


async def test_skipped_message_is_matched_by_a_later_step() -> None:
    """A message skipped by one expect is still available to the next one."""

    async def two(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send('{"type": "b"}')
        await ws.send('{"type": "a"}')
        await ws.wait_closed()

    result, error = await script(
        two,
        steps=[
            {"send": "go"},
            {"expect": {"json": {"type": "a"}, "timeout": 1}},
            {"expect": {"json": {"type": "b"}, "timeout": 1}},
        ],
    )
    assert error is None
    assert [s.ok for s in result.steps] == [True, True, True]


async def test_first_message_read_early_is_timed_from_its_send() -> None:
    """A data message read by an earlier expect is timed from the send before it, not after."""

    async def feed(ws: ServerConnection) -> None:
        await ws.recv()  # subscribe
        await ws.send('{"type": "tick"}')
        await ws.send('{"type": "subscribed"}')
        await ws.recv()  # an unrelated request sent later
        await ws.send('{"type": "ack"}')
        await ws.wait_closed()

    result, error = await script(
        feed,
        steps=[
            {"send": {"type": "subscribe"}},
            {"expect": {"json": {"type": "subscribed"}, "timeout": 1}},
            {"send": {"type": "other"}},
            {"expect": {"json": {"type": "ack"}, "timeout": 1}},
            {"expect": {"json": {"type": "tick"}, "first_message": True, "timeout": 1}},
        ],
    )
    assert error is None
    # Timed from "other" (sent after the tick was read) it would be negative.
    assert 0 < result.phases["first_message"] < result.phases["steps"]


async def test_auth_token_is_a_masked_variable() -> None:
    """auth.token fills {{token}} in steps and is masked when a server echoes it."""

    async def echo_err(ws: ServerConnection) -> None:
        m = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "error", "bad": m["token"]}))
        await ws.wait_closed()

    _, error = await script(
        echo_err,
        auth={
            "token": "config-secret-123",
            "steps": [
                {"send": {"token": "{{token}}"}},
                {"expect": {"json": {"type": "ok"}, "fail_if": {"json": {"type": "error"}}}},
            ],
        },
    )
    assert error is not None
    assert error.reason is Reason.AUTH_REJECTED
    assert "config-secret-123" not in str(error)
    assert "REDACTED" in str(error)


def test_auth_token_and_oauth2_conflict() -> None:
    """auth.token and auth.oauth2 both provide {{token}}: a config error."""
    oauth2 = {"token_url": "http://127.0.0.1/t", "client_id": "c", "client_secret": "s"}
    with pytest.raises(ValueError, match="token and oauth2"):
        check(auth={"token": "t", "oauth2": oauth2})
