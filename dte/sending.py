"""Sending envelopes to the SII and following them to a verdict (ARCHITECTURE.md flow 2).

The envelope row is the outbox. Its status is committed *before* any call to the SII, so a crash
never leaves an upload that nobody knows about:

- QUEUED: due at `next_attempt_at`; `envelope_send` locks it, marks it UPLOADING and commits,
  then uploads. A track id → SENT. A transport failure before anything was sent → QUEUED again
  with exponential backoff and jitter. A timeout after sending (the SII may have the file) keeps
  it UPLOADING.
- UPLOADING with no answer for SII_UPLOAD_GRACE seconds (a crash or a timeout): before any new
  upload, every document is looked up with QueryEstDte (boletas: their status endpoint). If the
  SII has them, the envelope is SENT and followed document by document; if it has none of them,
  the upload is repeated. So a document is never uploaded twice by accident.
- SENT: polled with QueryEstUp (boletas: the REST status) until the SII decides; each document
  gets its verdict as an event carrying the SII's own code and glosa.
- Retryable failures count; after SII_MAX_ATTEMPTS uploads or SII_MAX_POLLS polls the envelope
  and its documents "need attention" with the reason, and an admin can retry them.

Every transition of a document is checked against dte.core.domain.ALLOWED_TRANSITIONS.
Tasks (dte.tasks) and the beat tick call these functions with ids; they are safe to repeat.
"""

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dte.core.domain import DteStatus, can_transition
from dte.keyring import load_certificate
from dte.models import Dte, DteEvent, Envelope
from dte.sii import auth, config
from dte.sii.errors import SiiError, SiiRejected, SiiRetryableError, SiiTokenError
from dte.sii.responses import DocumentState, EnvelopeStatus, Outcome
from erp.services import user_or_none

log = logging.getLogger(__name__)
Status = Envelope.Status


class InvalidTransition(RuntimeError):
    """A document was asked to move to a state its current state does not lead to."""


@dataclass(frozen=True)
class Step:
    """What one call did, for the caller (task, beat tick, UI) to report."""

    status: str
    message: str = ""


# ---------------------------------------------------------------- helpers


def backoff(attempt: int) -> float:
    """Exponential backoff with ±25 % jitter, capped (seconds)."""
    delay = min(settings.SII_BACKOFF_MAX, settings.SII_BACKOFF_BASE * 2 ** max(attempt - 1, 0))
    return delay * random.uniform(0.75, 1.25)


def move(dte: Dte, new: DteStatus, message: str, *, code: str = "", actor=None) -> None:
    """Change a document's state after checking the transition, and record why."""
    current = DteStatus(dte.status)
    if current == new:
        return
    if not can_transition(current, new):
        raise InvalidTransition(f"DTE {dte.pk}: {current} → {new} is not allowed")
    dte.status = new
    dte.save(update_fields=["status"])
    DteEvent.objects.create(
        dte=dte, status=new, sii_code=code[:16], message=message, actor=user_or_none(actor)
    )
    if new in (DteStatus.ACCEPTED, DteStatus.ACCEPTED_WITH_OBJECTIONS):
        _dispatch_email(dte.pk)


def note(dte: Dte, message: str, *, code: str = "") -> None:
    """An event that does not change the state (a failed attempt, a poll still in progress)."""
    DteEvent.objects.create(dte=dte, status=dte.status, sii_code=code[:16], message=message)


def _dtes(envelope: Envelope) -> list[Dte]:
    return list(envelope.dtes.select_for_update().order_by("pk"))


def _is_boleta(envelope: Envelope) -> bool:
    return envelope.kind == Envelope.Kind.ENVIO_BOLETA


def _dispatch_email(dte_id: int) -> None:
    """Once accepted, the receiver gets the document by e-mail (after the commit)."""
    if settings.DTE_EMAIL_ON_ACCEPT:
        from dte import tasks

        transaction.on_commit(lambda: tasks.dte_email.delay(dte_id))


def _dispatch_send(envelope_id: int) -> None:
    if settings.SII_AUTO_SEND:
        from dte import tasks

        tasks.dte_send.delay(envelope_id)


# ---------------------------------------------------------------- queueing


def envelope_enqueue(envelope: Envelope, *, actor=None) -> None:
    """Put a freshly signed envelope in the outbox; it goes to the SII after the commit."""
    for dte in _dtes(envelope):
        move(dte, DteStatus.QUEUED, "En cola para enviarse al SII.", actor=actor)
    Envelope.objects.filter(pk=envelope.pk).update(
        status=Status.QUEUED, next_attempt_at=timezone.now()
    )
    transaction.on_commit(lambda: _dispatch_send(envelope.pk))


@transaction.atomic
def envelope_retry(envelope_id: int, *, actor) -> Envelope:
    """An admin's retry of an envelope that needs attention: attempts start over."""
    envelope = Envelope.objects.select_for_update().get(pk=envelope_id)
    if envelope.status != Status.NEEDS_ATTENTION:
        return envelope
    resume = DteStatus.SENT if envelope.track_id else DteStatus.QUEUED
    for dte in _dtes(envelope):
        if dte.status == DteStatus.NEEDS_ATTENTION:
            move(dte, resume, "Reintento solicitado por un administrador.", actor=actor)
    envelope.status = Status.SENT if envelope.track_id else Status.QUEUED
    envelope.attempts = envelope.polls = 0
    envelope.next_attempt_at = timezone.now()
    envelope.last_error = ""
    envelope.save()
    if envelope.status == Status.QUEUED:
        transaction.on_commit(lambda: _dispatch_send(envelope.pk))
    return envelope


def _needs_attention(envelope: Envelope, reason: str) -> Step:
    envelope.status = Status.NEEDS_ATTENTION
    envelope.last_error = reason
    envelope.next_attempt_at = None
    envelope.save()
    for dte in _dtes(envelope):
        if can_transition(DteStatus(dte.status), DteStatus.NEEDS_ATTENTION):
            move(dte, DteStatus.NEEDS_ATTENTION, f"Requiere atención: {reason}")
    log.warning("envelope %s needs attention: %s", envelope.pk, reason)
    return Step("needs_attention", reason)


# ---------------------------------------------------------------- upload


@dataclass(frozen=True)
class _Claim:
    envelope: Envelope
    recovering: bool


def _claim_for_upload(envelope_id: int, now: datetime) -> _Claim | Step:
    """Lock the row and commit UPLOADING before anything leaves this machine."""
    with transaction.atomic():
        envelope = Envelope.objects.select_for_update().get(pk=envelope_id)
        recovering = False
        if envelope.status == Status.UPLOADING:
            started = envelope.upload_started_at or now
            if now - started < timedelta(seconds=settings.SII_UPLOAD_GRACE):
                return Step("uploading", "Otro proceso está subiendo este sobre.")
            recovering = True
        elif envelope.status != Status.QUEUED:
            return Step(envelope.status)
        envelope.status = Status.UPLOADING
        envelope.upload_started_at = now
        envelope.attempts += 1
        envelope.save()
        return _Claim(envelope, recovering)


def envelope_send(envelope_id: int, *, now: datetime | None = None) -> Step:
    """Upload one envelope, once. Safe to call again at any time."""
    now = now or timezone.now()
    claim = _claim_for_upload(envelope_id, now)
    if isinstance(claim, Step):
        return claim
    envelope = claim.envelope
    certificate = load_certificate(envelope.certificate_id, envelope.certificate.fingerprint)
    client = config.client()
    boleta = _is_boleta(envelope)
    try:
        token = auth.get_token(client, certificate, env=settings.SII_ENV, boleta=boleta)
        if claim.recovering and _sii_already_has(envelope, client, certificate, token):
            return _mark_sent(envelope, track_id="", glosa="Recuperado: el SII ya tenía los DTE.")
        upload = client.boleta_upload if boleta else client.upload
        result = upload(
            bytes(envelope.xml),
            rut_sender=certificate.rut or "",
            rut_company=envelope.company.rut,
            filename=f"{envelope.kind}-{envelope.company.rut}-{envelope.pk}.xml",
            token=token,
        )
    except SiiTokenError as exc:
        auth.forget_token(certificate, env=settings.SII_ENV, boleta=boleta)
        return _upload_failed(envelope, exc, maybe_delivered=False)
    except SiiRetryableError as exc:
        return _upload_failed(envelope, exc, maybe_delivered=exc.maybe_delivered)
    except SiiRejected as exc:
        return _reject_envelope(envelope, exc.code, exc.glosa)
    except SiiError as exc:
        with transaction.atomic():
            return _needs_attention(
                Envelope.objects.select_for_update().get(pk=envelope.pk), exc.message
            )
    return _mark_sent(envelope, track_id=result.track_id, glosa=f"Recibido el {result.timestamp}")


def _sii_already_has(envelope: Envelope, client, certificate, token: str) -> bool:
    """After an upload that got no answer: does the SII have these documents?"""
    for dte in envelope.dtes.all():
        state = _document_state(envelope, dte, client, certificate, token)
        if state is not DocumentState.UNKNOWN:
            return True
    return False


def _document_state(envelope: Envelope, dte: Dte, client, certificate, token: str):
    if _is_boleta(envelope):
        status = client.boleta_document_status(
            rut_company=envelope.company.rut,
            tipo=dte.tipo_dte,
            folio=dte.folio,
            rut_receptor=dte.rut_receptor,
            monto=dte.monto_total,
            fecha=dte.fecha_emision,
            token=token,
        )
    else:
        status = client.get_est_dte(
            rut_consultante=certificate.rut or "",
            rut_company=envelope.company.rut,
            rut_receptor=dte.rut_receptor,
            tipo=dte.tipo_dte,
            folio=dte.folio,
            fecha=dte.fecha_emision,
            monto=dte.monto_total,
            token=token,
        )
    return status.state


@transaction.atomic
def _mark_sent(envelope: Envelope, *, track_id: str, glosa: str) -> Step:
    envelope = Envelope.objects.select_for_update().get(pk=envelope.pk)
    envelope.status = Status.SENT
    envelope.track_id = track_id
    envelope.sent_at = timezone.now()
    envelope.polls = 0
    envelope.last_error = ""
    envelope.next_attempt_at = timezone.now() + timedelta(seconds=settings.SII_POLL_INTERVAL)
    envelope.save()
    message = f"Enviado al SII (track id {track_id}). {glosa}" if track_id else glosa
    for dte in _dtes(envelope):
        move(dte, DteStatus.SENT, message, code="0" if track_id else "")
    return Step("sent", track_id)


@transaction.atomic
def _upload_failed(envelope: Envelope, error: SiiRetryableError, *, maybe_delivered: bool) -> Step:
    envelope = Envelope.objects.select_for_update().get(pk=envelope.pk)
    if envelope.attempts >= settings.SII_MAX_ATTEMPTS:
        return _needs_attention(
            envelope, f"{envelope.attempts} intentos sin éxito. Último error: {error.message}"
        )
    # Maybe delivered: stay UPLOADING, so that the next try first asks the SII.
    envelope.status = Status.UPLOADING if maybe_delivered else Status.QUEUED
    envelope.last_error = error.message
    envelope.next_attempt_at = timezone.now() + timedelta(seconds=backoff(envelope.attempts))
    envelope.save()
    for dte in _dtes(envelope):
        note(dte, f"Intento {envelope.attempts} fallido, se reintentará: {error.message}")
    return Step("retry", error.message)


@transaction.atomic
def _reject_envelope(envelope: Envelope, code: str, glosa: str) -> Step:
    envelope = Envelope.objects.select_for_update().get(pk=envelope.pk)
    envelope.status = Status.REJECTED
    envelope.sii_estado, envelope.sii_glosa = code[:16], glosa
    envelope.next_attempt_at = None
    envelope.save()
    for dte in _dtes(envelope):
        move(dte, DteStatus.REJECTED, f"Rechazado por el SII: {glosa}", code=code)
    return Step("rejected", f"{code}: {glosa}")


# ---------------------------------------------------------------- status


def envelope_refresh(envelope_id: int) -> Step:
    """Ask the SII how a sent envelope is doing and record its verdicts. Safe to repeat."""
    with transaction.atomic():
        envelope = Envelope.objects.select_for_update().get(pk=envelope_id)
        if envelope.status != Status.SENT:
            return Step(envelope.status)
        envelope.polls += 1
        envelope.save(update_fields=["polls"])
    certificate = load_certificate(envelope.certificate_id, envelope.certificate.fingerprint)
    client = config.client()
    boleta = _is_boleta(envelope)
    try:
        token = auth.get_token(client, certificate, env=settings.SII_ENV, boleta=boleta)
        if not envelope.track_id:
            return _follow_documents(envelope, client, certificate, token)
        if boleta:
            status = client.boleta_status(
                rut_company=envelope.company.rut, track_id=envelope.track_id, token=token
            )
        else:
            status = client.get_est_up(
                rut_company=envelope.company.rut, track_id=envelope.track_id, token=token
            )
    except SiiTokenError as exc:
        auth.forget_token(certificate, env=settings.SII_ENV, boleta=boleta)
        return _poll_later(envelope, exc.message, retryable=True)
    except SiiRetryableError as exc:
        return _poll_later(envelope, exc.message, retryable=True)
    except SiiError as exc:
        with transaction.atomic():
            return _needs_attention(
                Envelope.objects.select_for_update().get(pk=envelope.pk), exc.message
            )
    if status.outcome is Outcome.IN_PROGRESS:
        return _poll_later(envelope, f"{status.estado} {status.glosa}".strip(), retryable=False)
    if status.outcome is Outcome.MIXED:
        return _decide_mixed(envelope, status, client, certificate, token)
    return _decide_all(envelope, status)


@transaction.atomic
def _poll_later(envelope: Envelope, reason: str, *, retryable: bool) -> Step:
    envelope = Envelope.objects.select_for_update().get(pk=envelope.pk)
    if envelope.polls >= settings.SII_MAX_POLLS:
        return _needs_attention(
            envelope, f"Sin veredicto del SII tras {envelope.polls} consultas: {reason}"
        )
    delay = backoff(envelope.polls) if retryable else settings.SII_POLL_INTERVAL
    envelope.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    envelope.last_error = reason if retryable else ""
    envelope.save()
    return Step("in_progress", reason)


def _counts_text(status: EnvelopeStatus) -> str:
    return "; ".join(
        f"tipo {c.tipo}: {c.informados} informados, {c.aceptados} aceptados, "
        f"{c.rechazados} rechazados, {c.reparos} con reparos"
        for c in status.counts
    )


VERDICT = {
    Outcome.ACCEPTED: DteStatus.ACCEPTED,
    Outcome.ACCEPTED_WITH_OBJECTIONS: DteStatus.ACCEPTED_WITH_OBJECTIONS,
    Outcome.REJECTED: DteStatus.REJECTED,
}


@transaction.atomic
def _decide_all(envelope: Envelope, status: EnvelopeStatus) -> Step:
    envelope = Envelope.objects.select_for_update().get(pk=envelope.pk)
    envelope.sii_estado, envelope.sii_glosa = status.estado[:16], status.glosa
    processed = status.estado in ("EPR", "RPR", "RLV")
    envelope.status = Status.PROCESSED if processed else Status.REJECTED
    envelope.next_attempt_at = None
    envelope.save()
    verdict = VERDICT[status.outcome]
    detail = _counts_text(status)
    message = f"{status.glosa}. {detail}".strip(". ") if detail else status.glosa
    for dte in _dtes(envelope):
        move(dte, verdict, message or status.estado, code=status.estado)
    return Step(verdict.value, f"{status.estado} {status.glosa}".strip())


def _decide_mixed(envelope: Envelope, status: EnvelopeStatus, client, certificate, token) -> Step:
    """Some documents accepted, some rejected: boletas come with their list; other envelopes
    are resolved document by document with QueryEstDte."""
    per_folio = {(d.tipo, d.folio): d for d in status.documents}
    verdicts: dict[int, tuple[DteStatus, str, str]] = {}
    for dte in envelope.dtes.all():
        found = per_folio.get((dte.tipo_dte, dte.folio))
        if found is not None:
            objected = found.estado in ("RPR", "RLV")
            verdict = DteStatus.ACCEPTED_WITH_OBJECTIONS if objected else DteStatus.REJECTED
            verdicts[dte.pk] = (verdict, found.estado, found.glosa or found.estado)
        elif _is_boleta(envelope):
            verdicts[dte.pk] = (DteStatus.ACCEPTED, status.estado, "Aceptado")
        else:
            state = _document_state(envelope, dte, client, certificate, token)
            verdict = DteStatus.ACCEPTED if state is DocumentState.ACCEPTED else DteStatus.REJECTED
            verdicts[dte.pk] = (verdict, status.estado, _counts_text(status))
    with transaction.atomic():
        locked = Envelope.objects.select_for_update().get(pk=envelope.pk)
        locked.status = Status.PROCESSED
        locked.sii_estado, locked.sii_glosa = status.estado[:16], status.glosa
        locked.next_attempt_at = None
        locked.save()
        for dte in _dtes(locked):
            verdict, code, message = verdicts[dte.pk]
            move(dte, verdict, message, code=code)
    return Step("mixed", _counts_text(status))


def _follow_documents(envelope: Envelope, client, certificate, token: str) -> Step:
    """An envelope recovered without track id: follow each document by itself."""
    states = {
        dte.pk: _document_state(envelope, dte, client, certificate, token)
        for dte in envelope.dtes.all()
    }
    if any(s is DocumentState.UNKNOWN for s in states.values()):
        return _poll_later(envelope, "El SII aún no informa todos los documentos.", retryable=False)
    with transaction.atomic():
        locked = Envelope.objects.select_for_update().get(pk=envelope.pk)
        locked.status = Status.PROCESSED
        locked.next_attempt_at = None
        locked.save()
        for dte in _dtes(locked):
            accepted = states[dte.pk] is DocumentState.ACCEPTED
            verdict = DteStatus.ACCEPTED if accepted else DteStatus.REJECTED
            move(dte, verdict, "Estado consultado documento por documento.")
    return Step("processed")


# ---------------------------------------------------------------- the beat tick


def outbox_claim(now: datetime | None = None) -> tuple[list[int], list[int]]:
    """Envelopes due for an upload (queued and due, or stuck uploading past the grace) and for
    a status poll, each claimed for SII_DISPATCH_LEASE seconds: the tick dispatches a row once,
    and dispatches it again only if its task got lost (the lease ran out with nothing done).
    """
    now = now or timezone.now()
    lease = now + timedelta(seconds=settings.SII_DISPATCH_LEASE)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    stuck = now - timedelta(seconds=settings.SII_UPLOAD_GRACE)
    with transaction.atomic():
        rows = Envelope.objects.select_for_update(skip_locked=True)
        to_send = list(
            rows.filter(due)
            .filter(
                Q(status=Status.QUEUED) | Q(status=Status.UPLOADING, upload_started_at__lte=stuck)
            )
            .values_list("pk", flat=True)
        )
        to_poll = list(rows.filter(due, status=Status.SENT).values_list("pk", flat=True))
        Envelope.objects.filter(pk__in=to_send + to_poll).update(next_attempt_at=lease)
    return sorted(to_send), sorted(to_poll)
