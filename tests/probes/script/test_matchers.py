"""Message predicates, JSON paths, extraction and {{var}} substitution."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.config.steps import Expect, Matcher, validate_path
from agent.probes.script.matchers import (
    ExtractFailed,
    UndefinedVariable,
    describe,
    extract,
    matches,
    resolve_path,
    substitute,
)

TICK = '{"type": "tick", "data": {"price": "101.5", "items": [{"id": 7}], "ok": true}}'

MATCH_CASES: list[tuple[str, dict[str, Any], str | bytes, bool]] = [
    ("json-subset", {"json": {"type": "tick"}}, TICK, True),
    ("json-nested-subset", {"json": {"data": {"items": [{"id": 7}]}}}, TICK, True),
    ("json-wrong-value", {"json": {"type": "tock"}}, TICK, False),
    ("json-missing-key", {"json": {"channel": "x"}}, TICK, False),
    ("json-list-length-differs", {"json": {"data": {"items": []}}}, TICK, False),
    ("json-bool-not-int", {"json": {"data": {"ok": 1}}}, TICK, False),
    ("json-on-non-json", {"json": {"type": "tick"}}, "hello", False),
    ("path-exists", {"path": "$.data.items[0].id"}, TICK, True),
    ("path-missing", {"path": "$.data.items[3].id"}, TICK, False),
    ("path-absent-wanted", {"path": "$.error", "exists": False}, TICK, True),
    ("path-absent-but-present", {"path": "$.type", "exists": False}, TICK, False),
    ("path-gt-string-number", {"path": "$.data.price", "gt": 100}, TICK, True),
    ("path-lt-fails", {"path": "$.data.price", "lt": 100}, TICK, False),
    ("path-ge-equal", {"path": "$.data.items[0].id", "ge": 7}, TICK, True),
    ("path-le-equal", {"path": "$.data.items[0].id", "le": 7}, TICK, True),
    ("path-eq-number-as-text", {"path": "$.data.items[0].id", "eq": "7"}, TICK, True),
    ("path-ne", {"path": "$.type", "ne": "tick"}, TICK, False),
    ("path-gt-on-object", {"path": "$.data", "gt": 1}, TICK, False),
    ("path-gt-missing", {"path": "$.nope", "gt": 1}, TICK, False),
    ("path-bracket-key", {"path": "$['data'][\"price\"]", "eq": "101.5"}, TICK, True),
    ("regex", {"regex": r'"price":\s*"\d+\.\d"'}, TICK, True),
    ("regex-no-match", {"regex": r"^error"}, TICK, False),
    ("contains", {"contains": "tick"}, TICK, True),
    ("contains-missing", {"contains": "pong"}, TICK, False),
    ("all-must-hold", {"json": {"type": "tick"}, "contains": "pong"}, TICK, False),
    ("binary-only-rejects-text", {"binary": True}, "abc", False),
    ("binary-contains", {"binary": True, "contains": "abc"}, b"\x00abc\xff", True),
    ("text-only-rejects-binary", {"binary": False}, b"abc", False),
    ("json-in-binary-frame", {"json": {"a": 1}}, b'{"a": 1}', True),
    ("empty-matches-anything", {}, "x", True),
]


@pytest.mark.parametrize(
    ("spec", "message", "expected"),
    [c[1:] for c in MATCH_CASES],
    ids=[c[0] for c in MATCH_CASES],
)
def test_matches(spec: dict[str, Any], message: str | bytes, expected: bool) -> None:
    """Each predicate accepts exactly the messages it describes."""
    assert matches(Matcher.model_validate(spec), message, {}) is expected


def test_variables_fill_matchers() -> None:
    """{{var}} in json, contains and comparisons takes the variable's value."""
    m = Matcher.model_validate(
        {"json": {"id": "{{id}}"}, "contains": "{{id}}", "path": "$.n", "eq": "{{n}}"}
    )
    assert matches(m, '{"id": "a1", "n": 5}', {"id": "a1", "n": "5"})
    assert not matches(m, '{"id": "a2", "n": 5}', {"id": "a1", "n": "5"})


def test_variables_in_regex_are_literal() -> None:
    """A variable substituted into a regex matches literally, not as a pattern."""
    m = Matcher.model_validate({"regex": "id={{id}}$"})
    assert matches(m, "id=a.b", {"id": "a.b"})
    assert not matches(m, "id=aXb", {"id": "a.b"})


def test_undefined_variable_raises() -> None:
    """A placeholder with no value raises UndefinedVariable naming it."""
    with pytest.raises(UndefinedVariable, match=r"\{\{session\}\}"):
        matches(Matcher.model_validate({"contains": "{{session}}"}), "x", {})


def test_builtin_variables_are_fresh() -> None:
    """{{uuid}} is generated at each substitution when no step defined it."""
    a, b = substitute("{{uuid}}", {}), substitute("{{uuid}}", {})
    assert len(a) == 32
    assert a != b
    assert substitute("{{ uuid }}", {"uuid": "mine"}) == "mine"


def test_substitute_recurses_into_json() -> None:
    """Keys, nested values and list items are filled; non-strings are untouched."""
    out = substitute({"k{{a}}": ["{{a}}", 1, {"x": "{{b}}"}]}, {"a": "1", "b": "2"})
    assert out == {"k1": ["1", 1, {"x": "2"}]}


def test_extract_paths_and_regex_groups() -> None:
    """extract takes JSON paths as text and named regex groups."""
    expect = Expect.model_validate(
        {
            "regex": r'"type": "(?P<kind>\w+)"',
            "extract": {"price": "$.data.price", "item": "$.data.items[0]", "ok": "$.data.ok"},
        }
    )
    got = extract(expect.extract, expect, TICK, {})
    assert got == {"kind": "tick", "price": "101.5", "item": '{"id":7}', "ok": "true"}


def test_extract_missing_path_fails() -> None:
    """A path absent from the matched message raises ExtractFailed naming it."""
    expect = Expect.model_validate({"extract": {"sid": "$.session"}})
    with pytest.raises(ExtractFailed, match=r"\$\.session"):
        extract(expect.extract, expect, TICK, {})


PATH_CASES = [
    ("root", "$", ()),
    ("dotted", "$.a.b", ("a", "b")),
    ("index", "$.a[0][12]", ("a", 0, 12)),
    ("quoted", "$['a b'][\"c.d\"]", ("a b", "c.d")),
]


@pytest.mark.parametrize(
    ("path", "segments"), [c[1:] for c in PATH_CASES], ids=[c[0] for c in PATH_CASES]
)
def test_path_grammar(path: str, segments: tuple[Any, ...]) -> None:
    """JSON paths parse into keys and indexes."""
    assert validate_path(path) == segments


@pytest.mark.parametrize("path", ["a.b", "$.a[", "$..a", "$.a[-1]", "$ .a"], ids=str)
def test_bad_paths_are_config_errors(path: str) -> None:
    """A malformed JSON path is rejected when the config is validated."""
    with pytest.raises(ValidationError, match="JSON path"):
        Matcher.model_validate({"path": path})


def test_comparison_without_path_is_config_error() -> None:
    """gt/eq/... without a path is rejected at validation."""
    with pytest.raises(ValidationError, match="set path too"):
        Matcher.model_validate({"gt": 1})


def test_bad_regex_is_config_error() -> None:
    """A regex that does not compile is rejected at validation."""
    with pytest.raises(ValidationError, match="does not compile"):
        Matcher.model_validate({"regex": "(unclosed"})


def test_resolve_path_wrong_type() -> None:
    """Indexing an object or keying a list is 'not found', not a crash."""
    with pytest.raises(KeyError):
        resolve_path({"a": {"b": 1}}, "$.a[0]")
    with pytest.raises(KeyError):
        resolve_path({"a": [1]}, "$.a.b")


def test_describe_names_the_predicate() -> None:
    """Failure messages describe what was awaited."""
    m = Matcher.model_validate({"json": {"type": "pong"}, "path": "$.n", "gt": 2})
    assert describe(m) == 'json {"type": "pong"}, $.n gt 2'


# "{" excluded: "{{name}}" in a predicate is a run-time variable, not a literal.
TEXT = st.text(alphabet=st.characters(blacklist_characters="{"), max_size=8)
JSON_SCALARS = st.none() | st.booleans() | st.integers() | TEXT
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
KEYS = st.lists(
    st.integers(0, 3) | st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True),
    min_size=1,
    max_size=4,
)


@given(st.dictionaries(TEXT, JSON_VALUES, max_size=4))
def test_every_object_matches_itself(document: dict[str, Any]) -> None:
    """JSON subset equality is reflexive for any object a server may send."""
    assert matches(Matcher.model_validate({"json": document}), json.dumps(document), {})


@given(KEYS, JSON_SCALARS)
def test_built_paths_resolve_to_their_leaf(keys: list[str | int], leaf: Any) -> None:
    """A document built along a path resolves that path to the leaf, via its text form."""
    document: Any = leaf
    for key in reversed(keys):
        document = [None] * key + [document] if isinstance(key, int) else {key: document}
    path = "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys)
    assert resolve_path(json.loads(json.dumps(document)), path) == leaf
