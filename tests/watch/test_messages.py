"""Message accounting: app-ping answers, matching, sequence gaps."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from agent.config.watch import AnswerConfig, WatchConfig
from agent.probes.script.matchers import Message
from agent.watch.messages import FeedState, answer_for


@pytest.mark.parametrize(
    ("answer", "ping", "expected"),
    [
        (
            {"match": {"json": {"type": "ping"}}, "reply": {"type": "pong", "id": "{{id}}"}},
            '{"type":"ping","id":7}',
            '{"type":"pong","id":"7"}',
        ),
        (
            {"match": {"json": {"type": "ping"}}, "reply": {"type": "pong"}, "echo": ["id", "ts"]},
            '{"type":"ping","id":7,"ts":[1,2]}',
            '{"type":"pong","id":7,"ts":[1,2]}',
        ),
        (
            {"match": {"regex": "^PING (?P<n>\\d+)$"}, "reply": "PONG {{n}}"},
            "PING 42",
            "PONG 42",
        ),
        (
            {"match": {"contains": "ping"}, "reply": "pong {{missing}}"},
            "ping",
            "pong {{missing}}",
        ),
        (
            {"match": {"json": {"op": "hb"}}, "reply": {"op": "hb", "session": "{{session}}"}},
            '{"op":"hb"}',
            '{"op":"hb","session":"s-1"}',
        ),
    ],
    ids=[
        "template-as-text",
        "echo-keeps-types",
        "text-regex-groups",
        "undefined-left",
        "init-vars",
    ],
)
def test_answer_for(answer: dict[str, Any], ping: str, expected: str) -> None:
    """The reply fills placeholders from the ping and init variables, echo keeps types."""
    cfg = AnswerConfig.model_validate(answer)
    assert answer_for(cfg, Message(ping), {"session": "s-1"}) == expected


def test_feed_state_counts_data_pings_and_gaps() -> None:
    """Pings are answered not counted; only matching messages are data; jumps are gaps."""
    watch = WatchConfig.model_validate(
        {
            "match": {"json": {"type": "tick"}},
            "sequence": "$.seq",
            "answer": {"match": {"json": {"type": "ping"}}, "reply": {"type": "pong"}},
            "min_rate": 1,
        }
    )
    feed = FeedState(watch)
    feed.connected({})
    out = [
        feed.on_message(json.dumps(m))
        for m in (
            {"type": "tick", "seq": 1},
            {"type": "ping"},
            {"type": "news"},
            {"type": "tick", "seq": 2},
            {"type": "tick", "seq": 5},  # 3 and 4 lost
            {"type": "tick", "seq": 1},  # restart: not a gap
            {"type": "tick", "seq": 2},
        )
    ]
    assert out[1] == (False, '{"type":"pong"}')
    assert out[2] == (False, None)
    assert (feed.messages, feed.matched, feed.answered) == (7, 5, 1)
    assert (feed.gaps, feed.missed) == (1, 2)
    assert feed.last_match is not None
    feed.connected({})
    feed.on_message(json.dumps({"type": "tick", "seq": 9}))  # new subscription
    assert feed.gaps == 1


def test_malformed_sequence_path_is_a_config_error() -> None:
    """watch.sequence is checked against the JSON path grammar when the config loads."""
    with pytest.raises(ValidationError, match=r"sequence\n.*JSON path 'seq' must start with"):
        WatchConfig.model_validate({"sequence": "seq"})


def test_binary_and_non_json_messages_are_safe() -> None:
    """Binary frames and non-JSON text never break matching or sequence tracking."""
    feed = FeedState(WatchConfig.model_validate({"sequence": "$.seq"}))
    assert feed.on_message(b"\x00\xff") == (True, None)
    assert feed.on_message("not json") == (True, None)
    assert feed.on_message('{"seq": "x"}') == (True, None)
    assert feed.gaps == 0


def test_protocol_messages_are_matched_and_sequenced() -> None:
    """A protocol's data is judged like a raw message; data-less ones never match a rule."""
    watch = WatchConfig.model_validate({"match": {"path": "$.n", "gt": 1}, "sequence": "$.n"})
    feed = FeedState(watch)
    feed.connected({})
    out = [
        feed.on_protocol_message(m)
        for m in (Message('{"n": 1}'), None, Message('{"n": 2}'), Message('{"n": 4}'))
    ]
    assert out == [False, False, True, True]
    assert (feed.messages, feed.matched, feed.gaps, feed.missed) == (4, 2, 1, 1)
    everything = FeedState(WatchConfig())
    assert everything.on_protocol_message(None)
    assert everything.matched == 1
