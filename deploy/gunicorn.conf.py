"""gunicorn for the web containers (compose.yaml: web-blue, web-green; image CMD).

Every knob comes from the environment with a default that fits one container of the stack:

    WEB_CONCURRENCY            worker processes (default 2)
    GUNICORN_THREADS           threads per worker, gthread (default 8)
    GUNICORN_BIND              listen address (default 0.0.0.0:8000)
    GUNICORN_TIMEOUT           a worker silent this long is killed and replaced, and a request
                               running this long is stopped (default 60 s; see below)
    GUNICORN_GRACEFUL_TIMEOUT  on SIGTERM, time given to in-flight requests (default 30 s)
    GUNICORN_KEEPALIVE         seconds an idle connection is kept (default 0: none; see below)
    GUNICORN_MAX_REQUESTS      recycle a worker after this many requests (default 20000; 0 = never)
    GUNICORN_MAX_REQUESTS_JITTER  random extra, so workers do not recycle together (default 2000)
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

Workers, threads and keep-alive, measured (issue 18) with the load suite, bench/load (gunicorn
with this file, PostgreSQL, Redis, one Celery worker, the sandbox and locust on one 2-core
machine; `bench/load/gunicorn_matrix.py`, 60 s per scenario; "reads": 200 API readers with 1–3 s
think time, "issue": 25 integrators creating and issuing facturas back to back). The machine was
shared with other test suites (their CPU, 8–104 % of one core, is in bench/load/README.md),
so each figure is ±20 %; the balance column is robust to that: the busiest worker's share of
all workers' CPU, 50 % being an even split of two.

    workers × threads,     reads: req/s      p50 / p95 ms (each run)      issue:       busiest
    keep-alive             (each run)                                      docs/min     worker
    2 × 4, 95 s (old)      56  57  56    1200/3300 1400/2100 1300/4500    798 797 982   54–86 %
    2 × 4, 2 s             48            1400/7000                        540           60–62 %
    2 × 4, 0               64  50        710/4000 1400/6000               515 701       57–61 %
    2 × 8, 95 s            52            1000/8900                        741           69–81 %
    2 × 8, 2 s             62            780/5200                         859           60–84 %
    2 × 8, 0 (default)     64  68        780/2400 440/2700                875 869       56–59 %
    3 × 4, 2 s             54            830/7600                         644           38–43 %
    3 × 8, 0               57            640/8400                         844           40–42 %
    4 × 4, 2 s             57            1100/2900                        574           31–47 %
    4 × 2, 2 s             44            1800/5100                        506           30–31 %

(an even split is 50 % of two workers, 33 % of three, 25 % of four.)

With keep-alive each client's connection stays on the worker that accepted it, so the busiest
worker took 54–86 % of the work, mostly over 70 % (the issue saw 81 % against 14 % CPU); with
keep-alive off every request is a new connection, accepted by a worker with a free thread
(gthread stops accepting when its threads are busy): the split is even (56–59 %), reads rose
about 17 % and their p50 halved, issuing stayed within the noise. 8 threads rather than 4: a
request spends about half its time waiting on PostgreSQL (the issue's profile), so more
threads overlap those waits. More than 2 workers on 2 cores did no better (and 4 × 2 worse).
With PgBouncer in front of PostgreSQL (compose.yaml) the extra threads are PgBouncer clients,
not PostgreSQL connections.

Keep-alive and Traefik: gunicorn closing an idle connection at the moment Traefik sends a request
on it gives that request a 502. With keepalive 0 gunicorn keeps no idle connection (every
response says `Connection: close`, and Traefik opens a new one for the next request), so the
race cannot happen; the price is one TCP handshake per request on the internal network (and a
TIME_WAIT socket on Traefik's side per request: about 470 requests/s per web container before
the ephemeral ports of one Traefik → container pair run out in 60 s). A keep-alive above zero
must stay above Traefik's idle timeout (serversTransport idleConnTimeout, 90 s by default), so
that Traefik, not gunicorn, closes idle connections: tests/ops/test_stack_files.py checks both
the default and deploy/env/app.env.example's value.
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
threads = _int("GUNICORN_THREADS", 8)

timeout = _int("GUNICORN_TIMEOUT", 60)
# A request still running this long after RequestTimeout was raised in it ends the worker.
REQUEST_ABORT_GRACE = max(1, min(10, timeout // 2))
# Below compose.yaml's stop_grace_period for the web services (45 s): see the docstring.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# 0: no idle connections, so requests spread over the workers and none can race gunicorn closing
# an idle one (a 502 through Traefik). Any other value must exceed Traefik's idle timeout for
# upstream connections (serversTransport idleConnTimeout, 90 s by default). See the docstring.
keepalive = _int("GUNICORN_KEEPALIVE", 0)

# Recycle workers now and then (slow leaks), with jitter so they do not all restart at once. Not
# often: a new worker takes seconds of CPU to load Django, and meanwhile its share of the load
# waits. At 1000 requests, 200 API readers (77 requests/s) recycled a worker every 13 s, and p95
# was 2.0 s and p99 5.1 s; without recycling, 89 requests/s, p95 0.86 s and p99 1.2 s
# (bench/load, issue 18). At 20000 a worker serving 45 requests/s is recycled about every 8 min.
max_requests = _int("GUNICORN_MAX_REQUESTS", 20000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 2000)

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
