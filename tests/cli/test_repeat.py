"""`wsprobe probe --count N --interval S`: one line per run, ping's closing summary."""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from agent.cli.main import BROKEN_PIPE_EXIT, main
from agent.cli.repeat import Stats
from tests.cli.conftest import ROOT, DemoThread, wsprobe_argv, wsprobe_env
from tests.servers import free_port

pytestmark = pytest.mark.usefixtures("restore_logging")

RUN_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}  #(\d+)\s+(\S+)\s+total [\d.]+ ms")


def run_lines(out: str) -> list[tuple[int, str]]:
    return [(int(m[1]), m[2]) for m in map(RUN_LINE.match, out.splitlines()) if m]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.004], Stats(0.004, 0.004, 0.004, 0.004)),
        ([0.003, 0.001, 0.002], Stats(0.001, 0.002, 0.003, 0.003)),
        ([float(i) for i in range(1, 21)], Stats(1.0, 10.5, 20.0, 19.0)),
    ],
    ids=["one", "unsorted", "twenty-nearest-rank"],
)
def test_stats_min_avg_max_nearest_rank_p95(values: list[float], expected: Stats) -> None:
    """p95 is the nearest-rank value: the 19th of 20, the last of 3."""
    assert Stats.of(values) == expected


def test_stats_of_nothing_is_none() -> None:
    """No values, no statistics (the summary then omits the line)."""
    assert Stats.of([]) is None


def test_count_prints_one_line_per_run_then_summary(
    demo_thread: DemoThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three runs against the demo echo: three OK lines, then ping-like closing lines."""
    code = main(["probe", demo_thread.url("/echo"), "--count", "3", "--interval", "0.05"])
    out = capsys.readouterr().out
    assert code == 0
    assert run_lines(out) == [(1, "OK"), (2, "OK"), (3, "OK")]
    assert "handshake" in out
    assert "ping" in out
    summary = out.split("--- ")[1]
    assert summary.startswith(f"{demo_thread.url('/echo')} wsprobe statistics ---")
    assert "3 runs, 3 ok, 0 failed (0% failed)" in summary
    assert re.search(r"^total min/avg/max/p95 = [\d.]+/[\d.]+/[\d.]+/[\d.]+ ms$", summary, re.M)
    assert re.search(r"^ping rtt min/avg/max/p95 = ", summary, re.M)
    assert "\x1b[" not in out  # not a terminal: no colour


def test_failures_counted_by_reason_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    """Every run refused: each line names the reason, the summary counts it, exit 1."""
    url = f"ws://127.0.0.1:{free_port()}/"
    code = main(["probe", url, "--count", "2", "--interval", "0"])
    out = capsys.readouterr().out
    assert code == 1
    assert run_lines(out) == [(1, "connect_refused"), (2, "connect_refused")]
    assert "2 runs, 0 ok, 2 failed (100% failed)" in out
    assert "failures: connect_refused 2" in out
    assert "ping rtt" not in out  # no run got as far as a ping


def test_mixed_runs_counted_by_reason_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    """One /flaky cycle (2 OK, a 503, a silent server, a 1011 close): 3 reasons, exit 1."""
    with DemoThread() as fresh:
        argv = ["--count", "5", "--interval", "0", "--ping-timeout", "0.3s", "--pings", "1"]
        code = main(["probe", fresh.url("/flaky"), *argv])
    out = capsys.readouterr().out
    assert code == 1
    assert [verdict for _, verdict in run_lines(out)].count("OK") == 2
    assert "5 runs, 2 ok, 3 failed (60% failed)" in out
    failures = re.search(r"^failures: (.*)$", out, re.M)
    assert failures is not None
    assert sorted(failures[1].split(", ")) == ["closed 1", "handshake_status 1", "ping_timeout 1"]


def test_json_one_object_per_run_and_a_summary(
    demo_thread: DemoThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json: each line parses; the runs are results, the last line the summary."""
    code = main(["probe", demo_thread.url("/echo"), "--count", "2", "--interval", "0", "--json"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert [line["success"] for line in lines[:2]] == [True, True]
    summary = lines[2]["summary"]
    assert (summary["runs"], summary["succeeded"], summary["failed"]) == (2, 2, 0)
    totals = [line["phases"]["total"] for line in lines[:2]]
    assert summary["total_seconds"]["min"] == min(totals)
    assert summary["total_seconds"]["max"] == max(totals)
    rtts = [rtt for line in lines[:2] for rtt in line["pings"]]
    assert summary["ping_rtt_seconds"]["max"] == max(rtts)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--count=-1"], "--count must be 0"),
        (["--interval", "1"], "--interval goes with --count"),
        (["--count", "2", "--interval", "soon"], "--interval must be a duration"),
        (["-q", "-v"], "not allowed with argument"),
    ],
    ids=["negative-count", "interval-alone", "bad-interval", "quiet-and-verbose"],
)
def test_repeat_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad repetition flags are usage errors naming the flag."""
    assert main(["probe", "ws://127.0.0.1:1/", *argv]) == 2
    assert message in capsys.readouterr().err


def test_quiet_prints_nothing(demo_thread: DemoThread, capsys: pytest.CaptureFixture[str]) -> None:
    """-q: no output at all, only the exit status (0 up, 1 down)."""
    assert main(["probe", demo_thread.url("/echo"), "-q"]) == 0
    assert main(["probe", f"ws://127.0.0.1:{free_port()}/", "-q", "--count", "2"]) == 1
    assert main(["probe", demo_thread.url("/echo"), "-q", "-k"]) == 0  # no TLS warning either
    assert capsys.readouterr() == ("", "")


@contextlib.contextmanager
def _endless_probe(demo_thread: DemoThread) -> Iterator[subprocess.Popen[str]]:
    """``wsprobe probe --count 0`` on the demo echo, pipes open; killed if still running."""
    proc = subprocess.Popen(
        wsprobe_argv("probe", demo_thread.url("/echo"), "--count", "0", "--interval", "0.05"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=wsprobe_env(),
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)


def _read_until(proc: subprocess.Popen[str], pattern: str, *, timeout: float) -> str:
    """Read proc's stdout until a line matches ``pattern`` (fails after ``timeout``)."""
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while not re.search(pattern, seen, re.M):
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} within {timeout}s; got:\n{seen}"
            if sel.select(left):
                line = proc.stdout.readline()
                assert line, f"stdout closed before {pattern!r}; got:\n{seen}"
                seen += line
    return seen


def test_count_0_runs_until_sigint_then_summarises(demo_thread: DemoThread) -> None:
    """--count 0 repeats until Ctrl-C (SIGINT); the summary still prints, exit 0."""
    with _endless_probe(demo_thread) as proc:
        seen = _read_until(proc, r"#2 ", timeout=20)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=20)
    out = seen + rest
    assert proc.returncode == 0, err
    runs = len(run_lines(out))
    assert runs >= 2
    assert f"{runs} runs, {runs} ok, 0 failed" in out
    assert "Traceback" not in err


def test_reader_leaving_ends_quietly(demo_thread: DemoThread) -> None:
    """`... --count 0 | head -2`: the pipe closing ends wsprobe with 141, no traceback."""
    with _endless_probe(demo_thread) as proc:
        _read_until(proc, r"#1 ", timeout=20)
        assert proc.stdout is not None
        proc.stdout.close()  # what `head` does once it has its lines
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == BROKEN_PIPE_EXIT
    assert "Traceback" not in err
