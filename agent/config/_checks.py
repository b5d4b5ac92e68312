"""Check entries as written to validated checks, with ``defaults:`` merged under each.

``defaults:`` is validated once, on its own and at its own lines, against a stand-in
check; a check that inherits a bad default is not told again about it. Each entry of a
``checks:`` list is then deep-merged over the defaults and validated, its issues placed
at its own lines (or at the default's line, for a key it inherited).

Nothing here reads files or raises: each function returns what it built and the issues
it found, for the loader to collect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agent.config._compact import Shared, compact
from agent.config._issues import ConfigIssue, Located, error_paths, issues_from_validation
from agent.config._rules import RawCheck
from agent.config.models import CheckConfig

__all__ = ["Defaults", "deep_merge", "validate_checks", "validate_defaults"]

# A stand-in for checks' required fields while `defaults:` is validated on its own; the
# interval is huge so a default timeout is only compared with a default interval.
_DEFAULTS_PROBE = {"name": "defaults", "url": "ws://defaults.invalid/", "interval": "3650d"}


@dataclass(frozen=True, slots=True)
class Defaults:
    """The ``defaults:`` mapping to merge under every check, and where it was written."""

    values: dict[str, Any]
    where: Located
    #: Key paths (relative to a check) of default values already reported as invalid.
    bad: frozenset[tuple[Any, ...]] = field(default_factory=frozenset)


def validate_defaults(
    top: dict[str, Any], where: Located, context: dict[str, str]
) -> tuple[Defaults, list[ConfigIssue]]:
    """Validate the agent config's ``defaults:`` once, at its own lines.

    Args:
        top: the agent config document (env expanded).
        where: the agent config file.
        context: pydantic validation context (``base_dir``).

    Returns:
        The defaults to merge under each check, and the issues found in them.
    """
    dwhere = Located(where.file, where.lines, ("defaults",))
    values = top.get("defaults")
    if values is None:
        return Defaults({}, dwhere), []
    if not isinstance(values, dict):
        return Defaults({}, dwhere), [where.issue(("defaults",), "defaults must be a mapping")]
    issues: list[ConfigIssue] = []
    if "name" in values:
        issues.append(dwhere.issue(("name",), "a check's name cannot have a default"))
        values = {k: v for k, v in values.items() if k != "name"}
    probe = {**_DEFAULTS_PROBE, **values}
    try:
        CheckConfig.model_validate(probe, context=context)
    except ValidationError as exc:
        # Report only what is about a key written under defaults (not the stand-in
        # name/url), and remember it so checks inheriting it do not repeat it.
        def written(path: tuple[Any, ...]) -> bool:
            return bool(path) and path[0] in values

        bad = frozenset(filter(written, error_paths(exc, probe)))
        issues += issues_from_validation(exc, probe, dwhere, CheckConfig, only=written)
        return Defaults(values, dwhere, bad), issues
    return Defaults(values, dwhere), issues


def validate_checks(
    doc: dict[str, Any],
    where: Located,
    defaults: Defaults,
    context: dict[str, str],
    *,
    required: bool,
    shared: Shared | None = None,
) -> tuple[list[RawCheck], list[ConfigIssue]]:
    """Each entry of ``doc``'s ``checks:`` list, merged over ``defaults`` and validated.

    Args:
        doc: the agent config or a check file (env expanded).
        where: that file.
        defaults: what :func:`validate_defaults` returned.
        context: pydantic validation context (``base_dir``).
        required: whether a missing ``checks:`` list is an error (in a check file).
        shared: the parts of the load's checks so far, for equal ones to share (see
            :mod:`agent.config._compact`); a table of their own when None.

    Returns:
        Every mapping entry as a :class:`RawCheck` (its model set when valid), and the
        issues found.
    """
    entries = doc.get("checks")
    if entries is None:
        return [], [where.issue((), "a check file needs a 'checks:' list")] if required else []
    if not isinstance(entries, list):
        return [], [where.issue(("checks",), "checks must be a list of checks")]
    out: list[RawCheck] = []
    issues: list[ConfigIssue] = []
    shared = {} if shared is None else shared
    for index, entry in enumerate(entries):
        cwhere = Located(where.file, where.lines, ("checks", index), fallback=defaults.where)
        if not isinstance(entry, dict):
            issues.append(cwhere.issue((), "a check must be a mapping with at least name and url"))
            continue
        merged = deep_merge(defaults.values, entry)
        raw = RawCheck(merged, cwhere)
        try:
            raw.validated = compact(CheckConfig.model_validate(merged, context=context), shared)
        except ValidationError as exc:
            issues += issues_from_validation(
                exc, merged, cwhere, CheckConfig, skip_inherited=defaults.bad
            )
        out.append(raw)
    return out, issues


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``; mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
