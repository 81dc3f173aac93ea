"""Export documents (110 factura, 111 nota de débito, 112 nota de crédito de exportación): the
`<Exportaciones>` element of DTE_v10.xsd in its order, amounts in the operation's currency.

What the SII expects, with its sources, is in dte/core/EXPORTS.md: the receiver abroad is
55555555-5 with Extranjero; every line and every global adjustment is exempt; amounts are
rounded to the currency's minor unit (erp.totals.compute_export_totals); OtraMoneda always
carries the total in pesos at the document's exchange rate; the TED's MNT is MntTotal written
exactly as in Totales. Pure: no Django.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from lxml import etree

from dte.core import text
from dte.core.domain import SIIDTE_NS, Emisor, Linea, Receptor, Referencia
from dte.core.xml import _NS, _Builder, emisor_body, format_date, format_decimal, referencias
from erp import siicodes
from erp.doctypes import FOREIGN_RECEIVER_RUT, codes
from erp.exports import IND_SERVICIO, PESO_CL, currency_problem
from erp.totals import (
    EXPORT_FRACTION_DIGITS,
    ExportTotals,
    GlobalAdjustment,
    LineInput,
    Movement,
    ValueType,
    compute_export_totals,
)

EXPORT_TYPES = codes(lambda d: d.foreign_currency)


class ExportError(ValueError):
    """An export the SII's schema or rules cannot carry (field, Spanish message)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Bulto:
    """Aduana/TipoBultos: packages of one kind."""

    codigo: int  # CodTpoBultos (erp.siicodes "bultos")
    cantidad: int  # CantBultos
    marcas: str = ""  # Marcas ≤255
    id_container: str = ""  # IdContainer ≤25
    sello: str = ""  # Sello ≤20
    emisor_sello: str = ""  # EmisorSello ≤70


@dataclass(frozen=True, slots=True)
class Aduana:
    """Transporte/Aduana: the customs data of the DUS, as Aduana codes (erp.siicodes)."""

    modalidad_venta: int | None = None  # CodModVenta ("modalidades")
    clausula_venta: int | None = None  # CodClauVenta ("clausulas")
    total_clausula: Decimal | None = None  # TotClauVenta, Dec16_2: what the clause makes payable
    via_transporte: int | None = None  # CodViaTransp ("vias_transporte")
    nombre_transporte: str = ""  # NombreTransp ≤40 (the ship, the flight)
    rut_cia_transporte: str = ""  # RUTCiaTransp
    nombre_cia_transporte: str = ""  # NomCiaTransp ≤40
    booking: str = ""  # Booking ≤20
    operador: str = ""  # Operador ≤20
    puerto_embarque: int | None = None  # CodPtoEmbarque ("puertos")
    puerto_desembarque: int | None = None  # CodPtoDesemb ("puertos")
    tara: int | None = None  # Tara
    unidad_tara: int | None = None  # CodUnidMedTara ("unidades")
    peso_bruto: Decimal | None = None  # PesoBruto, decimal(10,2)
    unidad_peso_bruto: int | None = None  # CodUnidPesoBruto ("unidades")
    peso_neto: Decimal | None = None  # PesoNeto, decimal(10,2)
    unidad_peso_neto: int | None = None  # CodUnidPesoNeto ("unidades")
    total_items: int | None = None  # TotItems
    total_bultos: int | None = None  # TotBultos (mandatory on a 110)
    bultos: tuple[Bulto, ...] = ()  # TipoBultos 0..10
    flete: Decimal | None = None  # MntFlete, Dec14_4, in the document's currency
    seguro: Decimal | None = None  # MntSeguro, Dec14_4
    pais_receptor: int | None = None  # CodPaisRecep ("paises", mandatory on a 110)
    pais_destino: int | None = None  # CodPaisDestin ("paises")

    def codes_to_check(self) -> tuple[tuple[str, str, int | None], ...]:
        return (
            ("modalidad_venta", "modalidades", self.modalidad_venta),
            ("clausula_venta", "clausulas", self.clausula_venta),
            ("via_transporte", "vias_transporte", self.via_transporte),
            ("puerto_embarque", "puertos", self.puerto_embarque),
            ("puerto_desembarque", "puertos", self.puerto_desembarque),
            ("unidad_tara", "unidades", self.unidad_tara),
            ("unidad_peso_bruto", "unidades", self.unidad_peso_bruto),
            ("unidad_peso_neto", "unidades", self.unidad_peso_neto),
            ("pais_receptor", "paises", self.pais_receptor),
            ("pais_destino", "paises", self.pais_destino),
            *(("bultos", "bultos", b.codigo) for b in self.bultos),
        )


@dataclass(frozen=True, slots=True)
class Exportacion:
    tipo: int  # 110, 111, 112
    folio: int
    fecha_emision: date
    emisor: Emisor
    receptor: Receptor  # abroad: RUT 55555555-5, NumId and Nacionalidad
    lineas: tuple[Linea, ...]
    moneda: str  # Totales/TpoMoneda: the XSD's name ("DOLAR USA")
    tipo_cambio: Decimal  # OtraMoneda/TpoCambio: pesos per unit of the currency
    aduana: Aduana = field(default_factory=Aduana)
    referencias: tuple[Referencia, ...] = ()
    ajustes: tuple[GlobalAdjustment, ...] = ()  # freight, insurance: surcharges in the currency
    ind_servicio: int | None = None  # IndServicio 3, 4, 5
    forma_pago_exportacion: int | None = None  # FmaPagExp ("formas_pago_exportacion")
    fecha_vencimiento: date | None = None
    totales: ExportTotals = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check()
        currency = siicodes.currency(self.moneda)
        totals = compute_export_totals(
            [LineInput(ln.cantidad, ln.precio, ln.descuento_pct, True) for ln in self.lineas],
            decimals=currency.decimals,
            adjustments=self.ajustes,
            tipo_cambio=self.tipo_cambio,
        )
        object.__setattr__(self, "totales", totals)

    def _check(self) -> None:
        if self.tipo not in EXPORT_TYPES:
            raise ExportError("tipo_dte", f"El tipo {self.tipo} no es un documento de exportación.")
        if self.receptor.rut != FOREIGN_RECEIVER_RUT:
            raise ExportError(
                "partner", "El receptor de una exportación es extranjero: RUT 55.555.555-5."
            )
        problem = currency_problem(self.moneda)
        if problem:
            raise ExportError("moneda", problem)
        if self.ind_servicio is not None and self.ind_servicio not in IND_SERVICIO:
            raise ExportError("ind_servicio", "Indicador de servicio de exportación: 3, 4 o 5.")
        if self.forma_pago_exportacion is not None and not siicodes.is_valid(
            "formas_pago_exportacion", self.forma_pago_exportacion
        ):
            raise ExportError("forma_pago_exportacion", "Forma de pago de exportación desconocida.")
        if self.receptor.nacionalidad and not siicodes.is_valid(
            "paises", self.receptor.nacionalidad
        ):
            raise ExportError("nacionalidad", "Nacionalidad: use un código de país de Aduana.")
        for name, table, code in self.aduana.codes_to_check():
            if code is not None and not siicodes.is_valid(table, code):
                raise ExportError(name, f"Código de Aduana desconocido en {table}: {code}.")
        if not self.lineas:
            raise ExportError("lines", "El documento no tiene líneas.")

    @property
    def id(self) -> str:
        return f"F{self.folio}T{self.tipo}"

    @property
    def ted_mnt(self) -> str:
        """TED/DD/MNT: MntTotal written exactly as Totales carries it (EXPORTS.md §2)."""
        return _amount(self.totales.monto_total)

    @property
    def is_service(self) -> bool:
        return self.ind_servicio is not None


def _amount(value: Decimal) -> str:
    return format_decimal(value, EXPORT_FRACTION_DIGITS)


def _id_doc(b: _Builder, doc: Exportacion) -> None:
    id_doc = b.group("IdDoc")
    id_doc.add("TipoDTE", doc.tipo)
    id_doc.add("Folio", doc.folio)
    id_doc.add("FchEmis", format_date(doc.fecha_emision))
    id_doc.add("IndServicio", doc.ind_servicio)
    id_doc.add("FmaPagExp", doc.forma_pago_exportacion)
    if doc.fecha_vencimiento:
        id_doc.add("FchVenc", format_date(doc.fecha_vencimiento))


def _emisor(b: _Builder, e: Emisor) -> None:
    em = b.group("Emisor")
    em.add("RUTEmisor", e.rut)
    emisor_body(em, e)


def _receptor(b: _Builder, r: Receptor) -> None:
    rc = b.group("Receptor")
    rc.add("RUTRecep", r.rut)
    rc.add("RznSocRecep", text.clean(r.razon_social, 100), required=True)
    if r.num_id or r.nacionalidad:
        extranjero = rc.group("Extranjero")
        extranjero.add("NumId", text.clean(r.num_id, 20))
        extranjero.add("Nacionalidad", siicodes.normalize_code(r.nacionalidad) or None)
    rc.add("GiroRecep", text.clean(r.giro, 40))
    rc.add("Contacto", text.clean(r.contacto, 80))
    rc.add("CorreoRecep", text.clean(r.correo, 80))
    rc.add("DirRecep", text.clean(r.direccion, 70))
    rc.add("CmnaRecep", text.clean(r.comuna, 20))
    rc.add("CiudadRecep", text.clean(r.ciudad, 20))


def _aduana(b: _Builder, a: Aduana) -> None:
    if a == Aduana():
        return
    ad = b.group("Transporte").group("Aduana")
    ad.add("CodModVenta", a.modalidad_venta)
    ad.add("CodClauVenta", a.clausula_venta)
    if a.total_clausula is not None:
        ad.add("TotClauVenta", format_decimal(a.total_clausula, 2))
    ad.add("CodViaTransp", a.via_transporte)
    ad.add("NombreTransp", text.clean(a.nombre_transporte, 40))
    ad.add("RUTCiaTransp", a.rut_cia_transporte)
    ad.add("NomCiaTransp", text.clean(a.nombre_cia_transporte, 40))
    ad.add("Booking", text.clean(a.booking, 20))
    ad.add("Operador", text.clean(a.operador, 20))
    ad.add("CodPtoEmbarque", a.puerto_embarque)
    ad.add("CodPtoDesemb", a.puerto_desembarque)
    ad.add("Tara", a.tara)
    ad.add("CodUnidMedTara", a.unidad_tara)
    if a.peso_bruto is not None:
        ad.add("PesoBruto", format_decimal(a.peso_bruto, 2))
    ad.add("CodUnidPesoBruto", a.unidad_peso_bruto)
    if a.peso_neto is not None:
        ad.add("PesoNeto", format_decimal(a.peso_neto, 2))
    ad.add("CodUnidPesoNeto", a.unidad_peso_neto)
    ad.add("TotItems", a.total_items)
    ad.add("TotBultos", a.total_bultos)
    for bulto in a.bultos[:10]:
        tb = ad.group("TipoBultos")
        tb.add("CodTpoBultos", bulto.codigo)
        tb.add("CantBultos", bulto.cantidad)
        tb.add("Marcas", text.clean(bulto.marcas, 255))
        tb.add("IdContainer", text.clean(bulto.id_container, 25))
        tb.add("Sello", text.clean(bulto.sello, 20))
        tb.add("EmisorSello", text.clean(bulto.emisor_sello, 70))
    if a.flete:
        ad.add("MntFlete", format_decimal(a.flete, 4))
    if a.seguro:
        ad.add("MntSeguro", format_decimal(a.seguro, 4))
    ad.add("CodPaisRecep", a.pais_receptor)
    ad.add("CodPaisDestin", a.pais_destino)


def _totales(b: _Builder, doc: Exportacion) -> None:
    t = doc.totales
    tot = b.group("Totales")
    tot.add("TpoMoneda", siicodes.currency(doc.moneda).name)
    tot.add("MntExe", _amount(t.monto_exento))
    tot.add("MntTotal", _amount(t.monto_total))
    otra = b.group("OtraMoneda")
    otra.add("TpoMoneda", PESO_CL)
    otra.add("TpoCambio", format_decimal(doc.tipo_cambio, 4))
    otra.add("MntExeOtrMnda", t.monto_total_pesos)
    otra.add("MntTotOtrMnda", t.monto_total_pesos, required=True)


def _detalle(b: _Builder, doc: Exportacion) -> None:
    for n, (linea, amounts) in enumerate(zip(doc.lineas, doc.totales.lines, strict=True), 1):
        d = b.group("Detalle")
        d.add("NroLinDet", n)
        if linea.codigo:
            cdg = d.group("CdgItem")
            cdg.add("TpoCodigo", "INT1")
            cdg.add("VlrCodigo", text.clean(linea.codigo, 35))
        d.add("IndExe", 1)
        d.add("NmbItem", text.clean(linea.nombre, 80), required=True)
        d.add("DscItem", text.clean(linea.descripcion, 1000, multiline=True))
        d.add("QtyItem", format_decimal(linea.cantidad))
        d.add("UnmdItem", text.clean(linea.unidad, 4))
        if linea.precio:
            d.add("PrcItem", format_decimal(linea.precio))
        if amounts.discount:
            d.add("DescuentoPct", format_decimal(linea.descuento_pct, 2))
            d.add("DescuentoMonto", amounts.discount)
        d.add("MontoItem", _amount(amounts.amount))


GLOSAS = {Movement.DISCOUNT: "Descuento global", Movement.SURCHARGE: "Recargo global"}


def _descuentos_recargos(b: _Builder, doc: Exportacion) -> None:
    for n, applied in enumerate(doc.totales.adjustments, start=1):
        adj = applied.adjustment
        dr = b.group("DscRcgGlobal")
        dr.add("NroLinDR", n)
        dr.add("TpoMov", adj.movement.value)
        dr.add("GlosaDR", GLOSAS[adj.movement])
        dr.add("TpoValor", adj.value_type.value)
        value = adj.value if adj.value_type is ValueType.PERCENT else applied.amount
        dr.add("ValorDR", format_decimal(value, 2))
        dr.add("IndExeDR", 1)


def build_exportacion(doc: Exportacion) -> etree._Element:
    """The Exportaciones element without TED and TmstFirma (ted.py and signing add them)."""
    root = etree.Element(_NS + "Exportaciones", nsmap={None: SIIDTE_NS})
    root.set("ID", doc.id)
    b = _Builder(root)
    enc = b.group("Encabezado")
    _id_doc(enc, doc)
    _emisor(enc, doc.emisor)
    _receptor(enc, doc.receptor)
    _aduana(enc, doc.aduana)
    _totales(enc, doc)
    _detalle(b, doc)
    _descuentos_recargos(b, doc)
    referencias(b, doc.referencias)
    return root
