"""Documento XML in the schema's element order (DTE_v10.xsd; EnvioBOLETA_v11.xsd for 39/41).

The builder returns the Documento as an lxml element whose root is the Documento itself (with the
SiiDte namespace declared on it), so that its inclusive C14N is exactly the C14N of the Documento
inside a standalone `<DTE xmlns="http://www.sii.cl/SiiDte">`: that is what gets signed.
"""

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from lxml import etree

from dte.core import text
from dte.core.domain import (
    ANONYMOUS_RECEPTOR,
    SIIDTE_NS,
    Documento,
    Emisor,
    Linea,
    Receptor,
    Referencia,
)
from erp.doctypes import TipoDte
from erp.totals import LineAmounts, Movement, ValueType

_NS = f"{{{SIIDTE_NS}}}"

# CodImpAdic / ImptoReten TipoImp 15: IVA retained in full by the buyer (factura de compra).
IVA_RETENIDO_TOTAL = 15


def format_decimal(value: Decimal, places: int = 6) -> str:
    """Decimal for the XML: '.' separator, no exponent, no trailing zeros, at most `places`."""
    quantized = value.quantize(Decimal(1).scaleb(-places))
    plain = f"{quantized:f}"
    return plain.rstrip("0").rstrip(".") if "." in plain else plain


def format_date(value: date) -> str:
    return value.isoformat()


SANTIAGO = ZoneInfo("America/Santiago")


def format_timestamp(value: datetime) -> str:
    """FechaHoraType: Chile's local time, no offset, seconds (`2026-11-23T10:15:00`).

    An aware datetime is converted to America/Santiago; a naive one is taken as already local.
    """
    if value.tzinfo is not None:
        value = value.astimezone(SANTIAGO)
    return value.strftime("%Y-%m-%dT%H:%M:%S")


class _Builder:
    """Appends children in order; skips empty optional values so the schema stays satisfied."""

    def __init__(self, parent: etree._Element) -> None:
        self.parent = parent

    def add(
        self, tag: str, value: object = None, *, required: bool = False
    ) -> etree._Element | None:
        if value is None or value == "":
            if not required:
                return None
            value = ""
        element = etree.SubElement(self.parent, _NS + tag)
        element.text = str(value)
        return element

    def group(self, tag: str) -> "_Builder":
        return _Builder(etree.SubElement(self.parent, _NS + tag))


def _id_doc(b: _Builder, doc: Documento) -> None:
    id_doc = b.group("IdDoc")
    id_doc.add("TipoDTE", int(doc.tipo))
    id_doc.add("Folio", doc.folio)
    id_doc.add("FchEmis", format_date(doc.fecha_emision))
    if doc.tipo.gross_prices:
        id_doc.add("IndServicio", doc.ind_servicio)
        if doc.fecha_vencimiento:
            id_doc.add("FchVenc", format_date(doc.fecha_vencimiento))
        return
    if doc.tipo is TipoDte.GUIA_DESPACHO:
        id_doc.add("TipoDespacho", doc.tipo_despacho)
        id_doc.add("IndTraslado", doc.ind_traslado)
    id_doc.add("FmaPago", doc.forma_pago)
    if doc.fecha_vencimiento:
        id_doc.add("FchVenc", format_date(doc.fecha_vencimiento))


def _emisor(b: _Builder, doc: Documento) -> None:
    e = doc.emisor
    em = b.group("Emisor")
    em.add("RUTEmisor", e.rut)
    if doc.tipo.gross_prices:
        em.add("RznSocEmisor", text.clean(e.razon_social, 100))
        em.add("GiroEmisor", text.clean(e.giro, 80))
        em.add("CdgSIISucur", e.cdg_sii_sucur)
        em.add("DirOrigen", text.clean(e.direccion, 70))
        em.add("CmnaOrigen", text.clean(e.comuna, 20))
        em.add("CiudadOrigen", text.clean(e.ciudad, 20))
        return
    emisor_body(em, e)


def emisor_body(em: _Builder, e: Emisor, *, direccion_required: bool = False) -> None:
    """Emisor after RUTEmisor, as a factura, an export and a liquidación write it."""
    em.add("RznSoc", text.clean(e.razon_social, 100), required=True)
    em.add("GiroEmis", text.clean(e.giro, 80), required=True)
    em.add("Telefono", text.clean(e.telefono, 20))
    em.add("CorreoEmisor", text.clean(e.correo, 80))
    for acteco in e.actecos[:4]:
        em.add("Acteco", acteco)
    em.add("CdgSIISucur", e.cdg_sii_sucur)
    em.add("DirOrigen", text.clean(e.direccion, 70), required=direccion_required)
    em.add("CmnaOrigen", text.clean(e.comuna, 20))
    em.add("CiudadOrigen", text.clean(e.ciudad, 20))


def _receptor(b: _Builder, doc: Documento) -> None:
    r: Receptor = doc.receptor or ANONYMOUS_RECEPTOR
    rc = b.group("Receptor")
    rc.add("RUTRecep", r.rut)
    rc.add("RznSocRecep", text.clean(r.razon_social, 100), required=not doc.tipo.gross_prices)
    if (r.num_id or r.nacionalidad) and not doc.tipo.gross_prices:
        extranjero = rc.group("Extranjero")
        extranjero.add("NumId", text.clean(r.num_id, 20))
        extranjero.add("Nacionalidad", r.nacionalidad)
    if not doc.tipo.gross_prices:
        rc.add("GiroRecep", text.clean(r.giro, 40))
    rc.add("Contacto", text.clean(r.contacto, 80))
    rc.add("CorreoRecep", text.clean(r.correo, 80))
    rc.add("DirRecep", text.clean(r.direccion, 70))
    rc.add("CmnaRecep", text.clean(r.comuna, 20))
    rc.add("CiudadRecep", text.clean(r.ciudad, 20))


def _transporte(b: _Builder, doc: Documento) -> None:
    t = doc.transporte
    if doc.tipo is not TipoDte.GUIA_DESPACHO or not t:
        return
    tr = b.group("Transporte")
    tr.add("Patente", text.clean(t.patente, 8))
    tr.add("RUTTrans", t.rut_transportista)
    if t.rut_chofer and t.nombre_chofer:
        chofer = tr.group("Chofer")
        chofer.add("RUTChofer", t.rut_chofer)
        chofer.add("NombreChofer", text.clean(t.nombre_chofer, 30))
    tr.add("DirDest", text.clean(t.direccion_destino, 70))
    tr.add("CmnaDest", text.clean(t.comuna_destino, 20))
    tr.add("CiudadDest", text.clean(t.ciudad_destino, 20))


def _totales(b: _Builder, doc: Documento) -> None:
    t = doc.totales
    tot = b.group("Totales")
    if t.monto_neto or (not doc.tipo.exempt_only and not t.monto_exento):
        tot.add("MntNeto", t.monto_neto)
    if t.monto_exento:
        tot.add("MntExe", t.monto_exento)
    if not doc.tipo.exempt_only:
        if not doc.tipo.gross_prices:
            tot.add("TasaIVA", t.tasa_iva)
        tot.add("IVA", t.iva)
    if t.iva_retenido:
        ret = tot.group("ImptoReten")
        ret.add("TipoImp", IVA_RETENIDO_TOTAL)
        ret.add("TasaImp", t.tasa_iva)
        ret.add("MontoImp", t.iva_retenido)
    tot.add("MntTotal", t.monto_total)


def _detalle(b: _Builder, doc: Documento, n: int, linea: Linea, amounts: LineAmounts) -> None:
    d = b.group("Detalle")
    d.add("NroLinDet", n)
    if linea.codigo:
        cdg = d.group("CdgItem")
        cdg.add("TpoCodigo", "INT1")
        cdg.add("VlrCodigo", text.clean(linea.codigo, 35))
    if amounts.exempt:
        d.add("IndExe", 1)
    d.add("NmbItem", text.clean(linea.nombre, 80), required=True)
    d.add("DscItem", text.clean(linea.descripcion, 1000, multiline=True))
    d.add("QtyItem", format_decimal(linea.cantidad))
    d.add("UnmdItem", text.clean(linea.unidad, 4))
    if linea.precio:  # PrcItem is at least 0.000001: a line without amounts (CodRef 2) omits it
        d.add("PrcItem", format_decimal(linea.precio))
    if amounts.discount:
        d.add("DescuentoPct", format_decimal(linea.descuento_pct, 2))
        d.add("DescuentoMonto", amounts.discount)
    if doc.tipo.retains_iva and not amounts.exempt:
        d.add("CodImpAdic", IVA_RETENIDO_TOTAL)
    d.add("MontoItem", amounts.amount)


def _descuentos_recargos(b: _Builder, doc: Documento) -> None:
    for n, applied in enumerate(doc.totales.adjustments, start=1):
        adj = applied.adjustment
        dr = b.group("DscRcgGlobal")
        dr.add("NroLinDR", n)
        dr.add("TpoMov", adj.movement.value)
        dr.add(
            "GlosaDR", "Descuento global" if adj.movement is Movement.DISCOUNT else "Recargo global"
        )
        dr.add("TpoValor", adj.value_type.value)
        places = 2 if adj.value_type is ValueType.PERCENT else 0
        dr.add("ValorDR", format_decimal(adj.value, places) if places else applied.amount)
        if adj.exempt or doc.tipo.exempt_only:
            dr.add("IndExeDR", 1)


def referencias(
    b: _Builder, refs: Iterable[Referencia], *, rut_otr: bool = True, fecha: bool = True
) -> None:
    """Referencia elements, as every DTE root writes them: boletas have no FchRef, a
    Liquidacion has no RUTOtr."""
    for n, ref in enumerate(refs, start=1):
        r = b.group("Referencia")
        r.add("NroLinRef", n)
        r.add("TpoDocRef", text.clean(ref.tipo_doc_ref, 3))
        r.add("FolioRef", text.clean(ref.folio_ref, 18))
        if rut_otr:
            r.add("RUTOtr", ref.rut_otr)
        if fecha:
            r.add("FchRef", format_date(ref.fecha_ref))
        r.add("CodRef", ref.cod_ref)
        r.add("RazonRef", text.clean(ref.razon_ref, 90))


def build_documento(doc: Documento) -> etree._Element:
    """The Documento without TED and TmstFirma (ted.py and signing add them)."""
    root = etree.Element(_NS + "Documento", nsmap={None: SIIDTE_NS})
    root.set("ID", doc.id)
    b = _Builder(root)
    enc = b.group("Encabezado")
    _id_doc(enc, doc)
    _emisor(enc, doc)
    _receptor(enc, doc)
    _transporte(enc, doc)
    _totales(enc, doc)
    for n, (linea, amounts) in enumerate(zip(doc.lineas, doc.totales.lines, strict=True), 1):
        _detalle(b, doc, n, linea, amounts)
    _descuentos_recargos(b, doc)
    referencias(b, doc.referencias, fecha=not doc.tipo.gross_prices)
    return root


def append_raw(parent: etree._Element, fragments: Iterable[str]) -> None:
    """Append elements given as XML text in the SiiDte namespace (TED, TmstFirma)."""
    for fragment in fragments:
        wrapper = etree.fromstring(f'<w xmlns="{SIIDTE_NS}">{fragment}</w>')
        for child in wrapper:
            parent.append(child)
