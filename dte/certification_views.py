"""The certification page (issue 17; DOMAIN.md §16): each stage of the SII's certification,
its state, and what to do next, in plain Spanish. Thin over dte.certification."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dte import certification, certification_exchange
from dte.forms import CertificationUploadForm, ExchangeUploadForm
from dte.models import CertificationRun, CertificationStatus
from dte.views import xml_download, zip_download
from erp.errors import DomainError
from erp.forms import apply_domain_error
from erp.models import Membership, SiiEnvironment
from erp.tenancy import Perm, role_allows
from erp.web import company_view


def _run(company, pk: int | None) -> CertificationRun | None:
    runs = CertificationRun.objects.filter(company=company).select_related("actor")
    if pk is None:
        return runs.first()
    run = runs.filter(pk=pk).first()
    if run is None:
        raise Http404("Set de pruebas no encontrado.")
    return run


def _sets(run: CertificationRun | None) -> list[dict]:
    if run is None:
        return []
    rows = run.sets.select_related("envelope").prefetch_related("cases__document")
    shown = []
    for row in rows:
        state = certification.set_state(row)
        shown.append(
            {
                "row": row,
                "state": state,
                "state_label": certification.SET_STATES[state],
                "cases": list(row.cases.all()),
            }
        )
    return shown


def _next_step(company, run: CertificationRun | None, sets: list[dict]) -> str:
    if company.sii_environment == SiiEnvironment.PRODUCTION:
        return "La empresa ya emite en producción: la certificación quedó atrás."
    if run is None:
        return (
            "Descargue el set de pruebas desde el sitio del SII (Sistema de Facturación de "
            "Mercado, «Set de pruebas») y súbalo aquí. Antes cargue el certificado digital y "
            "los CAF de certificación de cada tipo de documento del set."
        )
    if run.status == CertificationStatus.READ:
        if run.problems:
            return (
                "Hay casos que no se pudieron leer o preparar (abajo). Corrija el archivo o "
                "avísenos, y súbalo de nuevo."
            )
        return "Revise lo que se leyó del set y pulse «Emitir y enviar todo»."
    if not run.finished:
        return "Se están emitiendo los documentos del set: esta página se actualiza sola."
    if run.status == CertificationStatus.FAILED:
        return (
            "Algunos sets no se pudieron emitir (el motivo está en cada caso). Corrija lo "
            "indicado (un CAF que falta, datos de la empresa) y suba el set otra vez."
        )
    states = {s["state"] for s in sets}
    if states & {"rejected", "attention"}:
        return (
            "El SII rechazó o no pudo recibir algún set: revise su sobre, corrija y súbalo de "
            "nuevo con un set de pruebas nuevo."
        )
    if states <= {"accepted", "objections"}:
        return (
            "Todo enviado y aceptado por el SII. En el sitio del SII, declare el avance del set "
            "de pruebas con los números de atención y los track id de abajo; luego siguen los "
            "libros, la simulación, el intercambio y las muestras impresas."
        )
    return "Todo enviado: falta la respuesta del SII a algunos sobres; esta página la sigue."


def _libros_state(latest: list) -> tuple[str, str]:
    statuses = {libro.status for libro in latest}
    if not statuses:
        return "todo", "Por hacer"
    if statuses & {"rejected", "needs_attention"}:
        return "rejected", "Con rechazos"
    if statuses == {"accepted"}:
        return "accepted", "Aceptados por el SII"
    if statuses == {"queued"}:
        return "queued", "En cola para el SII"
    return "sent", "Enviados, esperando al SII"


@company_view(Perm.VIEW)
def certification_page(request, membership: Membership, pk: int | None = None):
    company = membership.company
    can_manage = role_allows(membership.role, Perm.MANAGE_CREDENTIALS)
    form = CertificationUploadForm()
    if request.method == "POST":
        if not can_manage:
            return render(request, "403.html", status=403)
        form = CertificationUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                run = certification.certification_read(
                    company=company,
                    actor=request.user,
                    data=certification.read_upload(upload),
                    filename=upload.name,
                    exchange_rates=form.rates(),
                )
            except DomainError as exc:
                apply_domain_error(exc, form)
            else:
                messages.success(request, f"Set de pruebas leído: {run.cases_total} casos.")
                return redirect("dte:certification_run", pk=run.pk)
    run = _run(company, pk)
    sets = _sets(run)
    exchange_envelope = certification_exchange.exchange_envelopes(company=company).first()
    exchange = (
        certification_exchange.exchange_outcome(company=company, envelope=exchange_envelope)
        if exchange_envelope is not None
        else None
    )
    libros = list(run.libros.select_related("company").order_by("id")) if run else []
    latest = {}
    for libro in libros:  # in the order they were built: the last of each kind tells the state
        latest[libro.kind] = libro
    libros_state, libros_label = _libros_state(list(latest.values()))
    return render(
        request,
        "dte/certification.html",
        {
            "form": form,
            "run": run,
            "sets": sets,
            "runs": CertificationRun.objects.filter(company=company)[:10],
            "can_manage": can_manage,
            "libros": libros,
            "exchange": exchange,
            "exchange_form": ExchangeUploadForm(),
            "simulation": list(
                run.simulation.select_related("partner", "dte").order_by("id") if run else []
            ),
            "simulation_state": certification.SET_STATES[certification.simulation_state(run)]
            if run
            else "",
            "libros_state": libros_state,
            "libros_label": libros_label,
            "libros_redo": not latest
            or any(b.status in ("rejected", "needs_attention") for b in latest.values()),
            "next_step": _next_step(company, run, sets),
            "status_url": (
                f"/api/v1/companies/{company.rut}/certification-runs/{run.pk}/" if run else ""
            ),
        },
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@company_view(Perm.MANAGE_CREDENTIALS)
def certification_start(request, membership: Membership, pk: int):
    run = _run(membership.company, pk)
    try:
        certification.certification_start(run=run, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Emitiendo el set de pruebas: siga el avance aquí.")
    return redirect("dte:certification_run", pk=pk)


@company_view(Perm.VIEW)
def certification_samples(request, membership: Membership, pk: int):
    run = _run(membership.company, pk)
    if run is None or not run.samples:
        raise Http404("Las muestras impresas aún no están listas.")
    return zip_download(run.samples, certification.samples_filename(run))


@company_view(Perm.VIEW)
def certification_libro_xml(request, membership: Membership, pk: int, libro: int):
    run = _run(membership.company, pk)
    row = run.libros.filter(pk=libro).first() if run else None
    if row is None:
        raise Http404("Libro no encontrado.")
    return xml_download(row.xml, row.filename)


@require_POST
@company_view(Perm.MANAGE_CREDENTIALS)
def certification_libros(request, membership: Membership, pk: int):
    run = _run(membership.company, pk)
    try:
        libros = certification.certification_libros(run=run, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{len(libros)} libros firmados y en cola para el SII.")
    return redirect("dte:certification_run", pk=pk)


@require_POST
@company_view(Perm.MANAGE_CREDENTIALS)
def certification_simulation_propose(request, membership: Membership, pk: int):
    run = _run(membership.company, pk)
    try:
        drafts = certification.simulation_propose(run=run, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            f"Simulación propuesta: {len(drafts)} borradores. Puede editarlos antes de emitir.",
        )
    return redirect("dte:certification_run", pk=pk)


@require_POST
@company_view(Perm.MANAGE_CREDENTIALS)
def certification_simulation_start(request, membership: Membership, pk: int):
    run = _run(membership.company, pk)
    try:
        certification.simulation_start(run=run, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Emitiendo la simulación: siga su estado aquí.")
    return redirect("dte:certification_run", pk=pk)


@require_POST
@company_view(Perm.MANAGE_CREDENTIALS)
def certification_exchange_upload(request, membership: Membership):
    """The SII's test envelope taken in and answered (RespuestaDTE, ResultadoDTE,
    EnvioRecibos): the answers are then downloaded as a ZIP to upload to the SII's site."""
    form = ExchangeUploadForm(request.POST, request.FILES)
    run = _run(membership.company, None)
    back = redirect("dte:certification_run", pk=run.pk) if run else redirect("dte:certification")
    if not form.is_valid():
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
        return back
    try:
        outcome = certification_exchange.exchange_take_in(
            company=membership.company,
            actor=request.user,
            data=form.cleaned_data["file"],
            filename=request.FILES["file"].name,
            recinto=form.cleaned_data["recinto"] or certification_exchange.DEFAULT_RECINTO,
        )
    except DomainError as exc:
        messages.error(request, exc.one_line())
        return back
    if outcome.complete:
        messages.success(request, "Sobre de intercambio recibido y respondido.")
    else:
        messages.warning(request, "Sobre recibido, con observaciones: revíselas abajo.")
    return back


@company_view(Perm.VIEW)
def certification_exchange_zip(request, membership: Membership, envelope: int):
    company = membership.company
    row = certification_exchange.exchange_envelopes(company=company).filter(pk=envelope).first()
    if row is None:
        raise Http404("Sobre de intercambio no encontrado.")
    try:
        data = certification_exchange.exchange_answers_zip(company=company, envelope=row)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("dte:certification")
    return zip_download(data, certification_exchange.exchange_zip_filename(company, row))
