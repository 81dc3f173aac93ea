"""The intercambio stage of the SII's certification (DOMAIN.md §12 and §16).

    exchange_take_in(company=, actor=, data=, filename=)  -> ExchangeOutcome
    exchange_outcome(company=, envelope=)                 -> ExchangeOutcome   (shown again)
    exchange_answers_zip(company=, envelope=)             -> bytes             (to upload)
    exchange_envelopes(company=)                          -> the SII's test envelopes taken in

The SII hands the company being certified an EnvioDTE addressed to it, from the SII's test
issuer (RUT 88888888-8), and expects three files back on its certification site:

1. RespuestaDTE with RecepcionEnvio: the envelope's reception and each DTE's. It is the answer
   receiving makes on intake (dte.receiving.receive), kept on the ReceivedEnvelope; it is taken
   as it is (rebuilt from the stored envelope only when the envelope was taken in earlier, from
   "Recibidos", before the company had a certificate).
2. RespuestaDTE with ResultadoDTE: the commercial answer, one ResultadoDTE per document, in
   ONE file (the SII's form takes one file per answer, not one per document): documents
   received conforming are accepted (EstadoDTE 0); documents refused at the reception (a
   signature or a stamp that fails, …) are rejected (EstadoDTE 2, CodRchDsc -1) with the
   reception's reasons; documents that name another issuer or receiver cannot be answered at
   all (the schema ties each ResultadoDTE to RutRecibe and RutResponde) and are reported.
3. EnvioRecibos: the Ley 19.983 receipt of goods, one signed Recibo per ACCEPTED document
   (the SII asks for it only for accepted documents), at `recinto` ("Oficina central" unless
   told), signed by the company's certificate (RutFirma is its holder).

The envelope goes through the normal receiving path, so it shows in "Recibidos" with its
documents and history like any supplier's, and the same file uploaded again is recognised
(receiving answers it as a repeated file and stores nothing): this module then gives back the
answers already made. All answers are signed with the certificate receiving signs with (one
not restricted to some users), checked against the SII's XSDs before they are kept, and kept on
the documents (ReceivedDte.result_xml / receipt_xml hold the envelope's combined files), so the
downloads in "Recibidos" give the same files as the ZIP.

The SII's confirmation and the RCV are deliberately left out here. In production,
receiving.accept and receiving.acknowledge_goods refuse until QueryEstDte says DOK (the SII has
the document: `_require_confirmed`, DomainError code `not_confirmed`), then record ACD / ERM at
the SII's RCV and book the purchase. The SII's test documents are made up for the exercise,
under a test issuer that is no real taxpayer: they are not documents the SII received as issued
(we have no sign that QueryEstDte confirms them or that the RCV holds them, and the tools that
answer this stage elsewhere do not ask), so requiring DOK would block the stage for good, and
the stage checks the three files, not the RCV. So this module:
- builds the ResultadoDTE and the EnvioRecibos itself (dte.core.exchange, as receiving does),
  without asking the SII and without recording anything at the RCV;
- marks the accepted documents accepted (so that neither the beat job keeps asking the SII
  about them nor anybody is warned of a claim deadline), with a history entry that says why;
- books NO purchase: the SII's test documents are not the company's purchases, and its books
  (libro de compras, F29) carry on into production;
- e-mails nothing beyond what intake does: the answers go to the SII through its site.
Intake itself still queues what it queues for any envelope (the RecepcionEnvio by mail to the
issuer's address when the file has one, and a QueryEstDte per document, whose answer is
recorded on the document and changes no decision); that is receiving's behaviour, left as is.
To keep that shortcut from ever touching a real supplier's documents, only an envelope from
the SII's test issuer is taken in here, and not for a company already in production; anything
else is refused with the reason (a real supplier's envelope belongs in "Recibidos").
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from lxml import etree

from dte import receiving, selectors
from dte.core import exchange, intake
from dte.core.certificate import Certificate
from dte.core.schemas import SchemaKind, XmlError, safe_parse, validate
from dte.keyring import load_certificate
from dte.models import (
    CommercialResult,
    IntakeSource,
    ReceivedDte,
    ReceivedDteEvent,
    ReceivedEnvelope,
    ReceivedEventKind,
    ReceivedStatus,
)
from dte.sii_keys import verification_keys
from erp.errors import INVALID_INPUT, DomainError, NotFound
from erp.models import Company, SiiEnvironment
from erp.rut import normalize_rut

SII_TEST_EMISOR = "88888888-8"  # the issuer of the SII's intercambio envelope
DEFAULT_RECINTO = "Oficina central"
MAX_FILE = 10 * 1024 * 1024  # the SII's envelope holds a few documents: some KiB

EXCHANGE_INCOMPLETE = "exchange_incomplete"
NOT_CERTIFYING = "not_certifying"

_ANSWERABLE = exchange.ANSWERABLE_TYPES
# Reception states whose document names another issuer or receiver: no ResultadoDTE can name it.
_UNADDRESSED = (
    exchange.EstadoRecepDTE.ERROR_RUT_EMISOR,
    exchange.EstadoRecepDTE.ERROR_RUT_RECEPTOR,
)
_ACCEPTED_RESULTS = (CommercialResult.ACCEPTED, CommercialResult.DISCREPANCIES)


# --- Outcome --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeDocument:
    """One document of the SII's envelope and what it got."""

    tipo_dte: int | None
    folio: int | None
    rut_emisor: str
    fecha_emision: date | None
    monto_total: int | None
    received: ReceivedDte | None  # None when it was not stored (unreadable, or a repeat)
    estado_recep_dte: int | None  # EstadoRecepDTE in the reception answer
    resultado: str  # CommercialResult: "0" accepted, "1" with discrepancies, "2" rejected, ""
    goods_receipt: bool  # a Recibo (Ley 19.983) for it is in the EnvioRecibos
    problem: str  # in Spanish; "" when it was received, accepted and its goods acknowledged

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.received.pk if self.received is not None else None,
            "tipo_dte": self.tipo_dte,
            "folio": self.folio,
            "rut_emisor": self.rut_emisor,
            "fecha_emision": self.fecha_emision.isoformat() if self.fecha_emision else None,
            "monto_total": self.monto_total,
            "estado_recep_dte": self.estado_recep_dte,
            "resultado": self.resultado,
            "recibo": self.goods_receipt,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class ExchangeOutcome:
    """The SII's envelope as taken in, its documents, and the three answers (None when an
    answer could not be made; `problems` says why)."""

    envelope: ReceivedEnvelope
    documents: tuple[ExchangeDocument, ...]
    recepcion_xml: bytes | None  # RespuestaDTE / RecepcionEnvio
    resultado_xml: bytes | None  # RespuestaDTE / ResultadoDTE, every answerable document
    recibos_xml: bytes | None  # EnvioRecibos, every accepted document
    repeated: bool  # this upload was a file taken in before: nothing new was stored
    problems: tuple[str, ...]  # in Spanish, about the envelope or its answers

    @property
    def complete(self) -> bool:
        """The three answers exist and every document was accepted and acknowledged."""
        return (
            self.recepcion_xml is not None
            and self.resultado_xml is not None
            and self.recibos_xml is not None
            and not self.problems
            and all(not d.problem for d in self.documents)
        )

    def files(self) -> list[tuple[str, bytes]]:
        """The answers that exist, with the names they are uploaded with."""
        names = answer_filenames(self.envelope.company)
        answers = (
            ("recepcion", self.recepcion_xml),
            ("resultado", self.resultado_xml),
            ("recibos", self.recibos_xml),
        )
        return [(names[kind], data) for kind, data in answers if data is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.pk,
            "name": self.envelope.name,
            "envio_id": self.envelope.envio_id,
            "estado_recep_env": self.envelope.estado_recep_env,
            "repeated": self.repeated,
            "complete": self.complete,
            "files": [name for name, _ in self.files()],
            "documents": [d.to_dict() for d in self.documents],
            "problems": list(self.problems),
        }


def answer_filenames(company: Company) -> dict[str, str]:
    """The three answers' file names, by kind ("recepcion", "resultado", "recibos")."""
    return {
        "recepcion": f"RespuestaDTE--{company.rut}--recepcion.xml",
        "resultado": f"RespuestaDTE--{company.rut}--resultado.xml",
        "recibos": f"EnvioRecibos--{company.rut}.xml",
    }


def exchange_zip_filename(company: Company, envelope: ReceivedEnvelope) -> str:
    return f"intercambio--{company.rut}--{envelope.pk}.zip"


# --- Taking the SII's envelope in -----------------------------------------------------------


def _refuse(message: str, field: str = "file", code: str = INVALID_INPUT) -> DomainError:
    return DomainError(code, message, {field: message})


def _check_company(company: Company) -> None:
    if company.sii_environment == SiiEnvironment.PRODUCTION:
        raise _refuse(
            "La empresa ya emite en producción: la etapa de intercambio de la certificación "
            "quedó atrás. Los envíos de proveedores se reciben en «Recibidos».",
            field="sii_environment",
            code=NOT_CERTIFYING,
        )


def _text(parent: etree._Element | None, tag: str) -> str:
    found = parent.find(f"{{*}}{tag}") if parent is not None else None
    return (found.text or "").strip() if found is not None else ""


def _same_rut(value: str, rut: str) -> bool:
    try:
        return bool(normalize_rut(value) == normalize_rut(rut))
    except ValueError:
        return False


def _check_file(company: Company, data: bytes) -> None:
    """The SII's envelope for this company, or a refusal that says what the file is instead."""
    if not data:
        raise _refuse("El archivo está vacío.")
    if len(data) > MAX_FILE:
        raise _refuse(
            f"El archivo supera {MAX_FILE // 1024 // 1024} MB: no es el envío de intercambio "
            "del SII."
        )
    if zipfile.is_zipfile(io.BytesIO(data)):
        raise _refuse("Es un ZIP: suba el archivo XML del envío que entrega el SII.")
    try:
        root = safe_parse(intake.parseable(data))
    except XmlError:
        raise _refuse("El archivo no es un XML legible.") from None
    local = etree.QName(root).localname if isinstance(root.tag, str) else ""
    if local != "EnvioDTE":
        raise _refuse(
            f"No es un envío de documentos (EnvioDTE) sino «{local or '?'}»: suba el archivo "
            "de intercambio que entrega el SII."
        )
    caratula = root.find("{*}SetDTE/{*}Caratula")
    rut_receptor = _text(caratula, "RutReceptor")
    if not _same_rut(rut_receptor, company.rut):
        raise _refuse(
            f"El envío está dirigido a {rut_receptor or 'nadie'}, no a esta empresa "
            f"({company.rut}): descargue del SII el archivo de intercambio de {company.rut}."
        )
    rut_emisor = _text(caratula, "RutEmisor")
    if not _same_rut(rut_emisor, SII_TEST_EMISOR):
        raise _refuse(
            f"El envío viene de {rut_emisor or 'un emisor sin RUT'}, no del emisor de prueba "
            f"del SII ({SII_TEST_EMISOR}): los envíos de proveedores se reciben en «Recibidos»."
        )
    if root.find("{*}SetDTE/{*}DTE") is None:
        raise _refuse("El envío no contiene documentos.")


def _signer(company: Company, now: datetime) -> Certificate:
    """The certificate receiving signs its answers with (none restricted to some users)."""
    try:
        row = selectors.certificate_for_signing(company, None, now)
        return load_certificate(row.pk, row.fingerprint)
    except DomainError as exc:
        message = (
            f"{exc.message} Las respuestas de intercambio se firman con un certificado de la "
            "empresa que no esté restringido a algunos usuarios."
        )
        raise DomainError(exc.code, message, {"certificate": message}) from None


def _clean_recinto(recinto: str) -> str:
    value = " ".join((recinto or "").split())
    if not value:
        raise _refuse(
            "Indique el lugar donde se recibieron las mercaderías o servicios.", field="recinto"
        )
    if len(value) > 80:
        raise _refuse("El recinto admite hasta 80 caracteres.", field="recinto")
    return value


def exchange_take_in(
    *,
    company: Company,
    actor: Any,
    data: bytes,
    filename: str,
    recinto: str = DEFAULT_RECINTO,
    now: datetime | None = None,
) -> ExchangeOutcome:
    """Take in the SII's intercambio envelope and answer it three ways (module docstring).
    Refuses (DomainError with a field) a file that is not the SII's envelope for this company,
    or a company without a certificate to sign with; the same file again gives back what it got
    (completing an answer that is missing)."""
    now = now or timezone.now()
    _check_company(company)
    recinto = _clean_recinto(recinto)
    _check_file(company, data)
    signer = _signer(company, now)
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1][-200:] or "intercambio.xml"
    with transaction.atomic():
        result = receiving.receive(
            company=company,
            uploads=[(name, data)],
            source=IntakeSource.UPLOAD,
            actor=actor,
            now=now,
        )
        if len(result.envelopes) != 1 or result.envelopes[0].envelope_id is None:
            raise _refuse(
                "; ".join(result.problems) or "El archivo no se pudo recibir como un envío."
            )
        taken = result.envelopes[0]
        envelope = ReceivedEnvelope.objects.select_for_update().get(pk=taken.envelope_id)
        problems = _answer(company, envelope, signer, recinto=recinto, actor=actor, now=now)
    return _outcome(
        company,
        envelope,
        repeated=taken.repeated,
        intake_documents=() if taken.repeated else taken.documents,
        extra_problems=problems,
    )


def exchange_outcome(*, company: Company, envelope: ReceivedEnvelope) -> ExchangeOutcome:
    """What the SII's envelope got, from what is stored (to show it again)."""
    _own(company, envelope)
    return _outcome(company, envelope, repeated=False, intake_documents=(), extra_problems=())


def exchange_envelopes(*, company: Company) -> QuerySet[ReceivedEnvelope]:
    """The SII's intercambio envelopes taken in by the company, newest first."""
    return ReceivedEnvelope.objects.filter(company=company, rut_emisor=SII_TEST_EMISOR)


def exchange_answers_zip(*, company: Company, envelope: ReceivedEnvelope) -> bytes:
    """The answers to upload on the SII's site, named as answer_filenames says: the reception
    and the commercial result always, the EnvioRecibos when a document was accepted."""
    outcome = exchange_outcome(company=company, envelope=envelope)
    missing = []
    if outcome.recepcion_xml is None:
        missing.append("el acuse de recibo del envío (RecepcionEnvio)")
    if outcome.resultado_xml is None:
        missing.append("la respuesta comercial (ResultadoDTE)")
    if missing:
        message = f"Falta {' y '.join(missing)}: " + (
            "; ".join(outcome.problems) or "suba de nuevo el archivo del SII."
        )
        raise DomainError(EXCHANGE_INCOMPLETE, message, {"envelope": message})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in outcome.files():
            archive.writestr(name, data)
    return buffer.getvalue()


def _own(company: Company, envelope: ReceivedEnvelope) -> None:
    if envelope.company_id != company.pk:
        raise NotFound("Envío no encontrado.")


# --- The answers ----------------------------------------------------------------------------


def _answerable(row: ReceivedDte, envelope: ReceivedEnvelope) -> bool:
    """Whether a ResultadoDTE can name the document: an answerable type, from the envelope's
    issuer, to us."""
    return (
        row.tipo_dte in _ANSWERABLE
        and _same_rut(row.rut_emisor, envelope.rut_emisor)
        and row.estado_recep_dte not in _UNADDRESSED
    )


def _decision(row: ReceivedDte) -> tuple[exchange.EstadoDTE, str, int | None]:
    """The commercial answer to a document: accepted when it was received conforming (or
    already accepted), rejected with the reception's reasons otherwise."""
    if row.status == ReceivedStatus.ACCEPTED and row.commercial_result in _ACCEPTED_RESULTS:
        estado = exchange.EstadoDTE(int(row.commercial_result))
        return estado, row.commercial_glosa or estado.glosa, None
    if row.status in (ReceivedStatus.RECEIVED, ReceivedStatus.ACCEPTED):
        return exchange.EstadoDTE.ACEPTADO, exchange.EstadoDTE.ACEPTADO.glosa, None
    if row.status == ReceivedStatus.CLAIMED:
        glosa = row.commercial_glosa or exchange.EstadoDTE.RECHAZADO.glosa
    else:
        glosa = "; ".join(row.reasons) or exchange.EstadoDTE.RECHAZADO.glosa
    return exchange.EstadoDTE.RECHAZADO, glosa[:256], exchange.COD_RCH_DSC_GENERICO


def _one(values: list[Any]) -> bytes | None:
    """The file every row keeps, when they all keep the same one."""
    distinct = {bytes(v) for v in values if v}
    if len(distinct) != 1 or any(not v for v in values):
        return None
    return distinct.pop()


def _answered(rows: list[ReceivedDte]) -> bool:
    accepted = [r for r in rows if r.commercial_result in _ACCEPTED_RESULTS]
    return (
        _one([r.result_xml for r in rows]) is not None
        and all(r.commercial_result for r in rows)
        and (not accepted or _one([r.receipt_xml for r in accepted]) is not None)
    )


def _answer(
    company: Company,
    envelope: ReceivedEnvelope,
    signer: Certificate,
    *,
    recinto: str,
    actor: Any,
    now: datetime,
) -> tuple[str, ...]:
    """Make whatever answer the envelope still lacks (nothing, for a file answered before), in
    the caller's transaction; problems in Spanish."""
    problems: list[str] = []
    rows = list(ReceivedDte.objects.select_for_update().filter(envelope=envelope).order_by("pk"))
    if not envelope.response_xml:
        problem = _rebuild_recepcion(company, envelope, rows, signer, now)
        if problem:
            problems.append(problem)
    answerable = [r for r in rows if _answerable(r, envelope)]
    if not answerable or _answered(answerable):
        return tuple(problems)
    decisions = {r.pk: _decision(r) for r in answerable}
    accepted = [r for r in answerable if decisions[r.pk][0] != exchange.EstadoDTE.RECHAZADO]
    caratula = receiving.answer_caratula(company, envelope.rut_emisor)
    try:
        resultado = exchange.build_resultado_dte(
            [
                exchange.ResultadoDte(
                    dte=receiving.dte_recibido(company, r),
                    cod_envio=envelope.pk,
                    estado=decisions[r.pk][0],
                    glosa=decisions[r.pk][1],
                    cod_rch_dsc=decisions[r.pk][2],
                )
                for r in answerable
            ],
            caratula=caratula,
            id_respuesta=envelope.pk,
            timestamp=now,
            key=signer,
        )
        recibos = (
            exchange.build_envio_recibos(
                [
                    exchange.Recibo(dte=receiving.dte_recibido(company, r), recinto=recinto)
                    for r in accepted
                ],
                caratula=caratula,
                rut_firma=selectors.signer_rut(signer),
                timestamp=now,
                key=signer,
            )
            if accepted
            else None
        )
    except (ValueError, DomainError) as exc:
        reason = getattr(exc, "message", str(exc))
        return (*problems, f"No se pudieron firmar las respuestas: {reason}")
    invalid = _schema_problems(SchemaKind.RESPUESTA_DTE, resultado, "La respuesta comercial")
    if recibos is not None:
        invalid += _schema_problems(SchemaKind.ENVIO_RECIBOS, recibos, "El recibo de mercaderías")
    if invalid:
        return (*problems, *invalid)
    for row in answerable:
        _record(row, decisions[row.pk], resultado, recibos, recinto, actor, now)
    return tuple(problems)


def _schema_problems(kind: SchemaKind, data: bytes, what: str) -> list[str]:
    errors = validate(kind, data)
    return [f"{what} no cumple el esquema del SII: {errors[0]}"] if errors else []


def _record(
    row: ReceivedDte,
    decision: tuple[exchange.EstadoDTE, str, int | None],
    resultado: bytes,
    recibos: bytes | None,
    recinto: str,
    actor: Any,
    now: datetime,
) -> None:
    estado, glosa, _ = decision
    accepted = estado != exchange.EstadoDTE.RECHAZADO
    row.commercial_result = str(int(estado))
    row.commercial_glosa = glosa[:256]
    row.result_xml = resultado
    if accepted:
        row.status = ReceivedStatus.ACCEPTED
        row.receipt_xml = recibos
        row.goods_received_at = row.goods_received_at or now
    row.save()
    if accepted:
        message = (
            "Certificación (intercambio): aceptado en la respuesta al SII (ResultadoDTE) y "
            f"recibo de mercaderías (Ley 19.983) en {recinto}. Documento de prueba del SII: "
            "no se consulta al SII, no se registra en el RCV ni en el libro de compras."
        )
    else:
        message = f"Certificación (intercambio): rechazado en la respuesta al SII ({glosa})."
    ReceivedDteEvent.objects.create(
        received_dte=row,
        kind=ReceivedEventKind.ANSWER,
        code=str(int(estado)),
        message=message,
        actor=actor if getattr(actor, "pk", None) else None,
    )


def _rebuild_recepcion(
    company: Company,
    envelope: ReceivedEnvelope,
    rows: list[ReceivedDte],
    signer: Certificate,
    now: datetime,
) -> str:
    """The RecepcionEnvio of an envelope taken in before the company could sign (receiving then
    stores none), from the stored file and what its documents got; "" or the problem."""
    reading = intake.read_envelope(
        envelope.name, bytes(envelope.xml), receptor_rut=company.rut, sii_keys=verification_keys()
    )
    stored = {(r.rut_emisor, r.tipo_dte, r.folio): r for r in rows}
    documentos = []
    for document in reading.documents:
        facts = document.facts
        if facts is None or facts.tipo_dte not in _ANSWERABLE:
            continue
        row = stored.get((facts.rut_emisor, facts.tipo_dte, facts.folio))
        if row is not None:
            estado = exchange.EstadoRecepDTE(row.estado_recep_dte)
            glosa = "; ".join(row.reasons) or estado.glosa
        elif document.estado != exchange.EstadoRecepDTE.OK:
            estado, glosa = document.estado, "; ".join(document.reasons)
        else:  # stored under an earlier envelope: a repeat when this one was taken in
            estado = exchange.EstadoRecepDTE.DTE_REPETIDO
            glosa = estado.glosa
        documentos.append(
            exchange.RecepcionDte(
                dte=exchange.DteRecibido(
                    tipo=facts.tipo_dte,
                    folio=facts.folio,
                    fecha_emision=facts.fecha_emision,
                    rut_emisor=facts.rut_emisor,
                    rut_receptor=facts.rut_receptor or company.rut,
                    monto_total=facts.monto_total,
                ),
                estado=estado,
                glosa=glosa[:256],
            )
        )
    estado_env = exchange.EstadoRecepEnv(envelope.estado_recep_env)
    try:
        response = exchange.build_recepcion_envio(
            exchange.RecepcionEnvio(
                nombre_envio=envelope.name[-80:],
                fecha_recepcion=envelope.received_at,
                cod_envio=envelope.pk,
                envio_id=(envelope.envio_id or envelope.name)[:80],
                estado=estado_env,
                glosa=reading.glosa[:256],
                digest=envelope.digest or None,
                rut_emisor=envelope.rut_emisor or None,
                rut_receptor=reading.rut_receptor or None,
                documentos=tuple(documentos),
            ),
            caratula=receiving.answer_caratula(company, envelope.rut_emisor or envelope.rut_envia),
            id_respuesta=envelope.pk,
            timestamp=now,
            key=signer,
        )
    except ValueError as exc:
        return f"No se pudo firmar el acuse de recibo del envío: {exc}"
    invalid = _schema_problems(SchemaKind.RESPUESTA_DTE, response, "El acuse de recibo")
    if invalid:
        return invalid[0]
    envelope.response_xml = response
    envelope.save(update_fields=["response_xml"])
    return ""


# --- Reading it back ------------------------------------------------------------------------


def _document_problem(row: ReceivedDte, envelope: ReceivedEnvelope) -> str:
    if not _answerable(row, envelope):
        reasons = "; ".join(row.reasons) or "no corresponde al emisor o al receptor del envío"
        return f"Rechazado en la recepción y sin respuesta comercial posible: {reasons}."
    if row.commercial_result == CommercialResult.REJECTED:
        reasons = "; ".join(row.reasons) or row.commercial_glosa
        return f"Rechazado: {reasons}."
    if not row.result_xml:
        return "Sin respuesta comercial todavía."
    if not row.receipt_xml:
        return "Sin recibo de mercaderías todavía."
    return ""


def _outcome(
    company: Company,
    envelope: ReceivedEnvelope,
    *,
    repeated: bool,
    intake_documents: Iterable[receiving.DocumentOutcome],
    extra_problems: Iterable[str],
) -> ExchangeOutcome:
    rows = list(ReceivedDte.objects.filter(envelope=envelope).order_by("pk"))
    documents = [
        ExchangeDocument(
            tipo_dte=r.tipo_dte,
            folio=r.folio,
            rut_emisor=r.rut_emisor,
            fecha_emision=r.fecha_emision,
            monto_total=r.monto_total,
            received=r,
            estado_recep_dte=r.estado_recep_dte,
            resultado=r.commercial_result,
            goods_receipt=bool(r.receipt_xml),
            problem=_document_problem(r, envelope),
        )
        for r in rows
    ]
    own = {r.pk for r in rows}
    for document in intake_documents:  # what this upload found but did not store here
        if document.received_dte_id in own:
            continue
        if document.status == "duplicate":
            problem = (
                "Ya se había recibido en otro envío: sus respuestas son las de ese envío. "
                + " ".join(document.reasons)
            )
            estado = int(exchange.EstadoRecepDTE.DTE_REPETIDO)
        else:
            problem = "Rechazado en la recepción: " + ("; ".join(document.reasons) or "ilegible")
            estado = None
        documents.append(
            ExchangeDocument(
                tipo_dte=document.tipo_dte,
                folio=document.folio,
                rut_emisor=document.rut_emisor,
                fecha_emision=document.fecha_emision,
                monto_total=document.monto_total,
                received=None,
                estado_recep_dte=estado,
                resultado="",
                goods_receipt=False,
                problem=problem.strip(),
            )
        )
    answerable = [r for r in rows if _answerable(r, envelope) and r.commercial_result]
    accepted = [r for r in answerable if r.commercial_result in _ACCEPTED_RESULTS]
    resultado = _one([r.result_xml for r in answerable]) if answerable else None
    recibos = _one([r.receipt_xml for r in accepted]) if accepted else None
    problems = list(extra_problems)
    if envelope.estado_recep_env != exchange.EstadoRecepEnv.OK:
        problems.append(f"El envío no se recibió conforme: {envelope.glosa}")
    if not envelope.response_xml:
        problems.append("El envío no tiene acuse de recibo (RecepcionEnvio).")
    if resultado is None:
        problems.append("No hay respuesta comercial (ResultadoDTE) para este envío.")
    elif recibos is None:
        problems.append(
            "Ningún documento fue aceptado: no corresponde recibo de mercaderías (EnvioRecibos)."
        )
    return ExchangeOutcome(
        envelope=envelope,
        documents=tuple(documents),
        recepcion_xml=bytes(envelope.response_xml) if envelope.response_xml else None,
        resultado_xml=resultado,
        recibos_xml=recibos,
        repeated=repeated,
        problems=tuple(dict.fromkeys(problems)),
    )
