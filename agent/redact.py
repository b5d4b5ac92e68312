"""Remove credentials from anything that may be printed, labelled or sent."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "redact_url"]

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
