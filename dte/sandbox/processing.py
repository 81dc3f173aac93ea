"""Receiving envelopes and answering status queries: the sandbox's services (views stay thin).

Like the SII, an upload is accepted first and processed afterwards. Here the verdict is reached
at upload time and stored, so that status queries are cheap, but it is shown only once the
envelope is ready (conf.processing_time() after the upload) and conf.polls_before_done() status
queries have been answered: until then QueryEstUp and the boleta envío status answer in-progress
states (SOK, CRT, FOK, PRD), and QueryEstDte and the boleta estado answer FAU for its documents.

Repeats, as the SII reports them (SII_BEHAVIOUR.md): the same bytes again are not processed
(`Received.duplicate`: DTEUpload STATUS 99); the same signed SetDTE in other bytes is RPT; a
folio accepted before, in any envelope of the emisor, is a document rejected as "DTE Repetido".
The work is linear in the envelope's size: a fixed number of queries per envelope.

A libro (LibroCompraVenta, LibroGuia) uploaded through DTEUpload is received the same way (a
track id, STATUS 99 for the same bytes again) and judged by checks.check_libro: LOK, or LRS,
LRC, LRF; QueryEstUp answers -11 (ERR_CODE 2) while it is in process.
"""

import gzip
import hashlib
import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from dte import services as dte_services
from dte import vault
from dte.core.schemas import XmlError, safe_parse
from dte.core.verify import libro_kind
from dte.sandbox import conf
from dte.sandbox.checks import (
    EPR,
    DocumentOutcome,
    Lookups,
    Outcome,
    Problem,
    Upload,
    check_envelope,
    check_libro,
)
from dte.sandbox.faults import document_rejects_pending, fault_take
from dte.sandbox.models import (
    ACCEPTED_STATUSES,
    LIBRO_KINDS,
    Channel,
    DocumentStatus,
    Fault,
    ReceivedDocument,
    ReceivedEnvelope,
    ReceivedFile,
    ReceivedKind,
)
from erp.models import Company
from erp.rut import InvalidRut, normalize_rut

logger = logging.getLogger(__name__)
ENVELOPE_KINDS = {Channel.DTE: "EnvioDTE", Channel.BOLETA: "EnvioBOLETA"}
UPLOAD_OPERATIONS = {Channel.DTE: "upload", Channel.BOLETA: "boleta_upload"}
TRACK_ID_DIGITS = {Channel.DTE: 10, Channel.BOLETA: 15}
MAX_FILE_BYTES = 10 * 1024 * 1024
_LOOKUP_CHUNK = 500  # folios per query when looking for folios accepted before
# In-progress states an envelope walks through before its outcome, by outcome.
_PROGRESS = {"RSC": ("REC",), "RCT": ("SOK",), "RFR": ("SOK", "CRT")}
_FULL_PROGRESS = ("SOK", "CRT", "FOK", "PRD")
# What getEstUp answers for a libro still in process (SII_BEHAVIOUR.md, "Libros").
LIBRO_IN_PROCESS = "-11"


class UploadRefused(Exception):
    """The upload is refused before processing: DTEUpload's STATUS and its detail."""

    def __init__(self, status: int, detail: str = "") -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail


# --- Upload input ---------------------------------------------------------------------------


def rut_of(number: str | None, dv: str | None) -> str:
    """`rutSender` + `dvSender` (or the company's) as a canonical RUT; STATUS -1 if invalid."""
    try:
        return normalize_rut(f"{(number or '').strip()}-{(dv or '').strip()}")
    except InvalidRut:
        raise UploadRefused(-1, f"RUT invalido: {number}-{dv}") from None


def file_bytes(raw: bytes | None) -> bytes:
    """The uploaded file's XML bytes (gzip accepted); STATUS 2, 3 or 7 when it is not XML."""
    if not raw:
        raise UploadRefused(2, "El archivo esta vacio")
    if len(raw) > MAX_FILE_BYTES:
        raise UploadRefused(2, "El archivo excede el tamaño maximo permitido")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            raise UploadRefused(3, "Archivo comprimido (gzip) cortado o dañado") from None
    try:
        safe_parse(raw)
    except XmlError as exc:
        truncated = "Premature end" in exc.reason or "EndTag" in exc.reason
        raise UploadRefused(3 if truncated else 7, f"XML invalido: {exc}") from None
    return raw


# --- Receiving ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    envelope: ReceivedEnvelope
    duplicate: bool  # the same bytes were received before: `envelope` is the original


def envelope_receive(
    *,
    channel: str,
    rut_sender: str,
    rut_company: str,
    file_name: str,
    data: bytes,
) -> Received:
    """Store and process an upload (already authenticated and known to be XML). A pending
    "reject" fault decides the envelope's outcome instead of the checks."""
    sha = hashlib.sha256(data).hexdigest()
    original = ReceivedEnvelope.objects.filter(sha256=sha).first()
    if original is not None:
        return Received(original, duplicate=True)
    kind = received_kind(channel, data)
    if kind in LIBRO_KINDS:
        # A libro is judged by its own checks; "reject" faults speak of envelopes.
        outcome = _libro_checked(data, Upload(kind, rut_sender, rut_company))
    else:
        outcome = _checked(data, Upload(ENVELOPE_KINDS[Channel(channel)], rut_sender, rut_company))
        reject = fault_take(UPLOAD_OPERATIONS[Channel(channel)], reject=True)
        if reject is not None:
            outcome = Outcome(reject.code, reject.glosa, outcome.set_digest)
    try:
        with transaction.atomic():
            envelope = _envelope_create(
                channel, rut_sender, rut_company, file_name, data, outcome, timezone.now(), kind
            )
            envelope.stats = _documents_create(envelope, outcome, channel)
            envelope.save(update_fields=["stats"])
    except IntegrityError:
        original = ReceivedEnvelope.objects.filter(sha256=sha).first()
        if original is None:
            raise
        return Received(original, duplicate=True)
    return Received(envelope, duplicate=False)


def received_kind(channel: str, data: bytes) -> str:
    """A libro (LibroCompraVenta, LibroGuia) when DTEUpload receives one, else an envelope (the
    envelope checks then say whether it is the one the service takes)."""
    if Channel(channel) != Channel.DTE:
        return ReceivedKind.ENVIO
    kind = libro_kind(safe_parse(data))
    return ReceivedKind(kind.value) if kind is not None else ReceivedKind.ENVIO


def _libro_checked(data: bytes, upload: Upload) -> Outcome:
    try:
        return check_libro(data, upload=upload, lookups=_lookups(), now=timezone.now())
    except Exception:  # a sandbox bug must answer like the SII, not as an outage; it is logged
        logger.exception("the sandbox SII could not process a libro")
        return Outcome("LRH", "Libro Rechazado - error interno del SII de pruebas")


def _checked(data: bytes, upload: Upload) -> Outcome:
    try:
        return check_envelope(
            data,
            upload=upload,
            sii_key=sandbox_public_key(),
            lookups=_lookups(),
            now=timezone.now(),
        )
    except Exception:  # a sandbox bug must answer like the SII, not as an outage; it is logged
        logger.exception("the sandbox SII could not process an envelope")
        return Outcome("RCH", "Rechazado por Informacion - error interno del SII de pruebas")


def _envelope_create(
    channel: str,
    rut_sender: str,
    rut_company: str,
    file_name: str,
    data: bytes,
    outcome: Outcome,
    now: datetime,
    kind: str = ReceivedKind.ENVIO,
) -> ReceivedEnvelope:
    digits = TRACK_ID_DIGITS[Channel(channel)]
    for _ in range(20):
        track_id = 10 ** (digits - 1) + secrets.randbelow(9 * 10 ** (digits - 1))
        if ReceivedEnvelope.objects.filter(track_id=track_id).exists():
            continue
        envelope = ReceivedEnvelope.objects.create(
            track_id=track_id,
            channel=channel,
            kind=kind,
            company_rut=rut_company,
            sender_rut=rut_sender,
            file_name=file_name[:255],
            sha256=hashlib.sha256(data).hexdigest(),
            set_digest=outcome.set_digest,
            outcome_code=outcome.code,
            outcome_glosa=outcome.glosa,
            received_at=now,
            ready_at=now + conf.processing_time(),
        )
        ReceivedFile.objects.create(envelope=envelope, data=data)
        return envelope
    raise RuntimeError("could not allocate a unique track id")


def _documents_create(
    envelope: ReceivedEnvelope, outcome: Outcome, channel: str
) -> list[dict[str, int]]:
    """Record the documents of a processed envelope (per-document faults applied) and return
    the per-type counts."""
    if outcome.code != EPR:
        return []
    operation = UPLOAD_OPERATIONS[Channel(channel)]
    faults_pending = document_rejects_pending(operation)
    rows = [
        _document_row(
            envelope,
            document,
            fault_take(operation, reject=True, per_document=True) if faults_pending else None,
        )
        for document in outcome.documents
    ]
    ReceivedDocument.objects.bulk_create(rows)
    return stats_of(rows)


def _document_row(
    envelope: ReceivedEnvelope, document: DocumentOutcome, fault: Fault | None
) -> ReceivedDocument:
    status = DocumentStatus.ACCEPTED if document.accepted else DocumentStatus.REJECTED
    glosa = document.glosa
    problems = list(document.problems)
    if fault is not None:
        status, glosa = DocumentStatus(fault.code), fault.glosa
        problems = [Problem("DTE", 99, fault.glosa, "falla simulada del SII de pruebas")]
    return ReceivedDocument(
        envelope=envelope,
        rut_emisor=document.rut_emisor,
        tipo_dte=document.tipo_dte,
        folio=document.folio,
        fecha_emision=document.fecha_emision,
        rut_receptor=document.rut_receptor,
        monto_total=document.monto_total,
        status=status,
        glosa=glosa,
        errors=[problem.to_dict() for problem in problems],
    )


def stats_of(documents: Iterable[ReceivedDocument]) -> list[dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(
        lambda: {"informados": 0, "aceptados": 0, "rechazados": 0, "reparos": 0}
    )
    for document in documents:
        group = counts[document.tipo_dte]
        group["informados"] += 1
        if document.status == DocumentStatus.ACCEPTED:
            group["aceptados"] += 1
        elif document.status == DocumentStatus.REJECTED:
            group["rechazados"] += 1
        else:
            group["reparos"] += 1
    return [{"tipo": tipo, **counts[tipo]} for tipo in sorted(counts)]


def _lookups() -> Lookups:
    def resolution(rut: str) -> tuple[date | None, int] | None:
        row = Company.objects.filter(rut=rut).values_list("resolution_date", "resolution_number")
        return row.first()

    def accepted_before(keys: Iterable[tuple[str, int, int]]) -> set[tuple[str, int, int]]:
        """Those (rut, tipo, folio) accepted in an envelope received before (processed or not:
        the SII processes envelopes in the order it receives them)."""
        wanted = set(keys)
        found: set[tuple[str, int, int]] = set()
        by_document: dict[tuple[str, int], list[int]] = defaultdict(list)
        for rut, tipo, folio in wanted:
            by_document[(rut, tipo)].append(folio)
        for (rut, tipo), folios in by_document.items():
            for start in range(0, len(folios), _LOOKUP_CHUNK):
                rows = ReceivedDocument.objects.filter(
                    rut_emisor=rut,
                    tipo_dte=tipo,
                    folio__in=folios[start : start + _LOOKUP_CHUNK],
                    status__in=ACCEPTED_STATUSES,
                ).values_list("folio", flat=True)
                found.update((rut, tipo, folio) for folio in rows)
        return found

    def digest_seen(rut: str, digest: str) -> bool:
        return ReceivedEnvelope.objects.filter(
            company_rut=rut, set_digest=digest, outcome_code=EPR
        ).exists()

    return Lookups(resolution, accepted_before, digest_seen)


def sandbox_public_key() -> RSAPublicKey:
    """The sandbox authority's CAF-signing public key (IDK 900)."""
    authority = dte_services.sandbox_authority()
    return _public_key(bytes(authority.private_key_encrypted))


@lru_cache(maxsize=8)
def _public_key(encrypted: bytes) -> RSAPublicKey:
    private = serialization.load_pem_private_key(vault.decrypt(encrypted), None)
    public = private.public_key()
    assert isinstance(public, RSAPublicKey)
    return public


# --- Status queries -------------------------------------------------------------------------


def envelope_find(
    *, channel: str, rut_company: str, track_id: str | int
) -> ReceivedEnvelope | None:
    try:
        number = int(str(track_id).strip())
    except ValueError:
        return None
    return ReceivedEnvelope.objects.filter(
        channel=channel, track_id=number, company_rut=rut_company
    ).first()


def envelope_ready(envelope: ReceivedEnvelope, now: datetime | None = None) -> bool:
    """Whether the SII has finished processing the envelope (its verdict may be shown)."""
    return envelope.ready_at <= (now or timezone.now())


def envelope_state(envelope: ReceivedEnvelope) -> str:
    """The state to answer now: in progress until the envelope is ready and the first
    conf.polls_before_done() queries have been answered, then the outcome. A libro in process
    answers LIBRO_IN_PROCESS (-11, ERR_CODE 2) instead of the envelope's REC…PRD."""
    if envelope.polls >= conf.polls_before_done() and envelope_ready(envelope):
        return envelope.outcome_code
    ReceivedEnvelope.objects.filter(pk=envelope.pk).update(polls=F("polls") + 1)
    if envelope.kind in LIBRO_KINDS:
        return LIBRO_IN_PROCESS
    steps = _PROGRESS.get(envelope.outcome_code, _FULL_PROGRESS)
    return steps[min(envelope.polls, len(steps) - 1)]


@dataclass(frozen=True, slots=True)
class DocumentQuery:
    rut_emisor: str
    tipo_dte: int
    folio: int
    fecha_emision: date | None = None
    monto_total: int | None = None
    rut_receptor: str | None = None


def document_state(query: DocumentQuery) -> tuple[str, ReceivedDocument | None]:
    """DOK (received, data match), DNK (received, data differ) or FAU (not received): from the
    folio accepted in any processed envelope of the emisor (in one being processed, the SII has
    not received it yet)."""
    document = (
        ReceivedDocument.objects.filter(
            rut_emisor=query.rut_emisor,
            tipo_dte=query.tipo_dte,
            folio=query.folio,
            status__in=ACCEPTED_STATUSES,
            envelope__ready_at__lte=timezone.now(),
        )
        .select_related("envelope")
        .order_by("-id")
        .first()
    )
    if document is None:
        return "FAU", None
    differs = (
        (query.fecha_emision is not None and query.fecha_emision != document.fecha_emision)
        or (query.monto_total is not None and query.monto_total != document.monto_total)
        or (query.rut_receptor is not None and query.rut_receptor != document.rut_receptor)
    )
    return ("DNK" if differs else "DOK"), document


def envelopes_release(*, track_id: int | None = None) -> int:
    """End the processing time of the envelopes still being processed (of one, by track id):
    their verdicts show from now on. The number released."""
    now = timezone.now()
    pending = ReceivedEnvelope.objects.filter(ready_at__gt=now)
    if track_id is not None:
        pending = pending.filter(track_id=track_id)
    return pending.update(ready_at=now)
