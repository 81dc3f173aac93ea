"""Celery tasks of the AI checks: thin, ids only. A failure here never touches the document."""

from celery import shared_task

from ai import services
from erp.models import SalesDocument
from f29.models import F29Return


@shared_task(name="ai.ai_review_document", ignore_result=True)
def ai_review_document(document_id: int) -> str:
    document = SalesDocument.objects.filter(pk=document_id).first()
    if document is None:
        return "gone"
    return services.ai_review_document(document=document).ai_status


@shared_task(name="ai.ai_review_period", ignore_result=True)
def ai_review_period(f29_id: int) -> str:
    f29 = F29Return.objects.filter(pk=f29_id).first()
    if f29 is None:
        return "gone"
    return services.ai_review_period(f29=f29).ai_status
