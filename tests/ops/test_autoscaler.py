"""deploy/autoscaler: the pure policy on synthetic metric series, and run.py's round against a
stub Prometheus (stdlib http.server on 127.0.0.1) with an injected command runner."""

from __future__ import annotations

import json
import math
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from deploy import bluegreen
from deploy.autoscaler import run
from deploy.autoscaler.policy import (
    AUX_WORKERS,
    BULK_WORKERS,
    SII_WORKERS,
    Decision,
    Sample,
    State,
    WebPolicy,
    WorkerPolicy,
    decide_web,
    decide_workers,
    desired_workers,
    scalable,
)
from tests.ops.promcheck import external_metrics, metric_names
from tests.ops.traefik_tools import ROOT

MIN = 60.0
T0 = 1_700_000_000.0
STEP = 30.0


def series(start: float, end: float, value: Callable[[float], float | None]) -> list[Sample]:
    """A sample every STEP seconds from start to end (inclusive), minutes relative to T0."""
    out = []
    t = start
    while t <= end + 1e-9:
        out.append(Sample(T0 + t * MIN, value(t)))
        t += STEP / MIN
    return out


def simulate(
    decide: Callable[[list[Sample], State, float], Decision],
    value: Callable[[float], float | None],
    minutes: float,
    state: State,
) -> tuple[State, list[tuple[float, Decision]]]:
    """Run the policy every STEP seconds over `minutes` of the series and apply its decisions;
    returns the final state and the (minute, decision) of every scaling."""
    samples = series(0, minutes, value)
    changes = []
    for i, sample in enumerate(samples):
        now = sample.at
        decision = decide(samples[: i + 1], state, now)
        if decision.direction != "hold":
            state = State(decision.replicas, now, decision.direction)
            changes.append(((now - T0) / MIN, decision))
    return state, changes


def web(samples, state, now):
    return decide_web(samples, state, now)


def workers(samples, state, now):
    return decide_workers(samples, state, now)


def aux(samples, state, now):
    return decide_workers(samples, state, now, AUX_WORKERS)


def bulk(samples, state, now):
    return decide_workers(samples, state, now, BULK_WORKERS)


# Web: up ----------------------------------------------------------------------------------------


def test_sustained_high_latency_scales_up_by_2_once_per_cooldown():
    state, changes = simulate(web, lambda t: 2.0, 14.5, State(4))
    assert [(t, d.replicas, d.direction) for t, d in changes] == [(5.0, 6, "up")]
    assert state.replicas == 6
    # Still high when the 10-minute cooldown ends: one more step of 2.
    _, changes = simulate(web, lambda t: 2.0, 20, State(4))
    assert [(t, d.replicas) for t, d in changes] == [(5.0, 6), (15.0, 8)]


def test_high_latency_under_5_minutes_holds():
    samples = series(0, 4.5, lambda t: 2.0)
    decision = decide_web(samples, State(4), samples[-1].at)
    assert decision.direction == "hold" and decision.replicas == 4


def test_brief_spike_does_not_scale():
    def spike(t):
        return 2.5 if 10 <= t < 14 else 0.9

    _, changes = simulate(web, spike, 40, State(4))
    assert changes == []


def test_hysteresis_band_never_scales():
    _, changes = simulate(web, lambda t: 0.6 + (t % 6) / 10, 60, State(4))  # 0.6 .. 1.1
    assert changes == []


def test_up_cooldown_does_not_follow_a_down_scale():
    samples = series(0, 5, lambda t: 2.0)
    now = samples[-1].at
    decision = decide_web(samples, State(4, now - 60, "down"), now)
    assert (decision.direction, decision.replicas) == ("up", 6)
    assert decide_web(samples, State(4, now - 60, "up"), now).direction == "hold"


# Web: down --------------------------------------------------------------------------------------


def test_low_latency_for_14_minutes_holds_and_15_scales_down_by_1():
    samples = series(0, 15, lambda t: 0.3)
    at_14 = [s for s in samples if s.at <= T0 + 14 * MIN]
    assert decide_web(at_14, State(6), T0 + 14 * MIN).direction == "hold"
    decision = decide_web(samples, State(6), T0 + 15 * MIN)
    assert (decision.direction, decision.replicas) == ("down", 5)


def test_down_cooldown_is_30_minutes_after_any_scaling():
    samples = series(0, 60, lambda t: 0.3)
    now = samples[-1].at
    for direction in ("up", "down"):
        assert decide_web(samples, State(6, now - 29 * MIN, direction), now).direction == "hold"
        assert decide_web(samples, State(6, now - 30 * MIN, direction), now).replicas == 5
    _, changes = simulate(web, lambda t: 0.3, 90, State(6))
    assert [(t, d.replicas) for t, d in changes] == [(15.0, 5), (45.0, 4), (75.0, 3)]


# Web: bounds ------------------------------------------------------------------------------------


def test_never_below_min_or_above_max():
    policy = WebPolicy()
    state, _ = simulate(web, lambda t: 0.1, 600, State(5))
    assert state.replicas == policy.min_replicas == 2
    state, changes = simulate(web, lambda t: 9.0, 200, State(2))
    assert state.replicas == policy.max_replicas == 16
    assert all(d.replicas <= 16 for _, d in changes)
    high = series(0, 6, lambda t: 9.0)
    assert decide_web(high, State(15), high[-1].at).replicas == 16  # +2 clamped to +1
    assert decide_web(high, State(16), high[-1].at).direction == "hold"
    low = series(0, 20, lambda t: 0.1)
    assert decide_web(low, State(2), low[-1].at).direction == "hold"


def test_out_of_bounds_replicas_are_brought_back():
    samples = series(0, 1, lambda t: 0.8)
    assert decide_web(samples, State(1), samples[-1].at) == Decision(
        2, "up", "1 replicas is below the minimum 2"
    )
    assert decide_web(samples, State(20), samples[-1].at).replicas == 16


# Web: missing data ------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", [None, math.nan])
def test_missing_newest_sample_holds(missing):
    samples = [*series(0, 20, lambda t: 2.0), Sample(T0 + 20.5 * MIN, missing)]
    assert decide_web(samples, State(4), T0 + 20.5 * MIN).direction == "hold"
    low = [*series(0, 20, lambda t: 0.1), Sample(T0 + 20.5 * MIN, missing)]
    assert decide_web(low, State(4), T0 + 20.5 * MIN).direction == "hold"


@pytest.mark.parametrize("missing", [None, math.nan])
def test_missing_sample_breaks_a_sustained_run(missing):
    def value(t):
        return missing if t == 3 else 2.0

    # The run restarts at 3.5 minutes, after the hole: 5 minutes later, not before, it scales.
    assert decide_web(series(0, 8, value), State(4), T0 + 8 * MIN).direction == "hold"
    assert decide_web(series(0, 8.5, value), State(4), T0 + 8.5 * MIN).direction == "up"


def test_all_missing_and_stale_or_empty_series_hold():
    assert decide_web(series(0, 30, lambda t: None), State(4), T0 + 30 * MIN).direction == "hold"
    assert decide_web([], State(4), T0).direction == "hold"
    stale = series(0, 10, lambda t: 2.0)
    assert decide_web(stale, State(4), T0 + 20 * MIN).direction == "hold"
    # A hole in the series longer than max_gap also breaks the run.
    holey = [s for s in series(0, 8, lambda t: 2.0) if not 2 < (s.at - T0) / MIN < 5]
    assert decide_web(holey, State(4), T0 + 8 * MIN).direction == "hold"


# Workers ----------------------------------------------------------------------------------------


def test_desired_workers_is_clamped_ceil():
    assert [desired_workers(q) for q in (0, 1, 25, 26, 100, 180, 10_000)] == [1, 1, 1, 2, 4, 8, 8]
    assert desired_workers(30, WorkerPolicy(target_per_worker=10)) == 3


def test_queue_burst_scales_workers_up_at_once():
    samples = [*series(0, 5, lambda t: 0.0), Sample(T0 + 5.5 * MIN, 180.0)]
    decision = decide_workers(samples, State(1), T0 + 5.5 * MIN)
    assert (decision.direction, decision.replicas) == ("up", 8)
    samples = [*series(0, 5, lambda t: 0.0), Sample(T0 + 5.5 * MIN, 60.0)]
    assert decide_workers(samples, State(1), T0 + 5.5 * MIN).replicas == 3


def test_worker_up_cooldown_is_2_minutes():
    def queue(t):
        return 60.0 if t < 3 else 160.0

    _, changes = simulate(workers, queue, 8, State(1))
    # 3 at once, 7 when the queue grows at minute 3 (more than 2 minutes later).
    assert [(t, d.replicas, d.direction) for t, d in changes] == [(0.0, 3, "up"), (3.0, 7, "up")]
    _, changes = simulate(workers, lambda t: 60.0 if t < 1 else 160.0, 8, State(1))
    assert [(t, d.replicas) for t, d in changes] == [(0.0, 3), (2.0, 7)]


def test_workers_scale_down_by_1_after_the_queue_stays_low_10_minutes():
    def queue(t):
        return 200.0 if t < 5 else 10.0

    _, changes = simulate(workers, queue, 44, State(1))
    assert [(t, d.replicas, d.direction) for t, d in changes] == [
        (0.0, 8, "up"),
        (15.0, 7, "down"),  # low since minute 5, for 10 minutes
        (25.0, 6, "down"),  # then one per 10-minute cooldown
        (35.0, 5, "down"),
    ]


def test_workers_hold_while_the_queue_still_needs_them_or_data_is_missing():
    samples = series(0, 30, lambda t: 100.0)
    assert decide_workers(samples, State(4), T0 + 30 * MIN).direction == "hold"
    assert decide_workers(samples, State(1), T0 + 40 * MIN).direction == "hold"  # stale
    for missing in (None, math.nan):
        gap = [*series(0, 30, lambda t: 0.0), Sample(T0 + 30.5 * MIN, missing)]
        assert decide_workers(gap, State(4), T0 + 30.5 * MIN).direction == "hold"
    low = series(0, 30, lambda t: 0.0)
    assert decide_workers(low, State(1), T0 + 30 * MIN).direction == "hold"  # at min
    assert decide_workers(low, State(9), T0 + 30 * MIN).replicas == 8  # above max


# Workers -aux and -bulk -------------------------------------------------------------------------


def test_aux_and_bulk_policies():
    assert (AUX_WORKERS.min_replicas, AUX_WORKERS.max_replicas) == (1, 4)
    assert AUX_WORKERS.target_per_worker == 50
    assert (BULK_WORKERS.min_replicas, BULK_WORKERS.max_replicas) == (1, 3)
    assert BULK_WORKERS.target_per_worker == 5
    assert (SII_WORKERS.min_replicas, SII_WORKERS.max_replicas) == (1, 8)
    aux_counts = [desired_workers(q, AUX_WORKERS) for q in (0, 50, 51, 150, 151, 10_000)]
    assert aux_counts == [1, 1, 2, 3, 4, 4]
    bulk_counts = [desired_workers(q, BULK_WORKERS) for q in (0, 5, 6, 10, 11, 500)]
    assert bulk_counts == [1, 1, 2, 2, 3, 3]


def test_aux_scales_up_at_once_on_a_burst_and_down_after_the_queue_stays_low():
    def queue(t):
        if t < 5:
            return 0.0
        return 400.0 if t < 10 else 10.0

    state, changes = simulate(aux, queue, 44, State(1))
    assert [(t, d.replicas, d.direction) for t, d in changes] == [
        (5.0, 4, "up"),  # at once to its max 4 (ceil(400 / 50) = 8)
        (20.0, 3, "down"),  # low since minute 10, for 10 minutes
        (30.0, 2, "down"),
        (40.0, 1, "down"),
    ]
    assert state == State(1, T0 + 40 * MIN, "down")
    # A smaller burst: ceil(120 / 50) = 3, in one step.
    samples = [*series(0, 5, lambda t: 0.0), Sample(T0 + 5.5 * MIN, 120.0)]
    decision = decide_workers(samples, State(1), T0 + 5.5 * MIN, AUX_WORKERS)
    assert (decision.direction, decision.replicas) == ("up", 3)


def test_aux_holds_while_the_queue_is_above_the_down_threshold():
    # 2 -> 1 only below (2 - 1) * 50 * 0.8 = 40 waiting.
    _, changes = simulate(aux, lambda t: 45.0, 60, State(2))
    assert changes == []
    _, changes = simulate(aux, lambda t: 35.0, 60, State(2))
    assert [(t, d.replicas, d.direction) for t, d in changes] == [(10.0, 1, "down")]


def test_bulk_is_clamped_at_its_max():
    state, changes = simulate(bulk, lambda t: 1000.0, 30, State(1))
    assert [(t, d.replicas, d.direction) for t, d in changes] == [(0.0, 3, "up")]
    assert state.replicas == 3
    samples = series(0, 30, lambda t: 1000.0)
    assert decide_workers(samples, State(3), T0 + 30 * MIN, BULK_WORKERS) == Decision(
        3, "hold", "queue 1000 needs 3 workers"
    )
    # More than the max (scaled by hand) is brought back to it.
    assert decide_workers(samples, State(5), T0 + 30 * MIN, BULK_WORKERS) == Decision(
        3, "down", "5 replicas is above the maximum 3"
    )


def test_bulk_scales_down_only_after_30_quiet_minutes():
    # 3 -> 2 only below (3 - 1) * 5 * 0.8 = 8 waiting, held 30 min, 30 min after any scaling.
    state, changes = simulate(bulk, lambda t: 40.0 if t < 5 else 0.0, 110, State(1))
    assert [(t, d.replicas, d.direction) for t, d in changes] == [
        (0.0, 3, "up"),
        (35.0, 2, "down"),  # quiet since minute 5, for 30 minutes
        (65.0, 1, "down"),  # 30 minutes after the last scaling
    ]
    assert state == State(1, T0 + 65 * MIN, "down")


@pytest.mark.parametrize("policy", [AUX_WORKERS, BULK_WORKERS], ids=["aux", "bulk"])
def test_aux_and_bulk_hold_without_data(policy):
    # No series at all: the monitoring profile (celery-exporter) is off.
    assert decide_workers([], State(2), NOW, policy) == Decision(
        2, "hold", "no recent queue sample (missing data never scales)"
    )
    stale = series(0, 10, lambda t: 1000.0)
    assert decide_workers(stale, State(2), T0 + 20 * MIN, policy).direction == "hold"


# Beat is never scaled ---------------------------------------------------------------------------


SCALABLE = {
    "web-blue",
    "web-green",
    "worker-blue",
    "worker-green",
    "worker-blue-aux",
    "worker-green-aux",
    "worker-blue-bulk",
    "worker-green-bulk",
}


def test_only_web_and_worker_colours_are_scalable():
    assert all(scalable(s) for s in SCALABLE)
    for service in (
        "beat",
        "postgres",
        "redis",
        "traefik",
        "celery-exporter",
        "web",
        "worker",
        "worker-red",
        "worker-aux",
        "worker-bulk",
        "worker-red-aux",
        "web-blue-aux",
        "worker-blue-aux2",
        "worker-blue-bulk-1",
        "worker-blue-beat",
        "worker-blue-",
        " web-blue",
        "worker-blue-aux ",
        "",
    ):
        assert not scalable(service), service
    for service in ("beat", "worker-red-aux", "celery-exporter"):
        with pytest.raises(ValueError, match="never autoscaled"):
            run.compose_scale_command(service, 2)
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert "beat" in services
    assert {s for s in services if scalable(s)} == SCALABLE


def _queues(service: dict) -> tuple[str, ...]:
    command = service["command"]
    return tuple(command[command.index("-Q") + 1].split(","))


def test_the_celery_queries_read_the_queues_each_service_consumes():
    assert run.AUX_QUERY == 'sum(celery_queue_length{queue_name=~"pdf|email|ai"})'
    assert run.BULK_QUERY == 'sum(celery_queue_length{queue_name="bulk"})'
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    for colour in ("blue", "green"):
        assert _queues(services[f"worker-{colour}-aux"]) == run.AUX_QUEUES
        assert _queues(services[f"worker-{colour}-bulk"]) == run.BULK_QUEUES


def test_state_file_ignores_beat(tmp_path):
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"beat": {"replicas": 3}, "web-blue": {"replicas": 5}}))
    assert run.load_states(path) == {"web-blue": State(5)}
    path.write_text("{not json")
    assert run.load_states(path) == {}


def test_the_exporters_metrics_the_autoscaler_reads_are_documented():
    # deploy/prometheus/external_metrics.txt lists what the stack reads from others' exporters.
    assert metric_names(run.AUX_QUERY) == metric_names(run.BULK_QUERY) == {"celery_queue_length"}
    external = external_metrics()
    for query in (run.latency_query("blue"), run.AUX_QUERY, run.BULK_QUERY):
        assert metric_names(query) <= external, query


# run.py against a stub Prometheus ---------------------------------------------------------------

NOW = T0 + 30 * MIN


# What the stub answers for each worker query: the SII queue needs 8 workers (ceil(180 / 25)),
# aux 3 (ceil(120 / 50)), bulk 1 (3 < 5: it holds at its minimum).
QUEUE_VALUES = {run.QUEUE_QUERY: "180", run.AUX_QUERY: "120", run.BULK_QUERY: "3"}


class StubPrometheus(BaseHTTPRequestHandler):
    mode = "ok"
    queries: list[str] = []
    # Queries answered with no series (as Prometheus does when nothing exports the metric).
    empty: set[str] = set()

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(url.query))
        type(self).queries.append(params.get("query", ""))
        if self.mode == "500":
            return self._send(500, b"boom")
        if self.mode == "garbage":
            return self._send(200, b"<html>not json</html>")
        if self.mode == "error":
            body = {"status": "error", "errorType": "bad_data", "error": "parse error"}
            return self._send(400, json.dumps(body).encode())
        if self.mode == "shape":
            return self._send(200, json.dumps({"status": "success", "data": {}}).encode())
        assert url.path == "/api/v1/query_range"
        query = params["query"]
        if 'service="app-blue@file"' in query:
            value = "2.5"
        elif 'service="app-green@file"' in query:
            value = "NaN"  # no traffic on green
        else:
            assert query in QUEUE_VALUES, query
            value = QUEUE_VALUES[query]
        result = [] if query in self.empty else [{"metric": {}, "values": None}]
        start, end, step = float(params["start"]), float(params["end"]), float(params["step"])
        values = []
        t = start
        while t <= end:
            values.append([t, value])
            t += step
        for series_ in result:
            series_["values"] = values
        body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
        self._send(200, json.dumps(body).encode())

    def _send(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def prometheus() -> Iterator[str]:
    StubPrometheus.mode = "ok"
    StubPrometheus.queries = []
    StubPrometheus.empty = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubPrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _main(prometheus, state_file, *extra):
    calls: list[list[str]] = []

    def runner(command):
        calls.append(list(command))
        return 0

    argv = [
        "--prometheus",
        prometheus,
        "--state-file",
        str(state_file),
        "--worker-colour",
        "blue",
        "--once",
        *extra,
    ]
    rc = run.main(argv, runner=runner, clock=lambda: NOW, sleep=pytest.fail)
    return rc, calls


def test_run_once_dry_run_prints_the_compose_commands(prometheus, tmp_path, capsys):
    state_file = tmp_path / "state.json"
    rc, calls = _main(prometheus, state_file, "--dry-run")
    assert rc == 0 and calls == []
    assert not state_file.exists()
    out = capsys.readouterr().out
    # The env file holds the colours' image tags: a new replica runs its colour's image.
    env_file = ROOT / "deploy" / "env" / "compose.env"
    compose = f"docker compose --env-file {env_file}"
    assert f"would run: {compose} up -d --no-recreate --scale web-blue=4 web-blue" in out
    assert f"would run: {compose} up -d --no-recreate --scale worker-blue=8 worker-blue" in out
    assert (
        f"would run: {compose} up -d --no-recreate --scale worker-blue-aux=3 worker-blue-aux"
    ) in out
    assert "worker-blue-bulk: hold to 1 (queue 3: 1 workers is enough)" in out
    assert "web-green: hold" in out and "web-green=" not in out
    assert "worker-blue-bulk=" not in out
    assert out.count("would run:") == 3
    assert "beat" not in out and "green-aux" not in out and "green-bulk" not in out
    assert StubPrometheus.queries == [
        run.latency_query("blue"),
        "histogram_quantile(0.95, sum by (le) (rate(traefik_service_request_duration_seconds_"
        'bucket{service="app-green@file"}[1m])))',
        run.QUEUE_QUERY,
        'sum(celery_queue_length{queue_name=~"pdf|email|ai"})',
        'sum(celery_queue_length{queue_name="bulk"})',
    ]


def test_run_once_applies_through_the_runner_and_keeps_state(prometheus, tmp_path):
    state_file = tmp_path / "state.json"
    rc, calls = _main(prometheus, state_file, "--compose", "docker compose -f compose.yaml")
    assert rc == 0
    assert calls == [
        [
            *["docker", "compose", "-f", "compose.yaml", "up", "-d", "--no-recreate"],
            "--scale",
            "web-blue=4",
            "web-blue",
        ],
        [
            *["docker", "compose", "-f", "compose.yaml", "up", "-d", "--no-recreate"],
            "--scale",
            "worker-blue=8",
            "worker-blue",
        ],
        [
            *["docker", "compose", "-f", "compose.yaml", "up", "-d", "--no-recreate"],
            "--scale",
            "worker-blue-aux=3",
            "worker-blue-aux",
        ],
    ]
    # worker-blue-bulk held: nothing recorded for it.
    assert run.load_states(state_file) == {
        "web-blue": State(4, NOW, "up"),
        "worker-blue": State(8, NOW, "up"),
        "worker-blue-aux": State(3, NOW, "up"),
    }
    # The next round, still within the cooldowns (workers at max, aux's queue still needing 3,
    # bulk's still fitting in 1), changes nothing.
    rc, calls = _main(prometheus, state_file)
    assert rc == 0 and calls == []


def test_failed_compose_command_leaves_state_alone(prometheus, tmp_path):
    state_file = tmp_path / "state.json"
    rc = run.main(
        [
            "--prometheus",
            prometheus,
            "--state-file",
            str(state_file),
            "--worker-colour",
            "none",
            "--web-colours",
            "blue",
            "--once",
        ],
        runner=lambda command: 1,
        clock=lambda: NOW,
    )
    assert rc == 0 and not state_file.exists()


@pytest.mark.parametrize("mode", ["500", "garbage", "error", "shape"])
def test_bad_prometheus_answers_hold(prometheus, tmp_path, capsys, mode):
    StubPrometheus.mode = mode
    rc, calls = _main(prometheus, tmp_path / "state.json", "--dry-run")
    assert rc == 0 and calls == []
    out = capsys.readouterr().out
    assert out.count("hold") == 5 and out.count("Prometheus error") == 5
    assert "would run" not in out


def test_no_celery_queue_series_holds_aux_and_bulk(prometheus, tmp_path, capsys):
    # The monitoring profile is off: no celery-exporter, so no celery_queue_length series.
    StubPrometheus.empty = {run.AUX_QUERY, run.BULK_QUERY}
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps({"worker-blue-aux": {"replicas": 3}}))
    rc, calls = _main(prometheus, state_file)
    assert rc == 0
    assert [command[-1] for command in calls] == ["web-blue", "worker-blue"]
    states = run.load_states(state_file)
    assert states["worker-blue-aux"] == State(3)  # held at what it was, not brought down
    assert "worker-blue-bulk" not in states
    rc, _ = _main(prometheus, tmp_path / "dry.json", "--dry-run")
    out = capsys.readouterr().out
    for service in ("worker-blue-aux", "worker-blue-bulk"):
        assert f"{service}: hold to 1 (no recent queue sample (missing data never scales))" in out


def test_worker_colour_none_scales_no_worker_service(prometheus, tmp_path, capsys):
    state_file = tmp_path / "state.json"
    rc, calls = _main(prometheus, state_file, "--worker-colour", "none")
    assert rc == 0
    assert calls == [
        [*run.DEFAULT_COMPOSE, "up", "-d", "--no-recreate", "--scale", "web-blue=4", "web-blue"]
    ]
    assert StubPrometheus.queries == [run.latency_query("blue"), run.latency_query("green")]
    assert set(run.load_states(state_file)) == {"web-blue"}
    rc, calls = _main(prometheus, tmp_path / "dry.json", "--worker-colour", "none", "--dry-run")
    assert "worker" not in capsys.readouterr().out


def test_worker_colour_auto_scales_the_active_colours_workers(prometheus, tmp_path):
    weights = tmp_path / "weights.yml"
    weights.write_text(bluegreen.weights_file(10, 90))  # green is active
    rc, calls = _main(
        prometheus,
        tmp_path / "state.json",
        *["--worker-colour", "auto", "--weights-file", str(weights), "--web-colours", "green"],
    )
    assert rc == 0
    assert [command[-2:] for command in calls] == [
        ["worker-green=8", "worker-green"],
        ["worker-green-aux=3", "worker-green-aux"],
    ]
    # No weights file: no active colour, so no worker service is touched.
    StubPrometheus.queries = []
    rc, calls = _main(
        prometheus,
        tmp_path / "state2.json",
        *["--worker-colour", "auto", "--weights-file", str(tmp_path / "missing.yml")],
    )
    assert rc == 0 and [command[-1] for command in calls] == ["web-blue"]
    assert not any("celery" in query or "dte_sii" in query for query in StubPrometheus.queries)


def test_cli_targets_are_honoured(prometheus, tmp_path):
    # 180 / 60 -> 3 SII workers, 120 / 30 -> 4 aux, 3 / 1 -> 3 bulk.
    rc, calls = _main(
        prometheus,
        tmp_path / "state.json",
        *["--web-colours", "green", "--target", "60", "--aux-target", "30"],
        *["--bulk-target", "1"],
    )
    assert rc == 0
    assert [command[-2:] for command in calls] == [
        ["worker-blue=3", "worker-blue"],
        ["worker-blue-aux=4", "worker-blue-aux"],
        ["worker-blue-bulk=3", "worker-blue-bulk"],
    ]
    args = run.parse_args([])
    assert (args.target, args.aux_target, args.bulk_target) == (25.0, 50.0, 5.0)


def test_cli_help_shows_the_targets_defaults(capsys):
    with pytest.raises(SystemExit):
        run.parse_args(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--target TARGET SII envelopes waiting per worker-<colour> replica (default 25.0)" in out
    assert "worker-<colour>-aux replica (default 50.0)" in out
    assert "worker-<colour>-bulk replica (default 5.0)" in out


@pytest.mark.parametrize("option", ["--target", "--aux-target", "--bulk-target"])
@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf"])
def test_cli_targets_must_be_positive(option, value, capsys):
    with pytest.raises(SystemExit):
        run.parse_args([option, value])
    assert f"{option} must be positive" in capsys.readouterr().err


def test_unreachable_prometheus_holds(tmp_path):
    rc, calls = _main("http://127.0.0.1:9", tmp_path / "state.json", "--timeout", "2")
    assert rc == 0 and calls == []


def test_the_loop_survives_a_failing_round(tmp_path, monkeypatch):
    rounds = []

    def boom(args, runner, now):
        rounds.append(now)
        raise RuntimeError("unexpected")

    class Stop(Exception):
        pass

    def sleep(seconds):
        if len(rounds) >= 3:
            raise Stop

    monkeypatch.setattr(run, "run_round", boom)
    with pytest.raises(Stop):
        run.main(["--state-file", str(tmp_path / "s.json")], clock=lambda: NOW, sleep=sleep)
    assert len(rounds) == 3
    assert run.main(["--state-file", str(tmp_path / "s.json"), "--once"], clock=lambda: NOW) == 1
