"""Remove credentials from anything that may be printed, labelled or sent."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "redact_url", "scrub"]

REDACTED = "REDACTED"


def redact_url(url: str) -> str:
    """Return ``url`` without userinfo and with every query value replaced.

    Query values are masked wholesale rather than by a list of "secret-looking" names:
    a token under an unexpected parameter name must not leak either.

    Args:
        url: any URL, possibly holding ``user:pass@`` or ``?token=...``.

    Returns:
        The URL safe to show in logs, JSON, alerts and exception messages.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, REDACTED) for k, _ in pairs], safe=REDACTED)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


_URL_RE = re.compile(r"\b(?:wss?|https?)://[^\s'\"<>]+")


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove credentials from free text before it reaches a message.

    Every URL in ``text`` is redacted (userinfo dropped, query values masked) and
    every known secret value is replaced.

    Args:
        text: text that may quote a URL or echo a header.
        secrets: literal secret values to mask (values shorter than 3 characters are
            left alone: masking them would garble the text and hide nothing).

    Returns:
        Text safe for messages, logs and alert payloads.
    """
    text = _URL_RE.sub(lambda m: redact_url(m.group(0)), text)
    for value in sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text
