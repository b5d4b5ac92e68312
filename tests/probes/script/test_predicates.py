"""Matchers at their edges: each comparison both ways, absent values, failure texts."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from agent.config.steps import Expect, Matcher
from agent.probes.script.matchers import (
    ExtractFailed,
    Message,
    UndefinedVariable,
    describe,
    extract,
    matches,
    substitute,
)

DOC = json.dumps(
    {
        "n": 5,
        "s": "banana",
        "ok": True,
        "nothing": None,
        "items": [{"id": 7, "tag": "a"}, 2],
        "obj": {"k": 1},
        "text": "5",
    }
)

CASES: list[tuple[str, dict[str, Any], str | bytes, bool]] = [
    ("eq-number", {"path": "$.n", "eq": 5}, DOC, True),
    ("eq-other-number", {"path": "$.n", "eq": 7}, DOC, False),
    ("eq-object", {"path": "$.obj", "eq": {"k": 1}}, DOC, True),
    ("eq-bool-is-not-one", {"path": "$.ok", "eq": 1}, DOC, False),
    ("eq-bool", {"path": "$.ok", "eq": True}, DOC, True),
    ("eq-bool-as-text", {"path": "$.ok", "eq": "true"}, DOC, True),
    ("eq-number-is-not-text", {"path": "$.text", "eq": 5}, DOC, False),
    ("eq-text-is-not-object", {"path": "$.obj", "eq": '{"k":1}'}, DOC, False),
    ("ne-different", {"path": "$.n", "ne": 7}, DOC, True),
    ("ne-same", {"path": "$.n", "ne": 5}, DOC, False),
    ("gt-below", {"path": "$.n", "gt": 4}, DOC, True),
    ("gt-equal", {"path": "$.n", "gt": 5}, DOC, False),
    ("ge-equal", {"path": "$.n", "ge": 5}, DOC, True),
    ("ge-above", {"path": "$.n", "ge": 6}, DOC, False),
    ("lt-above", {"path": "$.n", "lt": 6}, DOC, True),
    ("lt-equal", {"path": "$.n", "lt": 5}, DOC, False),
    ("le-equal", {"path": "$.n", "le": 5}, DOC, True),
    ("le-below", {"path": "$.n", "le": 4}, DOC, False),
    ("number-as-text-orders", {"path": "$.text", "lt": 10}, DOC, True),
    ("strings-order-gt", {"path": "$.s", "gt": "apple"}, DOC, True),
    ("strings-order-lt", {"path": "$.s", "lt": "apple"}, DOC, False),
    ("strings-order-ge-equal", {"path": "$.s", "ge": "banana"}, DOC, True),
    ("strings-order-le", {"path": "$.s", "le": "cherry"}, DOC, True),
    ("string-never-orders-with-number", {"path": "$.s", "gt": 1}, DOC, False),
    ("string-never-orders-with-number-lt", {"path": "$.s", "lt": 1}, DOC, False),
    ("bool-never-orders", {"path": "$.ok", "gt": 0}, DOC, False),
    ("bool-never-orders-lt", {"path": "$.ok", "lt": 2}, DOC, False),
    ("null-never-orders", {"path": "$.nothing", "lt": 1}, DOC, False),
    ("object-never-orders", {"path": "$.obj", "le": 1}, DOC, False),
    ("path-on-non-json", {"path": "$.n", "ne": 1}, "n=5", False),
    ("absent-on-non-json", {"path": "$.n", "exists": False}, "n=5", False),
    ("exists-present", {"path": "$.n", "exists": True}, DOC, True),
    ("exists-missing", {"path": "$.m", "exists": True}, DOC, False),
    ("absent-missing", {"path": "$.m", "exists": False}, DOC, True),
    ("absent-present", {"path": "$.n", "exists": False}, DOC, False),
    ("absent-with-comparison", {"path": "$.m", "exists": False, "ne": 1}, DOC, False),
    ("exists-with-comparison", {"path": "$.n", "exists": True, "eq": 5}, DOC, True),
    ("null-value-exists", {"path": "$.nothing"}, DOC, True),
    ("index-at-length", {"path": "$.items[2]"}, DOC, False),
    ("index-last", {"path": "$.items[1]", "eq": 2}, DOC, True),
    ("key-into-number", {"path": "$.n.x"}, DOC, False),
    ("index-into-string", {"path": "$.s[0]"}, DOC, False),
    ("index-into-object", {"path": "$.obj[0]"}, DOC, False),
    ("json-list-element-subset", {"json": {"items": [{"id": 7}, 2]}}, DOC, True),
    ("json-list-element-differs", {"json": {"items": [{"id": 8}, 2]}}, DOC, False),
    ("json-list-order-matters", {"json": {"items": [2, {"id": 7}]}}, DOC, False),
    ("json-list-is-not-object", {"json": {"items": {"id": 7}}}, DOC, False),
    ("json-object-is-not-list", {"json": {"obj": [1]}}, DOC, False),
    ("json-text-is-not-object", {"json": {"obj": "k"}}, DOC, False),
    ("json-text-matches-number", {"json": {"n": "5"}}, DOC, True),
    ("json-null", {"json": {"nothing": None}}, DOC, True),
    ("binary-text-only", {"binary": False}, "abc", True),
    ("binary-only", {"binary": True}, b"abc", True),
    ("contains-in-bad-utf8", {"contains": "abc"}, b"\xffabc", True),
    ("regex-on-binary", {"regex": "^.abc$"}, b"\xffabc", True),
]


@pytest.mark.parametrize(
    ("spec", "message", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_predicate(spec: dict[str, Any], message: str | bytes, expected: bool) -> None:
    """Each predicate holds exactly where it says, on both sides of every boundary."""
    assert matches(Matcher.model_validate(spec), message, {}) is expected


def test_message_decodes_once() -> None:
    """A message is text or binary, and parses as JSON when it is JSON."""
    text, binary, broken = Message('{"a": 1}'), Message(b'{"a": 1}'), Message(b"\xff{")
    assert (text.binary, binary.binary) == (False, True)
    assert text.json == binary.json == {"a": 1}
    assert (text.is_json, broken.is_json, Message("[").is_json) == (True, False, False)
    assert broken.text == "\ufffd{"
    assert repr(text) == "Message(data='{\"a\": 1}')"  # the parsed cache is not shown


def test_time_builtins_are_now() -> None:
    """{{now}} is Unix seconds and {{now_ms}} Unix milliseconds at substitution time."""
    before = time.time()
    now, now_ms = int(substitute("{{now}}", {})), int(substitute("{{now_ms}}", {}))
    after = time.time()
    assert int(before) <= now <= after
    assert int(before * 1000) <= now_ms <= after * 1000


def test_step_variable_shadows_builtin() -> None:
    """A variable set by a step wins over a built-in of the same name."""
    assert substitute("t={{now}}", {"now": "then"}) == "t=then"


def test_substitute_regex_escapes_inside_json() -> None:
    """With regex=True values inside lists and objects are escaped, keys never are."""
    out = substitute({"{{k}}": ["{{v}}", {"x": "{{v}}"}]}, {"k": "a.b", "v": "1+1"}, regex=True)
    assert out == {"a.b": ["1\\+1", {"x": "1\\+1"}]}
    assert substitute(("{{v}}",), {"v": "x"}) == ["x"]


def test_failure_texts_name_the_variable_and_path() -> None:
    """Run-time errors say which variable or path and what to do."""
    assert str(UndefinedVariable("sid")) == (
        "variable {{sid}} is not defined (extract it in an earlier step)"
    )
    failed = ExtractFailed("sid", "$.session")
    assert str(failed) == "cannot extract 'sid': $.session not found in the matched message"
    assert (failed.args, UndefinedVariable("sid").args) == (("sid", "$.session"), ("sid",))


def test_extract_objects_as_compact_json() -> None:
    """Objects and lists are extracted as compact JSON, scalars as their text."""
    expect = Expect.model_validate(
        {"extract": {"obj": "$.obj", "item": "$.items[0]", "n": "$.n", "nothing": "$.nothing"}}
    )
    assert extract(expect.extract, expect, DOC, {}) == {
        "obj": '{"k":1}',
        "item": '{"id":7,"tag":"a"}',
        "n": "5",
        "nothing": "null",
    }


def test_extract_skips_unmatched_optional_groups() -> None:
    """Named groups that took no part in the match are not variables."""
    expect = Expect.model_validate({"regex": "(?P<a>x)?(?P<b>y)"})
    assert extract({}, expect, "y", {}) == {"b": "y"}
    assert extract({}, Expect.model_validate({"regex": "z(?P<c>q)"}), "y", {}) == {}


@pytest.mark.parametrize("path", ["$.session", "$"], ids=["key", "root"])
def test_extract_from_non_json_fails(path: str) -> None:
    """No path, not even the root, can be extracted from a message that is not JSON."""
    expect = Expect.model_validate({"extract": {"sid": path}})
    with pytest.raises(ExtractFailed, match="sid"):
        extract(expect.extract, expect, "session=1", {})


def test_undefined_variable_in_comparison() -> None:
    """A placeholder in a comparison is filled at match time, and must exist."""
    m = Matcher.model_validate({"path": "$.n", "ge": "{{low}}"})
    assert matches(m, DOC, {"low": "5"})
    assert not matches(m, DOC, {"low": "6"})
    with pytest.raises(UndefinedVariable):
        matches(m, DOC, {})


LONG = "a" * 200

DESCRIBE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("empty", {}, "any message"),
    ("binary", {"binary": True}, "binary"),
    ("text", {"binary": False}, "text"),
    ("path-alone", {"path": "$.a"}, "$.a exists"),
    ("path-exists", {"path": "$.a", "exists": True}, "$.a exists"),
    ("path-absent", {"path": "$.a", "exists": False}, "$.a absent"),
    ("two-comparisons", {"path": "$.a", "gt": 0, "lt": 10.5}, "$.a gt 0 and lt 10.5"),
    ("comparison-and-exists", {"path": "$.a", "ne": 1, "exists": True}, "$.a ne 1 and exists"),
    ("text-operand", {"path": "$.a", "eq": "x"}, "$.a eq 'x'"),
    ("bool-operand", {"path": "$.a", "eq": True}, "$.a eq true"),
    ("object-operand", {"path": "$.a", "eq": {"k": [1]}}, '$.a eq {"k": [1]}'),
    ("regex", {"regex": "^a+$"}, "regex /^a+$/"),
    ("contains", {"contains": "abc"}, "contains 'abc'"),
    ("json", {"json": {"type": "pong"}}, 'json {"type": "pong"}'),
    ("contains-at-limit", {"contains": "b" * 120}, "contains " + repr("b" * 120)),
    ("contains-long", {"contains": LONG}, "contains " + repr("a" * 119 + "…")),
    ("regex-long", {"regex": LONG}, "regex /" + "a" * 119 + "…/"),
    (
        "everything-in-order",
        {"binary": False, "json": {"a": 1}, "path": "$.b", "regex": "r", "contains": "c"},
        "text, json {\"a\": 1}, $.b exists, regex /r/, contains 'c'",
    ),
]


@pytest.mark.parametrize(
    ("spec", "text"), [c[1:] for c in DESCRIBE_CASES], ids=[c[0] for c in DESCRIBE_CASES]
)
def test_describe(spec: dict[str, Any], text: str) -> None:
    """Failure messages describe what was awaited, as it was written, shortened."""
    assert describe(Matcher.model_validate(spec)) == text
