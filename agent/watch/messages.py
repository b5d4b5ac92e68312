"""What the messages of a held session say: data, app pings to answer, sequence gaps.

:class:`FeedState` accounts every message a session reads. It is synchronous and
does no I/O: the session's reader sends the reply it returns. A message is parsed
(lazily, once) only when a rule needs it, so a plain feed costs two counters and two
clock readings per message.

Nothing here raises: a matcher naming an undefined ``{{variable}}`` simply does not
match, and a reply with one is sent unfilled.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from agent.config.steps import Matcher
from agent.config.watch import AnswerConfig, WatchConfig
from agent.probes.script.matchers import (
    Message,
    UndefinedVariable,
    extract,
    matches,
    resolve_path,
    substitute,
)
from agent.watch.liveness import RateWindow

__all__ = ["FeedState", "answer_for"]


def answer_for(answer: AnswerConfig, msg: Message, variables: dict[str, str]) -> str:
    """The reply to one application-level ping.

    ``{{name}}`` placeholders in ``answer.reply`` are filled from the session's
    variables, the ping's named regex groups and its top-level JSON fields (as text);
    ``answer.echo`` fields are copied with their JSON type.

    Args:
        answer: The ``watch.answer`` rule whose matcher accepted ``msg``.
        msg: The ping.
        variables: The session's variables (from its init steps).

    Returns:
        The text frame to send: ``reply`` as is when it is a string, else compact JSON.
    """
    values = dict(variables)
    with contextlib.suppress(ValueError):
        values.update(extract({}, answer.match, msg, values))
    fields = msg.json if msg.is_json and isinstance(msg.json, dict) else {}
    values.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()})
    try:
        reply = substitute(answer.reply, values)
    except UndefinedVariable:
        reply = answer.reply
    if isinstance(reply, dict) and answer.echo:
        reply = {**reply, **{k: fields[k] for k in answer.echo if k in fields}}
    return reply if isinstance(reply, str) else json.dumps(reply, separators=(",", ":"))


class FeedState:
    """Counters and clocks of one session's messages, across its reconnects.

    Args:
        watch: The check's watch settings.
    """

    __slots__ = (
        "answered",
        "gaps",
        "last_match",
        "last_message_ts",
        "last_seq",
        "matched",
        "messages",
        "missed",
        "rate",
        "variables",
        "watch",
    )

    def __init__(self, watch: WatchConfig) -> None:
        self.watch = watch
        self.variables: dict[str, str] = {}
        self.messages = 0
        self.matched = 0
        self.answered = 0
        self.gaps = 0
        self.missed = 0
        self.last_seq: int | None = None
        self.last_message_ts: float | None = None
        #: perf_counter time of the last matching message, any connection.
        self.last_match: float | None = None
        self.rate = RateWindow(watch.rate_window) if watch.min_rate is not None else None

    def connected(self, variables: dict[str, str]) -> None:
        """A new connection is initialised: its variables apply, its counter restarts."""
        self.variables = variables
        self.last_seq = None

    def on_message(self, data: str | bytes) -> tuple[bool, str | None]:
        """Account one message.

        Args:
            data: The frame's payload.

        Returns:
            (whether it is a matching data message, the reply to send or None).
        """
        self.messages += 1
        self.last_message_ts = time.time()
        watch = self.watch
        msg: Message | None = None
        if watch.answer is not None or watch.match is not None or watch.sequence is not None:
            msg = Message(data)
            if watch.answer is not None and self._matches(watch.answer.match, msg):
                self.answered += 1
                return False, answer_for(watch.answer, msg, self.variables)
        return self._data(msg), None

    def on_protocol_message(self, msg: Message | None) -> bool:
        """Account one message of an application protocol's subscriptions.

        Args:
            msg: Its data (a Socket.IO event's arguments, a GraphQL ``next`` payload,
                a STOMP body, an MQTT payload), None when it has none.

        Returns:
            Whether it is a matching data message.
        """
        self.messages += 1
        self.last_message_ts = time.time()
        if msg is None and self.watch.match is not None:
            return False
        return self._data(msg)

    def _data(self, msg: Message | None) -> bool:
        """Judge one data message (``msg`` is None when no rule needs it); count a match."""
        watch = self.watch
        if msg is not None:
            if watch.match is not None and not self._matches(watch.match, msg):
                return False
            if watch.sequence is not None:
                self._track_sequence(watch.sequence, msg)
        now = time.perf_counter()
        self.matched += 1
        self.last_match = now
        if self.rate is not None:
            self.rate.add(now)
        return True

    def _matches(self, matcher: Matcher, msg: Message) -> bool:
        try:
            return matches(matcher, msg, self.variables)
        except UndefinedVariable:
            return False

    def _track_sequence(self, path: str, msg: Message) -> None:
        if not msg.is_json:
            return
        try:
            value: Any = resolve_path(msg.json, path)
        except KeyError:
            return
        if not isinstance(value, int) or isinstance(value, bool):
            return
        last, self.last_seq = self.last_seq, value
        # Backwards is a restart (new subscription), not a loss.
        if last is not None and value > last + 1:
            self.gaps += 1
            self.missed += value - last - 1
