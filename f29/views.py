"""F29 pages: the periods, one period's form with its boxes (each opening its trail), the RCV
import, and the reconciliation with its CSV export. Thin over f29.services and selectors."""

from datetime import date
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from dte.models import STATUS_LABELS
from erp import tenancy
from erp.csvsafe import SafeWriter
from erp.errors import DomainError
from erp.forms import PeriodField
from erp.models import Membership
from erp.money import format_clp, format_decimal
from erp.periods import InvalidPeriod, period_key, period_label, previous_period
from erp.tenancy import Perm
from erp.web import company_view
from f29 import calc, selectors, services
from f29.models import RcvEstado, RcvKind
from f29.reconcile import CATEGORY_LABELS, FIELD_LABELS, Category

PAGE_SIZE = 50
# A state on either side, as people read it: the RCV's, or the SII's verdict on our DTE.
ESTADO_LABELS = {
    **dict(RcvEstado.choices),
    **{str(k): v for k, v in STATUS_LABELS.items()},
}
MAX_UPLOAD = 50 * 1024 * 1024


def _error_text(exc: DomainError) -> str:
    details = [m for msgs in exc.fields.values() for m in msgs if m != exc.message]
    return " ".join([exc.message, *details])


def _period(text: str) -> date:
    try:
        return services.period_from_key(text)
    except InvalidPeriod as exc:
        raise Http404(str(exc)) from exc


class ComputeForm(forms.Form):
    periodo = PeriodField(
        label="Período",
        error_messages={
            "required": "Indique el período como mm-aaaa, p. ej. 10-2026.",
            "invalid": "Indique el período como mm-aaaa, p. ej. 10-2026.",
        },
    )
    # localize: "1,5" as people type it in Chile (the detail page's form takes it too).
    ppm_rate = forms.DecimalField(
        label="Tasa PPM (%)", required=False, min_value=0, max_value=100, localize=True
    )


def _list_page(request, membership: Membership, form: ComputeForm | None = None):
    returns = selectors.f29_list(company=membership.company)
    if form is None:
        default = previous_period(timezone.localdate().replace(day=1))
        form = ComputeForm(initial={"periodo": default})
    return render(
        request,
        "f29/list.html",
        {"returns": returns, "form": form},
        status=400 if form.errors else 200,
    )


@company_view()
def f29_list(request, membership: Membership):
    return _list_page(request, membership)


@require_POST
@company_view(Perm.PREPARE_TAX)
def f29_compute(request, membership: Membership, period: str | None = None):
    form = None
    if period is None:
        form = ComputeForm(request.POST)
        if not form.is_valid():  # each error under its field, on the list page
            return _list_page(request, membership, form)
        periodo, ppm = form.cleaned_data["periodo"], form.cleaned_data.get("ppm_rate")
        extra = {}
    else:
        periodo, ppm = _period(period), request.POST.get("ppm_rate")
        extra = {
            "remanente": request.POST.get("remanente", ""),
            "uso_comun_factor": request.POST.get("uso_comun_factor", ""),
        }
    try:
        services.f29_compute(
            company=membership.company, periodo=periodo, actor=request.user, ppm_rate=ppm, **extra
        )
    except DomainError as exc:
        if form is not None and "periodo" in exc.fields:  # a month no F29 exists for
            form.add_error("periodo", exc.fields["periodo"])
            return _list_page(request, membership, form)
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, f"F29 de {period_label(periodo)} calculado.")
    return redirect("f29:f29_detail", period=period_key(periodo))


def _sections(f29) -> list[tuple[str, list[dict]]]:
    sections: list[tuple[str, list[dict]]] = []
    for code in calc.BOX_CODES:
        box = f29.trail.get(str(code))
        if box is None:
            continue
        value = f29.boxes.get(str(code), 0)
        row = {**box, "value": value, "is_count": box["label"].startswith("Cantidad")}
        if not sections or sections[-1][0] != box["section"]:
            sections.append((box["section"], []))
        sections[-1][1].append(row)
    return sections


def _box_value(code: int, label: str, value) -> str:
    if code == 115:
        return f"{format_decimal(Decimal(str(value)))} %"
    if label.startswith("Cantidad"):
        return str(value)
    return format_clp(int(value))


def _outdated(f29) -> list[dict]:
    """The boxes the books no longer give, as the notice lists them."""
    return [
        {
            "code": c.code,
            "label": c.label,
            "computed": _box_value(c.code, c.label, c.computed),
            "now": _box_value(c.code, c.label, c.now),
        }
        for c in services.f29_outdated(f29=f29)
    ]


@company_view()
def f29_detail(request, membership: Membership, period: str):
    periodo = _period(period)
    f29 = selectors.f29_get(company=membership.company, periodo=periodo)
    return render(
        request,
        "f29/detail.html",
        {
            "f29": f29,
            "period": period,
            "label": period_label(periodo),
            "outdated": _outdated(f29),
            "sections": _sections(f29),
            "factor_default": Decimal(f29.trail.get("_inputs", {}).get("uso_comun_factor", "1")),
            "events": f29.events.select_related("actor")[:30],
        },
    )


@company_view()
def f29_box(request, membership: Membership, period: str, code: int):
    """One box's trail: how it is made, and the documents behind it."""
    periodo = _period(period)
    f29 = selectors.f29_get(company=membership.company, periodo=periodo)
    box = f29.trail.get(str(code))
    if box is None:
        raise Http404("Casilla desconocida.")
    parts = []
    for part in box["parts"]:
        docs = selectors.box_documents(company=membership.company, periodo=periodo, part=part)
        page = Paginator(docs, PAGE_SIZE).get_page(request.GET.get(f"p{len(parts)}"))
        parts.append(
            {
                **part,
                "field_label": calc.field_label(part["field"]),
                "page": page,
                "index": len(parts),
            }
        )
    return render(
        request,
        "f29/box.html",
        {
            "f29": f29,
            "period": period,
            "label": period_label(periodo),
            "box": box,
            "value": f29.boxes.get(str(code), 0),
            "parts": parts,
        },
    )


@require_POST
@company_view(Perm.FILE_TAX)
def f29_transition(request, membership: Membership, period: str, action: str):
    f29 = selectors.f29_get(company=membership.company, periodo=_period(period))
    try:
        if action == "revisar":
            services.f29_review(f29=f29, actor=request.user)
            messages.success(request, "F29 marcado como revisado.")
        elif action == "presentar":
            services.f29_file(
                f29=f29, actor=request.user, folio_sii=request.POST.get("folio_sii", "")
            )
            messages.success(request, "F29 presentado: el período queda cerrado.")
        elif action == "reabrir":
            services.f29_reopen(f29=f29, actor=request.user, reason=request.POST.get("reason", ""))
            messages.success(request, "Período reabierto.")
        else:
            raise Http404("Acción desconocida.")
    except DomainError as exc:
        messages.error(request, _error_text(exc))
    return redirect("f29:f29_detail", period=period)


# ---------------------------------------------------------------- RCV import


class RcvImportForm(forms.Form):
    kind = forms.ChoiceField(label="Registro", choices=RcvKind.choices)
    estado = forms.ChoiceField(
        label="Estado (compras)",
        required=False,
        choices=[
            ("", "Según el archivo"),
            ("registro", "Registro"),
            ("pendiente", "Pendiente"),
            ("no_incluir", "No incluir"),
            ("reclamado", "Reclamado"),
        ],
    )
    periodo = PeriodField(label="Período (opcional)", required=False)
    file = forms.FileField(label="Archivo CSV del SII")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD:
            raise forms.ValidationError("El archivo es demasiado grande (máximo 50 MB).")
        return upload


@company_view()
def rcv_import(request, membership: Membership):
    company = membership.company
    form = RcvImportForm(request.POST or None, request.FILES or None)
    batch = None
    if request.method == "POST":
        tenancy.require(membership, Perm.PREPARE_TAX)
        if form.is_valid():
            data = form.cleaned_data
            try:
                batch = services.rcv_import_create(
                    company=company,
                    actor=request.user,
                    upload=data["file"],
                    kind=data["kind"],
                    estado=data.get("estado") or None,
                    periodo=data.get("periodo"),
                )
            except DomainError as exc:
                form.add_error("file" if "file" in exc.fields else None, exc.message)
            else:
                messages.success(request, "Archivo recibido: se está importando.")
                return redirect("f29:rcv_import_detail", pk=batch.pk)
    history = selectors.rcv_import_list(company=company)[:20]
    return render(
        request,
        "f29/rcv_import.html",
        {"form": form, "batch": batch, "history": history},
        status=400 if form.errors else 200,
    )


@company_view()
def rcv_import_detail(request, membership: Membership, pk: int):
    """One import: its progress while it runs (the page refreshes itself through
    static/f29/rcv_progress.js, which reads the API's status), then its report."""
    batch = selectors.rcv_import_list(company=membership.company).filter(pk=pk).first()
    if batch is None:
        raise Http404("Importación no encontrada.")
    return render(
        request,
        "f29/rcv_import_detail.html",
        {
            "batch": batch,
            "status_url": f"/api/v1/companies/{membership.company.rut}/rcv-imports/{batch.pk}/",
        },
    )


# ---------------------------------------------------------------- reconciliation


def _filtered(result, category: str) -> list:
    if category in {c.value for c in Category}:
        return [line for line in result.lines if line.category == category]
    return result.lines


@company_view()
def reconciliation(request, membership: Membership, period: str):
    periodo = _period(period)
    kind = request.GET.get("kind") or RcvKind.COMPRAS
    if kind not in RcvKind.values:
        raise Http404("Registro desconocido.")
    category = request.GET.get("category", "")
    result = services.f29_reconcile(company=membership.company, periodo=periodo, kind=kind)
    lines = _filtered(result, category)
    if request.GET.get("format") == "csv":
        return reconciliation_csv(lines, kind=kind, period=period)
    page = Paginator(lines, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "line": line,
            "category": CATEGORY_LABELS[line.category],
            "differences": ", ".join(FIELD_LABELS.get(f, f) for f in line.differences),
            "books_estado": ESTADO_LABELS.get(line.books.estado, line.books.estado)
            if line.books
            else "—",
            "rcv_estado": ESTADO_LABELS.get(line.rcv.estado, line.rcv.estado) if line.rcv else "—",
        }
        for line in page
    ]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "f29/reconciliation.html",
        {
            "period": period,
            "label": period_label(periodo),
            "kind": kind,
            "category": category,
            "result": result,
            "summary": [(c, CATEGORY_LABELS[c], result.summary[c]) for c in Category],
            "page": page,
            "rows": rows,
            "query": query.urlencode(),
        },
    )


CSV_HEADER = [
    "categoria",
    "tipo",
    "folio",
    "rut",
    "razon_social",
    "fecha",
    "diferencias",
    "libros_exento",
    "libros_neto",
    "libros_iva",
    "libros_total",
    "libros_estado",
    "rcv_exento",
    "rcv_neto",
    "rcv_iva",
    "rcv_total",
    "rcv_estado",
]


def reconciliation_rows(lines) -> list[list]:
    rows = []
    for line in lines:
        doc = line.doc
        row = [
            line.category.value,
            doc.tipo,
            doc.folio,
            doc.rut,
            doc.razon_social,
            doc.fecha.isoformat(),
            " ".join(line.differences),
        ]
        for side in (line.books, line.rcv):
            if side is None:
                row += ["", "", "", "", ""]
            else:
                row += [side.monto_exento, side.monto_neto, side.monto_iva, side.monto_total]
                row.append(side.estado)
        rows.append(row)
    return rows


def reconciliation_csv(lines, *, kind: str, period: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="conciliacion-{kind}-{period}.csv"'
    writer = SafeWriter(response, delimiter=";")  # an RCV razón social may be "=HYPERLINK(…)"
    writer.writerow(CSV_HEADER)
    writer.writerows(reconciliation_rows(lines))
    return response
