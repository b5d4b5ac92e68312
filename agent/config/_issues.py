"""Configuration problems, each tied to the file and line it came from.

Exceptions::

    ConfigError(Exception)     one or more ConfigIssue; never raised with zero issues
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from agent.config._yaml import LineMap

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "Located",
    "error_paths",
    "format_path",
    "issues_from_validation",
]


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem: where (file, line, key path) and what."""

    file: str | None
    line: int | None
    #: Dotted key path like ``checks[2].auth.bearer``; empty for the whole file.
    path: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file is not None:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.path:
            parts.append(self.path)
        if self.severity == "warning":
            parts.append("warning")
        parts.append(self.message)
        return ": ".join(parts)


class ConfigError(Exception):
    """The configuration is invalid; ``issues`` holds every problem found."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        super().__init__()
        self.issues: list[ConfigIssue] = list(issues)

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)


def format_path(path: Iterable[Any]) -> str:
    """Render ``("checks", 2, "auth")`` as ``checks[2].auth``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and part and all(c.isalnum() or c in "_-" for c in part):
            out += f".{part}" if out else part
        else:
            out += f"[{str(part)!r}]"
    return out


@dataclass(frozen=True, slots=True)
class Located:
    """A parsed document's place: file name, line map, and the prefix of its keys."""

    file: str
    lines: LineMap
    #: Key path of the validated object inside the document (``("checks", 2)``).
    prefix: tuple[Any, ...] = ()
    #: Where keys missing here may have come from (the agent config's ``defaults:``).
    fallback: Located | None = None

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        """The line of ``path`` (relative to ``prefix``) or of its nearest ancestor."""
        full = (*self.prefix, *path)
        for end in range(len(full), 0, -1):
            line = self.lines.get(full[:end])
            if line is not None:
                return line
        return 1 if self.lines else None

    def issue(self, path: tuple[Any, ...], message: str, *, warning: bool = False) -> ConfigIssue:
        """An issue at ``path`` (relative to ``prefix``), rendered with the full path."""
        return ConfigIssue(
            self.file,
            self.line_of(path),
            format_path((*self.prefix, *path)),
            message,
            "warning" if warning else "error",
        )


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop pydantic's union/type tags from ``loc``, keeping keys that exist in ``data``.

    The last element is kept when it names a key of a mapping (a missing field).
    """
    path: list[Any] = []
    current = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        indexable = isinstance(current, list | tuple) and isinstance(part, int)
        if (isinstance(current, dict) and part in current) or (
            indexable and 0 <= part < len(current)
        ):
            current = current[part]
            path.append(part)
        elif last and isinstance(current, dict) and isinstance(part, str):
            path.append(part)
    return tuple(path)


def _model_at(model: type[BaseModel], path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``path`` under ``model``, if any."""
    current: Any = model
    for part in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(part, str):
                return None
            field = next(
                (f for n, f in current.model_fields.items() if (f.alias or n) == part), None
            )
            if field is None:
                return None
            current = field.annotation
        elif isinstance(part, int):
            args = [a for a in typing.get_args(current) if a is not Ellipsis]
            current = args[0] if len(args) == 1 else None
        else:
            pair = typing.get_args(current)
            current = pair[1] if len(pair) == 2 else None
        current = _unwrap_optional(current)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap_optional(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap_optional(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        return _unwrap_optional(members[0]) if len(members) == 1 else None
    return tp


def _message(model: type[BaseModel], path: tuple[Any, ...], error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden" and path:
        owner = _model_at(model, path[:-1])
        text = f"unknown key {path[-1]!r}"
        if owner is not None and isinstance(path[-1], str):
            names = [f.alias or n for n, f in owner.model_fields.items()]
            close = difflib.get_close_matches(path[-1], names, n=1)
            if close:
                text += f" (did you mean {close[0]!r}?)"
        return text
    if kind == "missing":
        return "required key is missing"
    msg = str(error["msg"])
    # pydantic prefixes messages of ValueError raised in validators; ours are complete.
    return msg.removeprefix("Value error, ")


def error_paths(exc: ValidationError, data: Any) -> frozenset[tuple[Any, ...]]:
    """The key path in ``data`` of every error in ``exc``."""
    return frozenset(_data_path(data, tuple(e["loc"])) for e in exc.errors(include_input=False))


def issues_from_validation(
    exc: ValidationError,
    data: Any,
    where: Located,
    model: type[BaseModel],
    *,
    skip_inherited: frozenset[tuple[Any, ...]] = frozenset(),
    only: Callable[[tuple[Any, ...]], bool] | None = None,
) -> list[ConfigIssue]:
    """Map each pydantic error to the line of the key it is about.

    A key absent from ``where`` but present in ``where.fallback`` (a value inherited from
    ``defaults:``) is noted as inherited, or skipped when its path is in
    ``skip_inherited`` (already reported once at the ``defaults:`` line). ``only``
    keeps just the errors whose key path it accepts.
    The input value is never part of a message: it may be a secret.
    """
    # One message per key: the branches of a union (`float | str`) each report an
    # error for the same value; they read better as one "valid number or valid string".
    by_path: dict[tuple[Any, ...], list[str]] = {}
    for error in exc.errors(include_url=False, include_input=False):
        path = _data_path(data, tuple(error["loc"]))
        if only is None or only(path):
            messages = by_path.setdefault(path, [])
            message = _message(model, path, error)
            if message not in messages:
                messages.append(message)
    issues: list[ConfigIssue] = []
    for path, messages in by_path.items():
        issues += _located(path, _join(messages), where, skip_inherited)
    return issues


def _join(messages: list[str]) -> list[str]:
    """Merge several "Input should be ..." messages about one value into one."""
    prefix = "Input should be "
    expected = [m.removeprefix(prefix) for m in messages if m.startswith(prefix)]
    if len(expected) < 2:
        return messages
    merged = prefix + " or ".join(expected)
    return [merged, *(m for m in messages if not m.startswith(prefix))]


def _located(
    path: tuple[Any, ...],
    messages: list[str],
    where: Located,
    skip_inherited: frozenset[tuple[Any, ...]],
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for message in messages:
        issue = where.issue(path, message)
        fb = where.fallback
        if (
            fb is not None
            and (*where.prefix, *path) not in where.lines
            and (*fb.prefix, *path) in fb.lines
        ):
            if path in skip_inherited:
                continue
            issue = ConfigIssue(
                issue.file,
                issue.line,
                issue.path,
                f"{message} (inherited from {format_path((*fb.prefix, *path))}"
                f" at {fb.file}:{fb.line_of(path)})",
            )
        issues.append(issue)
    return issues
