"""Every write of dte: uploading CAFs and certificates, issuing DTEs, building envelopes.

Issuing (ARCHITECTURE.md flow 1): lock the draft → take the next folio under a row lock on its
CAF → map to dte.core → TED, signature, envelope → XSD validation → save. Any failure rolls the
whole transaction back, so a folio is never burned by a failed build.
"""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Prefetch, Q
from django.utils import timezone

from dte import errors, libro_sending, mapping, notes, printing, selectors, sending, signals, vault
from dte.core import schemas
from dte.core.caf import CafError, check_caf, official_sii_keys, parse_caf
from dte.core.certificate import Certificate as CoreCertificate
from dte.core.certificate import CertificateError, load_pkcs12
from dte.core.domain import Documento, DteStatus
from dte.core.envelope import MAX_BOLETAS, MAX_DTES, EnvelopeItem, build_envelope, envelope_kind
from dte.core.export import Exportacion
from dte.core.issue import IssuedDte, stamp_and_sign, with_folio
from dte.core.liquidacion import Liquidacion
from dte.core.ted import CafMismatch
from dte.core.testmaterial import SANDBOX_IDK, generate_sii_key
from dte.keyring import load_caf, load_certificate
from dte.models import Caf, Certificate, Dte, DteEvent, Envelope, SandboxAuthority
from dte.sii.responses import NOT_JUDGED
from dte.sii_keys import sandbox_mode
from erp.doctypes import TipoDte, doc_type
from erp.errors import DOCUMENT_NOT_DRAFT, DomainError
from erp.models import (
    AuditEvent,
    Company,
    DocumentState,
    SalesDocument,
    SalesDocumentLine,
    SiiEnvironment,
)
from erp.periods import month_start
from erp.services import (
    audit_event,
    audit_record,
    closed_months,
    period_closed,
    server_bound,
    update_rows,
    user_or_none,
)

log = logging.getLogger(__name__)
# The key the SII of each environment signs CAFs with (DOMAIN.md §1; the sandbox's is local).
IDK_BY_ENVIRONMENT = {
    SiiEnvironment.SANDBOX: SANDBOX_IDK,
    SiiEnvironment.CERTIFICATION: 100,
    SiiEnvironment.PRODUCTION: 300,
}


# ---------------------------------------------------------------- keys of the SII


@transaction.atomic
def sandbox_authority() -> SandboxAuthority:
    """The local SII sandbox's CAF-signing key, made on first use (test material)."""
    authority = SandboxAuthority.objects.select_for_update().filter(idk=SANDBOX_IDK).first()
    if authority is None:
        from cryptography.hazmat.primitives import serialization

        key = generate_sii_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        authority = SandboxAuthority.objects.create(
            idk=SANDBOX_IDK, private_key_encrypted=vault.encrypt(pem)
        )
    return authority


def sii_keys() -> dict:
    """The SII keys a CAF may be signed with here: the real ones, plus the sandbox's."""
    keys = dict(official_sii_keys())
    if sandbox_mode():
        keys[SANDBOX_IDK] = sandbox_authority().private_key().public_key()
    return keys


def accepted_idks(company: Company) -> set[int]:
    """The CAF keys of the company's own environment: a test CAF never reaches production."""
    return {IDK_BY_ENVIRONMENT[SiiEnvironment(company.sii_environment)]}


def _environment_guard(company: Company) -> None:
    if company.sii_environment not in settings.SII_ENVIRONMENTS:
        env = SiiEnvironment(company.sii_environment).label
        message = (
            f"El ambiente SII de la empresa ({env}) no está habilitado en esta instalación; "
            "un administrador debe cambiarlo."
        )
        raise DomainError(errors.NOT_ISSUABLE, message, {"sii_environment": message})


# ---------------------------------------------------------------- certificates


def _fingerprint(certificate: CoreCertificate) -> str:
    from cryptography.hazmat.primitives import hashes

    return certificate.certificate.fingerprint(hashes.SHA256()).hex()


@transaction.atomic
def certificate_upload(
    *,
    company: Company,
    actor,
    data: bytes,
    password: str,
    now: datetime | None = None,
    is_test: bool = False,
) -> Certificate:
    now = now or timezone.now()
    try:
        loaded = load_pkcs12(data, password)
        loaded.check_valid(now)
    except CertificateError as exc:
        field = "password" if exc.code == "bad_password" else "file"
        raise DomainError(errors.CERTIFICATE_INVALID, exc.message, {field: exc.message}) from exc
    if not loaded.rut:
        message = "El certificado no indica el RUT de su titular."
        raise DomainError(errors.CERTIFICATE_INVALID, message, {"file": message})
    fingerprint = _fingerprint(loaded)
    if Certificate.objects.filter(company=company, fingerprint=fingerprint).exists():
        message = "Ese certificado ya está cargado en esta empresa."
        raise DomainError(errors.CERTIFICATE_DUPLICATE, message, {"file": message})
    row = Certificate.objects.create(
        company=company,
        holder_name=loaded.holder_name[:200],
        holder_rut=loaded.rut,
        not_before=loaded.not_before,
        not_after=loaded.not_after,
        fingerprint=fingerprint,
        pfx_encrypted=vault.encrypt(data),
        password_encrypted=vault.encrypt(password.encode("utf-8")),
        is_test=is_test,
        uploaded_by=user_or_none(actor),
    )
    audit_record(
        company=company,
        actor=actor,
        action=AuditEvent.Action.CREATE,
        obj=row,
        changes={"holder_rut": row.holder_rut, "not_after": row.not_after.isoformat()},
    )
    return row


# ---------------------------------------------------------------- CAF


@transaction.atomic
def caf_upload(
    *, company: Company, actor, data: bytes, today: date | None = None, is_test: bool = False
) -> Caf:
    today = today or timezone.localdate()
    try:
        caf = parse_caf(data)
        check_caf(caf, rut=company.rut, tipo_dte=None, sii_keys=sii_keys(), today=today)
    except CafError as exc:
        raise DomainError(errors.CAF_INVALID, exc.message, {"file": exc.message}) from exc
    if caf.tipo_dte not in {int(t) for t in TipoDte}:
        message = f"El tipo de documento {caf.tipo_dte} no se emite en este sistema."
        raise DomainError(errors.CAF_INVALID, message, {"file": message})
    if caf.idk not in accepted_idks(company):
        env = SiiEnvironment(company.sii_environment).label
        message = f"El CAF (IDK {caf.idk}) no corresponde al ambiente de la empresa ({env})."
        raise DomainError(errors.CAF_INVALID, message, {"file": message})
    overlap = Caf.objects.filter(
        company=company,
        tipo_dte=caf.tipo_dte,
        folio_desde__lte=caf.folio_hasta,
        folio_hasta__gte=caf.folio_desde,
    ).first()
    if overlap is not None:
        message = (
            f"El rango {caf.folio_desde}-{caf.folio_hasta} se superpone con el CAF ya cargado "
            f"{overlap.folio_desde}-{overlap.folio_hasta}."
        )
        raise DomainError(errors.CAF_OVERLAP, message, {"file": message})
    row = Caf.objects.create(
        company=company,
        tipo_dte=caf.tipo_dte,
        folio_desde=caf.folio_desde,
        folio_hasta=caf.folio_hasta,
        next_folio=caf.folio_desde,
        fecha_autorizacion=caf.fecha_autorizacion,
        expires_on=caf.expires_on(),
        idk=caf.idk,
        caf_xml=caf.caf_xml,
        file_encrypted=vault.encrypt(data),
        is_test=is_test,
        uploaded_by=user_or_none(actor),
    )
    audit_record(
        company=company,
        actor=actor,
        action=AuditEvent.Action.CREATE,
        obj=row,
        changes={"tipo_dte": row.tipo_dte, "desde": row.folio_desde, "hasta": row.folio_hasta},
    )
    return row


def _take_folios(company: Company, tipo: int, today: date, count: int) -> list[tuple[Caf, int]]:
    """Lock the usable CAFs of the type (oldest range first) and consume up to `count` of their
    next folios, in order, across CAFs when one runs out. Fewer than asked when the CAFs run
    out; an error when none is left.

    This opens the critical section of issuing: the locked rows stay locked until the commit,
    so concurrent issuers of the type queue here. Everything that can be done without a folio
    is done before (dte_issue, _issue_chunk). All usable rows are locked in one statement and in
    one order, so issuers never deadlock on them; PostgreSQL re-reads a row it waited for and
    drops it when the holder exhausted it, so a second look only happens when none was left.
    """
    accepted = accepted_idks(company)
    available = (
        Caf.objects.filter(company=company, tipo_dte=tipo, next_folio__lte=F("folio_hasta"))
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=today))
        .order_by("folio_desde")
    )
    usable = available.select_for_update().filter(idk__in=accepted)
    taken: list[tuple[Caf, int]] = []
    for _ in range(2):
        for caf in usable.all():  # a fresh query on each look
            room = caf.folio_hasta - caf.next_folio + 1
            n = min(room, count - len(taken))
            if n <= 0:
                continue
            taken.extend((caf, folio) for folio in range(caf.next_folio, caf.next_folio + n))
            caf.next_folio += n
            Caf.objects.filter(pk=caf.pk).update(next_folio=caf.next_folio)
            if len(taken) == count:
                return taken
        if taken:
            return taken
    other = available.exclude(idk__in=accepted).first()
    if other is not None:
        env = SiiEnvironment(company.sii_environment).label
        message = (
            f"Los CAF vigentes del tipo {tipo} son de otro ambiente (IDK {other.idk}) y la "
            f"empresa está en {env}: cargue un CAF de su ambiente."
        )
        raise DomainError(errors.CAF_INVALID, message)
    raise _no_folios(tipo)


def _no_folios(tipo: int) -> DomainError:
    message = f"No quedan folios autorizados (CAF) vigentes para el tipo {tipo}."
    return DomainError(errors.NO_FOLIOS, message)


# ---------------------------------------------------------------- issuing


def _validate_envelope(kind: str, xml: bytes) -> None:
    problems = schemas.validate(schemas.SchemaKind(kind), xml)
    if problems:
        raise DomainError(
            errors.SCHEMA_INVALID,
            "El documento generado no cumple el esquema del SII: " + problems[0],
            {"xml": problems[:5]},
        )


def _envelope(
    company, certificate_row, items: Sequence[EnvelopeItem], now: datetime, *, signer=None
) -> Envelope:
    signer = signer or load_certificate(certificate_row.pk, certificate_row.fingerprint)
    xml = build_envelope(
        items,
        rut_emisor=company.rut,
        rut_envia=selectors.signer_rut(signer),
        resolucion=mapping.resolucion_from(company),
        timestamp=now,
        key=signer,
    )
    kind = envelope_kind([i.tipo for i in items])
    _validate_envelope(kind, xml)
    with server_bound():
        return Envelope.objects.create(
            company=company, kind=kind, xml=xml, certificate=certificate_row
        )


Core = Documento | Exportacion | Liquidacion
# Drafts issued per transaction in a batch: bounded memory, and a bounded time holding the CAF.
ISSUE_CHUNK = 500


def _drafts_for_issue():
    """Drafts locked for issuing, with everything mapping reads, in four queries in all."""
    return (
        SalesDocument.objects.select_for_update(of=("self",))
        .select_related("company", "partner")
        .prefetch_related(
            Prefetch("lines", queryset=SalesDocumentLine.objects.select_related("product")),
            "references",
            "commissions",
        )
    )


def _issuable(doc: SalesDocument, closed: set[date]) -> Core:
    """Everything that can refuse a draft, checked before a folio is taken: its state, its
    period, the SII's rules (dte.notes) and mapping. Returns its core document, with folio 0
    until it gets one."""
    if doc.state != DocumentState.DRAFT:
        raise DomainError(DOCUMENT_NOT_DRAFT, "El documento ya fue emitido.")
    month = month_start(doc.fecha_emision)
    if month in closed:
        raise period_closed(month)
    notes.check_issuable(doc)
    try:
        return mapping.dte_from(doc, folio=0)
    except mapping.MappingError as exc:
        raise DomainError(errors.NOT_ISSUABLE, str(exc), {exc.field: str(exc)}) from exc


def _signing(company: Company, actor, now: datetime, certificate: Certificate | None):
    """The company-wide checks, and the certificate row and loaded key that sign."""
    _environment_guard(company)
    row = certificate or selectors.certificate_for_signing(company, actor, now)
    mapping.resolucion_from(company)
    return row, load_certificate(row.pk, row.fingerprint)


def _stamp(core: Core, caf_row: Caf, folio: int, signer, now: datetime) -> IssuedDte:
    try:
        return stamp_and_sign(
            with_folio(core, folio),
            caf=load_caf(caf_row.pk, bytes(caf_row.caf_xml)),
            signer=signer,
            now=now,
        )
    except CafMismatch as exc:
        raise DomainError(errors.CAF_INVALID, str(exc)) from exc


@dataclass(frozen=True)
class _Stamped:
    doc: SalesDocument
    caf: Caf
    issued: IssuedDte


@transaction.atomic
def dte_issue(
    *,
    document: SalesDocument,
    actor,
    now: datetime | None = None,
    envelope: bool = True,
    certificate: Certificate | None = None,
) -> Dte:
    """Issue one draft: folio, TED, signature, validation, all or nothing.

    With `envelope` it goes to the SII: in a shared envelope made by dte.envelope_collect
    SII_ENVELOPE_WINDOW seconds later (the document stays SIGNED until then), or, with a
    window of 0, in its own envelope made and queued now. `certificate` lets a batch choose
    the signing certificate once for all its documents.
    """
    now = now or timezone.now()
    doc = _drafts_for_issue().get(pk=document.pk)
    company = doc.company
    certificate_row, signer = _signing(company, actor, now, certificate)
    core = _issuable(doc, closed_months(company, [doc.fecha_emision]))
    # The critical section: the CAF row stays locked from here to the commit.
    ((caf_row, folio),) = _take_folios(company, doc.tipo_dte, timezone.localdate(now), 1)
    stamped = _Stamped(doc, caf_row, _stamp(core, caf_row, folio, signer, now))
    collect = envelope and settings.SII_ENVELOPE_WINDOW > 0
    envelope_row = None
    if envelope and not collect:
        item = EnvelopeItem(core.tipo, stamped.issued.xml)
        envelope_row = _envelope(company, certificate_row, [item], now, signer=signer)
    else:
        _validate_alone(stamped.issued)
    (dte,) = _write_issued([stamped], envelope_row, actor=actor, now=now, collect=collect)
    if envelope_row is not None:
        sending.envelope_enqueue(envelope_row, actor=actor, dtes=[dte])
    if collect:
        sending.collect_soon(company.pk)
    return dte


def _write_issued(
    stamped: Sequence[_Stamped],
    envelope_row: Envelope | None,
    *,
    actor,
    now: datetime,
    collect: bool = False,
) -> list[Dte]:
    """Store issued documents in a few statements, whatever their number: the DTEs (QUEUED in
    `envelope_row`, which the caller then queues, or SIGNED without one), their history, the
    drafts turned issued, the audit trail; the PDFs and what listens to dte_issued follow the
    commit."""
    status = DteStatus.QUEUED if envelope_row is not None else DteStatus.SIGNED
    dtes = [
        Dte(
            company=s.doc.company,
            sales_document=s.doc,
            tipo_dte=s.doc.tipo_dte,
            folio=s.issued.documento.folio,
            caf=s.caf,
            envelope=envelope_row,
            fecha_emision=s.doc.fecha_emision,
            rut_receptor=s.issued.documento.receptor.rut,
            monto_total=s.doc.monto_total,  # pesos (an export's at its rate, OtraMoneda)
            xml=s.issued.file_bytes(),
            signature_value=s.issued.signature_value,
            ted=s.issued.ted.latin1,
            status=status,
            collect=collect,
        )
        for s in stamped
    ]
    with server_bound():
        _insert_issued(dtes, stamped, actor=actor, now=now, queued=envelope_row is not None)
    for dte, s in zip(dtes, stamped, strict=True):
        printing.after_issue(dte)
        signals.dte_issued.send(sender=Dte, dte=dte, document=s.doc)
    return dtes


def _insert_issued(
    dtes: list[Dte], stamped: Sequence[_Stamped], *, actor, now: datetime, queued: bool
) -> None:
    try:
        Dte.objects.bulk_create(dtes)
    except IntegrityError as exc:  # the folio exists already: a CAF uploaded twice by hand?
        folios = ", ".join(str(d.folio) for d in dtes[:3])
        raise DomainError(errors.NO_FOLIOS, f"El folio {folios} ya fue usado.") from exc
    user = user_or_none(actor)
    events = []
    for dte in dtes:
        message = f"Folio {dte.folio} timbrado y firmado."
        events.append(DteEvent(dte=dte, status=DteStatus.SIGNED, message=message, actor=user))
        if queued:
            events.append(
                DteEvent(
                    dte=dte, status=DteStatus.QUEUED, message=sending.QUEUED_MESSAGE, actor=user
                )
            )
    DteEvent.objects.bulk_create(events)
    docs = []
    audits = []
    for s in stamped:
        doc, folio = s.doc, s.issued.documento.folio
        doc.state, doc.folio, doc.issued_at = DocumentState.ISSUED, folio, now
        doc.updated_by, doc.updated_at = user, timezone.now()
        docs.append(doc)
        audits.append(
            audit_event(
                company=doc.company,
                actor=actor,
                action=AuditEvent.Action.UPDATE,
                obj=doc,
                changes={"state": ["draft", "issued"], "folio": [None, folio]},
            )
        )
    fields = ["state", "folio", "issued_at", "updated_by", "updated_at"]
    if len(docs) == 1:
        docs[0].save(update_fields=fields)
    else:
        update_rows(SalesDocument, docs, fields)
    AuditEvent.objects.bulk_create(audits)


def _validate_alone(issued: IssuedDte) -> None:
    kind = (
        schemas.SchemaKind.BOLETA_DTE
        if doc_type(issued.documento.tipo).gross_prices
        else schemas.SchemaKind.DTE
    )
    problems = schemas.validate(kind, issued.file_bytes())
    if problems:
        raise DomainError(
            errors.SCHEMA_INVALID,
            "El documento generado no cumple el esquema del SII: " + problems[0],
            {"xml": problems[:5]},
        )


@dataclass(frozen=True)
class IssueOutcome:
    document: SalesDocument
    dte: Dte | None = None
    error: DomainError | None = None


class _ChunkFailed(Exception):
    """The fast path of a chunk could not finish (an envelope the schema refuses, a folio
    already stored): its transaction is rolled back and its drafts go one by one."""


def dte_issue_many(
    *, documents: Iterable[SalesDocument], actor, now: datetime | None = None, progress=None
) -> tuple[list[IssueOutcome], list[Envelope]]:
    """Issue many drafts and wrap them in envelopes (EnvioDTE up to 2,000 documents, EnvioBOLETA
    up to 500). A refusal stops only its own document, and no folio is burned by one.

    The drafts of a company go in chunks of ISSUE_CHUNK, each in one transaction: drafts
    loaded in four queries, checked, folios taken for all in one lock, stamped and signed,
    enveloped and validated, then stored in a few bulk statements. When a chunk's fast path
    fails as a whole it is rolled back and its drafts are issued one by one instead, each in
    its own transaction, so the one at fault is found and the others still go."""
    now = now or timezone.now()
    documents = list(documents)
    by_company: dict[int, list[SalesDocument]] = {}
    # Notas after the rest: a nota may modify a document issued earlier in the same batch.
    for document in sorted(documents, key=lambda d: TipoDte(d.tipo_dte).is_note):
        by_company.setdefault(document.company_id, []).append(document)
    results: dict[int, IssueOutcome] = {}
    envelopes: list[Envelope] = []

    def report(outcomes: list[IssueOutcome]) -> None:
        for outcome in outcomes:
            results[outcome.document.pk] = outcome
            if progress:
                progress(outcome)

    for company_docs in by_company.values():
        company = company_docs[0].company
        try:
            certificate_row = selectors.certificate_for_signing(company, actor, now)
        except DomainError as exc:
            report([IssueOutcome(document=d, error=exc) for d in company_docs])
            continue
        for chunk in _chunks(company_docs):
            try:
                outcomes, made = _issue_chunk(chunk, certificate_row, actor=actor, now=now)
            except _ChunkFailed as exc:
                log.info("batch chunk of %s drafts goes one by one: %s", len(chunk), exc)
                outcomes, made = _issue_one_by_one(chunk, certificate_row, actor=actor, now=now)
            report(outcomes)
            envelopes.extend(made)
    return [results[d.pk] for d in documents], envelopes


def _chunks(docs: list[SalesDocument]) -> Iterable[list[SalesDocument]]:
    for start in range(0, len(docs), ISSUE_CHUNK):
        yield docs[start : start + ISSUE_CHUNK]


@transaction.atomic
def _issue_chunk(
    chunk: Sequence[SalesDocument], certificate_row: Certificate, *, actor, now: datetime
) -> tuple[list[IssueOutcome], list[Envelope]]:
    locked = {d.pk: d for d in _drafts_for_issue().filter(pk__in=[d.pk for d in chunk])}
    company = chunk[0].company
    try:
        certificate_row, signer = _signing(company, actor, now, certificate_row)
    except DomainError as exc:
        return [IssueOutcome(document=d, error=exc) for d in chunk], []
    closed = closed_months(company, [d.fecha_emision for d in locked.values()])
    refused: dict[int, DomainError] = {}
    stamped: list[_Stamped] = []
    written: dict[int, Dte] = {}  # by draft: those stored before their envelope exists
    # Notas in a second pass, once what they may modify is stored as issued; without notas,
    # one pass, and each document is stored once, in its envelope.
    notes_follow = any(d.tipo.is_note for d in locked.values())
    for is_note in (False, True) if notes_follow else (None,):
        ready: list[tuple[SalesDocument, Core]] = []
        for requested in chunk:
            doc = locked.get(requested.pk)
            if doc is None:
                missing = DomainError(DOCUMENT_NOT_DRAFT, "El documento ya no existe.")
                refused[requested.pk] = missing
            elif is_note is None or doc.tipo.is_note == is_note:
                try:
                    ready.append((doc, _issuable(doc, closed)))
                except DomainError as exc:
                    refused[doc.pk] = exc
        passed = _stamp_all(ready, company, signer, now, refused)
        if passed and is_note is False:
            try:
                stored = _write_issued(passed, None, actor=actor, now=now)
            except Exception as exc:  # a folio stored already: found one by one
                raise _ChunkFailed(_reason(exc)) from exc
            written.update((s.doc.pk, dte) for s, dte in zip(passed, stored, strict=True))
        stamped.extend(passed)
    envelopes = []
    issued: list[tuple[_Stamped, Dte]] = []
    try:
        for group in _envelope_groups(stamped):
            items = [EnvelopeItem(TipoDte(s.doc.tipo_dte), s.issued.xml) for s in group]
            envelope_row = _envelope(company, certificate_row, items, now, signer=signer)
            early = [written[s.doc.pk] for s in group if s.doc.pk in written]
            if early:
                Dte.objects.filter(pk__in=[d.pk for d in early]).update(envelope=envelope_row)
            fresh = [s for s in group if s.doc.pk not in written]
            made = iter(_write_issued(fresh, envelope_row, actor=actor, now=now) if fresh else [])
            dtes = [written[s.doc.pk] if s.doc.pk in written else next(made) for s in group]
            sending.envelope_enqueue(envelope_row, actor=actor, dtes=dtes)
            issued.extend(zip(group, dtes, strict=True))
            envelopes.append(envelope_row)
    except Exception as exc:  # the one-by-one path finds the document at fault, if any
        raise _ChunkFailed(_reason(exc)) from exc
    dtes_by_doc = {s.doc.pk: dte for s, dte in issued}
    outcomes = [
        IssueOutcome(document=locked.get(d.pk, d), dte=dtes_by_doc[d.pk])
        if d.pk in dtes_by_doc
        else IssueOutcome(document=locked.get(d.pk, d), error=refused[d.pk])
        for d in chunk
    ]
    return outcomes, envelopes


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, DomainError) else type(exc).__name__


def _stamp_all(
    ready: list[tuple[SalesDocument, Core]],
    company: Company,
    signer,
    now: datetime,
    refused: dict[int, DomainError],
) -> list[_Stamped]:
    """Folios for all, one lock per type (the critical section, held to the commit), then the
    TED and the signature of each. Drafts left without a folio are refused, not failed."""
    by_type: dict[int, list[tuple[SalesDocument, Core]]] = {}
    for doc, core in ready:
        by_type.setdefault(doc.tipo_dte, []).append((doc, core))
    today = timezone.localdate(now)
    stamped = []
    for tipo, group in sorted(by_type.items()):
        try:
            folios = _take_folios(company, tipo, today, len(group))
        except DomainError as exc:
            folios = []
            refused.update((doc.pk, exc) for doc, _ in group)
        for (doc, core), (caf_row, folio) in zip(group, folios, strict=False):
            try:
                stamped.append(_Stamped(doc, caf_row, _stamp(core, caf_row, folio, signer, now)))
            except DomainError as exc:
                raise _ChunkFailed(exc.message) from exc
        for doc, _ in group[len(folios) :]:
            refused.setdefault(doc.pk, _no_folios(tipo))
    return stamped


def _envelope_groups(stamped: list[_Stamped]) -> list[list[_Stamped]]:
    """Boletas and the rest go in envelopes of their own kinds, each up to its SII limit."""
    groups: dict[bool, list[_Stamped]] = {}
    for s in stamped:
        groups.setdefault(TipoDte(s.doc.tipo_dte).gross_prices, []).append(s)
    result: list[list[_Stamped]] = []
    for is_boleta, group in groups.items():
        size = MAX_BOLETAS if is_boleta else MAX_DTES
        result.extend(group[i : i + size] for i in range(0, len(group), size))
    return result


def _issue_one_by_one(
    chunk: Sequence[SalesDocument], certificate_row: Certificate, *, actor, now: datetime
) -> tuple[list[IssueOutcome], list[Envelope]]:
    """The slow path: each draft in its own transaction, then the issued ones enveloped."""
    outcomes = []
    for document in chunk:
        try:
            dte = dte_issue(
                document=document,
                actor=actor,
                now=now,
                envelope=False,
                certificate=certificate_row,
            )
            outcomes.append(IssueOutcome(document=document, dte=dte))
        except DomainError as exc:
            outcomes.append(IssueOutcome(document=document, error=exc))
    issued = [o.dte for o in outcomes if o.dte is not None]
    envelopes = _envelope_or_leave_signed(issued, actor=actor, now=now) if issued else []
    return outcomes, envelopes


def _envelope_or_leave_signed(dtes: Sequence[Dte], *, actor, now: datetime) -> list[Envelope]:
    """Wrap issued documents; if that fails they stay SIGNED with the reason in their history,
    and the beat tick wraps and sends them (envelope_stranded). Folios are never stranded."""
    try:
        return envelope_create(dtes=dtes, actor=actor, now=now)
    except Exception as exc:
        reason = _reason(exc)
        log.warning("envelope for %s documents failed: %s", len(dtes), reason)
        _note_unenveloped(dtes, reason)
        return []


def _note_unenveloped(dtes: Sequence[Dte], reason: str) -> None:
    message = f"No se pudo armar el sobre ({reason}); se reintentará automáticamente."
    with transaction.atomic():
        for dte in dtes:
            last = dte.events.order_by("-at", "-id").values_list("message", flat=True).first()
            if last != message:  # one line per reason, not one per beat tick
                DteEvent.objects.create(dte=dte, status=dte.status, message=message)


@dataclass(frozen=True)
class OutboxDue:
    enveloped: int
    to_send: list[int]
    to_ask: list[int]
    # Certification libros (dte.libro_sending) due for an upload and for a question.
    libros_to_send: list[int] = field(default_factory=list)
    libros_to_ask: list[int] = field(default_factory=list)


def outbox_tick(now: datetime | None = None) -> OutboxDue:
    """What the beat does each tick: envelope stranded signed documents, then claim the
    envelopes due for an upload and those to ask the SII about (dte.sending.outbox_claim), and
    the certification libros likewise (dte.libro_sending.libro_claim)."""
    enveloped = envelope_stranded(now)
    to_send, to_ask = sending.outbox_claim(now)
    libros_to_send, libros_to_ask = libro_sending.libro_claim(now)
    return OutboxDue(enveloped, to_send, to_ask, libros_to_send, libros_to_ask)


def envelope_stranded(now: datetime | None = None) -> int:
    """The beat tick: envelope and send signed documents left without an envelope for longer
    than SII_ENVELOPE_GRACE. Returns how many documents were enveloped."""
    now = now or timezone.now()
    done = 0
    for company_id, ids in sending.stranded_documents(now).items():
        dtes = list(
            Dte.objects.filter(
                pk__in=ids, company_id=company_id, status=DteStatus.SIGNED, envelope__isnull=True
            ).select_related("company")
        )
        if dtes and _envelope_or_leave_signed(dtes, actor=None, now=now):
            done += len(dtes)
    return done


@transaction.atomic
def envelope_create(*, dtes: Sequence[Dte], actor, now: datetime | None = None) -> list[Envelope]:
    """Wrap signed DTEs of one company in validated envelopes, without touching their bytes."""
    now = now or timezone.now()
    company = dtes[0].company
    if any(d.company_id != company.pk for d in dtes):
        raise DomainError("invalid_input", "Los DTE de un sobre deben ser de una sola empresa.")
    certificate_row = selectors.certificate_for_signing(company, actor, now)
    groups: dict[bool, list[Dte]] = {}
    for dte in dtes:
        groups.setdefault(TipoDte(dte.tipo_dte).gross_prices, []).append(dte)
    envelopes = []
    for is_boleta, group in groups.items():
        size = MAX_BOLETAS if is_boleta else MAX_DTES
        for start in range(0, len(group), size):
            chunk = group[start : start + size]
            items = [EnvelopeItem(TipoDte(d.tipo_dte), d.signed_element()) for d in chunk]
            row = _envelope(company, certificate_row, items, now)
            Dte.objects.filter(pk__in=[d.pk for d in chunk]).update(envelope=row)
            sending.envelope_enqueue(row, actor=actor)
            envelopes.append(row)
    return envelopes


# Documents one run of envelope_collect takes; a run that took this many asks for another.
COLLECT_LIMIT = MAX_DTES


def envelope_collect(company_id: int, follow_up: bool = False) -> int:
    """The task SII_ENVELOPE_WINDOW seconds after an issue: the company's signed documents not
    yet enveloped go in shared envelopes, queued for the SII. Rows another run holds are skipped,
    not waited for. A run asks for one more a window later (a follow-up), which catches any
    issue that committed just after this one looked; a follow-up that finds nothing ends the
    chain. Returns how many it took."""
    with transaction.atomic():
        dtes = list(
            Dte.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                company_id=company_id,
                status=DteStatus.SIGNED,
                envelope__isnull=True,
                collect=True,
            )
            .select_related("company")
            .order_by("pk")[:COLLECT_LIMIT]
        )
        made = _envelope_or_leave_signed(dtes, actor=None, now=timezone.now()) if dtes else []
    if made or (not dtes and not follow_up):  # after a failure, the beat's stranded sweep
        sending.collect_again(company_id)
    return len(dtes)


# ---------------------------------------------------------------- after the SII's verdict


def dte_refresh(*, dte: Dte, actor) -> bool:
    """Staff's "Actualizar estado": queue a question to the SII and return at once (the SII's
    I/O never runs inside a web request). False when there is nothing to ask about."""
    envelope = dte.envelope
    if envelope is None or envelope.status not in (Envelope.Status.SENT, Envelope.Status.UNCERTAIN):
        return False
    Envelope.objects.filter(pk=envelope.pk).update(next_attempt_at=timezone.now())
    sending.queue_refresh(envelope.pk)
    return True


def dte_retry(*, dte: Dte, actor) -> None:
    """An admin's retry of a document whose sending needs attention."""
    if dte.status != DteStatus.NEEDS_ATTENTION or dte.envelope_id is None:
        raise DomainError("invalid_state", "Solo se reintenta un documento que requiere atención.")
    envelope_retry(envelope=dte.envelope, actor=actor)


def envelope_retry(*, envelope: Envelope, actor) -> Envelope:
    """Send again an envelope that needs attention, as it is (a permission granted, the SII
    back). An envelope the SII refused unjudged after reading it would be refused again: that
    one is re-enveloped instead."""
    if envelope.status != Envelope.Status.NEEDS_ATTENTION:
        raise DomainError("invalid_state", "Solo se reintenta un sobre que requiere atención.")
    if envelope.track_id and envelope.sii_estado in NOT_JUDGED:
        message = (
            f"El SII rechazó este sobre sin revisar sus documentos ({envelope.sii_estado}); "
            "reenviarlo igual no sirve: corrija la causa y reensóbrelo (mismos folios)."
        )
        raise DomainError("invalid_state", message)
    return sending.envelope_retry(envelope.pk, actor=actor)


@transaction.atomic
def envelope_reenvelope(
    *, envelope: Envelope, actor, now: datetime | None = None
) -> list[Envelope]:
    """The documents of an envelope that needs attention go again in a new envelope, with the
    same signed bytes and folios, under today's carátula (resolution, certificate). The old
    envelope is SUPERSEDED. A document the SII also got through the old one is then reported
    repeated and followed, so no folio ends accepted twice."""
    now = now or timezone.now()
    old = Envelope.objects.select_for_update().get(pk=envelope.pk)
    if old.status != Envelope.Status.NEEDS_ATTENTION:
        raise DomainError("invalid_state", "Solo se reensobra un sobre que requiere atención.")
    dtes = list(
        old.dtes.select_for_update()
        .filter(status__in=(DteStatus.NEEDS_ATTENTION, DteStatus.QUEUED))
        .order_by("pk")
    )
    if not dtes:
        raise DomainError("invalid_state", "El sobre no tiene documentos pendientes.")
    new = envelope_create(dtes=dtes, actor=actor, now=now)  # queues them: the same folios
    old.replaced_by = new[0]
    names = ", ".join(f"#{e.pk}" for e in new)
    for dte in Dte.objects.filter(pk__in=[d.pk for d in dtes]):
        sending.note(dte, f"Reensobrado con el mismo folio (sobre #{old.pk} → {names}).")
    sending.envelope_move(
        old, Envelope.Status.SUPERSEDED, f"Documentos reensobrados en {names}.", actor=actor
    )
    audit_record(
        company=old.company,
        actor=actor,
        action=AuditEvent.Action.UPDATE,
        obj=old,
        changes={"status": ["needs_attention", "superseded"], "replaced_by": names},
    )
    return new


@transaction.atomic
def dte_reissue_draft(*, dte: Dte, actor) -> SalesDocument:
    """A rejected document, corrected: a new draft with the same content to edit and issue.

    The rejected one stays on record, issued and rejected, with the SII's reason; the new
    draft will take a new folio when issued.
    """
    from erp import services as erp_services

    if dte.status != DteStatus.REJECTED or dte.sales_document is None:
        raise DomainError("invalid_state", "Solo se corrige y reemite un documento rechazado.")
    original = dte.sales_document
    data = {
        "tipo_dte": original.tipo_dte,
        "fecha_emision": timezone.localdate(),
        "fecha_vencimiento": original.fecha_vencimiento,
        "forma_pago": original.forma_pago,
        "partner": original.partner_id,
        "global_discount_type": original.global_discount_type,
        "global_discount_value": original.global_discount_value,
        "global_surcharge_type": original.global_surcharge_type,
        "global_surcharge_value": original.global_surcharge_value,
        "notes": f"Reemisión del folio {dte.folio} rechazado por el SII. {original.notes}".strip(),
        **{f: getattr(original, f) for f in erp_services.GUIA_FIELDS},
        **{f: getattr(original, f) for f in erp_services.EXPORT_FIELDS},
        "commissions": [
            {f: getattr(c, f) for f in erp_services.COMMISSION_FIELDS}
            for c in original.commissions.all()
        ],
        "lines": [
            {
                f: (line.product_id if f == "product" else getattr(line, f))
                for f in erp_services.LINE_FIELDS
            }
            for line in original.lines.all()
        ],
        "references": [
            {f: getattr(ref, f) for f in erp_services.REFERENCE_FIELDS}
            for ref in original.references.all()
        ],
    }
    return erp_services.sales_document_create(company=original.company, actor=actor, data=data)
