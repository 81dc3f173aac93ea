"""Reads of erp's data, always for one company (the caller got it from erp.tenancy)."""

from datetime import date

from django.db.models import Q, QuerySet

from erp.errors import NotFound
from erp.models import (
    AuditEvent,
    Company,
    Partner,
    Product,
    PurchaseDocument,
    SalesDocument,
)
from erp.rut import InvalidRut, normalize_rut
from erp.tenancy import scoped


def _rut_or_none(text: str) -> str | None:
    try:
        return normalize_rut(text)
    except InvalidRut:
        return None


def partner_list(*, company: Company, search: str = "") -> QuerySet[Partner]:
    qs = scoped(Partner.objects.all(), company)
    search = search.strip()
    if search:
        condition = Q(razon_social__icontains=search) | Q(rut__icontains=search.replace(".", ""))
        rut = _rut_or_none(search)
        if rut:
            condition |= Q(rut=rut)
        qs = qs.filter(condition)
    return qs


def product_list(
    *, company: Company, search: str = "", active: bool | None = None
) -> QuerySet[Product]:
    qs = scoped(Product.objects.all(), company)
    if search.strip():
        qs = qs.filter(Q(code__icontains=search.strip()) | Q(name__icontains=search.strip()))
    if active is not None:
        qs = qs.filter(is_active=active)
    return qs


def sales_document_list(
    *,
    company: Company,
    tipo_dte: int | None = None,
    state: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    partner_id: int | None = None,
) -> QuerySet[SalesDocument]:
    qs = scoped(SalesDocument.objects.select_related("partner"), company)
    if tipo_dte:
        qs = qs.filter(tipo_dte=tipo_dte)
    if state:
        qs = qs.filter(state=state)
    if date_from:
        qs = qs.filter(fecha_emision__gte=date_from)
    if date_to:
        qs = qs.filter(fecha_emision__lte=date_to)
    if partner_id:
        qs = qs.filter(partner_id=partner_id)
    return qs


def purchase_document_list(
    *,
    company: Company,
    tipo_doc: int | None = None,
    estado: str | None = None,
    periodo: date | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    partner_id: int | None = None,
    search: str = "",
) -> QuerySet[PurchaseDocument]:
    qs = scoped(PurchaseDocument.objects.select_related("partner"), company)
    if tipo_doc:
        qs = qs.filter(tipo_doc=tipo_doc)
    if estado:
        qs = qs.filter(estado=estado)
    if periodo:
        qs = qs.filter(periodo=periodo)
    if date_from:
        qs = qs.filter(fecha__gte=date_from)
    if date_to:
        qs = qs.filter(fecha__lte=date_to)
    if partner_id:
        qs = qs.filter(partner_id=partner_id)
    search = search.strip()
    if search:
        condition = Q(partner__razon_social__icontains=search)
        rut = _rut_or_none(search)
        if rut:
            condition |= Q(rut_emisor=rut)
        if search.isdigit():
            condition |= Q(folio=int(search))
        qs = qs.filter(condition)
    return qs


def _get(qs: QuerySet, pk, message: str):
    try:
        return qs.get(pk=int(pk))
    except (ValueError, TypeError, qs.model.DoesNotExist) as exc:
        raise NotFound(message) from exc


def partner_get(*, company: Company, pk) -> Partner:
    return _get(scoped(Partner.objects.all(), company), pk, "Cliente o proveedor no encontrado.")


def product_get(*, company: Company, pk) -> Product:
    return _get(scoped(Product.objects.all(), company), pk, "Producto no encontrado.")


def sales_document_get(*, company: Company, pk) -> SalesDocument:
    qs = scoped(
        SalesDocument.objects.select_related("partner", "created_by", "updated_by"), company
    ).prefetch_related("lines__product", "references", "commissions")
    return _get(qs, pk, "Documento no encontrado.")


def sales_document_ref(*, company: Company, pk) -> SalesDocument:
    """The company's document by id, without its relations: for a service that loads (and
    locks) what it needs itself, such as issuing."""
    qs = scoped(SalesDocument.objects.only("pk", "company_id", "tipo_dte", "state"), company)
    return _get(qs, pk, "Documento no encontrado.")


def purchase_document_get(*, company: Company, pk) -> PurchaseDocument:
    qs = scoped(PurchaseDocument.objects.select_related("partner"), company)
    return _get(qs, pk, "Documento de compra no encontrado.")


def audit_for(*, company: Company, obj, limit: int = 20) -> QuerySet[AuditEvent]:
    return scoped(AuditEvent.objects.select_related("actor"), company).filter(
        entity=obj._meta.model_name, entity_id=obj.pk
    )[:limit]
