"""agent.config._env: ${VAR} and ${VAR:-default} expansion in string values."""

from __future__ import annotations

import pytest

from agent.config._env import expand_env
from agent.config._issues import ConfigIssue, Located

ENV = {"TOKEN": "t0k3n", "EMPTY": "", "PORT": "8765"}
WHERE = Located("w.yaml", {("v",): 3})

CASES = [
    ("plain", "no refs here", "no refs here", []),
    ("whole", "${TOKEN}", "t0k3n", []),
    ("embedded", "ws://h:${PORT}/x", "ws://h:8765/x", []),
    ("default-unset", "${NOPE:-fallback}", "fallback", []),
    ("default-empty", "${EMPTY:-fallback}", "fallback", []),
    ("empty-no-default", "${EMPTY}", "", []),
    ("empty-default", "${NOPE:-}", "", []),
    ("escaped", "$${TOKEN} costs $5", "${TOKEN} costs $5", []),
    ("templates-untouched", "{{token}}", "{{token}}", []),
    (
        "unset",
        "Bearer ${NOPE}",
        "Bearer ${NOPE}",
        ["w.yaml:3: v: environment variable NOPE is not set (or give a default: ${NOPE:-default})"],
    ),
    (
        "bad-name",
        "${1BAD}",
        "${1BAD}",
        ["w.yaml:3: v: invalid reference ${1BAD}: use ${NAME} or ${NAME:-default}"],
    ),
    (
        "unterminated",
        "x${TOKEN",
        "x${TOKEN",
        ["w.yaml:3: v: unterminated ${ (write $${ for a literal ${)"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected", "problems"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_expansion(text: str, expected: str, problems: list[str]) -> None:
    """Each reference form expands as documented; problems name the variable and line."""
    issues: list[ConfigIssue] = []
    substituted: dict[str, str] = {}
    out = expand_env({"v": text, "n": 5}, WHERE, issues, environ=ENV, substituted=substituted)
    assert out == {"v": expected, "n": 5}
    assert [str(i) for i in issues] == problems
    if expected != text:
        assert substituted == {expected: text}


def test_keys_and_nested_values() -> None:
    """Values in nested lists and mappings expand; keys are left as written."""
    issues: list[ConfigIssue] = []
    data = {"${TOKEN}": [{"a": "${PORT}"}, "${TOKEN}"]}
    out = expand_env(data, WHERE, issues, environ=ENV)
    assert out == {"${TOKEN}": [{"a": "8765"}, "t0k3n"]}
    assert issues == []
