"""Running dte's Celery tasks after the commit that made them necessary, by task name, so that
services never import the tasks module above them (tasks → services → selectors → models).

With a broker the task is queued. A broker that is down must not turn what was committed into
an error (the issue already answered 2xx): the rows are the outbox, and the beat tick picks up
whatever is due. Without a broker (tasks eager: a laptop, the CLI) the task runs in a
background thread (erp.background), never inside the request or command that asked for it; a
command waits for it before exiting.
"""

import logging
import time

from celery import current_app
from django.conf import settings
from django.db import transaction

from erp.background import run_in_background

log = logging.getLogger(__name__)


def run_task(name: str, *args, delay: float = 0.0) -> None:
    """Run or queue the task `name` now, or `delay` seconds from now (outside any transaction
    of the caller's). A delayed task waits in the worker (Celery's countdown); without a broker
    it waits in its background thread."""
    try:
        task = current_app.tasks[name]
        if settings.CELERY_TASK_ALWAYS_EAGER:
            if delay > 0:
                run_in_background(_after_sleep, delay, task.run, *args, name=name)
            else:
                run_in_background(task.run, *args, name=name)
        elif delay > 0:
            task.apply_async(args=args, countdown=delay)
        else:
            task.delay(*args)
    except Exception:  # kombu raises its transports' own errors
        log.warning("could not queue %s%s; the beat tick will pick it up", name, args)


def _after_sleep(delay: float, fn, *args):
    time.sleep(delay)
    return fn(*args)


def after_commit(name: str, *args, delay: float = 0.0) -> None:
    """Run or queue the task `name` once the current transaction commits (`delay` seconds
    after it, when given)."""
    transaction.on_commit(lambda: run_task(name, *args, delay=delay), robust=True)
