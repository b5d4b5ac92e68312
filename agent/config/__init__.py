"""Configuration: YAML files validated into frozen models."""

from __future__ import annotations

from agent.config.models import CheckConfig, Config

__all__ = ["CheckConfig", "Config"]
