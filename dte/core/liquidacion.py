"""The liquidación-factura (43): a comisionista or consignatario settles with its mandante the
sales it made on the mandante's behalf and charges its commission (dte/core/EXPORTS.md §6).

`<Liquidacion>` of DTE_v10.xsd, in its order: Encabezado (the mandante is the Receptor, with its
giro, dirección and comuna), Detalle (each liquidated document's type in TpoDocLiq; amounts are
ValorType: whole pesos that may be negative), Referencia, then Comisiones (C comisión, O otros
cargos) whose sums Totales repeats. MntTotal = MntNeto + MntExe + IVA − ValComNeto − ValComExe −
ValComIVA (erp.totals). Pure: no Django.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

from lxml import etree

from dte.core import text
from dte.core.domain import SIIDTE_NS, Emisor, Receptor, Referencia
from dte.core.xml import _NS, _Builder, emisor_body, format_date, format_decimal, referencias
from erp.doctypes import TASA_IVA, codes, liquidable
from erp.totals import (
    CommissionInput,
    LiquidacionTotals,
    TotalsError,
    commission_iva,
    compute_liquidacion_totals,
)

LIQUIDACION_TYPES = codes(lambda d: d.root == "Liquidacion")
MAX_LINES = 60
MAX_COMMISSIONS = 20


class LiquidacionError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TipoMovim(StrEnum):
    COMISION = "C"
    OTROS_CARGOS = "O"


@dataclass(frozen=True, slots=True)
class LineaLiquidada:
    """One liquidated sale: the type of the document the comisionista issued, and its amount."""

    tipo_doc: str  # TpoDocLiq: "33", "39", … or "99"
    nombre: str  # NmbItem ≤80
    monto: int  # MontoItem: whole pesos, negative for a return
    exento: bool = False
    cantidad: Decimal | None = None  # QtyItem
    precio: Decimal | None = None  # PrcItem
    descripcion: str = ""


@dataclass(frozen=True, slots=True)
class Comision:
    glosa: str  # ≤60
    neto: int  # ValComNeto
    exento: int = 0  # ValComExe
    tasa: Decimal | None = None  # TasaComision, a percentage of the liquidated sales
    movimiento: TipoMovim = TipoMovim.COMISION

    @property
    def iva(self) -> int:
        """ValComIVA: the commission's net at the IVA rate, half up."""
        return commission_iva(self.neto)


@dataclass(frozen=True, slots=True)
class Liquidacion:
    folio: int
    fecha_emision: date
    emisor: Emisor  # the comisionista
    receptor: Receptor  # the mandante
    lineas: tuple[LineaLiquidada, ...]
    comisiones: tuple[Comision, ...]
    referencias: tuple[Referencia, ...] = ()
    forma_pago: int = 2  # FmaPago: crédito by default (EXPORTS.md §6)
    fecha_vencimiento: date | None = None
    tipo: int = 43
    totales: LiquidacionTotals = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tipo not in LIQUIDACION_TYPES:
            raise LiquidacionError("tipo_dte", f"El tipo {self.tipo} no es una liquidación.")
        if not 1 <= len(self.lineas) <= MAX_LINES:
            raise LiquidacionError("lines", f"Entre 1 y {MAX_LINES} documentos liquidados.")
        if len(self.comisiones) > MAX_COMMISSIONS:
            raise LiquidacionError("comisiones", f"Máximo {MAX_COMMISSIONS} comisiones.")
        for line in self.lineas:
            if not liquidable(line.tipo_doc):
                raise LiquidacionError("lines", f"Tipo de documento liquidado: {line.tipo_doc}.")
        for party, name in ((self.receptor, "mandante"), (self.emisor, "comisionista")):
            if not (party.giro and party.direccion and party.comuna):
                raise LiquidacionError("partner", f"Al {name} le falta giro, dirección o comuna.")
        try:
            totals = compute_liquidacion_totals(
                [(ln.monto, ln.exento) for ln in self.lineas],
                [CommissionInput(c.neto, c.exento) for c in self.comisiones],
            )
        except TotalsError as exc:
            raise LiquidacionError(exc.field, str(exc)) from exc
        object.__setattr__(self, "totales", totals)

    @property
    def id(self) -> str:
        return f"F{self.folio}T{self.tipo}"

    @property
    def ted_mnt(self) -> str:
        return str(self.totales.monto_total)


def _encabezado(b: _Builder, doc: Liquidacion) -> None:
    id_doc = b.group("IdDoc")
    id_doc.add("TipoDTE", doc.tipo)
    id_doc.add("Folio", doc.folio)
    id_doc.add("FchEmis", format_date(doc.fecha_emision))
    id_doc.add("FmaPago", doc.forma_pago)
    if doc.fecha_vencimiento:
        id_doc.add("FchVenc", format_date(doc.fecha_vencimiento))
    e = doc.emisor
    em = b.group("Emisor")
    em.add("RUTEmisor", e.rut)
    emisor_body(em, e, direccion_required=True)
    r = doc.receptor
    rc = b.group("Receptor")
    rc.add("RUTRecep", r.rut)
    rc.add("RznSocRecep", text.clean(r.razon_social, 100), required=True)
    rc.add("GiroRecep", text.clean(r.giro, 40), required=True)
    rc.add("Contacto", text.clean(r.contacto, 80))
    rc.add("CorreoRecep", text.clean(r.correo, 80))
    rc.add("DirRecep", text.clean(r.direccion, 70), required=True)
    rc.add("CmnaRecep", text.clean(r.comuna, 20), required=True)
    rc.add("CiudadRecep", text.clean(r.ciudad, 20))
    t = doc.totales
    tot = b.group("Totales")
    tot.add("MntNeto", t.monto_neto)
    if t.monto_exento:
        tot.add("MntExe", t.monto_exento)
    tot.add("TasaIVA", TASA_IVA)
    tot.add("IVA", t.iva)
    if doc.comisiones:
        com = tot.group("Comisiones")
        com.add("ValComNeto", t.comision_neto)
        com.add("ValComExe", t.comision_exento)
        com.add("ValComIVA", t.comision_iva)
    tot.add("MntTotal", t.monto_total)


def build_liquidacion(doc: Liquidacion) -> etree._Element:
    """The Liquidacion element without TED and TmstFirma (ted.py and signing add them)."""
    root = etree.Element(_NS + "Liquidacion", nsmap={None: SIIDTE_NS})
    root.set("ID", doc.id)
    b = _Builder(root)
    _encabezado(b.group("Encabezado"), doc)
    for n, line in enumerate(doc.lineas, start=1):
        d = b.group("Detalle")
        d.add("NroLinDet", n)
        d.add("TpoDocLiq", line.tipo_doc)
        if line.exento:
            d.add("IndExe", 1)
        d.add("NmbItem", text.clean(line.nombre, 80), required=True)
        d.add("DscItem", text.clean(line.descripcion, 1000, multiline=True))
        if line.cantidad is not None:
            d.add("QtyItem", format_decimal(line.cantidad))
        if line.precio:
            d.add("PrcItem", format_decimal(line.precio))
        d.add("MontoItem", line.monto)
    referencias(b, doc.referencias, rut_otr=False)
    for n, comision in enumerate(doc.comisiones, start=1):
        c = b.group("Comisiones")
        c.add("NroLinCom", n)
        c.add("TipoMovim", comision.movimiento.value)
        c.add("Glosa", text.clean(comision.glosa, 60), required=True)
        if comision.tasa is not None:
            c.add("TasaComision", format_decimal(comision.tasa, 2))
        c.add("ValComNeto", comision.neto)
        c.add("ValComExe", comision.exento)
        c.add("ValComIVA", comision.iva)
    return root
