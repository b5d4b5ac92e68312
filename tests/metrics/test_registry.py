"""Metrics exposition: names, labels, removal on reload, promtool and parser validity."""

from __future__ import annotations

import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.config.models import CheckConfig, CheckMetricsConfig
from agent.metrics.alerts import ALERT_FLAGS, NotificationCounts
from agent.metrics.registry import EAGER_RENDERS, Metrics
from agent.metrics.text import PHASE_BUCKETS, Histogram, fmt, header, render_probe
from agent.result import ProbeResult, Reason, TLSInfo
from tests.tools import require_tool

URL = "wss://127.0.0.1:9/feed"


def _check(name: str, *, histograms: bool = False, **labels: str) -> CheckConfig:
    return CheckConfig(
        name=name, url=URL, interval=10.0, timeout=2.0, labels=labels,
        metrics=CheckMetricsConfig(histograms=histograms),
    )  # fmt: skip


def _ok(check: CheckConfig) -> ProbeResult:
    result = ProbeResult(check=check.name, kind="probe", url=URL, started_at=time.time())
    result.success = True
    result.status_code = 101
    result.phases = {"resolve": 0.001, "connect": 0.002, "tls": 0.01, "handshake": 0.003,
                     "ping": 0.0005, "close": 0.001, "total": 0.02}  # fmt: skip
    result.pings = [0.0004, 0.0006, 0.0005]
    result.tls = TLSInfo(version="TLSv1.3", cert_not_after=1_900_000_000.0)
    return result


def _failed(check: CheckConfig) -> ProbeResult:
    result = ProbeResult(check=check.name, kind="probe", url=URL, started_at=time.time())
    return result.fail(Reason.HANDSHAKE_STATUS, "server answered 503")


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def _promtool_check(text: bytes) -> None:
    promtool = require_tool("promtool", install="Debian package prometheus")
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


def _names(text: str) -> set[str]:
    return {name for name, _ in _samples(text)}


def _with_checks(metrics: Metrics, name: str) -> set[str]:
    samples = _samples(metrics.render().decode())
    return {n for n, labels in samples if ("check", name) in labels}


def _firing() -> dict[str, frozenset[str]]:
    return {"firing": frozenset({"feed"})}


def _depth() -> int:
    return 4


@pytest.fixture
def notifications() -> NotificationCounts:
    return NotificationCounts()


@pytest.fixture
def metrics(notifications: NotificationCounts) -> Metrics:
    m = Metrics(
        location="eu-1", alert_flags=_firing, queue_depth=_depth, notifications=notifications
    )
    m.reloaded(ok=True)
    return m


def test_exposition_names_and_labels(metrics: Metrics, notifications: NotificationCounts) -> None:
    """Each section 6 metric appears with check, the check's own labels and location."""
    feed, chat = _check("feed", team="payments"), _check("chat")
    metrics.set_checks([feed, chat])
    assert metrics.observe(feed, _ok(feed), duration=0.021)
    assert metrics.observe(chat, _failed(chat), duration=0.5)
    metrics.skipped("feed", "max_instances")
    notifications("ops-webhook", "success")
    metrics.scheduler_lag.observe(0.002)
    samples = _samples(metrics.render().decode())
    base = {("check", "feed"), ("team", "payments"), ("location", "eu-1")}

    def value(name: str, **extra: str) -> float:
        return samples[(name, frozenset(base | set(extra.items())))]

    assert value("probe_success") == 1
    assert value("probe_duration_seconds") == pytest.approx(0.021)
    assert value("probe_websocket_duration_seconds", phase="tls") == pytest.approx(0.01)
    assert value("probe_websocket_status_code") == 101
    assert value("probe_websocket_connection_upgraded") == 1
    assert value("probe_ssl_earliest_cert_expiry") == 1_900_000_000.0
    assert value("probe_tls_version_info", version="TLSv1.3") == 1
    assert value("wsprobe_probes_total", result="success") == 1
    assert value("wsprobe_probes_total", result="failure") == 0
    fleet = {("location", "eu-1"), ("kind", "probe")}
    assert samples[("wsprobe_ping_rtt_seconds_count", frozenset(fleet))] == 1 * 3
    assert (
        samples[("wsprobe_phase_duration_seconds_count", frozenset(fleet | {("phase", "total")}))]
        == 1
    )
    assert not any(name.endswith("_bucket") for name in _with_checks(metrics, "feed"))
    assert value("wsprobe_probes_skipped_total", reason="max_instances") == 1
    assert value("wsprobe_alert_firing") == 1
    chat_labels = frozenset({("check", "chat"), ("location", "eu-1"),
                             ("reason", "handshake_status")})  # fmt: skip
    assert samples[("wsprobe_probe_failures_total", chat_labels)] == 1
    assert (
        samples[("probe_websocket_status_code", chat_labels - {("reason", "handshake_status")})]
        == 0
    )
    loc = frozenset({("location", "eu-1")})
    assert samples[("wsprobe_notification_queue_depth", loc)] == 4
    assert samples[("wsprobe_scheduler_lag_seconds_count", loc)] == 1
    assert samples[("wsprobe_probes_in_flight", loc)] == 0
    assert samples[("wsprobe_config_last_reload_successful", loc)] == 1
    assert samples[("wsprobe_config_last_reload_success_timestamp_seconds", loc)] > 0
    assert samples[("wsprobe_build_info", loc | {("version", metrics.version)})] == 1
    notif = loc | {("receiver", "ops-webhook"), ("outcome", "success")}
    assert samples[("wsprobe_notifications_total", notif)] == 1


def test_removed_check_series_vanish(metrics: Metrics) -> None:
    """After a reload without a check, none of its series remain and a late result is dropped."""
    feed, chat = _check("feed"), _check("chat")
    metrics.set_checks([feed, chat])
    metrics.observe(feed, _ok(feed), duration=0.02)
    metrics.observe(chat, _ok(chat), duration=0.02)
    assert "probe_success" in _with_checks(metrics, "chat")
    metrics.set_checks([feed])
    assert not metrics.observe(chat, _ok(chat), duration=0.02)
    assert _with_checks(metrics, "chat") == set()
    assert "probe_success" in _with_checks(metrics, "feed")


def test_unchanged_check_keeps_counts_changed_restarts(metrics: Metrics) -> None:
    """Reloading an equal check keeps its counters; a changed config starts afresh."""
    feed = _check("feed")
    metrics.set_checks([feed])
    metrics.observe(feed, _ok(feed), duration=0.02)
    metrics.set_checks([_check("feed")])
    series = metrics.series(feed)
    assert series is not None
    assert series.results["success"] == 1
    changed = _check("feed", team="search")
    metrics.set_checks([changed])
    assert metrics.series(feed) is None
    fresh = metrics.series(changed)
    assert fresh is not None
    assert fresh.results["success"] == 0


@pytest.mark.parametrize("which", ["metrics", "probe"], ids=["metrics", "probe"])
def test_promtool_accepts_exposition(
    metrics: Metrics, notifications: NotificationCounts, which: str
) -> None:
    """`promtool check metrics` finds no problem in /metrics or a /probe answer."""
    feed, chat = _check("feed", team="payments"), _check("chat")
    metrics.set_checks([feed, chat])
    metrics.observe(feed, _ok(feed), duration=0.02)
    metrics.observe(chat, _failed(chat), duration=0.5)
    notifications("ops", "failure")
    text = metrics.render() if which == "metrics" else render_probe(_ok(feed), duration=0.02)
    _promtool_check(text)


def test_probe_render_is_unlabelled() -> None:
    """A /probe answer carries the blackbox gauges of that one result, without agent labels."""
    check = _check("feed")
    samples = _samples(render_probe(_ok(check), duration=0.02).decode())
    assert samples[("probe_success", frozenset())] == 1
    assert samples[("probe_websocket_duration_seconds", frozenset({("phase", "connect")}))] == 0.002
    assert not any(name.startswith("wsprobe_") for name, _ in samples)


def test_chunked_render_matches_whole(metrics: Metrics) -> None:
    """Rendering in small pieces gives the same text, one HELP/TYPE header per family."""
    checks = [_check(f"c{i}", team="t") for i in range(7)]
    metrics.set_checks(checks)
    for check in checks:
        metrics.observe(check, _ok(check), duration=0.02)
    whole = metrics.render().decode()
    pieces = list(metrics.render_chunks(chunk_bytes=200))
    assert len(pieces) > 7
    assert "".join(pieces) == whole
    types = [line for line in whole.splitlines() if line.startswith("# TYPE")]
    assert len(types) == len(set(types))
    assert len(list(text_string_to_metric_families(whole))) == len(types)


def test_label_values_are_escaped(metrics: Metrics) -> None:
    """Quotes, backslashes and newlines in a check's label values survive the text format."""
    odd = 'a "quoted" \\ value\nnext'
    check = _check("odd", team=odd)
    metrics.set_checks([check])
    metrics.observe(check, _ok(check), duration=0.02)
    samples = _samples(metrics.render().decode())
    assert (
        "probe_success",
        frozenset({("check", "odd"), ("team", odd), ("location", "eu-1")}),
    ) in samples


def test_check_label_named_le_is_renamed(metrics: Metrics) -> None:
    """A check label called `le` cannot collide with histogram buckets: it is exported_le."""
    check = _check("odd", le="x")
    metrics.set_checks([check])
    metrics.observe(check, _ok(check), duration=0.02)
    text = metrics.render()
    samples = _samples(text.decode())
    assert ("probe_success", frozenset({("check", "odd"), ("exported_le", "x"),
                                        ("location", "eu-1")})) in samples  # fmt: skip
    _promtool_check(text)


def test_watch_session_series_read_from_stats() -> None:
    """A watch check exports connection, messages, session age, RTT, staleness and gaps."""
    from agent.watch import WatchStats

    watch = CheckConfig(name="feed-watch", kind="watch", url=URL, interval=10.0, timeout=2.0)
    probe = _check("plain")
    started = time.time() - 30.0
    stats = WatchStats(
        connected=True,
        reconnects={"closed": 2},
        last_message_ts=started + 29.0,
        messages_total=41,
        session_started=started,
        last_rtt=0.0042,
        stale=False,
        gaps_total=3,
    )
    metrics = Metrics(
        location="eu-1", watch_stats=lambda name: stats if name == "feed-watch" else None
    )
    metrics.set_checks([watch, probe])
    samples = _samples(metrics.render().decode())

    def get(name: str, **extra: str) -> float:
        labels = {"check": "feed-watch", "location": "eu-1", **extra}
        return samples[(name, frozenset(labels.items()))]

    assert get("wsprobe_watch_connected") == 1
    assert get("wsprobe_watch_reconnects_total", reason="closed") == 2
    assert get("wsprobe_watch_last_message_timestamp_seconds") == stats.last_message_ts
    assert get("wsprobe_watch_messages_received_total") == 41
    assert 30.0 <= get("wsprobe_watch_session_duration_seconds") < 60.0
    assert get("wsprobe_watch_ping_rtt_seconds") == pytest.approx(0.0042)
    assert get("wsprobe_watch_stale") == 0
    assert get("wsprobe_watch_gaps_total") == 3
    assert not any(n.startswith("wsprobe_watch_") for n in _with_checks(metrics, "plain"))


def _phase_counts(metrics: Metrics, check: str) -> dict[str, float]:
    samples = _samples(metrics.render().decode())
    return {
        dict(labels)["phase"]: value
        for (name, labels), value in samples.items()
        if name == "wsprobe_check_phase_duration_seconds_count" and ("check", check) in labels
    }


def test_unmeasured_phases_have_no_series(metrics: Metrics) -> None:
    """A ws:// run without TLS, auth or steps exports histograms only for the phases it timed."""
    check = _check("plain", histograms=True)
    metrics.set_checks([check])
    result = _ok(check)
    del result.phases["tls"]
    result.tls = None
    metrics.observe(check, result, duration=0.02)
    assert set(_phase_counts(metrics, "plain")) == {
        "resolve", "connect", "handshake", "ping", "close", "total",
    }  # fmt: skip
    text = metrics.render().decode()
    assert "wsprobe_check_ping_rtt_seconds_count" in text
    for phase in ("tls", "auth", "steps", "app_ping", "first_message"):
        assert f'phase="{phase}"' not in text
    assert "probe_tls_version_info" not in text


def test_no_histograms_before_a_measurement(metrics: Metrics) -> None:
    """A check with pings that has not run, or failed before any phase, has no empty histograms."""
    idle, failed = _check("idle"), _check("failed")
    metrics.set_checks([idle, failed])
    metrics.observe(failed, _failed(failed), duration=0.5)
    names = _with_checks(metrics, "idle") | _with_checks(metrics, "failed")
    assert not any(name.endswith(("_bucket", "_count", "_sum")) for name in names)
    assert "wsprobe_probes_total" in _with_checks(metrics, "idle")


def test_phase_histogram_buckets(metrics: Metrics) -> None:
    """wsprobe_phase_duration_seconds has the documented buckets plus +Inf, cumulative."""
    check = _check("feed", histograms=True)
    metrics.set_checks([check])
    metrics.observe(check, _ok(check), duration=0.02)
    samples = _samples(metrics.render().decode())
    les = {
        dict(labels)["le"]: value
        for (name, labels), value in samples.items()
        if name == "wsprobe_phase_duration_seconds_bucket" and ("phase", "tls") in labels
    }
    per_check = {
        dict(labels)["le"]: value
        for (name, labels), value in samples.items()
        if name == "wsprobe_check_phase_duration_seconds_bucket" and ("phase", "tls") in labels
    }
    assert per_check == les
    assert sorted(float(le) for le in les) == [*PHASE_BUCKETS, float("inf")]
    assert (les["0.0025"], les["0.01"], les["+Inf"]) == (0, 1, 1)


@pytest.mark.parametrize(
    "update",
    ["result", "skip"],
    ids=["new-result", "skipped-run"],
)
def test_cached_block_renews_on_change(metrics: Metrics, update: str) -> None:
    """A scrape after a new result or a skipped run shows it; an unchanged check reuses its text."""
    feed, chat = _check("feed"), _check("chat")
    metrics.set_checks([feed, chat])
    metrics.observe(feed, _ok(feed), duration=0.02)
    metrics.observe(chat, _ok(chat), duration=0.02)
    first = metrics.render().decode()
    chat_block = metrics.series(chat).block  # type: ignore[union-attr]
    assert chat_block is not None
    if update == "result":
        metrics.observe(feed, _failed(feed), duration=0.5)
    else:
        metrics.skipped("feed", "missed")
    second = metrics.render().decode()
    assert metrics.series(chat).block is chat_block  # type: ignore[union-attr]
    samples = _samples(second)
    feed_labels = {("check", "feed"), ("location", "eu-1")}
    if update == "result":
        assert samples[("probe_success", frozenset(feed_labels))] == 0
        failures = frozenset(feed_labels | {("reason", "handshake_status")})
        assert samples[("wsprobe_probe_failures_total", failures)] == 1
        assert (
            samples[("wsprobe_probes_total", frozenset(feed_labels | {("result", "failure")}))] == 1
        )
    else:
        skipped = frozenset(feed_labels | {("reason", "missed")})
        assert samples[("wsprobe_probes_skipped_total", skipped)] == 1
    assert second != first
    assert metrics.render().decode() == second


def test_live_series_not_cached() -> None:
    """Alert state is read at each scrape, even when the check's cached text is unchanged."""
    firing: set[str] = set()
    metrics = Metrics(location="eu-1", alert_flags=lambda: {"firing": firing})
    check = _check("feed")
    metrics.set_checks([check])
    metrics.observe(check, _ok(check), duration=0.02)
    key = ("wsprobe_alert_firing", frozenset({("check", "feed"), ("location", "eu-1")}))
    assert _samples(metrics.render().decode())[key] == 0
    firing.add("feed")
    assert _samples(metrics.render().decode())[key] == 1


def test_alert_flags_follow_state_and_check_changes() -> None:
    """Alert-state gauges read each scrape; unflagged text follows flag flips and relabels."""
    flapping: set[str] = set()
    metrics = Metrics(location="eu-1", alert_flags=lambda: {"flapping": flapping})
    checks = [_check(f"c{i}", team="a") for i in range(5)]
    metrics.set_checks(checks)

    def flags() -> dict[frozenset[tuple[str, str]], float]:
        samples = _samples(metrics.render().decode())
        return {k: v for (name, k), v in samples.items() if name == "wsprobe_alert_flapping"}

    def key(name: str, team: str) -> frozenset[tuple[str, str]]:
        return frozenset({("check", name), ("location", "eu-1"), ("team", team)})

    assert set(flags().values()) == {0}
    flapping.add("c3")
    assert flags()[key("c3", "a")] == 1
    assert sum(flags().values()) == 1
    flapping.clear()
    assert set(flags().values()) == {0}
    metrics.set_checks([_check(f"c{i}", team="b") for i in range(5)])
    assert set(flags()) == {key(f"c{i}", "b") for i in range(5)}
    assert set(flags().values()) == {0}


def test_scrape_pieces_are_time_bounded(metrics: Metrics) -> None:
    """With a zero time slice every check re-rendered in a scrape ends a piece (the loop's turn)."""
    checks = [_check(f"c{i}") for i in range(20)]
    metrics.set_checks(checks)
    for check in checks:
        metrics.observe(check, _ok(check), duration=0.02)
        metrics.skipped(check.name, "missed")  # changed since its text was rendered
    pieces = list(metrics.render_chunks(time_slice=0.0))
    rendering = pieces[: next(i for i, p in enumerate(pieces) if p)]
    assert len(rendering) >= 19
    assert "".join(pieces) == metrics.render().decode()


def test_scraped_check_renders_on_result(metrics: Metrics) -> None:
    """A check's next results render its text at once, as a scrape would.

    EAGER_RENDERS of them from the start (so the first scrape finds the text ready) and
    again after each scrape; a later result before the next scrape leaves the text to
    that scrape.
    """
    feed, chat = _check("feed"), _check("chat")
    metrics.set_checks([feed, chat])
    # The same results fed to agent metrics that never render early.
    lazy = Metrics(location="eu-1", alert_flags=_firing, queue_depth=_depth)
    lazy.reload_success_timestamp = metrics.reload_success_timestamp
    lazy.reload_successful = metrics.reload_successful
    lazy.set_checks([feed, chat])
    results = [_ok, _failed]

    def never_eager() -> None:
        for check in (feed, chat):
            lazy.series(check).eager = 0  # type: ignore[union-attr]

    def lazy_render() -> bytes:
        text = lazy.render()
        never_eager()
        return text

    def feed_result(i: int) -> tuple[str, ...] | None:
        metrics.observe(feed, results[i % 2](feed), duration=0.02 * (i + 1))
        lazy.observe(feed, results[i % 2](feed), duration=0.02 * (i + 1))
        assert lazy.series(feed).block is None  # type: ignore[union-attr]
        return metrics.series(feed).block  # type: ignore[union-attr]

    never_eager()
    first = [feed_result(i) for i in range(EAGER_RENDERS + 1)]
    assert None not in first[:-1]  # before any scrape: rendered as they arrive
    assert first[-1] is None  # over the budget: left to the scrape
    assert metrics.render() == lazy_render()
    eager = [feed_result(i) for i in range(1, 1 + EAGER_RENDERS)]
    assert None not in eager
    assert len({id(b) for b in eager}) == EAGER_RENDERS
    assert metrics.render() == lazy_render()  # the eager text is the scrape's
    assert metrics.series(feed).block is eager[-1]  # type: ignore[union-attr]
    more = [feed_result(i) for i in range(1 + EAGER_RENDERS, 2 + 2 * EAGER_RENDERS)]
    assert None not in more[:-1]
    assert more[-1] is None  # over the budget: left to the scrape
    assert metrics.render() == lazy_render()
    assert metrics.series(chat).block is not None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("base", "extra"), [("", ""), ('check="a"', ""), ('check="a"', 'phase="x"')]
)
def test_histogram_text_is_cumulative_with_its_labels(base: str, extra: str) -> None:
    """Each bucket counts what is at or below its bound; +Inf, count and sum close it."""
    hist = Histogram((0.001, 0.01))
    for seconds in (0.0005, 0.005, 0.007, 2.5):
        hist.observe(seconds)
    text = header("x_seconds", "Test.", "histogram") + hist.text("x_seconds", base, extra)
    [family] = text_string_to_metric_families(text)
    wanted = {k: v.strip('"') for k, _, v in (p.partition("=") for p in (base, extra) if p)}
    got = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert got == {
        ("x_seconds_bucket", "0.001"): 1,
        ("x_seconds_bucket", "0.01"): 3,
        ("x_seconds_bucket", "+Inf"): 4,
        ("x_seconds_count", None): 4,
        ("x_seconds_sum", None): pytest.approx(2.5125),
    }
    for sample in family.samples:
        assert {k: v for k, v in sample.labels.items() if k != "le"} == wanted


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0215, "0.0215"), (3.0, "3"), (7, "7"), (1e20, "1e+20"), (-2.5, "-2.5"),
     (float("nan"), "NaN"), (float("inf"), "+Inf"), (float("-inf"), "-Inf")],
)  # fmt: skip
def test_sample_values_are_written_as_prometheus_does(value: float, text: str) -> None:
    """Whole numbers without a fraction, special values by name, others shortest."""
    assert fmt(value) == text


@pytest.mark.parametrize(("healthy", "errors"), [(True, 0), (False, 7)], ids=["ok", "failing"])
def test_state_file_health_is_exposed(healthy: bool, errors: int) -> None:
    """The state file's write errors and health gauge come from the store at scrape time."""
    metrics = Metrics(location="eu-1", state_health=lambda: (healthy, errors))
    samples = _samples(metrics.render().decode())
    loc = frozenset({("location", "eu-1")})
    assert samples[("wsprobe_state_write_errors_total", loc)] == errors
    assert samples[("wsprobe_state_healthy", loc)] == int(healthy)


def _per_check(*, histograms: bool) -> tuple[float, float]:
    """Bytes and samples one probed TLS check adds to a daemon-like exposition."""
    metrics = Metrics(
        location="eu-1",
        alert_flags=lambda: dict.fromkeys(ALERT_FLAGS, frozenset()),
    )
    checks = [_check(f"check-{i:05d}", histograms=histograms) for i in range(50)]
    metrics.set_checks(checks)
    for check in checks:
        metrics.observe(check, _failed(check), duration=0.5)
        metrics.observe(check, _ok(check), duration=0.021)
    text = metrics.render().decode()
    samples = _samples(text)
    mine = [key for key in samples if ("check", "check-00007") in key[1]]
    lines = [line for line in text.splitlines() if 'check="check-00007"' in line]
    return sum(len(line) + 1 for line in lines), len(mine)


def test_default_exposition_is_small_per_check() -> None:
    """By default a check exports ~20 samples (blackbox-like), under 2 KB; no histograms."""
    size, samples = _per_check(histograms=False)
    assert size <= 2048, size
    assert samples <= 30, samples


def test_histograms_opt_in_per_check() -> None:
    """metrics.histograms adds the check's own phase and ping histograms."""
    lean, lean_samples = _per_check(histograms=False)
    full, full_samples = _per_check(histograms=True)
    assert full_samples > lean_samples + 60
    assert full > 4 * lean


def test_fleet_histograms_have_no_check_label(metrics: Metrics) -> None:
    """Agent-wide phase and ping histograms are by kind and location, summed over checks."""
    feed, chat = _check("feed"), _check("chat", histograms=True)
    metrics.set_checks([feed, chat])
    metrics.observe(feed, _ok(feed), duration=0.02)
    metrics.observe(chat, _ok(chat), duration=0.02)
    samples = _samples(metrics.render().decode())
    fleet = [
        dict(labels)
        for (name, labels), _ in samples.items()
        if name.startswith(("wsprobe_phase_duration_seconds", "wsprobe_ping_rtt_seconds"))
    ]
    assert fleet
    assert all(set(labels) <= {"location", "kind", "phase", "le"} for labels in fleet)
    total = frozenset({("location", "eu-1"), ("kind", "probe"), ("phase", "total")})
    assert samples[("wsprobe_phase_duration_seconds_count", total)] == 2
    ping = frozenset({("location", "eu-1"), ("kind", "probe")})
    assert samples[("wsprobe_ping_rtt_seconds_count", ping)] == 6
    checks = {dict(labels)["check"] for (name, labels) in samples
              if name == "wsprobe_check_ping_rtt_seconds_count"}  # fmt: skip
    assert checks == {"chat"}


def test_families_of_sources_not_given_are_left_out() -> None:
    """Metrics built without alerting, watch or notification sources omits those families."""
    bare = Metrics(location="eu-1")
    check = _check("feed")
    bare.set_checks([check])
    bare.observe(check, _ok(check), duration=0.02)
    names = _names(bare.render().decode())
    assert "probe_success" in names
    assert not names & {
        "wsprobe_alert_firing",
        "wsprobe_notification_queue_depth",
        "wsprobe_notifications_total",
        "wsprobe_watch_connected",
    }
