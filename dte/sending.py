"""Sending envelopes to the SII and following them to a verdict (ARCHITECTURE.md flow 2).

The envelope row is the outbox; its states and transitions are dte.core.domain.EnvelopeState
and ENVELOPE_TRANSITIONS, and every step is recorded (EnvelopeEvent, DteEvent) with the SII's
code and glosa. The state is committed *before* any call to the SII, so a crash never leaves
an upload nobody knows about. Three kinds of outcome are kept apart:

- **The SII never judged the documents**: transport failures, maintenance, token errors,
  upload STATUS 1/2/3/5/6/7/8/-1, HTTP errors, envelope states RSC/RFR/RCT/RCO/VOF. Transient
  ones are retried with backoff (honouring Retry-After); refusals and exhausted retries leave
  the envelope NEEDS_ATTENTION with the SII's reason. Its signed documents keep their folios:
  an admin retries the envelope, or re-envelopes them once the cause is fixed
  (dte.services.envelope_reenvelope).
- **The SII already has it**: STATUS 99 (with its earlier track id, which is then followed, or
  without, when each document is followed with QueryEstDte), the envelope state RPT, or a
  document rejected in this envelope that QueryEstDte reports accepted: followed, never
  rejected.
- **A verdict on documents**: EPR with its counts, RCH, RPR/RLV. Only this rejects a document.

An upload without an answer (a timeout, a server error after sending, a worker that died
between the upload and saving the track id) makes the envelope UNCERTAIN: its documents are
looked up until the SII reports them or SII_RECOVERY_WINDOW has passed since that upload (the
SII answers FAU until it has processed an envelope); only then is the same envelope uploaded
again, and a repeat is followed, not rejected. A failed lookup is a retry, never a verdict.

Tasks (dte.tasks) and the beat tick call these functions with ids; they are safe to repeat.
"""

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dte import dispatch
from dte.core.domain import DteStatus, EnvelopeState, can_transition, envelope_can_transition
from dte.keyring import load_certificate
from dte.models import Dte, DteEvent, DteEventKind, Envelope, EnvelopeEvent
from dte.sii import auth, config
from dte.sii.errors import (
    SiiAlreadyReceived,
    SiiError,
    SiiRefused,
    SiiRetryableError,
    SiiTokenError,
)
from dte.sii.responses import DocumentState, EnvelopeStatus, Outcome, readable
from erp.services import user_or_none

log = logging.getLogger(__name__)
Status = EnvelopeState


class InvalidTransition(RuntimeError):
    """A document or envelope was asked to move to a state its current state does not lead to."""


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
    DteEvent.objects.create(
        dte=dte, status=dte.status, kind=DteEventKind.NOTE, sii_code=code[:16], message=message
    )


def envelope_move(
    envelope: Envelope, new: EnvelopeState, message: str, *, code: str = "", actor=None
) -> None:
    """Change a (locked) envelope's state after checking the transition, and record why. The
    caller saves the envelope's other fields; the state is saved here."""
    current = EnvelopeState(envelope.status)
    if current != new and not envelope_can_transition(current, new):
        raise InvalidTransition(f"Envelope {envelope.pk}: {current} → {new} is not allowed")
    envelope.status = new
    envelope.save(update_fields=OUTBOX_FIELDS)  # never the signed XML again
    EnvelopeEvent.objects.create(
        envelope=envelope,
        from_status=current,
        status=new,
        sii_code=code[:16],
        message=message,
        actor=user_or_none(actor),
    )


# What the outbox changes on an envelope (its signed XML is written once, when it is made).
OUTBOX_FIELDS = (
    "status",
    "track_id",
    "follow_documents",
    "attempts",
    "polls",
    "next_attempt_at",
    "upload_started_at",
    "uncertain_since",
    "sent_at",
    "sii_estado",
    "sii_glosa",
    "last_error",
    "replaced_by",
)


def _locked(envelope_id: int) -> Envelope:
    return (
        Envelope.objects.select_for_update(of=("self",))
        .select_related("company", "certificate")
        .get(pk=envelope_id)
    )


def _dtes(envelope: Envelope) -> list[Dte]:
    return list(envelope.dtes.select_for_update().order_by("pk"))


def _is_boleta(envelope: Envelope) -> bool:
    return envelope.kind == Envelope.Kind.ENVIO_BOLETA


def _dispatch_email(dte_id: int) -> None:
    """Once accepted, the receiver gets the document by e-mail (after the commit)."""
    if settings.DTE_EMAIL_ON_ACCEPT:
        dispatch.after_commit("dte.dte_email", dte_id)


def _after(seconds: float) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


# ---------------------------------------------------------------- queueing


def envelope_enqueue(envelope: Envelope, *, actor=None, dtes: list[Dte] | None = None) -> None:
    """Put a freshly signed envelope in the outbox; it goes to the SII after the commit.

    `dtes`: its documents, already locked by the caller (a batch that just wrote them); else
    they are locked here. Their moves to QUEUED are written in two statements, not two each."""
    if dtes is None:
        dtes = _dtes(envelope)
        envelope = _locked(envelope.pk)
    moving = [d for d in dtes if d.status != DteStatus.QUEUED]
    for dte in moving:
        if not can_transition(DteStatus(dte.status), DteStatus.QUEUED):
            raise InvalidTransition(f"DTE {dte.pk}: {dte.status} → queued is not allowed")
        dte.status = DteStatus.QUEUED
    if moving:
        Dte.objects.filter(pk__in=[d.pk for d in moving]).update(status=DteStatus.QUEUED)
        user = user_or_none(actor)
        DteEvent.objects.bulk_create(
            DteEvent(dte=d, status=DteStatus.QUEUED, message=QUEUED_MESSAGE, actor=user)
            for d in moving
        )
    schedule(envelope, "dte.envelope_send", 0.0)
    envelope_move(envelope, Status.QUEUED, "Sobre firmado, en cola para el SII.", actor=actor)


QUEUED_MESSAGE = "En cola para enviarse al SII."


def schedule(envelope: Envelope, task: str, delay: float) -> None:
    """When the envelope is next due (the caller saves it), and, where tasks follow it, its task
    queued for then. A wait up to SII_SCHEDULE_AHEAD is queued as a countdown task and the row
    leased for SII_DISPATCH_LEASE past it, so the beat tick does not dispatch it a second time
    (it does once the lease runs out: the task was lost). Longer waits are left to the tick."""
    envelope.next_attempt_at = _after(delay)
    if not settings.SII_AUTO_SEND:
        return
    if settings.CELERY_TASK_ALWAYS_EAGER:
        if task == "dte.envelope_send" and delay <= 0:
            dispatch.after_commit(task, envelope.pk)  # it follows the envelope in process
        return
    if delay <= settings.SII_SCHEDULE_AHEAD:
        envelope.next_attempt_at = _after(delay + settings.SII_DISPATCH_LEASE)
        dispatch.after_commit(task, envelope.pk, delay=delay)


def poll_delay(polls: int) -> float:
    """Seconds before the next question about an envelope the SII is processing, after `polls`
    questions: soon after the upload (SII_POLL_FIRST), doubling up to SII_POLL_INTERVAL, then
    slower the longer it takes (×2 every ten polls, up to ×16)."""
    fast = settings.SII_POLL_FIRST * 2 ** max(polls, 0)
    if fast < settings.SII_POLL_INTERVAL:
        return fast
    return settings.SII_POLL_INTERVAL * min(2 ** (polls // 10), 16)


def collect_soon(company_id: int) -> None:
    """Documents issued one by one travel together: the first issue of a window asks for the
    company's signed documents to be enveloped SII_ENVELOPE_WINDOW seconds after its commit
    (dte.services.envelope_collect); the issues after it within the window ride along, so under
    load there is one collection, and one envelope, per window."""
    if _claim_window(company_id):
        dispatch.after_commit("dte.envelope_collect", company_id, False, delay=_window())


def collect_again(company_id: int) -> None:
    """After a collection: one more a window later, unless an issue has asked for one already.
    It catches an issue that committed just after the collection looked."""
    if _claim_window(company_id):
        dispatch.run_task("dte.envelope_collect", company_id, True, delay=_window())


def _window() -> float:
    return settings.SII_ENVELOPE_WINDOW


def _claim_window(company_id: int) -> bool:
    """The first to ask within a window gets to schedule its collection (an atomic add in the
    shared cache; it expires with the window)."""
    return cache.add(f"dte:collect:{company_id}", 1, timeout=max(1, round(_window())))


def queue_refresh(envelope_id: int) -> None:
    """Ask the SII about an envelope in a task, after the commit (staff's "Actualizar")."""
    dispatch.after_commit("dte.envelope_refresh", envelope_id)


def retry_resumes(envelope: Envelope) -> EnvelopeState:
    """Where an admin's retry takes an envelope that needs attention: poll the SII again when
    it has it, ask it again when an upload went unanswered, else upload again."""
    if envelope.track_id or envelope.follow_documents:
        return Status.SENT
    if envelope.uncertain_since is not None:
        return Status.UNCERTAIN
    return Status.QUEUED


@transaction.atomic
def envelope_retry(envelope_id: int, *, actor) -> Envelope:
    """An admin's retry of an envelope that needs attention: attempts and polls start over."""
    envelope = _locked(envelope_id)
    if envelope.status != Status.NEEDS_ATTENTION:
        return envelope
    resume = retry_resumes(envelope)
    document_state = DteStatus.SENT if resume == Status.SENT else DteStatus.QUEUED
    for dte in _dtes(envelope):
        if dte.status == DteStatus.NEEDS_ATTENTION:
            move(dte, document_state, "Reintento solicitado por un administrador.", actor=actor)
    envelope.attempts = envelope.polls = 0
    envelope.next_attempt_at = timezone.now()
    envelope.last_error = ""
    envelope_move(envelope, resume, "Reintento solicitado por un administrador.", actor=actor)
    if resume == Status.QUEUED:
        dispatch.after_commit("dte.envelope_send", envelope.pk)
    else:
        dispatch.after_commit("dte.envelope_refresh", envelope.pk)
    return envelope


def _needs_attention(envelope: Envelope, reason: str, *, code: str = "") -> Step:
    """The envelope (locked) and its undecided documents wait for a person, with the reason."""
    envelope.last_error = reason
    envelope.next_attempt_at = None
    envelope_move(envelope, Status.NEEDS_ATTENTION, reason, code=code)
    for dte in _dtes(envelope):
        if can_transition(DteStatus(dte.status), DteStatus.NEEDS_ATTENTION):
            move(dte, DteStatus.NEEDS_ATTENTION, f"Requiere atención: {reason}", code=code)
    log.warning("envelope %s needs attention: %s", envelope.pk, reason)
    return Step("needs_attention", reason)


def _not_judged(envelope_id: int, code: str, glosa: str) -> Step:
    reason = (
        f"El SII no revisó los documentos ({code}: {readable(glosa)}). Corrija la causa y "
        "reintente, o reensobre los documentos: conservan sus folios."
    )
    with transaction.atomic():
        envelope = _locked(envelope_id)
        envelope.sii_estado, envelope.sii_glosa = code[:16], readable(glosa)
        return _needs_attention(envelope, reason, code=code)


# ---------------------------------------------------------------- upload


def _claim_for_upload(envelope_id: int, now: datetime) -> Envelope | Step:
    """Lock the row and commit UPLOADING before anything leaves this machine."""
    with transaction.atomic():
        envelope = _locked(envelope_id)
        if envelope.status != Status.QUEUED:
            return Step(envelope.status)
        env = envelope.company.sii_environment
        if env not in settings.SII_ENVIRONMENTS:
            return _needs_attention(envelope, str(config.EnvironmentNotAllowed(env)))
        envelope.upload_started_at = now
        envelope.attempts += 1
        envelope_move(envelope, Status.UPLOADING, f"Subida N° {envelope.attempts} al SII.")
        return envelope


def envelope_send(envelope_id: int, *, now: datetime | None = None) -> Step:
    """Upload one queued envelope, once. Safe to call again at any time."""
    now = now or timezone.now()
    claim = _claim_for_upload(envelope_id, now)
    if isinstance(claim, Step):
        return claim
    envelope = claim
    certificate = load_certificate(envelope.certificate_id, envelope.certificate.fingerprint)
    env = envelope.company.sii_environment
    client = config.client(env)
    boleta = _is_boleta(envelope)
    try:
        token = auth.get_token(client, certificate, env=env, boleta=boleta)
        upload = client.boleta_upload if boleta else client.upload
        result = upload(
            bytes(envelope.xml),
            rut_sender=certificate.rut or "",
            rut_company=envelope.company.rut,
            filename=f"{envelope.kind}-{envelope.company.rut}-{envelope.pk}.xml",
            token=token,
        )
    except SiiTokenError as exc:
        auth.forget_token(certificate, env=env, boleta=boleta)
        return _upload_failed(envelope.pk, exc, delivered=False)
    except SiiRetryableError as exc:
        return _upload_failed(envelope.pk, exc, delivered=bool(exc.maybe_delivered))
    except SiiAlreadyReceived as exc:
        message = f"El SII ya había recibido este sobre ({exc.glosa}); se siguen sus documentos."
        return _mark_sent(envelope.pk, track_id="", message=message, follow_documents=True)
    except SiiRefused as exc:
        return _not_judged(envelope.pk, exc.code, exc.glosa)
    except SiiError as exc:  # an answer nobody can read, after the file was sent
        retry = SiiRetryableError(exc.message, maybe_delivered=True)
        return _upload_failed(envelope.pk, retry, delivered=True)
    if result.repeated:
        message = (
            f"El SII ya había recibido este archivo: se sigue su envío original "
            f"(track id {result.track_id})."
        )
    else:
        message = f"Enviado al SII (track id {result.track_id}). {_received_at(result.timestamp)}"
    return _mark_sent(envelope.pk, track_id=result.track_id, message=message)


def _received_at(timestamp: str) -> str:
    """The SII's reception stamp ("2026-12-06 01:59:42", or the boleta API's "06/12/2026
    01:59:42") as staff read dates (dd-mm-aaaa)."""
    for pattern in ("%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M:%S"):
        try:
            moment = datetime.strptime(timestamp.strip(), pattern)  # noqa: DTZ007 - SII's local time
        except ValueError:
            continue
        return f"Recibido el {moment:%d-%m-%Y %H:%M}."
    return f"Recibido el {timestamp}." if timestamp else ""


@transaction.atomic
def _mark_sent(
    envelope_id: int, *, track_id: str, message: str, follow_documents: bool = False
) -> Step:
    envelope = _locked(envelope_id)
    envelope.track_id = track_id or envelope.track_id
    envelope.follow_documents = follow_documents
    envelope.sent_at = timezone.now()
    envelope.polls = 0
    envelope.last_error = ""
    envelope.uncertain_since = None
    schedule(envelope, "dte.envelope_refresh", poll_delay(0))
    code = "99" if follow_documents else ("0" if track_id else "")
    envelope_move(envelope, Status.SENT, message, code=code)
    for dte in _dtes(envelope):
        if can_transition(DteStatus(dte.status), DteStatus.SENT):
            move(dte, DteStatus.SENT, message, code=code)
    return Step("sent", track_id)


@transaction.atomic
def _upload_failed(envelope_id: int, error: SiiRetryableError, *, delivered: bool) -> Step:
    envelope = _locked(envelope_id)
    if delivered:
        # The SII may have the file: ask it before any new upload.
        envelope.uncertain_since = envelope.uncertain_since or envelope.upload_started_at
        envelope.last_error = error.message
        schedule(
            envelope,
            "dte.envelope_refresh",
            max(settings.SII_POLL_INTERVAL, error.retry_after or 0),
        )
        message = f"Subida sin respuesta ({error.message}); se consultará al SII antes de subir."
        envelope_move(envelope, Status.UNCERTAIN, message)
        return Step("uncertain", error.message)
    if envelope.attempts >= settings.SII_MAX_ATTEMPTS:
        return _needs_attention(
            envelope, f"{envelope.attempts} intentos sin éxito. Último error: {error.message}"
        )
    envelope.last_error = error.message
    schedule(envelope, "dte.envelope_send", max(backoff(envelope.attempts), error.retry_after or 0))
    envelope_move(envelope, Status.QUEUED, f"Intento {envelope.attempts} fallido: {error.message}")
    for dte in _dtes(envelope):
        note(dte, f"Intento {envelope.attempts} fallido, se reintentará: {error.message}")
    return Step("retry", error.message)


# ---------------------------------------------------------------- asking the SII


def _document_state(envelope: Envelope, dte: Dte, client, certificate, token: str):
    """The SII's word on one document (QueryEstDte, or the boleta status). Raises SiiError when
    the lookup fails: a failed lookup is never a verdict."""
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
    return status


def _start_poll(envelope_id: int, expected: EnvelopeState) -> Envelope | None:
    with transaction.atomic():
        envelope = _locked(envelope_id)
        if envelope.status != expected:
            return None
        envelope.polls += 1
        envelope.save(update_fields=["polls"])
        return envelope


def envelope_refresh(envelope_id: int) -> Step:
    """Ask the SII how an envelope it may have is doing, and record what it says. Safe to
    repeat: a SENT envelope is polled, an UNCERTAIN one is looked for."""
    status = Envelope.objects.filter(pk=envelope_id).values_list("status", flat=True).first()
    if status == Status.UNCERTAIN:
        return _recover(envelope_id)
    if status == Status.SENT:
        return _poll(envelope_id)
    return Step(status or "missing")


def _session(envelope: Envelope):
    """The client of the company's SII environment, the signer and a token."""
    env = envelope.company.sii_environment
    try:
        client = config.client(env)
    except config.EnvironmentNotAllowed as exc:
        raise SiiRefused("AMBIENTE", str(exc)) from exc
    certificate = load_certificate(envelope.certificate_id, envelope.certificate.fingerprint)
    token = auth.get_token(client, certificate, env=env, boleta=_is_boleta(envelope))
    return client, certificate, token


def _sii_failed(envelope: Envelope, exc: SiiError) -> Step:
    """A failed call while asking: a token to renew, a retry, or a refusal for a person."""
    if isinstance(exc, SiiTokenError):
        certificate = load_certificate(envelope.certificate_id, envelope.certificate.fingerprint)
        env = envelope.company.sii_environment
        auth.forget_token(certificate, env=env, boleta=_is_boleta(envelope))
    if isinstance(exc, SiiRefused):
        return _not_judged(envelope.pk, exc.code, exc.glosa)
    retry_after = exc.retry_after if isinstance(exc, SiiRetryableError) else None
    return _poll_later(envelope.pk, exc.message, retryable=True, retry_after=retry_after)


def _recover(envelope_id: int) -> Step:
    """An upload went unanswered: does the SII have the documents? Upload again only once the
    SII has had SII_RECOVERY_WINDOW to process it and still reports none of them."""
    envelope = _start_poll(envelope_id, Status.UNCERTAIN)
    if envelope is None:
        return Step("skipped")
    try:
        client, certificate, token = _session(envelope)
        states = [
            _document_state(envelope, dte, client, certificate, token).state
            for dte in envelope.dtes.order_by("pk")
        ]
    except SiiError as exc:
        return _sii_failed(envelope, exc)
    if any(state is not DocumentState.UNKNOWN for state in states):
        message = "Recuperado: el SII ya tenía los documentos; se siguen uno a uno."
        return _mark_sent(envelope.pk, track_id="", message=message, follow_documents=True)
    since = envelope.uncertain_since or envelope.upload_started_at or timezone.now()
    waited = (timezone.now() - since).total_seconds()
    if waited < settings.SII_RECOVERY_WINDOW:
        return _poll_later(
            envelope.pk,
            f"El SII aún no informa los documentos (subidos hace {waited:.0f} s); "
            "se vuelve a consultar antes de subir de nuevo.",
            retryable=False,
        )
    with transaction.atomic():
        locked = _locked(envelope.pk)
        locked.next_attempt_at = timezone.now()
        locked.uncertain_since = None
        message = (
            f"El SII no informa los documentos {waited / 60:.0f} min después de la subida sin "
            "respuesta: se sube de nuevo el mismo sobre."
        )
        envelope_move(locked, Status.QUEUED, message, code="FAU")
    if settings.SII_AUTO_SEND:
        dispatch.after_commit("dte.envelope_send", envelope.pk)
    return Step("queued", message)


def _poll(envelope_id: int) -> Step:
    envelope = _start_poll(envelope_id, Status.SENT)
    if envelope is None:
        return Step("skipped")
    try:
        client, certificate, token = _session(envelope)
        if envelope.follow_documents or not envelope.track_id:
            return _follow_documents(envelope, client, certificate, token)
        if _is_boleta(envelope):
            status = client.boleta_status(
                rut_company=envelope.company.rut, track_id=envelope.track_id, token=token
            )
        else:
            status = client.get_est_up(
                rut_company=envelope.company.rut, track_id=envelope.track_id, token=token
            )
        if status.outcome is Outcome.IN_PROGRESS:
            text = f"{status.estado} {status.glosa}".strip()
            return _poll_later(envelope.pk, text, retryable=False)
        if status.outcome is Outcome.NOT_JUDGED:
            return _not_judged(envelope.pk, status.estado, status.glosa or status.estado)
        if status.outcome is Outcome.REPEATED:
            return _repeated(envelope.pk, status)
        return _decide(envelope, status, client, certificate, token)
    except SiiError as exc:
        return _sii_failed(envelope, exc)


@transaction.atomic
def _poll_later(
    envelope_id: int, reason: str, *, retryable: bool, retry_after: float | None = None
) -> Step:
    envelope = _locked(envelope_id)
    if envelope.polls >= settings.SII_MAX_POLLS:
        return _needs_attention(
            envelope, f"Sin veredicto del SII tras {envelope.polls} consultas: {reason}"
        )
    # Trouble backs off; while the SII processes, soon at first, slower as it takes longer.
    delay = backoff(envelope.polls) if retryable else poll_delay(envelope.polls)
    schedule(envelope, "dte.envelope_refresh", max(delay, retry_after or 0))
    envelope.last_error = reason if retryable else ""
    envelope.save(update_fields=["next_attempt_at", "last_error"])
    return Step("in_progress", reason)


@transaction.atomic
def _repeated(envelope_id: int, status: EnvelopeStatus) -> Step:
    """RPT: the SII received this envelope before. Its documents are followed one by one."""
    envelope = _locked(envelope_id)
    envelope.follow_documents = True
    envelope.sii_estado, envelope.sii_glosa = status.estado[:16], status.glosa
    schedule(envelope, "dte.envelope_refresh", 0.0)
    message = (
        f"El SII informa el envío como repetido ({status.estado}: {status.glosa}); "
        "se sigue cada documento en su envío original."
    )
    envelope_move(envelope, Status.SENT, message, code=status.estado)
    for dte in _dtes(envelope):
        note(dte, message, code=status.estado)
    return Step("repeated", message)


def _counts_text(status: EnvelopeStatus) -> str:
    return "; ".join(
        f"tipo {c.tipo}: {c.informados} informados, {c.aceptados} aceptados, "
        f"{c.rechazados} rechazados, {c.reparos} con reparos"
        for c in status.counts
    )


Verdict = tuple[DteStatus, str, str]  # state, SII code, message


def _decide(envelope: Envelope, status: EnvelopeStatus, client, certificate, token) -> Step:
    """The SII's verdict on the documents. A document the envelope's counts reject is asked
    for by itself first: if the SII holds it accepted (it came in an earlier submission), it
    is accepted, never rejected."""
    detail = _counts_text(status)
    summary = f"{status.glosa}. {detail}".strip(". ") if detail else (status.glosa or status.estado)
    by_folio = {(d.tipo, d.folio): d for d in status.documents}
    verdicts: dict[int, Verdict] = {}
    for dte in envelope.dtes.order_by("pk"):
        if DteStatus(dte.status) not in (DteStatus.SENT, DteStatus.NEEDS_ATTENTION):
            continue
        verdicts[dte.pk] = _verdict(
            envelope, dte, status, by_folio, summary, client, certificate, token
        )
    with transaction.atomic():
        locked = _locked(envelope.pk)
        locked.sii_estado, locked.sii_glosa = status.estado[:16], status.glosa
        locked.next_attempt_at = None
        locked.last_error = ""
        final = Status.REJECTED if status.estado == "RCH" else Status.PROCESSED
        envelope_move(locked, final, summary, code=status.estado)
        for dte in _dtes(locked):
            if dte.pk in verdicts:
                state, code, message = verdicts[dte.pk]
                move(dte, state, message, code=code)
    return Step(status.outcome.value, f"{status.estado} {status.glosa}".strip())


def _verdict(envelope, dte, status, by_folio, summary, client, certificate, token) -> Verdict:
    listed = by_folio.get((dte.tipo_dte, dte.folio))
    if listed is not None and listed.estado in ("RPR", "RLV"):
        return DteStatus.ACCEPTED_WITH_OBJECTIONS, listed.estado, listed.glosa or listed.estado
    if status.outcome is Outcome.ACCEPTED:
        return DteStatus.ACCEPTED, status.estado, summary
    if status.outcome is Outcome.ACCEPTED_WITH_OBJECTIONS:
        return DteStatus.ACCEPTED_WITH_OBJECTIONS, status.estado, summary
    if _is_boleta(envelope) and listed is None and status.documents:
        return DteStatus.ACCEPTED, status.estado, "Aceptado"  # the list names every other one
    # Rejected, or some rejected (MIXED) without a list: the SII's word on this document.
    own = _document_state(envelope, dte, client, certificate, token)
    if own.state is DocumentState.ACCEPTED:
        message = f"Aceptado: el SII lo tiene registrado ({own.estado}: {own.glosa})."
        return DteStatus.ACCEPTED, own.estado, message
    reason = listed.glosa if listed is not None and listed.glosa else summary
    return DteStatus.REJECTED, (listed.estado if listed else status.estado), reason


def _follow_documents(envelope: Envelope, client, certificate, token: str) -> Step:
    """The SII has the documents but there is no track id to poll: ask for each one, record
    each verdict as it comes, and finish the envelope once all have one."""
    pending = [
        dte
        for dte in envelope.dtes.order_by("pk")
        if DteStatus(dte.status) in (DteStatus.SENT, DteStatus.QUEUED)
    ]
    found = {dte.pk: _document_state(envelope, dte, client, certificate, token) for dte in pending}
    with transaction.atomic():
        locked = _locked(envelope.pk)
        waiting = 0
        for dte in _dtes(locked):
            status = found.get(dte.pk)
            if status is None:
                continue
            if status.state is DocumentState.UNKNOWN:
                waiting += 1
                continue
            accepted = status.state is DocumentState.ACCEPTED
            verdict = DteStatus.ACCEPTED if accepted else DteStatus.REJECTED
            move(dte, verdict, f"{status.estado}: {status.glosa}", code=status.estado)
        if not waiting:
            locked.next_attempt_at = None
            locked.last_error = ""
            envelope_move(locked, Status.PROCESSED, "Cada documento tiene el veredicto del SII.")
            return Step("processed")
    return _poll_later(
        envelope.pk, f"El SII aún no informa {waiting} documento(s).", retryable=False
    )


# ---------------------------------------------------------------- without a worker


def follow_in_process(envelope_id: int, step: Step) -> Step:
    """No worker and no beat (a laptop run, tasks eager): after an upload, keep following the
    envelope while its next question is due within SII_INPROCESS_FOLLOW seconds, sleeping
    until then (never a busy loop). What is left is for `manage.py dte_outbox` or a worker."""
    import time

    deadline = time.monotonic() + settings.SII_INPROCESS_FOLLOW
    while step.status in ("sent", "in_progress", "uncertain", "repeated", "retry", "queued"):
        due = Envelope.objects.filter(pk=envelope_id).values_list("next_attempt_at", flat=True)
        when = due.first()
        wait = max(0.0, (when - timezone.now()).total_seconds()) if when else 0.0
        if time.monotonic() + wait > deadline:
            break
        time.sleep(wait)
        current = Envelope.objects.filter(pk=envelope_id).values_list("status", flat=True).first()
        if current == Status.QUEUED:
            step = envelope_send(envelope_id)
        elif current in (Status.SENT, Status.UNCERTAIN):
            step = envelope_refresh(envelope_id)
        else:
            break
    return step


# ---------------------------------------------------------------- the beat tick


def outbox_claim(now: datetime | None = None) -> tuple[list[int], list[int]]:
    """Envelopes due for an upload and for a question to the SII (polls of SENT ones, lookups
    of UNCERTAIN ones, and UPLOADING ones past SII_UPLOAD_GRACE: a worker died mid-upload, so
    they become UNCERTAIN), each claimed for SII_DISPATCH_LEASE seconds: the tick dispatches a
    row once, and again only if its task got lost (the lease ran out with nothing done)."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=settings.SII_DISPATCH_LEASE)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    stuck = now - timedelta(seconds=settings.SII_UPLOAD_GRACE)
    with transaction.atomic():
        rows = Envelope.objects.select_for_update(skip_locked=True)
        for envelope in rows.filter(status=Status.UPLOADING, upload_started_at__lte=stuck):
            envelope.uncertain_since = envelope.upload_started_at
            envelope.next_attempt_at = now
            envelope_move(
                envelope,
                Status.UNCERTAIN,
                "La subida quedó sin respuesta (el proceso se interrumpió); se consulta al SII.",
            )
        to_send = list(rows.filter(due, status=Status.QUEUED).values_list("pk", flat=True))
        to_poll = list(
            rows.filter(due, status__in=(Status.SENT, Status.UNCERTAIN)).values_list(
                "pk", flat=True
            )
        )
        Envelope.objects.filter(pk__in=to_send + to_poll).update(next_attempt_at=lease)
    return sorted(to_send), sorted(to_poll)


def stranded_documents(now: datetime | None = None) -> dict[int, list[int]]:
    """Signed documents without an envelope for longer than SII_ENVELOPE_GRACE (a batch whose
    envelope failed), by company: the beat tick wraps and sends them."""
    now = now or timezone.now()
    older = now - timedelta(seconds=settings.SII_ENVELOPE_GRACE)
    rows = Dte.objects.filter(
        status=DteStatus.SIGNED, envelope__isnull=True, created_at__lte=older
    ).values_list("company_id", "pk")
    grouped: dict[int, list[int]] = {}
    for company_id, pk in rows.order_by("pk")[:5000]:
        grouped.setdefault(company_id, []).append(pk)
    return grouped
