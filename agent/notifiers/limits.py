"""Cutting rendered text to what each receiver's service accepts.

A field over a service's limit is refused with HTTP 400, which is never retried, so
the alert would be lost: every notifier cuts what it renders to the documented limits
(listed with their sources in docs/alerting.md) and marks the cut with an ellipsis.
Lengths are counted in code points, as Slack and Discord count characters.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["ELLIPSIS", "cut", "cut_key", "fit_lines", "shrink_strings"]

ELLIPSIS = "…"


def cut(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start plus an ellipsis.

    Args:
        text: what to send.
        limit: the field's maximum length in characters (>= 1).

    Returns:
        A string of at most ``limit`` characters.
    """
    if len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)] + ELLIPSIS


def cut_key(key: str, limit: int) -> str:
    """Shorten an identifier (e.g. a dedup key) to ``limit`` without losing uniqueness.

    A plain cut could make two long keys equal and merge two incidents; the cut key
    ends with a digest of the whole key instead.

    Args:
        key: the full key.
        limit: maximum length (> 17).

    Returns:
        ``key`` itself when it fits, else its start, ``~`` and 16 hex digits of its SHA-256.
    """
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return key[: limit - len(digest) - 1] + "~" + digest


def shrink_strings(value: Any, limit: int) -> Any:
    """A copy of a JSON-like value with every string cut to ``limit`` characters.

    Args:
        value: dicts, lists, strings and scalars.
        limit: maximum length of each string.

    Returns:
        The same shape with long strings cut.
    """
    if isinstance(value, str):
        return cut(value, limit)
    if isinstance(value, dict):
        return {k: shrink_strings(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [shrink_strings(v, limit) for v in value]
    return value


def fit_lines(lines: list[str], limit: int, *, separator: str = "\n") -> str:
    """Join as many whole lines as fit in ``limit``, then ``and N more``.

    Args:
        lines: one line per item (each already cut to ``limit`` or less).
        limit: maximum length of the result.
        separator: between lines.

    Returns:
        The joined text, at most ``limit`` characters.
    """
    out: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        rest = len(lines) - i - 1
        more = f"{separator}and {rest} more" if rest else ""
        extra = len(line) + (len(separator) if out else 0)
        if used + extra + len(more) > limit:
            remaining = len(lines) - i
            tail = f"and {remaining} more"
            return separator.join([*out, tail]) if out else cut(tail, limit)
        out.append(line)
        used += extra
    return separator.join(out)
