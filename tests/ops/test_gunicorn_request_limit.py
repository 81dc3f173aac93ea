"""deploy/gunicorn.conf.py's request time limit, against a real gunicorn (gthread, the config
as deployed, GUNICORN_TIMEOUT=2): a request looping in Python is stopped with a 500, one stuck
in C ends its worker (which the master replaces), and a quick one is untouched."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.ops.traefik_tools import free_port

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "gunicorn.conf.py"


def app(environ, start_response):
    """A WSGI app with a quick page, a busy one (Python) and a stuck one (C)."""
    path = environ["PATH_INFO"]
    if path == "/busy":
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                sum(range(1000))
        except Exception as exc:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [type(exc).__name__.encode()]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"finished"]
    if path == "/stuck":
        time.sleep(30)  # one C call: nothing can be raised in it
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"pid {os.getpid()}".encode()]


def get(url: str, timeout: float = 20) -> tuple[int, str, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode(), time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), time.monotonic() - started
    except (urllib.error.URLError, ConnectionError) as exc:
        return 0, str(exc), time.monotonic() - started


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "WEB_CONC"))}
    env.update(
        GUNICORN_TIMEOUT="2",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="4",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(CONF),
            "tests.ops.test_gunicorn_request_limit:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # a loaded machine starts gunicorn slowly
    while get(f"{base}/", timeout=2)[0] != 200:
        assert process.poll() is None and time.monotonic() < deadline, (
            tmp_path / "gunicorn.log"
        ).read_text()
        time.sleep(0.1)
    yield base, tmp_path / "gunicorn.log"
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def test_a_request_over_the_limit_is_stopped(server):
    base, log = server
    status, body, took = get(f"{base}/busy")
    assert (status, body) == (500, "RequestTimeout"), log.read_text()
    assert 2 <= took < 5
    assert "ran over 2s: stopping it" in log.read_text()
    assert get(f"{base}/")[0] == 200  # the worker serves on


def test_a_request_stuck_in_c_ends_its_worker_and_a_new_one_serves(server):
    base, log = server
    before = get(f"{base}/")[1]
    status, _, took = get(f"{base}/stuck")
    assert status != 200 and took < 8, log.read_text()  # 2 s limit + 1 s grace, not 30 s
    assert "ending worker" in log.read_text()
    deadline = time.monotonic() + 60
    while (answer := get(f"{base}/", timeout=2))[0] != 200:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    assert answer[1] != before  # another process


def test_quick_requests_are_untouched(server):
    base, _ = server
    for _ in range(5):
        assert get(f"{base}/")[0] == 200
