"""gunicorn for the web containers (compose.yaml: web-blue, web-green; image CMD).

Every knob comes from the environment with a default that fits one container of the stack:

    WEB_CONCURRENCY            worker processes (default 2)
    GUNICORN_THREADS           threads per worker, gthread (default 4)
    GUNICORN_BIND              listen address (default 0.0.0.0:8000)
    GUNICORN_TIMEOUT           a worker silent this long is killed and replaced, and a request
                               running this long is stopped (default 60 s; see below)
    GUNICORN_GRACEFUL_TIMEOUT  on SIGTERM, time given to in-flight requests (default 30 s)
    GUNICORN_KEEPALIVE         idle keep-alive from Traefik (default 95 s)
    GUNICORN_MAX_REQUESTS      recycle a worker after this many requests (default 1000; 0 = never)
    GUNICORN_MAX_REQUESTS_JITTER  random extra, so workers do not recycle together (default 100)
    GUNICORN_LOG_LEVEL         error log level (default info)
    PROMETHEUS_MULTIPROC_DIR   set: metrics of all workers are merged through files in it

Shutdown, and why the numbers relate: `docker compose stop` (or a blue/green drain) sends SIGTERM
(the image's STOPSIGNAL) to the master, which stops accepting, lets each worker finish its
in-flight requests for up to `graceful_timeout` seconds and then kills them. Compose sends
SIGKILL `stop_grace_period` after SIGTERM, so compose.yaml gives every web service a
stop_grace_period strictly above graceful_timeout (30 s here, 45 s there), and sets
GUNICORN_GRACEFUL_TIMEOUT in `environment:` so that an env file cannot raise it past the period.
tests/ops/test_stack_files.py checks the relation.

A request time limit that works with gthread: gunicorn's own `timeout` only covers the worker's
heartbeat, which the gthread main loop keeps beating while a request thread runs for hours (a
49 MB RCV import once held a worker 37 minutes). So each worker runs a watchdog thread over the
requests in flight (pre_request / post_request): a request still running after `timeout`
seconds gets RequestTimeout raised in its thread (it unwinds at its next Python instruction: the
transaction rolls back, the client gets a 500); one still running REQUEST_ABORT_GRACE seconds
later is stuck in C (a key derivation, a lock, a socket) and cannot be unwound, so the worker
logs it and exits at once, and the master starts a new one (that worker's other requests in
flight get a 502 from Traefik). Long work does not belong in a request: it is a Celery task.
tests/ops/test_gunicorn_request_limit.py runs a real gunicorn against both cases.
"""

import contextlib
import ctypes
import datetime
import json
import os
import sys
import threading
import time
from pathlib import Path

from gunicorn.glogging import Logger


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


bind = [os.environ.get("GUNICORN_BIND", "").strip() or "0.0.0.0:8000"]
worker_class = "gthread"
workers = _int("WEB_CONCURRENCY", 2)
threads = _int("GUNICORN_THREADS", 4)

timeout = _int("GUNICORN_TIMEOUT", 60)
# A request still running this long after RequestTimeout was raised in it ends the worker.
REQUEST_ABORT_GRACE = max(1, min(10, timeout // 2))
# Below compose.yaml's stop_grace_period for the web services (45 s): see the docstring.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Above Traefik's idle timeout for upstream connections (serversTransport idleConnTimeout, 90 s
# by default), so that Traefik, not gunicorn, closes an idle connection: otherwise a request can
# race the close and get a 502.
keepalive = _int("GUNICORN_KEEPALIVE", 95)

# Recycle workers now and then (slow leaks), with jitter so they do not all restart at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100)

# The heartbeat files live in memory: a container's /tmp may be a slow overlay layer, and a worker
# blocked on disk I/O there would be killed as if it were stuck.
worker_tmp_dir = "/dev/shm"

# X-Forwarded-* (the scheme, the client's address) are believed only from the proxy: Traefik's
# address in compose.yaml, this host otherwise. Never "*": any client could claim HTTPS.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# gunicorn 27 (installed here) opens a control socket under $HOME by default; nothing uses it (and
# versions without it ignore the unknown setting).
control_socket_disable = True

# Logs: both to stdout/stderr (the container's log driver collects them).
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")


class JsonAccessLogger(Logger):
    """One JSON object per request on stdout, with the request id that ops.requestid returns in
    the response, so access lines join the application's JSON log lines. json.dumps escapes what
    clients send (user agents, paths), which a printf-style access_log_format would not."""

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        entry = {
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
            "logger": "gunicorn.access",
            "remote": atoms["h"],
            "method": atoms["m"],
            "path": atoms["U"],
            "query": atoms["q"],
            "protocol": atoms["H"],
            "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"],
            "bytes": atoms["B"] or 0,
            "duration_ms": round(atoms["D"] / 1000, 3),
            "referer": atoms["f"],
            "user_agent": atoms["a"],
            "request_id": atoms.get("{x-request-id}o", atoms.get("{x-request-id}i", "")),
            "forwarded_for": atoms.get("{x-forwarded-for}i", ""),
            "pid": os.getpid(),
        }
        try:
            self.access_log.info(json.dumps(entry, default=str))
        except Exception:
            self.exception("access log")


logger_class = JsonAccessLogger


def on_starting(server):
    """Start with an empty multiprocess directory: files left by a previous run would add old
    counts to the new ones (compose.yaml also puts it on a tmpfs, which starts empty)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server, worker):
    """A worker is gone (recycled, killed, timed out): drop its live gauges from the merge."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    try:
        from prometheus_client import multiprocess
    except ImportError:  # metrics are optional for gunicorn itself
        return
    multiprocess.mark_process_dead(worker.pid)


# ------------------------------------------------------------------ the request time limit


class RequestTimeout(Exception):
    """Raised inside a request's thread when it has run longer than `timeout` seconds."""


_inflight: dict[int, list] = {}  # thread id -> [started (monotonic), method, path, raised at]
_inflight_lock = threading.Lock()


def _async_raise(thread_id: int, exc: type[BaseException] | None) -> None:
    """Schedule `exc` in the thread (None: cancel one scheduled and not yet raised)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )


def pre_request(worker, req):
    with _inflight_lock:
        _inflight[threading.get_ident()] = [time.monotonic(), req.method, req.path, None]


def post_request(worker, req, environ, resp):
    thread_id = threading.get_ident()
    for _ in range(3):  # a RequestTimeout still pending may fire in here, once
        try:
            with _inflight_lock:
                entry = _inflight.pop(thread_id, None)
            if entry is not None and entry[3] is not None:
                _async_raise(thread_id, None)
            return
        except RequestTimeout:
            continue


def _watch_requests(worker, limit: float, grace: float, interval: float) -> None:
    while True:
        time.sleep(interval)
        now = time.monotonic()
        with _inflight_lock:
            for thread_id, entry in list(_inflight.items()):
                started, method, path, raised_at = entry
                if raised_at is None and now - started > limit:
                    worker.log.error(
                        "request %s %s ran over %ss: stopping it", method, path, int(limit)
                    )
                    entry[3] = now
                    _async_raise(thread_id, RequestTimeout)
                elif raised_at is not None and now - raised_at > grace:
                    worker.log.critical(
                        "request %s %s still running %ss after it was stopped: ending worker %s",
                        method,
                        path,
                        int(now - started),
                        os.getpid(),
                    )
                    _hard_exit()


def _hard_exit() -> None:
    """End the worker now: its stuck thread cannot be joined, so no clean interpreter exit."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(1)


def post_worker_init(worker):
    limit = float(worker.cfg.timeout or 0)
    if limit <= 0:
        return
    threading.Thread(
        target=_watch_requests,
        args=(worker, limit, float(REQUEST_ABORT_GRACE), min(1.0, limit / 4)),
        name="request-watchdog",
        daemon=True,
    ).start()
