"""The sales document list ("Documentos", /documentos/): search, filters with the SII's state,
sort by column, page size, export of the whole filtered list, and actions on the selected rows.

It lives in dte because it shows each document's DTE state and acts on DTEs (erp cannot import
dte). dte's URLs come before erp's in the root URLconf, so /documentos/ is served from here; the
name erp:document_list stays as an alias of this page (erp/urls.py).
"""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from dte import bulk, lists
from erp.errors import DomainError
from erp.forms import DATE_FORMATS, DATE_WIDGET, TIPO_CHOICES
from erp.models import DocumentState, Membership, Partner
from erp.tenancy import Perm, role_allows
from erp.web import company_view

# The query parameters the list understands; anything else is dropped from its links.
FILTER_FIELDS = ("q", "tipo_dte", "state", "sii_state", "date_from", "date_to", "partner")
LIST_PARAMS = (*FILTER_FIELDS, "sort", "per_page")
SORT_OPTIONS = (
    ("-fecha", "Fecha, recientes primero"),
    ("fecha", "Fecha, antiguos primero"),
    ("-folio", "Folio, mayor primero"),
    ("folio", "Folio, menor primero"),
    ("cliente", "Cliente, A a Z"),
    ("-cliente", "Cliente, Z a A"),
    ("-total", "Total, mayor primero"),
    ("total", "Total, menor primero"),
    ("estado", "Estado"),
    ("-estado", "Estado, al revés"),
)
COLUMNS = (
    ("folio", "Folio"),
    ("fecha", "Fecha"),
    ("cliente", "Cliente"),
    ("estado", "Estado"),
    ("total", "Total"),
)


class DocumentListForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=lists.SEARCH_MAX,
        label="Buscar",
        widget=forms.TextInput(
            attrs={"placeholder": "Folio, RUT o nombre", "type": "search", "autocomplete": "off"}
        ),
    )
    tipo_dte = forms.TypedChoiceField(
        choices=TIPO_CHOICES, coerce=int, empty_value=None, required=False, label="Tipo"
    )
    state = forms.ChoiceField(
        choices=[("", "Todos"), *DocumentState.choices], required=False, label="Estado"
    )
    sii_state = forms.ChoiceField(
        choices=[("", "Todos"), *lists.SII_STATE_CHOICES], required=False, label="Estado SII"
    )
    date_from = forms.DateField(
        required=False, label="Desde", widget=DATE_WIDGET, input_formats=DATE_FORMATS
    )
    date_to = forms.DateField(
        required=False, label="Hasta", widget=DATE_WIDGET, input_formats=DATE_FORMATS
    )
    partner = forms.ModelChoiceField(
        queryset=Partner.objects.none(), required=False, label="Cliente"
    )

    def __init__(self, *args, company, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["partner"].queryset = Partner.objects.filter(company=company)
        self.fields["partner"].widget.attrs["data-searchable"] = "clientes"

    def criteria(self) -> lists.Criteria:
        """The valid filters; a field with bad input is left out (and shown with its error)."""
        data = {}
        if self.is_bound:
            self.is_valid()  # cleaned_data keeps the fields that are valid
            data = self.cleaned_data
        partner = data.get("partner")
        return lists.Criteria(
            q=data.get("q") or "",
            tipo_dte=data.get("tipo_dte"),
            state=data.get("state") or None,
            sii_state=data.get("sii_state") or None,
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            partner_id=partner.pk if partner else None,
        )


def _query(params: QueryDict, **changes) -> str:
    """The list's own parameters from `params`, with `changes` (None drops one), urlencoded."""
    query = QueryDict(mutable=True)
    for name in LIST_PARAMS:
        value = params.get(name)
        if value:
            query[name] = value
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return query.urlencode()


def _columns(params: QueryDict, sort: str) -> dict[str, dict]:
    """Each sortable column's link (ascending first, then the reverse) and its aria-sort."""
    columns = {}
    for key, title in COLUMNS:
        current = sort.removeprefix("-") == key
        descending = sort.startswith("-")
        target = f"-{key}" if current and not descending else key
        columns[key] = {
            "title": title,
            "href": "?" + _query(params, sort=target, page=None),
            "aria": ("descending" if descending else "ascending") if current else "none",
            "arrow": ("▼" if descending else "▲") if current else "",
        }
    return columns


def _listing(request, membership: Membership):
    form = DocumentListForm(request.GET or None, company=membership.company)
    sort = lists.sort_key(request.GET.get("sort"))
    qs = lists.sales_documents(company=membership.company, criteria=form.criteria(), sort=sort)
    return form, sort, qs


@company_view()
def document_list(request, membership: Membership):
    form, sort, qs = _listing(request, membership)
    per_page = lists.page_size(request.GET.get("per_page"))
    page = Paginator(lists.page_rows(qs), per_page).get_page(request.GET.get("page"))
    params = request.GET
    role = membership.role
    return render(
        request,
        "erp/document_list.html",
        {
            "page": page,
            "filters": form,
            "search": form["q"],
            "filter_fields": [form[name] for name in FILTER_FIELDS if name != "q"],
            "sort": sort,
            "per_page": per_page,
            "page_sizes": lists.PAGE_SIZES,
            "columns": _columns(params, sort),
            # The pager's links keep everything but the page.
            "query": _query(params),
            "return_query": _query(params, page=params.get("page") or None),
            "sort_options": SORT_OPTIONS,
            # The sort and page-size form resends the filters as they are (back to page 1).
            "keep_filters": [(name, params[name]) for name in FILTER_FIELDS if params.get(name)],
            "can_send": role_allows(role, Perm.ISSUE_DOCUMENTS),
            "max_selected": bulk.MAX_DOCUMENTS,
        },
    )


@company_view()
def document_export(request, membership: Membership, fmt: str):
    """The whole filtered and sorted list (not just the page), as CSV or XLSX."""
    if fmt not in ("csv", "xlsx"):
        raise Http404("Formato de exportación desconocido.")
    form, _sort, qs = _listing(request, membership)
    if form.is_bound and form.errors:
        problems = "; ".join(f"{form[n].label}: {' '.join(e)}" for n, e in form.errors.items())
        return HttpResponse(
            f"Revise los filtros antes de exportar: {problems}",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    stamp = timezone.localdate().strftime("%Y-%m-%d")
    name = f"documentos-{membership.company.rut}-{stamp}.{fmt}"
    rows = lists.export_rows(qs)
    if fmt == "csv":
        response = StreamingHttpResponse(
            lists.csv_chunks(rows), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    return FileResponse(
        lists.write_xlsx(rows),
        as_attachment=True,
        filename=name,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


def _back(request):
    """To the list as the user left it (its filters, sort, page size and page)."""
    query = QueryDict(request.POST.get("query", ""))
    suffix = _query(query, page=query.get("page") or None)
    return redirect(reverse("dte:document_list") + (f"?{suffix}" if suffix else ""))


def _report(request, result: bulk.BulkResult, title: str, done_words: tuple[str, str]) -> None:
    text = f"{title}: {result.summary(done_words)}"
    if not result.done:
        messages.error(request, text)
    elif result.skipped:
        messages.warning(request, text)
    else:
        messages.success(request, text)


def _run(request, membership: Membership, action, title: str, done: tuple[str, str]):
    try:
        result = action(membership=membership, ids=request.POST.getlist("ids"), actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        _report(request, result, title, done)
    return _back(request)


@require_POST
@company_view(Perm.ISSUE_DOCUMENTS)
def bulk_send(request, membership: Membership):
    return _run(request, membership, bulk.send_again, "Envío al SII", ("enviado", "enviados"))


@require_POST
@company_view(Perm.ISSUE_DOCUMENTS)
def bulk_email(request, membership: Membership):
    return _run(request, membership, bulk.email, "Envío por correo", ("en curso", "en curso"))


@require_POST
@company_view()
def bulk_print(request, membership: Membership):
    try:
        result = bulk.print_merged(membership=membership, ids=request.POST.getlist("ids"))
    except DomainError as exc:
        messages.error(request, exc.message)
        return _back(request)
    if result.pdf is None:
        _report(request, result, "Impresión", ("documento en el PDF", "documentos en el PDF"))
        return _back(request)
    if result.skipped:  # shown on the list once the user is back to it
        _report(request, result, "Impresión", ("documento en el PDF", "documentos en el PDF"))
    stamp = timezone.localtime().strftime("%Y-%m-%d-%H%M")
    response = HttpResponse(result.pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="documentos-{stamp}.pdf"'
    return response
