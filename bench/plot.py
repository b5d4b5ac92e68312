"""One PNG summarising a bench run: throughput, CPU per cycle, fidelity error, lag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot"]


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def plot(results: dict[str, Any], path: Path) -> str | None:
    """Write the figure to ``path``; returns why not when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed (pip install -e '.[bench]')"
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    engine = results.get("engine", {})
    points = engine.get("points", [])
    conc = [p["concurrency"] for p in points]
    ax = axes[0][0]
    for name in ("bare", "wsprobe"):
        if points and name in points[0]:
            ax.plot(conc, [p[name]["cycles_per_s"] for p in points], marker="o", label=name)
    ax.set(xscale="log", xlabel="concurrency", ylabel="probe cycles/s", title="Engine throughput")
    _legend(ax)
    ax = axes[0][1]
    for name in ("bare", "wsprobe"):
        if points and name in points[0]:
            ax.plot(
                conc,
                [(p[name]["cpu_s_per_cycle"] or 0) * 1000 for p in points],
                marker="o",
                label=name,
            )
    ax.set(xscale="log", xlabel="concurrency", ylabel="CPU ms / cycle", title="CPU per cycle")
    _legend(ax)
    fid = results.get("fidelity", {})
    levels = fid.get("levels", [])
    checks = [lv["checks"] for lv in levels]
    ax = axes[1][0]
    for phase in ("connect", "handshake", "ping"):
        ys = [lv["error_all"][phase]["p99_ms"] for lv in levels]
        if any(y is not None for y in ys):
            ax.plot(checks, ys, marker="o", label=f"{phase} p99")
    ys = [lv["error_clean"]["ping"]["p99_ms"] for lv in levels]
    if any(y is not None for y in ys):
        ax.plot(checks, ys, marker="x", linestyle="--", label="ping p99, not lag_suspect")
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set(
        xlabel="checks at 30 s interval (same core)",
        ylabel="error ms (measured - truth)",
        title="Fidelity vs delay proxy",
    )
    _legend(ax)
    ax = axes[1][1]
    ax.plot(checks, [lv["loop_lag"]["p99_ms"] for lv in levels], marker="o", label="fidelity p99")
    for name in ("bare", "wsprobe"):
        if points and name in points[0]:
            ax.plot(
                conc,
                [p[name]["runs"][0]["loop_lag"]["p99_ms"] for p in points],
                marker="s",
                label=f"engine {name} p99 (x = concurrency)",
            )
    ax.set(xscale="symlog", xlabel="checks / concurrency", ylabel="ms", title="Loop lag p99")
    _legend(ax)
    fig.suptitle(f"wsprobe bench {results.get('started', '')}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None
