"""Receiving suppliers' DTEs (DOMAIN.md §12): intake from the exchange mailbox, uploads, the
API and the command line; the answers to the supplier (RecepcionEnvio, ResultadoDTE,
EnvioRecibos); the SII's confirmation (QueryEstDte) and the legally binding acceptance or claim
at the SII's RCV (registro de aceptación o reclamo, 8 calendar days from the SII's reception);
and the purchase booked from an accepted document.

Intake never raises on what a supplier sent: each file becomes a ReceivedEnvelope with its
EstadoRecepEnv and a RespuestaDTE, and each document a ReceivedDte (refused ones with their
reasons). Files are read outside the transaction; each file is stored in its own transaction,
so a delivery of a thousand files holds neither a long lock nor all of them in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from dte import dispatch, selectors, vault
from dte.core import exchange, intake
from dte.core.intake import IncomingFile
from dte.keyring import load_certificate
from dte.mailbox import MailboxConfig, MailboxError, fetch_unseen, mark_seen
from dte.models import (
    CommercialResult,
    ExchangeMailbox,
    IntakeBatch,
    IntakeBatchStatus,
    IntakeSource,
    ReceivedDte,
    ReceivedDteEvent,
    ReceivedEnvelope,
    ReceivedEventKind,
    ReceivedStatus,
    SiiConfirmation,
)
from dte.sii import auth, config
from dte.sii.errors import SiiError, SiiTokenError
from dte.sii_keys import verification_keys
from erp import errors as erp_errors
from erp.doctypes import PURCHASE_TYPES, codes
from erp.errors import DomainError
from erp.models import (
    ClosedPeriod,
    Company,
    Partner,
    PurchaseDocument,
    PurchaseDocumentLine,
    PurchaseDocumentReference,
    PurchaseSource,
    PurchaseState,
)
from erp.periods import month_start
from erp.services import partner_create, period_guard, purchase_document_create

log = logging.getLogger(__name__)

CLAIM_DAYS = 8  # Ley 19.983 art. 3: claims within 8 calendar days of the SII's reception
WARN_DAYS = 2
# The types the RCV takes acceptances and claims for (facturas and the liquidación-factura);
# notas and guías are answered to the supplier only.
RCV_TYPES = codes(lambda d: d.rcv_acceptance)
# What the receiver books as a purchase: a factura de compra (46) is issued by the buyer, so
# receiving one means this company sold; guías (52) move goods, not VAT.
BOOKED_TYPES = frozenset(PURCHASE_TYPES) - {46}
CLAIM_ACTIONS = {
    "RCD": "Reclamo al contenido del documento",
    "RFP": "Reclamo por falta parcial de mercaderías",
    "RFT": "Reclamo por falta total de mercaderías",
}
ACCEPT = "ACD"
RCV_ALREADY_RECORDED = 7  # codResp: the event was recorded before (a retried request)
GOODS_RECEIVED = "ERM"
RECEIVED_OUTCOMES = ("received", "accepted", "claimed", "duplicate", "refused")

NOT_RECEIVABLE = "not_receivable"
NOT_CONFIRMED = "not_confirmed"
CLAIM_LATE = "claim_too_late"
SII_REFUSED = "sii_refused"


# --- Intake ---------------------------------------------------------------------------------


@dataclass
class DocumentOutcome:
    rut_emisor: str
    tipo_dte: int | None
    folio: int | None
    fecha_emision: date | None
    monto_total: int | None
    status: str  # one of RECEIVED_OUTCOMES
    reasons: list[str] = field(default_factory=list)
    purchase_id: int | None = None
    received_dte_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rut_emisor": self.rut_emisor,
            "tipo_dte": self.tipo_dte,
            "folio": self.folio,
            "fecha_emision": self.fecha_emision.isoformat() if self.fecha_emision else None,
            "monto_total": self.monto_total,
            "status": self.status,
            "reasons": self.reasons,
            "purchase_id": self.purchase_id,
            "id": self.received_dte_id,
        }


@dataclass
class EnvelopeOutcome:
    name: str
    estado: int
    glosa: str
    envelope_id: int | None
    response_xml: bytes | None
    response_filename: str
    repeated: bool = False
    documents: list[DocumentOutcome] = field(default_factory=list)


@dataclass
class IntakeResult:
    envelopes: list[EnvelopeOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def documents(self) -> list[DocumentOutcome]:
        return [d for e in self.envelopes for d in e.documents]

    @property
    def any_refused(self) -> bool:
        return (
            bool(self.problems)
            or any(
                e.estado not in (0, exchange.EstadoRecepEnv.ARCHIVO_REPETIDO)
                for e in self.envelopes
            )
            or any(d.status == "refused" for d in self.documents)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "documents": [d.to_dict() for d in self.documents],
            "files": [
                {"name": e.name, "estado_recep_env": e.estado, "glosa": e.glosa}
                for e in self.envelopes
            ],
            "problems": self.problems,
        }


@dataclass
class _Delivery:
    """What every file of one delivery shares: who receives it, how it came, and the keys and
    the signer, looked up once."""

    company: Company
    source: str
    actor: Any
    sender_email: str
    message_id: str
    now: datetime
    keys: Any
    _signer: Any = None

    def signer(self):
        if self._signer is None:
            self._signer = _signer(self.company, self.now)
        return self._signer


def receive(
    *,
    company: Company,
    uploads: Iterable[tuple[str, bytes]],
    source: str,
    actor=None,
    sender_email: str = "",
    message_id: str = "",
    now: datetime | None = None,
    progress: Callable[[int, EnvelopeOutcome], None] | None = None,
    keep: bool = True,
) -> IntakeResult:
    """Take in what a supplier sent: files (XML or ZIP) from any path, one file at a time.
    `progress(files_done, outcome)` is called after each file; with keep=False the outcomes
    are not gathered in the result (a batch of thousands keeps its counts instead)."""
    result = IntakeResult()
    delivery = _Delivery(
        company=company,
        source=source,
        actor=actor,
        sender_email=sender_email,
        message_id=message_id,
        now=now or timezone.now(),
        keys=verification_keys(),
    )
    done = 0
    for name, data in uploads:
        for item in intake.iter_unpack(name, data):
            if isinstance(item, IncomingFile):
                outcome = _receive_file(delivery, item)
                done += 1
                if progress is not None:
                    progress(done, outcome)
                if keep:
                    result.envelopes.append(outcome)
            else:
                result.problems.append(item)
    return result


BATCH_LEASE_MINUTES = 30  # a running batch not finished by then is taken over by a new run
INLINE_FILES = 20  # uploads of more files are taken in by a task (dte.received_intake_run)
OUTCOMES_KEPT = 5000  # per-document outcomes kept on a batch (the counts cover them all)


def intake_files(uploads: Sequence[tuple[str, bytes]]) -> int:
    return sum(intake.count_files(name, data) for name, data in uploads)


def intake_start(
    *, company: Company, uploads: Sequence[tuple[str, bytes]], source: str, actor=None
) -> IntakeResult | IntakeBatch:
    """Take in an upload: at once when it is small (the result), else as a batch the task
    `dte.received_intake_run` takes in after this commits (follow it on the IntakeBatch)."""
    if not uploads:
        message = "Adjunte al menos un archivo XML o ZIP."
        raise DomainError(erp_errors.INVALID_INPUT, message, {"files": message})
    total = intake_files(uploads)
    if total <= INLINE_FILES:
        return receive(company=company, uploads=uploads, source=source, actor=actor)
    if len(uploads) == 1:
        name, data = uploads[0]
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for upload_name, upload_data in uploads:
                archive.writestr(Path(upload_name).name or "archivo.xml", upload_data)
        name, data = f"{len(uploads)}-archivos.zip", buffer.getvalue()
    safe_name = Path(name).name[:200] or "recibidos.zip"
    with transaction.atomic():
        batch = IntakeBatch.objects.create(
            company=company,
            source=source,
            filename=safe_name,
            size=len(data),
            files_total=total,
            actor=actor if getattr(actor, "pk", None) else None,
        )
        batch.file.save(f"{batch.pk}-{safe_name}", ContentFile(data), save=True)
        dispatch.after_commit("dte.received_intake_run", batch.pk)
    return batch


def stalled_batches(now: datetime | None = None) -> list[int]:
    """Batches queued for more than two minutes (a task lost with a broker restart): the beat
    job dispatches them again."""
    cutoff = (now or timezone.now()) - timedelta(minutes=2)
    return list(
        IntakeBatch.objects.filter(status=IntakeBatchStatus.QUEUED, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:20]
    )


_COUNTERS = {"received": "received", "duplicate": "duplicates", "refused": "refused"}


def intake_batch_run(batch_id: int) -> IntakeBatch | None:
    """The batch's intake (the task's body): file by file, each in its own transaction, the
    progress saved as it goes. Safe to run again: files already taken in come back as repeated
    and store nothing."""
    with transaction.atomic():
        batch = IntakeBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None or batch.finished:
            return batch
        recent = timezone.now() - timedelta(minutes=BATCH_LEASE_MINUTES)
        if (
            batch.status == IntakeBatchStatus.RUNNING
            and batch.started_at
            and (batch.started_at > recent)
        ):
            return batch  # another worker is taking it in (a task delivered twice)
        batch.status = IntakeBatchStatus.RUNNING
        batch.started_at = timezone.now()
        batch.files_done = 0
        batch.save(update_fields=["status", "started_at", "files_done"])
    counts = {"documents": 0, "received": 0, "duplicates": 0, "refused": 0}
    outcomes: list[dict[str, Any]] = []
    last_saved = [time.monotonic()]

    def progress(done: int, outcome: EnvelopeOutcome) -> None:
        for document in outcome.documents:
            counts["documents"] += 1
            counter = _COUNTERS.get(document.status)
            if counter:
                counts[counter] += 1
            if len(outcomes) < OUTCOMES_KEPT:
                outcomes.append(document.to_dict())
        if time.monotonic() - last_saved[0] >= 1.0:
            IntakeBatch.objects.filter(pk=batch_id).update(files_done=done, **counts)
            last_saved[0] = time.monotonic()

    try:
        with batch.file.open("rb") as handle:
            data = handle.read()
        result = receive(
            company=batch.company,
            uploads=[(batch.filename, data)],
            source=batch.source,
            actor=batch.actor,
            progress=progress,
            keep=False,
        )
    except Exception as exc:
        log.exception("intake batch %s failed", batch_id)
        IntakeBatch.objects.filter(pk=batch_id).update(
            status=IntakeBatchStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
            outcomes=outcomes,
            **counts,
        )
        return IntakeBatch.objects.get(pk=batch_id)
    batch.refresh_from_db()
    batch.status = IntakeBatchStatus.DONE
    batch.finished_at = timezone.now()
    batch.files_done = batch.files_total
    batch.outcomes = outcomes
    batch.problems = result.problems[:1000]
    for name, value in counts.items():
        setattr(batch, name, value)
    batch.save()
    with contextlib.suppress(OSError):
        batch.file.delete(save=True)
    return batch


def _previous_file(company: Company, sha256: str) -> ReceivedEnvelope | None:
    pk = (
        ReceivedEnvelope.objects.filter(company=company, sha256=sha256)
        .order_by()
        .values_list("pk", flat=True)
        .first()
    )
    return ReceivedEnvelope.objects.get(pk=pk) if pk is not None else None


def _receive_file(delivery: _Delivery, incoming: IncomingFile) -> EnvelopeOutcome:
    company = delivery.company
    sha256 = hashlib.sha256(incoming.data).hexdigest()
    previous = _previous_file(company, sha256)
    if previous is not None:
        return _repeated_file(previous, incoming.name)
    reading = intake.read_envelope(
        incoming.name, incoming.data, receptor_rut=company.rut, sii_keys=delivery.keys
    )
    try:
        with transaction.atomic():
            return _store(delivery, incoming, reading, sha256)
    except IntegrityError:
        # The same file taken in at the same moment by another path (mail and upload).
        previous = _previous_file(company, sha256)
        if previous is None:
            raise
        return _repeated_file(previous, incoming.name)


def _repeated_file(previous: ReceivedEnvelope, name: str) -> EnvelopeOutcome:
    reason = f"Este archivo ya se recibió el {timezone.localtime(previous.received_at):%d-%m-%Y}."
    documents = [
        DocumentOutcome(
            rut_emisor=d.rut_emisor,
            tipo_dte=d.tipo_dte,
            folio=d.folio,
            fecha_emision=d.fecha_emision,
            monto_total=d.monto_total,
            status="duplicate",
            reasons=[reason],
            purchase_id=d.purchase_id,
            received_dte_id=d.pk,
        )
        for d in previous.documents.all()
    ]
    return EnvelopeOutcome(
        name=name,
        estado=exchange.EstadoRecepEnv.ARCHIVO_REPETIDO,
        glosa=reason,
        envelope_id=previous.pk,
        response_xml=bytes(previous.response_xml) if previous.response_xml else None,
        response_filename=previous.response_filename,
        repeated=True,
        documents=documents,
    )


def _store(
    delivery: _Delivery, incoming: IncomingFile, reading: intake.Envelope, sha256: str
) -> EnvelopeOutcome:
    company, actor = delivery.company, delivery.actor
    source, sender_email, message_id = delivery.source, delivery.sender_email, delivery.message_id
    envelope = ReceivedEnvelope.objects.create(
        company=company,
        source=source,
        name=incoming.name[-255:],
        sha256=sha256,
        kind=reading.kind,
        envio_id=reading.envio_id[:80],
        digest=reading.digest[:100],
        rut_emisor=reading.rut_emisor[:12],
        rut_envia=reading.rut_envia[:12],
        sender_email=sender_email[:254],
        message_id=message_id[:998],
        estado_recep_env=int(reading.estado),
        glosa=reading.glosa,
        xml=incoming.data,
        actor=actor if getattr(actor, "pk", None) else None,
    )
    outcomes: list[DocumentOutcome] = []
    answered: list[tuple[intake.Document, exchange.EstadoRecepDTE, str]] = []
    new_ids: list[int] = []
    for document in reading.documents:
        outcome, estado, glosa, row = _store_document(company, envelope, document, actor)
        outcomes.append(outcome)
        if document.facts is not None:
            answered.append((document, estado, glosa))
        if row is not None and row.status == ReceivedStatus.RECEIVED:
            new_ids.append(row.pk)
    response = _recepcion_response(delivery, envelope, reading, answered)
    if response is not None:
        envelope.response_xml = response
        envelope.save(update_fields=["response_xml"])
        dispatch.after_commit("dte.received_answer_email", "recepcion", envelope.pk)
    for pk in new_ids:
        dispatch.after_commit("dte.received_confirm", pk)
    return EnvelopeOutcome(
        name=incoming.name,
        estado=int(reading.estado),
        glosa=reading.glosa,
        envelope_id=envelope.pk,
        response_xml=response,
        response_filename=envelope.response_filename,
        documents=outcomes,
    )


def _store_document(
    company: Company, envelope: ReceivedEnvelope, document: intake.Document, actor
) -> tuple[DocumentOutcome, exchange.EstadoRecepDTE, str, ReceivedDte | None]:
    facts = document.facts
    if facts is None or not intake.valid_rut(facts.rut_emisor):
        # Nothing to file it under: answered and reported, not stored as a document.
        outcome = DocumentOutcome(
            rut_emisor=envelope.rut_emisor,
            tipo_dte=document.report.tipo_dte,
            folio=document.report.folio,
            fecha_emision=None,
            monto_total=None,
            status="refused",
            reasons=list(document.reasons),
        )
        return outcome, document.estado, "; ".join(document.reasons), None
    estado = document.estado
    reasons = list(document.reasons)
    status = ReceivedStatus.RECEIVED if estado == 0 else ReceivedStatus.REFUSED
    if status == ReceivedStatus.RECEIVED and facts.tipo_dte not in _RECEIVABLE:
        status, estado = ReceivedStatus.REFUSED, exchange.EstadoRecepDTE.OTROS
        reasons = [f"El tipo de documento {facts.tipo_dte} no se recibe por intercambio."]
    existing = (
        ReceivedDte.objects.filter(
            company=company, rut_emisor=facts.rut_emisor, tipo_dte=facts.tipo_dte, folio=facts.folio
        )
        .exclude(status=ReceivedStatus.REFUSED)
        .order_by()
        .only(*_OUTCOME_FIELDS)
        .first()
    )
    if existing is not None and status == ReceivedStatus.RECEIVED:
        reason = (
            f"Documento ya recibido el {timezone.localtime(existing.received_at):%d-%m-%Y}; "
            "no se registra dos veces."
        )
        outcome = _outcome(existing, "duplicate", [reason])
        return outcome, exchange.EstadoRecepDTE.DTE_REPETIDO, reason, None
    glosa = "; ".join(reasons) if reasons else estado.glosa
    fields = dict(
        company=company,
        envelope=envelope,
        tipo_dte=facts.tipo_dte,
        folio=facts.folio,
        rut_emisor=facts.rut_emisor,
        razon_social=facts.razon_social[:100],
        giro=facts.giro[:80],
        correo_emisor=facts.correo[:80],
        fecha_emision=facts.fecha_emision,
        fecha_vencimiento=facts.fecha_vencimiento,
        monto_neto=facts.monto_neto,
        monto_exento=facts.monto_exento,
        iva=facts.iva,
        otros_impuestos=facts.otros_impuestos,
        monto_total=facts.monto_total,
        facts=_facts_json(facts),
        xml=document.xml,
        checks=[check.to_dict() for check in document.report.checks],
        signed_form=document.signed_form,
        estado_recep_dte=int(estado),
        reasons=reasons,
        status=status,
    )
    try:
        with transaction.atomic():  # a savepoint: the same document may arrive by two paths
            row = ReceivedDte.objects.create(**fields)
    except IntegrityError:
        if status != ReceivedStatus.RECEIVED:
            raise
        reason = "Documento recibido al mismo tiempo por otra vía; no se registra dos veces."
        twin = (
            ReceivedDte.objects.filter(
                company=company,
                rut_emisor=facts.rut_emisor,
                tipo_dte=facts.tipo_dte,
                folio=facts.folio,
            )
            .exclude(status=ReceivedStatus.REFUSED)
            .order_by()
            .only(*_OUTCOME_FIELDS)
            .first()
        )
        if twin is None:
            raise
        return (
            _outcome(twin, "duplicate", [reason]),
            exchange.EstadoRecepDTE.DTE_REPETIDO,
            reason,
            None,
        )
    _event(
        row,
        ReceivedEventKind.INTAKE,
        f"Recibido por {envelope.get_source_display().lower()} en {envelope.name}: {glosa}.",
        code=str(int(estado)),
        actor=actor,
    )
    return _outcome(row, status, reasons), estado, glosa, row


_RECEIVABLE = codes(lambda d: d.receivable)


_OUTCOME_FIELDS = (
    "pk",
    "rut_emisor",
    "tipo_dte",
    "folio",
    "fecha_emision",
    "monto_total",
    "purchase_id",
    "received_at",
)


def _outcome(row: ReceivedDte, status: str, reasons: list[str]) -> DocumentOutcome:
    return DocumentOutcome(
        rut_emisor=row.rut_emisor,
        tipo_dte=row.tipo_dte,
        folio=row.folio,
        fecha_emision=row.fecha_emision,
        monto_total=row.monto_total,
        status=status,
        reasons=reasons,
        purchase_id=row.purchase_id,
        received_dte_id=row.pk,
    )


def _facts_json(facts: intake.Facts) -> dict[str, Any]:
    return {
        "direccion": facts.direccion,
        "comuna": facts.comuna,
        "lines": [
            {
                "numero": line.numero,
                "nombre": line.nombre,
                "descripcion": line.descripcion,
                "cantidad": str(line.cantidad) if line.cantidad is not None else None,
                "unidad": line.unidad,
                "precio": str(line.precio) if line.precio is not None else None,
                "descuento": line.descuento,
                "monto": line.monto,
                "exento": line.exento,
            }
            for line in facts.lines
        ],
        "references": [
            {
                "tipo": ref.tipo,
                "folio": ref.folio,
                "fecha": ref.fecha.isoformat() if ref.fecha else None,
                "codigo": ref.codigo,
                "razon": ref.razon,
            }
            for ref in facts.references
        ],
    }


def _event(
    row: ReceivedDte, kind: str, message: str, *, code: str = "", actor=None
) -> ReceivedDteEvent:
    return ReceivedDteEvent.objects.create(
        received_dte=row,
        kind=kind,
        code=code[:16],
        message=message,
        actor=actor if getattr(actor, "pk", None) else None,
    )


# --- Answers to the supplier ----------------------------------------------------------------


def _signer(company: Company, now: datetime):
    row = selectors.certificate_for_signing(company, None, now)
    return load_certificate(row.pk, row.fingerprint)


def answer_caratula(company: Company, rut_recibe: str) -> exchange.Caratula:
    """The carátula of our answers to an issuer: our RUT, theirs, our exchange contact."""
    mailbox = getattr(company, "exchange_mailbox", None)
    address = (mailbox.address if mailbox else "") or company.email
    return exchange.Caratula(
        rut_responde=company.rut,
        rut_recibe=rut_recibe,
        nombre_contacto=company.razon_social[:40],
        mail_contacto=address[:80],
    )


def dte_recibido(company: Company, row: ReceivedDte) -> exchange.DteRecibido:
    return exchange.DteRecibido(
        tipo=row.tipo_dte,
        folio=row.folio,
        fecha_emision=row.fecha_emision,
        rut_emisor=row.rut_emisor,
        rut_receptor=company.rut,
        monto_total=row.monto_total,
    )


def _recepcion_response(
    delivery: _Delivery,
    envelope: ReceivedEnvelope,
    reading: intake.Envelope,
    answered: Sequence[tuple[intake.Document, exchange.EstadoRecepDTE, str]],
) -> bytes | None:
    """The RecepcionEnvio for the supplier, or None (with the reason logged on the envelope)
    when it cannot be made: no certificate to sign with, or nobody to address it to."""
    company, now = delivery.company, delivery.now
    rut_recibe = reading.rut_emisor or reading.rut_envia
    if not rut_recibe:
        return None
    documentos = tuple(
        exchange.RecepcionDte(
            dte=exchange.DteRecibido(
                tipo=document.facts.tipo_dte,
                folio=document.facts.folio,
                fecha_emision=document.facts.fecha_emision,
                rut_emisor=document.facts.rut_emisor,
                rut_receptor=document.facts.rut_receptor or company.rut,
                monto_total=document.facts.monto_total,
            ),
            estado=estado,
            glosa=glosa[:256],
        )
        for document, estado, glosa in answered
        if document.facts is not None and document.facts.tipo_dte in _ANSWERABLE
    )
    recepcion = exchange.RecepcionEnvio(
        nombre_envio=envelope.name[-80:],
        fecha_recepcion=now,
        cod_envio=envelope.pk,
        envio_id=(reading.envio_id or envelope.name)[:80],
        estado=exchange.EstadoRecepEnv(int(reading.estado)),
        glosa=reading.glosa[:256],
        digest=reading.digest or None,
        rut_emisor=reading.rut_emisor or None,
        rut_receptor=reading.rut_receptor or None,
        documentos=documentos,
    )
    try:
        signer = delivery.signer()
        return exchange.build_recepcion_envio(
            recepcion,
            caratula=answer_caratula(company, rut_recibe),
            id_respuesta=envelope.pk,
            timestamp=now,
            key=signer,
        )
    except (DomainError, ValueError) as exc:
        message = getattr(exc, "message", str(exc))
        envelope.glosa = f"{envelope.glosa} · Sin respuesta al proveedor: {message}"[:2000]
        envelope.save(update_fields=["glosa"])
        log.warning("received envelope %s: no RespuestaDTE: %s", envelope.pk, message)
        return None


_ANSWERABLE = exchange.ANSWERABLE_TYPES


def supplier_address(row: ReceivedDte) -> str:
    """Where the supplier reads its answers: its partner's exchange address, else the mail the
    DTE came from, else the Emisor's CorreoEmisor."""
    partner = Partner.objects.filter(company=row.company, rut=row.rut_emisor).first()
    if partner and partner.email_dte:
        return partner.email_dte
    return row.envelope.sender_email or row.correo_emisor


def answer_email(kind: str, object_id: int) -> str:
    """E-mail one answer to the supplier: "recepcion" (an envelope's RespuestaDTE), "resultado"
    (a document's ResultadoDTE) or "recibo" (its EnvioRecibos). Returns the address, or "" when
    the supplier has none. SMTP errors propagate (the task retries)."""
    if kind == "recepcion":
        envelope = ReceivedEnvelope.objects.select_related("company").get(pk=object_id)
        first = envelope.documents.first()
        address = envelope.sender_email or (supplier_address(first) if first else "")
        attachment = bytes(envelope.response_xml or b"")
        filename = envelope.response_filename
        subject = f"Acuse de recibo del envío {envelope.envio_id or envelope.name}"
        company = envelope.company
        rows = list(envelope.documents.all())
    else:
        row = ReceivedDte.objects.select_related("company", "envelope").get(pk=object_id)
        address = supplier_address(row)
        company = row.company
        rows = [row]
        if kind == "resultado":
            attachment = bytes(row.result_xml or b"")
            filename = f"RespuestaDTE--{company.rut}--{row.tipo_dte}-{row.folio}.xml"
            subject = f"Respuesta comercial al DTE {row.tipo_dte} N° {row.folio}"
        else:
            attachment = bytes(row.receipt_xml or b"")
            filename = f"EnvioRecibos--{company.rut}--{row.tipo_dte}-{row.folio}.xml"
            subject = f"Recibo de mercaderías del DTE {row.tipo_dte} N° {row.folio}"
    if not address or not attachment:
        for row in rows:
            _event(
                row, ReceivedEventKind.MAIL, "Respuesta no enviada: el proveedor no tiene correo."
            )
        return ""
    mailbox = getattr(company, "exchange_mailbox", None)
    sender = (mailbox.address if mailbox else "") or company.email or settings.DEFAULT_FROM_EMAIL
    message = EmailMessage(
        subject=f"{subject} · {company.razon_social}",
        body=(
            f"Estimado(a):\n\n{company.razon_social} (RUT {company.rut}) adjunta su respuesta "
            "de intercambio de documentos tributarios electrónicos.\n"
        ),
        from_email=sender,
        to=[address],
    )
    message.attach(filename, attachment, "application/xml")
    message.send(fail_silently=False)
    for row in rows:
        _event(row, ReceivedEventKind.MAIL, f"{subject}: enviado a {address}.")
    return address


# --- The SII: confirmation, reception date, RCV ---------------------------------------------


def _sii_session(company: Company, now: datetime):
    try:
        client = config.client(company.sii_environment)
    except config.EnvironmentNotAllowed as exc:
        raise DomainError(SII_REFUSED, str(exc)) from exc
    signer = _signer(company, now)
    token = auth.get_token(client, signer, env=company.sii_environment, boleta=False)
    return client, signer, token


def _forget_token(company: Company, now: datetime) -> None:
    with contextlib.suppress(DomainError):
        auth.forget_token(_signer(company, now), env=company.sii_environment, boleta=False)


def confirm_with_sii(received_id: int, *, now: datetime | None = None) -> str:
    """Ask the SII whether it has the document (QueryEstDte, as receptor) and when it received
    it (RCV). Returns the SII's state; SiiError propagates for the task to retry."""
    now = now or timezone.now()
    row = ReceivedDte.objects.select_related("company").get(pk=received_id)
    if row.status == ReceivedStatus.REFUSED:
        return row.sii_confirmation
    company = row.company
    client, _, token = _sii_session(company, now)
    try:
        status = client.get_est_dte(
            rut_consultante=company.rut,
            rut_company=row.rut_emisor,
            rut_receptor=company.rut,
            tipo=row.tipo_dte,
            folio=row.folio,
            fecha=row.fecha_emision,
            monto=row.monto_total,
            token=token,
        )
        received_at = (
            client.rcv_reception_date(token, row.rut_emisor, row.tipo_dte, row.folio)
            if status.estado == "DOK" and row.tipo_dte in RCV_TYPES
            else None
        )
    except SiiTokenError:
        _forget_token(company, now)
        raise
    state = status.estado if status.estado in SiiConfirmation.values else SiiConfirmation.OTHER
    glosa = (status.glosa or "")[:200]
    with transaction.atomic():
        row = ReceivedDte.objects.select_for_update().get(pk=received_id)
        row.sii_confirmation = state
        row.sii_confirmation_glosa = glosa
        row.sii_checked_at = now
        if received_at is not None:
            row.sii_received_at = received_at
            row.claim_deadline = received_at + timedelta(days=CLAIM_DAYS)
        elif row.sii_received_at is None and state == SiiConfirmation.DOK:
            # Notas and guías have no RCV date: the SII has them from (at latest) now.
            row.sii_received_at = now
        row.save()
        deadline = (
            f" Plazo para reclamar: {timezone.localtime(row.claim_deadline):%d-%m-%Y %H:%M}."
            if row.claim_deadline
            else ""
        )
        _event(
            row,
            ReceivedEventKind.SII_CHECK,
            f"QueryEstDte: {status.estado} {glosa}.{deadline}".strip(),
            code=status.estado,
        )
    return state


def _require_confirmed(row: ReceivedDte) -> None:
    if row.sii_confirmation != SiiConfirmation.DOK:
        message = (
            "El SII aún no confirma que tiene este documento (QueryEstDte DOK); "
            "no se puede aceptar todavía."
        )
        raise DomainError(NOT_CONFIRMED, message, {"status": message})


def _require_open(row: ReceivedDte) -> None:
    if row.status != ReceivedStatus.RECEIVED:
        message = f"El documento ya está {row.get_status_display().lower()}."
        raise DomainError(NOT_RECEIVABLE, message, {"status": message})


class _RcvRefused(Exception):
    """The SII answered and did not record the action: raised inside the caller's transaction
    (so nothing of the decision stays), recorded and turned into a DomainError after it."""

    def __init__(self, action: str, code: int, description: str) -> None:
        super().__init__(description)
        self.action, self.code, self.description = action, code, description


def _rcv(company: Company, row: ReceivedDte, action: str, now: datetime, actor):
    """Record an action at the SII's RCV; returns its answer (None for types without RCV
    events). A refusal raises _RcvRefused; the SII out of reach raises DomainError (or SiiError
    when no session can be had)."""
    if row.tipo_dte not in RCV_TYPES:
        return None
    client, _, token = _sii_session(company, now)
    try:
        answer = client.rcv_register_action(token, row.rut_emisor, row.tipo_dte, row.folio, action)
    except SiiTokenError:
        _forget_token(company, now)
        raise DomainError(SII_REFUSED, "El SII rechazó la sesión; intente nuevamente.") from None
    except SiiError as exc:
        raise DomainError(SII_REFUSED, f"No se pudo registrar en el SII: {exc}") from None
    if not answer.ok and answer.code != RCV_ALREADY_RECORDED:
        raise _RcvRefused(action, answer.code, answer.description)
    return answer


class _Rehearsed(Exception):
    """Ends a rehearsal: the decision ran whole and is rolled back."""


def _decided(
    row_pk: int, actor, action: str, now: datetime, decide: Callable[[ReceivedDte], None]
) -> ReceivedDte:
    """A decision in three steps, so that the SII and the books agree without holding a
    transaction open while the SII answers (the embedded SQLite has one writer, which the local
    sandbox needs too):
      1. rehearse it on the locked row and roll it back: every check (state, period, the
         purchase's own rules) runs before the SII hears of it;
      2. record the action at the SII's RCV: its refusal is kept in the history and reported;
      3. commit the decision with the SII's answer.
    Should the row change between 2 and 3 (a decision from elsewhere), the SII's answer is kept
    in the history and the clash is reported; the beat job reads the SII's events anyway."""
    try:
        with transaction.atomic():
            decide(ReceivedDte.objects.select_for_update().get(pk=row_pk))
            raise _Rehearsed
    except _Rehearsed:
        pass
    row = ReceivedDte.objects.select_related("company").get(pk=row_pk)
    try:
        answer = _rcv(row.company, row, action, now, actor)
    except _RcvRefused as refused:
        _event(
            row,
            ReceivedEventKind.RCV,
            f"{refused.action}: {refused.description} (no registrado)",
            code=str(refused.code),
            actor=actor,
        )
        message = (
            f"El SII no registró la acción {refused.action}: {refused.description} "
            f"(código {refused.code})."
        )
        raise DomainError(SII_REFUSED, message, {"action": message}) from None
    try:
        with transaction.atomic():
            locked = ReceivedDte.objects.select_for_update().get(pk=row_pk)
            if answer is not None:
                _event(
                    locked,
                    ReceivedEventKind.RCV,
                    f"{action}: {answer.description}",
                    code=str(answer.code),
                    actor=actor,
                )
            decide(locked)
    except DomainError:
        if answer is not None:
            _event(
                row,
                ReceivedEventKind.RCV,
                f"{action}: {answer.description} (registrado en el SII; el documento cambió "
                "aquí entretanto: revíselo)",
                code=str(answer.code),
                actor=actor,
            )
        raise
    return ReceivedDte.objects.select_related("company", "envelope", "purchase").get(pk=row_pk)


def _claim_deadline_guard(row: ReceivedDte, now: datetime) -> None:
    if row.claim_deadline and now > row.claim_deadline:
        message = (
            f"El plazo para reclamar venció el {timezone.localtime(row.claim_deadline):%d-%m-%Y}: "
            "pasados 8 días desde la recepción en el SII el documento se entiende aceptado."
        )
        raise DomainError(CLAIM_LATE, message, {"action": message})


def _resultado(
    company: Company,
    row: ReceivedDte,
    estado: exchange.EstadoDTE,
    glosa: str,
    now: datetime,
    cod_rch_dsc: int | None = None,
) -> bytes:
    return exchange.build_resultado_dte(
        [
            exchange.ResultadoDte(
                dte=dte_recibido(company, row),
                cod_envio=row.envelope_id,
                estado=estado,
                glosa=glosa[:256],
                cod_rch_dsc=cod_rch_dsc,
            )
        ],
        caratula=answer_caratula(company, row.rut_emisor),
        id_respuesta=row.pk,
        timestamp=now,
        key=_signer(company, now),
    )


def accept(
    *,
    received: ReceivedDte,
    actor,
    discrepancies: str = "",
    periodo: date | None = None,
    now: datetime | None = None,
) -> ReceivedDte:
    """Accept a received document: the purchase booked, the ResultadoDTE to the supplier
    (accepted, or accepted with discrepancies), and ACD at the SII's RCV, all or nothing."""
    now = now or timezone.now()
    estado = (
        exchange.EstadoDTE.ACEPTADO_CON_DISCREPANCIAS
        if discrepancies
        else exchange.EstadoDTE.ACEPTADO
    )
    glosa = (discrepancies or estado.glosa)[:256]

    def decide(row: ReceivedDte) -> None:
        _require_open(row)
        _require_confirmed(row)
        company = row.company
        tax_period = month_start(periodo or default_period(row))
        if tax_period < month_start(row.fecha_emision):
            message = "El período tributario no puede ser anterior al mes del documento."
            raise DomainError(erp_errors.INVALID_INPUT, message, {"periodo": message})
        period_guard(company, tax_period, field="periodo")
        row.status = ReceivedStatus.ACCEPTED
        row.rcv_action = ACCEPT if row.tipo_dte in RCV_TYPES else ""
        row.commercial_result = str(int(estado))
        row.commercial_glosa = glosa
        row.result_xml = _resultado(company, row, estado, glosa, now)
        row.tax_period = tax_period
        row.save()
        _event(
            row,
            ReceivedEventKind.ANSWER,
            f"ResultadoDTE: {glosa}.",
            code=str(int(estado)),
            actor=actor,
        )
        _book(row, actor)
        dispatch.after_commit("dte.received_answer_email", "resultado", row.pk)

    return _decided(received.pk, actor, ACCEPT, now, decide)


def default_period(row: ReceivedDte) -> date:
    """The purchase book's month by default: the month received, or the document's own month
    when it is dated later (a period cannot come before its document)."""
    return max(month_start(timezone.localdate(row.received_at)), month_start(row.fecha_emision))


def claim(
    *, received: ReceivedDte, actor, action: str, reason: str, now: datetime | None = None
) -> ReceivedDte:
    """Claim a received document at the SII (RCD, RFP or RFT) within 8 days of the SII's
    reception, and send the supplier the ResultadoDTE (rejected). Nothing is booked."""
    now = now or timezone.now()
    if action not in CLAIM_ACTIONS:
        message = "Indique el motivo del reclamo: RCD, RFP o RFT."
        raise DomainError(erp_errors.INVALID_INPUT, message, {"action": message})
    reason = (reason or CLAIM_ACTIONS[action]).strip()[:256]

    def decide(row: ReceivedDte) -> None:
        _require_open(row)
        _claim_deadline_guard(row, now)
        company = row.company
        estado = exchange.EstadoDTE.RECHAZADO
        row.status = ReceivedStatus.CLAIMED
        row.rcv_action = action if row.tipo_dte in RCV_TYPES else ""
        row.commercial_result = CommercialResult.REJECTED
        row.commercial_glosa = reason
        row.result_xml = _resultado(company, row, estado, reason, now, cod_rch_dsc=-1)
        row.save()
        _event(
            row,
            ReceivedEventKind.ANSWER,
            f"ResultadoDTE: rechazado ({reason}).",
            code="2",
            actor=actor,
        )
        dispatch.after_commit("dte.received_answer_email", "resultado", row.pk)

    return _decided(received.pk, actor, action, now, decide)


def acknowledge_goods(
    *, received: ReceivedDte, actor, recinto: str, now: datetime | None = None
) -> ReceivedDte:
    """The Ley 19.983 receipt of goods or services: the EnvioRecibos and ERM at the SII."""
    now = now or timezone.now()
    recinto = (recinto or "").strip()
    if not recinto:
        message = "Indique el lugar donde se recibieron las mercaderías o servicios."
        raise DomainError(erp_errors.INVALID_INPUT, message, {"recinto": message})

    def decide(row: ReceivedDte) -> None:
        if row.status in (ReceivedStatus.REFUSED, ReceivedStatus.CLAIMED):
            message = f"El documento está {row.get_status_display().lower()}."
            raise DomainError(NOT_RECEIVABLE, message, {"status": message})
        if row.goods_received_at:
            message = "El recibo de mercaderías ya fue otorgado."
            raise DomainError(NOT_RECEIVABLE, message, {"status": message})
        _require_confirmed(row)
        company = row.company
        signer = _signer(company, now)
        row.receipt_xml = exchange.build_envio_recibos(
            [exchange.Recibo(dte=dte_recibido(company, row), recinto=recinto[:80])],
            caratula=answer_caratula(company, row.rut_emisor),
            rut_firma=selectors.signer_rut(signer),
            timestamp=now,
            key=signer,
        )
        row.goods_received_at = now
        row.save()
        _event(
            row,
            ReceivedEventKind.ANSWER,
            f"Recibo de mercaderías (Ley 19.983) en {recinto}.",
            code=GOODS_RECEIVED,
            actor=actor,
        )
        dispatch.after_commit("dte.received_answer_email", "recibo", row.pk)

    return _decided(received.pk, actor, GOODS_RECEIVED, now, decide)


# --- Purchases ------------------------------------------------------------------------------


def _supplier(row: ReceivedDte, actor) -> Partner:
    partner = Partner.objects.filter(company=row.company, rut=row.rut_emisor).first()
    if partner is not None:
        if not partner.is_supplier:
            partner.is_supplier = True
            partner.save(update_fields=["is_supplier"])
        return partner
    facts = row.facts or {}
    return partner_create(
        company=row.company,
        actor=actor,
        data={
            "rut": row.rut_emisor,
            "razon_social": row.razon_social or row.rut_emisor,
            "giro": row.giro[:40],
            "direccion": (facts.get("direccion") or "")[:70],
            "comuna": (facts.get("comuna") or "")[:20],
            "email_dte": _valid_email(row.envelope.sender_email or row.correo_emisor),
            "is_customer": False,
            "is_supplier": True,
        },
    )


EXEMPT_TYPES = codes(lambda d: d.purchase_book and d.exempt_only)


def _book_amounts(row: ReceivedDte) -> dict[str, int]:
    """The book's amounts: an exempt factura carries no net or VAT, whatever it says."""
    if row.tipo_dte in EXEMPT_TYPES:
        exento = row.monto_total - row.otros_impuestos
        return {"monto_exento": exento, "monto_neto": 0, "iva_recuperable": 0}
    return {
        "monto_exento": row.monto_exento,
        "monto_neto": row.monto_neto,
        "iva_recuperable": row.iva,
    }


def _valid_email(address: str) -> str:
    try:
        validate_email(address)
    except ValidationError:
        return ""
    return address[:254]


def _book(row: ReceivedDte, actor) -> PurchaseDocument | None:
    """Book an accepted document in the purchase book, once; guías and other non-purchase
    types are not booked."""
    if row.purchase_id or row.tipo_dte not in BOOKED_TYPES:
        return None
    booked = (
        PurchaseDocument.objects.filter(
            company=row.company, tipo_doc=row.tipo_dte, folio=row.folio, rut_emisor=row.rut_emisor
        )
        .order_by()
        .first()
    )
    if booked is not None:
        # Already in the book (imported from the RCV, or typed in): linked, never twice.
        row.purchase = booked
        row.save(update_fields=["purchase"])
        _event(
            row,
            ReceivedEventKind.BOOKED,
            f"Ya estaba en el libro de compras ({booked.get_source_display().lower()}, "
            f"período {booked.periodo:%m-%Y}); se vincula sin registrarlo de nuevo.",
            actor=actor,
        )
        return booked
    partner = _supplier(row, actor)
    purchase = purchase_document_create(
        company=row.company,
        actor=actor,
        source=PurchaseSource.DTE,
        data={
            "partner": partner,
            "tipo_doc": row.tipo_dte,
            "folio": row.folio,
            "fecha": row.fecha_emision,
            "periodo": row.tax_period or default_period(row),
            "estado": PurchaseState.REGISTRO,
            **_book_amounts(row),
            "otros_impuestos": row.otros_impuestos,
            "monto_total": row.monto_total,
        },
    )
    facts = row.facts or {}
    PurchaseDocumentLine.objects.bulk_create(
        PurchaseDocumentLine(
            document=purchase,
            numero=line["numero"],
            nombre=line["nombre"][:80],
            descripcion=line["descripcion"],
            cantidad=line["cantidad"],
            unidad=line["unidad"][:4],
            precio=line["precio"],
            descuento=line["descuento"],
            monto=line["monto"],
            exento=line["exento"],
        )
        for line in facts.get("lines", [])
    )
    for ref in facts.get("references", []):
        referenced = None
        if ref["tipo"].isdigit() and ref["folio"].isdigit():
            referenced = PurchaseDocument.objects.filter(
                company=row.company,
                rut_emisor=row.rut_emisor,
                tipo_doc=int(ref["tipo"]),
                folio=int(ref["folio"]),
            ).first()
        PurchaseDocumentReference.objects.create(
            document=purchase,
            tipo=ref["tipo"][:3],
            folio=ref["folio"][:18],
            fecha=ref["fecha"],
            codigo=ref["codigo"],
            razon=ref["razon"][:90],
            referenced=referenced,
        )
    row.purchase = purchase
    row.save(update_fields=["purchase"])
    period = f"{purchase.periodo:%m-%Y}"
    _event(
        row,
        ReceivedEventKind.BOOKED,
        f"Registrado en el libro de compras, período {period}.",
        actor=actor,
    )
    return purchase


# --- Keeping up with the SII ----------------------------------------------------------------


def sync_with_sii(received_id: int, *, now: datetime | None = None) -> str:
    """Record what the SII already shows for a document still open here: its confirmation,
    the events others registered (acceptance or claim in the SII's portal), and the tacit
    acceptance once the 8 days passed without a claim. Returns the document's status."""
    now = now or timezone.now()
    row = ReceivedDte.objects.select_related("company").get(pk=received_id)
    if row.status != ReceivedStatus.RECEIVED:
        return row.status
    missing_date = row.tipo_dte in RCV_TYPES and row.claim_deadline is None
    if row.sii_confirmation != SiiConfirmation.DOK or missing_date:
        confirm_with_sii(row.pk, now=now)
        row.refresh_from_db()
        if row.sii_confirmation != SiiConfirmation.DOK:
            return row.status
    company = row.company
    if row.tipo_dte in RCV_TYPES:
        client, _, token = _sii_session(company, now)
        try:
            history = client.rcv_events(token, row.rut_emisor, row.tipo_dte, row.folio)
        except SiiTokenError:
            _forget_token(company, now)
            raise
        ReceivedDte.objects.filter(pk=row.pk).update(sii_checked_at=now)
        known = set(
            row.events.filter(kind=ReceivedEventKind.RCV_SYNC).values_list("code", flat=True)
        )
        decided = ""
        for event in history.events:
            key = f"{event.code}"
            if key not in known:
                _event(
                    row,
                    ReceivedEventKind.RCV_SYNC,
                    f"El SII muestra {event.code} ({event.description}) registrado por "
                    f"{event.rut_responsable} el {timezone.localtime(event.fecha):%d-%m-%Y %H:%M}.",
                    code=key,
                )
                known.add(key)
            if event.code in CLAIM_ACTIONS:
                decided = "claimed"
            elif event.code in (ACCEPT, GOODS_RECEIVED) and not decided:
                decided = "accepted"
        if decided == "claimed":
            ReceivedDte.objects.filter(pk=row.pk, status=ReceivedStatus.RECEIVED).update(
                status=ReceivedStatus.CLAIMED, commercial_result=CommercialResult.REJECTED
            )
            return ReceivedStatus.CLAIMED
        if decided == "accepted":
            return _accepted_at_the_sii(row.pk, "")
    if row.claim_deadline and now > row.claim_deadline:
        return _accepted_at_the_sii(
            row.pk,
            "Aceptado tácitamente: pasaron 8 días desde la recepción en el SII sin reclamo "
            "(Ley 19.983, art. 3).",
        )
    return row.status


def _accepted_at_the_sii(received_id: int, note: str) -> str:
    """The SII holds the document accepted (by an event, or by the 8 days): so does the book,
    in the first period still open from its default one."""
    with transaction.atomic():
        row = ReceivedDte.objects.select_for_update().get(pk=received_id)
        if row.status != ReceivedStatus.RECEIVED:
            return row.status
        row.status = ReceivedStatus.ACCEPTED
        row.tax_period = row.tax_period or first_open_period(row.company, default_period(row))
        row.save()
        if note:
            _event(row, ReceivedEventKind.RCV_SYNC, note, code="PLAZO")
        _book(row, None)
    return ReceivedStatus.ACCEPTED


def first_open_period(company: Company, start: date) -> date:
    """`start`, or the first month after it whose F29 was not filed."""
    closed = set(
        ClosedPeriod.objects.filter(company=company, periodo__gte=start).values_list(
            "periodo", flat=True
        )
    )
    period = start
    while period in closed:
        period = (period + timedelta(days=32)).replace(day=1)
    return period


def days_left(row: ReceivedDte, now: datetime | None = None) -> int | None:
    """Whole calendar days left to claim (0 on the last day), None before the SII's date."""
    if row.claim_deadline is None:
        return None
    now = now or timezone.now()
    remaining = timezone.localdate(row.claim_deadline) - timezone.localdate(now)
    return remaining.days


RETRYABLE: tuple[type[BaseException], ...] = (SiiError,)


def sync_open(now: datetime | None = None, *, limit: int = 500) -> dict[str, int]:
    """Beat: sync the open documents, oldest first; one document's trouble never stops the
    rest (it is tried again on the next run)."""
    counts: dict[str, int] = {}
    # Open documents the SII may still say something about: not yet confirmed, or facturas
    # (RCV events, their 8 days). Confirmed notas and guías wait for staff alone. Those asked
    # least recently go first, so none is starved by a backlog.
    pending = Q(sii_confirmation__in=["", SiiConfirmation.FAU, SiiConfirmation.OTHER]) | Q(
        tipo_dte__in=RCV_TYPES
    )
    ids = list(
        ReceivedDte.objects.filter(pending, status=ReceivedStatus.RECEIVED)
        .order_by(F("sii_checked_at").asc(nulls_first=True), "received_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        try:
            status = sync_with_sii(pk, now=now)
        except (SiiError, DomainError) as exc:
            log.info("received %s: SII sync later: %s", pk, exc)
            status = "retry"
        counts[status] = counts.get(status, 0) + 1
    return counts


def answer_not_sent(kind: str, object_id: int, reason: str) -> None:
    rows = (
        ReceivedDte.objects.filter(envelope_id=object_id)
        if kind == "recepcion"
        else ReceivedDte.objects.filter(pk=object_id)
    )
    for row in rows:
        _event(row, ReceivedEventKind.MAIL, f"Respuesta no enviada: {reason}.")


# --- The exchange mailbox -------------------------------------------------------------------


def active_mailboxes() -> list[int]:
    return list(ExchangeMailbox.objects.filter(is_active=True).values_list("pk", flat=True))


def mailbox_config(mailbox: ExchangeMailbox) -> MailboxConfig:
    return MailboxConfig(
        host=mailbox.host,
        port=mailbox.port,
        username=mailbox.username,
        password=vault.decrypt(bytes(mailbox.password_encrypted)).decode("utf-8"),
        folder=mailbox.folder or "INBOX",
        security=mailbox.security,
        timeout=settings.MAILBOX_TIMEOUT,
    )


@dataclass
class PollResult:
    messages: int = 0
    files: int = 0
    documents: int = 0
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "files": self.files,
            "documents": self.documents,
            "error": self.error,
        }


def poll_mailbox(mailbox_id: int, *, now: datetime | None = None) -> PollResult:
    """Read the unseen messages of a company's exchange mailbox and take in their attachments.
    A message is marked as read only after its intake committed: a crash in between leaves it
    unseen, and reading it again is harmless (a repeated file is recognised)."""
    mailbox = ExchangeMailbox.objects.select_related("company").get(pk=mailbox_id)
    result = PollResult()
    try:
        config = mailbox_config(mailbox)
        messages = fetch_unseen(config, limit=settings.MAILBOX_BATCH)
        for message in messages:
            if message.oversized:
                result.error = (
                    f"Mensaje de {message.sender} ({message.subject}) omitido: supera el tamaño "
                    "máximo; descárguelo y súbalo a mano."
                )
                mark_seen(config, [message.uid], uidvalidity=message.uidvalidity)
                continue
            try:
                outcome = receive(
                    company=mailbox.company,
                    uploads=[(a.filename, a.data) for a in message.attachments],
                    source=IntakeSource.MAIL,
                    sender_email=message.sender,
                    message_id=message.message_id,
                    now=now,
                )
            except DatabaseError:
                raise  # the database is down: the message stays unread for the next poll
            except Exception as exc:
                # One message this code cannot take in must not block the mailbox: it is
                # marked read (it stays in the mailbox) and named in the mailbox's error.
                log.exception("mailbox %s: message %s not taken in", mailbox_id, message.uid)
                result.error = (
                    f"El correo de {message.sender} «{message.subject}» no se pudo recibir "
                    f"({type(exc).__name__}); quedó marcado como leído en la casilla."
                )[:2000]
                mark_seen(config, [message.uid], uidvalidity=message.uidvalidity)
                continue
            mark_seen(config, [message.uid], uidvalidity=message.uidvalidity)
            result.messages += 1
            result.files += len(outcome.envelopes)
            result.documents += len(outcome.documents)
    except MailboxError as exc:
        result.error = str(exc)
    except vault.VaultError:
        result.error = "La contraseña guardada de la casilla no se puede leer; vuelva a ingresarla."
    ExchangeMailbox.objects.filter(pk=mailbox_id).update(
        last_polled_at=now or timezone.now(), last_error=result.error
    )
    return result


def mailbox_save(
    *, company: Company, actor, data: dict[str, Any], password: str | None
) -> ExchangeMailbox:
    """Create or change the company's exchange mailbox; the password is stored encrypted and
    kept when not given again."""
    mailbox = ExchangeMailbox.objects.filter(company=company).first() or ExchangeMailbox(
        company=company
    )
    for name in ("address", "host", "port", "security", "username", "folder", "is_active"):
        if name in data:
            setattr(mailbox, name, data[name])
    if password:
        mailbox.password_encrypted = vault.encrypt(password.encode("utf-8"))
    elif not mailbox.pk:
        message = "Ingrese la contraseña de la casilla."
        raise DomainError(erp_errors.INVALID_INPUT, message, {"password": message})
    mailbox.save()
    return mailbox
