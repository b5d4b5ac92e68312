"""The JSON Schema of a config file, generated from the models.

One schema serves both kinds of file: the agent config, and a check file (which holds
only ``checks:``, a subset of the agent config's keys). Editors use it to complete and
check keys (``# yaml-language-server: $schema=...``); ``wsprobe schema`` prints it.

What pydantic's schema does not say is added here, so the schema refuses what the
loader refuses wherever JSON Schema can express it:

- ``${VAR}`` may stand for any value (the loader expands it before validation);
- ``defaults:`` is a check without ``name`` and with nothing required;
- check kinds and receiver types are the registries' keys (given by the caller);
- keys of ``labels``, ``limits`` and header mappings, a step's single action, and
  comparisons that need a ``path``;
- YAML reading ``1.2`` and ``4`` as numbers (``min_version``, ``ip_version``).

Cross-field rules (timeout below interval, unique names, receiver references, what
each receiver type requires, files that must exist) stay with ``check-config``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from agent.config.models import LIMIT_KEYS, RESERVED_LABELS, Config
from agent.config.protocols import ProtocolStep
from agent.config.settings import LISTEN_PATTERN
from agent.config.steps import COMPARISON_OPS, Step

__all__ = ["SCHEMA_DRAFT", "config_schema", "schema_text"]

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_ENV_REF = {"type": "string", "pattern": r"\$\{[^}]*\}"}
_LABEL_NAMES = {
    "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$",
    "not": {"anyOf": [{"pattern": "^__"}, {"enum": list(RESERVED_LABELS)}]},
}
# pydantic leaves a bound of an optional field beside its anyOf, under its own name.
_BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


def config_schema(
    *,
    kinds: Iterable[str] | None = None,
    receiver_types: Iterable[str] | None = None,
    protocols: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an agent config file or a check file.

    Args:
        kinds: valid check kinds (``agent.probes.PROBES`` keys); any string if None.
        receiver_types: valid receiver types (``agent.notifiers.NOTIFIERS`` keys).
        protocols: valid protocol names (``agent.probes.protocols.PROTOCOLS`` keys).

    Returns:
        The schema as a JSON-ready dict.
    """
    schema = Config.model_json_schema(by_alias=True)
    defs: dict[str, Any] = schema.pop("$defs")
    props = schema["properties"]
    del props["sources"]  # filled by the loader, refused in a file
    check = defs["CheckConfig"]
    check_props = check["properties"]
    if kinds is not None:
        check_props["kind"] = {"enum": sorted(kinds), "default": "probe"}
    if receiver_types is not None:
        defs["ReceiverConfig"]["properties"]["type"] = {"enum": sorted(receiver_types)}
    check_props["url"]["pattern"] = "^wss?://"
    defs["AgentSettings"]["properties"]["listen"]["pattern"] = LISTEN_PATTERN
    check_props["labels"]["propertyNames"] = _LABEL_NAMES
    check_props["limits"]["propertyNames"] = {"enum": list(LIMIT_KEYS)}
    check_props["ip_version"] = {"enum": ["auto", "4", "6", 4, 6], "default": "auto"}
    defs["TLSConfig"]["properties"]["min_version"] = {
        "anyOf": [{"enum": ["1.2", "1.3", 1.2, 1.3]}, {"type": "null"}],
        "default": None,
    }
    defs["Step"]["oneOf"] = [{"required": [action]} for action in Step.ACTIONS]
    # protocol: NAME is short for protocol: {name: NAME}; YAML reads version 5 as a number.
    protocol_name: dict[str, Any] = {"type": "string"}
    if protocols is not None:
        protocol_name = {"enum": sorted(protocols)}
        defs["ProtocolConfig"]["properties"]["name"] = protocol_name
    check_props["protocol"] = {
        "anyOf": [protocol_name, {"$ref": "#/$defs/ProtocolConfig"}, {"type": "null"}],
        "default": None,
    }
    defs["ProtocolConfig"]["properties"]["version"] = {
        "enum": ["3.1.1", "5", 5],
        "default": "3.1.1",
    }
    defs["ProtocolStep"]["oneOf"] = [{"required": [action]} for action in ProtocolStep.ACTIONS]
    for name in ("Matcher", "Expect", "ProtocolExpect"):
        defs[name]["dependentRequired"] = {op: ["path"] for op in (*COMPARISON_OPS, "exists")}
    defaults = {
        **check,
        "title": "CheckDefaults",
        "description": "Values every check starts from: any check key except name.",
        "properties": {k: v for k, v in check_props.items() if k != "name"},
    }
    defaults.pop("required", None)
    defs["CheckDefaults"] = defaults
    props["defaults"] = {"$ref": "#/$defs/CheckDefaults"}
    tidy = _tidy({"$defs": defs, **schema})
    return {
        "$schema": SCHEMA_DRAFT,
        "title": "wsprobe configuration",
        "description": "An agent config file, or a check file (which holds only checks:).",
        **{k: v for k, v in tidy.items() if k not in ("title", "description", "$defs")},
        "$defs": {**tidy["$defs"], "EnvReference": _ENV_REF},
    }


def schema_text(**kwargs: Any) -> str:
    """:func:`config_schema` as the text committed in ``schema/wsprobe.schema.json``."""
    return json.dumps(config_schema(**kwargs), indent=2, ensure_ascii=False) + "\n"


def _tidy(node: Any, *, wrap: bool = True) -> Any:
    """Walk the schema: fix bounds, allow ``${VAR}`` for typed values, drop titles.

    ``wrap`` is False for the branches of an ``anyOf``, which gets one ``${VAR}``
    branch of its own instead.
    """
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("propertyNames", "not", "dependentRequired"):
            out[key] = value  # about keys, or a refusal: never a ${VAR}
        elif key == "anyOf":
            out[key] = [_tidy(branch, wrap=False) for branch in value]
        elif key in ("properties", "$defs"):  # names -> schemas, not a schema itself
            out[key] = {name: _tidy(sub) for name, sub in value.items()}
        else:
            out[key] = _tidy(value)
    if "patternProperties" in out:
        # pydantic's patternProperties leave other keys free: name them all instead.
        ((pattern, value),) = out.pop("patternProperties").items()
        out["propertyNames"] = {"pattern": pattern}
        out["additionalProperties"] = value
    bounds = {_BOUNDS[k]: out.pop(k) for k in list(out) if k in _BOUNDS}
    if bounds and "anyOf" in out:
        out["anyOf"] = [_bound(branch, bounds) for branch in out["anyOf"]]
    if "anyOf" in out and any(_typed_leaf(b) for b in out["anyOf"]):
        out["anyOf"].append(_ENV)
    elif wrap and _typed_leaf(out):
        inner = {k: v for k, v in out.items() if k not in ("default", "description")}
        outer = {k: v for k, v in out.items() if k in ("default", "description")}
        return {"anyOf": [inner, _ENV], **outer}
    return out


_ENV = {"$ref": "#/$defs/EnvReference"}


def _bound(branch: Any, bounds: dict[str, Any]) -> Any:
    if isinstance(branch, dict) and branch.get("type") in ("number", "integer"):
        return {**branch, **bounds}
    if isinstance(branch, dict) and "anyOf" in branch:
        return {**branch, "anyOf": [_bound(b, bounds) for b in branch["anyOf"]]}
    return branch


def _typed_leaf(node: dict[str, Any]) -> bool:
    """A value a ``${VAR}`` could stand for that a plain string would not satisfy."""
    kind = node.get("type")
    if kind in ("number", "integer", "boolean"):
        return True
    if "enum" in node or "const" in node:
        return True
    return kind == "string" and any(k in node for k in ("pattern", "maxLength", "minLength"))
