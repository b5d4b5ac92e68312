"""HTML of the status page: the overview of every check and the page of one check.

Pure functions from prepared data to strings, built with ``html.escape`` (no template
engine). No inline script or style, so the page runs under a strict
Content-Security-Policy; charts are inline SVG from :mod:`agent.http.charts`. Nothing
here holds a secret: URLs arrive redacted and results carry no credentials.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from agent.http.charts import availability_bar, latency_chart, legend, sparkline
from agent.http.status import STATES, WINDOWS

__all__ = ["OverviewRow", "check_page", "layout", "overview_body", "overview_filters"]

OverviewRow = dict[str, Any]
_ESC = html.escape


def pct(share: float | None) -> str:
    """``0.99953`` -> ``99.95%``; None -> an en dash."""
    return "–" if share is None else f"{share * 100:.2f}%"


def ago(seconds: float | None) -> str:
    """A short human duration (``3 d 4 h``, ``12 min``, ``41 s``)."""
    if seconds is None:
        return "–"
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400} d {s % 86400 // 3600} h"
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min"
    return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"


def when(ts: float | None) -> str:
    """Unix time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    if ts is None:
        return "–"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ms(seconds: float | None) -> str:
    """Seconds as milliseconds text."""
    return "–" if seconds is None else f"{seconds * 1000:.1f} ms"


def layout(title: str, body: str, *, base: str, refresh: int) -> str:
    """The whole document around ``body``; ``refresh`` seconds between live updates."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark"><link rel="icon" href="data:,">'
        f"<title>{_ESC(title)}</title>"
        '<link rel="stylesheet" href="/static/status.css">'
        '<script src="/static/status.js" defer></script></head>'
        f'<body data-refresh="{refresh}"><a class="skip" href="#main">Skip to content</a>'
        f'<header class="top"><a class="brand" href="{base}/">wsprobe</a>'
        '<span class="top-note">status</span></header>'
        f'<main id="main">{body}</main></body></html>'
    )


def _pill(state: str) -> str:
    return f'<span class="pill s-{state}">{state}</span>'


def _labels(labels: Mapping[str, str]) -> str:
    return "".join(
        f'<span class="label">{_ESC(k)}={_ESC(str(v))}</span>' for k, v in sorted(labels.items())
    )


def overview_filters(query: Mapping[str, str], *, label_keys: Sequence[str]) -> str:
    """The search and filter form (a plain GET form: works without JavaScript)."""
    state = query.get("state", "")
    group = query.get("group", "")
    states = "".join(
        f'<option value="{s}"{" selected" if s == state else ""}>{s}</option>' for s in STATES
    )
    groups = "".join(
        f'<option value="{_ESC(k)}"{" selected" if k == group else ""}>{_ESC(k)}</option>'
        for k in label_keys
    )
    return (
        '<form class="filters" method="get" role="search">'
        '<label>Search <input type="search" name="q" id="q" autocomplete="off"'
        f' value="{_ESC(query.get("q", ""))}" placeholder="name or label"></label>'
        f'<label>State <select name="state"><option value="">any</option>{states}</select></label>'
        '<label>Label <input name="label" placeholder="team=core"'
        f' value="{_ESC(query.get("label", ""))}"></label>'
        f'<label>Group by <select name="group"><option value="">none</option>{groups}'
        '</select></label><button type="submit">Apply</button></form>'
    )


def _row(row: OverviewRow, *, base: str) -> str:
    state = row["state"]
    name = row["name"]
    ups = "".join(f"<div><dt>{w}</dt><dd>{pct(row['uptimes'][w])}</dd></div>" for w in WINDOWS)
    meta = []
    if row.get("last_failure"):
        meta.append(f'last failure <span class="reason">{_ESC(row["last_failure"])}</span>')
    if row.get("cert_days") is not None:
        days = row["cert_days"]
        cls = ' class="warn"' if days < 14 else ""
        meta.append(f"<span{cls}>cert {days:.0f} d</span>")
    meta.append(f'<span class="loc">{_ESC(row["location"])}</span>')
    search = f"{name} " + " ".join(f"{k}={v}" for k, v in row["labels"].items())
    return (
        f'<li class="check s-{state}" data-search="{_ESC(search.lower())}"'
        f' data-state="{state}"><div class="c-head">{_pill(state)}'
        f' <a class="name" href="{base}/checks/{quote(name, safe="")}">{_ESC(name)}</a>'
        f'<span class="labels">{_labels(row["labels"])}</span></div>'
        f'<dl class="uptimes">{ups}</dl>'
        f'<div class="c-bar">{availability_bar(row["days"], compact=True)}</div>'
        f'<div class="c-spark">{sparkline(row["spark"])}</div>'
        f'<div class="c-meta">{" · ".join(meta)}</div></li>'
    )


def overview_body(
    rows: Sequence[OverviewRow],
    *,
    total: int,
    counts: Mapping[str, int],
    group: str,
    base: str,
    page: int,
    pages: int,
    query: Mapping[str, str],
    now: float,
) -> str:
    """The live part of the overview: summary, checks (grouped) and paging links."""
    summary = ", ".join(
        f'<span class="s-{s}-text">{counts[s]} {s}</span>' for s in STATES if counts.get(s)
    )
    parts = [
        f'<p class="summary">{total} check{"" if total == 1 else "s"}: {summary or "none yet"}'
        f' <span class="updated">updated {when(now)}</span></p>'
    ]
    groups: dict[str, list[OverviewRow]] = {}
    for row in rows:
        key = f"{group}={row['labels'].get(group, '(none)')}" if group else ""
        groups.setdefault(key, []).append(row)
    for key, members in groups.items():
        heading = f"<h2>{_ESC(key)}</h2>" if key else ""
        items = "".join(_row(r, base=base) for r in members)
        parts.append(f'<section class="group">{heading}<ul class="checks">{items}</ul></section>')
    if not rows:
        parts.append('<p class="empty">No check matches.</p>')
    if pages > 1:
        links = []
        for n in range(1, pages + 1):
            params = urlencode({**query, "page": str(n)})
            current = ' aria-current="page"' if n == page else ""
            links.append(f'<a href="?{_ESC(params)}"{current}>{n}</a>')
        parts.append(f'<nav class="pages" aria-label="pages">{" ".join(links)}</nav>')
    return "".join(parts)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], *, empty: str) -> str:
    if not rows:
        return f'<p class="empty">{_ESC(empty)}</p>'
    th = "".join(f"<th scope='col'>{_ESC(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return (
        f'<div class="scroll"><table><thead><tr>{th}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def check_page(data: Mapping[str, Any], *, base: str, now: float) -> str:
    """The live part of one check's page (see :func:`agent.http.page.check_data`)."""
    item = data["item"]
    last = item.get("last_result") or {}
    tile = '<div class="tile"><span>{}</span><strong>{}</strong></div>'
    tiles = "".join(tile.format(f"uptime {w}", pct(data["uptimes"][w])) for w in WINDOWS)
    if data.get("cert_days") is not None:
        tiles += tile.format("certificate", f"{data['cert_days']:.0f} days")
    tiles += tile.format("last run", ago(now - last["started_at"]) + " ago" if last else "–")
    current = ' aria-current="page"'
    ranges = " ".join(
        f'<a href="?range={r}"{current if r == data["range"] else ""}>{r}</a>'
        for r in ("24h", "7d", "30d")
    )
    phases = data["phases"]
    quant = data["quantiles"]
    chart_title = f"mean latency by phase, {data['range']}"
    incidents = [
        (
            when(i["started_at"]),
            when(i["ended_at"]) if i["ended_at"] else '<span class="s-down-text">ongoing</span>',
            ago(i["duration"] if i["duration"] is not None else now - i["started_at"]),
            f'<span class="reason">{_ESC(i["reason"])}</span>',
            _ESC(i["message"]),
            str(i["failures"]),
        )
        for i in data["incidents"]
    ]
    ph = last.get("phases", {})
    phase_rows = [(_ESC(k), ms(v)) for k, v in ph.items()]
    facts = [
        ("result", "success" if last.get("success") else "failure" if last else "–"),
        ("reason", _ESC(last.get("reason") or "–")),
        ("message", _ESC(last.get("message") or "–")),
        ("started", when(last.get("started_at"))),
        ("status code", _ESC(str(last.get("status_code") or "–"))),
        ("subprotocol", _ESC(str(last.get("subprotocol") or "–"))),
        ("peer", _ESC(str(last.get("peer_ip") or "–"))),
        ("TLS", _ESC(str((last.get("tls") or {}).get("version") or "–"))),
        ("degraded", _ESC(", ".join(last.get("degraded") or []) or "no")),
        ("pings", _ESC(", ".join(ms(p) for p in last.get("pings") or []) or "–")),
    ]
    dl = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in facts)
    sections = [
        f'<section class="tiles">{tiles}</section>',
        f"<section><h2>Availability, 90 days</h2>{availability_bar(data['days'])}</section>",
        f'<section><h2>Latency</h2><nav class="ranges" aria-label="range">{ranges}</nav>'
        + latency_chart(
            data["points"],
            phases,
            start=data["start"],
            end=data["end"],
            step=data["step"],
            title=chart_title,
        )
        + legend(phases)
        + f'<p class="note">total p50 ≤ {ms(quant[0])}, p95 ≤ {ms(quant[1])}'
        " (histogram bucket bounds)</p></section>",
        "<section><h2>Incidents</h2>"
        + _table(
            ("started", "resolved", "duration", "reason", "message", "failed runs"),
            incidents,
            empty="No incident in the last 90 days.",
        )
        + "</section>",
        f'<section><h2>Last result</h2><dl class="facts">{dl}</dl>'
        + _table(("phase", "seconds"), phase_rows, empty="No phase measured.")
        + "<details><summary>Full result (JSON)</summary><pre>"
        + _ESC(json.dumps(last, indent=2, sort_keys=True))
        + "</pre></details></section>",
    ]
    watch = item.get("watch")
    if watch:
        wrows = [(_ESC(k), _ESC(str(v))) for k, v in watch.items()]
        wrows.insert(
            0,
            (
                "connected for",
                ago(now - watch["session_started"]) if watch.get("session_started") else "–",
            ),
        )
        sections.append(
            "<section><h2>Watch session</h2>" + _table(("", ""), wrows, empty="") + "</section>"
        )
    relay = last.get("relay") or {}
    if relay:
        rrows = [(_ESC(k), ms(v)) for k, v in relay.items()]
        sections.append(
            "<section><h2>Relay delivery</h2>"
            + _table(("receiver", "latency"), rrows, empty="")
            + "</section>"
        )
    name = quote(item["name"], safe="")
    badges = "".join(
        f'<img src="{base}/badges/{name}/{b}.svg" alt="{_ESC(b)} badge" loading="lazy"> '
        for b in ("status", "uptime/24h", "uptime/7d", "uptime/30d", "uptime/90d", "latency")
    )
    sections.append(f'<section><h2>Badges</h2><p class="badges">{badges}</p></section>')
    return "".join(sections)


def check_header(item: Mapping[str, Any], state: str, *, base: str, location: str) -> str:
    """Name, state, kind, URL and labels of one check (static part of its page)."""
    return (
        f'<nav class="back"><a href="{base}/">← all checks</a></nav>'
        f"<h1>{_pill(state)} {_ESC(item['name'])}</h1>"
        f'<p class="sub">{_ESC(item["kind"])} · <code>{_ESC(item["url"])}</code> · '
        f"{_ESC(location)} {_labels(item.get('labels', {}))}</p>"
    )
