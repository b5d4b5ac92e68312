"""The extension registries as config validation sees them.

Config is the lowest layer and cannot import the probe and notifier registries above
it, so the processes that run checks (the daemon, the CLI) validate their config against
this one value, built from the registries themselves: the kinds are ``PROBES``' keys,
the receiver types ``NOTIFIERS``' keys, with each notifier's own field checks, and the
protocols ``PROTOCOLS``' keys, with each protocol's own checks.
"""

from __future__ import annotations

from agent.config.loader import Registries
from agent.notifiers import NOTIFIERS
from agent.probes import PROBES
from agent.probes.protocols import PROTOCOLS

__all__ = ["REGISTRIES"]

#: What a config is validated against: the kinds and receiver types this agent runs.
REGISTRIES = Registries(kinds=PROBES, receivers=NOTIFIERS, protocols=PROTOCOLS)
