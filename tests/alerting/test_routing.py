"""Routes by label matchers pick receivers and reminder periods; send_resolved filters."""

from __future__ import annotations

from typing import Any

import pytest

from agent.alerting import AlertService
from agent.alerting.grouping import GroupPolicy
from agent.alerting.routing import routed_grouping, routed_policy
from agent.config import CheckConfig, Config
from agent.config.alerting import AgentAlertingConfig, AlertingConfig, ReceiverConfig
from agent.storage import Store
from tests.alerting.test_delivery import Outcomes, deliver, observe_all

ROUTES = [
    {"match": {"team": "payments"}, "receivers": ["pd"], "repeat_interval": 600},
    {"match_re": {"check": "edge-.*", "env": "prod|staging"}, "receivers": ["chat"],
     "continue": True},
    {"match_re": {"env": "prod"}, "receivers": ["oncall"], "default_receivers": False},
    {"match": {"env": "dev"}, "receivers": ["devnull"]},
]  # fmt: skip
AGENT = AgentAlertingConfig.model_validate(
    {"receivers": ["log"], "repeat_interval": 3600, "routes": ROUTES}
)


@pytest.mark.parametrize(
    ("name", "labels", "check", "receivers", "repeat"),
    [
        ("api", {}, None, ("log",), 3600.0),
        ("pay", {"team": "payments", "env": "prod"}, None, ("log", "pd"), 600.0),
        ("edge-1", {"env": "prod"}, None, ("chat", "oncall"), 3600.0),
        ("edge-2", {"env": "staging"}, None, ("log", "chat"), 3600.0),
        ("edge-3", {"env": "production"}, None, ("log",), 3600.0),
        ("svc", {"env": "dev"}, None, ("log", "devnull"), 3600.0),
        ("pay2", {"team": "payments"}, {"repeat_interval": 60, "receivers": ["own"]},
         ("log", "pd", "own"), 60.0),
        ("pay3", {"team": "payments"}, {"default_receivers": False}, ("pd",), 600.0),
        ("svc2", {"env": "dev"}, {"receivers": ["devnull"]}, ("log", "devnull"), 3600.0),
    ],
    ids=[
        "no-route-defaults-only",
        "first-match-wins-and-sets-repeat",
        "continue-then-route-without-defaults",
        "continue-then-no-more-match",
        "regex-is-anchored",
        "equality",
        "check-own-receivers-and-repeat-win",
        "check-opts-out-of-defaults",
        "no-duplicates",
    ],
)  # fmt: skip
def test_routed_policy(
    name: str,
    labels: dict[str, str],
    check: dict[str, Any] | None,
    receivers: tuple[str, ...],
    repeat: float,
) -> None:
    """Defaults, then matching routes in order, then the check's own receivers."""
    own = AlertingConfig.model_validate(check) if check is not None else None
    policy = routed_policy(AGENT, own, name=name, labels=labels)
    assert (policy.receivers, policy.repeat_interval) == (receivers, repeat)


async def test_routes_and_send_resolved_reach_the_right_receivers(
    receiver: Any, store: Store
) -> None:
    """Real receiver: payments goes to pd too; 'quiet' (send_resolved false) gets no resolved."""

    def hook(name: str, **extra: Any) -> ReceiverConfig:
        return ReceiverConfig.model_validate(
            {"name": name, "type": "webhook", "url": f"{receiver.url}/{name}", **extra}
        )

    cfg = Config(
        alerting=AgentAlertingConfig.model_validate(
            {
                "failure_threshold": 1,
                "success_threshold": 1,
                "receivers": ["ops", "quiet"],
                "routes": [{"match": {"team": "payments"}, "receivers": ["pd"]}],
                "group_wait": 0,
            }
        ),
        receivers=(hook("ops"), hook("quiet", send_resolved=False), hook("pd")),
        checks=(
            CheckConfig(name="pay", url="ws://127.0.0.1:9/", labels={"team": "payments"}),
            CheckConfig(name="web", url="ws://127.0.0.1:9/", labels={"team": "web"}),
        ),
    )
    outcomes = Outcomes()
    service = AlertService(cfg, store, on_notification=outcomes)
    observe_all(service, cfg, False, True)
    await deliver(service, outcomes, lambda o: o.count("success") == 8)
    got = sorted((r.path, r.json()["check"], r.json()["event"]) for r in receiver.requests)
    assert got == sorted(
        [
            ("/ops", "pay", "firing"), ("/ops", "pay", "resolved"),
            ("/ops", "web", "firing"), ("/ops", "web", "resolved"),
            ("/quiet", "pay", "firing"), ("/quiet", "web", "firing"),
            ("/pd", "pay", "firing"), ("/pd", "pay", "resolved"),
        ]
    )  # fmt: skip


def test_routed_grouping_overrides_field_by_field() -> None:
    """A route's group settings replace the agent's one field at a time; no setting: None."""
    agent = AgentAlertingConfig.model_validate(
        {
            "group_wait": 10,
            "group_by": ["team"],
            "routes": [
                {"match": {"team": "payments"}, "group_wait": 1, "continue": True},
                {"match": {"env": "prod"}, "group_by": ["check"], "group_wait": 5},
                {"match": {"env": "dev"}, "receivers": ["x"]},
            ],
        }
    )
    pay = routed_grouping(agent, name="p", labels={"team": "payments", "env": "prod"})
    assert pay == GroupPolicy(group_wait=1.0, group_interval=60.0, group_by=("check",))
    assert routed_grouping(agent, name="d", labels={"env": "dev"}) is None
    assert routed_grouping(agent, name="n", labels={}) is None
