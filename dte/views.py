"""Staff pages for issuing, for the company's signing material (CAFs, certificates), and for
the documents suppliers send (the "Recibidos" inbox: intake, SII confirmation, acceptance or
claim, receipt of goods, and the exchange mailbox)."""

import contextlib
import re
from collections import Counter
from datetime import date, datetime, time, timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from dte import guias, notes, printing, receiving, selectors, services
from dte.core import intake
from dte.core.schemas import XmlError, safe_parse
from dte.forms import (
    AcceptForm,
    CafUploadForm,
    CertificateUploadForm,
    ClaimForm,
    GoodsReceiptForm,
    GuiaInvoiceForm,
    MailboxForm,
    ReceivedFilterForm,
    ReceivedUploadForm,
)
from dte.models import (
    ExchangeMailbox,
    IntakeBatch,
    IntakeSource,
    ReceivedDte,
    ReceivedStatus,
    SiiConfirmation,
)
from dte.pdf.data import read_dte
from dte.pdf.render import RenderOptions, render_pdf
from dte.sii.errors import SiiError
from erp import selectors as erp_selectors
from erp.doctypes import PURCHASE_TYPES, CodRef
from erp.errors import DomainError, NotFound
from erp.forms import apply_domain_error
from erp.models import Membership
from erp.rut import InvalidRut, normalize_rut
from erp.tenancy import Perm, role_allows
from erp.web import company_view


@require_POST
@company_view(Perm.ISSUE_DOCUMENTS)
def issue(request, membership: Membership, pk: int):
    document = erp_selectors.sales_document_ref(company=membership.company, pk=pk)
    try:
        dte = services.dte_issue(document=document, actor=request.user)
    except DomainError as exc:
        messages.error(request, f"No se pudo emitir: {exc.message}")
    else:
        messages.success(request, f"Documento emitido con folio {dte.folio}.")
    return redirect("erp:document_detail", pk=pk)


@require_POST
@company_view(Perm.EDIT_DOCUMENTS)
def note_create(request, membership: Membership, pk: int):
    """A draft nota de crédito or débito from an issued document, with its reference filled."""
    document = erp_selectors.sales_document_get(company=membership.company, pk=pk)
    try:
        note = notes.note_draft(
            document=document,
            actor=request.user,
            tipo=request.POST.get("tipo_dte"),
            cod_ref=request.POST.get("cod_ref"),
            razon=request.POST.get("razon_ref", "")[:90],
        )
    except DomainError as exc:
        messages.error(request, f"No se pudo preparar la nota: {exc.message}")
        return redirect("erp:document_detail", pk=pk)
    if note.references.get().cod_ref == CodRef.CORRIGE_MONTOS:
        messages.info(
            request,
            "Borrador de la nota preparado con las líneas del documento: deje solo lo que "
            "corrige (cantidades devueltas o diferencias de precio) y guárdelo.",
        )
        return redirect("erp:document_edit", pk=note.pk)
    messages.success(request, f"Borrador de la {note.tipo.label.lower()} preparado.")
    return redirect("erp:document_detail", pk=note.pk)


@company_view(Perm.EDIT_DOCUMENTS)
def guias_invoice(request, membership: Membership):
    """Facturar guías: pick a customer and a month, see its sale guías, invoice the chosen."""
    company = membership.company
    form = GuiaInvoiceForm(request.GET or None, company=company)
    rows = []
    if form.is_valid():
        rows = guias.guias_of(
            company=company,
            partner=form.cleaned_data["partner"],
            periodo=form.cleaned_data["periodo"],
        )
    if request.method == "POST" and form.is_valid():
        ids = [int(v) for v in request.POST.getlist("guia") if v.isdigit()]
        try:
            factura = guias.invoice_guias(
                company=company,
                actor=request.user,
                partner=form.cleaned_data["partner"],
                guia_ids=ids,
                forma_pago=form.cleaned_data.get("forma_pago"),
            )
        except DomainError as exc:
            messages.error(request, f"No se pudo preparar la factura: {exc.message}")
        else:
            messages.success(
                request,
                f"Borrador de factura por {len(ids)} guía(s) preparado: revíselo y emítalo.",
            )
            return redirect("erp:document_detail", pk=factura.pk)
    return render(request, "dte/guias_invoice.html", {"form": form, "rows": rows})


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


def zip_download(data: bytes, filename: str) -> HttpResponse:
    """A ZIP built for the user (muestras impresas, answers to upload) as an attachment."""
    response = HttpResponse(bytes(data), content_type="application/zip")
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


# --- Received documents (suppliers' DTEs) ---------------------------------------------------

RECEIVED_PAGE_SIZE = 25
CHECK_LABELS = {
    "xml": "XML legible",
    "schema": "Esquema (XSD)",
    "signature": "Firma",
    "ted": "Timbre (TED)",
    "caf": "CAF",
    "totals": "Totales",
}
RCV_ACTION_LABELS = {
    receiving.ACCEPT: "Acepta contenido del documento",
    receiving.GOODS_RECEIVED: "Otorga recibo de mercaderías o servicios",
    **receiving.CLAIM_ACTIONS,
}
OUTCOME_COUNTS = {
    "received": ("recibido", "recibidos"),
    "accepted": ("aceptado", "aceptados"),
    "claimed": ("reclamado", "reclamados"),
    "duplicate": ("ya recibido antes", "ya recibidos antes"),
    "refused": ("rechazado", "rechazados"),
}
OUTCOME_LABELS = {
    "received": "Recibido",
    "accepted": "Aceptado",
    "claimed": "Reclamado",
    "duplicate": "Ya recibido antes",
    "refused": "Rechazado en la recepción",
}
TIPO_LABELS = {
    **PURCHASE_TYPES,
    43: "Liquidación factura electrónica",
    52: "Guía de despacho electrónica",
    110: "Factura de exportación electrónica",
    111: "Nota de débito de exportación electrónica",
    112: "Nota de crédito de exportación electrónica",
}
ANSWER_KINDS = ("respuesta", "resultado", "recibo", "sobre")


def tipo_label(tipo: int) -> str:
    return TIPO_LABELS.get(tipo, f"Tipo {tipo}")


def received_rows(
    company,
    *,
    status: str | None = None,
    supplier: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
    days_left_lte: int | None = None,
    today: date | None = None,
) -> QuerySet[ReceivedDte]:
    """The company's received documents, newest first, filtered as the inbox and the API ask."""
    rows = (
        ReceivedDte.objects.filter(company=company)
        .select_related("company", "envelope")
        # A list needs no file: the stored XML stay in the database, their presence is enough.
        .defer(*_FILES)
        .annotate(
            has_respuesta=ExpressionWrapper(
                Q(envelope__response_xml__isnull=False), output_field=BooleanField()
            ),
            has_resultado=ExpressionWrapper(
                Q(result_xml__isnull=False), output_field=BooleanField()
            ),
            has_recibo=ExpressionWrapper(Q(receipt_xml__isnull=False), output_field=BooleanField()),
        )
    )
    if status:
        rows = rows.filter(status=status)
    supplier = (supplier or "").strip()
    if supplier:
        match = Q(razon_social__icontains=supplier)
        compact = supplier.replace(".", "").replace(" ", "")
        if compact:
            match |= Q(rut_emisor__icontains=compact)
        with contextlib.suppress(InvalidRut):
            match |= Q(rut_emisor=normalize_rut(supplier))
        rows = rows.filter(match)
    if date_from:
        rows = rows.filter(fecha_emision__gte=date_from)
    if date_to:
        rows = rows.filter(fecha_emision__lte=date_to)
    if days_left_lte is not None:
        rows = deadline_within(rows, days_left_lte, today=today)
    return rows.order_by("-received_at", "-id")


def deadline_within(rows, days: int, *, today: date | None = None):
    """Documents still open whose claim deadline falls `days` calendar days from today or
    sooner (the overdue ones too): receiving.days_left(row) <= days."""
    last_day = (today or timezone.localdate()) + timedelta(days=days + 1)
    limit = timezone.make_aware(datetime.combine(last_day, time.min))
    return rows.filter(
        status=ReceivedStatus.RECEIVED, claim_deadline__isnull=False, claim_deadline__lt=limit
    )


_FILES = ("xml", "result_xml", "receipt_xml", "envelope__xml", "envelope__response_xml")


def answer_kinds(row: ReceivedDte) -> list[str]:
    """The answers and files stored for the document (ANSWER_KINDS), from a list's annotations
    when it has them, else from the row itself."""
    if hasattr(row, "has_respuesta"):
        present = {
            "respuesta": row.has_respuesta,
            "resultado": row.has_resultado,
            "recibo": row.has_recibo,
            "sobre": True,
        }
        return [kind for kind in ANSWER_KINDS if present[kind]]
    return [kind for kind in ANSWER_KINDS if received_answer_file(row, kind) is not None]


def received_get(company, pk) -> ReceivedDte:
    try:
        return (
            ReceivedDte.objects.filter(company=company)
            .select_related("company", "envelope", "purchase")
            .get(pk=int(pk))
        )
    except (ValueError, TypeError, ReceivedDte.DoesNotExist) as exc:
        raise NotFound("Documento recibido no encontrado.") from exc


def claim_window(row: ReceivedDte, now: datetime | None = None) -> dict:
    """What the inbox shows of the claim deadline: days left, and whether to warn."""
    days = receiving.days_left(row, now) if row.status == ReceivedStatus.RECEIVED else None
    return {
        "days": days,
        "overdue": days is not None and days < 0,
        "warn": days is not None and 0 <= days <= receiving.WARN_DAYS,
    }


def _iso_date(text) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except (TypeError, ValueError):
        return None


def _safe_name(name: str, default: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name or "").strip("._")
    return cleaned[-120:] or default


def _caratula_resolution(envelope) -> tuple[date | None, int]:
    """The supplier's SII resolution, as its envelope's carátula states it (a lone DTE has
    none): the printed stamp's caption."""
    try:
        root = safe_parse(intake.parseable(bytes(envelope.xml)))
        fecha = root.findtext(".//{*}Caratula/{*}FchResol") or ""
        numero = root.findtext(".//{*}Caratula/{*}NroResol") or "0"
        return (date.fromisoformat(fecha.strip()) if fecha else None), int(numero.strip() or 0)
    except (XmlError, ValueError):
        return None, 0


def received_pdf_bytes(row: ReceivedDte) -> bytes:
    """The received document printed as the supplier would print it, from the stored signed
    XML, with its PDF417 stamp; DomainError when the XML cannot be printed."""
    resolution_date, resolution_number = _caratula_resolution(row.envelope)
    try:
        return render_pdf(
            read_dte(bytes(row.xml)),
            RenderOptions(
                format="letter",
                resolution_date=resolution_date,
                resolution_number=resolution_number,
            ),
        )
    except (XmlError, ValueError, KeyError, AttributeError) as exc:
        message = f"No se pudo generar el PDF de este documento: {exc}"
        raise DomainError("not_printable", message) from exc


def received_answer_file(row: ReceivedDte, kind: str) -> tuple[bytes, str] | None:
    """The stored answer (or original file) `kind`, with its file name; None when absent."""
    rut = row.company.rut
    if kind == "respuesta" and row.envelope.response_xml:
        return bytes(row.envelope.response_xml), row.envelope.response_filename
    if kind == "resultado" and row.result_xml:
        return bytes(row.result_xml), f"RespuestaDTE--{rut}--{row.tipo_dte}-{row.folio}.xml"
    if kind == "recibo" and row.receipt_xml:
        return bytes(row.receipt_xml), f"EnvioRecibos--{rut}--{row.tipo_dte}-{row.folio}.xml"
    if kind == "sobre" and row.envelope.xml:
        name = _safe_name(row.envelope.name, f"envio-{row.envelope_id}.xml")
        return bytes(row.envelope.xml), name if name.lower().endswith(".xml") else f"{name}.xml"
    return None


def domain_message(exc: DomainError) -> str:
    """The refusal in words, with its field messages when they say more."""
    details = [m for found in exc.fields.values() for m in found if m != exc.message]
    return " ".join([exc.message, *dict.fromkeys(details)]) if details else exc.message


def _sii_trouble(exc: SiiError) -> str:
    return f"No se pudo consultar al SII en este momento ({exc.message}); intente más tarde."


@company_view()
def received_list(request, membership: Membership):
    company = membership.company
    filters = ReceivedFilterForm(request.GET or None)
    criteria = filters.cleaned_data if filters.is_valid() else {}
    rows = received_rows(
        company,
        status=criteria.get("estado") or None,
        supplier=criteria.get("proveedor") or "",
        date_from=criteria.get("desde"),
        date_to=criteria.get("hasta"),
        days_left_lte=criteria.get("vence"),
    )
    page = Paginator(rows, RECEIVED_PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    for row in page:
        row.tipo_label = tipo_label(row.tipo_dte)
        row.window = claim_window(row, now)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dte/received_list.html",
        {
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
            "upload_form": ReceivedUploadForm(),
            "can_receive": role_allows(membership.role, Perm.RECEIVE_DOCUMENTS),
            "warn_days": receiving.WARN_DAYS,
        },
    )


@company_view(Perm.RECEIVE_DOCUMENTS)
def received_upload(request, membership: Membership):
    """Files a supplier sent, taken in as if they had come by mail; each document's outcome is
    shown at once (the SII is asked about the new ones in the background)."""
    posted = request.method == "POST"
    form = ReceivedUploadForm(request.POST if posted else None, request.FILES if posted else None)
    result = None
    if posted and form.is_valid():
        intake_result = receiving.intake_start(
            company=membership.company,
            uploads=form.cleaned_data["files"],
            source=IntakeSource.UPLOAD,
            actor=request.user,
        )
        if isinstance(intake_result, IntakeBatch):
            messages.info(
                request,
                f"Se están recibiendo {intake_result.files_total} archivos; "
                "puede seguir trabajando mientras tanto.",
            )
            return redirect("dte:received_batch", pk=intake_result.pk)
        result = intake_result.to_dict()
        result["documents"] = shown_outcomes(result["documents"])
        counts = Counter(str(d["status"]) for d in result["documents"])
        summary = ", ".join(
            f"{counts[key]} {one if counts[key] == 1 else many}"
            for key, (one, many) in OUTCOME_COUNTS.items()
            if counts[key]
        )
        if intake_result.any_refused:
            messages.warning(
                request, f"Recepción con observaciones: {summary or 'sin documentos'}."
            )
        else:
            messages.success(request, f"Recepción: {summary or 'sin documentos'}.")
    return render(
        request,
        "dte/received_upload.html",
        {"form": form, "result": result},
        status=400 if form.errors else 200,
    )


def shown_outcomes(documents: list[dict]) -> list[dict]:
    """Intake outcomes (DocumentOutcome.to_dict()) as the pages show them, in Spanish."""
    shown = []
    for document in documents:
        row = dict(document)
        row["status_label"] = OUTCOME_LABELS.get(str(row["status"]), str(row["status"]))
        row["tipo_label"] = tipo_label(row["tipo_dte"] or 0)
        if row.get("fecha_emision"):
            row["fecha_emision"] = date.fromisoformat(row["fecha_emision"])
        shown.append(row)
    return shown


@company_view(Perm.VIEW)
def received_batch(request, membership: Membership, pk: int):
    """A large upload while a task takes it in (the page follows it through the API, with
    static/f29/rcv_progress.js), then each document's outcome."""
    batch = IntakeBatch.objects.filter(company=membership.company, pk=pk).first()
    if batch is None:
        raise Http404("Carga no encontrada.")
    outcomes = shown_outcomes(batch.outcomes)
    return render(
        request,
        "dte/received_batch.html",
        {
            "batch": batch,
            "outcomes": outcomes,
            "status_url": (
                f"/api/v1/companies/{membership.company.rut}/received-dte-batches/{batch.pk}/"
            ),
        },
    )


def _redirect_to_list(request):
    url = reverse("dte:received_list")
    query = QueryDict(request.POST.get("query", ""), mutable=True)
    query.pop("page", None)
    return redirect(f"{url}?{query.urlencode()}" if query else url)


def _label(row: ReceivedDte) -> str:
    return f"{tipo_label(row.tipo_dte)} N° {row.folio} de {row.razon_social or row.rut_emisor}"


@require_POST
@company_view(Perm.RECEIVE_DOCUMENTS)
def received_bulk_accept(request, membership: Membership):
    """Accept each selected document; one's refusal never stops the others."""
    ids = request.POST.getlist("ids")
    if not ids:
        messages.error(request, "Seleccione al menos un documento.")
        return _redirect_to_list(request)
    accepted = 0
    for pk in dict.fromkeys(ids):
        try:
            row = received_get(membership.company, pk)
        except NotFound:
            messages.error(request, f"Documento #{pk}: no encontrado.")
            continue
        try:
            receiving.accept(received=row, actor=request.user)
        except DomainError as exc:
            messages.error(request, f"{_label(row)}: {domain_message(exc)}")
        except SiiError as exc:
            messages.error(request, f"{_label(row)}: {_sii_trouble(exc)}")
        else:
            accepted += 1
    if accepted:
        plural = "s" if accepted != 1 else ""
        messages.success(request, f"{accepted} documento{plural} aceptado{plural}.")
    return _redirect_to_list(request)


@company_view()
def received_detail(request, membership: Membership, pk: int):
    row = received_get(membership.company, pk)
    checks = [
        {
            "name": check.get("name", ""),
            "label": CHECK_LABELS.get(check.get("name", ""), check.get("name", "")),
            "ok": bool(check.get("ok")),
            "summary": (intake.CHECK_PASSED if check.get("ok") else intake.CHECK_REASONS).get(
                check.get("name", ""), ""
            ),
            "detail": check.get("detail", ""),
        }
        for check in (row.checks or [])
    ]
    answers = [
        (kind, label)
        for kind, label in (
            ("respuesta", "Acuse de recibo del envío (RespuestaDTE)"),
            ("resultado", "Respuesta comercial (ResultadoDTE)"),
            ("recibo", "Recibo de mercaderías (EnvioRecibos)"),
            ("sobre", "Archivo original del proveedor"),
        )
        if received_answer_file(row, kind) is not None
    ]
    default_period = timezone.localdate(row.received_at).replace(day=1)
    is_open = row.status == ReceivedStatus.RECEIVED
    return render(
        request,
        "dte/received_detail.html",
        {
            "row": row,
            "tipo_label": tipo_label(row.tipo_dte),
            "rcv_action_label": RCV_ACTION_LABELS.get(row.rcv_action, ""),
            "window": claim_window(row),
            "checks": checks,
            "signed_form": intake.SIGNED_FORMS.get(row.signed_form, ""),
            "events": row.events.select_related("actor"),
            "answers": answers,
            "lines": (row.facts or {}).get("lines", []),
            "references": [
                {**ref, "fecha": _iso_date(ref.get("fecha"))}
                for ref in (row.facts or {}).get("references", [])
            ],
            "can_receive": role_allows(membership.role, Perm.RECEIVE_DOCUMENTS),
            "can_decide": is_open,
            "can_claim": is_open,
            "can_acknowledge": row.status in (ReceivedStatus.RECEIVED, ReceivedStatus.ACCEPTED)
            and not row.goods_received_at,
            "can_check_sii": row.status != ReceivedStatus.REFUSED,
            "confirmed": row.sii_confirmation == SiiConfirmation.DOK,
            "accept_form": AcceptForm(initial={"periodo": default_period}),
            "claim_form": ClaimForm(),
            "goods_form": GoodsReceiptForm(),
        },
    )


def _decide(request, membership: Membership, pk: int, act, done: str):
    row = received_get(membership.company, pk)
    try:
        act(row)
    except DomainError as exc:
        messages.error(request, domain_message(exc))
    except SiiError as exc:
        messages.error(request, _sii_trouble(exc))
    else:
        messages.success(request, done)
    return redirect("dte:received_detail", pk=row.pk)


def _form_error(request, form, pk: int):
    problems = "; ".join(str(e) for errors in form.errors.values() for e in errors)
    messages.error(request, f"Revise los datos: {problems}")
    return redirect("dte:received_detail", pk=pk)


@require_POST
@company_view(Perm.RECEIVE_DOCUMENTS)
def received_accept(request, membership: Membership, pk: int):
    received_get(membership.company, pk)  # a foreign id is a 404 before the form speaks
    form = AcceptForm(request.POST)
    if not form.is_valid():
        return _form_error(request, form, pk)
    discrepancies = form.cleaned_data["discrepancies"].strip()
    if request.POST.get("with_discrepancies") and not discrepancies:
        messages.error(request, "Indique los reparos para aceptar con reparos.")
        return redirect("dte:received_detail", pk=pk)
    periodo = form.cleaned_data["periodo"]

    def act(row):
        receiving.accept(
            received=row, actor=request.user, discrepancies=discrepancies, periodo=periodo
        )

    done = "Documento aceptado con reparos." if discrepancies else "Documento aceptado."
    return _decide(request, membership, pk, act, done)


@require_POST
@company_view(Perm.RECEIVE_DOCUMENTS)
def received_claim(request, membership: Membership, pk: int):
    received_get(membership.company, pk)
    form = ClaimForm(request.POST)
    if not form.is_valid():
        return _form_error(request, form, pk)
    return _decide(
        request,
        membership,
        pk,
        lambda row: receiving.claim(
            received=row,
            actor=request.user,
            action=form.cleaned_data["action"],
            reason=form.cleaned_data["reason"],
        ),
        "Reclamo registrado.",
    )


@require_POST
@company_view(Perm.RECEIVE_DOCUMENTS)
def received_goods(request, membership: Membership, pk: int):
    received_get(membership.company, pk)
    form = GoodsReceiptForm(request.POST)
    if not form.is_valid():
        return _form_error(request, form, pk)
    return _decide(
        request,
        membership,
        pk,
        lambda row: receiving.acknowledge_goods(
            received=row, actor=request.user, recinto=form.cleaned_data["recinto"]
        ),
        "Recibo de mercaderías otorgado.",
    )


@require_POST
@company_view(Perm.RECEIVE_DOCUMENTS)
def received_check_sii(request, membership: Membership, pk: int):
    row = received_get(membership.company, pk)
    try:
        state = receiving.confirm_with_sii(row.pk)
    except DomainError as exc:
        messages.error(request, domain_message(exc))
    except SiiError as exc:
        messages.error(request, _sii_trouble(exc))
    else:
        label = SiiConfirmation(state).label if state in SiiConfirmation.values else state
        messages.info(request, f"Respuesta del SII: {label}.")
    return redirect("dte:received_detail", pk=row.pk)


@company_view()
def received_pdf(request, membership: Membership, pk: int):
    row = received_get(membership.company, pk)
    try:
        pdf = received_pdf_bytes(row)
    except DomainError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
    return _pdf_response(pdf, row.filename.replace(".xml", ".pdf"))


@company_view()
def received_xml(request, membership: Membership, pk: int):
    row = received_get(membership.company, pk)
    return xml_download(row.xml, row.filename)


@company_view()
def received_answer(request, membership: Membership, pk: int, kind: str):
    row = received_get(membership.company, pk)
    found = received_answer_file(row, kind) if kind in ANSWER_KINDS else None
    if found is None:
        raise Http404("No hay tal archivo para este documento.")
    data, filename = found
    return xml_download(data, filename)


@company_view(Perm.MANAGE_CREDENTIALS)
def received_mailbox(request, membership: Membership):
    """The exchange mailbox (admins): where suppliers send their DTEs, read every few minutes."""
    company = membership.company
    mailbox = ExchangeMailbox.objects.filter(company=company).first()
    form = MailboxForm(request.POST or None, instance=mailbox)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if k != "password"}
        try:
            receiving.mailbox_save(
                company=company,
                actor=request.user,
                data=data,
                password=form.cleaned_data.get("password") or None,
            )
        except DomainError as exc:
            apply_domain_error(exc, form)
        else:
            messages.success(request, "Casilla de intercambio guardada.")
            return redirect("dte:received_mailbox")
    return render(
        request,
        "dte/received_mailbox.html",
        {"form": form, "mailbox": mailbox},
        status=400 if form.errors else 200,
    )
