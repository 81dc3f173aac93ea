"""erp.background: jobs run in daemon threads, never raise into their caller, are retried when
SQLite is locked, and are waited for."""

import threading
import time

import pytest
from django.db import OperationalError

from erp import background


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setattr(background, "LOCKED_SLEEP", 0.01)
    monkeypatch.setattr(background, "INLINE", False)  # the real threads, here
    yield
    assert background.wait_for_background(10)


def test_inline_in_tests_still_never_raises(monkeypatch):
    monkeypatch.setattr(background, "INLINE", True)
    ran = []
    background.run_in_background(lambda: ran.append(threading.current_thread()), name="x")
    background.run_in_background(lambda: 1 / 0, name="boom")
    assert ran == [threading.current_thread()]
    assert threading.current_thread().name == "MainThread"  # the caller's name is left alone


def test_jobs_run_in_other_threads_and_are_waited_for():
    seen = []
    gate = threading.Event()

    def job(n):
        gate.wait(5)
        time.sleep(0.01)
        seen.append((n, threading.current_thread().name, threading.current_thread().daemon))

    for n in range(10):
        background.run_in_background(job, n, name="test-job")
    assert seen == []  # nothing ran in the caller
    gate.set()
    assert background.wait_for_background(10) is True
    assert sorted(n for n, _, _ in seen) == list(range(10))
    assert {(name, daemon) for _, name, daemon in seen} == {("test-job", True)}
    assert background._workers <= background.MAX_WORKERS


def test_a_failing_job_is_logged_never_raised(caplog):
    def broken():
        raise RuntimeError("boom")

    def leaves():
        raise SystemExit(3)

    background.run_in_background(broken, name="broken")
    background.run_in_background(leaves, name="leaves")
    assert background.wait_for_background(10) is True
    failures = [r for r in caplog.records if r.name == "erp.background"]
    assert {r.getMessage() for r in failures} == {
        "background job broken failed",
        "background job leaves failed",
    }


def test_a_locked_database_is_tried_again_then_given_up(caplog):
    calls = []

    def locked_twice():
        calls.append("twice")
        if calls.count("twice") < 3:
            raise OperationalError("database is locked")

    def always_locked():
        calls.append("always")
        raise OperationalError("database table is locked: dte_caf")

    def other_error():
        calls.append("other")
        raise OperationalError("no such table: x")

    for job in (locked_twice, always_locked, other_error):
        background.run_in_background(job, name=job.__name__)
    assert background.wait_for_background(10) is True
    assert calls.count("twice") == 3
    assert calls.count("always") == background.LOCKED_ATTEMPTS
    assert calls.count("other") == 1
    errors = {r.getMessage() for r in caplog.records if r.levelname == "ERROR"}
    assert errors == {"background job always_locked failed", "background job other_error failed"}


def test_waiting_can_time_out():
    gate = threading.Event()
    background.run_in_background(gate.wait, 5, name="slow")
    assert background.wait_for_background(0.05) is False
    gate.set()
    assert background.wait_for_background(10) is True


def test_a_job_waiting_for_the_others_does_not_wait_for_itself():
    answers = []
    background.run_in_background(lambda: answers.append(background.wait_for_background(1)))
    assert background.wait_for_background(10) is True
    assert answers == [False]
