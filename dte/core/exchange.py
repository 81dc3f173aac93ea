"""The answers a company sends a supplier whose DTEs it received (DOMAIN.md §12, intercambio).

1. `build_recepcion_envio`: RespuestaDTE with one RecepcionEnvio (was the envelope received, and
   each DTE in it), RespuestaEnvioDTE_v10.xsd.
2. `build_resultado_dte`: RespuestaDTE with ResultadoDTE (commercial acceptance or rejection of
   each DTE), the same schema.
3. `build_envio_recibos`: EnvioRecibos with one signed Recibo per DTE whose goods or services were
   received (Ley 19.983), EnvioRecibos_v10.xsd / Recibos_v10.xsd.

Pure: no Django, no network, no clock (timestamps are passed in). Each answer comes back as
ISO-8859-1 bytes with the XML declaration, ready to validate, store and email.

Signatures follow DOMAIN.md §9 as envelope.py does for SetDTE: every signed part is written in its
canonical form from the start, and its digest is taken over its inclusive C14N *in the document*
(with the SiiDte default namespace and the root's `xmlns:xsi` in scope), while SignedInfo is
signed with `xmlns:xsi` in scope too. Each Recibo also declares both namespaces itself, so that a
Recibo copied out of the EnvioRecibos (as a supplier may store it) still verifies on its own; in
the SetRecibos' canonical form those declarations are redundant and C14N drops them.
"""

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import IntEnum

from dte.core import text
from dte.core.domain import SIIDTE_NS, XSI_NS
from dte.core.envelope import XML_DECLARATION
from dte.core.signing import SigningKey, sign_reference
from dte.core.xml import format_date, format_timestamp
from erp.doctypes import codes
from erp.rut import normalize_rut

XSI = f' xmlns:xsi="{XSI_NS}"'

# SiiTypes_v10.xsd DTEType / DocType: the only document types these answers may name.
ANSWERABLE_TYPES = codes(lambda d: d.exchange_answer)

# Recibos_v10.xsd DocumentoRecibo/Declaracion (fixed value): Ley 19.983, art. 4 b) and 5 c).
DECLARACION = (
    "El acuse de recibo que se declara en este acto, de acuerdo a lo dispuesto en la letra b) "
    "del Art. 4, y la letra c) del Art. 5 de la Ley 19.983, acredita que la entrega de "
    "mercaderias o servicio(s) prestado(s) ha(n) sido recibido(s)."
)

RECEPCION_ID = "RespuestaRecepcion"  # Resultado/@ID of the reception answer
RESULTADO_ID = "RespuestaComercial"  # Resultado/@ID of the commercial answer
SET_RECIBOS_ID = "SetRecibos"

# Code of CodRchDsc when none more specific is given (RespuestaEnvioDTE_v10.xsd: -1..-999).
COD_RCH_DSC_GENERICO = -1

# xs:ID is an NCName; ours are plain ASCII.
_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# SiiTypes_v10.xsd RUTType: 3..10 characters matching [0-9]+-([0-9]|K).
_RUT_SHAPE = re.compile(r"^\d{1,8}-[\dK]$")
_RUT_NOISE = re.compile(r"[\s.]")

# Field lengths from RespuestaEnvioDTE_v10.xsd, EnvioRecibos_v10.xsd, Recibos_v10.xsd and
# SiiTypes_v10.xsd (NombreType 40, FonoType 40, MailType 80).
_NMB_CONTACTO, _FONO_CONTACTO, _MAIL_CONTACTO = 40, 40, 80
_NMB_ENVIO, _ENVIO_DTE_ID, _GLOSA, _RECINTO = 80, 80, 256, 80


# --- Codes ----------------------------------------------------------------------------------


class EstadoRecepEnv(IntEnum):
    """RecepcionEnvio/EstadoRecepEnv: the envelope as a whole."""

    OK = 0
    ERROR_SCHEMA = 1
    ERROR_FIRMA = 2
    RUT_RECEPTOR_NO_CORRESPONDE = 3
    ARCHIVO_REPETIDO = 90
    ARCHIVO_ILEGIBLE = 91
    OTROS = 99

    @property
    def glosa(self) -> str:
        return _GLOSAS_RECEP_ENV[self]


class EstadoRecepDTE(IntEnum):
    """RecepcionDTE/EstadoRecepDTE: one DTE of the envelope."""

    OK = 0
    ERROR_FIRMA = 1
    ERROR_RUT_EMISOR = 2
    ERROR_RUT_RECEPTOR = 3
    DTE_REPETIDO = 4
    OTROS = 99

    @property
    def glosa(self) -> str:
        return _GLOSAS_RECEP_DTE[self]


class EstadoDTE(IntEnum):
    """ResultadoDTE/EstadoDTE: the commercial answer to one DTE."""

    ACEPTADO = 0
    ACEPTADO_CON_DISCREPANCIAS = 1
    RECHAZADO = 2

    @property
    def glosa(self) -> str:
        return _GLOSAS_DTE[self]


_GLOSAS_RECEP_ENV = {
    EstadoRecepEnv.OK: "Envío recibido conforme",
    EstadoRecepEnv.ERROR_SCHEMA: "Envío rechazado - error de schema",
    EstadoRecepEnv.ERROR_FIRMA: "Envío rechazado - error de firma",
    EstadoRecepEnv.RUT_RECEPTOR_NO_CORRESPONDE: "Envío rechazado - RUT receptor no corresponde",
    EstadoRecepEnv.ARCHIVO_REPETIDO: "Envío rechazado - archivo repetido",
    EstadoRecepEnv.ARCHIVO_ILEGIBLE: "Envío rechazado - archivo ilegible",
    EstadoRecepEnv.OTROS: "Envío rechazado - otros",
}
_GLOSAS_RECEP_DTE = {
    EstadoRecepDTE.OK: "DTE recibido OK",
    EstadoRecepDTE.ERROR_FIRMA: "DTE no recibido - error de firma",
    EstadoRecepDTE.ERROR_RUT_EMISOR: "DTE no recibido - error en RUT emisor",
    EstadoRecepDTE.ERROR_RUT_RECEPTOR: "DTE no recibido - error en RUT receptor",
    EstadoRecepDTE.DTE_REPETIDO: "DTE no recibido - DTE repetido",
    EstadoRecepDTE.OTROS: "DTE no recibido - otros",
}
_GLOSAS_DTE = {
    EstadoDTE.ACEPTADO: "DTE aceptado OK",
    EstadoDTE.ACEPTADO_CON_DISCREPANCIAS: "DTE aceptado con discrepancias",
    EstadoDTE.RECHAZADO: "DTE rechazado",
}


# --- Input ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caratula:
    """Who answers whom. `rut_responde` is ours (the DTEs' receptor), `rut_recibe` the
    supplier's (their emisor); the contact fields are optional."""

    rut_responde: str
    rut_recibe: str
    nombre_contacto: str = ""  # NmbContacto ≤40
    fono_contacto: str = ""  # FonoContacto ≤40
    mail_contacto: str = ""  # MailContacto ≤80


@dataclass(frozen=True, slots=True)
class DteRecibido:
    """A received DTE as every answer names it (TipoDTE, Folio, FchEmis, RUTs, MntTotal)."""

    tipo: int  # 33, 34, 46, 52, 56 or 61 (SiiTypes DTEType)
    folio: int
    fecha_emision: date
    rut_emisor: str
    rut_receptor: str
    monto_total: int


@dataclass(frozen=True, slots=True)
class RecepcionDte:
    """RecepcionDTE: whether one DTE of the envelope was received. `glosa` defaults to the
    estado's."""

    dte: DteRecibido
    estado: EstadoRecepDTE
    glosa: str = ""  # RecepDTEGlosa ≤256


@dataclass(frozen=True, slots=True)
class RecepcionEnvio:
    """RecepcionEnvio: one received envelope.

    `envio_id` is the envelope's signed set ID and `digest` its SetDTE DigestValue, as read from
    the envelope; for an envelope that could not be read, leave out what is unknown (`digest`,
    the RUTs and the documents are optional in the XSD; `envio_id` may be empty).
    """

    nombre_envio: str  # NmbEnvio ≤80: the file name
    fecha_recepcion: datetime  # FchRecep
    cod_envio: int  # CodEnvio: our number for this envelope, 1..10 digits
    envio_id: str  # EnvioDTEID ≤80
    estado: EstadoRecepEnv
    glosa: str = ""  # RecepEnvGlosa ≤256; defaults to the estado's
    digest: str | None = None  # Digest (base64)
    rut_emisor: str | None = None  # RutEmisor of the envelope's Caratula
    rut_receptor: str | None = None  # RutReceptor of the envelope's Caratula
    documentos: tuple[RecepcionDte, ...] = ()


@dataclass(frozen=True, slots=True)
class ResultadoDte:
    """ResultadoDTE: the commercial answer to one DTE.

    `cod_rch_dsc` (CodRchDsc, -1..-999) is written only when the DTE is rejected or accepted
    with discrepancies, and then defaults to -1; it must be None for an accepted DTE.
    """

    dte: DteRecibido
    cod_envio: int  # CodEnvio of the RecepcionEnvio in which the DTE came
    estado: EstadoDTE
    glosa: str = ""  # EstadoDTEGlosa ≤256; defaults to the estado's
    cod_rch_dsc: int | None = None


@dataclass(frozen=True, slots=True)
class Recibo:
    """One acuse de recibo (Ley 19.983) of the goods or services of a DTE."""

    dte: DteRecibido
    recinto: str  # Recinto ≤80: where the goods or services were received


# --- Builders -------------------------------------------------------------------------------


def build_recepcion_envio(
    recepcion: RecepcionEnvio,
    *,
    caratula: Caratula,
    id_respuesta: int,
    timestamp: datetime,
    key: SigningKey,
) -> bytes:
    """RespuestaDTE with one RecepcionEnvio, signed (Reference to Resultado)."""
    caratula_xml = _caratula_respuesta(caratula, id_respuesta, 1, timestamp)
    return _respuesta_dte(caratula_xml + _recepcion_envio(recepcion), RECEPCION_ID, key)


def build_resultado_dte(
    resultados: Sequence[ResultadoDte],
    *,
    caratula: Caratula,
    id_respuesta: int,
    timestamp: datetime,
    key: SigningKey,
) -> bytes:
    """RespuestaDTE with one ResultadoDTE per DTE, signed (Reference to Resultado)."""
    if not resultados:
        raise ValueError("La respuesta comercial debe informar al menos un DTE.")
    _check_unique(r.dte for r in resultados)
    body = "".join(_resultado_dte(r, caratula) for r in resultados)
    caratula_xml = _caratula_respuesta(caratula, id_respuesta, len(resultados), timestamp)
    return _respuesta_dte(caratula_xml + body, RESULTADO_ID, key)


def build_envio_recibos(
    recibos: Sequence[Recibo],
    *,
    caratula: Caratula,
    rut_firma: str,
    timestamp: datetime,
    key: SigningKey,
) -> bytes:
    """EnvioRecibos: each Recibo's DocumentoRecibo signed, then SetRecibos signed.

    `rut_firma` is the RUT of the person who signs (the certificate holder); `timestamp` is
    both TmstFirmaRecibo and TmstFirmaEnv.
    """
    if not recibos:
        raise ValueError("Un EnvioRecibos debe contener al menos un recibo.")
    _check_unique(r.dte for r in recibos)
    firmante = _rut(rut_firma, "RutFirma")
    signed = [_signed_recibo(r, caratula, firmante, timestamp, key) for r in recibos]
    caratula_xml = (
        '<Caratula version="1.0">'
        f"{_rut_pair(caratula)}{_contacto(caratula)}"
        f"<TmstFirmaEnv>{format_timestamp(timestamp)}</TmstFirmaEnv></Caratula>"
    )
    canonical_set = (
        f'<SetRecibos xmlns="{SIIDTE_NS}"{XSI} ID="{SET_RECIBOS_ID}">{caratula_xml}'
        + "".join(in_set for in_set, _ in signed)
        + "</SetRecibos>"
    )
    signature = sign_reference(
        canonical_set.encode("utf-8"),
        reference_uri=f"#{SET_RECIBOS_ID}",
        key=key,
        inherited_ns=XSI,
    )
    document = (
        f'{XML_DECLARATION}<EnvioRecibos xmlns="{SIIDTE_NS}"{XSI} version="1.0" '
        f'xsi:schemaLocation="{SIIDTE_NS} EnvioRecibos_v10.xsd">'
        f'<SetRecibos ID="{SET_RECIBOS_ID}">{caratula_xml}'
        + "".join(standalone for _, standalone in signed)
        + f"</SetRecibos>{signature.xml}</EnvioRecibos>"
    )
    return document.encode("iso-8859-1")


# --- RespuestaDTE ---------------------------------------------------------------------------


def _respuesta_dte(body: str, resultado_id: str, key: SigningKey) -> bytes:
    canonical = f'<Resultado xmlns="{SIIDTE_NS}"{XSI} ID="{resultado_id}">{body}</Resultado>'
    signature = sign_reference(
        canonical.encode("utf-8"), reference_uri=f"#{resultado_id}", key=key, inherited_ns=XSI
    )
    document = (
        f'{XML_DECLARATION}<RespuestaDTE xmlns="{SIIDTE_NS}"{XSI} version="1.0" '
        f'xsi:schemaLocation="{SIIDTE_NS} RespuestaEnvioDTE_v10.xsd">'
        f'<Resultado ID="{resultado_id}">{body}</Resultado>{signature.xml}</RespuestaDTE>'
    )
    return document.encode("iso-8859-1")


def _caratula_respuesta(
    caratula: Caratula, id_respuesta: int, nro_detalles: int, timestamp: datetime
) -> str:
    return (
        '<Caratula version="1.0">'
        f"{_rut_pair(caratula)}"
        f"<IdRespuesta>{_positive(id_respuesta, 10, 'IdRespuesta')}</IdRespuesta>"
        f"<NroDetalles>{_positive(nro_detalles, 4, 'NroDetalles')}</NroDetalles>"
        f"{_contacto(caratula)}"
        f"<TmstFirmaResp>{format_timestamp(timestamp)}</TmstFirmaResp></Caratula>"
    )


def _recepcion_envio(recepcion: RecepcionEnvio) -> str:
    estado = EstadoRecepEnv(recepcion.estado)
    if estado is EstadoRecepEnv.OK and not recepcion.documentos:
        raise ValueError("Un envío recibido conforme debe informar sus DTE (RecepcionDTE).")
    if len(recepcion.documentos) > 9999:
        raise ValueError("NroDTE admite hasta 9999 documentos.")
    documentos = "".join(_recepcion_dte(d) for d in recepcion.documentos)
    nro_dte = len(recepcion.documentos)
    return (
        "<RecepcionEnvio>"
        + _element("NmbEnvio", text.clean(recepcion.nombre_envio, _NMB_ENVIO))
        + f"<FchRecep>{format_timestamp(recepcion.fecha_recepcion)}</FchRecep>"
        + f"<CodEnvio>{_positive(recepcion.cod_envio, 10, 'CodEnvio')}</CodEnvio>"
        + _element("EnvioDTEID", text.clean(recepcion.envio_id, _ENVIO_DTE_ID))
        + _optional("Digest", _digest(recepcion.digest))
        + _optional("RutEmisor", _rut_as_given(recepcion.rut_emisor, "RutEmisor"))
        + _optional("RutReceptor", _rut_as_given(recepcion.rut_receptor, "RutReceptor"))
        + f"<EstadoRecepEnv>{int(estado)}</EstadoRecepEnv>"
        + _element("RecepEnvGlosa", _glosa(recepcion.glosa, estado.glosa))
        + (f"<NroDTE>{nro_dte}</NroDTE>" if nro_dte else "")
        + documentos
        + "</RecepcionEnvio>"
    )


def _recepcion_dte(recepcion: RecepcionDte) -> str:
    # The DTE's RUTs are reported as the supplier wrote them (a wrong check digit is what
    # EstadoRecepDTE 2 or 3 is for): only the XSD's shape is required.
    estado = EstadoRecepDTE(recepcion.estado)
    return (
        "<RecepcionDTE>"
        + _dte_fields(recepcion.dte, "TipoDTE", check_digit=False)
        + f"<EstadoRecepDTE>{int(estado)}</EstadoRecepDTE>"
        + _element("RecepDTEGlosa", _glosa(recepcion.glosa, estado.glosa))
        + "</RecepcionDTE>"
    )


def _resultado_dte(resultado: ResultadoDte, caratula: Caratula) -> str:
    _check_addressed(resultado.dte, caratula)
    estado = EstadoDTE(resultado.estado)
    codigo = resultado.cod_rch_dsc
    if estado is EstadoDTE.ACEPTADO:
        if codigo is not None:
            raise ValueError("Un DTE aceptado no lleva código de rechazo o discrepancia.")
    else:
        codigo = COD_RCH_DSC_GENERICO if codigo is None else codigo
        if isinstance(codigo, bool) or not -999 <= codigo <= -1:
            raise ValueError(f"CodRchDsc debe estar entre -1 y -999, no {codigo}.")
    return (
        "<ResultadoDTE>"
        + _dte_fields(resultado.dte, "TipoDTE")
        + f"<CodEnvio>{_positive(resultado.cod_envio, 10, 'CodEnvio')}</CodEnvio>"
        + f"<EstadoDTE>{int(estado)}</EstadoDTE>"
        + _element("EstadoDTEGlosa", _glosa(resultado.glosa, estado.glosa))
        + (f"<CodRchDsc>{codigo}</CodRchDsc>" if codigo is not None else "")
        + "</ResultadoDTE>"
    )


# --- EnvioRecibos ---------------------------------------------------------------------------


def _signed_recibo(
    recibo: Recibo, caratula: Caratula, rut_firma: str, timestamp: datetime, key: SigningKey
) -> tuple[str, str]:
    """The signed Recibo twice: as C14N writes it inside SetRecibos (the Recibo's own namespace
    declarations are redundant there) and as it goes in the document (declaring them)."""
    _check_addressed(recibo.dte, caratula)
    recinto = text.clean(recibo.recinto, _RECINTO)
    if not recinto:
        raise ValueError("El recibo debe indicar el recinto donde se recibió.")
    documento_id = _xml_id(f"T{int(recibo.dte.tipo)}F{int(recibo.dte.folio)}")
    body = (
        _dte_fields(recibo.dte, "TipoDoc")
        + _element("Recinto", recinto)
        + f"<RutFirma>{rut_firma}</RutFirma>"
        + _element("Declaracion", DECLARACION)
        + f"<TmstFirmaRecibo>{format_timestamp(timestamp)}</TmstFirmaRecibo>"
    )
    canonical = (
        f'<DocumentoRecibo xmlns="{SIIDTE_NS}"{XSI} ID="{documento_id}">{body}</DocumentoRecibo>'
    )
    signature = sign_reference(
        canonical.encode("utf-8"), reference_uri=f"#{documento_id}", key=key, inherited_ns=XSI
    )
    inner = f'<DocumentoRecibo ID="{documento_id}">{body}</DocumentoRecibo>{signature.xml}'
    in_set = f'<Recibo version="1.0">{inner}</Recibo>'
    standalone = f'<Recibo xmlns="{SIIDTE_NS}"{XSI} version="1.0">{inner}</Recibo>'
    return in_set, standalone


# --- Pieces ---------------------------------------------------------------------------------


def _element(tag: str, value: str) -> str:
    return f"<{tag}>{text.escape(value)}</{tag}>"


def _optional(tag: str, value: str | None) -> str:
    return _element(tag, value) if value else ""


def _rut_pair(caratula: Caratula) -> str:
    return (
        f"<RutResponde>{_rut(caratula.rut_responde, 'RutResponde')}</RutResponde>"
        f"<RutRecibe>{_rut(caratula.rut_recibe, 'RutRecibe')}</RutRecibe>"
    )


def _contacto(caratula: Caratula) -> str:
    return (
        _optional("NmbContacto", text.clean(caratula.nombre_contacto, _NMB_CONTACTO))
        + _optional("FonoContacto", text.clean(caratula.fono_contacto, _FONO_CONTACTO))
        + _optional("MailContacto", text.clean(caratula.mail_contacto, _MAIL_CONTACTO))
    )


def _dte_fields(dte: DteRecibido, tipo_tag: str, *, check_digit: bool = True) -> str:
    """TipoDTE (or TipoDoc), Folio, FchEmis, RUTEmisor, RUTRecep, MntTotal."""
    tipo = int(dte.tipo)
    if tipo not in ANSWERABLE_TYPES:
        allowed = ", ".join(str(t) for t in sorted(ANSWERABLE_TYPES))
        raise ValueError(f"El tipo de documento {tipo} no admite respuesta (admitidos: {allowed}).")
    rut = _rut if check_digit else _rut_shape
    monto = dte.monto_total
    if isinstance(monto, bool) or not 0 <= monto < 10**18:
        raise ValueError(f"MntTotal debe ser un entero entre 0 y 18 dígitos, no {monto}.")
    return (
        f"<{tipo_tag}>{tipo}</{tipo_tag}>"
        f"<Folio>{_positive(dte.folio, 10, 'Folio')}</Folio>"
        f"<FchEmis>{format_date(dte.fecha_emision)}</FchEmis>"
        f"<RUTEmisor>{rut(dte.rut_emisor, 'RUTEmisor')}</RUTEmisor>"
        f"<RUTRecep>{rut(dte.rut_receptor, 'RUTRecep')}</RUTRecep>"
        f"<MntTotal>{int(monto)}</MntTotal>"
    )


def _check_addressed(dte: DteRecibido, caratula: Caratula) -> None:
    """A commercial answer or a receipt only concerns DTEs from `rut_recibe` to `rut_responde`."""
    if _rut(dte.rut_emisor, "RUTEmisor") != _rut(caratula.rut_recibe, "RutRecibe"):
        raise ValueError(
            f"El DTE {int(dte.tipo)} folio {dte.folio} no fue emitido por {caratula.rut_recibe}."
        )
    if _rut(dte.rut_receptor, "RUTRecep") != _rut(caratula.rut_responde, "RutResponde"):
        raise ValueError(
            f"El DTE {int(dte.tipo)} folio {dte.folio} no está dirigido a {caratula.rut_responde}."
        )


def _check_unique(dtes: Iterable[DteRecibido]) -> None:
    seen: set[tuple[str, int, int]] = set()
    for dte in dtes:
        identity = (_rut_shape(dte.rut_emisor, "RUTEmisor"), int(dte.tipo), int(dte.folio))
        if identity in seen:
            raise ValueError(f"El DTE {identity[1]} folio {identity[2]} está repetido.")
        seen.add(identity)


def _rut(value: str, field: str) -> str:
    """A RUT with a valid check digit, in the XSD's form (`76086428-5`)."""
    try:
        return normalize_rut(value)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


def _rut_shape(value: str, field: str) -> str:
    """A RUT in the XSD's form, whatever its check digit."""
    compact = _RUT_NOISE.sub("", value).upper() if isinstance(value, str) else ""
    if not _RUT_SHAPE.match(compact):
        raise ValueError(f"{field}: {value!r} no tiene la forma de un RUT (12345678-9).")
    return compact


def _rut_as_given(value: str | None, field: str) -> str | None:
    return None if value is None or not value.strip() else _rut_shape(value, field)


def _positive(value: int, digits: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 10**digits:
        raise ValueError(f"{field} debe ser un entero positivo de hasta {digits} dígitos.")
    return value


def _glosa(value: str, default: str) -> str:
    return text.clean(value, _GLOSA) or default


def _digest(value: str | None) -> str | None:
    if value is None:
        return None
    compact = "".join(value.split())
    if not compact:
        return None
    try:
        base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"Digest: {value!r} no es base64.") from None
    return compact


def _xml_id(value: str) -> str:
    if not _NCNAME.match(value):
        raise ValueError(f"{value!r} no es un ID XML válido.")
    return value
