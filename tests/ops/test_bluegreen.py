"""deploy/bluegreen.py (pure blue/green weights) and its CLI deploy/bin/weights, without Traefik
(tests/ops/test_traefik.py runs them against the real one)."""

from __future__ import annotations

import math
import os
import stat
import subprocess
import sys
import threading
import time

import pytest
import yaml

from deploy import bluegreen
from tests.ops.traefik_tools import ROOT

DYNAMIC = ROOT / "deploy" / "traefik" / "dynamic"
WEIGHTS_CLI = ROOT / "deploy" / "bin" / "weights"


# weights_file / parse_weights -------------------------------------------------------------------


@pytest.mark.parametrize("sticky", [True, False])
def test_weights_file_is_the_weighted_service_alone(sticky):
    config = yaml.safe_load(bluegreen.weights_file(90, 10, sticky=sticky))
    assert list(config) == ["http"] and list(config["http"]) == ["services"]
    weighted = config["http"]["services"]["app"]["weighted"]
    assert weighted["services"] == [
        {"name": "app-blue", "weight": 90},
        {"name": "app-green", "weight": 10},
    ]
    assert weighted["healthCheck"] == {}
    if sticky:
        assert weighted["sticky"] == {
            "cookie": {"name": "app_colour", "httpOnly": True, "sameSite": "lax"}
        }
    else:
        assert "sticky" not in weighted


@pytest.mark.parametrize(
    ("blue", "green"),
    [(-1, 100), (100, -5), (101, 0), (0, 101), (0, 0), (1.5, 50), ("50", 50), (True, 0), (None, 1)],
)
def test_weights_file_rejects_bad_weights(blue, green):
    with pytest.raises(ValueError):
        bluegreen.weights_file(blue, green)
    with pytest.raises(ValueError):
        bluegreen.check_weights(blue, green)


@pytest.mark.parametrize(("blue", "green"), [(100, 0), (0, 100), (95, 5), (9, 1), (50, 50), (1, 1)])
def test_parse_weights_reads_back_what_weights_file_writes(blue, green):
    assert bluegreen.parse_weights(bluegreen.weights_file(blue, green)) == (blue, green)
    assert bluegreen.parse_weights(bluegreen.weights_file(blue, green, sticky=False)) == (
        blue,
        green,
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "http: {}\n",
        bluegreen.weights_file(90, 10).replace("app-green", "app-red"),
        bluegreen.weights_file(90, 10).replace("weight: 10", "weight: -10"),
        bluegreen.weights_file(90, 10).replace("weight: 10", "weight: 0").replace("90", "0"),
        bluegreen.weights_file(90, 10) + "          - name: app-blue\n            weight: 1\n",
    ],
)
def test_parse_weights_refuses_anything_else(text):
    with pytest.raises(ValueError):
        bluegreen.parse_weights(text)


def test_the_committed_weights_file_is_generated_and_fits_app_yml():
    text = (DYNAMIC / "weights.yml").read_text()
    blue, green = bluegreen.parse_weights(text)
    assert text == bluegreen.weights_file(blue, green)
    assert (blue, green) == (100, 0)
    app = yaml.safe_load((DYNAMIC / "app.yml").read_text())["http"]
    weights = yaml.safe_load(text)["http"]
    # The file provider merges the directory: no name may be defined twice.
    assert not set(app.get("services", {})) & set(weights["services"])
    assert app["routers"]["app"]["service"] == bluegreen.SERVICE
    for child in weights["services"]["app"]["weighted"]["services"]:
        # healthCheck: {} on the weighted service needs a health check on every child.
        assert app["services"][child["name"]]["loadBalancer"]["healthCheck"]["path"] == (
            "/health/ready"
        )
    assert "!PathPrefix(`/metrics`)" in app["routers"]["app"]["rule"]


# colours and plans -------------------------------------------------------------------------------


def test_colours():
    assert bluegreen.other("blue") == "green" and bluegreen.other("green") == "blue"
    for bad in ("red", "Blue", "", None):
        with pytest.raises(ValueError):
            bluegreen.other(bad)


def test_switch_rollback_drain_and_canary_weights():
    assert bluegreen.switch_weights("green") == (0, 100)
    assert bluegreen.switch_weights("blue") == (100, 0)
    assert bluegreen.rollback_weights("blue") == (100, 0)
    assert bluegreen.rollback_weights("green") == (0, 100)
    assert bluegreen.drain_weights("blue") == (0, 100)
    assert bluegreen.drain_weights("green") == (100, 0)
    assert bluegreen.canary_weights("blue", 5) == (95, 5)
    assert bluegreen.canary_weights("green", 25) == (25, 75)
    for call in (
        lambda: bluegreen.drain_weights("red"),
        lambda: bluegreen.rollback_weights("purple"),
        lambda: bluegreen.canary_weights("blue", 101),
        lambda: bluegreen.canary_weights("blue", -1),
    ):
        with pytest.raises(ValueError):
            call()


def test_plan_deploy_shifts_to_the_idle_colour_step_by_step():
    assert bluegreen.plan_deploy("blue") == [(95, 5), (75, 25), (50, 50), (0, 100)]
    assert bluegreen.plan_deploy("green") == [(5, 95), (25, 75), (50, 50), (100, 0)]
    assert bluegreen.plan_deploy("blue", steps=(10, 100)) == [(90, 10), (0, 100)]
    for plan in (bluegreen.plan_deploy("blue"), bluegreen.plan_deploy("green")):
        assert all(b + g == 100 for b, g in plan)
        # Each step is a valid weights file.
        for blue, green in plan:
            bluegreen.weights_file(blue, green)
    with pytest.raises(ValueError):
        bluegreen.plan_deploy("red")


@pytest.mark.parametrize("steps", [(), (5, 25, 50), (25, 5, 100), (5, 5, 100), (0, 100), (5, 150)])
def test_bad_steps_are_refused(steps):
    with pytest.raises(ValueError):
        bluegreen.plan_deploy("blue", steps=steps)
    with pytest.raises(ValueError):
        bluegreen.next_step(0, steps=steps)


@pytest.mark.parametrize(
    ("current", "expected"), [(0, 5), (4, 5), (5, 25), (10, 25), (25, 50), (50, 100), (99, 100)]
)
def test_next_step(current, expected):
    assert bluegreen.next_step(current) == expected


def test_next_step_ends_at_100_and_refuses_bad_weights():
    assert bluegreen.next_step(100) is None
    assert bluegreen.next_step(10, steps=(10, 100)) == 100
    for bad in (-1, 101, 2.5, None):
        with pytest.raises(ValueError):
            bluegreen.next_step(bad)


def test_active_colour():
    assert bluegreen.active_colour(95, 5) == "blue"
    assert bluegreen.active_colour(0, 100) == "green"
    with pytest.raises(ValueError, match="even"):
        bluegreen.active_colour(50, 50)
    with pytest.raises(ValueError):
        bluegreen.active_colour(0, 0)


# canary_decision ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_ratio", "p95", "expected"),
    [
        (0.0, 0.1, "proceed"),
        (0, 0, "proceed"),
        (0.01, 0.5, "proceed"),  # at the limits
        (0.0101, 0.1, "rollback"),
        (0.0, 0.51, "rollback"),
        (0.5, 3.0, "rollback"),
        (0.0, math.inf, "rollback"),  # histogram_quantile past the last bucket
        (None, 0.1, "wait"),
        (0.0, None, "wait"),
        (None, None, "wait"),
        (math.nan, 0.1, "wait"),  # 0/0: no requests yet
        (0.0, math.nan, "wait"),
        (0.2, None, "rollback"),  # a known breach is enough
        (None, 2.0, "rollback"),
        (math.nan, 2.0, "rollback"),
    ],
)
def test_canary_decision(error_ratio, p95, expected):
    assert bluegreen.canary_decision(error_ratio, p95) == expected


def test_canary_decision_limits_and_bad_input():
    assert bluegreen.canary_decision(0.03, 0.9, max_error_ratio=0.05, max_p95=1.0) == "proceed"
    assert bluegreen.canary_decision(0.03, 0.9) == "rollback"
    for bad in ((-0.1, 0.1), (0.0, -1.0), ("0.1", 0.1), (True, 0.1)):
        with pytest.raises(ValueError):
            bluegreen.canary_decision(*bad)


# write_weights_atomically ------------------------------------------------------------------------


def test_atomic_write_leaves_the_file_and_no_tmp(tmp_path):
    target = tmp_path / "weights.yml"
    assert bluegreen.write_weights_atomically(target, 95, 5) == target
    assert target.read_text() == bluegreen.weights_file(95, 5)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    bluegreen.write_weights_atomically(target, 0, 100, sticky=False)
    assert target.read_text() == bluegreen.weights_file(0, 100, sticky=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.yml"]


def test_atomic_write_keeps_the_mode_and_replaces_the_inode(tmp_path):
    target = tmp_path / "weights.yml"
    target.write_text("old")
    target.chmod(0o640)
    inode = target.stat().st_ino
    bluegreen.write_weights_atomically(target, 50, 50)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    # A rename, not an in-place write: mount the directory, not the file, into the container.
    assert target.stat().st_ino != inode


def test_atomic_write_of_bad_weights_leaves_the_old_file(tmp_path):
    target = tmp_path / "weights.yml"
    bluegreen.write_weights_atomically(target, 100, 0)
    with pytest.raises(ValueError):
        bluegreen.write_weights_atomically(target, 0, 0)
    assert target.read_text() == bluegreen.weights_file(100, 0)
    assert [p.name for p in tmp_path.iterdir()] == ["weights.yml"]


def test_a_failed_rename_removes_the_tmp_file(tmp_path, monkeypatch):
    target = tmp_path / "weights.yml"
    bluegreen.write_weights_atomically(target, 100, 0)

    def fail(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(bluegreen.os, "replace", fail)
    with pytest.raises(OSError, match="disk on fire"):
        bluegreen.write_weights_atomically(target, 0, 100)
    assert [p.name for p in tmp_path.iterdir()] == ["weights.yml"]
    assert target.read_text() == bluegreen.weights_file(100, 0)


def test_a_reader_never_sees_a_partial_file(tmp_path):
    target = tmp_path / "weights.yml"
    bluegreen.write_weights_atomically(target, 100, 0)
    valid = {bluegreen.weights_file(b, 100 - b) for b in range(101)}
    seen: list[str] = []
    stop = threading.Event()

    def read():
        deadline = time.monotonic() + 10
        while not stop.is_set() and time.monotonic() < deadline and len(seen) < 200_000:
            seen.append(target.read_text())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(1000):
            bluegreen.write_weights_atomically(target, i % 101, 100 - i % 101)
    finally:
        stop.set()
        reader.join(timeout=15)
    assert seen and set(seen) <= valid
    assert len(set(seen)) > 1  # the reader did overlap the writes
    assert [p.name for p in tmp_path.iterdir()] == ["weights.yml"]


# deploy/bin/weights ------------------------------------------------------------------------------


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(WEIGHTS_CLI), *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env={**os.environ, "TRAEFIK_DYNAMIC_DIR": ""},
    )


@pytest.fixture
def dynamic(tmp_path):
    bluegreen.write_weights_atomically(tmp_path / "weights.yml", 100, 0)
    return tmp_path


def weights_in(directory) -> tuple[int, int]:
    return bluegreen.parse_weights((directory / "weights.yml").read_text())


def test_cli_is_executable_and_has_help():
    assert os.access(WEIGHTS_CLI, os.X_OK)
    result = subprocess.run(
        [str(WEIGHTS_CLI), "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    for command in ("set", "switch", "canary", "drain", "show"):
        assert command in result.stdout
    assert cli("canary", "--help").returncode == 0


def test_cli_commands(dynamic):
    d = ("--dir", str(dynamic))
    assert cli("set", "90", "10", *d).stdout.startswith("blue=90 green=10 -> ")
    assert weights_in(dynamic) == (90, 10)
    assert cli("show", *d).stdout.startswith("blue=90 green=10 ")
    assert cli("switch", "green", *d).returncode == 0
    assert weights_in(dynamic) == (0, 100)
    assert cli("canary", "5", *d).returncode == 0  # green active: 5 % to blue
    assert weights_in(dynamic) == (5, 95)
    assert cli("canary", "50", *d).returncode == 0
    assert weights_in(dynamic) == (50, 50)
    assert cli("canary", "100", "--active", "green", *d).returncode == 0
    assert weights_in(dynamic) == (100, 0)
    assert cli("drain", "blue", *d).returncode == 0
    assert weights_in(dynamic) == (0, 100)
    assert cli("set", "1", "2", "--no-sticky", *d).returncode == 0
    assert (dynamic / "weights.yml").read_text() == bluegreen.weights_file(1, 2, sticky=False)
    assert [p.name for p in dynamic.iterdir()] == ["weights.yml"]


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("sett", "1", "2"),
        ("set", "-1", "100"),
        ("set", "101", "0"),
        ("set", "0", "0"),
        ("set", "ten", "90"),
        ("set", "50"),
        ("switch", "red"),
        ("drain",),
        ("canary", "150"),
        ("canary", "x"),
        ("canary", "5", "--active", "red"),
        ("set", "50", "50", "--bogus"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(dynamic, args):
    result = cli(*args, "--dir", str(dynamic))
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("weights: error:")
    assert weights_in(dynamic) == (100, 0)  # untouched


def test_cli_refuses_an_even_canary_without_active_and_a_missing_dir(dynamic, tmp_path):
    assert cli("set", "50", "50", "--dir", str(dynamic)).returncode == 0
    result = cli("canary", "25", "--dir", str(dynamic))
    assert result.returncode == 2 and "even" in result.stderr
    missing = tmp_path / "nope"
    result = cli("switch", "blue", "--dir", str(missing))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("show", "--dir", str(empty))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_cli_defaults_to_the_repository_directory():
    result = cli("show")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"blue=100 green=0 ({DYNAMIC / 'weights.yml'})"
