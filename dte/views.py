"""Staff pages for issuing and for the company's signing material (CAFs, certificates)."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from dte import printing, selectors, services
from dte.forms import CafUploadForm, CertificateUploadForm
from dte.pdf.data import read_dte
from erp import selectors as erp_selectors
from erp.errors import DomainError
from erp.forms import apply_domain_error
from erp.models import Membership
from erp.tenancy import Perm, role_allows
from erp.web import company_view


@require_POST
@company_view(Perm.ISSUE_DOCUMENTS)
def issue(request, membership: Membership, pk: int):
    document = erp_selectors.sales_document_get(company=membership.company, pk=pk)
    try:
        dte = services.dte_issue(document=document, actor=request.user)
    except DomainError as exc:
        messages.error(request, f"No se pudo emitir: {exc.message}")
    else:
        messages.success(request, f"Documento emitido con folio {dte.folio}.")
    return redirect("erp:document_detail", pk=pk)


@require_POST
@company_view(Perm.ISSUE_DOCUMENTS)
def refresh(request, membership: Membership, pk: int):
    dte = selectors.dte_get(company=membership.company, pk=pk)
    if services.dte_refresh(dte=dte, actor=request.user):
        messages.info(request, "Consultando al SII; recargue la página en unos segundos.")
    else:
        messages.info(request, f"Estado: {dte.get_status_display()}.")
    return redirect("erp:document_detail", pk=dte.sales_document_id)


@require_POST
@company_view(Perm.MANAGE_CREDENTIALS)
def retry(request, membership: Membership, pk: int):
    dte = selectors.dte_get(company=membership.company, pk=pk)
    try:
        services.dte_retry(dte=dte, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Reintento en curso.")
    return redirect("erp:document_detail", pk=dte.sales_document_id)


@require_POST
@company_view(Perm.MANAGE_CREDENTIALS)
def reenvelope(request, membership: Membership, pk: int):
    """The documents of an envelope the SII refused unjudged go again, same folios."""
    dte = selectors.dte_get(company=membership.company, pk=pk)
    if dte.envelope is None:
        messages.error(request, "El documento no tiene sobre de envío.")
        return redirect("erp:document_detail", pk=dte.sales_document_id)
    try:
        new = services.envelope_reenvelope(envelope=dte.envelope, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        names = ", ".join(f"#{e.pk}" for e in new)
        messages.success(request, f"Reensobrado con los mismos folios en el sobre {names}.")
    return redirect("erp:document_detail", pk=dte.sales_document_id)


@require_POST
@company_view(Perm.EDIT_DOCUMENTS)
def reissue(request, membership: Membership, pk: int):
    dte = selectors.dte_get(company=membership.company, pk=pk)
    try:
        draft = services.dte_reissue_draft(dte=dte, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("erp:document_detail", pk=dte.sales_document_id)
    messages.success(request, "Se creó un borrador para corregir y emitir de nuevo.")
    return redirect("erp:document_edit", pk=draft.pk)


def xml_download(data: bytes, filename: str) -> HttpResponse:
    """Stored XML as an attachment, bytes untouched (they are what was signed)."""
    response = HttpResponse(bytes(data), content_type="application/xml; charset=ISO-8859-1")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@company_view()
def dte_xml(request, membership: Membership, pk: int):
    dte = selectors.dte_get(company=membership.company, pk=pk)
    return xml_download(dte.xml, dte.filename)


def _pdf_response(pdf: bytes, filename: str, *, inline: bool = True) -> HttpResponse:
    response = HttpResponse(pdf, content_type="application/pdf")
    disposition = "inline" if inline else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return response


@company_view()
def dte_pdf(request, membership: Membership, pk: int):
    dte = selectors.dte_get(company=membership.company, pk=pk)
    try:
        pdf = printing.dte_pdf(
            dte, format=request.GET.get("format") or None, cedible=request.GET.get("cedible") == "1"
        )
    except DomainError as exc:
        return HttpResponse(exc.message, status=400)
    return _pdf_response(pdf, dte.filename.replace(".xml", ".pdf"))


@require_POST
@company_view(Perm.ISSUE_DOCUMENTS)
def email(request, membership: Membership, pk: int):
    dte = selectors.dte_get(company=membership.company, pk=pk)
    try:
        address = printing.dte_email_queue(dte)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, f"Envío por correo a {address} en curso.")
    return redirect("erp:document_detail", pk=dte.sales_document_id)


def public(request, token: str):
    """The QR's page: anyone holding the printed document can check it. Read-only, no login,
    nothing but this document (the token is unguessable)."""
    dte = selectors.dte_by_token(token)
    if request.GET.get("descargar") == "xml":
        response = xml_download(dte.xml, dte.filename)
    elif request.GET.get("descargar") == "pdf":
        response = _pdf_response(printing.dte_pdf(dte), dte.filename.replace(".xml", ".pdf"))
    else:
        context = {"dte": dte, "data": read_dte(bytes(dte.xml))}
        response = render(request, "dte/public.html", context)
    # Whoever holds the link sees the document; no cache or search engine keeps it.
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@company_view()
def envelope_xml(request, membership: Membership, pk: int):
    envelope = selectors.envelope_get(company=membership.company, pk=pk)
    return xml_download(envelope.xml, f"{envelope.kind}-{membership.company.rut}-{pk}.xml")


@company_view()
def signing_material(request, membership: Membership):
    company = membership.company
    is_admin = role_allows(membership.role, Perm.MANAGE_CREDENTIALS)
    caf_form = CafUploadForm()
    cert_form = CertificateUploadForm()
    if request.method == "POST":
        if not is_admin:
            return HttpResponse(
                "Solo un administrador puede cargar CAF o certificados.", status=403
            )
        if "password" in request.POST:
            cert_form = CertificateUploadForm(request.POST, request.FILES)
            if cert_form.is_valid():
                try:
                    services.certificate_upload(
                        company=company,
                        actor=request.user,
                        data=cert_form.cleaned_data["file"],
                        password=cert_form.cleaned_data["password"],
                    )
                except DomainError as exc:
                    apply_domain_error(exc, cert_form)
                else:
                    messages.success(request, "Certificado cargado.")
                    return redirect("dte:signing_material")
        else:
            caf_form = CafUploadForm(request.POST, request.FILES)
            if caf_form.is_valid():
                try:
                    caf = services.caf_upload(
                        company=company, actor=request.user, data=caf_form.cleaned_data["file"]
                    )
                except DomainError as exc:
                    apply_domain_error(exc, caf_form)
                else:
                    messages.success(
                        request,
                        f"CAF cargado: tipo {caf.tipo_dte}, folios "
                        f"{caf.folio_desde}-{caf.folio_hasta}.",
                    )
                    return redirect("dte:signing_material")
    return render(
        request,
        "dte/signing_material.html",
        {
            "cafs": selectors.caf_list(company=company),
            "certificates": selectors.certificate_list(company=company),
            "remaining": selectors.folios_remaining(company=company, today=timezone.localdate()),
            "caf_form": caf_form,
            "cert_form": cert_form,
            "is_admin": is_admin,
        },
        status=400 if caf_form.errors or cert_form.errors else 200,
    )
