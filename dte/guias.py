"""Facturar guías: one factura for a customer's guías de despacho of a period, referencing each.

A guía that moves goods sold (IndTraslado 1) is invoiced later: the factura lists what the guías
delivered and carries one Referencia per guía (TpoDocRef 52, its folio and date). A guía counts
as invoiced while a factura that is not rejected (a draft too, so that two drafts never invoice
it twice) references it.

DL 825 (Ley del IVA) art. 55 lets a seller who delivered with guías de despacho put off the
factura until the 10th of the following month, the factura covering that month's deliveries to
the buyer; its VAT belongs to the month of the deliveries. So a factura drafted after the month
is over is dated the month's last day, unless the user says otherwise. The SII's own free
invoicing system does the same job ("¿Cómo facturar más de una guía de despacho con una misma
factura?", SII manual): one factura, one Referencia per guía.
"""

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from dte import errors
from dte.models import DteStatus
from erp import services as erp_services
from erp.doctypes import IndTraslado, TipoDte
from erp.errors import DomainError
from erp.models import Company, DocumentState, Partner, SalesDocument, SalesDocumentReference

MAX_GUIAS = erp_services.MAX_REFERENCES
INVOICE_TYPES = (TipoDte.FACTURA, TipoDte.FACTURA_EXENTA)


@dataclass(frozen=True)
class GuiaRow:
    guia: SalesDocument
    invoiced_by: SalesDocument | None


def _period_end(start: date) -> date:
    return start.replace(day=calendar.monthrange(start.year, start.month)[1])


def _sale_guias(company: Company, partner: Partner) -> QuerySet[SalesDocument]:
    return (
        SalesDocument.objects.filter(
            company=company,
            partner=partner,
            tipo_dte=TipoDte.GUIA_DESPACHO,
            state=DocumentState.ISSUED,
        )
        .filter(Q(ind_traslado=IndTraslado.VENTA) | Q(ind_traslado__isnull=True))
        .exclude(dte__status=DteStatus.REJECTED)
    )


def _invoicing(company: Company, guias: Sequence[SalesDocument]) -> dict[str, SalesDocument]:
    """Folio of each guía that a live factura already references -> that factura."""
    folios = [str(g.folio) for g in guias]
    refs = (
        SalesDocumentReference.objects.filter(
            document__company=company,
            document__tipo_dte__in=INVOICE_TYPES,
            tipo_doc_ref=str(int(TipoDte.GUIA_DESPACHO)),
            folio_ref__in=folios,
            rut_otr="",
        )
        .exclude(document__dte__status=DteStatus.REJECTED)
        .select_related("document")
    )
    return {r.folio_ref: r.document for r in refs}


def guias_of(*, company: Company, partner: Partner, periodo: date) -> list[GuiaRow]:
    """The customer's sale guías of the month, each with the factura that invoices it, if any."""
    guias = list(
        _sale_guias(company, partner)
        .filter(fecha_emision__range=(periodo, _period_end(periodo)))
        .order_by("fecha_emision", "folio")
    )
    invoiced = _invoicing(company, guias)
    return [GuiaRow(g, invoiced.get(str(g.folio))) for g in guias]


def _merged_lines(guias: Sequence[SalesDocument]) -> list[dict[str, Any]]:
    """The guías' lines, equal items (product, name, unit, price, discount, exemption) summed."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for guia in guias:
        for line in guia.lines.all():
            key = (
                line.product_id,
                line.name,
                line.unit,
                line.unit_price,
                line.discount_pct,
                line.is_exempt,
            )
            if key in merged:
                merged[key]["quantity"] += line.quantity
                continue
            merged[key] = {
                "product": line.product_id,
                "name": line.name,
                "description": line.description,
                "quantity": Decimal(line.quantity),
                "unit": line.unit,
                "unit_price": line.unit_price,
                "discount_pct": line.discount_pct,
                "is_exempt": line.is_exempt,
            }
    return list(merged.values())


def invoice_guias(
    *,
    company: Company,
    actor: Any,
    partner: Partner,
    guia_ids: Sequence[int],
    fecha_emision: date | None = None,
    forma_pago: int | None = None,
) -> SalesDocument:
    """A draft factura for the chosen guías of one customer, referencing each of them."""
    if not guia_ids:
        message = "Elija al menos una guía."
        raise DomainError(errors.NOT_ISSUABLE, message, {"guias": message})
    if len(guia_ids) > MAX_GUIAS:
        message = f"Una factura referencia como máximo {MAX_GUIAS} guías: elija menos."
        raise DomainError(errors.NOT_ISSUABLE, message, {"guias": message})
    guias = list(
        _sale_guias(company, partner)
        .filter(pk__in=guia_ids)
        .prefetch_related("lines")
        .order_by("fecha_emision", "folio")
    )
    if len(guias) != len(set(guia_ids)):
        message = "Alguna guía no es una guía de venta emitida a este cliente."
        raise DomainError(errors.NOT_ISSUABLE, message, {"guias": message})
    invoiced = _invoicing(company, guias)
    if invoiced:
        folio, factura = next(iter(invoiced.items()))
        name = f"N° {factura.folio}" if factura.folio else "en borrador"
        message = f"La guía N° {folio} ya está en la factura {name}."
        raise DomainError(errors.NOT_ISSUABLE, message, {"guias": message})
    lines = _merged_lines(guias)
    all_exempt = all(line["is_exempt"] for line in lines)
    tipo = TipoDte.FACTURA_EXENTA if all_exempt else TipoDte.FACTURA
    if len(lines) > tipo.max_lines:
        message = (
            f"Las guías suman {len(lines)} ítems distintos y una factura admite "
            f"{tipo.max_lines}: facture menos guías a la vez."
        )
        raise DomainError(errors.NOT_ISSUABLE, message, {"guias": message})
    last = max(g.fecha_emision for g in guias)
    today = timezone.localdate()
    if fecha_emision is None:
        # Invoiced after the month closed: dated its last day, as the month's sale.
        fecha_emision = min(today, _period_end(last))
    if fecha_emision < last:
        message = "La factura no puede ser anterior a la última guía que factura."
        raise DomainError(errors.NOT_ISSUABLE, message, {"fecha_emision": message})
    folios = ", ".join(str(g.folio) for g in guias)
    data = {
        "tipo_dte": int(tipo),
        "fecha_emision": fecha_emision,
        "forma_pago": forma_pago,
        "partner": partner.pk,
        "notes": f"Factura de las guías de despacho N° {folios}."[:1000],
        "lines": lines,
        "references": [
            {
                "tipo_doc_ref": str(int(TipoDte.GUIA_DESPACHO)),
                "folio_ref": str(g.folio),
                "fecha_ref": g.fecha_emision,
                "razon_ref": "Guía de despacho facturada",
            }
            for g in guias
        ],
    }
    return erp_services.sales_document_create(company=company, actor=actor, data=data)
