"""The probe kind runs on two connections; shared behaviour is tested on both."""

from __future__ import annotations

import pytest

from agent.config import CheckConfig
from agent.probes import probe as probe_kind


@pytest.fixture(params=["discarding", "reading"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run plain probes on the discarding connection, then on the reading one.

    ``reading`` forces the path configs with steps, a close code or a proxy take, so a
    reason produced by both paths cannot silently break on one of them.
    """
    if request.param == "reading":

        def never(check: CheckConfig) -> bool:
            return False

        monkeypatch.setattr(probe_kind, "uses_discarding_connection", never)
    return str(request.param)
