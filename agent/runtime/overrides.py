"""Agent settings given on the command line, which win over the config file.

``wsprobe run --listen HOST:PORT --state-dir DIR`` lets one config file serve several
agents on one machine (``--processes N`` starts each shard with its own port and state
directory; a systemd template unit can do the same). They are applied to every loaded
config, at start and on each reload, so a reload never moves an agent.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.config.models import Config
from agent.config.settings import AgentSettings

__all__ = ["AgentOverrides"]


@dataclass(frozen=True)
class AgentOverrides:
    """``agent.listen`` and ``agent.state_dir`` from the command line (None: the file's)."""

    listen: str | None = None
    state_dir: str | None = None

    def __post_init__(self) -> None:
        if self.listen is not None:
            # The config file's own rule, so both say the same thing about a bad value.
            AgentSettings(listen=self.listen)

    def apply(self, config: Config) -> Config:
        """``config`` with these settings in its ``agent`` block."""
        update = {
            key: value
            for key, value in (("listen", self.listen), ("state_dir", self.state_dir))
            if value is not None
        }
        if not update:
            return config
        return config.model_copy(update={"agent": config.agent.model_copy(update=update)})
