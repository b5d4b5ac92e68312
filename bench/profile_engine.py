"""Profile target: one engine at one concurrency for a few seconds (for py-spy).

``py-spy record --format raw -o out.txt -- python -m bench.profile_engine wsprobe 100``
(the target server is started and pinned like in the bench).
"""

from __future__ import annotations

import sys

import uvloop

from bench import engine, procs
from bench.clients import bare_cycle, wsprobe_engine

__all__: list[str] = []


def main() -> None:
    """Run ``argv[1]`` (bare|wsprobe) at concurrency ``argv[2]`` for ``argv[3]`` s."""
    name, concurrency = sys.argv[1], int(sys.argv[2])
    duration = float(sys.argv[3]) if len(sys.argv) > 3 else 8.0
    cycle = bare_cycle if name == "bare" else wsprobe_engine()[0]
    assert cycle is not None
    procs.pin_self()
    with procs.target_server() as server:
        url = f"ws://127.0.0.1:{server.port}/"
        point = uvloop.run(engine._point(cycle, url, concurrency, duration))
    print(name, concurrency, point["cycles_per_s"], "cycles/s", point["cpu_s_per_cycle"])


if __name__ == "__main__":
    main()
