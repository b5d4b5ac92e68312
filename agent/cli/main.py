"""The ``wsprobe`` command line: ``run``, ``check-config``, ``probe``, ``connect``,
``demo-server``, ``schema``.

Exit codes: 0 success, 1 probe failed / config invalid (``check-config``), 2 usage or
configuration error. The daemon and demo modules are imported inside their commands so
``probe`` and ``check-config`` start fast.

Nothing given on the command line is echoed back: ``--bearer``, ``--basic``, ``-H``
values and URL credentials may be secrets, so messages name the flag, never its value.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent import __version__
from agent.cli.check_flags import add_probe_arguments
from agent.cli.connect import add_connect_arguments, run_connect_command
from agent.cli.probe import run_probe_command
from agent.logs import LOG_FORMATS, LOG_LEVELS, add_fields, setup_logging

__all__ = ["BROKEN_PIPE_EXIT", "DEFAULT_CONFIG", "FALLBACK_CONFIG", "find_config", "main"]

#: Config file used when ``-c`` is not given (``$WSPROBE_CONFIG`` overrides it) ...
DEFAULT_CONFIG = "wsprobe.yaml"
#: ... and the one used when that does not exist either (the repository's example).
FALLBACK_CONFIG = "config.example.yaml"

#: Exit status when stdout's reader went away (128 + SIGPIPE, as the shell reports it).
BROKEN_PIPE_EXIT = 141

log = logging.getLogger(__name__)

_PROBE_EXAMPLES = """\
examples:
  once:        wsprobe probe ws://127.0.0.1:8765/echo --pings 5
  auth:        wsprobe probe ws://127.0.0.1:8765/auth --bearer demo-token --json
  negative:    wsprobe probe ws://127.0.0.1:8765/auth --expect-status 401
  configured:  wsprobe probe --check demo-echo -c config.example.yaml
  like ping:   wsprobe probe ws://127.0.0.1:8765/echo --count 10 --interval 0.5
  until ^C:    wsprobe probe ws://127.0.0.1:8765/echo --count 0 --json
  verbose:     wsprobe probe ws://127.0.0.1:8765/echo -v --send hi --expect hi
  binary step: wsprobe probe ws://127.0.0.1:8765/echo --send-binary aGk= -vv
  scripts:     wsprobe probe ws://127.0.0.1:8765/echo -q && echo up
"""

_CONNECT_EXAMPLES = """\
examples:
  interactive: wsprobe connect ws://127.0.0.1:8765/echo
               then type text, /json {"a": 1}, /binary 6869, /ping, /close 1000 bye
  with auth:   wsprobe connect ws://127.0.0.1:8765/auth --bearer demo-token
  verbose:     wsprobe connect ws://127.0.0.1:8765/auth -v   (why was the upgrade refused?)
  piped:       printf 'hello\\n/ping\\n' | wsprobe connect ws://127.0.0.1:8765/echo --wait 2
"""


def find_config(given: str | None) -> Path:
    """Which config file a command uses.

    ``-c FILE`` if given, else ``$WSPROBE_CONFIG``, else ``wsprobe.yaml`` in the working
    directory, else ``config.example.yaml`` there (so a fresh clone works). When none
    exists the first candidate is returned and loading reports it missing.
    """
    if given:
        return Path(given)
    env = os.environ.get("WSPROBE_CONFIG")
    if env:
        return Path(env)
    for candidate in (DEFAULT_CONFIG, FALLBACK_CONFIG):
        if Path(candidate).is_file():
            return Path(candidate)
    return Path(DEFAULT_CONFIG)


class _ExamplesFormatter(argparse.HelpFormatter):
    """Wraps the description as usual; keeps an ``examples:`` epilog's lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help=f"agent config file (default: $WSPROBE_CONFIG, else {DEFAULT_CONFIG},"
        f" else {FALLBACK_CONFIG})",
    )


def _common() -> argparse.ArgumentParser:
    """Logging flags accepted before or after the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("logging")
    # SUPPRESS: a subcommand that is not given the flag keeps the top-level value.
    group.add_argument(
        "--log-format", choices=LOG_FORMATS, default=argparse.SUPPRESS, help="default: text"
    )
    group.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        type=str.lower,
        default=argparse.SUPPRESS,
        help="default: info (warning for probe and check-config)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for docs and tests)."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="wsprobe",
        description="WebSocket monitoring and synthetic-probe agent.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"wsprobe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add_command(
        name: str, handler: Callable[[argparse.Namespace], int], **options: Any
    ) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=[common], **options)
        command.set_defaults(handler=handler)
        return command

    run = add_command(
        "run",
        _cmd_run,
        help="run the agent: schedule checks, serve HTTP, send alerts",
        description="Run the agent until SIGTERM/SIGINT. SIGHUP or POST /-/reload reloads"
        " the configuration.",
    )
    _config_argument(run)
    run.add_argument(
        "--demo", action="store_true", help="also start the demo targets on 127.0.0.1:8765"
    )
    run.add_argument(
        "--shard",
        metavar="K/N|auto",
        help="run only shard K of N (1-based; rendezvous hash of the check name); auto:"
        " K from the StatefulSet pod ordinal ($WSPROBE_POD_INDEX or hostname NAME-K)",
    )
    run.add_argument(
        "--shard-count",
        metavar="N",
        type=int,
        help="with --shard auto: the number of shards (default: $WSPROBE_SHARD_COUNT)",
    )
    run.add_argument(
        "--processes",
        metavar="N|auto",
        help="run N agent processes, one shard each (auto: one per usable CPU); agent p"
        " serves HTTP on the configured port + p-1 and keeps its state in STATE_DIR/shard-p",
    )
    run.add_argument("--listen", metavar="HOST:PORT", help="HTTP address, instead of agent.listen")
    run.add_argument(
        "--state-dir", metavar="DIR", help="state directory, instead of agent.state_dir"
    )

    check = add_command(
        "check-config",
        _cmd_check_config,
        help="validate the agent config and every check file",
        description="Validate the agent config and every check file it names. Prints every"
        " problem as FILE:LINE: key.path: message. Exit 0 when valid, 1 when not.",
    )
    _config_argument(check)

    probe = add_command(
        "probe",
        _cmd_probe,
        help="probe one URL (or one configured check) now, once or like ping",
        description="Run one probe now and print its phase table (or --json); with --count,"
        " repeat like ping and end with a summary. Exit 0 when every run succeeded, 1 when"
        " one failed, 2 on a usage or configuration error.",
        epilog=_PROBE_EXAMPLES,
        formatter_class=_ExamplesFormatter,
    )
    _config_argument(probe)
    add_probe_arguments(probe)

    connect = add_command(
        "connect",
        _cmd_connect,
        help="interactive session (like wscat), or send lines piped in",
        description="Open a WebSocket and send each line typed or piped in as a text"
        " message; print every message received with its time. Exit 0 on a clean close,"
        " 1 when the connection failed or ended otherwise, 2 on a usage error.",
        epilog=_CONNECT_EXAMPLES,
        formatter_class=_ExamplesFormatter,
    )
    add_connect_arguments(connect)

    demo = add_command(
        "demo-server",
        _cmd_demo,
        help="run the built-in demo targets alone",
        description="Serve the demo targets (/echo, /auth, /feed, /chat, /flaky) until"
        " SIGINT/SIGTERM, and real Socket.IO, GraphQL, MQTT (Mosquitto, if installed) and"
        " STOMP (RabbitMQ, if installed) servers on the next three ports.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    demo.add_argument("--port", type=int, default=8765, help="TCP port (default: %(default)s)")
    demo.add_argument(
        "--no-protocols",
        action="store_true",
        help="serve only the WebSocket paths: no Socket.IO, GraphQL, MQTT or STOMP targets",
    )

    add_command(
        "schema",
        _cmd_schema,
        help="print the JSON Schema of the configuration",
        description="Print the JSON Schema (draft 2020-12) of an agent config file or a check"
        " file, for editors: add '# yaml-language-server: $schema=PATH' to a file.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wsprobe`` console script.

    Args:
        argv: arguments without the program name (``sys.argv[1:]`` by default).

    Returns:
        The process exit code.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    quiet = args.command in ("probe", "check-config", "connect")
    level = getattr(args, "log_level", None) or ("warning" if quiet else "info")
    if getattr(args, "quiet", False) and not getattr(args, "log_level", None):
        level = "critical"  # -q: the exit status only
    setup_logging(level=level, fmt=getattr(args, "log_format", "text"))
    # The process is this command (console script, python -m agent), not a caller's test.
    args.whole_process = argv is None
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`wsprobe probe URL --count 0 | head`): end quietly, as ping
        # does on SIGPIPE; stdout goes to /dev/null so the interpreter's final flush of
        # it does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return BROKEN_PIPE_EXIT
    return code


def _error(command: str, message: str) -> int:
    print(f"wsprobe {command}: error: {message}", file=sys.stderr)
    return 2


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _cmd_check_config(args: argparse.Namespace) -> int:
    from agent.config.loader import ConfigError, load_config_with_warnings
    from agent.runtime.gc_policy import gc_paused
    from agent.runtime.registries import REGISTRIES

    path = find_config(args.config)
    try:
        # Everything the load allocates stays alive until exit: collecting it is waste.
        with gc_paused():
            loaded = load_config_with_warnings(path, registries=REGISTRIES)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue)
        print(_count(len(exc.issues), "error"))
        return 1
    for warning in loaded.warnings:
        print(warning)
    config = loaded.config
    parts = [
        f"{_count(len(config.checks), 'check')} in {_count(len(loaded.files), 'file')}",
        _count(len(config.receivers), "receiver"),
    ]
    if loaded.warnings:
        parts.append(_count(len(loaded.warnings), "warning"))
    print(f"{loaded.files[0]}: OK: {', '.join(parts)}")
    return 0


def _cmd_probe(args: argparse.Namespace) -> int:
    return run_probe_command(args, config_path=find_config(args.config) if args.check else None)


def _cmd_connect(args: argparse.Namespace) -> int:
    return run_connect_command(args)


def _processes(text: str | None) -> int:
    """``--processes``: a count, or ``auto`` for the CPUs this process may use."""
    if text is None:
        return 1
    if text == "auto":
        try:
            return len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not Linux, or a system-call filter refuses it
            return os.cpu_count() or 1
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"must be a positive integer or auto, got {text!r}")
    return int(text)


def _cmd_run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from agent.runtime.overrides import AgentOverrides
    from agent.runtime.readiness import die_with_parent, exit_now
    from agent.runtime.shard import auto_shard, parse_shard

    supervised = die_with_parent()
    try:
        processes = _processes(args.processes)
    except ValueError as exc:
        return _error("run", f"--processes: {exc}")
    try:
        overrides = AgentOverrides(listen=args.listen, state_dir=args.state_dir)
    except ValidationError as exc:
        return _error("run", f"--listen: {exc.errors()[0]['msg'].removeprefix('Value error, ')}")
    if processes > 1:
        if args.shard is not None:
            return _error(
                "run",
                "--processes cannot be combined with --shard: run one agent per host shard,"
                " or more shards (--shard K/N with a larger N)",
            )
        from agent.runtime.processes import run_processes

        return run_processes(
            find_config(args.config),
            processes=processes,
            demo=args.demo,
            overrides=overrides,
            log_format=getattr(args, "log_format", "text"),
            log_level=getattr(args, "log_level", None) or "info",
        )
    shard: tuple[int, int] | None = None
    if args.shard_count is not None and args.shard != "auto":
        return _error("run", "--shard-count goes with --shard auto")
    if args.shard is not None:
        try:
            if args.shard == "auto":
                shard = auto_shard(
                    environ=os.environ, hostname=socket.gethostname(), count=args.shard_count
                )
            else:
                shard = parse_shard(args.shard)
        except ValueError as exc:
            return _error("run", f"--shard: {exc}")
    if shard is not None:
        add_fields(shard=f"{shard[0]}/{shard[1]}")
    from agent.runtime.serve import serve

    code = serve(find_config(args.config), demo=args.demo, shard=shard, overrides=overrides)
    if supervised or args.whole_process:
        exit_now(code)
    return code


def _cmd_schema(args: argparse.Namespace) -> int:
    from agent.config.schema import schema_text
    from agent.notifiers import NOTIFIERS
    from agent.probes import PROBES
    from agent.probes.protocols import PROTOCOLS

    sys.stdout.write(schema_text(kinds=PROBES, receiver_types=NOTIFIERS, protocols=PROTOCOLS))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        return _error("demo-server", "--port must be between 0 and 65535")
    from agent.demo import ProtocolPorts
    from agent.demo import main as demo_main

    ports = None if args.no_protocols else ProtocolPorts.after(args.port)
    return demo_main(host=args.host, port=args.port, protocol_ports=ports)
