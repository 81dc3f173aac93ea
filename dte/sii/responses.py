"""The SII's answers, parsed into values (DOMAIN.md §2–5). Pure: no Django, no I/O.

Every parser takes what the SII returned (the XML string inside a SOAP answer, the upload's plain
XML, or the boleta API's JSON) and either returns a value or raises an error of dte.sii.errors
that says whether trying again may help.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lxml import etree

from dte.sii.errors import (
    SiiAlreadyReceived,
    SiiProtocolError,
    SiiRefused,
    SiiRetryableError,
    SiiTokenError,
)

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

# QueryEstUp / boleta envelope states (DOMAIN.md §4)
IN_PROGRESS = frozenset({"REC", "SOK", "CRT", "FOK", "PRD", "PDR"})
# The SII stopped at the envelope and judged none of its documents: a schema, signature or
# carátula problem, an inconsistent envelope, a file it could not read. Fixed and re-enveloped,
# the same signed documents (same folios) can go again.
NOT_JUDGED = frozenset({"RSC", "RFR", "RCT", "RCO", "VOF"})
# The SII already received this envelope: its documents follow the earlier submission.
REPEATED = frozenset({"RPT"})
ENVELOPE_STATES = {
    "RSC": "Rechazado por error en el esquema",
    "RFR": "Rechazado por error en la firma",
    "RCT": "Rechazado por error en la carátula",
    "RCH": "Rechazado",
    "RPT": "Rechazado: envío repetido",
    "RCO": "Rechazado por inconsistencia",
    "VOF": "No se encontró el archivo .xml",
    "RLV": "Aceptado con reparos leves",
    "RPR": "Aceptado con reparos",
    "EPR": "Envío procesado",
}
TOKEN_ERRORS = frozenset({"001", "002", "003"})

UPLOAD_STATUS = {
    "1": "El usuario no tiene permiso para enviar documentos de esta empresa",
    "2": "Error en el tamaño del archivo",
    "3": "Archivo cortado (tamaño distinto al informado)",
    "5": "No está autenticado (token inválido o vencido)",
    "6": "La empresa no está autorizada a enviar documentos electrónicos",
    "7": "Esquema inválido",
    "8": "Error en la firma del documento",
    "9": "Sistema del SII bloqueado",
    "99": "El archivo ya fue recibido",
    "-1": "Solicitud mal formada",
}
UPLOAD_RETRYABLE = frozenset({"9"})
_TAGS = re.compile(r"<[^>]*>")
# A readable reason instead of an HTML page or a stack (the SII's errors come in many shapes).
_MAX_GLOSA = 300


def readable(text: str, limit: int = _MAX_GLOSA) -> str:
    """One line of plain text out of whatever the SII said (markup and whitespace dropped)."""
    plain = " ".join(_TAGS.sub(" ", text).split())
    return plain if len(plain) <= limit else plain[: limit - 1] + "…"


def _xml(text: str | bytes) -> etree._Element:
    data = text.encode("utf-8") if isinstance(text, str) else text
    stripped = data.lstrip()
    if stripped[:1] != b"<" or stripped[:14].lower().startswith((b"<!doctype html", b"<html")):
        raise SiiRetryableError("El SII respondió con una página en vez de XML (¿mantención?).")
    try:
        return etree.fromstring(stripped, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SiiRetryableError(f"Respuesta del SII ilegible: {exc}") from exc


def _text(root: etree._Element, name: str) -> str:
    """A child's text wherever it sits (the SII mixes prefixed and unprefixed names)."""
    found = root.find(f".//{{*}}{name}")
    if found is None:
        found = root.find(f".//{name}")
    return (found.text or "").strip() if found is not None else ""


def _header(root: etree._Element) -> tuple[str, str]:
    estado = _text(root, "ESTADO")
    glosa = _text(root, "GLOSA") or _text(root, "GLOSA_ESTADO") or _text(root, "GLOSA_ERR")
    return estado, glosa


def parse_seed(text: str | bytes) -> str:
    root = _xml(text)
    estado, glosa = _header(root)
    seed = _text(root, "SEMILLA") or _text(root, "SEED")
    if estado != "00" or not seed:
        raise SiiRetryableError(f"El SII no entregó semilla (ESTADO {estado}) {glosa}".strip())
    return seed


TOKEN_ESTADOS = {
    "01": "Error interno",
    "02": "Error de firma: no se pudo verificar",
    "03": "Error de firma",
    "04": "Error de firma: estructura",
    "05": "Error de firma: certificado",
    "06": "Sin semilla",
    "07": "Excepción",
    "08": "Semilla inválida o vencida",
    "09": "Excepción",
    "10": "Error de retorno",
    "11": "Falta el certificado",
    "12": "Excepción",
    "-3": "Error de autenticación: el titular del certificado no está autorizado",
}


def parse_token(text: str | bytes) -> str:
    root = _xml(text)
    estado, glosa = _header(root)
    token = _text(root, "TOKEN")
    if estado == "00" and token:
        return token
    reason = TOKEN_ESTADOS.get(estado, "Error al obtener el token")
    if estado in {"06", "07", "08", "09", "12"}:  # a fresh seed may work
        raise SiiRetryableError(f"Token: {reason} (ESTADO {estado}) {glosa}".strip())
    raise SiiRefused(estado or "TOKEN", f"Token: {reason}. {glosa}".strip())


@dataclass(frozen=True, slots=True)
class UploadResult:
    track_id: str
    timestamp: str
    repeated: bool = False  # STATUS 99: the track id is the earlier upload's


def parse_upload(text: str | bytes) -> UploadResult:
    """RECEPCIONDTE: STATUS 0 gives the track id; every other STATUS is explained."""
    root = _xml(text)
    status = _text(root, "STATUS")
    track_id = _text(root, "TRACKID")
    if status == "0" and track_id:
        return UploadResult(track_id=track_id, timestamp=_text(root, "TIMESTAMP"))
    errors = [e.text.strip() for e in root.iter("ERROR") if e.text and e.text.strip()]
    meaning = UPLOAD_STATUS.get(status, "Estado de carga desconocido")
    detail = f"{meaning}" + (f": {'; '.join(errors)}" if errors else "")
    if status == "5":
        raise SiiTokenError(detail)
    if status in UPLOAD_RETRYABLE:
        raise SiiRetryableError(f"STATUS {status}: {detail}", maybe_delivered=False)
    if status == "99":
        # The same file was received before: follow that upload, never call it a rejection.
        if track_id:
            return UploadResult(track_id, _text(root, "TIMESTAMP"), repeated=True)
        raise SiiAlreadyReceived(f"STATUS 99: {detail}")
    if not status:
        raise SiiProtocolError("La respuesta a la carga no trae STATUS.")
    raise SiiRefused(f"UPLOAD-{status}", detail)


class Outcome(StrEnum):
    """What an envelope's status means. Only the last four are the SII's verdict on documents."""

    IN_PROGRESS = "in_progress"
    NOT_JUDGED = "not_judged"  # refused at the envelope (RSC, RFR, RCT, RCO, VOF): fix, resend
    REPEATED = "repeated"  # RPT: the SII has it from an earlier submission: follow that
    ACCEPTED = "accepted"
    ACCEPTED_WITH_OBJECTIONS = "accepted_with_objections"
    REJECTED = "rejected"
    MIXED = "mixed"  # some documents accepted, some rejected: ask per document


VERDICTS = frozenset(
    {Outcome.ACCEPTED, Outcome.ACCEPTED_WITH_OBJECTIONS, Outcome.REJECTED, Outcome.MIXED}
)


@dataclass(frozen=True, slots=True)
class TypeCounts:
    tipo: int
    informados: int
    aceptados: int
    rechazados: int
    reparos: int


@dataclass(frozen=True, slots=True)
class DocumentVerdict:
    tipo: int
    folio: int
    estado: str
    glosa: str


@dataclass(frozen=True, slots=True)
class EnvelopeStatus:
    estado: str
    glosa: str
    outcome: Outcome
    counts: tuple[TypeCounts, ...] = ()
    documents: tuple[DocumentVerdict, ...] = field(default=())  # boletas only


def decide(estado: str, counts: tuple[TypeCounts, ...]) -> Outcome:
    """EPR alone is not 'accepted': the counts decide (DOMAIN.md §4). A state this client does
    not know is not a verdict either: it needs a person, not a rejection."""
    if estado in IN_PROGRESS:
        return Outcome.IN_PROGRESS
    if estado in REPEATED:
        return Outcome.REPEATED
    if estado in ("RPR", "RLV"):
        return Outcome.ACCEPTED_WITH_OBJECTIONS
    if estado == "RCH":
        return Outcome.REJECTED
    if estado != "EPR":
        return Outcome.NOT_JUDGED
    informed = sum(c.informados for c in counts)
    rejected = sum(c.rechazados for c in counts)
    objected = sum(c.reparos for c in counts)
    if informed and rejected >= informed:
        return Outcome.REJECTED
    if rejected:
        return Outcome.MIXED
    if objected:
        return Outcome.ACCEPTED_WITH_OBJECTIONS
    return Outcome.ACCEPTED


def _int(value: Any) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 0


def parse_est_up(text: str | bytes) -> EnvelopeStatus:
    root = _xml(text)
    estado, glosa = _header(root)
    if estado in TOKEN_ERRORS:
        raise SiiTokenError(f"Token no válido (ESTADO {estado}) {glosa}".strip())
    if estado == "-11":
        err = _text(root, "ERR_CODE")
        if err == "2":
            return EnvelopeStatus("-11", "Envío aún en proceso", Outcome.IN_PROGRESS)
        raise SiiRefused("-11", f"El envío no corresponde a la empresa o faltan datos ({err}).")
    if estado.startswith("-"):
        raise SiiRetryableError(f"QueryEstUp respondió ESTADO {estado} {glosa}".strip())
    body = root.find(".//{*}RESP_BODY")
    counts: list[TypeCounts] = []
    if body is not None:
        current: dict[str, str] = {}
        for child in body:
            name = etree.QName(child).localname
            if name == "TIPO_DOCTO" and current:
                counts.append(_counts(current))
                current = {}
            current[name] = (child.text or "").strip()
        if current:
            counts.append(_counts(current))
    counts_t = tuple(counts)
    glosa = glosa or ENVELOPE_STATES.get(estado, "")
    return EnvelopeStatus(estado, glosa, decide(estado, counts_t), counts_t)


def _counts(values: Mapping[str, str]) -> TypeCounts:
    return TypeCounts(
        tipo=_int(values.get("TIPO_DOCTO")),
        informados=_int(values.get("INFORMADOS")),
        aceptados=_int(values.get("ACEPTADOS")),
        rechazados=_int(values.get("RECHAZADOS")),
        reparos=_int(values.get("REPAROS")),
    )


class DocumentState(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # the SII has not (yet) received it


# QueryEstDte (DOMAIN.md §4): what each answer means for the document itself.
EST_DTE = {
    "DOK": (DocumentState.ACCEPTED, "Recibido por el SII; los datos coinciden"),
    "DNK": (DocumentState.ACCEPTED, "Recibido por el SII; los datos NO coinciden"),
    "FAU": (DocumentState.UNKNOWN, "Folio no recibido por el SII"),
    "FNA": (DocumentState.REJECTED, "Folio no autorizado"),
    "FAN": (DocumentState.REJECTED, "Folio anulado"),
    "EMP": (DocumentState.REJECTED, "Empresa no autorizada"),
    "TMD": (DocumentState.ACCEPTED, "Una nota de débito modifica el texto"),
    "TMC": (DocumentState.ACCEPTED, "Una nota de crédito modifica el texto"),
    "MMD": (DocumentState.ACCEPTED, "Una nota de débito modifica los montos"),
    "MMC": (DocumentState.ACCEPTED, "Una nota de crédito modifica los montos"),
    "AND": (DocumentState.ACCEPTED, "Una nota de débito anula el documento"),
    "ANC": (DocumentState.ACCEPTED, "Una nota de crédito anula el documento"),
}


@dataclass(frozen=True, slots=True)
class DocumentStatus:
    estado: str
    glosa: str
    state: DocumentState


def parse_est_dte(text: str | bytes) -> DocumentStatus:
    root = _xml(text)
    estado, glosa = _header(root)
    if estado in TOKEN_ERRORS:
        raise SiiTokenError(f"Token no válido (ESTADO {estado}) {glosa}".strip())
    if estado in EST_DTE:
        state, meaning = EST_DTE[estado]
        return DocumentStatus(estado, glosa or meaning, state)
    if estado.startswith("-"):
        raise SiiRetryableError(f"QueryEstDte respondió ESTADO {estado} {glosa}".strip())
    raise SiiProtocolError(f"QueryEstDte: estado desconocido {estado!r}")


# ---------------------------------------------------------------- boletas (REST, JSON)


def _json(text: str | bytes) -> Mapping[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, TypeError) as exc:
        raise SiiRetryableError("La API de boletas no respondió JSON (¿mantención?).") from exc
    if not isinstance(data, Mapping):
        raise SiiProtocolError("La API de boletas respondió algo que no es un objeto JSON.")
    return data


def parse_boleta_upload(text: str | bytes) -> UploadResult:
    data = _json(text)
    track = data.get("trackid")
    if not track:
        code = str(data.get("codigo") or data.get("estado") or "UPLOAD")
        reason = str(data.get("descripcion") or data.get("glosa") or "sin detalle")
        raise SiiRefused(code, readable(reason))
    return UploadResult(track_id=str(track), timestamp=str(data.get("fecha_recepcion", "")))


def parse_boleta_status(text: str | bytes) -> EnvelopeStatus:
    data = _json(text)
    estado = str(data.get("estado") or "")
    if not estado:
        raise SiiProtocolError("La API de boletas no informó el estado del envío.")
    counts = tuple(
        TypeCounts(
            tipo=_int(s.get("tipo")),
            informados=_int(s.get("informados")),
            aceptados=_int(s.get("aceptados")),
            rechazados=_int(s.get("rechazados")),
            reparos=_int(s.get("reparos")),
        )
        for s in data.get("estadistica") or ()
        if isinstance(s, Mapping)
    )
    documents = tuple(
        DocumentVerdict(
            tipo=_int(d.get("tipo")),
            folio=_int(d.get("folio")),
            estado=str(d.get("estado") or ""),
            glosa="; ".join(
                str(e.get("descripcion") or "")
                for e in d.get("error") or ()
                if isinstance(e, Mapping)
            )
            or str(d.get("descripcion") or ""),
        )
        for d in data.get("detalle_rep_rech") or ()
        if isinstance(d, Mapping)
    )
    glosa = ENVELOPE_STATES.get(estado, "")
    return EnvelopeStatus(estado, glosa, decide(estado, counts), counts, documents)


def parse_boleta_document_status(text: str | bytes) -> DocumentStatus:
    """A single boleta's state: the same codes as QueryEstDte (DOK, DNK, FAU, …)."""
    data = _json(text)
    estado = str(data.get("estado") or data.get("codigo") or "")
    glosa = str(data.get("descripcion") or data.get("glosa") or "")
    if estado in EST_DTE:
        state, meaning = EST_DTE[estado]
        return DocumentStatus(estado, glosa or meaning, state)
    raise SiiProtocolError(f"Estado de boleta desconocido: {estado!r}")
