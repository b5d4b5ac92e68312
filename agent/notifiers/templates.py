"""Rendering the configured title/text templates of a receiver for one event.

Templates were compiled and test-rendered when the config loaded
(:mod:`agent.config.templates`); an event that still makes one fail (an unexpected
value) falls back to the built-in wording, so a template can never lose an alert.
The context is the event payload only: the URL in it has no credentials, and no
receiver setting or environment value is ever passed in.
"""

from __future__ import annotations

import logging
from typing import Any

from agent.config.alerting import ReceiverConfig
from agent.config.templates import TEMPLATE_VARIABLES, compile_template
from agent.notifiers.base import AlertEvent, summary

__all__ = ["message_of", "title_of"]

logger = logging.getLogger(__name__)
#: Sources whose failure was already logged: one WARNING per template, not per event.
_warned: set[str] = set()


def _context(event: AlertEvent) -> dict[str, Any]:
    p = event.payload
    context = {name: p.get(name) for name in TEMPLATE_VARIABLES}
    context["summary"] = summary(event)
    return context


def _render(source: str, event: AlertEvent, receiver: ReceiverConfig) -> str | None:
    try:
        return compile_template(source).render(_context(event)).strip()
    except Exception as exc:
        if source not in _warned:
            _warned.add(source)
            logger.warning(
                "receiver %r: template failed on a %s event (%s: %s); using the built-in text",
                receiver.name,
                event.event,
                type(exc).__name__,
                exc,
            )
        return None


def title_of(receiver: ReceiverConfig, event: AlertEvent) -> str:
    """The one-line title: the ``title`` template, else :func:`summary`."""
    templates = receiver.templates
    if templates is not None and templates.title is not None:
        rendered = _render(templates.title, event, receiver)
        if rendered:
            return rendered
    return summary(event)


def message_of(receiver: ReceiverConfig, event: AlertEvent) -> str:
    """The body text: the ``text`` template, else the failure message (none on resolve)."""
    templates = receiver.templates
    if templates is not None and templates.text is not None:
        rendered = _render(templates.text, event, receiver)
        if rendered is not None:
            return rendered
    p = event.payload
    return "" if event.is_resolved else str(p.get("message") or "")
