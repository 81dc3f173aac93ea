"""The SII's operations: parameters in, the SII's answer out (an XML string for the SOAP
services, a status code and a JSON payload for the boletas API). HTTP and faults are the views'
business; the work is in auth and processing. The RCV's operations are in rcv, whose helpers to
record a supplier's DTE as received (register_supplier_document, register_supplier_envelope)
are importable from here too."""

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.utils import timezone

from dte.sandbox import answers, auth, processing
from dte.sandbox.checks import EPR
from dte.sandbox.models import (
    LIBRO_KINDS,
    Channel,
    DocumentStatus,
    ReceivedDocument,
    ReceivedEnvelope,
)
from dte.sandbox.processing import DocumentQuery, UploadRefused
from dte.sandbox.rcv import register_supplier_document as register_supplier_document
from dte.sandbox.rcv import register_supplier_envelope as register_supplier_envelope
from erp.rut import InvalidRut, normalize_rut

_SII_DATE = re.compile(r"^(\d{2})-(\d{2})-(\d{4})$")
IN_PROGRESS = ("REC", "SOK", "CRT", "FOK", "PRD")
DETAIL_DESCRIPTIONS = {
    DocumentStatus.REJECTED: "Dte Rechazado",
    DocumentStatus.OBJECTIONS: "Dte Aceptado con Reparos",
    DocumentStatus.LIGHT_OBJECTIONS: "Dte Aceptado con Reparos Leves",
}


def _rut(number: str | None, dv: str | None) -> str | None:
    try:
        return normalize_rut(f"{(number or '').strip()}-{(dv or '').strip()}")
    except InvalidRut:
        return None


# --- SOAP: the string each operation returns --------------------------------------------------


def get_seed(params: dict[str, str]) -> str:
    return answers.seed_ok(auth.seed_create(Channel.DTE))


def get_token(params: dict[str, str]) -> str:
    return token_answer(params.get("pszXml", ""), Channel.DTE)


def token_answer(xml: str | bytes, channel: str) -> str:
    try:
        token = auth.token_from_signed_seed(xml, channel)
    except auth.TokenRefused as refused:
        return answers.token_error(refused.estado, refused.glosa)
    return answers.token_ok(token.value)


def get_est_up(params: dict[str, str]) -> str:
    check = auth.token_check(params.get("Token"), Channel.DTE)
    if check.error:
        return answers.estup_token_error(check.error)
    rut = _rut(params.get("RutCompania"), params.get("DvCompania"))
    envelope = (
        processing.envelope_find(
            channel=Channel.DTE, rut_company=rut, track_id=params.get("TrackId", "")
        )
        if rut
        else None
    )
    if envelope is None:
        return answers.estup_not_found()
    state = processing.envelope_state(envelope)
    if envelope.kind in LIBRO_KINDS:
        if state == processing.LIBRO_IN_PROCESS:
            return answers.estup_still_processing()
        return answers.estup_libro(envelope.track_id, state, envelope.outcome_glosa)
    if state == EPR:
        return answers.estup_processed(envelope.track_id, envelope.stats)
    if state in IN_PROGRESS:
        return answers.estup_in_progress(envelope.track_id, state)
    return answers.estup_rejected(state, envelope.outcome_glosa)


def get_est_dte(params: dict[str, str]) -> str:
    check = auth.token_check(params.get("Token"), Channel.DTE)
    if check.error:
        return answers.estdte_token_error(check.error)
    try:
        query = _estdte_query(params)
    except ValueError as exc:
        return answers.estdte_bad_request(str(exc))
    state, _ = processing.document_state(query)
    return answers.estdte(state)


def _estdte_query(params: dict[str, str]) -> DocumentQuery:
    emisor = _rut(params.get("RutCompania"), params.get("DvCompania"))
    receptor = _rut(params.get("RutReceptor"), params.get("DvReceptor"))
    if emisor is None or receptor is None:
        raise ValueError("RUT de la compañia o del receptor invalido")
    return DocumentQuery(
        rut_emisor=emisor,
        tipo_dte=_number(params.get("TipoDte"), "TipoDte"),
        folio=_number(params.get("FolioDte"), "FolioDte"),
        fecha_emision=_sii_date(params.get("FechaEmisionDte")),
        monto_total=_number(params.get("MontoDte"), "MontoDte"),
        rut_receptor=receptor,
    )


def _number(value: str | None, name: str) -> int:
    text = (value or "").strip()
    if not text.isdigit():
        raise ValueError(f"{name} debe ser numerico")
    return int(text)


def _sii_date(value: str | None) -> date:
    match = _SII_DATE.match((value or "").strip())
    try:
        if match is None:
            raise ValueError(value)
        day, month, year = (int(part) for part in match.groups())
        return date(year, month, day)
    except ValueError:
        raise ValueError("la fecha de emision debe tener el formato DD-MM-AAAA") from None


# --- Boletas REST: (HTTP status, JSON) --------------------------------------------------------

JsonAnswer = tuple[int, dict[str, Any]]


def unauthorized() -> JsonAnswer:
    return 401, {"codigo": 401, "descripcion": "No autorizado: token invalido o inexistente"}


def boleta_envio_received(envelope: ReceivedEnvelope) -> JsonAnswer:
    return 200, {
        "rut_emisor": envelope.company_rut,
        "rut_envia": envelope.sender_rut,
        "trackid": envelope.track_id,
        "fecha_recepcion": f"{timezone.localtime(envelope.received_at):%Y-%m-%d %H:%M:%S}",
        "estado": "REC",
        "file": envelope.file_name,
    }


def boleta_envio_refused(refused: UploadRefused) -> JsonAnswer:
    status = 403 if refused.status == 1 else 400
    return status, {"codigo": refused.status, "descripcion": refused.detail}


@dataclass(frozen=True, slots=True)
class BoletaEnvioId:
    rut: str
    track_id: str


def parse_envio_id(text: str) -> BoletaEnvioId | None:
    """`{rut}-{dv}-{trackid}`."""
    parts = text.split("-")
    if len(parts) != 3:
        return None
    rut = _rut(parts[0], parts[1])
    return BoletaEnvioId(rut, parts[2]) if rut else None


def boleta_envio_status(token: str | None, envio_id: str) -> JsonAnswer:
    if auth.token_check(token, Channel.BOLETA).error:
        return unauthorized()
    parsed = parse_envio_id(envio_id)
    envelope = (
        processing.envelope_find(
            channel=Channel.BOLETA, rut_company=parsed.rut, track_id=parsed.track_id
        )
        if parsed
        else None
    )
    if envelope is None:
        return 404, {"codigo": 404, "descripcion": "Envio no encontrado para el emisor"}
    state = processing.envelope_state(envelope)
    processed = state == EPR
    return 200, {
        "rut_emisor": envelope.company_rut,
        "rut_envia": envelope.sender_rut,
        "trackid": envelope.track_id,
        "fecha_recepcion": f"{timezone.localtime(envelope.received_at):%d/%m/%Y %H:%M:%S}",
        "estado": state,
        "estadistica": envelope.stats if processed else [],
        "detalle_rep_rech": _detalle_rep_rech(envelope) if processed else [],
    }


def _detalle_rep_rech(envelope: ReceivedEnvelope) -> list[dict[str, Any]]:
    documents = envelope.documents.exclude(status=DocumentStatus.ACCEPTED).order_by("id")
    return [
        {
            "tipo": document.tipo_dte,
            "folio": document.folio,
            "estado": document.status,
            "descripcion": DETAIL_DESCRIPTIONS[DocumentStatus(document.status)],
            "error": document.errors,
        }
        for document in documents
    ]


def boleta_estado(token: str | None, boleta_id: str, query: dict[str, str]) -> JsonAnswer:
    """GET boleta.electronica/{rut}-{dv}-{tipo}-{folio}/estado?rut_receptor&dv_receptor&monto&
    fechaEmision: the boleta's state (DOK, DNK, FAU)."""
    if auth.token_check(token, Channel.BOLETA).error:
        return unauthorized()
    try:
        document_query = _boleta_query(boleta_id, query)
    except ValueError as exc:
        return 400, {"codigo": 400, "descripcion": str(exc)}
    state, document = processing.document_state(document_query)
    return 200, _boleta_estado_payload(document_query, state, document)


def _boleta_query(boleta_id: str, query: dict[str, str]) -> DocumentQuery:
    parts = boleta_id.split("-")
    emisor = _rut(parts[0], parts[1]) if len(parts) == 4 else None
    if emisor is None:
        raise ValueError("Identificador invalido: use {rut}-{dv}-{tipo}-{folio}")
    receptor = None
    if query.get("rut_receptor"):
        receptor = _rut(query.get("rut_receptor"), query.get("dv_receptor"))
        if receptor is None:
            raise ValueError("RUT del receptor invalido")
    return DocumentQuery(
        rut_emisor=emisor,
        tipo_dte=_number(parts[2], "tipo"),
        folio=_number(parts[3], "folio"),
        fecha_emision=_sii_date(query["fechaEmision"]) if query.get("fechaEmision") else None,
        monto_total=_number(query["monto"], "monto") if query.get("monto") else None,
        rut_receptor=receptor,
    )


def _boleta_estado_payload(
    query: DocumentQuery, state: str, document: ReceivedDocument | None
) -> dict[str, Any]:
    return {
        "rut_emisor": query.rut_emisor,
        "tipo": query.tipo_dte,
        "folio": query.folio,
        "estado": state,
        "descripcion": answers.ESTDTE_GLOSAS[state],
        "trackid": document.envelope.track_id if document is not None else None,
    }
