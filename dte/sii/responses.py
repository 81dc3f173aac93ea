"""The SII's answers, parsed into values (DOMAIN.md §2–5, §12). Pure: no Django, no I/O.

Every parser takes what the SII returned (the XML string inside a SOAP answer, the upload's plain
XML, the boleta API's JSON, or the RCV service's values) and either returns a value or raises an
error of dte.sii.errors that says whether trying again may help.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from dte.sii.errors import (
    SiiAlreadyReceived,
    SiiProtocolError,
    SiiRefused,
    SiiRetryableError,
    SiiTokenError,
)
from erp.doctypes import codes

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


# ---------------------------------------------------------------- libros (QueryEstUp)
# A libro (LibroCompraVenta, LibroGuia) is uploaded like an envelope and asked for with the same
# getEstUp, but its final states are its own (dte/core/CERTIFICATION.md, "How the SII answers a
# libro"): LOK accepted; the other L… codes rejected, with the SII's GLOSA as the reason. Their
# meanings are the sources' reading, not an SII text ([OPEN] there). Any other answer (-11 with
# ERR_CODE 2, REC…PRD, a state this client does not know) is not final: ask again later.
LIBRO_ACCEPTED = frozenset({"LOK"})
LIBRO_REJECTED = {
    "LRH": "Libro rechazado (puede volver a enviarse)",
    "LNC": "Libro rechazado: no cuadra",
    "LRF": "Libro rechazado por error en la firma",
    "LRS": "Libro rechazado por error en el esquema",
    "LRC": "Libro rechazado por error en la carátula",
    "LRP": "Libro rechazado",
}


class LibroOutcome(StrEnum):
    IN_PROGRESS = "in_progress"  # not final: poll again
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class LibroVerdict:
    """What getEstUp says of a libro: `estado` and `glosa` as the SII wrote them (the glosa
    verbatim; empty when it sent none), and what they mean."""

    estado: str
    glosa: str
    outcome: LibroOutcome
    counts: tuple[TypeCounts, ...] = ()

    @property
    def final(self) -> bool:
        return self.outcome is not LibroOutcome.IN_PROGRESS

    @property
    def reason(self) -> str:
        """The SII's words, or this client's reading of the code when it gave none."""
        meaning = LIBRO_REJECTED.get(self.estado, "")
        return readable(self.glosa) or meaning or self.estado


def libro_verdict(status: EnvelopeStatus) -> LibroVerdict:
    """A libro's state out of a parsed getEstUp answer (parse_est_up, whose `outcome` speaks of
    envelopes and is not used here). -11 with ERR_CODE 2 arrives as in progress; -11 with
    another ERR_CODE, token errors and other negative states were raised by parse_est_up."""
    estado = status.estado.strip().upper()
    if estado in LIBRO_ACCEPTED:
        outcome = LibroOutcome.ACCEPTED
    elif estado in LIBRO_REJECTED:
        outcome = LibroOutcome.REJECTED
    else:
        outcome = LibroOutcome.IN_PROGRESS
    return LibroVerdict(estado, status.glosa, outcome, status.counts)


def parse_libro_est_up(text: str | bytes) -> LibroVerdict:
    """getEstUp's answer about a libro's track id (the errors of parse_est_up apply)."""
    return libro_verdict(parse_est_up(text))


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


# ---------------------------------------------------------------- RCV: aceptación o reclamo
# The SII's "registro de aceptación o reclamo a un DTE" web service (SOAP rpc/literal,
# dte/sii/wsdl/RegistroReclamoDteService.wsdl). Its answers are structures, not XML strings:
# the client hands their values (zeep's, as plain dicts) to the parsers below.
# Sources and uncertain points: dte/sandbox/SII_BEHAVIOUR.md, "RCV registro de aceptación o
# reclamo".

# The SII's clock: fechaEvento and consultarFechaRecepcionSii are Chilean local times.
SII_TIMEZONE = ZoneInfo("America/Santiago")
_SII_DATETIME = re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


class RcvAction(StrEnum):
    """What the receptor records on a received DTE (ingresarAceptacionReclamoDoc accionDoc)."""

    ACD = "ACD"  # acepta el contenido del documento
    RCD = "RCD"  # reclama el contenido del documento
    ERM = "ERM"  # otorga recibo de mercaderías o servicios (Ley 19.983)
    RFP = "RFP"  # reclama falta parcial de mercaderías
    RFT = "RFT"  # reclama falta total de mercaderías

    @property
    def is_claim(self) -> bool:
        return self in (RcvAction.RCD, RcvAction.RFP, RcvAction.RFT)


# Only these document types have acceptance and claims (facturas afecta/exenta, liquidación).
RCV_TIPOS = codes(lambda d: d.rcv_acceptance)
# Events in listarEventosHistDoc: the five actions, and two the SII records by itself.
RCV_EVENTS = {
    "ACD": "Acepta contenido del documento",
    "RCD": "Reclamo al contenido del documento",
    "ERM": "Otorga recibo de mercaderías o servicios (Ley 19.983)",
    "RFP": "Reclamo por falta parcial de mercaderías",
    "RFT": "Reclamo por falta total de mercaderías",
    "NCA": "Recepción de una nota de crédito de anulación que referencia al documento",
    "ENC": "Recepción de una nota de crédito (no de anulación) que referencia al documento",
}
# codResp of ingresarAceptacionReclamoDoc and listarEventosHistDoc (manual v1.2), plus 27 (seen
# by LibreDTE). "XXX" in the SII's own descResp is the claim already recorded (RCD, RFP, RFT).
RCV_CODES = {
    0: "Acción completada: el evento quedó registrado",
    1: "RUT del emisor erróneo",
    2: "Número de folio erróneo",
    3: "Tipo de documento no corresponde: solo las facturas (33, 34) y liquidaciones (43) "
    "admiten aceptación o reclamo",
    4: "Acción inválida (use ACD, RCD, ERM, RFP o RFT)",
    5: "El DTE ya está reclamado",
    6: "No se puede acusar recibo de mercaderías de un DTE ya reclamado",
    7: "Evento registrado previamente",
    8: "Pasaron 8 días desde la recepción en el SII: ya no se pueden registrar reclamos ni "
    "eventos (el documento se entiende aceptado)",
    9: "El SII no tiene registros con esos datos (emisor, tipo y folio)",
    10: "Documento no emitido o no recibido en el SII desde el 14 de enero de 2017",
    11: "No se puede reclamar un DTE ya aceptado",
    12: "No se puede aceptar un DTE ya reclamado",
    13: "No se puede reclamar un DTE con acuse de recibo de mercaderías",
    14: "Acción autorizada solo para la empresa receptora o la emisora",
    15: "Listado de eventos del documento",
    16: "El documento no tiene eventos de reclamo ni acuse de recibo",
    17: "Acción autorizada solo para la empresa receptora",
    18: "El documento no ha sido recibido por el SII",
    19: "Reclamo de mercaderías ya realizado",
    27: "No se puede registrar un evento de un DTE pagado al contado o gratuito",
    -1: "Error interno del SII: reintentar más tarde",
}
# codResp of consultarDocDteCedible (manual v1.2); 1, 2, 10 and 18 as above.
RCV_CEDIBLE_CODES = {
    20: "Tipo de documento no es cedible",
    21: "DTE no cedible: una nota de crédito de anulación del emisor lo referencia dentro de "
    "los primeros 8 días",
    22: "No existe registro de reclamo ni de recepción de mercaderías o servicios",
    23: "DTE cedible, sin reclamos",
    24: "DTE no cedible: reclamado por el receptor",
    25: "DTE cedible: pasados 8 días se entiende otorgado el acuse de recibo",
}
RCV_ACTION_OK = 0
RCV_EVENTS_LISTED = 15
RCV_NO_EVENTS = frozenset({8, 16})  # listarEventosHistDoc: none recorded (8: and none can be)
RCV_INTERNAL_ERROR = -1


def rcv_meaning(code: int) -> str:
    return RCV_CODES.get(code) or RCV_CEDIBLE_CODES.get(code) or f"Código {code} desconocido"


@dataclass(frozen=True, slots=True)
class RcvActionResult:
    """The SII's answer to an acceptance or claim: `code` and `description` are its codResp and
    descResp (the table's text when it sent none)."""

    code: int
    description: str

    @property
    def ok(self) -> bool:
        """The event was recorded now."""
        return self.code == RCV_ACTION_OK

    @property
    def meaning(self) -> str:
        return rcv_meaning(self.code)


@dataclass(frozen=True, slots=True)
class RcvEvent:
    code: str  # ACD, RCD, ERM, RFP, RFT, or NCA/ENC recorded by the SII itself
    description: str
    rut_responsable: str  # who recorded it (the token's holder), e.g. 8815557-2
    fecha: datetime  # aware, in the SII's time zone

    @property
    def meaning(self) -> str:
        return RCV_EVENTS.get(self.code, self.description)


@dataclass(frozen=True, slots=True)
class RcvEvents:
    """listarEventosHistDoc: code 15 with the events; 16 (or 8, past the 8 days) when there are
    none; any other code says why the SII did not list them (`meaning`)."""

    code: int
    description: str
    events: list[RcvEvent] = field(default_factory=list)

    @property
    def listed(self) -> bool:
        return self.code == RCV_EVENTS_LISTED or self.code in RCV_NO_EVENTS

    @property
    def meaning(self) -> str:
        return rcv_meaning(self.code)


def rcv_token_fault(message: str) -> bool:
    """Whether a SOAP Fault of the RCV service refuses the token: the SII answers a bad or
    expired token with a Fault "Error de Autenticacion: TOKEN invalido", not with a codResp."""
    return "token" in (message or "").lower()


def parse_sii_datetime(text: str) -> datetime:
    """`dd-mm-yyyy hh:mm:ss` (the time optional) in the SII's time zone; ValueError if not."""
    match = _SII_DATETIME.match((text or "").strip())
    if match is None:
        raise ValueError(f"fecha del SII ilegible: {text!r}")
    day, month, year, hour, minute, second = (int(part or 0) for part in match.groups())
    return datetime(year, month, day, hour, minute, second, tzinfo=SII_TIMEZONE)


def _rcv_code(data: Mapping[str, Any], operation: str) -> tuple[int, str]:
    raw = data.get("codResp")
    if raw is None or str(raw).strip() == "":
        raise SiiProtocolError(f"{operation}: el SII no informó codResp.")
    try:
        code = int(str(raw).strip())
    except ValueError:
        raise SiiProtocolError(f"{operation}: codResp ilegible {raw!r}.") from None
    description = readable(str(data.get("descResp") or "")) or rcv_meaning(code)
    if code == RCV_INTERNAL_ERROR:
        raise SiiRetryableError(
            f"{operation}: error interno del SII (codResp -1): {description}",
            maybe_delivered=False,
        )
    return code, description


def parse_rcv_action(data: Mapping[str, Any] | None) -> RcvActionResult:
    code, description = _rcv_code(data or {}, "ingresarAceptacionReclamoDoc")
    return RcvActionResult(code, description)


def _rcv_event(item: Mapping[str, Any]) -> RcvEvent:
    code = str(item.get("codEvento") or "").strip()
    rut = str(item.get("rutResponsable") or "").strip()
    dv = str(item.get("dvResponsable") or "").strip().upper()
    try:
        moment = parse_sii_datetime(str(item.get("fechaEvento") or ""))
    except ValueError as exc:
        raise SiiProtocolError(f"listarEventosHistDoc: {exc}") from None
    return RcvEvent(
        code=code,
        description=readable(str(item.get("descEvento") or "")) or RCV_EVENTS.get(code, ""),
        rut_responsable=f"{rut}-{dv}" if rut and dv else rut,
        fecha=moment,
    )


def parse_rcv_events(data: Mapping[str, Any] | None) -> RcvEvents:
    data = data or {}
    code, description = _rcv_code(data, "listarEventosHistDoc")
    items = data.get("listaEventosDoc") or []
    if isinstance(items, Mapping):  # a single event, as some SOAP stacks give it
        items = [items]
    events = [_rcv_event(item) for item in items if isinstance(item, Mapping)]
    return RcvEvents(code, description, sorted(events, key=lambda event: event.fecha))


def parse_rcv_reception_date(text: str | None) -> datetime | None:
    """consultarFechaRecepcionSii answers only a string: the date and time the SII received the
    document, or nothing when it has none (then None). Anything else is the SII's word on why
    (SiiRefused with its text): the operation has no codResp."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        return parse_sii_datetime(value)
    except ValueError:
        raise SiiRefused("RCV-FECHA", readable(value)) from None
