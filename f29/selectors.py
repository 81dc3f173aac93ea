"""Reads for the F29: the period's aggregates (in SQL, a fixed number of queries whatever the
number of documents), a box's documents, and both sides of the reconciliation."""

from datetime import date

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from dte.core.domain import DteStatus
from erp.doctypes import codes
from erp.errors import NotFound
from erp.models import Company, PurchaseDocument, PurchaseState, SalesDocument
from erp.periods import period_end
from erp.tenancy import scoped
from f29 import calc
from f29.models import F29Return, RcvEntry, RcvImport, RcvKind
from f29.reconcile import LedgerDoc

ACCEPTED = (DteStatus.ACCEPTED, DteStatus.ACCEPTED_WITH_OBJECTIONS)
# Boletas reach the RCV as daily summaries, guías not at all: neither is matched one by one.
NOT_IN_RCV_DETAIL = tuple(sorted(codes(lambda d: not d.rcv_detail)))


def _sum(field: str):
    return Coalesce(Sum(field), 0)


def sales_in_f29(*, company: Company, periodo: date) -> QuerySet[SalesDocument]:
    """The period's issued sales documents that the SII accepted: what the F29 declares."""
    return scoped(SalesDocument.objects.all(), company).filter(
        state="issued",
        fecha_emision__gte=periodo,
        fecha_emision__lte=period_end(periodo),
        dte__status__in=ACCEPTED,
    )


def purchases_in_f29(*, company: Company, periodo: date) -> QuerySet[PurchaseDocument]:
    """The period's purchases in the register ("registro"): what gives VAT credit."""
    return scoped(PurchaseDocument.objects.all(), company).filter(
        periodo=periodo, estado=PurchaseState.REGISTRO
    )


def sales_aggregates(*, company: Company, periodo: date) -> tuple[calc.SalesAggregate, ...]:
    rows = (
        sales_in_f29(company=company, periodo=periodo)
        .values("tipo_dte")
        .order_by("tipo_dte")
        .annotate(
            count=Count("id"),
            neto=_sum("monto_neto"),
            exento=_sum("monto_exento"),
            iva=_sum("iva"),
            iva_retenido=_sum("iva_retenido"),
            total=_sum("monto_total"),
            comision_neto=_sum("comision_neto"),
            comision_exento=_sum("comision_exento"),
            comision_iva=_sum("comision_iva"),
        )
    )
    return tuple(
        calc.SalesAggregate(
            tipo=r["tipo_dte"],
            count=r["count"],
            neto=r["neto"],
            exento=r["exento"],
            iva=r["iva"],
            iva_retenido=r["iva_retenido"],
            total=r["total"],
            comision_neto=r["comision_neto"],
            comision_exento=r["comision_exento"],
            comision_iva=r["comision_iva"],
        )
        for r in rows
    )


def purchase_aggregates(*, company: Company, periodo: date) -> tuple[calc.PurchaseAggregate, ...]:
    rows = (
        purchases_in_f29(company=company, periodo=periodo)
        .values("tipo_doc", "is_fixed_asset")
        .order_by("tipo_doc", "is_fixed_asset")
        .annotate(
            count=Count("id"),
            neto=_sum("monto_neto"),
            exento=_sum("monto_exento"),
            iva_recuperable=_sum("iva_recuperable"),
            iva_no_recuperable=_sum("iva_no_recuperable"),
            iva_uso_comun=_sum("iva_uso_comun"),
            total=_sum("monto_total"),
        )
    )
    return tuple(
        calc.PurchaseAggregate(
            tipo=r["tipo_doc"],
            fixed_asset=r["is_fixed_asset"],
            count=r["count"],
            neto=r["neto"],
            exento=r["exento"],
            iva_recuperable=r["iva_recuperable"],
            iva_no_recuperable=r["iva_no_recuperable"],
            iva_uso_comun=r["iva_uso_comun"],
            total=r["total"],
        )
        for r in rows
    )


def f29_list(*, company: Company) -> QuerySet[F29Return]:
    return scoped(F29Return.objects.all(), company)


def f29_get(*, company: Company, periodo: date) -> F29Return:
    found = f29_list(company=company).filter(periodo=periodo).first()
    if found is None:
        raise NotFound("No hay F29 para ese período: calcúlelo primero.")
    return found


def f29_find(*, company: Company, periodo: date) -> F29Return | None:
    return f29_list(company=company).filter(periodo=periodo).first()


def box_documents(*, company: Company, periodo: date, part: dict) -> QuerySet:
    """The documents behind one trail part of a box, as the computation selected them."""
    tipos = part.get("tipos") or []
    if part.get("source") == "sales":
        return (
            sales_in_f29(company=company, periodo=periodo)
            .filter(tipo_dte__in=tipos)
            .select_related("partner")
            .order_by("tipo_dte", "folio")
        )
    if part.get("source") == "purchases":
        qs = purchases_in_f29(company=company, periodo=periodo).filter(tipo_doc__in=tipos)
        if part.get("fixed_asset") is not None:
            qs = qs.filter(is_fixed_asset=part["fixed_asset"])
        return qs.select_related("partner").order_by("tipo_doc", "folio")
    return SalesDocument.objects.none()


def rcv_import_list(*, company: Company) -> QuerySet[RcvImport]:
    return scoped(RcvImport.objects.select_related("actor"), company)


# ---------------------------------------------------------------- reconciliation sides


def _sales_estado(status: str) -> str:
    return "registro" if status in ACCEPTED else status


def books_side(*, company: Company, periodo: date, kind: str) -> list[LedgerDoc]:
    if kind == RcvKind.VENTAS:
        rows = (
            scoped(SalesDocument.objects.all(), company)
            .filter(
                state="issued",
                fecha_emision__gte=periodo,
                fecha_emision__lte=period_end(periodo),
            )
            .exclude(tipo_dte__in=NOT_IN_RCV_DETAIL)
            .exclude(dte__status=DteStatus.REJECTED)
            .values_list(
                "id",
                "tipo_dte",
                "folio",
                "partner__rut",
                "partner__razon_social",
                "fecha_emision",
                "monto_exento",
                "monto_neto",
                "iva",
                "monto_total",
                "dte__status",
            )
        )
        return [
            LedgerDoc(
                tipo=r[1],
                folio=r[2],
                rut=r[3] or "66666666-6",
                razon_social=r[4] or "",
                fecha=r[5],
                monto_exento=r[6],
                monto_neto=r[7],
                monto_iva=r[8],
                monto_total=r[9],
                estado=_sales_estado(r[10] or ""),
                ref=r[0],
            )
            for r in rows.iterator(chunk_size=5000)
        ]
    rows = (
        scoped(PurchaseDocument.objects.all(), company)
        .filter(periodo=periodo)
        .values_list(
            "id",
            "tipo_doc",
            "folio",
            "rut_emisor",
            "partner__razon_social",
            "fecha",
            "monto_exento",
            "monto_neto",
            "iva_recuperable",
            "monto_total",
            "estado",
        )
    )
    return [
        LedgerDoc(
            tipo=r[1],
            folio=r[2],
            rut=r[3],
            razon_social=r[4],
            fecha=r[5],
            monto_exento=r[6],
            monto_neto=r[7],
            monto_iva=r[8],
            monto_total=r[9],
            estado=r[10],
            ref=r[0],
        )
        for r in rows.iterator(chunk_size=5000)
    ]


def rcv_side(*, company: Company, periodo: date, kind: str) -> list[LedgerDoc]:
    rows = (
        scoped(RcvEntry.objects.all(), company)
        .filter(kind=kind, periodo=periodo)
        .exclude(Q(kind=RcvKind.VENTAS) & Q(tipo__in=NOT_IN_RCV_DETAIL))
        .values_list(
            "id",
            "tipo",
            "folio",
            "rut",
            "razon_social",
            "fecha",
            "monto_exento",
            "monto_neto",
            "monto_iva",
            "monto_total",
            "estado",
            "fecha_reclamo",
        )
    )
    return [
        LedgerDoc(
            tipo=r[1],
            folio=r[2],
            rut=r[3],
            razon_social=r[4],
            fecha=r[5],
            monto_exento=r[6],
            monto_neto=r[7],
            monto_iva=r[8],
            monto_total=r[9],
            # A sale the customer claimed stays in the RCV, marked by its claim date.
            estado="reclamado" if kind == RcvKind.VENTAS and r[11] else r[10],
            ref=r[0],
        )
        for r in rows.iterator(chunk_size=5000)
    ]
