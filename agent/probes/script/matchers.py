"""Message predicates and ``{{var}}`` substitution for scripted steps.

Pure functions, no I/O: :func:`matches` decides whether one received message satisfies a
:class:`~agent.config.steps.Matcher`, :func:`extract` pulls variables out of a matched
message, :func:`substitute` fills ``{{name}}`` placeholders in what is sent or expected.

Exceptions::

    ValueError
     ├── UndefinedVariable   a {{name}} with no value at run time
     └── ExtractFailed       an extract path missing from the matched message
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.config.steps import COMPARISON_OPS, Matcher, validate_path

__all__ = [
    "BUILTIN_VARIABLES",
    "ExtractFailed",
    "Message",
    "UndefinedVariable",
    "describe",
    "extract",
    "matches",
    "resolve_path",
    "substitute",
]

_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_MISSING: Any = object()
#: Longest excerpt of a message quoted in a failure message.
_EXCERPT_CHARS = 120

#: Variables computed fresh at every use when no step set them.
BUILTIN_VARIABLES: dict[str, Any] = {
    "uuid": lambda: uuid.uuid4().hex,
    "now": lambda: str(int(time.time())),
    "now_ms": lambda: str(int(time.time() * 1000)),
}


class UndefinedVariable(ValueError):
    """A ``{{name}}`` placeholder has no value: no earlier step extracted it."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"variable {{{{{self.name}}}}} is not defined (extract it in an earlier step)"


class ExtractFailed(ValueError):
    """An ``extract`` path points at nothing in the matched message."""

    def __init__(self, variable: str, path: str) -> None:
        super().__init__(variable, path)
        self.variable = variable
        self.path = path

    def __str__(self) -> str:
        return f"cannot extract {self.variable!r}: {self.path} not found in the matched message"


@dataclass(slots=True)
class Message:
    """One received message, decoded lazily (text, JSON) for the matchers."""

    data: str | bytes
    _json: Any = field(default=_MISSING, repr=False)

    @property
    def binary(self) -> bool:
        """True for a binary frame."""
        return isinstance(self.data, bytes)

    @property
    def text(self) -> str:
        """The payload as text (binary frames decoded as UTF-8, bad bytes replaced)."""
        if isinstance(self.data, bytes):
            return self.data.decode("utf-8", errors="replace")
        return self.data

    @property
    def json(self) -> Any:
        """The payload parsed as JSON, or the module's missing marker when it is not JSON."""
        if self._json is _MISSING:
            try:
                self._json = json.loads(self.data)
            except (ValueError, UnicodeDecodeError):
                self._json = _NOT_JSON
        return self._json

    @property
    def is_json(self) -> bool:
        """True when the payload parses as JSON."""
        return self.json is not _NOT_JSON


_NOT_JSON: Any = object()


def _lookup(name: str, variables: Mapping[str, str]) -> str:
    if name in variables:
        return variables[name]
    if name in BUILTIN_VARIABLES:
        value: str = BUILTIN_VARIABLES[name]()
        return value
    raise UndefinedVariable(name)


def substitute(value: Any, variables: Mapping[str, str], *, regex: bool = False) -> Any:
    """Replace ``{{name}}`` in every string inside ``value`` (recursing into JSON).

    Args:
        value: a string, number, mapping or list from the config.
        variables: run-time values (extracted, ``token``, ``marker``, ``id``, ...).
        regex: escape substituted values so they match literally inside a pattern.

    Returns:
        A copy of ``value`` with placeholders filled; non-strings are returned as is.

    Raises:
        UndefinedVariable: a placeholder names neither a variable nor a built-in.
    """
    if isinstance(value, str):
        if "{{" not in value:
            return value

        def fill(m: re.Match[str]) -> str:
            text = _lookup(m.group(1), variables)
            return re.escape(text) if regex else text

        return _VAR.sub(fill, value)
    if isinstance(value, Mapping):
        return {
            substitute(k, variables): substitute(v, variables, regex=regex)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [substitute(v, variables, regex=regex) for v in value]
    return value


def resolve_path(document: Any, path: str) -> Any:
    """Return the value at ``path`` (``$.a.b[0]``) in ``document``, or raise ``KeyError``."""
    node = document
    for segment in validate_path(path):
        if isinstance(segment, int):
            if not isinstance(node, list) or segment >= len(node):
                raise KeyError(path)
            node = node[segment]
        else:
            if not isinstance(node, dict) or segment not in node:
                raise KeyError(path)
            node = node[segment]
    return node


def _scalar_text(value: Any) -> str:
    """How a JSON scalar reads in a message; matches what extraction produces."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _equal(expected: Any, actual: Any) -> bool:
    # Config values that went through {{var}} substitution are strings, while the
    # message may carry the same value as a number: compare by their JSON text then.
    if isinstance(expected, str) and not isinstance(actual, str | dict | list):
        return expected == _scalar_text(actual)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(expected == actual)


def _subset(expected: Any, actual: Any) -> bool:
    """Every key of ``expected`` is in ``actual`` with a matching value, recursively."""
    if isinstance(expected, Mapping):
        return isinstance(actual, dict) and all(
            k in actual and _subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list | tuple):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return _equal(expected, actual)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op == "eq":
        return _equal(expected, actual)
    if op == "ne":
        return not _equal(expected, actual)
    # Ordering: numerically when both sides read as numbers (prices often arrive as
    # strings), else as strings; anything else (objects, null) never orders.
    a, e = _as_number(actual), _as_number(expected)
    if a is not None and e is not None:
        left: Any = a
        right: Any = e
    elif isinstance(actual, str) and isinstance(expected, str):
        left, right = actual, expected
    else:
        return False
    if op == "gt":
        return bool(left > right)
    if op == "ge":
        return bool(left >= right)
    if op == "lt":
        return bool(left < right)
    return bool(left <= right)


def _regex_search(matcher: Matcher, message: Message, variables: Mapping[str, str]) -> Any:
    assert matcher.regex is not None
    pattern = substitute(matcher.regex, variables, regex=True)
    return re.search(pattern, message.text)


def matches(matcher: Matcher, message: Message | str | bytes, variables: Mapping[str, str]) -> bool:
    """Whether ``message`` satisfies every predicate set on ``matcher``.

    Args:
        matcher: the predicate from the config (``{{var}}`` placeholders allowed).
        message: a received message.
        variables: values for the placeholders.

    Returns:
        True when every given predicate holds.

    Raises:
        UndefinedVariable: a placeholder has no value.
    """
    msg = message if isinstance(message, Message) else Message(message)
    if matcher.binary is not None and matcher.binary != msg.binary:
        return False
    if matcher.contains is not None and substitute(matcher.contains, variables) not in msg.text:
        return False
    if matcher.regex is not None and _regex_search(matcher, msg, variables) is None:
        return False
    if matcher.json_ is not None and not (
        msg.is_json and _subset(substitute(matcher.json_, variables), msg.json)
    ):
        return False
    if matcher.path is not None:
        if not msg.is_json:
            return False
        try:
            value = resolve_path(msg.json, matcher.path)
        except KeyError:
            value = _MISSING
        found = value is not _MISSING
        comparisons = [op for op in COMPARISON_OPS if getattr(matcher, op) is not None]
        if matcher.exists is not None and found != matcher.exists:
            return False
        if not found and (comparisons or matcher.exists is None):
            return False
        for op in comparisons:
            if not _compare(op, value, substitute(getattr(matcher, op), variables)):
                return False
    return True


def extract(
    paths: Mapping[str, str],
    matcher: Matcher,
    message: Message | str | bytes,
    variables: Mapping[str, str],
) -> dict[str, str]:
    """Variables taken from a matched message: ``paths`` plus named regex groups.

    Scalars become their JSON text (strings stay unquoted), objects and lists compact JSON.

    Raises:
        ExtractFailed: a path is missing from the message.
    """
    msg = message if isinstance(message, Message) else Message(message)
    out: dict[str, str] = {}
    if matcher.regex is not None:
        m = _regex_search(matcher, msg, variables)
        if m is not None:
            out.update({k: v for k, v in m.groupdict().items() if v is not None})
    for name, path in paths.items():
        if not msg.is_json:
            raise ExtractFailed(name, path)
        try:
            value = resolve_path(msg.json, path)
        except KeyError:
            raise ExtractFailed(name, path) from None
        out[name] = _scalar_text(value)
    return out


def describe(matcher: Matcher) -> str:
    """A short human summary of a matcher for failure messages (no variable values)."""
    parts: list[str] = []
    if matcher.binary is not None:
        parts.append("binary" if matcher.binary else "text")
    if matcher.json_ is not None:
        parts.append(f"json {_short(json.dumps(matcher.json_, default=str))}")
    if matcher.path is not None:
        ops = [
            f"{op} {_operand(getattr(matcher, op))}"
            for op in COMPARISON_OPS
            if getattr(matcher, op) is not None
        ]
        if matcher.exists is not None:
            ops.append("exists" if matcher.exists else "absent")
        parts.append(f"{matcher.path} {' and '.join(ops) or 'exists'}")
    if matcher.regex is not None:
        parts.append(f"regex /{_short(matcher.regex)}/")
    if matcher.contains is not None:
        parts.append(f"contains {_short(matcher.contains)!r}")
    return ", ".join(parts) or "any message"


def _operand(value: Any) -> str:
    # YAML `gt: 0` arrives as 0.0; show it the way it was written.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, default=str) if not isinstance(value, str) else repr(value)


def _short(text: str) -> str:
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"
