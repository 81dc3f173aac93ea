"""Helpers for tests/ops/test_traefik_app.py: the app itself, one real gunicorn per colour
(deploy/gunicorn.conf.py, ops.wsgi) on loopback, and a TCP forwarder in front of Redis that a
test can cut, so that one colour's broker becomes unreachable and its /health/ready fails."""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType

from tests.ops.traefik_tools import ROOT, free_port, http_get, wait_until

# Variables of the test run that must not reach the app processes: they get their own.
_SCRUBBED = (
    "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND",
    "PROMETHEUS_MULTIPROC_DIR", "DJANGO_SETTINGS_MODULE", "APP_COLOUR", "WEB_CONCURRENCY",
)  # fmt: skip


def load_deploy_module(name: str) -> ModuleType:
    """deploy/bin/<name> as a module (it puts deploy/ on sys.path for bluegreen and release)."""
    loader = importlib.machinery.SourceFileLoader(f"{name}_cli", str(ROOT / "deploy/bin" / name))
    spec = importlib.util.spec_from_loader(f"{name}_cli", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def migrate(database_url: str, log: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["DATABASE_URL"] = database_url
    with log.open("wb") as out:
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=300,
        )  # fmt: skip
    assert result.returncode == 0, log.read_text()[-3000:]


class Forwarder:
    """127.0.0.1:<port> → target, one thread pair per connection. `cut()` closes the listener and
    every open connection (nothing answers on the port); `restore()` listens again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


METRICS_TOKEN = "test-metrics-token"  # what Prometheus presents


class AppColour:
    """The app, `gunicorn -c deploy/gunicorn.conf.py ops.wsgi:application`, as one colour."""

    def __init__(self, colour: str, workdir: Path, *, database_url: str, broker_url: str):
        self.colour = colour
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        self.env.update(
            APP_COLOUR=colour,
            DATABASE_URL=database_url,
            CELERY_BROKER_URL=broker_url,
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            WEB_CONCURRENCY="1",
            GUNICORN_THREADS="8",
            GUNICORN_GRACEFUL_TIMEOUT="15",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SII_ENV="sandbox",
            SII_SANDBOX_TIMEOUT_SLEEP="6",
            DEBUG="0",
            LOG_FORMAT="json",
            VAR_DIR=str(workdir),
            METRICS_TOKEN=METRICS_TOKEN,
        )
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"gunicorn-{self.colour}.log"

    def start(self, timeout: float = 30) -> AppColour:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
             "ops.wsgi:application"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

        def live():
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn {self.colour} exited:\n{self.logs()}")
            return http_get(self.port, "/health/live", timeout=2)[0] == 200

        wait_until(live, timeout=timeout, interval=0.1, what=f"gunicorn {self.colour}")
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        """SIGTERM to the master: what `docker compose stop` sends (graceful shutdown)."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30) -> int | None:
        if self.process is None:
            return None
        self.terminate()
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
        return code

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
