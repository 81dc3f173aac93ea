"""Sending a certification libro (dte.models.CertificationLibro: a signed LibroCompraVenta or
LibroGuia) to the SII and following it to the SII's verdict.

The SII takes a libro as it takes an EnvioDTE (dte/core/CERTIFICATION.md, "How the SII answers a
libro"): the same DTEUpload with the certificate holder as rutSender and the company as
rutCompany, answered with a TRACKID; then QueryEstUp.getEstUp on that track id, whose ESTADO is
LOK (accepted), another L… code (rejected, with the SII's GLOSA as the reason), or anything else
(-11 with ERR_CODE 2, a state nobody documented): not final, ask again later.

The row is the outbox, as for envelopes (dte.sending): its state is committed before any call to
the SII, a failed attempt stores when to try again (exponential backoff with jitter, or the
SII's Retry-After), and the beat tick (dte.services.outbox_tick → libro_claim) dispatches
whatever is due, so a lost task loses nothing. States (LibroStatus):

- queued → sent: uploaded, the track id stored. A retryable failure (maintenance, timeout,
  HTTP 5xx, an unreadable answer) stays queued for a later attempt; after SII_MAX_ATTEMPTS, or
  on a refusal that will not change by trying again (DTEUpload STATUS 1, 2, 3, 5 even with a
  fresh token, 6, 7, 8, -1, an HTTP 4xx, an environment this deployment does not talk to):
  needs_attention, with the SII's words.
- sent → accepted (LOK) | rejected (LRH, LNC, LRF, LRS, LRC, LRP: the GLOSA kept verbatim).
  Not final: polled again, every SII_POLL_INTERVAL at first and slower as it takes longer; after
  SII_MAX_POLLS questions without a verdict it needs attention (its track id is kept).
- needs_attention → libro_enqueue again (an admin's retry): polled again when it has a track id,
  uploaded again otherwise, attempts and polls from zero.

An upload whose answer was lost may have reached the SII: the same bytes go again, and the SII
answers STATUS 99 ("ya recibido"), with the first upload's track id (followed then) or without
one (then it needs attention: nothing else finds a libro at the SII but its track id).

Tasks (dte.tasks "dte.libro_send", "dte.libro_refresh") call these functions with ids; they are
safe to repeat.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dte import dispatch
from dte.keyring import load_certificate
from dte.models import CertificationLibro, LibroStatus
from dte.sending import backoff
from dte.sii import auth, config
from dte.sii.errors import (
    SiiAlreadyReceived,
    SiiError,
    SiiRefused,
    SiiRetryableError,
    SiiTokenError,
)
from dte.sii.responses import LibroOutcome, UploadResult, libro_verdict, readable
from erp.models import AuditEvent
from erp.services import audit_record

log = logging.getLogger(__name__)
Status = LibroStatus

# What the outbox changes on a libro (its signed XML is written once, when it is made).
OUTBOX_FIELDS = (
    "status",
    "track_id",
    "sii_estado",
    "sii_glosa",
    "attempts",
    "polls",
    "next_attempt_at",
    "sent_at",
    "last_error",
)
# A libro rejected, or accepted, is final: a new libro (RECTIFICA, or another row) replaces it.
FINAL = (Status.ACCEPTED, Status.REJECTED)


@dataclass(frozen=True)
class Step:
    """What one call did, for the caller (task, beat tick, command) to report."""

    status: str
    message: str = ""


# ---------------------------------------------------------------- helpers


def _after(seconds: float) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


def _locked(libro_id: int) -> CertificationLibro:
    return (
        CertificationLibro.objects.select_for_update(of=("self",))
        .select_related("company", "certificate")
        .get(pk=libro_id)
    )


def poll_delay(polls: int) -> float:
    """Seconds to the next question while the SII processes a libro: SII_POLL_INTERVAL for the
    first ten, then twice as long every ten more, at most sixteen times the interval (the SII
    may answer within a minute, or take hours in certification)."""
    return settings.SII_POLL_INTERVAL * min(2 ** (polls // 10), 16)


def _needs_attention(libro: CertificationLibro, reason: str) -> Step:
    """The (locked) libro waits for a person, with the reason."""
    libro.status = Status.NEEDS_ATTENTION
    libro.last_error = reason
    libro.next_attempt_at = None
    libro.save(update_fields=OUTBOX_FIELDS)
    log.warning("libro %s needs attention: %s", libro.pk, reason)
    return Step(Status.NEEDS_ATTENTION, reason)


# ---------------------------------------------------------------- queueing


@transaction.atomic
def libro_enqueue(libro: CertificationLibro, *, actor=None) -> CertificationLibro:
    """Put a signed libro in the outbox: it is uploaded after the commit (task "dte.libro_send";
    with SII_AUTO_SEND off, by the beat tick). A libro that needs attention is taken up again
    (an admin's retry): asked about when the SII gave it a track id, uploaded again otherwise,
    with attempts and polls from zero. A libro sent, accepted or rejected is left as it is."""
    locked = _locked(libro.pk)
    previous = Status(locked.status)
    if previous in FINAL or previous == Status.SENT:
        return locked
    resume = Status.QUEUED
    if previous == Status.NEEDS_ATTENTION:
        resume = Status.SENT if locked.track_id else Status.QUEUED
        locked.attempts = locked.polls = 0
        locked.last_error = ""
    locked.status = resume
    locked.next_attempt_at = timezone.now()
    locked.save(update_fields=OUTBOX_FIELDS)
    if actor is not None and previous != resume:  # an admin's retry, not a fresh libro
        audit_record(
            company=locked.company,
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            obj=locked,
            changes={"status": [str(previous), str(resume)]},
        )
    if resume == Status.SENT:
        dispatch.after_commit("dte.libro_refresh", locked.pk)
    elif settings.SII_AUTO_SEND:
        dispatch.after_commit("dte.libro_send", locked.pk)
    return locked


# ---------------------------------------------------------------- upload


def _claim_for_upload(libro_id: int, now: datetime) -> CertificationLibro | Step:
    """Lock the row and commit the attempt before anything leaves this machine. The beat leaves
    it alone for SII_UPLOAD_GRACE: if this worker dies mid-upload, it goes again after that."""
    with transaction.atomic():
        libro = _locked(libro_id)
        if libro.status != Status.QUEUED:
            return Step(libro.status)
        env = libro.company.sii_environment
        if env not in settings.SII_ENVIRONMENTS:
            return _needs_attention(libro, str(config.EnvironmentNotAllowed(env)))
        libro.attempts += 1
        libro.next_attempt_at = now + timedelta(seconds=settings.SII_UPLOAD_GRACE)
        libro.save(update_fields=OUTBOX_FIELDS)
        return libro


def _upload(libro: CertificationLibro, certificate, env: str) -> UploadResult:
    """One DTEUpload of the libro's bytes. A token the SII does not take (STATUS 5, HTTP 401) is
    renewed and the upload made once more: nothing was registered the first time."""
    client = config.client(env)

    def send() -> UploadResult:
        token = auth.get_token(client, certificate, env=env, boleta=False)
        return client.upload(
            bytes(libro.xml),
            rut_sender=certificate.rut or "",
            rut_company=libro.company.rut,
            filename=libro.filename,
            token=token,
        )

    try:
        return send()
    except SiiTokenError:
        auth.forget_token(certificate, env=env, boleta=False)
        return send()


def libro_send(libro_id: int, *, now: datetime | None = None) -> Step:
    """Upload one queued libro, once. Safe to call again at any time."""
    now = now or timezone.now()
    claim = _claim_for_upload(libro_id, now)
    if isinstance(claim, Step):
        return claim
    libro = claim
    env = libro.company.sii_environment
    certificate = load_certificate(libro.certificate_id, libro.certificate.fingerprint)
    try:
        result = _upload(libro, certificate, env)
    except SiiTokenError as exc:  # refused again with a fresh token: a person must look
        auth.forget_token(certificate, env=env, boleta=False)
        return _refused(libro_id, "UPLOAD-5", exc.message)
    except SiiRetryableError as exc:
        return _upload_failed(libro_id, exc)
    except SiiAlreadyReceived as exc:
        reason = (
            f"El SII ya había recibido este libro ({exc.glosa}) pero no informó su track id: "
            "revise su estado en el sitio del SII o en el correo «Revision Envio de Libro»."
        )
        with transaction.atomic():
            return _needs_attention(_locked(libro_id), reason)
    except SiiRefused as exc:
        return _refused(libro_id, exc.code, exc.glosa)
    except config.EnvironmentNotAllowed as exc:
        with transaction.atomic():
            return _needs_attention(_locked(libro_id), str(exc))
    except SiiError as exc:  # an answer nobody can read, after the file was sent
        return _upload_failed(libro_id, SiiRetryableError(exc.message, maybe_delivered=True))
    return _mark_sent(libro_id, result)


@transaction.atomic
def _mark_sent(libro_id: int, result: UploadResult) -> Step:
    libro = _locked(libro_id)
    libro.status = Status.SENT
    libro.track_id = result.track_id
    libro.sent_at = timezone.now()
    libro.polls = 0
    libro.sii_estado = libro.sii_glosa = libro.last_error = ""
    libro.next_attempt_at = _after(poll_delay(0))
    libro.save(update_fields=OUTBOX_FIELDS)
    if result.repeated:
        message = (
            f"El SII ya había recibido este libro: se sigue su envío original "
            f"(track id {result.track_id})."
        )
    else:
        message = f"Libro enviado al SII (track id {result.track_id})."
    log.info("libro %s: %s", libro_id, message)
    return Step(Status.SENT, message)


@transaction.atomic
def _upload_failed(libro_id: int, error: SiiRetryableError) -> Step:
    libro = _locked(libro_id)
    if libro.attempts >= settings.SII_MAX_ATTEMPTS:
        return _needs_attention(
            libro, f"{libro.attempts} intentos sin éxito. Último error: {error.message}"
        )
    libro.status = Status.QUEUED
    libro.last_error = f"Intento {libro.attempts} fallido, se reintentará: {error.message}"
    libro.next_attempt_at = _after(max(backoff(libro.attempts), error.retry_after or 0))
    libro.save(update_fields=OUTBOX_FIELDS)
    return Step("retry", error.message)


@transaction.atomic
def _refused(libro_id: int, code: str, glosa: str) -> Step:
    """The SII refused the request without judging the libro: a person fixes the cause."""
    libro = _locked(libro_id)
    libro.sii_estado, libro.sii_glosa = code[:16], glosa
    reason = (
        f"El SII no recibió el libro ({code}: {readable(glosa)}). Corrija la causa y reintente."
    )
    return _needs_attention(libro, reason)


# ---------------------------------------------------------------- asking the SII


def _start_poll(libro_id: int) -> CertificationLibro | None:
    with transaction.atomic():
        libro = _locked(libro_id)
        if libro.status != Status.SENT or not libro.track_id:
            return None
        libro.polls += 1
        libro.save(update_fields=["polls"])
        return libro


def libro_refresh(libro_id: int) -> Step:
    """Ask the SII how a sent libro is doing (getEstUp on its track id) and record what it
    says. Safe to repeat: only a sent libro is asked about."""
    libro = _start_poll(libro_id)
    if libro is None:
        status = (
            CertificationLibro.objects.filter(pk=libro_id).values_list("status", flat=True).first()
        )
        return Step(status or "missing")
    env = libro.company.sii_environment
    try:
        client = config.client(env)
        certificate = load_certificate(libro.certificate_id, libro.certificate.fingerprint)
        token = auth.get_token(client, certificate, env=env, boleta=False)
        try:
            answer = client.get_est_up(
                rut_company=libro.company.rut, track_id=libro.track_id, token=token
            )
        except SiiTokenError:
            auth.forget_token(certificate, env=env, boleta=False)
            raise
    except config.EnvironmentNotAllowed as exc:
        with transaction.atomic():
            return _needs_attention(_locked(libro_id), str(exc))
    except SiiRefused as exc:  # -11 with ERR_CODE 1: the track id is not this company's
        return _refused_poll(libro_id, exc.code, exc.glosa)
    except SiiRetryableError as exc:
        return _poll_later(libro_id, exc.message, retryable=True, retry_after=exc.retry_after)
    except SiiError as exc:
        return _poll_later(libro_id, exc.message, retryable=True)
    verdict = libro_verdict(answer)
    if verdict.final:
        return _decided(libro_id, verdict.estado, verdict.glosa, verdict.outcome, verdict.reason)
    return _poll_later(
        libro_id,
        f"{verdict.estado} {readable(verdict.glosa)}".strip(),
        retryable=False,
        estado=verdict.estado,
        glosa=verdict.glosa,
    )


@transaction.atomic
def _decided(libro_id: int, estado: str, glosa: str, outcome: LibroOutcome, reason: str) -> Step:
    libro = _locked(libro_id)
    if libro.status != Status.SENT:
        return Step(libro.status)
    libro.status = Status.ACCEPTED if outcome is LibroOutcome.ACCEPTED else Status.REJECTED
    libro.sii_estado, libro.sii_glosa = estado[:16], glosa  # the SII's words, verbatim
    libro.next_attempt_at = None
    libro.last_error = ""
    libro.save(update_fields=OUTBOX_FIELDS)
    if libro.status == Status.ACCEPTED:
        message = f"Libro aceptado por el SII ({estado}{': ' + readable(glosa) if glosa else ''})."
    else:
        message = f"Libro rechazado por el SII ({estado}: {reason})."
    log.info("libro %s: %s", libro_id, message)
    return Step(libro.status, message)


@transaction.atomic
def _refused_poll(libro_id: int, code: str, glosa: str) -> Step:
    libro = _locked(libro_id)
    reason = (
        f"El SII no informa el estado del libro (track id {libro.track_id}; {code}: "
        f"{readable(glosa)})."
    )
    return _needs_attention(libro, reason)


@transaction.atomic
def _poll_later(
    libro_id: int,
    reason: str,
    *,
    retryable: bool,
    retry_after: float | None = None,
    estado: str = "",
    glosa: str = "",
) -> Step:
    """Not final yet: ask again later (backoff after a failed question, the poll interval while
    the SII processes), or give up on asking after SII_MAX_POLLS questions."""
    libro = _locked(libro_id)
    if libro.status != Status.SENT:
        return Step(libro.status)
    if estado:
        libro.sii_estado, libro.sii_glosa = estado[:16], glosa
    if libro.polls >= settings.SII_MAX_POLLS:
        return _needs_attention(
            libro,
            f"Sin veredicto del SII tras {libro.polls} consultas (track id {libro.track_id}): "
            f"{reason}. Revise el correo «Revision Envio de Libro» del SII o reintente.",
        )
    delay = backoff(libro.polls) if retryable else poll_delay(libro.polls)
    libro.next_attempt_at = _after(max(delay, retry_after or 0))
    libro.last_error = reason if retryable else ""
    libro.save(update_fields=OUTBOX_FIELDS)
    return Step("in_progress", reason)


# ---------------------------------------------------------------- without a worker


def follow_in_process(libro_id: int, step: Step) -> Step:
    """No worker and no beat (a laptop run, tasks eager): after an upload, keep following the
    libro while its next question is due within SII_INPROCESS_FOLLOW seconds, sleeping until
    then. What is left is for `manage.py dte_outbox` or a worker."""
    deadline = time.monotonic() + settings.SII_INPROCESS_FOLLOW
    while step.status in (Status.SENT, Status.QUEUED, "in_progress", "retry"):
        row = CertificationLibro.objects.filter(pk=libro_id).values("status", "next_attempt_at")
        current = row.first()
        if current is None:
            break
        when = current["next_attempt_at"]
        wait = max(0.0, (when - timezone.now()).total_seconds()) if when else 0.0
        if time.monotonic() + wait > deadline:
            break
        time.sleep(wait)
        if current["status"] == Status.QUEUED:
            step = libro_send(libro_id)
        elif current["status"] == Status.SENT:
            step = libro_refresh(libro_id)
        else:
            break
    return step


# ---------------------------------------------------------------- the beat tick


def libro_claim(now: datetime | None = None) -> tuple[list[int], list[int]]:
    """Libros due for an upload (queued) and for a question to the SII (sent), each claimed for
    SII_DISPATCH_LEASE seconds: the tick dispatches a row once, and again only if its task got
    lost (the lease ran out with nothing done)."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=settings.SII_DISPATCH_LEASE)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    with transaction.atomic():
        rows = CertificationLibro.objects.select_for_update(skip_locked=True)
        to_send = list(rows.filter(due, status=Status.QUEUED).values_list("pk", flat=True))
        to_poll = list(
            rows.filter(due, status=Status.SENT).exclude(track_id="").values_list("pk", flat=True)
        )
        CertificationLibro.objects.filter(pk__in=to_send + to_poll).update(next_attempt_at=lease)
    return sorted(to_send), sorted(to_poll)
