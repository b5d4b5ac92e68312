"""Receive the next message matching a predicate, skipping (and keeping) the others.

:func:`wait_for_match` is the one place scripted steps, app pings and relay receivers
read messages: it enforces the time limit, applies ``fail_if``, and keeps skipped
messages so a later wait on the same connection can still match them (replies that
arrive out of order). Failure messages quote a received message only shortened and
with secret variables masked.

Exceptions raised (from :mod:`agent.probes.errors`)::

    ProbeError
     ├── ExpectTimeout      the limit passed first
     ├── ExpectMismatch     a message matched fail_if, or a {{variable}} is undefined
     └── (any other)        the connection failed or closed, via map_errors
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection

from agent.config.steps import Matcher
from agent.probes.errors import ExpectMismatch, ExpectTimeout, map_errors
from agent.probes.script.matchers import Message, UndefinedVariable, describe, matches
from agent.redact import scrub

__all__ = ["SECRET_VARIABLES", "Match", "excerpt", "wait_for_match"]

#: Variables whose values are credentials: masked wherever a message is quoted.
SECRET_VARIABLES: frozenset[str] = frozenset({"token"})
#: Longest excerpt of a received message quoted in a failure message.
_EXCERPT_CHARS = 160


def _secrets(variables: dict[str, str]) -> tuple[str, ...]:
    return tuple(v for k, v in variables.items() if k in SECRET_VARIABLES and v)


def excerpt(message: Message, variables: dict[str, str]) -> str:
    """A short, secret-free rendering of ``message`` for failure messages."""
    if message.binary:
        return f"<binary, {len(message.data)} bytes>"
    text = scrub(message.text, _secrets(variables))
    if len(text) > _EXCERPT_CHARS:
        text = text[: _EXCERPT_CHARS - 1] + "…"
    return repr(text)


@dataclass(slots=True)
class Match:
    """A message that satisfied an expect, and when it arrived."""

    message: Message
    at: float  # time.perf_counter() when it was read off the connection
    skipped: int


# Messages an expect skipped stay available to later expects on the same connection,
# so replies arriving out of order (the answer to request B before the answer to A)
# still match. Bounded: heartbeats must not grow it without limit.
_BACKLOG_MESSAGES = 256
_backlogs: weakref.WeakKeyDictionary[ClientConnection, deque[tuple[Message, float]]] = (
    weakref.WeakKeyDictionary()
)


def _backlog(conn: ClientConnection) -> deque[tuple[Message, float]]:
    backlog = _backlogs.get(conn)
    if backlog is None:
        backlog = _backlogs[conn] = deque(maxlen=_BACKLOG_MESSAGES)
    return backlog


async def wait_for_match(
    conn: ClientConnection,
    matcher: Matcher,
    *,
    variables: dict[str, str],
    until: float,
    fail_if: Matcher | None = None,
    phase: str = "steps",
) -> Match:
    """Return the first message matching ``matcher``, skipping the others.

    Messages skipped by earlier waits on ``conn`` are considered first (oldest first),
    then new ones are read. ``fail_if`` applies to newly read messages only: an old
    message was already judged by the step that skipped it.

    Args:
        conn: the open connection.
        matcher: what the awaited message must satisfy.
        variables: values for ``{{name}}`` placeholders in the matchers.
        until: absolute ``time.perf_counter()`` limit.
        fail_if: a message matching this fails at once.
        phase: the phase name given to the error boundary.

    Returns:
        The first matching message.

    Raises:
        ExpectTimeout: ``until`` passed first (``detail`` says what was awaited).
        ExpectMismatch: a message matched ``fail_if``, or a placeholder is undefined.
        ProbeError: the connection failed or closed (from :func:`map_errors`).
    """
    backlog = _backlog(conn)
    try:
        for i, (old, at) in enumerate(backlog):
            if matches(matcher, old, variables):
                del backlog[i]
                return Match(old, at, 0)
        skipped = 0
        last: Message | None = None
        while True:
            remaining = until - time.perf_counter()
            if remaining <= 0:
                detail = f"wanted {describe(matcher)}; skipped {skipped} message(s)"
                if last is not None:
                    detail += f", last {excerpt(last, variables)}"
                raise ExpectTimeout(detail)
            try:
                async with asyncio.timeout(remaining):
                    with map_errors(phase):
                        data = await conn.recv()
            except TimeoutError:
                continue  # the loop head reports the timeout with its detail
            message = Message(data)
            at = time.perf_counter()
            if fail_if is not None and matches(fail_if, message, variables):
                raise ExpectMismatch(
                    f"message matched fail_if ({describe(fail_if)}): {excerpt(message, variables)}"
                )
            if matches(matcher, message, variables):
                return Match(message, at, skipped)
            skipped += 1
            last = message
            backlog.append((message, at))
    except UndefinedVariable as exc:
        raise ExpectMismatch(str(exc)) from None
