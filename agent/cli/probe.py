"""``wsprobe probe``: the check from ``--check NAME`` or from flags, run once or repeated.

The flags and their translation into a validated check are :mod:`agent.cli.check_flags`;
how the runs are shown (once, repeated, traced, quiet) is :mod:`agent.cli.probe_session`.
The run itself goes through the daemon's pipeline (:class:`agent.runtime.runner.Runner`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from agent.cli.check_flags import UsageError, check_from_flags, refuse_target_flags
from agent.config.models import CheckConfig
from agent.result import ProbeResult

if TYPE_CHECKING:
    from agent.probes import ProbeFn

__all__ = ["run_probe_command"]

log = logging.getLogger(__name__)


def _from_config(args: argparse.Namespace, config_path: Path) -> CheckConfig:
    from agent.config.loader import ConfigError, load_config
    from agent.runtime.registries import REGISTRIES

    refuse_target_flags(args)
    try:
        config = load_config(config_path, registries=REGISTRIES)
    except ConfigError as exc:
        raise UsageError(f"{config_path} is invalid:\n{exc}") from None
    for check in config.checks:
        if check.name == args.check:
            return check
    known = ", ".join(c.name for c in config.checks) or "none"
    raise UsageError(f"no check named {args.check!r} in {config_path} (known: {known})")


def run_probe_command(args: argparse.Namespace, *, config_path: Path | None) -> int:
    """Build the check, run it once (or ``--count`` times), print the result(s).

    Args:
        args: parsed ``wsprobe probe`` arguments.
        config_path: the agent config when ``--check`` is given.

    Returns:
        0 success (every run), 1 a probe failed, 2 usage or configuration error.
    """
    from agent.cli.probe_session import Presentation, present
    from agent.probes import PROBES

    try:
        check = _from_config(args, config_path) if config_path else check_from_flags(args)
        presentation = Presentation.from_args(args)
    except (UsageError, ValueError) as exc:
        for line in str(exc).splitlines():
            print(f"wsprobe probe: error: {line}", file=sys.stderr)
        return 2
    if check.kind not in PROBES:
        print(f"wsprobe probe: error: kind {check.kind!r} cannot run once", file=sys.stderr)
        return 2
    if check.tls.insecure_skip_verify:
        log.warning("certificate verification is disabled for this probe")

    async def run_once(check: CheckConfig) -> ProbeResult:
        return await _run(check, PROBES)

    return present(check, presentation, run_once=run_once)


async def _run(check: CheckConfig, probes: Mapping[str, ProbeFn]) -> ProbeResult:
    """The daemon's pipeline for one run, with no sinks: the result is printed instead."""
    from agent.runtime.runner import Runner

    runner = Runner(probes=probes, max_concurrency=1, log_results=False)
    runner.set_checks([check])
    return await runner.run_check(check)
