"""The documents this system issues, as frozen values. Pure: no Django, no I/O, no clock.

`dte.mapping` turns erp models into these; the builders in this package turn these into XML.
Field limits cite DTE_v10.xsd / EnvioBOLETA_v11.xsd.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from erp.doctypes import ANONYMOUS_RECEIVER_RUT, TipoDte
from erp.totals import GlobalAdjustment, LineInput, Totals, compute_totals

SII_RUT = "60803000-K"
SIIDTE_NS = "http://www.sii.cl/SiiDte"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


@dataclass(frozen=True, slots=True)
class Emisor:
    rut: str
    razon_social: str  # RznSoc ≤100 (RznSocEmisor ≤100 in boletas)
    giro: str  # GiroEmis ≤80
    actecos: tuple[int, ...]  # Acteco 1..4
    direccion: str  # DirOrigen ≤70
    comuna: str  # CmnaOrigen ≤20
    ciudad: str = ""  # CiudadOrigen ≤20
    cdg_sii_sucur: int | None = None
    telefono: str = ""
    correo: str = ""


@dataclass(frozen=True, slots=True)
class Receptor:
    rut: str
    razon_social: str  # RznSocRecep ≤100
    giro: str = ""  # GiroRecep ≤40
    direccion: str = ""  # DirRecep ≤70
    comuna: str = ""  # CmnaRecep ≤20
    ciudad: str = ""  # CiudadRecep ≤20
    contacto: str = ""  # Contacto ≤80
    correo: str = ""  # CorreoRecep ≤80
    num_id: str = ""  # Extranjero/NumId ≤20: a receiver abroad (RUT 55555555-5)
    nacionalidad: str = ""  # Extranjero/Nacionalidad: Aduana country code


ANONYMOUS_RECEPTOR = Receptor(rut=ANONYMOUS_RECEIVER_RUT, razon_social="Consumidor final")


@dataclass(frozen=True, slots=True)
class Linea:
    nombre: str  # NmbItem ≤80
    cantidad: Decimal  # QtyItem Dec12_6
    precio: Decimal  # PrcItem Dec12_6
    descuento_pct: Decimal = Decimal(0)  # DescuentoPct PctType
    exento: bool = False  # IndExe=1
    unidad: str = ""  # UnmdItem ≤4
    descripcion: str = ""  # DscItem ≤1000
    codigo: str = ""  # CdgItem/VlrCodigo ≤35 (TpoCodigo INT1)


@dataclass(frozen=True, slots=True)
class Transporte:
    """Encabezado/Transporte of a guía: the vehicle, the carrier, the driver, the destination."""

    patente: str = ""  # Patente ≤8
    rut_transportista: str = ""  # RUTTrans
    rut_chofer: str = ""  # Chofer/RUTChofer (with NombreChofer, both or neither)
    nombre_chofer: str = ""  # Chofer/NombreChofer ≤30
    direccion_destino: str = ""  # DirDest ≤70
    comuna_destino: str = ""  # CmnaDest ≤20
    ciudad_destino: str = ""  # CiudadDest ≤20

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class Referencia:
    tipo_doc_ref: str  # TpoDocRef: a DTE type, 801 OC, "SET"…; a boleta's may have none ("")
    folio_ref: str  # FolioRef ≤18 ("" with no TpoDocRef)
    fecha_ref: date
    # DTE: 1 anula, 2 corrige texto, 3 corrige montos. A boleta's CodRef is a text (≤18 in
    # EnvioBOLETA): "SET" for a case of the boleta certification set.
    cod_ref: int | str | None = None
    razon_ref: str = ""  # RazonRef ≤90
    rut_otr: str = ""  # RUTOtr: the referenced document's issuer when it is not the emisor


@dataclass(frozen=True, slots=True)
class Documento:
    tipo: TipoDte
    folio: int
    fecha_emision: date
    emisor: Emisor
    receptor: Receptor
    lineas: tuple[Linea, ...]
    referencias: tuple[Referencia, ...] = ()
    ajustes: tuple[GlobalAdjustment, ...] = ()
    forma_pago: int | None = None
    fecha_vencimiento: date | None = None
    ind_servicio: int = 3  # boletas: 3 = ventas y servicios
    ind_traslado: int = 1  # guías: 1 = operación constituye venta … 9 (erp.doctypes.IndTraslado)
    tipo_despacho: int | None = None  # guías: 1 receptor, 2 emisor a receptor, 3 emisor a otras
    transporte: Transporte | None = None  # guías
    totales: Totals = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        totals = compute_totals(
            [LineInput(ln.cantidad, ln.precio, ln.descuento_pct, ln.exento) for ln in self.lineas],
            tipo_dte=self.tipo,
            adjustments=self.ajustes,
        )
        object.__setattr__(self, "totales", totals)

    @property
    def id(self) -> str:
        """The Documento's XML ID, as in the SII's examples (`F60T33`)."""
        return f"F{self.folio}T{int(self.tipo)}"

    @property
    def ted_mnt(self) -> str:
        """TED/DD/MNT: MntTotal as the document writes it (an integer of pesos here)."""
        return str(self.totales.monto_total)


@dataclass(frozen=True, slots=True)
class Resolucion:
    """The company's SII authorization: certification uses NroResol 0."""

    fecha: date
    numero: int


class DteStatus(StrEnum):
    SIGNED = "signed"
    QUEUED = "queued"  # waiting for its envelope to be uploaded
    SENT = "sent"  # the SII gave a track id; waiting for its verdict
    ACCEPTED = "accepted"
    ACCEPTED_WITH_OBJECTIONS = "accepted_with_objections"
    REJECTED = "rejected"
    NEEDS_ATTENTION = "needs_attention"  # retries exhausted or an answer nobody expected


_VERDICTS = frozenset({DteStatus.ACCEPTED, DteStatus.ACCEPTED_WITH_OBJECTIONS, DteStatus.REJECTED})
# A document is rejected only by the SII's verdict on it, so only once the SII has it (SENT).
ALLOWED_TRANSITIONS: dict[DteStatus, frozenset[DteStatus]] = {
    DteStatus.SIGNED: frozenset({DteStatus.QUEUED}),
    DteStatus.QUEUED: frozenset({DteStatus.SENT, DteStatus.NEEDS_ATTENTION}),
    DteStatus.SENT: _VERDICTS | {DteStatus.NEEDS_ATTENTION},
    DteStatus.NEEDS_ATTENTION: frozenset({DteStatus.QUEUED, DteStatus.SENT}),
    DteStatus.ACCEPTED: frozenset(),
    DteStatus.ACCEPTED_WITH_OBJECTIONS: frozenset(),
    DteStatus.REJECTED: frozenset(),
}


def can_transition(current: DteStatus, new: DteStatus) -> bool:
    return new in ALLOWED_TRANSITIONS[current]


class EnvelopeState(StrEnum):
    """An envelope in the outbox. Three kinds of outcome are kept apart: the SII never judged
    the documents (NEEDS_ATTENTION, then retried or re-enveloped with the same folios); the SII
    already had them (followed, never rejected); its verdict on documents (PROCESSED, or
    REJECTED for an envelope refused for its information, RCH)."""

    QUEUED = "queued"  # due for an upload at next_attempt_at
    UPLOADING = "uploading"  # committed before the upload starts
    UNCERTAIN = "uncertain"  # an upload got no answer: the SII is asked before another one
    SENT = "sent"  # the SII has it (track id, or its documents): waiting for the verdict
    PROCESSED = "processed"  # every document has the SII's verdict
    REJECTED = "rejected"  # the SII rejected the envelope for its documents' information (RCH)
    NEEDS_ATTENTION = "needs_attention"  # refused unjudged, or retries exhausted: a person acts
    SUPERSEDED = "superseded"  # its documents went again in a new envelope, same folios


_E = EnvelopeState
ENVELOPE_TRANSITIONS: dict[EnvelopeState, frozenset[EnvelopeState]] = {
    _E.QUEUED: frozenset({_E.UPLOADING, _E.NEEDS_ATTENTION}),
    _E.UPLOADING: frozenset({_E.SENT, _E.QUEUED, _E.UNCERTAIN, _E.NEEDS_ATTENTION}),
    _E.UNCERTAIN: frozenset({_E.SENT, _E.QUEUED, _E.NEEDS_ATTENTION}),
    _E.SENT: frozenset({_E.PROCESSED, _E.REJECTED, _E.NEEDS_ATTENTION}),
    _E.NEEDS_ATTENTION: frozenset({_E.QUEUED, _E.SENT, _E.UNCERTAIN, _E.SUPERSEDED}),
    _E.PROCESSED: frozenset(),
    _E.REJECTED: frozenset(),
    _E.SUPERSEDED: frozenset(),
}


def envelope_can_transition(current: EnvelopeState, new: EnvelopeState) -> bool:
    return new in ENVELOPE_TRANSITIONS[current]
