"""Command-line flags that describe a target, and the validated check they make.

Flags are turned into the same mapping a check file holds and validated by the same
code (:func:`agent.config.loader.validate_check`), so a flag accepts exactly what the
YAML key accepts. To add flags, add them in :func:`add_target_arguments` (request,
auth, TLS: shared by ``wsprobe probe`` and ``wsprobe connect``) or
:func:`add_probe_arguments` (the probe's own) and put their keys into the mapping in
:func:`check_data`; list their destinations in ``_TARGET_FLAGS`` so ``--check`` refuses
them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from agent.config.models import DEFAULT_INTERVAL, CheckConfig
from agent.config.types import parse_duration

__all__ = [
    "PROBE_CHECK_NAME",
    "UsageError",
    "add_probe_arguments",
    "add_target_arguments",
    "check_data",
    "check_from_flags",
    "refuse_target_flags",
]

#: Name of the check built from flags (shown in output and JSON).
PROBE_CHECK_NAME = "cli"

#: Check key path -> the flag that sets it, so validation errors name the flag.
_FLAG_OF: dict[str, str] = {
    "url": "URL",
    "timeout": "--timeout",
    "pings": "--pings",
    "ping_timeout": "--ping-timeout",
    "subprotocols": "--subprotocol",
    "protocol": "--protocol",
    "protocol.name": "--protocol",
    "expect.status": "--expect-status",
    "expect.subprotocol": "--expect-subprotocol",
    "expect.close_code": "--expect-close-code",
    "tls.ca_file": "--cacert",
    "tls.cert_file": "--cert",
    "tls.key_file": "--key",
    "tls.server_name": "--server-name",
    "tls.min_version": "--tls-min",
    "max_size": "--max-size",
    "proxy": "--proxy",
    "auth": "--bearer/--basic",
    "auth.headers": "-H/--header",
    "headers": "--origin",
    "ip_version": "-4/-6",
    "steps": "--send/--send-json/--send-binary/--expect",
}

#: Flags that describe a target; with --check they would be silently ignored, so refuse.
_TARGET_FLAGS = (
    "url",
    "header",
    "bearer",
    "basic",
    "subprotocol",
    "protocol",
    "expect_subprotocol",
    "expect_status",
    "expect_close_code",
    "pings",
    "ping_timeout",
    "timeout",
    "cacert",
    "cert",
    "key",
    "insecure",
    "server_name",
    "tls_min",
    "origin",
    "proxy",
    "ip_version",
    "max_size",
    "compression",
    "follow_redirects",
    "script",
)


def add_probe_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``wsprobe probe``: target, output, repetition, expectations, steps."""
    parser.add_argument("url", nargs="?", metavar="URL", help="ws:// or wss:// URL to probe")
    parser.add_argument("--check", metavar="NAME", help="run the configured check NAME instead")
    out = parser.add_argument_group("output and repetition")
    out.add_argument("--json", action="store_true", help="JSON: one object per run (+ summary)")
    out.add_argument(
        "--count", type=int, metavar="N", help="run N times like ping (0: until Ctrl-C)"
    )
    out.add_argument(
        "--interval", metavar="SECONDS", help="with --count: from run start to start (1s)"
    )
    loud = out.add_mutually_exclusive_group()
    loud.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="headers, TLS and frames on stderr; -vv adds the addresses tried",
    )
    loud.add_argument("-q", "--quiet", action="store_true", help="print nothing; exit status only")
    out.add_argument("--no-color", action="store_true", help="no colour (also: NO_COLOR set)")
    add_target_arguments(parser)
    _add_expectations(parser)


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the request, authentication and TLS flags (shared by ``probe`` and ``connect``)."""
    target = parser.add_argument_group("request")
    target.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra upgrade request header (repeatable; values treated as secrets)",
    )
    target.add_argument("--origin", metavar="ORIGIN", help="send this Origin header")
    target.add_argument(
        "--subprotocol", action="append", default=[], metavar="NAME", help="request (repeatable)"
    )
    target.add_argument(
        "--protocol", metavar="NAME", help="speak NAME (socketio, mqtt, stomp, graphql-...)"
    )
    target.add_argument("--compression", action="store_true", help="offer permessage-deflate")
    target.add_argument("--max-size", metavar="BYTES", help="largest message accepted (1MiB)")
    target.add_argument("--proxy", metavar="URL", help="connect through this proxy")
    target.add_argument(
        "--follow-redirects", action="store_true", help="follow HTTP redirects of the upgrade"
    )
    family = target.add_mutually_exclusive_group()
    family.add_argument("-4", dest="ip_version", action="store_const", const="4", help="IPv4 only")
    family.add_argument("-6", dest="ip_version", action="store_const", const="6", help="IPv6 only")

    auth = parser.add_argument_group("authentication")
    creds = auth.add_mutually_exclusive_group()
    creds.add_argument("--bearer", metavar="TOKEN", help="send Authorization: Bearer TOKEN")
    creds.add_argument("--basic", metavar="USER:PASS", help="send HTTP basic credentials")

    tls = parser.add_argument_group("TLS")
    tls.add_argument("--cacert", metavar="FILE", help="trust this CA bundle (PEM)")
    tls.add_argument("--cert", metavar="FILE", help="client certificate (PEM) for mTLS")
    tls.add_argument("--key", metavar="FILE", help="client private key (PEM)")
    tls.add_argument("--server-name", metavar="NAME", help="SNI and name to verify")
    tls.add_argument("--tls-min", choices=("1.2", "1.3"), help="minimum TLS version")
    tls.add_argument("-k", "--insecure", action="store_true", help="skip certificate verification")


def _add_expectations(parser: argparse.ArgumentParser) -> None:
    expect = parser.add_argument_group("expectations")
    expect.add_argument(
        "--expect-status",
        type=int,
        metavar="CODE",
        help="upgrade status that means success (default 101; e.g. 401 for a negative check)",
    )
    expect.add_argument(
        "--expect-subprotocol", metavar="NAME", help="subprotocol the server must choose"
    )
    expect.add_argument("--expect-close-code", type=int, metavar="CODE", help="close code")
    expect.add_argument("--pings", type=int, metavar="N", help="protocol pings (default 3)")
    expect.add_argument("--ping-timeout", metavar="SECONDS", help="per ping (default 2s)")
    expect.add_argument(
        "--timeout", metavar="SECONDS", help="deadline of the whole probe (default 10s)"
    )

    # One shared, ordered list: `--send a --expect x --send b` runs in that order.
    script = parser.add_argument_group("scripted steps (run in the order given)")
    for flag, meta, text in (
        ("--send", "TEXT", "send a text message (repeatable)"),
        ("--send-json", "JSON", "send a JSON message, validated first (repeatable)"),
        ("--send-binary", "BASE64", "send a binary message, given as base64 (repeatable)"),
        ("--expect", "TEXT|/REGEX/", "wait for a message containing TEXT or matching REGEX"),
    ):
        script.add_argument(flag, dest="script", action=_ScriptStep, metavar=meta, help=text)


class _ScriptStep(argparse.Action):
    """Appends (flag, value) to ``args.script`` so the steps keep their order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        steps = list(getattr(namespace, self.dest, None) or [])
        steps.append((option_string, values))
        setattr(namespace, self.dest, steps)


def _script_steps(script: list[tuple[str, str]]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for flag, value in script:
        if flag == "--send":
            steps.append({"send": value})
        elif flag == "--send-binary":
            steps.append({"send_binary": value})
        elif flag == "--send-json":
            try:
                steps.append({"send": json.loads(value)})
            except ValueError:
                raise UsageError("--send-json must be valid JSON") from None
        elif len(value) >= 2 and value.startswith("/") and value.endswith("/"):
            steps.append({"expect": {"regex": value[1:-1]}})
        else:
            steps.append({"expect": {"contains": value}})
    return steps


class UsageError(ValueError):
    """A flag's value is unusable; the message names the flag, never the value."""


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
        raise UsageError("-H/--header must look like 'Name: value'")
    return name.strip(), value.strip()


def check_data(args: argparse.Namespace) -> dict[str, Any]:
    """The check mapping (as in a check file) described by the flags.

    Raises:
        UsageError: a flag that cannot be turned into a key (bad header, ``--basic``
            without a colon).
    """
    data: dict[str, Any] = {"name": PROBE_CHECK_NAME, "kind": "probe", "url": args.url}
    auth: dict[str, Any] = {}
    # -H values go to auth.headers (secret strings): an Authorization or API key header
    # typed there must get the same care as --bearer.
    secret_headers = dict(_header(h) for h in args.header)
    if secret_headers:
        auth["headers"] = secret_headers
    if args.origin is not None:
        data["headers"] = {"Origin": args.origin}
    if args.bearer is not None:
        auth["bearer"] = args.bearer
    if args.basic is not None:
        user, sep, password = args.basic.partition(":")
        if not sep:
            raise UsageError("--basic must look like USER:PASS")
        auth["basic"] = {"username": user, "password": password}
    if auth:
        data["auth"] = auth
    if args.subprotocol:
        data["subprotocols"] = list(args.subprotocol)
    _optional(data, args, {"compression": "compression", "follow_redirects": "follow_redirects"})
    _optional(data, args, {"max_size": "max_size", "proxy": "proxy", "ip_version": "ip_version"})
    _optional(data, args, {"pings": "pings", "ping_timeout": "ping_timeout"})
    _optional(data, args, {"protocol": "protocol"})
    tls: dict[str, Any] = {}
    _optional(tls, args, {"cacert": "ca_file", "cert": "cert_file", "key": "key_file"})
    _optional(tls, args, {"server_name": "server_name", "tls_min": "min_version"})
    if args.insecure:
        tls["insecure_skip_verify"] = True
    if tls:
        data["tls"] = tls
    expect: dict[str, Any] = {}
    _optional(
        expect,
        args,
        {
            "expect_status": "status",
            "expect_subprotocol": "subprotocol",
            "expect_close_code": "close_code",
        },
    )
    if expect:
        data["expect"] = expect
    steps = _script_steps(getattr(args, "script", None) or [])
    if steps:
        data["steps"] = steps
    timeout = getattr(args, "timeout", None)
    if timeout is not None:
        data["timeout"] = timeout
        data["interval"] = _interval_for(timeout)
    return data


def _optional(out: dict[str, Any], args: argparse.Namespace, keys: dict[str, str]) -> None:
    """Copy each flag that was given (not None / not False) to its key."""
    for dest, key in keys.items():
        value = getattr(args, dest, None)
        if value is not None and value is not False:
            out[key] = value


def _interval_for(timeout: str) -> float:
    # A one-shot probe has no schedule, but a check needs timeout < interval.
    try:
        seconds = float(parse_duration(timeout))
    except (TypeError, ValueError):
        return DEFAULT_INTERVAL  # validation reports the bad --timeout
    return max(DEFAULT_INTERVAL, seconds * 2)


def _flag_for(path: str) -> str:
    for key in sorted(_FLAG_OF, key=len, reverse=True):
        if path == key or path.startswith((key + ".", key + "[")):
            return _FLAG_OF[key]
    return path


def check_from_flags(args: argparse.Namespace) -> CheckConfig:
    """The check the flags describe, validated like a check file.

    Raises:
        UsageError: no URL, or a flag's value is invalid (the message names the flag).
    """
    from agent.config.loader import ConfigError, validate_check
    from agent.runtime.registries import REGISTRIES

    if not args.url:
        raise UsageError("give a URL or --check NAME")
    try:
        return validate_check(check_data(args), base_dir=Path.cwd(), registries=REGISTRIES)
    except ConfigError as exc:
        raise UsageError(
            "\n".join(
                f"{_flag_for(i.path)}: {i.message}" if i.path else i.message for i in exc.issues
            )
        ) from None


def refuse_target_flags(args: argparse.Namespace) -> None:
    """Refuse flags that describe a target when ``--check`` names a configured one.

    Raises:
        UsageError: naming every such flag given (they would be silently ignored).
    """
    given = [f for f in _TARGET_FLAGS if getattr(args, f) not in (None, False, [])]
    if given:
        names = {"url": "URL", "script": "--send/--send-json/--send-binary/--expect"}
        flags = ", ".join(names.get(f, "--" + f.replace("_", "-")) for f in given)
        raise UsageError(f"--check runs the check as configured; drop {flags}")
