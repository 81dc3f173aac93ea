"""The load suite (bench/load): its scenarios and verdicts, and the smoke scenario end to end
through the one-command runner against a real stack (PostgreSQL, Redis, gunicorn, a Celery
worker, beat, the sandbox SII)."""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from bench.load import report
from bench.load.scenarios import SCENARIOS, Threshold

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "bench" / "load" / "run.py"


def _row(name: str, **values) -> report.Row:
    base = {"requests": 100, "failures": 0, "rps": 10.0, "p50": 20, "p95": 90, "p99": 150}
    base.update(values)
    return report.Row(scenario="s", name=name, max=base["p99"], **base)


def test_thresholds_judge_the_rows_they_name():
    scenario = SCENARIOS["reads"]  # reader: p95 < 300 ms; no error overall
    rows = [
        _row("reader: list documents", p95=299),
        _row("reader: search documents", p95=300),
        _row("staff: dashboard", p95=5000),  # no threshold names it
        _row("Aggregated", failures=1),
    ]
    report.judge(rows, scenario)
    assert [r.verdict for r in rows] == ["pass", "FAIL", "—", "FAIL"]
    assert rows[1].problems == ["p95 300 ≥ 300 ms"]
    assert rows[3].problems == ["errors 1.00% > 0.0%"]
    assert Threshold("integrator: issue", p50=50).applies("integrator: issue")
    assert not Threshold("integrator: issue", p50=50).applies("integrator: issue batch")


def test_overrides_scale_users_and_time_and_keep_the_offered_issuing_rate():
    load = SCENARIOS["load"]
    assert load.duration == 600 and load.issue_rate
    # 25 integrators paced to offer the scenario's documents per minute together.
    assert load.issue_pace() == pytest.approx(25 * 60 / load.issue_rate)
    short = load.with_overrides(users=50, duration=60)
    assert short.duration == 60 and short.peak_users == 50
    assert short.issue_pace() == pytest.approx(50 * 60 / load.issue_rate)
    spike = SCENARIOS["spike"].with_overrides(users=100, duration=None)
    assert [n for _, n, _ in spike.stages] == [5, 100, 5]
    with pytest.raises(ValueError, match="fewer than the fixed users"):
        SCENARIOS["smoke"].with_overrides(users=3, duration=None)


def test_a_missing_postgresql_is_one_line_and_exit_status_2(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run(
        [sys.executable, str(RUNNER), "--scenario", "smoke", "--pg-port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 2, done.stderr
    assert f"load: PostgreSQL not reachable at 127.0.0.1:{port}" in done.stderr


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_smoke_scenario_end_to_end(tmp_path):
    """One command starts the stack, seeds it, runs every role for a few seconds and prints the
    table: requests by every role, no error, the documents issued with consecutive folios and
    accepted by the sandbox. Latency thresholds depend on the machine, so exit status 1 (a
    threshold missed) is accepted here as long as it agrees with the verdicts."""
    db = settings.DATABASES["default"]
    host, port, user = db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432), db.get("USER")
    user = user or "postgres"
    argv = [
        sys.executable,
        str(RUNNER),
        "--scenario",
        "smoke",
        "--duration",
        "15",
        "--out",
        str(tmp_path),
        "--pg-host",
        host,
        "--pg-port",
        str(port),
        "--pg-user",
        user,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=ROOT)
    output = done.stdout + done.stderr
    assert done.returncode in (0, 1), output

    [result] = json.loads(next(tmp_path.glob("smoke-*.json")).read_text())
    rows = {r["name"]: r for r in result["rows"]}
    assert "| smoke | all requests |" in done.stdout
    total = rows["Aggregated"]
    assert total["requests"] > 0 and total["failures"] == 0, output
    for role in ("staff", "integrator", "batch", "accountant", "reader"):
        assert any(n.startswith(f"{role}:") and r["requests"] for n, r in rows.items()), role
    assert rows["integrator: issue"]["requests"] > 0
    issuing = result["issuing"]
    assert issuing["issued"] > 0 and issuing["folios_ok"], issuing
    assert issuing["accepted_in_60s"] >= 1, issuing
    # The exit status says what the verdicts say.
    assert (done.returncode == 0) == result["passed"]
    # The stack is gone: its scratch database dropped.
    [name] = re.findall(r"database (fe_load_\w+)", done.stdout)
    import psycopg

    with psycopg.connect(host=host, port=port, user=user, dbname="postgres") as conn:
        left = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchall()
    assert not left and "cleanup problems" not in done.stderr


def test_saturation_says_where_throughput_stops_growing(tmp_path):
    stress = SCENARIOS["stress"].with_overrides(users=200, duration=None)  # steps of 30 s
    assert [n for _, n, _ in stress.stages[:4]] == [17, 33, 50, 67]
    header = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,95%\n"
    rows = []
    for second in range(120):
        step = second // 30
        rps, p95 = (10, 200) if step == 0 else (20, 400) if step == 1 else (21, 1500)
        rows.append(f"{1000 + second},0,,Aggregated,{rps},0,50,{p95}\n")  # 4 steps of 12
    (tmp_path / "s_stats_history.csv").write_text(header + "".join(rows))
    text = report.saturation(tmp_path / "s", stress)
    assert text.startswith("peak 21 req/s at 50 users;")
    assert "grew by less than half the added load from 33 users" in text
    assert "p95 above 1 s from 50 users" in text


def test_drift_compares_the_first_and_last_5_minutes_of_a_long_run(tmp_path):
    soak = SCENARIOS["soak"].with_overrides(users=None, duration=1200)
    ramp = soak.ramp_seconds
    header = "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,95%\n"
    rows = []
    for second in range(1200):
        p95 = 0 if second < 3 else 400 if second < 600 else 900  # 0: locust's empty first rows
        rows.append(f"{5000 + second},0,,Aggregated,{30 if second < 600 else 24},0,50,{p95}\n")
        rows.append(f"{5000 + second},0,,integrator: issue,99,0,50,99999\n")  # not aggregated
    (tmp_path / "s_stats_history.csv").write_text(header + "".join(rows))
    text = report.drift(tmp_path / "s", soak)
    assert ramp < 300
    assert text == (
        "first 5 min of the steady part 30.0 req/s, p95 400 ms; last 5 min 24.0 req/s, "
        "p95 900 ms (p95 +125 %)"
    )
    # Short or stepped runs, or no history: nothing to compare.
    assert report.drift(tmp_path / "s", SCENARIOS["smoke"]) == ""
    assert report.drift(tmp_path / "s", SCENARIOS["stress"]) == ""
    assert report.drift(tmp_path / "missing", soak) == ""
