"""Celery tasks: thin, ids only, safe to repeat (the envelope row says what is left to do).
Each task is named after the service it runs (`dte.<service>`); services run them by name
through dte.dispatch, never by importing this module.

Retries are not Celery's: a failed attempt stores its next time (exponential backoff with
jitter, bounded, or the SII's Retry-After) on the envelope, and the beat tick
`dte.outbox_tick` dispatches whatever is due. So a lost task, a crashed worker or a broker
restart loses nothing: the row is the outbox.
"""

import logging

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from dte import certification, libro_sending, printing, receiving, sending, services

log = logging.getLogger(__name__)


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


@shared_task(name="dte.envelope_collect", acks_late=True, ignore_result=True)
def envelope_collect(company_id: int, follow_up: bool = False) -> int:
    """Documents issued one by one within SII_ENVELOPE_WINDOW go together in one envelope."""
    return services.envelope_collect(company_id, follow_up)


@shared_task(name="dte.outbox_tick", ignore_result=True)
def outbox_tick() -> dict:
    """Beat: envelope signed documents left without one, upload what is queued and due, ask
    the SII about what it may have; the same for certification libros."""
    due = services.outbox_tick()
    for envelope_id in due.to_send:
        envelope_send.delay(envelope_id)
    for envelope_id in due.to_ask:
        envelope_refresh.delay(envelope_id)
    for libro_id in due.libros_to_send:
        libro_send.delay(libro_id)
    for libro_id in due.libros_to_ask:
        libro_refresh.delay(libro_id)
    return {
        "enveloped": due.enveloped,
        "send": len(due.to_send),
        "poll": len(due.to_ask),
        "libros_send": len(due.libros_to_send),
        "libros_poll": len(due.libros_to_ask),
    }


# --- Certification libros (dte.libro_sending) -------------------------------------------------


@shared_task(name="dte.libro_send", acks_late=True, ignore_result=True)
def libro_send(libro_id: int) -> str:
    step = libro_sending.libro_send(libro_id)
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # No worker and no beat (a laptop run): follow the libro while it is due soon.
        step = libro_sending.follow_in_process(libro_id, step)
    return step.status


@shared_task(name="dte.libro_refresh", acks_late=True, ignore_result=True)
def libro_refresh(libro_id: int) -> str:
    return libro_sending.libro_refresh(libro_id).status


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
            log.warning(
                "e-mail of DTE %s given up after %s retries: %s", dte_id, self.max_retries, exc
            )
            printing.email_not_sent(
                dte_id, "No se pudo entregar: error del servidor de correo tras varios intentos."
            )
            raise
        countdown = get_exponential_backoff_interval(
            factor=10, retries=self.request.retries, maximum=900, full_jitter=True
        )
        raise self.retry(exc=exc, countdown=countdown) from exc


# --- Receiving (DOMAIN.md §12) ---------------------------------------------------------------


def _backoff(retries: int) -> int:
    return get_exponential_backoff_interval(
        factor=30, retries=retries, maximum=3600, full_jitter=True
    )


@shared_task(name="dte.mailbox_poll", ignore_result=True)
def mailbox_poll() -> int:
    """Beat: read every active exchange mailbox, one task each."""
    ids = receiving.active_mailboxes()
    for mailbox_id in ids:
        mailbox_poll_one.delay(mailbox_id)
    return len(ids)


@shared_task(name="dte.mailbox_poll_one", acks_late=True, ignore_result=True)
def mailbox_poll_one(mailbox_id: int) -> dict:
    return receiving.poll_mailbox(mailbox_id).to_dict()


@shared_task(
    name="dte.received_confirm", bind=True, acks_late=True, ignore_result=True, max_retries=8
)
def received_confirm(self, received_id: int) -> str:
    """Ask the SII whether it has the document; the SII's trouble is retried with backoff, and
    the beat job `dte.received_sync` asks again later in any case."""
    try:
        return receiving.confirm_with_sii(received_id)
    except receiving.RETRYABLE as exc:
        if self.request.retries >= self.max_retries or settings.CELERY_TASK_ALWAYS_EAGER:
            return f"retry later: {exc}"
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc


@shared_task(name="dte.received_sync", ignore_result=True)
def received_sync() -> dict:
    """Beat: for documents still open, record what the SII shows (confirmation, events others
    registered, the tacit acceptance after 8 days), and restart upload batches whose task was
    lost."""
    for batch_id in receiving.stalled_batches():
        received_intake_run.delay(batch_id)
    return receiving.sync_open()


@shared_task(
    name="dte.received_answer_email", bind=True, acks_late=True, ignore_result=True, max_retries=6
)
def received_answer_email(self, kind: str, object_id: int) -> str:
    try:
        return receiving.answer_email(kind, object_id)
    except OSError as exc:
        if self.request.retries >= self.max_retries:
            receiving.answer_not_sent(kind, object_id, f"error del servidor de correo ({exc})")
            raise
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from exc


@shared_task(name="dte.received_intake_run", acks_late=True, ignore_result=True)
def received_intake_run(batch_id: int) -> str:
    """A large upload of suppliers' DTEs, taken in file by file with its progress."""
    batch = receiving.intake_batch_run(batch_id)
    return batch.status if batch else "missing"


@shared_task(name="dte.certification_run", acks_late=True, ignore_result=True)
def certification_run(run_id: int) -> str:
    """A set de pruebas issued set by set, with its progress on the CertificationRun."""
    run = certification.certification_issue(run_id)
    return run.status if run else "missing"


@shared_task(name="dte.certification_simulation", acks_late=True, ignore_result=True)
def certification_simulation(run_id: int) -> str:
    """The certification's simulación: its drafts issued and sent in one envelope."""
    run = certification.simulation_issue(run_id)
    return run.simulation_status if run else "missing"
