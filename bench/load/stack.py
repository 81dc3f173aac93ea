"""The whole stack on loopback for one load run: a scratch PostgreSQL database, a private Redis,
gunicorn with deploy/gunicorn.conf.py serving the app and the SII sandbox, two Celery workers as
in compose.yaml (the SII's queues; every other queue the settings declare), and celery beat.
Every process runs in its own process group and is ended with it; the database is dropped at
the end unless asked to keep it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(PYTHON).parent


# The queues compose.yaml's worker-<colour> consumes; the rest go to worker-<colour>-aux/-bulk.
SII_QUEUES = ("sii", "celery")


class StackError(Exception):
    """A one-line reason the stack could not start (or a process of it died)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM to the process group, SIGKILL after `grace` seconds."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
        # Children left behind in the group (a pool process) go with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)


@dataclass
class StackConfig:
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "postgres"
    redis_url: str = ""  # empty: start a private redis-server on a free port
    web_concurrency: int | None = None  # None: deploy/gunicorn.conf.py's own default
    threads: int | None = None
    keepalive: int | None = None
    worker_concurrency: int = 4  # compose.yaml's CELERY_CONCURRENCY default
    keep: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)


class Stack:
    def __init__(self, config: StackConfig, run_dir: Path):
        self.config = config
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.processes: list[Process] = []
        self.db_name = f"fe_load_{int(time.time())}_{os.getpid()}"
        self.db_created = False
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env: dict[str, str] = {}
        self.queues: list[str] = []
        self.fixtures: dict = {}
        self.fixtures_path = run_dir / "fixtures.json"

    # ------------------------------------------------------------------ PostgreSQL

    def _admin_conn(self, dbname: str = "postgres"):
        import psycopg

        c = self.config
        try:
            return psycopg.connect(
                host=c.pg_host,
                port=c.pg_port,
                user=c.pg_user,
                dbname=dbname,
                connect_timeout=5,
                autocommit=True,
            )
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StackError(
                f"PostgreSQL not reachable at {c.pg_host}:{c.pg_port} as {c.pg_user}: {first}"
            ) from None

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with self._admin_conn(self.db_name) as conn:
            return conn.execute(query, params).fetchall()

    # ------------------------------------------------------------------ processes

    def _spawn(self, name: str, argv: list[str], *, cwd: Path = ROOT) -> Process:
        log = self.logs / f"{name}.log"
        handle = log.open("ab")
        popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def _run(self, name: str, argv: list[str], timeout: float) -> str:
        """Run a step to completion; its output goes to logs/<name>.log."""
        log = self.logs / f"{name}.log"
        try:
            done = subprocess.run(
                argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired:
            raise StackError(f"{name} did not finish within {timeout:.0f} s") from None
        log.write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()
            raise StackError(f"{name} failed (rc {done.returncode}): {last[-1] if last else ''}")
        return done.stdout

    def check(self) -> None:
        """Raise StackError if a process of the stack has died."""
        for p in self.processes:
            if not p.alive():
                raise StackError(
                    f"{p.name} exited with rc {p.popen.returncode}; last lines of {p.log}:\n"
                    + _tail(p.log)
                )

    # ------------------------------------------------------------------ start and stop

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        var_dir = self.run_dir / "var"
        var_dir.mkdir(exist_ok=True)
        with self._admin_conn() as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        redis_url = self.config.redis_url or self._start_redis()
        self._check_redis(redis_url)
        from cryptography.fernet import Fernet

        c = self.config
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GUNICORN_", "SII_", "CELERY_", "DJANGO_"))
            and k not in {"DATABASE_URL", "REDIS_URL", "WEB_CONCURRENCY", "DEBUG", "VAR_DIR"}
        }
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1",
                "DJANGO_SETTINGS_MODULE": "ops.settings",
                "DATABASE_URL": f"postgres://{c.pg_user}@{c.pg_host}:{c.pg_port}/{self.db_name}",
                "REDIS_URL": redis_url.rstrip("/") + "/0",
                "CELERY_BROKER_URL": redis_url.rstrip("/") + "/1",
                "SECRET_KEY": secrets.token_urlsafe(50),
                "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode("ascii"),
                "DEBUG": "0",
                "VAR_DIR": str(var_dir),
                "SII_ENV": "sandbox",
                "SII_SANDBOX_SERVE": "1",
                "SII_SANDBOX_URL": f"{self.base_url}/_sii",
                "PUBLIC_BASE_URL": self.base_url,
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                # The suite measures capacity: throttles stay on (their cost counts) but far
                # above what a run sends; e-mails are built and handed to a backend that drops
                # them (the console backend would write every PDF to the worker's log).
                "API_THROTTLE_USER": "10000000/min",
                "API_THROTTLE_ANON": "10000000/min",
                "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
                "ANTHROPIC_API_KEY": "",
                "GUNICORN_BIND": f"127.0.0.1:{self.port}",
                "GUNICORN_LOG_LEVEL": "warning",
            }
        )
        for name, value in (
            ("WEB_CONCURRENCY", c.web_concurrency),
            ("GUNICORN_THREADS", c.threads),
            ("GUNICORN_KEEPALIVE", c.keepalive),
        ):
            if value is not None:
                env[name] = str(value)
        env.update(c.extra_env)
        self.env = env

        self._run("migrate", [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], timeout=300)
        self.queues = json.loads(
            self._run("queues", [PYTHON, "-m", "bench.load.seed", "--queues"], timeout=60)
        )
        self._run("seed", [PYTHON, "-m", "bench.load.seed", str(self.fixtures_path)], timeout=300)
        self.fixtures = json.loads(self.fixtures_path.read_text())

        self._spawn(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                "-c",
                str(ROOT / "deploy" / "gunicorn.conf.py"),
                "--chdir",
                str(ROOT),
                "ops.wsgi:application",
            ],
        )
        self._wait_http("/health/ready", timeout=60)
        # As compose.yaml: the SII's queues (and the default) in one worker, everything else
        # (PDF, e-mail, AI, bulk) in another, so a backlog of PDFs never delays an upload.
        sii = [q for q in self.queues if q in SII_QUEUES]
        aux = [q for q in self.queues if q not in SII_QUEUES]
        for name, queues, concurrency in (
            # The SII's tasks mostly wait on the SII: compose.yaml's 4 processes. PDFs and
            # reviews are CPU work: 2 on this machine's 2 cores.
            ("worker", sii, c.worker_concurrency),
            ("worker-aux", aux, max(1, c.worker_concurrency // 2)),
        ):
            if not queues:
                continue
            worker = self._spawn(
                name,
                [
                    str(BIN / "celery"),
                    "-A",
                    "ops",
                    "worker",
                    "-n",
                    f"load-{name}-{self.port}@%h",
                    "-Q",
                    ",".join(queues),
                    "--concurrency",
                    str(concurrency),
                    "--time-limit",
                    "300",
                    "--soft-time-limit",
                    "270",
                    "--max-tasks-per-child",
                    "200",
                    "--loglevel",
                    "INFO",
                ],
            )
            self._wait_log(worker, re.compile(r"\bready\b"), timeout=60)
        self._spawn(
            "beat",
            [
                str(BIN / "celery"),
                "-A",
                "ops",
                "beat",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--loglevel",
                "INFO",
            ],
            cwd=self.run_dir,
        )
        time.sleep(1)
        self.check()

    def _start_redis(self) -> str:
        server = shutil.which("redis-server")
        if server is None:
            raise StackError("redis-server is not installed (apt-get install redis-server)")
        port = free_port()
        self._spawn(
            "redis",
            [
                server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.run_dir),
            ],
        )
        return f"redis://127.0.0.1:{port}"

    def _check_redis(self, url: str) -> None:
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url, socket_connect_timeout=1).ping()
                return
            except redis.RedisError as exc:
                if time.monotonic() > deadline:
                    raise StackError(f"Redis not reachable at {url}: {exc}") from None
                time.sleep(0.2)

    def _wait_http(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self.check()
            try:
                with urllib.request.urlopen(self.base_url + path, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.3)
        raise StackError(f"gunicorn did not answer {path} within {timeout:.0f} s: {last}")

    def _wait_log(self, process: Process, pattern: re.Pattern, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            if pattern.search(process.log.read_text(errors="replace")):
                return
            time.sleep(0.3)
        raise StackError(f"{process.name} not ready within {timeout:.0f} s; see {process.log}")

    def pids(self) -> dict[str, list[int]]:
        """Each process of the stack with its children (gunicorn workers, the pool)."""
        import psutil

        out: dict[str, list[int]] = {}
        for p in self.processes:
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(p.popen.pid)
                out[p.name] = [parent.pid] + [c.pid for c in parent.children(recursive=True)]
        return out

    def stop(self) -> None:
        errors = []
        # Beat first (no new ticks), then the worker (warm shutdown), the web, Redis last.
        order = {"beat": 0, "worker": 1, "worker-aux": 1, "gunicorn": 2, "redis": 3}
        for p in sorted(self.processes, key=lambda p: order.get(p.name, 9)):
            try:
                p.stop()
            except Exception as exc:  # go on: every process must be ended
                errors.append(f"{p.name}: {exc}")
        if self.db_created and not self.config.keep:
            try:
                with self._admin_conn() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
                self.db_created = False
            except Exception as exc:
                errors.append(f"drop database {self.db_name}: {exc}")
        if errors:
            print("cleanup problems: " + "; ".join(errors), file=sys.stderr)
