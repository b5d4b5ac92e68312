"""Label matchers, as Prometheus and Alertmanager write them: ``team="chat"``, ``env=~"prod-.*"``.

One syntax for maintenance windows (config) and silences (HTTP API)::

    NAME = VALUE    equal            NAME != VALUE   not equal
    NAME =~ REGEX   matches          NAME !~ REGEX   does not match

``VALUE`` may be double-quoted (``\\"`` and ``\\\\`` escape); regexes are anchored at both
ends, like Prometheus'. A missing label reads as the empty string. Pure, no I/O.

Raises :class:`ValueError` with a message naming the problem for text that does not parse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["Matcher", "matches_all", "parse_matcher"]

Op = Literal["=", "!=", "=~", "!~"]

_SYNTAX = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher; the regex is compiled once."""

    name: str
    op: Op
    value: str
    pattern: re.Pattern[str] | None = None

    @classmethod
    def build(cls, name: str, op: Op, value: str) -> Matcher:
        """A matcher from its parts.

        Raises:
            ValueError: when ``name`` is not a label name or a regex does not compile.
        """
        if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name):
            raise ValueError(f"{name!r} is not a valid label name")
        pattern = None
        if op in ("=~", "!~"):
            try:
                pattern = re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from None
        return cls(name, op, value, pattern)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher (a missing label is ``""``)."""
        value = labels.get(self.name, "")
        if self.pattern is not None:
            return (self.pattern.fullmatch(value) is not None) == (self.op == "=~")
        return (value == self.value) == (self.op == "=")

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """Parse ``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex``.

    Raises:
        ValueError: naming what is wrong with ``text``.
    """
    m = _SYNTAX.match(text)
    if not m:
        raise ValueError(
            f'matcher {text!r} must look like name="value", name!="value",'
            ' name=~"regex" or name!~"regex"'
        )
    name, op, raw = m.groups()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
    elif raw.startswith('"'):
        raise ValueError(f"matcher {text!r}: unterminated quote")
    return Matcher.build(name, op, raw)  # type: ignore[arg-type]


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches ``labels`` (vacuously true for none)."""
    return all(m.matches(labels) for m in matchers)
