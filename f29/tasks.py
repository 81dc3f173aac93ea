"""Celery tasks of the F29: thin, over f29.services."""

from celery import shared_task
from django.utils import timezone

from f29 import services


@shared_task(name="f29.f29_draft_previous_month", ignore_result=True)
def f29_draft_previous_month() -> dict[str, str]:
    """Beat, on the first days of each month: draft last month's F29 for every company."""
    return services.f29_draft_previous_month(today=timezone.localdate())
