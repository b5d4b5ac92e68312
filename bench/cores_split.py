"""What splitting one agent's pipeline over processes would cost, measured in parts.

The alternative to one agent per core is one agent whose worker processes probe and
send each result to a parent that keeps the single HTTP endpoint, alert pipeline and
state directory. The parent then runs, for every probe of every worker, the result
path (``Runner.record``: metrics, history, alert state) plus the decoding of the
message; each worker pays the encoding on top of what an agent pays today. Both are
measured here with the real services and a real pipe:

- ``record_us``: CPU per ``Runner.record()`` at 10,000 checks (``bench.runner_overhead``);
- ``send_us`` / ``receive_us``: CPU per result to pickle it and write it to a pipe in
  batches of 100, and to read and unpickle it, in two processes.

From them: the parent's ceiling (probes/s at which it alone fills a core) and the extra
CPU per probe the split adds over independent agents, which pay neither.

``.venv/bin/python -m bench.cores_split``
"""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import time
from multiprocessing.connection import Connection
from typing import Any

from bench.runner_overhead import _result, record_cost

__all__ = ["measure"]

RESULTS = 200_000
BATCH = 100


def _sender(conn: Connection, count: int, out: Any) -> None:
    batch = [_result(f"gen-{i:05d}", f"ws://127.0.0.1:9/gen/{i}") for i in range(BATCH)]
    cpu = time.process_time()
    for _ in range(0, count, BATCH):
        conn.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
    conn.send_bytes(b"")
    out.value = (time.process_time() - cpu) / count * 1e6


def _ipc(count: int) -> tuple[float, float, int]:
    """(send µs, receive µs, bytes) per result through a real pipe between two processes."""
    ctx = multiprocessing.get_context("fork")
    reader, writer = ctx.Pipe(duplex=False)
    send_us = ctx.Value("d", 0.0)
    child = ctx.Process(target=_sender, args=(writer, count, send_us))
    child.start()
    got, cpu = 0, time.process_time()
    while data := reader.recv_bytes():
        got += len(pickle.loads(data))  # noqa: S301 - our own child process wrote it
    receive_us = (time.process_time() - cpu) / got * 1e6
    child.join()
    size = len(pickle.dumps(_result("gen-00001", "ws://127.0.0.1:9/gen/1"), protocol=5))
    return float(send_us.value), receive_us, size


def measure(*, quick: bool = False) -> dict[str, Any]:
    """The parts and what they imply (see the module docstring)."""
    record_us = asyncio.run(record_cost(5_000 if quick else 20_000))
    send_us, receive_us, size = _ipc(RESULTS // (4 if quick else 1))
    parent_us = record_us + receive_us
    return {
        "record_us": round(record_us, 1),
        "send_us": round(send_us, 1),
        "receive_us": round(receive_us, 1),
        "bytes_per_result": size,
        "parent_us_per_probe": round(parent_us, 1),
        "parent_ceiling_probes_per_s": round(1e6 / parent_us),
        "extra_cpu_us_per_probe": round(send_us + receive_us, 1),
    }


if __name__ == "__main__":
    print(measure())
