"""The SII's "registro de aceptación o reclamo a un DTE" (RCV), as the sandbox SII keeps it.

A receptor records its acceptance (ACD), its receipt of the goods or services (ERM, Ley 19.983)
or a claim (RCD, RFP, RFT) on a factura (33, 34) or liquidación (43) it received, within 8 days
of the SII's reception; the SII answers codResp codes, lists a document's events and says when it
received it. The rules and codes are the SII's manual v1.2 (dte/sandbox/SII_BEHAVIOUR.md, "RCV
registro de aceptación o reclamo", which also marks the sandbox's own choices).

The documents are those the sandbox SII received and accepted (ReceivedDocument, in a processed
envelope), uploaded by the project or recorded by register_supplier_document: a supplier's DTE,
as if the supplier had uploaded it. Who may act: the token's holder must be the receptor (or
the emisor, to list events), or hold a certificate of that company in this project (the
sandbox's stand-in for the SII's "usuarios autorizados"). Its clock is the real one; a
document's reception time can be moved (document_age, _control/reception) to age it.
"""

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone
from lxml import etree

from dte.core.schemas import XmlError, safe_parse
from dte.models import Certificate
from dte.sandbox import conf
from dte.sandbox.checks import EPR
from dte.sandbox.models import (
    ACCEPTED_STATUSES,
    Channel,
    DocumentStatus,
    RcvAction,
    RcvEvent,
    ReceivedDocument,
    ReceivedEnvelope,
)
from erp.doctypes import codes
from erp.rut import InvalidRut, normalize_rut

SII_TIMEZONE = ZoneInfo("America/Santiago")
SII_DATETIME = "%d-%m-%Y %H:%M:%S"
RCV_TIPOS = tuple(sorted(codes(lambda d: d.rcv_acceptance)))  # acceptance and claims
CLAIM_DAYS = timedelta(days=8)
# The registro exists for documents received from this day on (codResp 10 before it).
RCV_START = datetime(2017, 1, 14, tzinfo=SII_TIMEZONE)
CLAIMS = frozenset({RcvAction.RCD, RcvAction.RFP, RcvAction.RFT})
VERSION = "1.2 (SII de pruebas)"

# descResp as the SII writes them (manual v1.2; 0 and 15 as in its examples). {claim}: the
# claim recorded before (RCD, RFP, RFT).
DESCRIPTIONS = {
    0: "Acción Completada OK",
    1: "Rut Emisor Erróneo",
    2: "Número de Folio Erróneo",
    3: "Tipo de documento no corresponde",
    4: "Acción inválida",
    6: "No se puede acusar recibo de mercadería de DTE previamente reclamado por {claim}",
    7: "Evento registrado previamente",
    8: "Pasados 8 días después de la recepción no es posible registrar reclamos o eventos",
    9: "No existen registros de acuerdo a los parámetros ingresados",
    10: "Documento no emitido y/o recibido en el SII desde el 14 de Enero de 2017 en adelante",
    11: "No se puede reclamar DTE previamente aceptado",
    12: "No se puede dar por aceptado DTE previamente rechazado por {claim}",
    13: "No se puede reclamar DTE previamente registrado como que acuso recibo mercadería",
    14: "Acción autorizada sólo para empresa receptora o emisora",
    15: "Listado de eventos del documento",
    16: "Documento no presenta eventos de reclamos o acuse de recibo",
    17: "Acción autorizada solo para empresa receptora",
    18: "Documento no ha sido recibido",
}
# descEvento in listarEventosHistDoc: ACD and ERM as the SII writes them (its manual's example,
# a real answer in odoo/odoo#74520), the claims as its manual names them.
EVENT_DESCRIPTIONS = {
    RcvAction.ACD: "Acepta Contenido del Documento",
    RcvAction.ERM: "Acuse de Recibo de Mercaderías y Servicios Ley 19.983",
    RcvAction.RCD: "Reclamo al Contenido del Documento",
    RcvAction.RFP: "Reclamo por Falta Parcial de Mercaderías",
    RcvAction.RFT: "Reclamo por Falta Total de Mercaderías",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """A respuestaTo: codResp, descResp and, for listarEventosHistDoc, the events."""

    code: int
    events: tuple[RcvEvent, ...] = field(default=())
    claim: str = ""  # the claim a refusal names (codes 6 and 12)

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.code].format(claim=self.claim)

    def xml(self) -> str:
        """The answer as the `<return>` part of the SOAP answer (unqualified, rpc/literal)."""
        events = "".join(_event_xml(event) for event in self.events)
        return (
            f"<return><codResp>{self.code}</codResp>"
            f"<descResp>{escape(self.description)}</descResp>{events}</return>"
        )


def _event_xml(event: RcvEvent) -> str:
    rut, dv = event.rut_responsable.split("-")
    moment = timezone.localtime(event.created_at, SII_TIMEZONE)
    return (
        "<listaEventosDoc>"
        f"<codEvento>{escape(event.code)}</codEvento>"
        f"<descEvento>{escape(EVENT_DESCRIPTIONS[RcvAction(event.code)])}</descEvento>"
        f"<rutResponsable>{rut}</rutResponsable><dvResponsable>{dv}</dvResponsable>"
        f"<fechaEvento>{moment:{SII_DATETIME}}</fechaEvento>"
        "</listaEventosDoc>"
    )


class Refused(Exception):
    """A request the SII answers with a code before looking at any event."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


# --- Looking up ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentKey:
    rut_emisor: str
    tipo_dte: int
    folio: int


def _key(params: dict[str, str], *, types: tuple[int, ...] | None = RCV_TIPOS) -> DocumentKey:
    """The document a request names; Refused 1 (RUT), 3 (type) or 2 (folio) when unusable."""
    number = (params.get("rutEmisor") or "").strip()
    try:
        if not number.isdigit() or int(number) < 1000:
            raise InvalidRut(number)
        rut = normalize_rut(f"{number}-{(params.get('dvEmisor') or '').strip()}")
    except InvalidRut:
        raise Refused(1) from None
    tipo = (params.get("tipoDoc") or "").strip()
    if not tipo.isdigit() or (types is not None and int(tipo) not in types):
        raise Refused(3)
    folio = (params.get("folio") or "").strip()
    if not folio.isdigit() or not 0 < int(folio) < 10**10:
        raise Refused(2)
    return DocumentKey(rut, int(tipo), int(folio))


def document_find(key: DocumentKey) -> ReceivedDocument | None:
    """The document as the SII received it: accepted in a processed envelope (the latest, as
    QueryEstDte answers)."""
    return (
        ReceivedDocument.objects.filter(
            rut_emisor=key.rut_emisor,
            tipo_dte=key.tipo_dte,
            folio=key.folio,
            status__in=ACCEPTED_STATUSES,
            envelope__ready_at__lte=timezone.now(),
        )
        .select_related("envelope")
        .order_by("-id")
        .first()
    )


def reception_time(document: ReceivedDocument) -> datetime:
    return document.received_at or document.envelope.received_at


def acts_for(token_rut: str | None, company_rut: str) -> bool:
    """Whether the token's holder may act for the company: it is the company (or the person)
    itself, or holds an active certificate of it in this project."""
    if not token_rut or not company_rut:
        return False
    if token_rut == company_rut:
        return True
    return Certificate.objects.filter(
        company__rut=company_rut, holder_rut=token_rut, is_active=True
    ).exists()


def _past_claim_days(document: ReceivedDocument, now: datetime) -> bool:
    return now - reception_time(document) > CLAIM_DAYS


# --- The operations ---------------------------------------------------------------------------


def ingresar_aceptacion_reclamo(params: dict[str, str], token_rut: str | None) -> Answer:
    """ingresarAceptacionReclamoDoc: record an action of the receptor, or say why not."""
    try:
        key = _key(params)
    except Refused as refused:
        return Answer(refused.code)
    action_text = (params.get("accionDoc") or "").strip()
    if action_text not in RcvAction.values:
        return Answer(4)
    action = RcvAction(action_text)
    with transaction.atomic():
        document = document_find(key)
        if document is None:
            return Answer(9)
        # One action at a time per document, as the SII's rules read its events first.
        ReceivedDocument.objects.select_for_update().filter(pk=document.pk).first()
        if not acts_for(token_rut, document.rut_receptor):
            return Answer(17)
        now = timezone.now()
        if reception_time(document) < RCV_START:
            return Answer(10)
        if _past_claim_days(document, now):
            return Answer(8)
        recorded = set(document.rcv_events.values_list("code", flat=True))
        refusal = _refusal(action, recorded)
        if refusal is not None:
            return refusal
        try:
            with transaction.atomic():
                RcvEvent.objects.create(
                    document=document,
                    code=action,
                    rut_responsable=token_rut or "",
                    created_at=now,
                )
        except IntegrityError:
            return Answer(7)
    return Answer(0)


def _refusal(action: RcvAction, recorded: set[str]) -> Answer | None:
    """The SII's rules within the 8 days (manual v1.2): None when the action is recorded."""
    if action in recorded:
        return Answer(7)
    claims = sorted(CLAIMS & recorded)
    if claims:
        if action == RcvAction.ERM:
            return Answer(6, claim=", ".join(claims))
        if action == RcvAction.ACD:
            return Answer(12, claim=", ".join(claims))
        return None  # another claim than those recorded
    if action in CLAIMS and RcvAction.ACD in recorded:
        return Answer(11)
    if action in CLAIMS and RcvAction.ERM in recorded:
        return Answer(13)
    return None


def listar_eventos(params: dict[str, str], token_rut: str | None) -> Answer:
    """listarEventosHistDoc: the document's events, to its receptor or emisor."""
    try:
        key = _key(params)
    except Refused as refused:
        return Answer(refused.code)
    document = document_find(key)
    if document is None:
        return Answer(18)
    if not (acts_for(token_rut, document.rut_receptor) or acts_for(token_rut, key.rut_emisor)):
        return Answer(14)
    events = tuple(document.rcv_events.all())
    if events:
        return Answer(15, events)
    return Answer(8 if _past_claim_days(document, timezone.now()) else 16)


def fecha_recepcion(params: dict[str, str], token_rut: str | None) -> str:
    """consultarFechaRecepcionSii: `dd-mm-yyyy hh:mm:ss`, or an empty string when the SII has
    no date for the caller (unknown document, a stranger's, unusable parameters)."""
    try:
        key = _key(params, types=None)
    except Refused:
        return ""
    document = document_find(key)
    if document is None:
        return ""
    if not (acts_for(token_rut, document.rut_receptor) or acts_for(token_rut, key.rut_emisor)):
        return ""
    return f"{timezone.localtime(reception_time(document), SII_TIMEZONE):{SII_DATETIME}}"


def version(params: dict[str, str], token_rut: str | None) -> str:
    return VERSION


# Operation → (handler, whether it answers a respuestaTo or a plain string).
OPERATIONS: dict[str, Callable[[dict[str, str], str | None], Answer | str]] = {
    "ingresarAceptacionReclamoDoc": ingresar_aceptacion_reclamo,
    "listarEventosHistDoc": listar_eventos,
    "consultarFechaRecepcionSii": fecha_recepcion,
    "getVersion": version,
}


def answer_xml(value: Answer | str) -> str:
    """The `<return>` part of an operation's answer."""
    if isinstance(value, Answer):
        return value.xml()
    return f"<return>{escape(value)}</return>" if value else "<return/>"


# --- Helpers for other parts of the project and tests -----------------------------------------


def register_supplier_document(
    *,
    rut_emisor: str,
    rut_receptor: str,
    tipo_dte: int,
    folio: int,
    monto_total: int | None = None,
    fecha_emision: date | None = None,
    received_at: datetime | None = None,
) -> ReceivedDocument:
    """Record a supplier's DTE as received and accepted by the sandbox SII, as if the supplier
    had uploaded it: a processed envelope (EPR) of the supplier with this one document (DOK).
    From then on QueryEstDte answers DOK for it and the RCV takes the receptor's acceptance or
    claim, for 8 days from `received_at` (now by default). ValueError when a RUT is not valid or
    the SII already has that folio of the supplier."""
    try:
        emisor, receptor = normalize_rut(rut_emisor), normalize_rut(rut_receptor)
    except InvalidRut as exc:
        raise ValueError(f"RUT inválido: {exc}") from None
    if int(tipo_dte) <= 0 or int(folio) <= 0:
        raise ValueError("El tipo y el folio deben ser enteros positivos.")
    when = received_at or timezone.now()
    key = DocumentKey(emisor, int(tipo_dte), int(folio))
    with transaction.atomic():
        taken = ReceivedDocument.objects.filter(
            rut_emisor=emisor, tipo_dte=key.tipo_dte, folio=key.folio, status__in=ACCEPTED_STATUSES
        )
        if taken.exists():
            raise ValueError(f"El SII ya recibió el folio {folio} (tipo {tipo_dte}) de {emisor}.")
        envelope = _supplier_envelope(emisor, key, when)
        return ReceivedDocument.objects.create(
            envelope=envelope,
            rut_emisor=emisor,
            tipo_dte=key.tipo_dte,
            folio=key.folio,
            fecha_emision=fecha_emision or timezone.localtime(when, SII_TIMEZONE).date(),
            rut_receptor=receptor,
            monto_total=monto_total,
            status=DocumentStatus.ACCEPTED,
            glosa="DTE Recibido",
        )


def register_supplier_envelope(
    xml: bytes, *, received_at: datetime | None = None
) -> list[ReceivedDocument]:
    """Every DTE of a supplier's EnvioDTE recorded as register_supplier_document does, from its
    Encabezado (RUTEmisor, RUTRecep, TipoDTE, Folio, FchEmis, MntTotal). Signatures, TEDs and
    CAFs are not checked here: whoever receives the envelope verifies them. ValueError when the
    XML is not an EnvioDTE with documents, or as register_supplier_document."""
    try:
        root = safe_parse(xml)
    except XmlError as exc:
        raise ValueError(f"XML ilegible: {exc}") from None
    documents = root.findall(".//{*}Documento") or root.findall(".//Documento")
    if not documents:
        raise ValueError("El sobre no contiene documentos (Documento).")
    with transaction.atomic():
        return [
            register_supplier_document(**_header(documento), received_at=received_at)
            for documento in documents
        ]


def _header(documento: etree._Element) -> dict[str, Any]:
    def text(path: str) -> str:
        found = documento.find(f"{{*}}Encabezado/{path}")
        return "".join(found.itertext()).strip() if found is not None else ""

    try:
        monto = text("{*}Totales/{*}MntTotal")
        fecha = text("{*}IdDoc/{*}FchEmis")
        return {
            "rut_emisor": text("{*}Emisor/{*}RUTEmisor"),
            "rut_receptor": text("{*}Receptor/{*}RUTRecep"),
            "tipo_dte": int(text("{*}IdDoc/{*}TipoDTE")),
            "folio": int(text("{*}IdDoc/{*}Folio")),
            "monto_total": int(monto) if monto else None,
            "fecha_emision": date.fromisoformat(fecha) if fecha else None,
        }
    except ValueError as exc:
        raise ValueError(f"Encabezado ilegible: {exc}") from None


def _supplier_envelope(emisor: str, key: DocumentKey, when: datetime) -> ReceivedEnvelope:
    marker = f"supplier:{emisor}:{key.tipo_dte}:{key.folio}:{secrets.token_hex(8)}"
    for _ in range(20):
        track_id = 10**9 + secrets.randbelow(9 * 10**9)
        if ReceivedEnvelope.objects.filter(track_id=track_id).exists():
            continue
        return ReceivedEnvelope.objects.create(
            track_id=track_id,
            channel=Channel.DTE,
            company_rut=emisor,
            sender_rut=emisor,
            file_name=f"proveedor-{emisor}-T{key.tipo_dte}F{key.folio}.xml",
            sha256=hashlib.sha256(marker.encode()).hexdigest(),
            outcome_code=EPR,
            outcome_glosa="Envio Procesado",
            stats=[
                {
                    "tipo": key.tipo_dte,
                    "informados": 1,
                    "aceptados": 1,
                    "rechazados": 0,
                    "reparos": 0,
                }
            ],
            polls=conf.polls_before_done(),
            received_at=when,
            ready_at=when,
        )
    raise RuntimeError("could not allocate a unique track id")


def document_age(
    *,
    rut_emisor: str,
    tipo_dte: int,
    folio: int,
    days: float | None = None,
    received_at: datetime | None = None,
) -> datetime:
    """Move the SII's reception time of a received document: `days` earlier than it is, or to
    `received_at`. Its new reception time; LookupError when the SII does not have it."""
    if (days is None) == (received_at is None):
        raise ValueError("Indique days o received_at, uno de los dos.")
    try:
        key = DocumentKey(normalize_rut(rut_emisor), int(tipo_dte), int(folio))
    except InvalidRut as exc:
        raise ValueError(f"RUT inválido: {exc}") from None
    document = document_find(key)
    if document is None:
        raise LookupError(f"El SII no tiene el folio {folio} (tipo {tipo_dte}) de {rut_emisor}.")
    moment = received_at if received_at is not None else reception_time(document)
    if days is not None:
        moment = moment - timedelta(days=days)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, SII_TIMEZONE)
    ReceivedDocument.objects.filter(pk=document.pk).update(received_at=moment)
    return moment
