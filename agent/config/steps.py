"""Scripted steps: what a check sends and expects on its connection.

YAML shape (one key per step names its action)::

    steps:
      - send: {type: subscribe, channel: trades}   # mapping/list: sent as JSON
      - send: "hello {{session}}"                  # string: sent as text
      - send_binary: "aGVsbG8="                    # base64, sent as a binary frame
      - name: first trade
        expect:
          json: {type: trade}                      # JSON subset equality
          path: $.data.price                       # JSON path ...
          gt: 0                                    # ... compared with eq/ne/gt/ge/lt/le/exists
          timeout: 5s
          first_message: true                      # time it as the first_message phase
          fail_if: {json: {type: error}}
          extract: {trade_id: $.data.id}           # later steps use {{trade_id}}
      - sleep: 1s
      - app_ping:
          send: {type: ping, id: "{{id}}"}         # {{id}} is fresh for every ping
          expect: {json: {type: pong, id: "{{id}}"}}
          count: 3
          timeout: 2s

Runtime variables are written ``{{name}}``: the loader expands ``${NAME}`` from the
environment once at load time, while ``{{name}}`` is substituted on every run from
values extracted by earlier steps and a few built-ins (see docs/steps.md).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

from agent.config.types import Duration, Frozen, Int, Number

__all__ = [
    "BUILTIN_VARIABLE_NAMES",
    "COMPARISON_OPS",
    "DEFAULT_APP_PING_COUNT",
    "DEFAULT_APP_PING_TIMEOUT",
    "DEFAULT_EXPECT_TIMEOUT",
    "ActionStep",
    "AppPing",
    "Expect",
    "JsonPath",
    "Matcher",
    "Step",
    "check_variables",
    "placeholders",
    "undefined_variables",
    "validate_path",
]

DEFAULT_EXPECT_TIMEOUT = 5.0
DEFAULT_APP_PING_COUNT = 3
DEFAULT_APP_PING_TIMEOUT = 2.0

#: Comparison keys a matcher may apply to the value found at ``path``.
COMPARISON_OPS: tuple[str, ...] = ("eq", "ne", "gt", "ge", "lt", "le")

# One path segment: `.name`, `["name"]`, `['name']` or `[3]`.
_PATH_SEGMENT = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_-]*)|\[(?:(\d+)|"([^"]*)"|'([^']*)')\]""")


def validate_path(path: str) -> tuple[str | int, ...]:
    """Parse a JSON path like ``$.data.items[0].price`` into its keys and indexes.

    Args:
        path: ``$`` followed by ``.name``, ``[N]``, ``["name"]`` segments.

    Returns:
        The segments: strings are object keys, ints are list indexes.

    Raises:
        ValueError: the path does not follow that grammar.
    """
    if not path.startswith("$"):
        raise ValueError(f"JSON path {path!r} must start with '$'")
    segments: list[str | int] = []
    pos = 1
    while pos < len(path):
        m = _PATH_SEGMENT.match(path, pos)
        if m is None:
            raise ValueError(
                f"JSON path {path!r} is invalid at position {pos}: "
                "use $.key, $.list[0] or $['odd key']"
            )
        name, index, dq, sq = m.groups()
        if index is not None:
            segments.append(int(index))
        else:
            segments.append(name if name is not None else (dq if dq is not None else sq))
        pos = m.end()
    return tuple(segments)


def _variable_name(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"variable name {name!r} must be an identifier")
    return name


def _json_path(path: str) -> str:
    validate_path(path)
    return path


#: A ``{{name}}`` a step defines (each bad one of a mapping is reported at its line).
VariableName = Annotated[str, AfterValidator(_variable_name)]
#: A JSON path such as ``$.data.id``.
JsonPath = Annotated[str, AfterValidator(_json_path)]


class Matcher(Frozen):
    """A predicate on one message; every given field must hold.

    ``json`` is subset equality (every key given must be present with that value,
    recursively; lists compare element-wise); ``path`` picks one value to compare with
    ``eq``/``ne``/``gt``/``ge``/``lt``/``le`` or test with ``exists`` (a path with no
    comparison means ``exists: true``); ``regex`` searches the text; ``contains`` is a
    substring test. ``binary`` restricts the frame type (unset: either).
    """

    json_: Any = Field(None, alias="json")
    path: JsonPath | None = None
    eq: Any = None
    ne: Any = None
    gt: Number | str | None = None
    ge: Number | str | None = None
    lt: Number | str | None = None
    le: Number | str | None = None
    exists: bool | None = None
    regex: str | None = None
    contains: str | None = None
    binary: bool | None = None

    model_config = Frozen.model_config | {"populate_by_name": True}

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            # {{var}} is substituted (escaped) at run time; check the rest compiles now.
            try:
                re.compile(re.sub(r"\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}", "x", value))
            except re.error as exc:
                raise ValueError(f"regex {value!r} does not compile: {exc}") from None
        return value

    @model_validator(mode="after")
    def _comparisons_need_path(self) -> Matcher:
        used = [op for op in (*COMPARISON_OPS, "exists") if getattr(self, op) is not None]
        if used and self.path is None:
            raise ValueError(f"{'/'.join(used)} needs a path to compare: set path too")
        return self

    def is_empty(self) -> bool:
        """True when no predicate is set (every message of the right type matches)."""
        return self.json_ is None and self.path is None and not self.regex and not self.contains


class Expect(Matcher):
    """Wait for the next message matching this predicate, skipping others."""

    timeout: Duration = Field(DEFAULT_EXPECT_TIMEOUT, gt=0)
    #: A message matching this fails the step at once (e.g. ``{json: {type: error}}``).
    fail_if: Matcher | None = None
    #: variable name -> JSON path (``$.id``) in the matched message. Named groups of
    #: ``regex`` are extracted as well.
    extract: dict[VariableName, JsonPath] = {}
    #: Time from the last send to this match as the ``first_message`` phase.
    first_message: bool = False


class AppPing(Frozen):
    """Application-level ping: send, expect the reply carrying the same ``{{id}}``."""

    send: Any = Field(default_factory=lambda: {"type": "ping", "id": "{{id}}"})
    expect: Expect = Field(
        default_factory=lambda: Expect.model_validate({"json": {"type": "pong", "id": "{{id}}"}})
    )
    count: Int = Field(DEFAULT_APP_PING_COUNT, ge=1, le=100)
    #: Per ping: how long to wait for its reply.
    timeout: Duration = Field(DEFAULT_APP_PING_TIMEOUT, gt=0)
    #: Pause between pings.
    interval: Duration = Field(0.0, ge=0)


class ActionStep(Frozen):
    """A step of which exactly one action key is set; ``ACTIONS`` lists the keys."""

    #: The action keys, in the order messages list them.
    ACTIONS: ClassVar[tuple[str, ...]]
    #: What the step is called in the "exactly one" message.
    NOUN: ClassVar[str]

    name: str | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Self:
        actions = [k for k in self.ACTIONS if getattr(self, k) is not None]
        if len(actions) != 1:
            raise ValueError(
                f"a {self.NOUN} needs exactly one of {', '.join(self.ACTIONS)}"
                + (f" (got {', '.join(actions)})" if actions else "")
            )
        return self

    @property
    def action(self) -> str:
        """Which action this step performs."""
        for key in self.ACTIONS:
            if getattr(self, key) is not None:
                return key
        raise AssertionError(f"validated {self.NOUN} without an action")  # pragma: no cover

    @property
    def label(self) -> str:
        """The step's name, or its action when unnamed."""
        return self.name or self.action


class Step(ActionStep):
    """One step; exactly one action key is set."""

    ACTIONS = ("send", "send_binary", "expect", "sleep", "app_ping")
    NOUN = "step"

    send: Any = None
    send_binary: str | None = None
    expect: Expect | None = None
    sleep: Duration | None = Field(None, ge=0)
    app_ping: AppPing | None = None

    @field_validator("send_binary")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value is not None and "{{" not in value:
            try:
                base64.b64decode(value, validate=True)
            except binascii.Error:
                raise ValueError("send_binary must be base64") from None
        return value


# --- {{variable}} references, checked at load time ---------------------------------

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
#: Variables the step runner computes itself at each use (see agent.probes.script.matchers).
BUILTIN_VARIABLE_NAMES: frozenset[str] = frozenset({"uuid", "now", "now_ms"})


def placeholders(value: Any) -> set[str]:
    """Every ``{{name}}`` referenced in a string, mapping (keys too) or list."""
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(placeholders(k) | placeholders(v) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return set().union(*(placeholders(v) for v in value))
    return set()


def _matcher_uses(matcher: Matcher | None) -> set[str]:
    if matcher is None:
        return set()
    compared = [getattr(matcher, op) for op in COMPARISON_OPS]
    return placeholders([matcher.json_, matcher.regex, matcher.contains, *compared])


def _defines(expect: Expect) -> set[str]:
    names = set(expect.extract)
    if expect.regex:
        pattern = _PLACEHOLDER.sub("x", expect.regex)
        names |= set(re.compile(pattern).groupindex)
    return names


_HINTS = {
    "token": "set auth.token or auth.oauth2",
    "id": "{{id}} exists only inside app_ping",
}


def undefined_variables(
    groups: Sequence[tuple[str, Sequence[Step]]], *, known: Iterable[str], extra: Any = None
) -> list[str]:
    """Name every ``{{var}}`` used before any step could have defined it.

    Args:
        groups: (key path, steps) in the order they run, e.g. ``("auth.steps", ...)``.
        known: variables the check kind provides (``token``, relay's ``marker``, ...).
        extra: values used after all groups ran (e.g. a relay's ``publish`` and
            ``match``), as ``{key path: value}``.

    Returns:
        One message per undefined reference, naming where it is used.
    """
    if not extra and not any(steps for _path, steps in groups):
        return []  # most checks: nothing uses a variable
    defined = set(known) | BUILTIN_VARIABLE_NAMES
    problems: list[str] = []

    def check(where: str, uses: set[str], local: frozenset[str] = frozenset()) -> None:
        for name in sorted(uses - defined - local):
            hint = _HINTS.get(name, f"defined here: {', '.join(sorted(defined | local))}")
            problems.append(f"{where} uses {{{{{name}}}}}, which no earlier step defines ({hint})")

    for path, steps in groups:
        for i, step in enumerate(steps):
            where = f"{path}[{i}]"
            if step.send is not None or step.send_binary is not None:
                check(where, placeholders([step.send, step.send_binary]))
            if step.expect is not None:
                check(where, _matcher_uses(step.expect) | _matcher_uses(step.expect.fail_if))
                defined |= _defines(step.expect)
            if step.app_ping is not None:
                ping = step.app_ping
                uses = placeholders(ping.send) | _matcher_uses(ping.expect)
                check(where, uses | _matcher_uses(ping.expect.fail_if), frozenset({"id"}))
    for where, value in (extra or {}).items():
        uses = _matcher_uses(value) if isinstance(value, Matcher) else placeholders(value)
        check(where, uses)
    return problems


def check_variables(check: Any) -> list[str]:
    """Undefined ``{{var}}`` references of a ``probe`` or ``relay`` check (a CheckConfig).

    Other kinds (``watch``) provide variables of their own and are not checked here.
    """
    if check.kind not in ("probe", "relay"):
        return []
    auth = check.auth
    known = {"token"} if auth.token is not None or auth.oauth2 is not None else set()
    groups: list[tuple[str, Sequence[Step]]] = [("auth.steps", auth.steps)]
    extra: dict[str, Any] = {}
    if check.kind == "relay":
        known |= {"run", "marker", "connection"}
        if check.relay is not None:
            groups.append(("relay.join", check.relay.join))
            extra = {"relay.publish": check.relay.publish, "relay.match": check.relay.match}
            for key in check.relay.protocol_keys():
                value = getattr(check.relay, key)
                extra[f"relay.{key}"] = value if isinstance(value, str) else value.model_dump()
        if check.protocol is not None:
            # A relay's connections know only the relay's variables; nothing extracts.
            extra["protocol.payload"] = check.protocol.payload
            extra["protocol.steps"] = [step.model_dump() for step in check.protocol.steps]
    else:
        groups.append(("steps", check.steps))
    return undefined_variables(groups, known=known, extra=extra)
