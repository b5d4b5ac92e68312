"""Server-rendered SVG charts of the status page: sparkline, availability bar, and the
latency chart with phases stacked.

Plain strings built with ``html.escape``; colours come from CSS classes so the page's
light and dark themes apply to them. Raises nothing: empty data draws an empty frame.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from datetime import UTC, datetime

__all__ = ["availability_bar", "latency_chart", "legend", "sparkline"]

_PALETTE_SIZE = 8


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def sparkline(values: Sequence[float | None], *, width: int = 120, height: int = 24) -> str:
    """A latency line over ``values`` (seconds, None for no data)."""
    known = [v for v in values if v is not None]
    label = "no latency data" if not known else f"latency, last {_ms(known[-1])}"
    head = (
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' role="img" aria-label="{html.escape(label)}">'
    )
    if not known:
        return head + "</svg>"
    top = max(known) or 1.0
    step = width / max(1, len(values) - 1)
    if len(known) == 1:
        last = max(i for i, v in enumerate(values) if v is not None)
        cx = min(last * step, width - 3)
        return f'{head}<circle class="spark-dot" cx="{cx:.1f}" cy="{height / 2}" r="2"/></svg>'
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}"
        for i, v in enumerate(values)
        if v is not None
    )
    return f'{head}<polyline class="spark-line" fill="none" points="{points}"/></svg>'


@functools.lru_cache(maxsize=8)
def _segments(n: int, width: int, height: int) -> tuple[str, ...]:
    """Path segments of the ``n`` day slots (the same for every check: formatted once)."""
    w = width / n
    return tuple(
        f"M{i * w:.1f} 0h{max(w - 1, 1):.1f}v{height}h-{max(w - 1, 1):.1f}z" for i in range(n)
    )


def availability_bar(
    days: Sequence[tuple[int, int, int] | None],
    *,
    width: int = 270,
    height: int = 22,
    compact: bool = False,
) -> str:
    """One bar per day, oldest first: ``(day_ts, runs, fails)`` or None for no data.

    ``compact`` draws one path per colour and no per-day tooltips: the overview shows
    thousands of these, and a rectangle with a title per day was ~10 KB per check.
    """
    n = max(1, len(days))
    w = width / n
    known = [d for d in days if d is not None and d[1]]
    runs = sum(d[1] for d in known)
    fails = sum(d[2] for d in known)
    summary = "no data" if not runs else f"{(runs - fails) / runs * 100:.2f}% of {runs} runs"
    parts = [
        f'<svg class="avail" viewBox="0 0 {width} {height}" preserveAspectRatio="none"'
        f' width="100%" height="{height}" role="img" aria-label="availability per day,'
        f' last {len(days)} days: {summary}">'
    ]
    paths: dict[str, list[str]] = {"a-none": [], "a-ok": [], "a-part": [], "a-bad": []}
    for i, day in enumerate(days):
        title = "no data"
        if day is None or not day[1]:
            cls = "a-none"
        else:
            share = (day[1] - day[2]) / day[1]
            cls = "a-ok" if day[2] == 0 else ("a-bad" if share < 0.95 else "a-part")
            if not compact:  # the dates cost most of a compact bar's time
                title = f"{_day(day[0])}: {share * 100:.2f}% of {day[1]} runs"
        if compact:
            paths[cls].append(_segments(n, width, height)[i])
        else:
            parts.append(
                f'<rect class="{cls}" x="{i * w:.2f}" y="0" width="{max(w - 1, 1):.2f}"'
                f' height="{height}"><title>{html.escape(title)}</title></rect>'
            )
    for cls, segments in paths.items():
        if segments:
            parts.append(f'<path class="{cls}" d="{"".join(segments)}"/>')
    parts.append("</svg>")
    return "".join(parts)


def latency_chart(
    points: Sequence[tuple[int, dict[str, float]]],
    phases: Sequence[str],
    *,
    start: int,
    end: int,
    step: int,
    width: int = 720,
    height: int = 240,
    title: str = "latency",
) -> str:
    """Mean latency per bucket with ``phases`` stacked (seconds), one bar per bucket.

    Args:
        points: ``(bucket_ts, {phase: mean seconds})``, oldest first.
        phases: stacking order (bottom first).
        start: Unix time of the left edge.
        end: Unix time of the right edge.
        step: seconds per bucket (a bar's width).
        width: drawing width.
        height: drawing height.
        title: the accessible name.
    """
    left, bottom, top_pad, right = 56, 22, 8, 8
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    totals = [sum(p.get(ph, 0.0) for ph in phases) for _, p in points]
    peak = max(totals, default=0.0) or 0.001
    span = max(1, end - start)
    bar_w = max(1.0, step / span * plot_w - 1)
    base_y = top_pad + plot_h
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img"'
        f' aria-label="{html.escape(title)}" data-points="{len(points)}">'
    ]
    for frac in (0.0, 0.5, 1.0):
        gy = base_y - frac * plot_h
        out.append(
            f'<line class="grid" x1="{left}" y1="{gy:.1f}" x2="{width - right}" y2="{gy:.1f}"/>'
            f'<text class="tick" x="{left - 4}" y="{gy + 4:.1f}" text-anchor="end">'
            f"{_ms(peak * frac)}</text>"
        )
    for (ts, means), total in zip(points, totals, strict=True):
        x = left + (ts - start) / span * plot_w
        if x < left - bar_w or x > width - right:
            continue
        when = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
        detail = ", ".join(f"{ph} {_ms(means[ph])}" for ph in phases if means.get(ph))
        out.append(f'<g class="bar"><title>{when}: {_ms(total)} ({html.escape(detail)})</title>')
        y = float(base_y)
        for k, phase in enumerate(phases):
            value = means.get(phase, 0.0)
            if value <= 0:
                continue
            h = value / peak * plot_h
            y -= h
            out.append(
                f'<rect class="ph{k % _PALETTE_SIZE}" x="{x:.1f}" y="{y:.2f}"'
                f' width="{bar_w:.1f}" height="{max(h, 0.5):.2f}"/>'
            )
        out.append("</g>")
    if not points:
        out.append(
            f'<text class="tick" x="{left + plot_w / 2}" y="{top_pad + plot_h / 2}"'
            ' text-anchor="middle">no data yet</text>'
        )
    out.append(f'<line class="axis" x1="{left}" y1="{base_y}" x2="{width - right}" y2="{base_y}"/>')
    for ts, x, anchor in ((start, left, "start"), (end, width - right, "end")):
        label = datetime.fromtimestamp(ts, UTC).strftime("%m-%d %H:%M")
        out.append(
            f'<text class="tick" x="{x}" y="{height - 6}" text-anchor="{anchor}">{label}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def legend(phases: Sequence[str]) -> str:
    """The colour key of :func:`latency_chart`."""
    items = "".join(
        f'<li><span class="sw ph{k % _PALETTE_SIZE}"></span>{html.escape(p)}</li>'
        for k, p in enumerate(phases)
    )
    return f'<ul class="legend">{items}</ul>'
