"""Reviews start by themselves after a document is issued and after an F29 draft is computed,
once the transaction that did it has committed. They never hold up the request that issued:
with a broker they are Celery tasks; without one (a laptop run, tasks eager) they run in a
background thread instead of inside the request."""

import logging

from django.conf import settings
from django.db import transaction

from erp.background import run_in_background

log = logging.getLogger(__name__)

# Tests turn this off to run the eager review in their own thread and database connection.
IN_THREAD = True


def _later(task, object_id: int) -> None:
    def start() -> None:
        try:
            if settings.CELERY_TASK_ALWAYS_EAGER and IN_THREAD:
                # erp.background runs it in a thread of its own, retries it when SQLite is
                # locked, never lets it raise, and is waited for before a command exits.
                run_in_background(task.run, object_id, name="ai-review")
            else:
                task.delay(object_id)
        except Exception:  # a review must never break issuing or filing
            log.exception("could not start %s for %s", task.name, object_id)

    transaction.on_commit(start)


def on_dte_issued(sender, dte, document, **kwargs) -> None:
    if settings.AI_REVIEW_ON_ISSUE:
        from ai import tasks

        _later(tasks.ai_review_document, document.pk)


def on_f29_computed(sender, f29, **kwargs) -> None:
    if settings.AI_REVIEW_ON_ISSUE:
        from ai import tasks

        _later(tasks.ai_review_period, f29.pk)
