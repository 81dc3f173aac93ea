"""Work that runs after a request or a command, in this process, when there is no broker.

    run_in_background(fn, *args, name="ai-review", **kwargs)   # returns at once
    wait_for_background(timeout=None) -> bool                  # True: nothing left to run

Jobs run in a small pool of daemon threads (at most MAX_WORKERS at a time; SQLite serialises
writers anyway), each with its own database connections, closed after every job. A job never
breaks whoever started it: every exception is logged, never raised. A job that hits a locked
SQLite database ("database is locked", "database table is locked") is run again a few times
after a short sleep, so it must be safe to repeat (a transaction that failed stored nothing).

Management commands call wait_for_background() before they return, and it is registered with
atexit, so a CLI run does not exit with work half done. A web process never waits.

It lives in erp, the lowest layer, so that every app (dte's in-process sending, ai's reviews)
can use it without breaking the one-way dependency between apps.
"""

import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import OperationalError, connections

log = logging.getLogger(__name__)

MAX_WORKERS = 4
# Attempts of a job that keeps finding the database locked, and the sleep before the next one
# (doubled each time). The busy timeout (SQLITE_BUSY_TIMEOUT) has already waited on each.
LOCKED_ATTEMPTS = 4
LOCKED_SLEEP = 0.5
# A worker with nothing to do for this long ends; the next job starts a new one.
IDLE_SECONDS = 2.0
# How long the interpreter waits at exit for jobs still running.
EXIT_TIMEOUT = 300.0
# Tests set this: a job runs at once in the caller's thread (after the commit that started
# it), still never raising. SQLite's in-memory test database, shared between threads, locks
# whole tables and ignores the busy timeout, so real threads there fail at random.
INLINE = False


@dataclass
class _Job:
    fn: Callable[..., Any]
    args: tuple
    kwargs: dict
    name: str
    attempts: int = field(default=0)


_cond = threading.Condition()
_queue: deque[_Job] = deque()
_pending = 0  # queued + running
_workers = 0
_idle = 0
_local = threading.local()


def is_locked_error(exc: BaseException) -> bool:
    """SQLite's lock errors: the busy timeout ran out, or a shared-cache table lock."""
    return isinstance(exc, OperationalError) and "locked" in str(exc).lower()


def run_in_background(
    fn: Callable[..., Any], *args: Any, name: str = "background", **kwargs: Any
) -> None:
    """Run fn(*args, **kwargs) in a background daemon thread; returns at once, never raises."""
    global _pending, _workers
    job = _Job(fn, args, kwargs, name)
    if INLINE:
        _run(job, own_connections=False)
        return
    with _cond:
        _queue.append(job)
        _pending += 1
        if _idle < len(_queue) and _workers < MAX_WORKERS:
            _workers += 1
            try:
                threading.Thread(target=_worker, daemon=True, name="background").start()
            except Exception:  # no thread can be started: a running worker may still take it
                _workers -= 1
                log.exception("could not start a background thread for %s", name)
                if _workers == 0:
                    _queue.remove(job)
                    _pending -= 1
        _cond.notify_all()


def wait_for_background(timeout: float | None = None) -> bool:
    """Wait until every job has finished (or timeout seconds); True when none is left.
    Called from a job, it does not wait (the job would wait for itself)."""
    if getattr(_local, "in_worker", False):
        return False
    deadline = None if timeout is None else time.monotonic() + timeout
    with _cond:
        while _pending:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                log.warning("%s background job(s) still running", _pending)
                return False
            _cond.wait(remaining)
    return True


def _worker() -> None:
    global _pending, _workers, _idle
    _local.in_worker = True
    while True:
        with _cond:
            _idle += 1
            try:
                deadline = time.monotonic() + IDLE_SECONDS
                while not _queue:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        _workers -= 1
                        return
                    _cond.wait(remaining)
                job = _queue.popleft()
            finally:
                _idle -= 1
        try:
            _run(job)
        finally:
            with _cond:
                _pending -= 1
                _cond.notify_all()


def _run(job: _Job, *, own_connections: bool = True) -> None:
    thread = threading.current_thread()
    previous, thread.name = thread.name, job.name
    try:
        while True:
            job.attempts += 1
            try:
                job.fn(*job.args, **job.kwargs)
                return
            except Exception as exc:
                if not is_locked_error(exc) or job.attempts >= LOCKED_ATTEMPTS:
                    log.exception("background job %s failed", job.name)
                    return
                log.warning(
                    "background job %s: %s; attempt %s of %s",
                    job.name,
                    exc,
                    job.attempts + 1,
                    LOCKED_ATTEMPTS,
                )
            finally:
                if own_connections:  # a worker's own; never the caller's (INLINE)
                    connections.close_all()
            time.sleep(LOCKED_SLEEP * 2 ** (job.attempts - 1))
    except BaseException:  # close_all itself, or a SystemExit from the job: never propagate
        log.exception("background job %s failed", job.name)
    finally:
        thread.name = previous


def _wait_at_exit() -> None:
    if _pending:
        wait_for_background(EXIT_TIMEOUT)


atexit.register(_wait_at_exit)
