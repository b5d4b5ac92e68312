"""``${VAR}`` and ``${VAR:-default}`` expansion in the string values of a parsed file.

Expansion happens once, at load time, on values only (never keys). ``$${`` writes a
literal ``${``. Run-time ``{{name}}`` templates of steps are left alone. A variable's
value is never part of a message: it may be a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.config._issues import ConfigIssue, Located
from agent.config._yaml import MAX_NODES

__all__ = ["expand_env"]

_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _TooLarge(Exception):
    pass


def expand_env(
    data: Any,
    where: Located,
    issues: list[ConfigIssue],
    *,
    environ: Mapping[str, str] | None = None,
    substituted: dict[str, str] | None = None,
) -> Any:
    """Return a copy of ``data`` with every environment reference in strings expanded.

    Args:
        data: parsed YAML (dicts, lists, scalars).
        where: the file, for the line of each problem.
        issues: problems are appended here (unset variable, malformed reference,
            recursive alias).
        environ: the environment (``os.environ`` by default).
        substituted: if given, receives expanded string -> string as written, so
            messages that quote a value can show ``${VAR}`` instead of its value.

    Returns:
        The expanded copy; unexpandable references are left as written.
    """
    expander = _Expander(
        where,
        issues,
        os.environ if environ is None else environ,
        substituted if substituted is not None else {},
    )
    try:
        return expander.expand(data, ())
    except _TooLarge:
        issues.append(where.issue((), "document too large once its aliases are expanded"))
        return {}


@dataclass(slots=True)
class _Expander:
    """One file's expansion: where problems go, the environment, and the walk's bounds."""

    where: Located
    issues: list[ConfigIssue]
    env: Mapping[str, str]
    #: expanded string -> string as written.
    record: dict[str, str]
    #: ids of the containers being expanded: meeting one again is a recursive alias.
    active: set[int] = field(default_factory=set)
    nodes: int = 0

    def expand(self, value: Any, path: tuple[Any, ...]) -> Any:
        self.nodes += 1
        # Shared aliases are expanded for every use; this bounds a "billion laughs" document.
        if self.nodes > MAX_NODES:
            raise _TooLarge
        if isinstance(value, str):
            expanded = self.expand_string(value, path)
            if expanded != value:
                self.record[expanded] = value
            return expanded
        if isinstance(value, dict | list):
            if id(value) in self.active:
                self.issues.append(self.where.issue(path, "a YAML alias refers to itself"))
                return None
            self.active.add(id(value))
            try:
                if isinstance(value, dict):
                    return {k: self.expand(v, (*path, k)) for k, v in value.items()}
                return [self.expand(v, (*path, i)) for i, v in enumerate(value)]
            finally:
                self.active.discard(id(value))
        return value

    def expand_string(self, text: str, path: tuple[Any, ...]) -> str:
        if "$" not in text:
            return text

        def problem(message: str) -> None:
            self.issues.append(self.where.issue(path, message))

        def replace(m: re.Match[str]) -> str:
            written = m.group(0)
            if written == "$${":
                return "${"
            body = m.group(1)
            if body is None:
                problem("unterminated ${ (write $${ for a literal ${)")
                return written
            name, sep, default = body.partition(":-")
            if not _NAME.match(name):
                problem(f"invalid reference ${{{body}}}: use ${{NAME}} or ${{NAME:-default}}")
                return written
            found = self.env.get(name)
            if found is not None and (found or not sep):
                if _SURROGATE.search(found):  # os.environ keeps undecodable bytes as surrogates
                    problem(f"environment variable {name} is not UTF-8")
                    return written
                return found
            if sep:
                return default
            problem(
                f"environment variable {name} is not set (or give a default: ${{{name}:-default}})"
            )
            return written

        return _REF.sub(replace, text)
