"""F29 writes: RCV imports, the monthly proposal and its lifecycle (draft → reviewed → filed,
and reopening, with who and why), and the reconciliation of the books against the RCV."""

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from erp import services as erp_services
from erp.doctypes import PURCHASE_TYPES
from erp.errors import INVALID_INPUT, DomainError
from erp.models import ClosedPeriod, Company, Partner, PurchaseDocument, PurchaseSource
from erp.periods import month_start, period_label, previous_period
from f29 import calc, rcv, selectors, signals
from f29.models import F29Event, F29Return, F29State, RcvEntry, RcvImport, RcvKind
from f29.reconcile import Category, ReconLine, reconcile, summarize

F29_NOT_DRAFT = "f29_not_draft"
F29_WRONG_STATE = "f29_wrong_state"
RCV_INVALID = "rcv_invalid"

ENTRY_FIELDS = (
    "estado",
    "periodo",
    "razon_social",
    "fecha",
    "fecha_recepcion",
    "fecha_reclamo",
    "tipo_compra",
    "monto_exento",
    "monto_neto",
    "monto_iva",
    "monto_iva_no_recuperable",
    "codigo_iva_no_rec",
    "monto_neto_activo_fijo",
    "iva_activo_fijo",
    "iva_uso_comun",
    "otros_impuestos",
    "monto_total",
)


# ---------------------------------------------------------------- RCV import


def _entry_values(row: rcv.RcvRow, periodo: date) -> dict[str, Any]:
    values = {f: getattr(row, f) for f in ENTRY_FIELDS if f != "periodo"}
    values["periodo"] = periodo
    values["razon_social"] = row.razon_social[:200]
    return values


def _purchase_values(row: rcv.RcvRow, periodo: date) -> dict[str, Any]:
    """An RCV compras row as a purchase in the books. The RCV splits fixed-asset purchases into
    their own columns (Monto Neto / IVA Activo Fijo); when the IVA recuperable column is empty
    the fixed-asset IVA is the recoverable one."""
    fixed = bool(row.monto_neto_activo_fijo or row.iva_activo_fijo) or (
        row.tipo_compra.strip().lower() == "activo fijo"
    )
    iva_recuperable = row.monto_iva or (row.iva_activo_fijo if fixed else 0)
    known = (
        row.monto_exento
        + row.monto_neto
        + iva_recuperable
        + row.monto_iva_no_recuperable
        + row.iva_uso_comun
    )
    return {
        "fecha": row.fecha,
        "periodo": periodo,
        "estado": row.estado,
        "monto_exento": row.monto_exento,
        "monto_neto": row.monto_neto,
        "iva_recuperable": iva_recuperable,
        "iva_no_recuperable": row.monto_iva_no_recuperable,
        "codigo_iva_no_rec": (row.codigo_iva_no_rec or "")[:1],
        "iva_uso_comun": row.iva_uso_comun,
        "is_fixed_asset": fixed,
        # Whatever the total carries beyond the book's columns (other taxes, tax without
        # credit right, …) is kept as other taxes, so that the purchase adds up.
        "otros_impuestos": max(row.otros_impuestos, row.monto_total - known),
        "monto_total": row.monto_total,
    }


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    purchases_created: int = 0
    purchases_updated: int = 0
    partners_created: int = 0


def _supplier(company: Company, row: rcv.RcvRow, actor, counts: _Counts) -> Partner:
    partner = Partner.objects.filter(company=company, rut=row.rut).first()
    if partner is not None:
        if not partner.is_supplier:
            Partner.objects.filter(pk=partner.pk).update(is_supplier=True)
        return partner
    counts.partners_created += 1
    return erp_services.partner_create(
        company=company,
        actor=actor,
        data={
            "rut": row.rut,
            "razon_social": (row.razon_social or row.rut)[:100],
            "is_customer": False,
            "is_supplier": True,
        },
    )


def _book_purchase(
    company: Company, row: rcv.RcvRow, periodo: date, actor, counts: _Counts
) -> None:
    """Create the purchase in the books when missing; keep an imported one in step with the
    RCV; never overwrite one that staff entered (the reconciliation shows the differences)."""
    values = _purchase_values(row, periodo)
    existing = PurchaseDocument.objects.filter(
        company=company, tipo_doc=row.tipo, folio=row.folio, rut_emisor=row.rut
    ).first()
    if existing is None:
        partner = _supplier(company, row, actor, counts)
        erp_services.purchase_document_create(
            company=company,
            actor=actor,
            data={"tipo_doc": row.tipo, "folio": row.folio, "partner": partner, **values},
            source=PurchaseSource.RCV,
        )
        counts.purchases_created += 1
    elif existing.source == PurchaseSource.RCV:
        changed = {k: v for k, v in values.items() if getattr(existing, k) != v}
        if changed:
            erp_services.purchase_document_update(
                document=existing, actor=actor, data=changed, check_total=False
            )
            counts.purchases_updated += 1


@transaction.atomic
def rcv_import(
    *,
    company: Company,
    actor,
    content: bytes,
    filename: str,
    kind: str,
    estado: str | None = None,
    periodo: date | None = None,
) -> RcvImport:
    """Import one RCV CSV. Idempotent: the same file again changes nothing. A malformed file is
    refused whole; a bad row is reported and skipped. Compras rows also enter the purchase
    book (creating missing suppliers)."""
    if kind not in RcvKind.values:
        message = "Indique compras o ventas."
        raise DomainError(INVALID_INPUT, message, {"kind": message})
    try:
        parsed = rcv.parse_rcv(content, kind=kind, contribuyente_rut=company.rut, estado=estado)
    except rcv.RcvFileError as exc:
        raise DomainError(RCV_INVALID, exc.message, {"file": exc.message}) from exc
    except ValueError as exc:
        raise DomainError(INVALID_INPUT, str(exc), {"estado": str(exc)}) from exc
    periodo = month_start(periodo) if periodo else None
    counts = _Counts()
    rejected = [
        {"line": r.line, "tipo": r.tipo, "folio": r.folio, "reason": r.reason}
        for r in parsed.rejected
    ]
    closed = set(ClosedPeriod.objects.filter(company=company).values_list("periodo", flat=True))
    existing = {
        (e.tipo, e.folio, e.rut): e
        for e in RcvEntry.objects.filter(company=company, kind=kind).only(
            "id", "tipo", "folio", "rut", *ENTRY_FIELDS
        )
    }
    batch = RcvImport.objects.create(
        company=company,
        kind=kind,
        estado=parsed.estado,
        periodo=periodo,
        filename=filename[:200],
        sha256=hashlib.sha256(content).hexdigest(),
        actor=erp_services.user_or_none(actor),
    )
    to_create = []
    for row in parsed.rows:
        row_period = periodo or month_start(row.fecha)
        if row_period in closed:
            rejected.append(
                {
                    "line": row.line,
                    "tipo": row.tipo,
                    "folio": row.folio,
                    "reason": f"El período {period_label(row_period)} está cerrado (F29 "
                    "presentado): reábralo para importar sus documentos.",
                }
            )
            continue
        if kind == RcvKind.COMPRAS and row.tipo not in PURCHASE_TYPES:
            rejected.append(
                {
                    "line": row.line,
                    "tipo": row.tipo,
                    "folio": row.folio,
                    "reason": f"Tipo de documento {row.tipo}: no va al libro de compras.",
                }
            )
            continue
        values = _entry_values(row, row_period)
        entry = existing.get(row.key)
        if entry is None:
            to_create.append(
                RcvEntry(
                    company=company,
                    kind=kind,
                    tipo=row.tipo,
                    folio=row.folio,
                    rut=row.rut,
                    last_import=batch,
                    **values,
                )
            )
            counts.created += 1
        else:
            changed = [f for f, v in values.items() if getattr(entry, f) != v]
            if changed:
                for field in changed:
                    setattr(entry, field, values[field])
                entry.last_import = batch
                entry.save(update_fields=[*changed, "last_import", "updated_at"])
                counts.updated += 1
            else:
                counts.unchanged += 1
        if kind == RcvKind.COMPRAS:
            _book_purchase(company, row, row_period, actor, counts)
    RcvEntry.objects.bulk_create(to_create, batch_size=1000)
    batch.created, batch.updated, batch.unchanged = counts.created, counts.updated, counts.unchanged
    batch.rejected = len(rejected)
    batch.rejected_rows = rejected
    batch.purchases_created = counts.purchases_created
    batch.purchases_updated = counts.purchases_updated
    batch.partners_created = counts.partners_created
    batch.save()
    return batch


# ---------------------------------------------------------------- the proposal


def _decimal(value: Any, field: str, *, low: Decimal, high: Decimal | None = None) -> Decimal:
    try:
        number = Decimal(str(value).replace(",", "."))
    except (InvalidOperation, ValueError) as exc:
        raise DomainError(
            INVALID_INPUT, "Ingrese un número.", {field: "Ingrese un número."}
        ) from exc
    if not number.is_finite() or number < low or (high is not None and number > high):
        limits = f"entre {low} y {high}" if high is not None else f"mayor o igual a {low}"
        message = f"Debe ser un número {limits}."
        raise DomainError(INVALID_INPUT, message, {field: message})
    return number


def default_uso_comun_factor(sales: tuple[calc.SalesAggregate, ...]) -> Decimal:
    """Our reading of the proportional credit (Art. 43 of the VAT regulation) for a month on its
    own: taxed sales over total sales of the period, net of notas de crédito; 1 with no sales.
    Staff can set the factor of the year instead on the period."""
    taxed = exempt = 0
    for s in sales:
        sign = -1 if s.tipo in calc.SALES_NOTAS_CREDITO else 1
        taxed += sign * s.neto
        exempt += sign * s.exento
    if taxed <= 0 and exempt <= 0:
        return Decimal(1)
    if taxed <= 0:
        return Decimal(0)
    return (Decimal(taxed) / Decimal(taxed + max(exempt, 0))).quantize(Decimal("0.000001"))


def _jsonable(value: int | Decimal) -> int | str:
    return str(value) if isinstance(value, Decimal) else value


def _trail(result: calc.F29Result) -> dict[str, Any]:
    return {
        str(code): {
            "code": code,
            "label": box.label,
            "section": box.section,
            "value": _jsonable(box.value),
            "formula": box.formula,
            "inputs": list(box.inputs),
            "parts": [
                {
                    "source": p.source,
                    "tipos": list(p.tipos),
                    "fixed_asset": p.fixed_asset,
                    "field": p.field,
                    "count": p.count,
                    "amount": p.amount,
                    "sign": p.sign,
                }
                for p in box.parts
            ],
        }
        for code, box in result.boxes.items()
    }


def _event(f29: F29Return, action: str, actor, reason: str = "") -> None:
    F29Event.objects.create(
        f29=f29, action=action, actor=erp_services.user_or_none(actor), reason=reason
    )


def _require_state(f29: F29Return, *states: str, action: str) -> None:
    if f29.state not in states:
        if f29.state == F29State.DRAFT:
            message = (
                f"El F29 de {period_label(f29.periodo)} está en borrador: no se puede {action}."
            )
        else:
            message = (
                f"El F29 de {period_label(f29.periodo)} está {f29.get_state_display().lower()}: "
                f"no se puede {action} sin reabrirlo."
            )
        raise DomainError(
            F29_NOT_DRAFT if F29State.DRAFT in states else F29_WRONG_STATE,
            message,
            {"state": message},
        )


@transaction.atomic
def f29_compute(
    *,
    company: Company,
    periodo: date,
    actor,
    ppm_rate: Any = None,
    remanente: Any = ...,
    uso_comun_factor: Any = ...,
    now=None,
) -> F29Return:
    """Compute (or recompute) the draft of one month from the books. `remanente` and
    `uso_comun_factor`: a value overrides, None goes back to the computed default, and leaving
    them out keeps what the period had."""
    periodo = month_start(periodo)
    previous = selectors.f29_find(company=company, periodo=previous_period(periodo))
    f29, _ = F29Return.objects.select_for_update().get_or_create(
        company=company,
        periodo=periodo,
        defaults={"ppm_rate": previous.ppm_rate if previous else Decimal(0)},
    )
    _require_state(f29, F29State.DRAFT, action="recalcular")
    if ppm_rate is not None and ppm_rate != "":
        f29.ppm_rate = _decimal(ppm_rate, "ppm_rate", low=Decimal(0), high=Decimal(100))
    if remanente is not ...:
        f29.remanente_override = (
            None
            if remanente in (None, "")
            else int(_decimal(remanente, "remanente", low=Decimal(0)))
        )
    if uso_comun_factor is not ...:
        f29.uso_comun_factor = (
            None
            if uso_comun_factor in (None, "")
            else _decimal(uso_comun_factor, "uso_comun_factor", low=Decimal(0), high=Decimal(1))
        )
    sales = selectors.sales_aggregates(company=company, periodo=periodo)
    purchases = selectors.purchase_aggregates(company=company, periodo=periodo)
    if f29.remanente_override is not None:
        remanente_value = f29.remanente_override
    else:
        remanente_value = previous.box(77) if previous else 0
    factor = (
        f29.uso_comun_factor
        if f29.uso_comun_factor is not None
        else default_uso_comun_factor(sales)
    )
    result = calc.compute(
        calc.F29Input(
            sales=sales,
            purchases=purchases,
            remanente_anterior=remanente_value,
            ppm_rate=Decimal(f29.ppm_rate),
            uso_comun_factor=Decimal(factor),
        )
    )
    f29.boxes = {k: _jsonable(v) for k, v in result.as_json().items()}
    f29.trail = _trail(result)
    f29.trail["_inputs"] = {
        "uso_comun_factor": str(factor),
        "uso_comun_factor_default": f29.uso_comun_factor is None,
        "remanente_from_previous": f29.remanente_override is None and previous is not None,
    }
    f29.computed_at = now or timezone.now()
    f29.save()
    _event(f29, F29Event.Action.COMPUTED, actor)
    signals.f29_computed.send(sender=F29Return, f29=f29)
    return f29


@transaction.atomic
def f29_review(*, f29: F29Return, actor) -> F29Return:
    f29 = F29Return.objects.select_for_update().get(pk=f29.pk)
    _require_state(f29, F29State.DRAFT, action="marcar como revisado")
    f29.state = F29State.REVIEWED
    f29.reviewed_at, f29.reviewed_by = timezone.now(), erp_services.user_or_none(actor)
    f29.save(update_fields=["state", "reviewed_at", "reviewed_by"])
    _event(f29, F29Event.Action.REVIEWED, actor)
    return f29


@transaction.atomic
def f29_file(*, f29: F29Return, actor, folio_sii: str = "") -> F29Return:
    """Filed: the period is locked; documents dated in it cannot be created or changed."""
    f29 = F29Return.objects.select_for_update().get(pk=f29.pk)
    _require_state(f29, F29State.REVIEWED, action="presentar (revíselo primero)")
    f29.state = F29State.FILED
    f29.filed_at, f29.filed_by = timezone.now(), erp_services.user_or_none(actor)
    f29.folio_sii = (folio_sii or "").strip()[:20]
    f29.save(update_fields=["state", "filed_at", "filed_by", "folio_sii"])
    ClosedPeriod.objects.get_or_create(
        company=f29.company,
        periodo=f29.periodo,
        defaults={"closed_by": erp_services.user_or_none(actor)},
    )
    _event(f29, F29Event.Action.FILED, actor, f"Folio SII {f29.folio_sii}" if f29.folio_sii else "")
    return f29


@transaction.atomic
def f29_reopen(*, f29: F29Return, actor, reason: str) -> F29Return:
    """Back to draft, unlocking the period. The reason is required and kept with who did it."""
    reason = (reason or "").strip()
    if len(reason) < 5:
        message = "Explique por qué se reabre el período."
        raise DomainError(INVALID_INPUT, message, {"reason": message})
    f29 = F29Return.objects.select_for_update().get(pk=f29.pk)
    _require_state(f29, F29State.REVIEWED, F29State.FILED, action="reabrir")
    f29.state = F29State.DRAFT
    f29.save(update_fields=["state"])
    ClosedPeriod.objects.filter(company=f29.company, periodo=f29.periodo).delete()
    _event(f29, F29Event.Action.REOPENED, actor, reason)
    return f29


def f29_draft_previous_month(*, today: date, actor=None) -> dict[str, str]:
    """The beat job: draft last month's F29 for every company that has not reviewed or filed
    it. One company's failure does not stop the others."""
    periodo = previous_period(month_start(today))
    outcome: dict[str, str] = {}
    for company in Company.objects.order_by("rut"):
        existing = selectors.f29_find(company=company, periodo=periodo)
        if existing is not None and existing.state != F29State.DRAFT:
            outcome[company.rut] = existing.state
            continue
        try:
            f29_compute(company=company, periodo=periodo, actor=actor)
        except DomainError as exc:
            outcome[company.rut] = f"error: {exc.message}"
        else:
            outcome[company.rut] = "draft"
    return outcome


# ---------------------------------------------------------------- reconciliation


@dataclass(frozen=True)
class Reconciliation:
    periodo: date
    kind: str
    lines: list[ReconLine]
    summary: dict[Category, Any]
    rcv_imported: bool


def f29_reconcile(*, company: Company, periodo: date, kind: str) -> Reconciliation:
    if kind not in RcvKind.values:
        message = "Indique compras o ventas."
        raise DomainError(INVALID_INPUT, message, {"kind": message})
    periodo = month_start(periodo)
    books = selectors.books_side(company=company, periodo=periodo, kind=kind)
    sii = selectors.rcv_side(company=company, periodo=periodo, kind=kind)
    lines = reconcile(books, sii)
    return Reconciliation(
        periodo=periodo,
        kind=kind,
        lines=lines,
        summary=summarize(lines),
        rcv_imported=bool(sii),
    )
