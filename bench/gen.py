"""Generated agent configs for the capacity and start-up scenarios."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CHECKS_PER_FILE", "write_config"]

CHECKS_PER_FILE = 500


def write_config(
    root: Path,
    *,
    url: str,
    checks: int,
    interval: str = "30s",
    listen_port: int = 0,
    extra_checks: list[dict[str, object]] | None = None,
    history_size: int = 50,
) -> Path:
    """Write ``root/agent.yaml`` plus check files holding ``checks`` probes of ``url``.

    Returns:
        The agent config path.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "checks").mkdir(exist_ok=True)
    (root / "agent.yaml").write_text(
        "agent:\n"
        f"  listen: 127.0.0.1:{listen_port}\n"
        "  location: bench\n"
        f"  state_dir: {root / 'state'}\n"
        "  max_concurrency: 256\n"
        f"  history_size: {history_size}\n"
        "check_files:\n"
        "  - checks/*.yaml\n"
        "defaults:\n"
        f"  interval: {interval}\n"
        "  timeout: 5s\n"
        "  pings: 3\n"
        "receivers:\n"
        "  - name: log\n"
        "    type: log\n"
    )
    for start in range(0, checks, CHECKS_PER_FILE):
        lines = ["checks:"]
        for i in range(start, min(start + CHECKS_PER_FILE, checks)):
            lines += [
                f"  - name: gen-{i:05d}",
                f"    url: {url}gen/{i}",
                "    labels:",
                f"      shard: s{i % 16}",
            ]
        (root / "checks" / f"gen-{start // CHECKS_PER_FILE:03d}.yaml").write_text(
            "\n".join(lines) + "\n"
        )
    if extra_checks:
        lines = ["checks:"]
        for check in extra_checks:
            lines.append(f"  - name: {check['name']}")
            lines += [f"    {k}: {v}" for k, v in check.items() if k != "name"]
        (root / "checks" / "extra.yaml").write_text("\n".join(lines) + "\n")
    return root / "agent.yaml"
