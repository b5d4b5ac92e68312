"""Message templates as written in the config: Jinja2, sandboxed, checked at load time.

``title`` replaces the one-line summary (Slack header and notification text, Discord
embed title, PagerDuty ``summary``, the ``log`` receiver's line); ``text`` replaces
the failure message (Slack message section, Discord embed description). Templates see
only the event payload (its URL already stripped of credentials), never a receiver's
settings or the environment, and run in Jinja2's immutable sandbox.

A template is compiled and rendered against a sample event when the config loads, so
a syntax error, an unknown variable or an unsafe attribute is reported by
``check-config`` with its line instead of failing at delivery.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import Field, field_validator

from agent.config.types import Frozen

__all__ = [
    "TEMPLATE_SAMPLE",
    "TEMPLATE_VARIABLES",
    "TemplatesConfig",
    "compile_template",
]

#: The names a template may use: the webhook payload's fields plus ``summary``.
TEMPLATE_VARIABLES = frozenset(
    {
        "event", "alert", "check", "url", "labels", "reason", "message", "started_at",
        "resolved_at", "consecutive_failures", "degraded", "timestamp", "last_result",
        "agent", "summary",
    }
)  # fmt: skip
#: What templates are test-rendered with at load time (shapes of a real event).
TEMPLATE_SAMPLE: dict[str, Any] = {
    "event": "firing",
    "alert": "down",
    "check": "chat",
    "url": "wss://chat.example.com/ws?token=REDACTED",
    "labels": {"team": "chat"},
    "reason": "closed",
    "message": "server closed the connection: code 1011 (internal error)",
    "started_at": "2026-11-18T11:06:40.000Z",
    "resolved_at": None,
    "consecutive_failures": 3,
    "degraded": [],
    "timestamp": "2026-11-18T11:08:40.000Z",
    "last_result": {"success": False, "reason": "closed", "phases": {"connect": 0.011}},
    "agent": {"id": "0b7d1c1e-7f5e-4a53-a1b2-2c3d4e5f6a7b", "location": "eu-west"},
    "summary": "[FIRING] chat: closed - server closed the connection",
}
#: Longest template source accepted (a message template, not a program).
_MAX_SOURCE = 4096

#: Bounds that keep a template from stalling the agent (a message, not a program):
#: ``range()`` length, ``*``/``**`` results, and nesting of ``for`` loops.
_MAX_RANGE = 1000
_MAX_PRODUCT = 10_000
_MAX_LOOP_DEPTH = 2


def _range(*args: int) -> range:
    r = range(*args)
    if len(r) > _MAX_RANGE:
        raise SecurityError(f"range() longer than {_MAX_RANGE}")
    return r


class _Environment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with repetition and power bounded."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Refuse ``'x' * 10**9`` and ``10 ** 10**9`` before computing them."""
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(n, int)
                if sized and len(seq) * n > _MAX_PRODUCT:
                    raise SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


_ENV = _Environment(autoescape=False, keep_trailing_newline=False)
_ENV.globals["range"] = _range


def _loop_depth(node: nodes.Node) -> int:
    inner = max((_loop_depth(child) for child in node.iter_child_nodes()), default=0)
    return inner + 1 if isinstance(node, nodes.For) else inner


@lru_cache(maxsize=256)
def compile_template(source: str) -> jinja2.Template:
    """Compile once per distinct source (the environment is shared and sandboxed).

    Raises:
        jinja2.TemplateSyntaxError: for a malformed template.
    """
    return _ENV.from_string(source)


def _check(source: str) -> str:
    if len(source) > _MAX_SOURCE:
        raise ValueError(f"template longer than {_MAX_SOURCE} characters")
    try:
        tree = _ENV.parse(source)
        unknown = meta.find_undeclared_variables(tree) - TEMPLATE_VARIABLES
        template = compile_template(source)
    except jinja2.TemplateSyntaxError as exc:
        message = f"template syntax error on template line {exc.lineno}: {exc.message}"
        raise ValueError(message) from None
    if _loop_depth(tree) > _MAX_LOOP_DEPTH:
        raise ValueError(f"loops nested deeper than {_MAX_LOOP_DEPTH}")
    if unknown:
        known = ", ".join(sorted(TEMPLATE_VARIABLES))
        raise ValueError(f"unknown variable(s) {', '.join(sorted(unknown))} (known: {known})")
    try:
        template.render(TEMPLATE_SAMPLE)
    except SecurityError as exc:
        raise ValueError(f"template not allowed in the sandbox: {exc}") from None
    except Exception as exc:  # any failure on a sample event would fail every delivery
        message = f"template fails on a sample event: {type(exc).__name__}: {exc}"
        raise ValueError(message) from None
    return source


class TemplatesConfig(Frozen):
    """Overrides of the message title and text (unset: the built-in wording)."""

    title: str | None = Field(None, min_length=1)
    text: str | None = Field(None, min_length=1)

    @field_validator("title", "text")
    @classmethod
    def _valid_template(cls, value: str | None) -> str | None:
        return None if value is None else _check(value)

    def merged(self, fallback: TemplatesConfig | None) -> TemplatesConfig:
        """These templates, each unset one taken from ``fallback``."""
        if fallback is None:
            return self
        return TemplatesConfig(
            title=self.title if self.title is not None else fallback.title,
            text=self.text if self.text is not None else fallback.text,
        )
