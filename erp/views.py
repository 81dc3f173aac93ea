"""Server-rendered pages for staff. Each view parses input, calls one service, renders."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from erp import selectors, services, tenancy
from erp.dashboard import build as build_dashboard
from erp.doctypes import TipoDte, catalog_price
from erp.errors import DomainError
from erp.exports import format_in_currency
from erp.forms import (
    AduanaForm,
    CommissionFormSet,
    DocumentForm,
    LineFormSet,
    PartnerForm,
    ProductForm,
    PurchaseFilterForm,
    PurchaseForm,
    ReferenceFormSet,
    apply_domain_error,
)
from erp.models import Membership
from erp.money import format_clp, format_decimal
from erp.tenancy import Perm
from erp.totals import ExportTotals, LiquidacionTotals
from erp.web import SESSION_KEY, company_view

PAGE_SIZE = 25


def _page(request: HttpRequest, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


@company_view()
def dashboard(request, membership: Membership):
    today, now = timezone.localdate(), timezone.now()
    board = build_dashboard(company=membership.company, today=today, now=now)
    return render(request, "erp/dashboard.html", {"board": board})


@require_POST
@company_view()
def company_switch(request, membership: Membership):
    target = tenancy.membership_for(request.user, company_id=_int(request.POST.get("company")))
    request.session[SESSION_KEY] = target.company_id
    return redirect("erp:dashboard")


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@login_required
def api_token(request):
    """The signed-in user's token for the REST API, shown on demand and rotated on request."""
    from rest_framework.authtoken.models import Token

    token = None
    if request.method == "POST":
        token = services.api_token_rotate(user=request.user)
        messages.success(request, "Se generó un token nuevo; el anterior ya no sirve.")
    exists = token is not None or Token.objects.filter(user=request.user).exists()
    return render(request, "erp/api_token.html", {"token": token, "exists": exists})


# ---------------------------------------------------------------- partners


@company_view()
def partner_list(request, membership: Membership):
    q = request.GET.get("q", "")
    page = _page(request, selectors.partner_list(company=membership.company, search=q))
    return render(request, "erp/partner_list.html", {"page": page, "q": q})


def _save_form(request, form, save, success_url: str, template: str, context: dict):
    if request.method == "POST" and form.is_valid():
        try:
            save(form.cleaned_data)
        except DomainError as exc:
            apply_domain_error(exc, form)
        else:
            messages.success(request, "Guardado.")
            return redirect(success_url)
    return render(request, template, {"form": form, **context}, status=400 if form.errors else 200)


@company_view(Perm.EDIT_MASTER_DATA)
def partner_create(request, membership: Membership):
    form = PartnerForm(request.POST or None)
    return _save_form(
        request,
        form,
        lambda data: services.partner_create(
            company=membership.company, actor=request.user, data=data
        ),
        reverse("erp:partner_list"),
        "erp/partner_form.html",
        {"title": "Nuevo cliente o proveedor"},
    )


@company_view(Perm.EDIT_MASTER_DATA)
def partner_edit(request, membership: Membership, pk: int):
    partner = selectors.partner_get(company=membership.company, pk=pk)
    form = PartnerForm(request.POST or None, instance=partner)
    return _save_form(
        request,
        form,
        lambda data: services.partner_update(partner=partner, actor=request.user, data=data),
        reverse("erp:partner_list"),
        "erp/partner_form.html",
        {
            "title": f"Editar {partner.razon_social}",
            "object": partner,
            "audit": selectors.audit_for(company=membership.company, obj=partner),
        },
    )


# ---------------------------------------------------------------- products


@company_view()
def product_list(request, membership: Membership):
    q = request.GET.get("q", "")
    page = _page(request, selectors.product_list(company=membership.company, search=q))
    return render(request, "erp/product_list.html", {"page": page, "q": q})


@company_view(Perm.EDIT_MASTER_DATA)
def product_create(request, membership: Membership):
    form = ProductForm(request.POST or None, initial={"unit": "UN"})
    return _save_form(
        request,
        form,
        lambda data: services.product_create(
            company=membership.company, actor=request.user, data=data
        ),
        reverse("erp:product_list"),
        "erp/product_form.html",
        {"title": "Nuevo producto o servicio"},
    )


@company_view(Perm.EDIT_MASTER_DATA)
def product_edit(request, membership: Membership, pk: int):
    product = selectors.product_get(company=membership.company, pk=pk)
    form = ProductForm(request.POST or None, instance=product)
    return _save_form(
        request,
        form,
        lambda data: services.product_update(product=product, actor=request.user, data=data),
        reverse("erp:product_list"),
        "erp/product_form.html",
        {
            "title": f"Editar {product.code}",
            "object": product,
            "audit": selectors.audit_for(company=membership.company, obj=product),
        },
    )


# ---------------------------------------------------------------- sales documents


@company_view()
def document_detail(request, membership: Membership, pk: int):
    document = selectors.sales_document_get(company=membership.company, pk=pk)
    return render(
        request,
        "erp/document_detail.html",
        {
            "document": document,
            "audit": selectors.audit_for(company=membership.company, obj=document),
        },
    )


def _document_forms(request, company, document=None):
    data = request.POST if request.method == "POST" else None
    if document is None:
        form = DocumentForm(
            data,
            company=company,
            initial={"tipo_dte": 33, "fecha_emision": timezone.localdate(), "forma_pago": 1},
        )
        lines_initial, refs_initial = [{"quantity": 1, "discount_pct": 0}], []
        commissions_initial = []
    else:
        form = DocumentForm(data, company=company, instance=document)
        lines_initial = [
            {
                "product": ln.product_id,
                "name": ln.name,
                "description": ln.description,
                "quantity": ln.quantity,
                "unit": ln.unit,
                "unit_price": ln.unit_price,
                "discount_pct": ln.discount_pct,
                "is_exempt": ln.is_exempt,
                "tipo_doc_liq": ln.tipo_doc_liq,
            }
            for ln in document.lines.all()
        ]
        refs_initial = [
            {f: getattr(r, f) for f in services.REFERENCE_FIELDS} for r in document.references.all()
        ]
        commissions_initial = [
            {f: getattr(c, f) for f in services.COMMISSION_FIELDS}
            for c in document.commissions.all()
        ]
    # An export's customs data (Transporte/Aduana) rides with the document form.
    form.aduana = AduanaForm(data, prefix="aduana", initial=document.aduana if document else {})
    kwargs = {"form_kwargs": {"company": company}}
    lines = LineFormSet(data, prefix="lines", initial=None if data else lines_initial, **kwargs)
    refs = ReferenceFormSet(data, prefix="refs", initial=None if data else refs_initial)
    # A liquidación factura's commissions ride with the document form too.
    form.commissions = CommissionFormSet(
        data, prefix="commissions", initial=None if data else commissions_initial
    )
    return form, lines, refs


def _active_forms(formset):
    return [f for f in formset.forms if not (f.is_valid() and f.cleaned_data.get("DELETE"))]


def _document_payload(form, lines, refs) -> dict:
    data = {k: v for k, v in form.cleaned_data.items()}
    if data.get("tipo_dte") != TipoDte.GUIA_DESPACHO:
        # The traslado block is hidden for other types: what it still holds is not sent.
        data.update(dict.fromkeys(services.GUIA_FIELDS))
    tipo = data.get("tipo_dte")
    if tipo and TipoDte(tipo).is_export:
        data["aduana"] = form.aduana.values()
    else:  # so is the export block
        data.update(dict.fromkeys(services.EXPORT_FIELDS), aduana={})
        data["moneda"] = ""
    if data.get("partner") is not None:
        data["partner"] = data["partner"].pk
    data["lines"] = []
    for f in _active_forms(lines):
        line = {k: v for k, v in f.cleaned_data.items() if k != "DELETE"}
        line["product"] = line["product"].pk if line.get("product") else None
        data["lines"].append(line)
    data["references"] = [
        {k: v for k, v in f.cleaned_data.items() if k != "DELETE"} for f in _active_forms(refs)
    ]
    liquidacion = bool(tipo) and TipoDte(tipo).is_liquidacion
    data["commissions"] = [
        {k: v for k, v in f.cleaned_data.items() if k != "DELETE"}
        for f in (_active_forms(form.commissions) if liquidacion else [])
    ]
    if not liquidacion:  # the liquidated type column is hidden for other types
        for line in data["lines"]:
            line["tipo_doc_liq"] = ""
    return data


def _liquidacion(form) -> bool:
    """The form is for a liquidación factura (its commissions are read, else ignored)."""
    tipo = form.cleaned_data.get("tipo_dte") if hasattr(form, "cleaned_data") else None
    return bool(tipo) and TipoDte(tipo).is_liquidacion


def _document_edit(request, membership: Membership, document=None):
    company = membership.company
    form, lines, refs = _document_forms(request, company, document)
    valid = all(
        (
            form.is_valid(),
            form.aduana.is_valid(),
            form.commissions.is_valid() or not _liquidacion(form),
            lines.is_valid(),
            refs.is_valid(),
        )
    )
    if request.method == "POST" and valid:
        data = _document_payload(form, lines, refs)
        try:
            if document is None:
                document = services.sales_document_create(
                    company=company, actor=request.user, data=data
                )
            else:
                document = services.sales_document_update(
                    document=document, actor=request.user, data=data
                )
        except DomainError as exc:
            apply_domain_error(
                exc,
                form,
                lines=_active_forms(lines),
                references=_active_forms(refs),
                commissions=_active_forms(form.commissions),
            )
        else:
            messages.success(request, "Documento guardado.")
            return redirect("erp:document_detail", pk=document.pk)
    products = {
        p.pk: {
            "name": p.name,
            "price": format_decimal(p.unit_price),  # as the Precio field reads it
            "gross": format_decimal(
                catalog_price(p.unit_price, TipoDte.BOLETA, exempt=p.is_exempt)
            ),
            "unit": p.unit,
            "exempt": p.is_exempt,
        }
        for p in selectors.product_list(company=company, active=True)
    }
    return render(
        request,
        "erp/document_form.html",
        {
            "form": form,
            "lines": lines,
            "refs": refs,
            "document": document,
            "products": products,
            "title": "Editar borrador" if document else "Nuevo documento",
        },
        status=400 if request.method == "POST" else 200,
    )


@company_view(Perm.EDIT_DOCUMENTS)
def document_create(request, membership: Membership):
    return _document_edit(request, membership)


@company_view(Perm.EDIT_DOCUMENTS)
def document_edit(request, membership: Membership, pk: int):
    document = selectors.sales_document_get(company=membership.company, pk=pk)
    if not document.is_draft:
        messages.error(request, "El documento ya fue emitido y no puede modificarse.")
        return redirect("erp:document_detail", pk=document.pk)
    return _document_edit(request, membership, document)


@require_POST
@company_view(Perm.EDIT_DOCUMENTS)
def document_delete(request, membership: Membership, pk: int):
    document = selectors.sales_document_get(company=membership.company, pk=pk)
    try:
        services.sales_document_delete(document=document, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("erp:document_detail", pk=pk)
    messages.success(request, "Borrador eliminado.")
    return redirect("erp:document_list")


@require_POST
@company_view()
def document_preview(request, membership: Membership) -> HttpResponse:
    """Live totals for the document form, by the same rules as saving; nothing is written.

    Rows still being typed are skipped (their amount shows empty) instead of failing the whole.
    """
    form, lines, _ = _document_forms(request, membership.company)
    form.is_valid()
    header = dict(getattr(form, "cleaned_data", {}))
    if form.aduana.is_valid():
        header["aduana"] = form.aduana.values()  # an export's freight and insurance add up
    rows: list[dict | None] = []
    for n, f in enumerate(lines.forms, start=1):
        data = f.cleaned_data if f.is_valid() else {}
        ambiguous = [
            error.message
            for errors in f.errors.as_data().values()
            for error in errors
            if error.code == "ambiguous"
        ]
        if ambiguous:  # not a number still being typed: a number that reads two ways
            return JsonResponse({"ok": False, "message": f"Línea {n}: {ambiguous[0]}"})
        complete = data.get("quantity") and data.get("unit_price") is not None
        rows.append(None if data.get("DELETE") or not complete else data)
    commissions = []
    if _liquidacion(form):
        for f in form.commissions.forms:
            data = f.cleaned_data if f.is_valid() else {}
            complete = data.get("neto") is not None or data.get("tasa") is not None
            if complete and not data.get("DELETE"):
                commissions.append(data)
    try:
        totals = services.sales_document_totals(
            tipo_dte=header.get("tipo_dte") or 33,
            lines=[r for r in rows if r is not None],
            header=header,
            commissions=commissions,
        )
    except DomainError as exc:
        return JsonResponse({"ok": False, "message": exc.message, "fields": exc.fields})
    if isinstance(totals, LiquidacionTotals):
        amounts_clp = iter(totals.lines)
        charged = totals.comision_neto + totals.comision_exento + totals.comision_iva
        return JsonResponse(
            {
                "ok": True,
                "lines": [format_clp(next(amounts_clp)) if r else "" for r in rows],
                "totals": {
                    "monto_neto": format_clp(totals.monto_neto),
                    "monto_exento": format_clp(totals.monto_exento),
                    "iva": format_clp(totals.iva),
                    "iva_retenido": "—",
                    "comisiones": f"−{format_clp(charged)}",
                    "monto_total": format_clp(totals.monto_total),
                },
            }
        )
    amounts = iter(totals.lines)
    if isinstance(totals, ExportTotals):

        def money(value):
            return format_in_currency(value, header["moneda"])

        pesos = totals.monto_total_pesos
        return JsonResponse(
            {
                "ok": True,
                "lines": [money(next(amounts).amount) if r else "" for r in rows],
                "totals": {
                    "monto_neto": "—",
                    "monto_exento": money(totals.monto_exento),
                    "iva": "—",
                    "iva_retenido": "—",
                    "monto_total": money(totals.monto_total)
                    + (f" ({format_clp(pesos)})" if pesos is not None else ""),
                },
            }
        )
    return JsonResponse(
        {
            "ok": True,
            "lines": [format_clp(next(amounts).amount) if r else "" for r in rows],
            "totals": {
                "monto_neto": format_clp(totals.monto_neto),
                "monto_exento": format_clp(totals.monto_exento),
                "iva": format_clp(totals.iva),
                "iva_retenido": format_clp(totals.iva_retenido),
                "monto_total": format_clp(totals.monto_total),
            },
        }
    )


# ---------------------------------------------------------------- purchases


@company_view()
def purchase_list(request, membership: Membership):
    company = membership.company
    filters = PurchaseFilterForm(request.GET or None)
    criteria = filters.cleaned_data if filters.is_valid() else {}
    qs = selectors.purchase_document_list(
        company=company,
        tipo_doc=criteria.get("tipo_doc"),
        estado=criteria.get("estado") or None,
        periodo=criteria.get("periodo"),
        search=criteria.get("q") or "",
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "erp/purchase_list.html",
        {"page": _page(request, qs), "filters": filters, "query": query.urlencode()},
    )


def _purchase_payload(data: dict) -> dict:
    payload = dict(data)
    payload["partner"] = payload["partner"].pk if payload.get("partner") else None
    return payload


@company_view(Perm.EDIT_DOCUMENTS)
def purchase_create(request, membership: Membership):
    company = membership.company
    form = PurchaseForm(
        request.POST or None,
        company=company,
        initial={"tipo_doc": 33, "fecha": timezone.localdate(), "estado": "registro"},
    )
    return _save_form(
        request,
        form,
        lambda data: services.purchase_document_create(
            company=company, actor=request.user, data=_purchase_payload(data)
        ),
        reverse("erp:purchase_list"),
        "erp/purchase_form.html",
        {"title": "Nuevo documento de compra"},
    )


@company_view(Perm.EDIT_DOCUMENTS)
def purchase_edit(request, membership: Membership, pk: int):
    company = membership.company
    document = selectors.purchase_document_get(company=company, pk=pk)
    form = PurchaseForm(request.POST or None, company=company, instance=document)
    return _save_form(
        request,
        form,
        lambda data: services.purchase_document_update(
            document=document, actor=request.user, data=_purchase_payload(data)
        ),
        reverse("erp:purchase_list"),
        "erp/purchase_form.html",
        {
            "title": f"Editar {document}",
            "object": document,
            "audit": selectors.audit_for(company=company, obj=document),
        },
    )


@require_POST
@company_view(Perm.EDIT_DOCUMENTS)
def purchase_delete(request, membership: Membership, pk: int):
    document = selectors.purchase_document_get(company=membership.company, pk=pk)
    try:
        services.purchase_document_delete(document=document, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("erp:purchase_edit", pk=pk)
    messages.success(request, "Documento de compra eliminado.")
    return redirect("erp:purchase_list")
