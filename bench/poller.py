"""An outside ``/healthz`` poller in a process of its own: what a client of the agent waits.

``python -m bench.poller PORT HZ`` asks ``http://127.0.0.1:PORT/healthz`` HZ times a
second until its stdin closes, printing ``START TOOK`` (perf_counter seconds, which is
system-wide on Linux, so comparable with the caller's) for each answer.

A process rather than a thread of the bench: a thread shares the bench's GIL, and
while the bench reads and decodes a 17 MB ``/metrics`` answer its polls waited for the
GIL too, which read as stalls of the agent (tens to hundreds of ms on a loaded
machine where a separate process saw none).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request

from bench import procs

__all__ = ["Poller"]


class Poller:
    """Starts the poller process on the server core; :meth:`stop` ends it.

    Attributes:
        polls: ``(start, seconds)`` of each answered poll, filled while it runs.
        errors: polls that got no answer.
    """

    def __init__(self, port: int, *, hz: float) -> None:
        argv = [sys.executable, "-m", "bench.poller", str(port), str(hz)]
        self._popen = subprocess.Popen(
            ["taskset", "-c", str(procs.SERVER_CORE), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.polls: list[tuple[float, float]] = []
        self.errors = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._popen.stdout is not None
        for line in self._popen.stdout:
            if line.startswith("error"):
                self.errors += 1
                continue
            start, took = line.split()
            self.polls.append((float(start), float(took)))

    def stop(self) -> None:
        """End the poller (closing its stdin) and wait for its last lines."""
        assert self._popen.stdin is not None
        self._popen.stdin.close()
        try:
            self._popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()
        self._reader.join(timeout=5)


def _run(port: int, hz: float) -> None:
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    url = f"http://127.0.0.1:{port}/healthz"
    while not done.wait(1.0 / hz):
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                resp.read()
        except OSError:
            print("error", flush=True)
            continue
        print(f"{t0:.6f} {time.perf_counter() - t0:.6f}", flush=True)


if __name__ == "__main__":
    _run(int(sys.argv[1]), float(sys.argv[2]))
