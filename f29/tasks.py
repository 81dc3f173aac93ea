"""Celery tasks of the F29: thin, over f29.services."""

from celery import shared_task
from django.utils import timezone

from f29 import services


@shared_task(name="f29.f29_draft_previous_month", ignore_result=True)
def f29_draft_previous_month() -> dict[str, str]:
    """Beat, on the first days of each month: draft last month's F29 for every company."""
    return services.f29_draft_previous_month(today=timezone.localdate())


# A 400,000-line RCV takes minutes; the limits stop a runaway import, and a redelivered task
# resumes after the last chunk written (services.rcv_import_run).
@shared_task(
    name=services.RCV_IMPORT_TASK,
    ignore_result=True,
    acks_late=True,
    soft_time_limit=3300,
    time_limit=3600,
)
def rcv_import_run(import_id: int) -> None:
    """Import one uploaded RCV file (queued by services.rcv_import_create)."""
    services.rcv_import_run(import_id=import_id)
