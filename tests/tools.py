"""Real external tools the tests run (promtool, Prometheus, Alertmanager, kubectl...).

``make test`` installs them (the Makefile's ``test-tools``). Outside CI a test whose tool
is missing is skipped with the reason; in CI (``CI=true``) it fails saying which tool is
missing and how to get it, so a machine without them can never pass quietly.
"""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["in_ci", "require_tool"]


def in_ci() -> bool:
    """Whether the suite runs in CI, where a missing tool is a failure."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(*names: str, install: str) -> str:
    """The path of the first of ``names`` found on PATH.

    Args:
        names: executable names, in order of preference.
        install: how to get it (named in the skip or failure message).

    Returns:
        The executable's path. Skips the test when none is found, or fails it in CI.
    """
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    why = f"{' / '.join(names)} not installed ({install}; `make test-tools` installs it)"
    if in_ci():
        pytest.fail(f"CI=true and {why}", pytrace=False)
    pytest.skip(why)
