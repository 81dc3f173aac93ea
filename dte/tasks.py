"""Celery tasks: thin, ids only, safe to repeat (the envelope row says what is left to do).
Each task is named after the service it runs (`dte.<service>`); services run them by name
through dte.dispatch, never by importing this module.

Retries are not Celery's: a failed attempt stores its next time (exponential backoff with
jitter, bounded, or the SII's Retry-After) on the envelope, and the beat tick
`dte.outbox_tick` dispatches whatever is due. So a lost task, a crashed worker or a broker
restart loses nothing: the row is the outbox.
"""

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from dte import printing, sending, services


@shared_task(name="dte.envelope_send", acks_late=True, ignore_result=True)
def envelope_send(envelope_id: int) -> str:
    step = sending.envelope_send(envelope_id)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # No worker and no beat (a laptop run): follow the envelope while it is due soon.
        step = sending.follow_in_process(envelope_id, step)
    return step.status


@shared_task(name="dte.envelope_refresh", acks_late=True, ignore_result=True)
def envelope_refresh(envelope_id: int) -> str:
    return sending.envelope_refresh(envelope_id).status


@shared_task(name="dte.outbox_tick", ignore_result=True)
def outbox_tick() -> dict:
    """Beat: envelope signed documents left without one, upload what is queued and due, ask
    the SII about what it may have."""
    due = services.outbox_tick()
    for envelope_id in due.to_send:
        envelope_send.delay(envelope_id)
    for envelope_id in due.to_ask:
        envelope_refresh.delay(envelope_id)
    return {"enveloped": due.enveloped, "send": len(due.to_send), "poll": len(due.to_ask)}


@shared_task(name="dte.dte_store_pdf", acks_late=True, ignore_result=True)
def dte_store_pdf(dte_id: int) -> None:
    printing.dte_store_pdf(dte_id)


@shared_task(name="dte.dte_email", bind=True, acks_late=True, ignore_result=True, max_retries=6)
def dte_email(self, dte_id: int) -> str:
    """SMTP trouble (smtplib's errors are OSErrors) is retried with backoff; when the retries
    run out, or there is no address to send to, the document's history says so."""
    try:
        return printing.dte_email(dte_id)
    except printing.EmailSkipped as exc:
        printing.email_not_sent(dte_id, str(exc))
        return str(exc)
    except OSError as exc:
        if self.request.retries >= self.max_retries:
            printing.email_not_sent(dte_id, f"error del servidor de correo ({exc})")
            raise
        countdown = get_exponential_backoff_interval(
            factor=10, retries=self.request.retries, maximum=900, full_jitter=True
        )
        raise self.retry(exc=exc, countdown=countdown) from exc
