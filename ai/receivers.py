"""Reviews start by themselves after a document is issued and after an F29 draft is computed,
once the transaction that did it has committed."""

import logging

from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)


def _later(task, object_id: int) -> None:
    def run() -> None:
        try:
            task.delay(object_id)
        except Exception:  # a review must never break issuing or filing
            log.exception("could not queue %s for %s", task.name, object_id)

    transaction.on_commit(run)


def on_dte_issued(sender, dte, document, **kwargs) -> None:
    if settings.AI_REVIEW_ON_ISSUE:
        from ai import tasks

        _later(tasks.ai_review_document, document.pk)


def on_f29_computed(sender, f29, **kwargs) -> None:
    if settings.AI_REVIEW_ON_ISSUE:
        from ai import tasks

        _later(tasks.ai_review_period, f29.pk)
