"""Run the agent with a variant of its loop-lag monitor, for :mod:`bench.daemon_ab`.

``python -m bench.lag_variant VARIANT -- run -c FILE`` patches
:mod:`agent.runtime.loop_lag` in this process only, then runs the agent's command line:

- ``as-is``: no change;
- ``oversleep``: round trips and the pacer's oversleep, without the run-queue wait
  (for an agent older than that change; today's monitor is exactly this);
- ``roundtrip``: round trips only: no run-queue wait, no pacer oversleep;
- ``interval=S``: the pacer samples every ``S`` seconds instead of the default;
- ``off``: no monitor at all (no sampling, admission never waits, nothing flagged);
- ``switch=S``: the interpreter's thread switch interval set to ``S`` seconds;
- ``gc=A,B,C``: the cyclic GC's thresholds while serving instead of
  ``agent.runtime.gc_policy.GC_THRESHOLDS``;
- ``holds``: as-is, plus :mod:`bench.loop_holds`' watcher (what holds the loop);
- ``A+B``: both.

The product has no switch for these on purpose: they exist to separate what the monitor
measures from what it costs, in a bench, not to be turned off in production.
"""

from __future__ import annotations

import os
import sys
import types

from agent.cli.main import main as agent_main
from agent.runtime import loop_lag

__all__ = ["apply", "main"]


def apply(variant: str) -> None:
    """Patch the loop-lag monitor of this process as ``variant`` says."""
    if "+" in variant:
        for part in variant.split("+"):
            apply(part)
        return
    monitor = loop_lag.LoopLagMonitor
    if variant == "as-is":
        return
    if variant.startswith("switch="):
        sys.setswitchinterval(float(variant.split("=", 1)[1]))
        return
    if variant.startswith("gc="):
        from agent.runtime import gc_policy

        thresholds = tuple(int(x) for x in variant.split("=", 1)[1].split(","))
        gc_policy.GC_THRESHOLDS = thresholds  # type: ignore[assignment]
        return
    if variant == "holds":
        from bench.loop_holds import HOLDS_ENV, install

        path, hold, sample = os.environ[HOLDS_ENV].rsplit(":", 2)
        install(path, hold=float(hold), sample=sample == "1")
        return
    if variant in ("oversleep", "roundtrip") and hasattr(loop_lag, "open_schedstat"):
        loop_lag.open_schedstat = lambda: None
    if variant == "oversleep":
        return
    if variant == "roundtrip":
        # A switch interval of an hour: no oversleep ever exceeds it.
        loop_lag.sys = types.SimpleNamespace(getswitchinterval=lambda: 3600.0)  # type: ignore[assignment]
        return
    if variant.startswith("interval="):
        defaults = dict(monitor.__init__.__kwdefaults__ or {})
        defaults["interval"] = float(variant.split("=", 1)[1])
        monitor.__init__.__kwdefaults__ = defaults
        return
    if variant == "off":
        monitor.start = lambda self: None  # type: ignore[method-assign]
        return
    raise SystemExit(f"lag_variant: unknown variant {variant!r}")


def main(argv: list[str]) -> int:
    """Apply ``argv[0]`` and run the agent with the arguments after ``--``."""
    if len(argv) < 2 or argv[1] != "--":
        raise SystemExit("usage: python -m bench.lag_variant VARIANT -- ARGS...")
    apply(argv[0])
    return agent_main(argv[2:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
