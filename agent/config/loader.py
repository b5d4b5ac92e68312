"""Load the agent config and its check files into one frozen :class:`Config`.

Order of work, all problems collected before anything is raised:

1. parse each YAML file safely, keeping the line of every key (:mod:`._yaml`);
2. expand ``${VAR}`` / ``${VAR:-default}`` in string values (:mod:`._env`);
3. validate the agent settings, then each check with ``defaults:`` deep-merged under it
   (:mod:`._checks`);
4. cross-file rules: unique check names, known kinds and receiver types, receivers that
   exist, cron expressions that parse.

Kinds and receiver types are the keys of the probe and notifier registries, which sit
above config: every caller passes them in (:class:`Registries`).

Exceptions::

    ConfigError(Exception)     .issues: list[ConfigIssue], each "FILE:LINE: key.path: message"
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.config._checks import Defaults, validate_checks, validate_defaults
from agent.config._compact import Shared
from agent.config._env import expand_env
from agent.config._files import FileTooLarge, PatternTooBroad, expand_pattern, read_config_file
from agent.config._issues import (
    ConfigError,
    ConfigIssue,
    Located,
    issues_from_validation,
)
from agent.config._rules import RawCheck, Registries, check_rules, receiver_rules
from agent.config._yaml import Parsed, YamlError, parse_yaml
from agent.config.alerting import ReceiverConfig, route_receiver_rules
from agent.config.maintenance import maintenance_rules
from agent.config.models import CheckConfig, Config

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "Loaded",
    "Registries",
    "display_path",
    "load_config",
    "load_config_with_warnings",
    "validate_check",
]

log = logging.getLogger(__name__)

#: Keys a check file may hold at its top level.
_CHECK_FILE_KEYS = frozenset({"checks"})
#: Config fields the loader fills itself (not validated from the agent config).
_LOADER_KEYS = frozenset({"checks", "sources"})
# Expanded values shorter than this are not hidden in messages: replacing "1" or "ws"
# everywhere would garble them, and no credential is that short.
_MIN_SCRUB = 4


def display_path(path: Path) -> str:
    """How a file is named in messages: relative to the working directory when under it."""
    absolute = os.path.abspath(path)
    cwd = os.getcwd()
    if cwd == os.path.dirname(cwd):  # at the root, "etc/x.yaml" would read as relative
        return absolute
    try:
        rel = os.path.relpath(absolute, cwd)
    except ValueError:  # another drive on Windows
        return absolute
    return absolute if rel.startswith("..") else rel


def load_config(path: str | Path, *, registries: Registries) -> Config:
    """Load and validate the agent config at ``path`` and every check file it names.

    Warnings (e.g. TLS verification disabled) are logged, not raised.

    Args:
        path: the agent config YAML file.
        registries: the valid kinds and receiver types (``agent.runtime.registries``).

    Returns:
        The frozen configuration; ``sources`` maps each check name to ``"file:line"``.

    Raises:
        ConfigError: with every problem found, each naming file, line and key path.
    """
    loaded = load_config_with_warnings(path, registries=registries)
    for warning in loaded.warnings:
        log.warning("config: %s", warning)
    return loaded.config


@dataclass(frozen=True, slots=True)
class Loaded:
    """A valid configuration, its warnings, and the files it was read from."""

    config: Config
    warnings: list[ConfigIssue]
    #: The agent config then every check file, as named in messages.
    files: list[str]


def load_config_with_warnings(path: str | Path, *, registries: Registries) -> Loaded:
    """Like :func:`load_config` but returns the warnings instead of logging them.

    Raises:
        ConfigError: with every problem found (warnings are not included).
    """
    loader = _Loader(Path(path), registries)
    config = loader.load()
    loader.scrub()
    errors = [i for i in loader.issues if i.severity == "error"]
    if errors or config is None:
        raise ConfigError(_ordered(errors, loader.file_order))
    warnings = [i for i in loader.issues if i.severity == "warning"]
    return Loaded(config, _ordered(warnings, loader.file_order), loader.file_order)


def validate_check(
    data: Mapping[str, Any], *, registries: Registries, base_dir: str | Path = "."
) -> CheckConfig:
    """Validate one check built outside a file (``wsprobe probe`` flags).

    Issues carry no file or line; their path is the check key (``timeout``).
    ``registries`` as for :func:`load_config`.

    Raises:
        ConfigError: with every problem found.
    """
    raw = dict(data)
    where = Located("", {})
    issues: list[ConfigIssue] = []
    check = None
    try:
        check = CheckConfig.model_validate(raw, context={"base_dir": str(base_dir)})
    except ValidationError as exc:
        issues += issues_from_validation(exc, raw, where, CheckConfig)
    issues += check_rules(
        [RawCheck(raw, where)],
        receivers=None,
        kinds=registries.kinds,
        protocols=registries.protocols,
    )
    issues = [ConfigIssue(None, None, i.path, i.message, i.severity) for i in issues]
    if any(i.severity == "error" for i in issues) or check is None:
        raise ConfigError([i for i in issues if i.severity == "error"])
    return check


def _ordered(issues: list[ConfigIssue], file_order: list[str]) -> list[ConfigIssue]:
    """Group issues by file (in load order), then by line."""
    rank = {name: i for i, name in enumerate(file_order)}
    return sorted(issues, key=lambda i: (rank.get(i.file or "", len(rank)), i.line or 0))


class _Loader:
    """One load: the issues found so far and the files read, in order."""

    def __init__(self, path: Path, registries: Registries) -> None:
        self.path = path
        self.registries = registries
        self.base_dir = path.parent
        self.context = {"base_dir": str(self.base_dir)}
        self.issues: list[ConfigIssue] = []
        self.file_order: list[str] = []
        #: env-expanded value -> text as written, to keep values out of messages.
        self.substituted: dict[str, str] = {}
        #: Parts of the checks loaded so far, for equal ones of later checks to share.
        self.shared: Shared = {}

    def scrub(self) -> None:
        """Show ``${VAR}`` instead of any expanded value a message quotes."""
        values = sorted(
            (v for v in self.substituted if len(v) >= _MIN_SCRUB), key=len, reverse=True
        )
        if not values:
            return
        cleaned = []
        for issue in self.issues:
            message = issue.message
            for value in values:
                message = message.replace(value, self.substituted[value])
            cleaned.append(dataclasses.replace(issue, message=message))
        self.issues = cleaned

    def load(self) -> Config | None:
        main = self._read(self.path)
        if main is None:
            return None
        file = display_path(self.path)
        where = Located(file, main.lines)
        top = top_written = main.data if main.data is not None else {}
        if not isinstance(top, dict):
            self.issues.append(where.issue((), "the agent config must be a mapping of keys"))
            return None
        top = self._expand(main, top, where)
        if "sources" in top:  # a Config field the loader fills, not a YAML key
            self.issues.append(where.issue(("sources",), "unknown key 'sources'"))
        settings = {k: v for k, v in top.items() if k not in _LOADER_KEYS}
        config = None
        try:
            config = Config.model_validate(settings, context=self.context)
        except ValidationError as exc:
            self.issues += issues_from_validation(exc, settings, where, Config)
        defaults, issues = validate_defaults(top, where, self.context)
        self.issues += issues
        raw_checks: list[RawCheck] = []
        raw_checks += self._checks(top, where, defaults, required=False)
        for check_path in self._check_files(top, where):
            raw_checks += self._load_check_file(check_path, defaults)
        receivers = top.get("receivers")
        raw_receivers = receivers if isinstance(receivers, list) else []
        self.issues += receiver_rules(
            raw_receivers,
            self._receivers(config, raw_receivers),
            where,
            notifiers=self.registries.receivers,
        )
        receiver_names = _receiver_names(receivers)
        self.issues += check_rules(
            raw_checks,
            receivers=receiver_names,
            kinds=self.registries.kinds,
            protocols=self.registries.protocols,
        )
        if isinstance(top.get("alerting"), dict):
            for i, name in enumerate(top["alerting"].get("receivers") or ()):
                if isinstance(name, str) and name not in receiver_names:
                    self.issues.append(
                        where.issue(("alerting", "receivers", i), _no_receiver(name))
                    )
            self.issues += route_receiver_rules(top["alerting"], receiver_names, where)
        self.issues += maintenance_rules(
            top.get("maintenance"),
            {r.data["name"] for r in raw_checks if isinstance(r.data.get("name"), str)},
            where,
        )
        validated = [c.validated for c in raw_checks]
        if config is None or any(c is None for c in validated):
            return None
        checks = tuple(c for c in validated if c is not None)
        sources = {
            c.name: f"{r.where.file}:{r.where.line_of(())}"
            for c, r in zip(checks, raw_checks, strict=True)
        }
        # `defaults` is kept as written (before ${VAR} expansion): it is already merged
        # into every check, and expanded it could hold secrets as plain strings.
        written = top_written.get("defaults")
        return config.model_copy(
            update={
                "checks": checks,
                "sources": sources,
                "defaults": written if isinstance(written, dict) else {},
            }
        )

    def _receivers(self, config: Config | None, raw: list[Any]) -> list[ReceiverConfig | None]:
        """Each receiver as a model, or None where it is invalid (already reported).

        Validated one by one when the agent config as a whole is not, so a mistake
        elsewhere does not hide a receiver type's own checks.
        """
        if config is not None:
            return list(config.receivers)
        out: list[ReceiverConfig | None] = []
        for entry in raw:
            try:
                out.append(ReceiverConfig.model_validate(entry, context=self.context))
            except ValidationError:
                out.append(None)
        return out

    def _read(self, path: Path) -> Parsed | None:
        file = display_path(path)
        self.file_order.append(file)
        try:
            text = read_config_file(path)
        except FileTooLarge as exc:
            self.issues.append(ConfigIssue(file, None, "", str(exc)))
            return None
        except FileNotFoundError:
            self.issues.append(ConfigIssue(file, None, "", "file not found"))
            return None
        except OSError as exc:
            self.issues.append(ConfigIssue(file, None, "", f"cannot read: {exc.strerror}"))
            return None
        try:
            parsed = parse_yaml(text)
        except YamlError as exc:
            self.issues.append(ConfigIssue(file, exc.line, "", exc.message))
            return None
        for line, message in (*parsed.duplicates, *parsed.problems):
            self.issues.append(ConfigIssue(file, line, "", message))
        return parsed

    def _expand(self, parsed: Parsed, data: dict[str, Any], where: Located) -> dict[str, Any]:
        """``data`` with ``${VAR}`` expanded (see :func:`expand_env`).

        A plain document without a ``$`` in any string is returned as it is: expanding
        would give an equal copy and no issue (no reference to expand, no alias to refuse,
        no more values than expand_env accepts). Nothing changes ``data`` afterwards.
        """
        if parsed.plain and not parsed.dollar:
            return data
        expanded: dict[str, Any] = expand_env(
            data, where, self.issues, substituted=self.substituted
        )
        return expanded

    def _check_files(self, top: dict[str, Any], where: Located) -> list[Path]:
        explicit = "check_files" in top
        patterns = top.get("check_files", list(Config.model_fields["check_files"].default))
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list):
            return []  # Config validation has reported it
        seen: set[Path] = {self.path.resolve()}
        found: list[Path] = []
        for index, pattern in enumerate(patterns):
            if not isinstance(pattern, str):
                continue
            try:
                matches = expand_pattern(self.base_dir, pattern)
            except PatternTooBroad as exc:
                self.issues.append(where.issue(("check_files", index), f"{pattern!r}: {exc}"))
                continue
            if not matches and explicit:
                magic = glob.has_magic(pattern)
                message = f"no file matches {pattern!r}" if magic else f"file {pattern!r} not found"
                self.issues.append(where.issue(("check_files", index), message))
            for match in matches:
                if match.resolve() not in seen:
                    seen.add(match.resolve())
                    found.append(match)
        return found

    def _load_check_file(self, path: Path, defaults: Defaults) -> list[RawCheck]:
        parsed = self._read(path)
        if parsed is None:
            return []
        where = Located(display_path(path), parsed.lines)
        if parsed.data is None:
            return []
        if not isinstance(parsed.data, dict):
            self.issues.append(where.issue((), "a check file must be a mapping with 'checks:'"))
            return []
        doc = self._expand(parsed, parsed.data, where)
        for key in doc:
            if key not in _CHECK_FILE_KEYS:
                self.issues.append(
                    where.issue((key,), f"unknown key {key!r} (a check file holds 'checks:')")
                )
        return self._checks(doc, where, defaults, required=True)

    def _checks(
        self, doc: dict[str, Any], where: Located, defaults: Defaults, *, required: bool
    ) -> list[RawCheck]:
        raw_checks, issues = validate_checks(
            doc, where, defaults, self.context, required=required, shared=self.shared
        )
        self.issues += issues
        return raw_checks


def _receiver_names(receivers: Any) -> set[str]:
    if not isinstance(receivers, list):
        return set()
    return {r["name"] for r in receivers if isinstance(r, dict) and isinstance(r.get("name"), str)}


def _no_receiver(name: str) -> str:
    return f"receiver {name!r} is not defined under receivers:"
