"""Silences: run-time mutes of notifications by label matchers, like Alertmanager's.

Pure: the model, request parsing and matching; the clock is passed in. Stored by
:mod:`agent.storage.silences`, served by :mod:`agent.http.api`, applied by
:mod:`agent.alerting.suppression`.

An alert's labels are the check's own labels plus ``check``, ``alert`` (``down`` or
``degraded``) and ``location``. A silence is ``pending`` before ``starts_at``,
``active`` until ``ends_at``, then ``expired``; ending one early sets ``ends_at`` to now.

Raises :class:`SilenceError` (a ``ValueError``) naming the field for a bad request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from agent.config.matchers import Matcher, parse_matcher
from agent.config.types import parse_duration

__all__ = [
    "MAX_SILENCE_DURATION",
    "Silence",
    "SilenceError",
    "SilenceSet",
    "alert_labels",
    "parse_silence",
]

#: Longest silence accepted: a forgotten silence must end by itself.
MAX_SILENCE_DURATION = 366 * 86400.0
#: Expired silences stay listed this long, then are forgotten.
EXPIRED_RETENTION = 7 * 86400.0
_MAX_MATCHERS = 32
_MAX_TEXT = 4096

SilenceStatus = Literal["pending", "active", "expired"]


class SilenceError(ValueError):
    """A silence request that cannot be accepted; the message names the field."""


def alert_labels(
    check: str, labels: Mapping[str, str], *, alert: str, location: str
) -> dict[str, str]:
    """The labels silences match against for one alert of one check."""
    return {**labels, "check": check, "alert": alert, "location": location}


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float

    def status(self, now: float) -> SilenceStatus:
        """``pending``, ``active`` or ``expired`` at ``now``."""
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether this silence is active at ``now`` and matches ``labels``."""
        return self.starts_at <= now < self.ends_at and all(
            m.matches(labels) for m in self.matchers
        )

    def to_json(self, now: float) -> dict[str, Any]:
        """The API form (times in RFC 3339 UTC)."""
        return {
            "id": self.id,
            "status": self.status(now),
            "matchers": [str(m) for m in self.matchers],
            "starts_at": _iso(self.starts_at),
            "ends_at": _iso(self.ends_at),
            "created_by": self.created_by,
            "comment": self.comment,
            "created_at": _iso(self.created_at),
        }

    def to_record(self) -> dict[str, Any]:
        """The stored form (times in Unix seconds)."""
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "comment": self.comment,
            "created_at": self.created_at,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Silence:
        """Inverse of :meth:`to_record`.

        Raises:
            SilenceError: for a record that does not parse.
        """
        try:
            return cls(
                id=str(data["id"]),
                matchers=tuple(parse_matcher(str(m)) for m in data["matchers"]),
                starts_at=float(data["starts_at"]),
                ends_at=float(data["ends_at"]),
                created_by=str(data["created_by"]),
                comment=str(data["comment"]),
                created_at=float(data["created_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SilenceError(f"unreadable stored silence: {exc}") from None


def _iso(ts: float) -> str:
    text = dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _time(value: Any, field: str) -> float:
    if not isinstance(value, str):
        raise SilenceError(f"{field}: an RFC 3339 time like 2026-12-05T22:00:00Z is required")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise SilenceError(f"{field}: {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise SilenceError(f"{field}: {value!r} has no UTC offset (add Z or +01:00)")
    return moment.timestamp()


def _text(body: Mapping[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise SilenceError(f"{field}: a non-empty string is required")
    if len(value) > _MAX_TEXT:
        raise SilenceError(f"{field}: at most {_MAX_TEXT} characters")
    return value.strip()


def _matcher(item: Any, index: int) -> Matcher:
    where = f"matchers[{index}]"
    try:
        if isinstance(item, str):
            return parse_matcher(item)
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            value = item.get("value")
            if not isinstance(value, str):
                raise ValueError("value: a string is required")
            regex, equal = bool(item.get("isRegex", False)), bool(item.get("isEqual", True))
            op = ("=~" if equal else "!~") if regex else ("=" if equal else "!=")
            return Matcher.build(item["name"], op, value)  # type: ignore[arg-type]
    except ValueError as exc:
        raise SilenceError(f"{where}: {exc}") from None
    raise SilenceError(
        f'{where}: a string like team="chat" or {{"name", "value", "isRegex"}} is required'
    )


def parse_silence(body: Any, *, now: float, new_id: str) -> Silence:
    """Validate a ``POST /api/v1/silences`` body.

    ``matchers`` (strings like ``team="chat"``, ``check=~"feed-.*"``, or Alertmanager's
    ``{"name", "value", "isRegex", "isEqual"}`` objects), ``created_by``, ``comment``,
    and ``ends_at`` (RFC 3339) or ``duration`` (``2h``, seconds); ``starts_at`` is
    optional (default now).

    Args:
        body: the decoded JSON body.
        now: current Unix time.
        new_id: the id to give the silence.

    Returns:
        The silence.

    Raises:
        SilenceError: naming the first field that is wrong.
    """
    if not isinstance(body, dict):
        raise SilenceError("the body must be a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise SilenceError(f"unknown field(s): {', '.join(unknown)}")
    raw = body.get("matchers")
    if not isinstance(raw, list) or not raw:
        raise SilenceError("matchers: a non-empty list is required")
    if len(raw) > _MAX_MATCHERS:
        raise SilenceError(f"matchers: at most {_MAX_MATCHERS}")
    matchers = tuple(_matcher(item, i) for i, item in enumerate(raw))
    if all(m.matches({}) for m in matchers):
        # Like Alertmanager: a silence whose matchers all match an empty label set
        # would mute every alert of the agent.
        raise SilenceError("matchers: at least one must not match an empty value (too broad)")
    starts = _time(body["starts_at"], "starts_at") if "starts_at" in body else now
    if ("ends_at" in body) == ("duration" in body):
        raise SilenceError("give exactly one of ends_at or duration")
    if "duration" in body:
        try:
            seconds = parse_duration(body["duration"])
        except ValueError as exc:
            raise SilenceError(f"duration: {exc}") from None
        if not isinstance(seconds, float) or seconds <= 0:
            raise SilenceError("duration: a positive duration like 2h or 90m is required")
        ends = starts + seconds
    else:
        ends = _time(body["ends_at"], "ends_at")
    if ends <= max(starts, now):
        raise SilenceError("ends_at: must be in the future and after starts_at")
    if ends - starts > MAX_SILENCE_DURATION:
        raise SilenceError("a silence lasts at most 366 days")
    return Silence(
        id=new_id,
        matchers=matchers,
        starts_at=starts,
        ends_at=ends,
        created_by=_text(body, "created_by"),
        comment=_text(body, "comment"),
        created_at=now,
    )


_FIELDS = frozenset({"matchers", "starts_at", "ends_at", "duration", "created_by", "comment"})


class SilenceSet:
    """The agent's silences in memory (the store holds the durable copy)."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self._by_id = {s.id: s for s in silences}

    def __bool__(self) -> bool:
        """Whether any silence is held (active, pending or ended but not yet purged)."""
        return bool(self._by_id)

    def add(self, silence: Silence) -> None:
        """Add or replace ``silence``."""
        self._by_id[silence.id] = silence

    def get(self, silence_id: str) -> Silence | None:
        """The silence with ``silence_id``, if any."""
        return self._by_id.get(silence_id)

    def expire(self, silence_id: str, *, now: float) -> Silence | None:
        """End a silence now; None when there is no such silence or it already ended."""
        silence = self._by_id.get(silence_id)
        if silence is None or silence.ends_at <= now:
            return None
        ended = replace(silence, ends_at=max(now, silence.starts_at))
        self._by_id[silence_id] = ended
        return ended

    def prune(self, *, now: float) -> list[str]:
        """Forget silences expired more than :data:`EXPIRED_RETENTION` ago; their ids."""
        gone = [i for i, s in self._by_id.items() if s.ends_at < now - EXPIRED_RETENTION]
        for silence_id in gone:
            del self._by_id[silence_id]
        return gone

    def all(self) -> list[Silence]:
        """Every silence, newest first."""
        return sorted(self._by_id.values(), key=lambda s: s.created_at, reverse=True)

    def muting(self, labels: Mapping[str, str], now: float) -> list[Silence]:
        """The active silences that match ``labels``."""
        return [s for s in self._by_id.values() if s.mutes(labels, now)]

    def next_end(self, now: float) -> float | None:
        """When the next active or pending silence ends or starts (for release timing)."""
        times = [t for s in self._by_id.values() for t in (s.starts_at, s.ends_at) if t > now]
        return min(times) if times else None
