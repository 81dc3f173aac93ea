"""Python's garbage collector as every process runs it (ops/runtime.py, applied by ops.apps)."""

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from ops.runtime import DEFAULT_GC_THRESHOLDS, gc_thresholds

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, DEFAULT_GC_THRESHOLDS),
        ("", DEFAULT_GC_THRESHOLDS),
        ("python", None),
        (" Python ", None),
        ("10000, 10, 50", (10000, 10, 50)),
    ],
)
def test_thresholds_are_read_from_the_environment(value, expected):
    assert gc_thresholds(value) == expected


@pytest.mark.parametrize("value", ["1000", "a,b,c", "0,10,10", "1,2,3,4"])
def test_bad_thresholds_are_refused(value):
    with pytest.raises(ValueError, match="three positive integers"):
        gc_thresholds(value)


def test_this_process_runs_with_the_configured_thresholds_and_a_frozen_start():
    assert settings.PYTHON_GC_THRESHOLDS == DEFAULT_GC_THRESHOLDS
    assert gc.get_threshold() == DEFAULT_GC_THRESHOLDS
    assert gc.get_freeze_count() > 10_000  # the modules and the app registry


def _django_process(value: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON_GC_THRESHOLDS": value, "DJANGO_SETTINGS_MODULE": "ops.settings"}
    code = "import django, gc; django.setup(); print(gc.get_threshold(), gc.get_freeze_count())"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )


def test_python_keeps_pythons_own_collector_and_a_bad_value_stops_start_up():
    kept = _django_process("python")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.split()[:3] == ["(700,", "10,", "10)"]
    assert kept.stdout.split()[3] == "0"
    bad = _django_process("700")
    assert bad.returncode != 0
    assert "PYTHON_GC_THRESHOLDS='700': three positive integers expected" in bad.stderr
