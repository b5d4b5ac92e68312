"""Scripted steps: what a check sends and expects on its connection.

YAML shape (one key per step names its action)::

    steps:
      - send: {type: subscribe, channel: trades}   # mapping/list: sent as JSON
      - send: "hello"                              # string: sent as text
      - send_binary: "aGVsbG8="                    # base64, sent as a binary frame
      - expect:
          json: {type: subscribed}                 # JSON subset equality
          timeout: 5s
      - sleep: 1s
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from agent.config.types import Duration, Frozen

__all__ = ["DEFAULT_EXPECT_TIMEOUT", "Expect", "Matcher", "Step"]

DEFAULT_EXPECT_TIMEOUT = 5.0


class Matcher(Frozen):
    """A predicate on one message; every given field must hold."""

    json_: Any = None
    path: str | None = None
    equals: Any = None
    regex: str | None = None
    contains: str | None = None

    model_config = Frozen.model_config | {"populate_by_name": True}

    @model_validator(mode="before")
    @classmethod
    def _alias_json(cls, data: Any) -> Any:
        if isinstance(data, dict) and "json" in data:
            data = dict(data)
            data["json_"] = data.pop("json")
        return data


class Expect(Matcher):
    """Wait for the next message matching this predicate, skipping others."""

    timeout: Duration = DEFAULT_EXPECT_TIMEOUT
    fail_if: Matcher | None = None
    extract: dict[str, str] = {}


class Step(Frozen):
    """One step; exactly one action key is set."""

    name: str | None = None
    send: Any = None
    send_binary: str | None = None
    expect: Expect | None = None
    sleep: Duration | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        actions = [
            k for k in ("send", "send_binary", "expect", "sleep") if getattr(self, k) is not None
        ]
        if len(actions) != 1:
            raise ValueError("a step needs exactly one of send, send_binary, expect, sleep")
        return self
