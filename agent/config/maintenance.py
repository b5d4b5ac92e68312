"""Maintenance windows as written in the agent config (top-level ``maintenance:``).

Each window has a name, a schedule and the checks it covers::

    maintenance:
      - name: nightly-deploy
        cron: "0 2 * * *"          # every day at 02:00 ...
        duration: 30m              # ... for 30 minutes
        timezone: Europe/Paris     # of the cron fields (default UTC)
        checks: [chat, feed]
      - name: db-migration
        start: 2026-12-05T22:00:00 # without an offset: in `timezone`
        end: 2026-12-06T01:00:00
        timezone: Europe/Berlin
        matchers: ['team="payments"', 'env=~"prod-.*"']

A check is covered when its name is listed in ``checks`` or its labels (plus
``check``) satisfy every matcher of a non-empty ``matchers``. When a window is
open is decided by :mod:`agent.alerting.maintenance`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agent.config._issues import ConfigIssue, Located
from agent.config.matchers import parse_matcher
from agent.config.types import Duration, Frozen

__all__ = ["MaintenanceWindow", "cron_trigger", "localize", "maintenance_rules", "zone"]


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``.

    Raises:
        ValueError: for an unknown name.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Paris)"
        ) from None


def cron_trigger(expression: str, timezone: str) -> Any:
    """APScheduler's ``CronTrigger`` for a crontab line, as the scheduler parses it.

    Raises:
        ValueError: when APScheduler cannot parse ``expression``.
    """
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

    try:
        return CronTrigger.from_crontab(expression, timezone=zone(timezone))
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {expression!r}: {exc}") from None


class MaintenanceWindow(Frozen):
    """One maintenance window: ``cron`` + ``duration``, or ``start`` + ``end``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$", max_length=128)
    #: IANA zone of the cron fields and of timestamps written without an offset.
    timezone: str = "UTC"
    cron: str | None = None
    duration: Duration | None = Field(None, gt=0)
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    #: Check names covered.
    checks: tuple[str, ...] = ()
    #: Label matchers (all must match) selecting the checks covered.
    matchers: tuple[str, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("cron")
    @classmethod
    def _parses(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            cron_trigger(value, info.data.get("timezone", "UTC"))
        return value

    @field_validator("duration")
    @classmethod
    def _with_cron(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and info.data.get("cron") is None and "cron" in info.data:
            raise ValueError("duration goes with cron (a start/end window has its own length)")
        return value

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        start = info.data.get("start")
        tz = info.data.get("timezone")
        if start is not None and tz is not None and value is not None:
            ends_before = localize(value, tz) <= localize(start, tz)
        else:
            ends_before = False
        if ends_before:
            raise ValueError(f"end ({value}) must be after start ({start})")
        return value

    @field_validator("matchers")
    @classmethod
    def _matchers_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_matcher(text)
        return value

    @model_validator(mode="after")
    def _complete(self) -> MaintenanceWindow:
        if self.cron is not None and (self.start is not None or self.end is not None):
            raise ValueError("use either cron + duration or start + end, not both")
        if self.cron is not None and self.duration is None:
            raise ValueError("a cron window needs a duration (e.g. duration: 30m)")
        if self.cron is None and (self.start is None or self.end is None):
            raise ValueError("a window needs cron + duration, or start + end")
        if not self.checks and not self.matchers:
            raise ValueError("a window needs checks (names) or matchers (labels) to cover")
        return self


def localize(moment: dt.datetime, timezone: str) -> dt.datetime:
    """``moment`` as an aware datetime: a naive one is read in ``timezone``."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=zone(timezone))
    return moment


def maintenance_rules(raw: Any, check_names: set[str], where: Located) -> list[ConfigIssue]:
    """Cross-file rules: window names unique, every listed check configured.

    Args:
        raw: the ``maintenance:`` value as written.
        check_names: every configured check's name (all files).
        where: the agent config file's locations.

    Returns:
        One issue per problem, at the offending key's line.
    """
    if not isinstance(raw, list):
        return []
    issues: list[ConfigIssue] = []
    seen: set[str] = set()
    for i, window in enumerate(raw):
        if not isinstance(window, dict):
            continue
        name = window.get("name")
        if isinstance(name, str):
            if name in seen:
                issues.append(where.issue(("maintenance", i, "name"), f"duplicate window {name!r}"))
            seen.add(name)
        checks = window.get("checks")
        for j, check in enumerate(checks if isinstance(checks, list) else ()):
            if isinstance(check, str) and check not in check_names:
                issues.append(
                    where.issue(("maintenance", i, "checks", j), f"no check named {check!r}")
                )
    return issues
