"""How ``wsprobe probe`` presents its runs: once or repeated, table or JSON, traced or quiet.

One run prints the phase table (or one JSON object); ``--count`` hands over to
:mod:`agent.cli.repeat`. ``-v`` traces the wire to stderr (:mod:`agent.cli.verbose`),
so stdout stays the result (a ``--json`` pipe is not broken by it); ``-q`` prints
nothing at all.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from typing import TextIO

from agent.cli.output import render_json, render_table
from agent.cli.repeat import RunOnce, repeat
from agent.cli.style import Style, use_color
from agent.cli.verbose import Tracer, tracing
from agent.config.models import CheckConfig
from agent.config.types import parse_duration
from agent.probes.dial.upgrade import check_secrets
from agent.result import ProbeResult

__all__ = ["DEFAULT_REPEAT_INTERVAL", "Presentation", "present"]

#: Seconds between run starts with ``--count`` when ``--interval`` is not given (ping's).
DEFAULT_REPEAT_INTERVAL = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Presentation:
    """The output flags of ``wsprobe probe``."""

    count: int | None = None
    interval: float = DEFAULT_REPEAT_INTERVAL
    as_json: bool = False
    verbose: int = 0
    quiet: bool = False
    no_color: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Presentation:
        """Read and check the flags.

        Raises:
            ValueError: a bad ``--count`` or ``--interval`` (the message names the flag).
        """
        if args.count is not None and args.count < 0:
            raise ValueError("--count must be 0 (until Ctrl-C) or more")
        interval = DEFAULT_REPEAT_INTERVAL
        if args.interval is not None:
            if args.count is None:
                raise ValueError("--interval goes with --count")
            try:
                interval = float(parse_duration(args.interval))
            except (TypeError, ValueError):
                raise ValueError("--interval must be a duration of 0 or more: 1, 0.5, 2s") from None
        return cls(
            count=args.count,
            interval=interval,
            as_json=args.json,
            verbose=args.verbose,
            quiet=args.quiet,
            no_color=args.no_color,
        )


def present(check: CheckConfig, how: Presentation, *, run_once: RunOnce) -> int:
    """Run ``check`` as ``how`` says and print the outcome.

    Returns:
        0 when every run succeeded, 1 otherwise (also when no run completed).
    """
    out = None if how.quiet else sys.stdout
    style = Style(color=use_color(sys.stdout, no_color=how.no_color))
    if how.verbose:
        tracer = Tracer(
            sys.stderr,
            style=Style(color=use_color(sys.stderr, no_color=how.no_color)),
            secrets=check_secrets(check),
            secret_headers=list(check.auth.headers),
        )

        async def traced(check: CheckConfig) -> ProbeResult:
            tracer.restart()
            return await run_once(check)

        with tracing(tracer, addresses=how.verbose >= 2):
            return _present(check, how, run_once=traced, out=out, style=style)
    return _present(check, how, run_once=run_once, out=out, style=style)


async def _once(run_once: RunOnce, check: CheckConfig) -> ProbeResult:
    return await run_once(check)


def _present(
    check: CheckConfig,
    how: Presentation,
    *,
    run_once: RunOnce,
    out: TextIO | None,
    style: Style,
) -> int:
    if how.count is None:
        result = asyncio.run(_once(run_once, check))
        if out is not None:
            text = render_json(result) if how.as_json else render_table(result, style=style)
            print(text, file=out)
        return 0 if result.success else 1
    summary = asyncio.run(
        repeat(
            check,
            run_once=run_once,
            count=how.count,
            interval=how.interval,
            as_json=how.as_json,
            style=style,
            out=out,
        )
    )
    return 0 if summary.runs and not summary.failed else 1
