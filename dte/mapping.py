"""The only place that turns erp models into dte.core dataclasses."""

from decimal import Decimal
from typing import Any

from dte import errors
from dte.core.domain import (
    ANONYMOUS_RECEPTOR,
    Documento,
    Emisor,
    Linea,
    Receptor,
    Referencia,
    Resolucion,
    Transporte,
)
from dte.core.export import Aduana, Bulto, Exportacion, ExportError
from dte.core.liquidacion import (
    Comision,
    LineaLiquidada,
    Liquidacion,
    LiquidacionError,
    TipoMovim,
)
from erp.doctypes import IndTraslado, TipoDte
from erp.errors import DomainError
from erp.models import Company, Partner, SalesDocument, SalesDocumentReference
from erp.services import CERTIFICATION_REFERENCE, export_adjustments
from erp.totals import GlobalAdjustment, Movement, TotalsError, ValueType


class MappingError(ValueError):
    """The stored document cannot become a DTE as it is (field, message)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def resolucion_from(company: Company) -> Resolucion:
    """The company's SII authorization for the carátula; a clear error when it has none."""
    if company.resolution_date is None:
        message = "La empresa no tiene fecha de resolución del SII."
        raise DomainError(errors.NOT_ISSUABLE, message, {"resolution_date": message})
    return Resolucion(fecha=company.resolution_date, numero=company.resolution_number)


def emisor_from(company: Company) -> Emisor:
    return Emisor(
        rut=company.rut,
        razon_social=company.razon_social,
        giro=company.giro,
        actecos=tuple(company.actecos or ()),
        direccion=company.direccion,
        comuna=company.comuna,
        ciudad=company.ciudad,
        cdg_sii_sucur=company.cdg_sii_sucur,
        telefono=company.telefono,
        correo=company.email,
    )


def receptor_from(partner: Partner | None) -> Receptor:
    if partner is None:
        return ANONYMOUS_RECEPTOR
    return Receptor(
        rut=partner.rut,
        razon_social=partner.razon_social,
        giro=partner.giro,
        direccion=partner.direccion,
        comuna=partner.comuna,
        ciudad=partner.ciudad,
        contacto=partner.contacto,
        correo=partner.email_dte,
        num_id=partner.num_id,
        nacionalidad=partner.nacionalidad,
    )


def _receptor_of(document: SalesDocument) -> Receptor:
    """The partner; for a guía whose goods stay with the emisor, the emisor itself."""
    traslado = IndTraslado(document.ind_traslado) if document.ind_traslado else None
    if document.partner is None and traslado and traslado.receiver_is_issuer:
        company = document.company
        return Receptor(
            rut=company.rut,
            razon_social=company.razon_social,
            giro=company.giro[:40],
            direccion=company.direccion,
            comuna=company.comuna,
            ciudad=company.ciudad,
        )
    return receptor_from(document.partner)


def _transporte(document: SalesDocument) -> Transporte | None:
    transporte = Transporte(
        patente=document.patente,
        rut_transportista=document.rut_transportista,
        rut_chofer=document.rut_chofer,
        nombre_chofer=document.nombre_chofer,
        direccion_destino=document.dir_destino,
        comuna_destino=document.comuna_destino,
        ciudad_destino=document.ciudad_destino,
    )
    return transporte or None


def _adjustments(document: SalesDocument) -> tuple[GlobalAdjustment, ...]:
    result = []
    for kind, value, movement in (
        (document.global_discount_type, document.global_discount_value, Movement.DISCOUNT),
        (document.global_surcharge_type, document.global_surcharge_value, Movement.SURCHARGE),
    ):
        if kind and value:
            result.append(GlobalAdjustment(movement, ValueType(kind), value))
    return tuple(result)


def documento_from(document: SalesDocument, *, folio: int) -> Documento:
    """The core Documento for a stored draft; its totals must equal the stored ones."""
    tipo = TipoDte(document.tipo_dte)
    company = document.company
    if not company.actecos and not tipo.gross_prices:
        raise MappingError("actecos", "La empresa no tiene códigos de actividad económica.")
    if not company.comuna:
        raise MappingError("comuna", "La empresa no tiene comuna de origen.")
    receptor = _receptor_of(document)
    if document.partner is None and receptor is ANONYMOUS_RECEPTOR and not tipo.receiver_optional:
        raise MappingError("partner", "El documento no tiene receptor.")
    lines = _lineas(document)
    if not lines:
        raise MappingError("lines", "El documento no tiene líneas.")
    documento = Documento(
        tipo=tipo,
        folio=folio,
        fecha_emision=document.fecha_emision,
        emisor=emisor_from(company),
        receptor=receptor,
        lineas=lines,
        referencias=_references(document),
        ajustes=_adjustments(document),
        forma_pago=document.forma_pago,
        fecha_vencimiento=document.fecha_vencimiento,
        ind_traslado=document.ind_traslado or IndTraslado.VENTA,
        tipo_despacho=document.tipo_despacho,
        transporte=_transporte(document),
    )
    if documento.totales.monto_total != document.monto_total:
        raise MappingError(
            "monto_total",
            "Los totales guardados no coinciden con las líneas; guarde el borrador de nuevo.",
        )
    return documento


def _lineas(document: SalesDocument, *, all_exempt: bool = False) -> tuple[Linea, ...]:
    return tuple(
        Linea(
            nombre=line.name,
            cantidad=line.quantity,
            precio=line.unit_price,
            descuento_pct=line.discount_pct,
            exento=all_exempt or line.is_exempt,
            unidad=line.unit,
            descripcion=line.description,
            codigo=line.product.code if line.product_id else "",
        )
        for line in _lines_with_products(document)
    )


def _lines_with_products(document: SalesDocument):
    """The lines, from the prefetch when the caller made one (dte.services: one query for a
    whole batch), else in one query with their products."""
    if "lines" in getattr(document, "_prefetched_objects_cache", {}):
        return document.lines.all()
    return document.lines.select_related("product")


def _references(document: SalesDocument) -> tuple[Referencia, ...]:
    boleta = TipoDte(document.tipo_dte).gross_prices
    return tuple(_referencia(ref, boleta=boleta) for ref in document.references.all())


def _referencia(ref: SalesDocumentReference, *, boleta: bool) -> Referencia:
    if boleta and ref.tipo_doc_ref == CERTIFICATION_REFERENCE:
        # A boleta names its case of the SII's boleta set its own way: CodRef "SET" (a text in
        # EnvioBOLETA) and RazonRef "CASO-n", without TpoDocRef or FolioRef (and, as every
        # boleta, without FchRef): dte/core/CERTIFICATION.md, "The boleta set".
        return Referencia(
            tipo_doc_ref="",
            folio_ref="",
            fecha_ref=ref.fecha_ref,
            cod_ref=CERTIFICATION_REFERENCE,
            razon_ref=ref.razon_ref,
        )
    return Referencia(
        tipo_doc_ref=ref.tipo_doc_ref,
        folio_ref=ref.folio_ref,
        fecha_ref=ref.fecha_ref,
        cod_ref=ref.cod_ref,
        razon_ref=ref.razon_ref,
        rut_otr=ref.rut_otr,
    )


def _aduana(data: dict[str, Any]) -> Aduana:
    decimal = {"total_clausula", "peso_bruto", "peso_neto", "flete", "seguro"}
    packages = ("tipo_bultos", "marcas", "id_container", "sello")
    fields: dict[str, Any] = {
        k: (Decimal(v) if k in decimal else v) for k, v in data.items() if k not in packages
    }
    bultos: tuple[Bulto, ...] = ()
    if data.get("tipo_bultos"):
        bultos = (
            Bulto(
                codigo=data["tipo_bultos"],
                cantidad=data.get("total_bultos") or 1,
                marcas=data.get("marcas", ""),
                id_container=data.get("id_container", ""),
                sello=data.get("sello", ""),
            ),
        )
    return Aduana(**fields, bultos=bultos)


def exportacion_from(document: SalesDocument, *, folio: int) -> Exportacion:
    """The core Exportacion (110–112) for a stored draft; its totals must equal the stored ones."""
    tipo = TipoDte(document.tipo_dte)
    if document.partner is None:
        raise MappingError("partner", "El documento no tiene receptor.")
    lines = _lineas(document, all_exempt=True)
    header = {
        "global_discount_type": document.global_discount_type,
        "global_discount_value": document.global_discount_value,
        "global_surcharge_type": document.global_surcharge_type,
        "global_surcharge_value": document.global_surcharge_value,
        "aduana": document.aduana,
    }
    try:
        exportacion = Exportacion(
            tipo=int(tipo),
            folio=folio,
            fecha_emision=document.fecha_emision,
            emisor=emisor_from(document.company),
            receptor=receptor_from(document.partner),
            lineas=lines,
            moneda=document.moneda,
            tipo_cambio=document.tipo_cambio or Decimal(0),
            aduana=_aduana(dict(document.aduana or {})),
            referencias=_references(document),
            ajustes=tuple(export_adjustments(tipo, header)),
            ind_servicio=document.ind_servicio,
            forma_pago_exportacion=document.forma_pago_exportacion,
            fecha_vencimiento=document.fecha_vencimiento,
        )
    except ExportError as exc:
        raise MappingError(exc.field, str(exc)) from exc
    except TotalsError as exc:
        raise MappingError(exc.field, str(exc)) from exc
    if exportacion.totales.monto_total != document.monto_total_moneda:
        raise MappingError(
            "monto_total",
            "Los totales guardados no coinciden con las líneas; guarde el borrador de nuevo.",
        )
    return exportacion


def liquidacion_from(document: SalesDocument, *, folio: int) -> Liquidacion:
    """The core Liquidacion (43) for a stored draft: its lines' signed amounts as stored, its
    commissions; its totals must equal the stored ones."""
    if document.partner is None:
        raise MappingError("partner", "La liquidación factura no tiene mandante (receptor).")
    lines = tuple(
        LineaLiquidada(
            tipo_doc=line.tipo_doc_liq,
            nombre=line.name,
            monto=line.amount,
            exento=line.is_exempt,
            cantidad=line.quantity,
            precio=line.unit_price,
            descripcion=line.description,
        )
        for line in document.lines.all()
    )
    comisiones = tuple(
        Comision(
            glosa=c.glosa,
            neto=c.neto,
            exento=c.exento,
            tasa=c.tasa,
            movimiento=TipoMovim(c.tipo_movim),
        )
        for c in document.commissions.all()
    )
    try:
        liquidacion = Liquidacion(
            tipo=document.tipo_dte,
            folio=folio,
            fecha_emision=document.fecha_emision,
            emisor=emisor_from(document.company),
            receptor=receptor_from(document.partner),
            lineas=lines,
            comisiones=comisiones,
            referencias=_references(document),
            forma_pago=document.forma_pago or 2,
            fecha_vencimiento=document.fecha_vencimiento,
        )
    except LiquidacionError as exc:
        raise MappingError(exc.field, str(exc)) from exc
    if liquidacion.totales.monto_total != document.monto_total:
        raise MappingError(
            "monto_total",
            "Los totales guardados no coinciden con las líneas; guarde el borrador de nuevo.",
        )
    return liquidacion


def dte_from(document: SalesDocument, *, folio: int) -> Documento | Exportacion | Liquidacion:
    """The core document of a stored draft, by the root its type's DTE carries."""
    if document.tipo.is_export:
        return exportacion_from(document, folio=folio)
    if document.tipo.is_liquidacion:
        return liquidacion_from(document, folio=folio)
    return documento_from(document, folio=folio)
