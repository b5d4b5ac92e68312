"""Rules that span files or need the extension registries.

Valid check kinds are the keys of ``agent.probes.PROBES`` and valid receiver types the
keys of ``agent.notifiers.NOTIFIERS``, valid ``protocol.name`` values the keys of
``agent.probes.protocols.PROTOCOLS``: the registries are the only lists of names. Config
is the lowest layer and does not import them: the caller that owns them (the daemon, the
CLI) passes them in as :class:`Registries`.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.config._issues import ConfigIssue, Located
from agent.config.alerting import ReceiverConfig
from agent.config.models import DEFAULT_INTERVAL, DEFAULT_TIMEOUT, CheckConfig
from agent.config.protocols import ProtocolConfig
from agent.config.relay import RelayConfig
from agent.config.types import parse_duration

__all__ = [
    "ProtocolType",
    "RawCheck",
    "ReceiverType",
    "Registries",
    "check_rules",
    "receiver_rules",
]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RawCheck:
    """A check as written (defaults merged, env expanded), where, and its model if valid."""

    data: dict[str, Any]
    where: Located
    validated: CheckConfig | None = None


class ProtocolType(Protocol):
    """What validation needs of a protocol (an ``agent.probes.protocols.Protocol``)."""

    def validate(self, config: ProtocolConfig) -> list[tuple[tuple[str | int, ...], str]]:
        """Problems with a check's ``protocol:`` mapping, each at its key path."""
        ...

    def validate_watch(self, config: ProtocolConfig) -> list[tuple[tuple[str | int, ...], str]]:
        """Further problems with that mapping on a ``watch`` check."""
        ...

    def validate_relay(
        self, config: ProtocolConfig, relay: RelayConfig
    ) -> list[tuple[tuple[str | int, ...], str]]:
        """Problems with a relay check's ``relay:`` block in this protocol, at its keys."""
        ...


class ReceiverType(Protocol):
    """What validation needs of a receiver type (an ``agent.notifiers.Notifier``)."""

    def validate(self, receiver: ReceiverConfig) -> list[str]:
        """Problems with the type's own fields of ``receiver``; empty when usable."""
        ...


@dataclass(frozen=True, slots=True)
class Registries:
    """The extension points' names, as config validation needs them.

    Built by the caller from the registries themselves, e.g.
    ``Registries(kinds=PROBES, receivers=NOTIFIERS)``.
    """

    #: Valid check kinds: ``agent.probes.PROBES`` (its keys).
    kinds: Collection[str]
    #: Receiver type -> what validates it: ``agent.notifiers.NOTIFIERS``.
    receivers: Mapping[str, ReceiverType]
    #: Protocol name -> what validates it: ``agent.probes.protocols.PROTOCOLS``.
    protocols: Mapping[str, ProtocolType] = field(default_factory=dict)


def _choices(names: Sequence[str]) -> str:
    return ", ".join(sorted(names))


def check_rules(
    checks: Sequence[RawCheck],
    *,
    receivers: set[str] | None,
    kinds: Collection[str],
    protocols: Mapping[str, ProtocolType],
) -> list[ConfigIssue]:
    """Kinds, cron expressions, receiver references, unique names, risky settings.

    Args:
        checks: every check of the configuration, in load order.
        receivers: names of the defined receivers; None skips reference checks.
        kinds: the valid check kinds.
        protocols: the valid ``protocol.name`` values, each with its own field checks.

    Returns:
        Errors and warnings, each at the key it is about.
    """
    issues: list[ConfigIssue] = []
    first: dict[str, RawCheck] = {}
    for raw in checks:
        data, where = raw.data, raw.where
        name = data.get("name")
        if isinstance(name, str):
            if name in first:
                other = first[name].where
                issues.append(
                    where.issue(
                        ("name",),
                        f"duplicate check name {name!r} (also defined at"
                        f" {other.file}:{other.line_of(('name',))})",
                    )
                )
            else:
                first[name] = raw
        kind = data.get("kind", "probe")
        if isinstance(kind, str) and kind not in kinds:
            issues.append(
                where.issue(("kind",), f"unknown kind {kind!r} (known: {_choices(list(kinds))})")
            )
        issues += _protocol_issues(raw, protocols)
        cron = data.get("cron")
        if isinstance(cron, str):
            message = _cron_problem(cron)
            if message:
                issues.append(where.issue(("cron",), message))
        alerting = data.get("alerting")
        if receivers is not None and isinstance(alerting, dict):
            for i, ref in enumerate(alerting.get("receivers") or ()):
                if isinstance(ref, str) and ref not in receivers:
                    issues.append(
                        where.issue(
                            ("alerting", "receivers", i),
                            f"receiver {ref!r} is not defined under receivers:",
                        )
                    )
        issues += _warnings(data, where)
        issues += _default_timeout(raw)
    return issues


def _protocol_issues(raw: RawCheck, protocols: Mapping[str, ProtocolType]) -> list[ConfigIssue]:
    """``protocol.name`` is a registered protocol, and its fields suit that protocol.

    A relay's protocol also judges the ``relay:`` block; a relay without a protocol
    must not use the keys only a protocol reads.
    """
    spec = raw.data.get("protocol")
    name = spec if isinstance(spec, str) else spec.get("name") if isinstance(spec, dict) else None
    check = raw.validated
    if not isinstance(name, str):
        relay = check.relay if check is not None and check.kind == "relay" else None
        return [
            raw.where.issue(("relay", key), f"relay.{key} is read only with protocol:")
            for key in (relay.protocol_keys() if relay is not None else [])
        ]
    key: tuple[str, ...] = ("protocol",) if isinstance(spec, str) else ("protocol", "name")
    if name not in protocols:
        return [
            raw.where.issue(key, f"unknown protocol {name!r} (known: {_choices(list(protocols))})")
        ]
    if check is None or check.protocol is None:
        return []
    problems = protocols[name].validate(check.protocol)
    issues: list[ConfigIssue] = []
    if check.kind == "watch":
        problems += protocols[name].validate_watch(check.protocol)
        if check.watch is not None and check.watch.answer is not None:
            issues.append(
                raw.where.issue(
                    ("watch", "answer"),
                    f"{name} answers its own keepalives: watch.answer is for raw sessions",
                )
            )
    if check.kind == "relay":
        issues += [
            raw.where.issue(("relay", *path), message)
            for path, message in protocols[name].validate_relay(
                check.protocol, check.relay or RelayConfig()
            )
        ]
    return [raw.where.issue(("protocol", *path), message) for path, message in problems] + issues


def _default_timeout(raw: RawCheck) -> list[ConfigIssue]:
    """A check that did not set ``timeout`` and runs more often than the default one.

    The model compares a written timeout with the interval; an unwritten one is the
    default, and runs would overlap (every other run skipped) without this. Read from
    the check as written, so it is reported with the check's other mistakes.
    """
    data = raw.data
    if "timeout" in data or data.get("cron") is not None:
        return []
    try:
        interval = parse_duration(data.get("interval", DEFAULT_INTERVAL))
    except ValueError:
        return []  # reported by validation
    if not isinstance(interval, float) or interval <= 0 or interval > DEFAULT_TIMEOUT:
        return []
    return [
        raw.where.issue(
            ("interval",),
            f"interval ({interval:g}s) must be more than the timeout, which is"
            f" {DEFAULT_TIMEOUT:g}s by default: set a shorter timeout",
        )
    ]


def _cron_problem(expr: str) -> str | None:
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

    try:
        CronTrigger.from_crontab(expr, timezone=datetime.UTC)
    except ValueError as exc:
        return f"invalid cron expression {expr!r}: {exc}"
    return None


def _warnings(data: dict[str, Any], where: Located) -> list[ConfigIssue]:
    out: list[ConfigIssue] = []
    tls = data.get("tls")
    url = data.get("url")
    if isinstance(tls, dict):
        if tls.get("insecure_skip_verify") is True:
            out.append(
                where.issue(
                    ("tls", "insecure_skip_verify"),
                    "certificate verification is disabled: expiry, trust and host name"
                    " problems will not be detected",
                    warning=True,
                )
            )
        if isinstance(url, str) and url.startswith("ws://") and any(tls.values()):
            out.append(
                where.issue(("tls",), "tls settings are ignored for a ws:// URL", warning=True)
            )
    return out


def receiver_rules(
    raw: Sequence[Any],
    validated: Sequence[ReceiverConfig | None] | None,
    where: Located,
    *,
    notifiers: Mapping[str, ReceiverType],
) -> list[ConfigIssue]:
    """Receiver types exist, names are unique, each notifier accepts its receiver.

    Args:
        raw: the ``receivers:`` list as written.
        validated: the same receivers as models (None for one that is invalid).
        where: the agent config file.
        notifiers: receiver type -> its validator.

    Returns:
        One issue per problem.
    """
    issues: list[ConfigIssue] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            continue
        rtype = entry.get("type")
        if isinstance(rtype, str) and rtype not in notifiers:
            issues.append(
                where.issue(
                    ("receivers", i, "type"),
                    f"unknown receiver type {rtype!r} (known: {_choices(list(notifiers))})",
                )
            )
        name = entry.get("name")
        if isinstance(name, str):
            if name in seen:
                line = where.line_of(("receivers", seen[name]))
                issues.append(
                    where.issue(
                        ("receivers", i, "name"),
                        f"duplicate receiver name {name!r} (also at line {line})",
                    )
                )
            else:
                seen[name] = i
    if validated is not None:
        for i, receiver in enumerate(validated):
            if receiver is None:
                continue
            notifier = notifiers.get(receiver.type)
            if notifier is None:
                continue  # reported above as an unknown type
            try:
                messages = list(notifier.validate(receiver))
            except Exception as exc:  # a notifier bug must not become a traceback
                log.exception("validating receiver %s failed", receiver.name)
                messages = [f"could not be validated ({type(exc).__name__})"]
            for message in messages:
                issues.append(where.issue(("receivers", i), str(message)))
    return issues
