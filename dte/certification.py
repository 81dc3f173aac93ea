"""The SII's certification, inside the product (DOMAIN.md §16; issue 17).

    certification_read(company, actor, data, filename)  -> CertificationRun   (read and plan)
    certification_start(run, actor)                     -> CertificationRun   (queue the task)
    certification_issue(run_id)                         -> CertificationRun   (the task's work)

Reading parses the set de pruebas and plans its documents (dte.core.certification); nothing is
issued while the file has problems. Issuing turns each planned case into a draft and issues it
with the company's certification CAFs, case after case (a nota needs the folio of the case it
modifies), each in its own transaction; each set then goes in its own EnvioDTE, which the
outbox sends and follows to the SII's verdict like any other. A failure stops its set only:
a set the SII would receive half is not sent.
"""

import io
import logging
import random
import zipfile
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from dte import dispatch, errors, guias, libro_sending, mapping, printing, selectors, services
from dte.core.certification.plan import DEFAULT_RATES, PlannedDocument, Receiver, plan
from dte.core.certification.setfile import SetFile, SetFileError, SetKind, TestSet, parse
from dte.core.libro import (
    AnuladoGuia,
    CaratulaLibro,
    DetalleGuia,
    DetalleLibro,
    FacturaDeGuia,
    LibroError,
    TipoOperacion,
    build_libro_compra_venta,
    build_libro_guia,
)
from dte.keyring import load_certificate
from dte.models import (
    CertificationCase,
    CertificationLibro,
    CertificationRun,
    CertificationSet,
    CertificationStatus,
    Dte,
    Envelope,
    LibroKind,
)
from erp import services as erp_services
from erp import siicodes
from erp.doctypes import FOREIGN_RECEIVER_RUT, CodRef, IndTraslado, TipoDte, doc_type
from erp.errors import INVALID_INPUT, DomainError
from erp.models import Company, Partner, Product, SalesDocument

log = logging.getLogger(__name__)

MAX_SET_FILE = 2 * 1024 * 1024  # a set de pruebas is a few KiB of text
# The receiver of the set's national documents when the company names none: the SII itself
# (any valid taxpayer with its giro and address will do for the set de pruebas).
SII_RECEIVER = {
    "rut": "60803000-K",
    "razon_social": "Servicio de Impuestos Internos",
    "giro": "Administración pública",
    "direccion": "Teatinos 120",
    "comuna": "Santiago",
    "ciudad": "Santiago",
}


def _rates(given: Mapping[str, Any] | None) -> dict[str, Decimal]:
    rates = dict(DEFAULT_RATES)
    for name, value in (given or {}).items():
        try:
            currency = siicodes.currency(str(name).strip().upper())
        except KeyError:
            message = f"Moneda desconocida: «{name}»."
            raise DomainError(INVALID_INPUT, message, {"exchange_rates": message}) from None
        try:
            rate = Decimal(str(value).replace(",", "."))
        except InvalidOperation:
            rate = Decimal(0)
        if not rate.is_finite() or rate <= 0:
            message = f"El tipo de cambio de {currency.name} debe ser un número mayor que cero."
            raise DomainError(INVALID_INPUT, message, {"exchange_rates": message})
        rates[currency.name] = rate
    return rates


def read_upload(file) -> bytes:
    """An uploaded file's bytes, reading no more than a set de pruebas can be (plus one byte,
    so that read_set can tell the file was too large)."""
    return file.read(MAX_SET_FILE + 1)


def read_set(data: bytes) -> SetFile:
    if not data:
        raise DomainError(INVALID_INPUT, "El archivo está vacío.", {"set_file": "Vacío."})
    if len(data) > MAX_SET_FILE:
        message = "El archivo es demasiado grande para ser un set de pruebas (máximo 2 MB)."
        raise DomainError(INVALID_INPUT, message, {"set_file": message})
    try:
        return parse(data)
    except SetFileError as exc:
        raise DomainError(INVALID_INPUT, str(exc), {"set_file": str(exc)}) from exc


@transaction.atomic
def certification_read(
    *,
    company: Company,
    actor,
    data: bytes,
    filename: str,
    exchange_rates: Mapping[str, Any] | None = None,
) -> CertificationRun:
    """Read and plan a set de pruebas; store it with its sets and cases, issuing nothing."""
    rates = _rates(exchange_rates)
    setfile = read_set(data)
    planned = plan(setfile, exchange_rates=rates)
    run = CertificationRun.objects.create(
        company=company,
        filename=(filename or "set.txt")[:255],
        set_file=data,
        parsed=setfile.to_dict(),
        unreadable=[
            {"line": u.line, "text": u.text, "reason": u.reason} for u in setfile.unreadable
        ],
        problems=list(planned.problems),
        exchange_rates={k: format(v, "f") for k, v in rates.items()},
        cases_total=sum(len(s.documents) for s in planned.sets),
        actor=erp_services.user_or_none(actor),
    )
    for position, planned_set in enumerate(planned.sets, start=1):
        row = CertificationSet.objects.create(
            run=run,
            position=position,
            kind=planned_set.set.kind.value,
            name=planned_set.set.name[:120],
            title=planned_set.set.title[:200],
            atencion=planned_set.set.atencion[:20],
            problems=list(planned_set.problems),
        )
        CertificationCase.objects.bulk_create(
            CertificationCase(
                cset=row, caso=d.caso, tipo_dte=d.tipo, assumptions=list(d.assumptions)
            )
            for d in planned_set.documents
        )
    return run


def _plan_of(run: CertificationRun):
    rates = {k: Decimal(v) for k, v in (run.exchange_rates or {}).items()}
    return plan(parse(bytes(run.set_file)), exchange_rates=rates)


@transaction.atomic
def certification_start(*, run: CertificationRun, actor, queue: bool = True) -> CertificationRun:
    """Queue the issuing of a read set (a task: dte.certification_run); with `queue` False the
    caller (the command line) runs certification_issue itself."""
    run = CertificationRun.objects.select_for_update(of=("self",)).get(pk=run.pk)
    if run.status != CertificationStatus.READ:
        message = "Este set ya se emitió o se está emitiendo."
        raise DomainError(errors.NOT_ISSUABLE, message, {"status": message})
    if run.problems:
        message = "El set tiene casos que no se pudieron leer o planificar: corríjalos primero."
        raise DomainError(errors.NOT_ISSUABLE, message, {"problems": run.problems[:5]})
    if not run.cases_total:
        message = "El set no trae casos que emitir."
        raise DomainError(errors.NOT_ISSUABLE, message, {"set_file": message})
    run.status = CertificationStatus.QUEUED
    run.actor = erp_services.user_or_none(actor) or run.actor
    run.save(update_fields=["status", "actor"])
    if queue:
        dispatch.after_commit("dte.certification_run", run.pk)
    return run


# ---------------------------------------------------------------- issuing (the task)


def _national_receiver(company: Company, actor) -> Partner:
    found = Partner.objects.filter(company=company, rut=SII_RECEIVER["rut"]).first()
    if found is not None:
        return found
    return erp_services.partner_create(
        company=company, actor=actor, data={**SII_RECEIVER, "is_customer": True}
    )


def _foreign_receiver(company: Company, actor, country: str) -> Partner:
    found = (
        Partner.objects.filter(company=company, rut=FOREIGN_RECEIVER_RUT, nacionalidad=country)
        .order_by("id")
        .first()
    )
    if found is not None:
        return found
    name = siicodes.name_of("paises", country)
    return erp_services.partner_create(
        company=company,
        actor=actor,
        data={
            "rut": FOREIGN_RECEIVER_RUT,
            "razon_social": f"Cliente en {name.title()} (certificación)"[:100],
            "nacionalidad": country,
            "direccion": "Dirección del cliente en el extranjero",
            "ciudad": name.title()[:20],
            "is_customer": True,
        },
    )


def _receiver(company: Company, actor, document: PlannedDocument) -> int | None:
    if document.receiver == Receiver.ISSUER:
        return None
    if document.receiver == Receiver.FOREIGN:
        return _foreign_receiver(company, actor, document.country).pk
    return _national_receiver(company, actor).pk


def _payload(
    document: PlannedDocument, issued: Mapping[str, Dte], today: date, partner: int | None
) -> dict[str, Any]:
    references = []
    for ref in document.references:
        folio, fecha = ref.folio_ref, today
        if ref.ref_caso:
            target = issued[ref.ref_caso]
            folio, fecha = str(target.folio), target.fecha_emision
        references.append(
            {
                "tipo_doc_ref": ref.tipo_doc_ref,
                "folio_ref": folio,
                "fecha_ref": fecha,
                "cod_ref": ref.cod_ref,
                "razon_ref": ref.razon_ref,
            }
        )
    return {
        "tipo_dte": document.tipo,
        "fecha_emision": today,
        "partner": partner,
        **document.header,
        "lines": [dict(line) for line in document.lines],
        "references": references,
    }


def certification_issue(run_id: int) -> CertificationRun | None:
    """Issue every set of a queued run, case after case, and envelope each set."""
    with transaction.atomic():
        run = (
            CertificationRun.objects.select_for_update(of=("self",))
            .select_related("company", "actor")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.status not in (CertificationStatus.QUEUED,):
            return run
        run.status, run.started_at = CertificationStatus.RUNNING, timezone.now()
        run.save(update_fields=["status", "started_at"])
    company, actor = run.company, run.actor
    today = timezone.localdate()
    failures: list[str] = []
    try:
        planned = _plan_of(run)
        certificate = selectors.certificate_for_signing(company, actor, timezone.now())
        issued: dict[str, Dte] = {}
        rows = {s.position: s for s in run.sets.all()}
        for position, planned_set in enumerate(planned.sets, start=1):
            row = rows[position]
            dtes = []
            for document in planned_set.documents:
                case = row.cases.get(caso=document.caso)
                try:
                    partner = _receiver(company, actor, document)
                    draft = erp_services.sales_document_create(
                        company=company,
                        actor=actor,
                        data=_payload(document, issued, today, partner),
                    )
                    case.document = draft
                    dte = services.dte_issue(
                        document=draft, actor=actor, envelope=False, certificate=certificate
                    )
                except DomainError as exc:
                    case.error = exc.one_line()
                    case.save(update_fields=["document", "error"])
                    failures.append(f"{row.title}, caso {document.caso}: {case.error}")
                    break
                issued[document.caso] = dte
                dtes.append(dte)
                case.save(update_fields=["document"])
                CertificationRun.objects.filter(pk=run.pk).update(cases_done=len(issued))
            else:
                if dtes:
                    envelopes = services.envelope_create(dtes=dtes, actor=actor)
                    row.envelope = envelopes[0]
                    row.save(update_fields=["envelope"])
    except DomainError as exc:
        failures.append(exc.one_line())
    except Exception as exc:  # the task must record why it stopped
        log.exception("certification run %s failed", run_id)
        failures.append(f"Error inesperado ({type(exc).__name__}).")
    run.refresh_from_db()
    if not failures:
        try:
            run.samples = build_samples(run)
        except Exception as exc:  # the documents are issued: the samples can be built again
            log.exception("certification run %s: samples failed", run_id)
            failures.append(f"No se pudieron armar las muestras impresas ({type(exc).__name__}).")
    notes = []
    if not failures:  # every set went: the libros follow; a libro that fails is redone alone
        try:
            _libros(run, actor)
        except DomainError as exc:
            notes.append(f"Libros: {exc.one_line()}")
    run.status = CertificationStatus.FAILED if failures else CertificationStatus.ISSUED
    run.error = "\n".join(failures + notes)
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at", "samples"])
    return run


# ---------------------------------------------------------------- muestras impresas


def wants_cedible(dte: Dte) -> bool:
    """A cedible copy goes with the types that may be assigned (DTEFacturasType), and with a
    guía only when it is a sale: "en una operación que no constituye venta el ejemplar cedible
    no corresponde" (the set's instructions)."""
    if not doc_type(dte.tipo_dte).cedible:
        return False
    document = dte.sales_document
    if dte.tipo_dte == 52 and document is not None and document.ind_traslado:
        return IndTraslado(document.ind_traslado).is_sale
    return True


def build_samples(run: CertificationRun) -> bytes:
    """The muestras impresas: a ZIP with a folder per set and, for each case, the printed
    document (its PDF417 and QR) and its cedible copy where one applies."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for row in run.sets.all():
            for case in row.cases.select_related("document__dte", "document__company"):
                document = case.document
                dte = getattr(document, "dte", None) if document is not None else None
                if dte is None:
                    continue
                stem = f"{row.name}/{case.caso}--{dte.tipo_dte}--{dte.folio}"
                archive.writestr(f"{stem}.pdf", printing.render(dte, format="letter"))
                if wants_cedible(dte):
                    pdf = printing.render(dte, format="letter", cedible=True)
                    archive.writestr(f"{stem}--cedible.pdf", pdf)
    return buffer.getvalue()


def samples_filename(run: CertificationRun) -> str:
    return f"MuestrasImpresas--{run.company.rut}--{run.pk}.zip"


# ---------------------------------------------------------------- what a run produced


def run_summary(run: CertificationRun) -> dict[str, Any]:
    """Each set with its envelope and each case with its folio and totals, for the command's
    --json and the API: amounts in pesos, an export's in its currency as text."""
    sets = []
    for row in run.sets.select_related("envelope").prefetch_related("cases__document"):
        cases = []
        for case in row.cases.all():
            doc = case.document
            entry: dict[str, Any] = {"caso": case.caso, "tipo_dte": case.tipo_dte}
            if doc is None or doc.folio is None:
                entry |= {"folio": None, "error": case.error or None}
            elif doc.moneda:
                total = format(doc.monto_total_moneda, "f")
                entry |= {
                    "folio": doc.folio,
                    "mnt_neto": 0,
                    "mnt_exe": total,
                    "iva": 0,
                    "mnt_total": total,
                    "moneda": doc.moneda,
                }
            else:
                entry |= {
                    "folio": doc.folio,
                    "mnt_neto": doc.monto_neto,
                    "mnt_exe": doc.monto_exento,
                    "iva": doc.iva,
                    "mnt_total": doc.monto_total,
                }
            cases.append(entry)
        state = set_state(row)
        sets.append(
            {
                "name": row.name,
                "title": row.title,
                "atencion": row.atencion,
                "envelope": envelope_filename(run.company, row) if row.envelope_id else None,
                "state": state,
                "state_label": SET_STATES[state],
                "track_id": row.envelope.track_id if row.envelope_id else None,
                "cases": cases,
            }
        )
    libros = [
        {
            "kind": libro.kind,
            "periodo": libro.periodo,
            "file": libro.filename,
            "status": libro.status,
            "track_id": libro.track_id or None,
            "sii_estado": libro.sii_estado or None,
        }
        for libro in run.libros.select_related("company").order_by("id")
    ]
    return {"status": run.status, "sets": sets, "libros": libros}


def envelope_filename(company: Company, row: CertificationSet) -> str:
    """EnvioDTE--<rut>--<set>--<atención>.xml (EnvioBOLETA for the boleta set, which has no
    atención number)."""
    kind = row.envelope.kind if row.envelope_id and row.envelope else "EnvioDTE"
    atencion = f"--{row.atencion}" if row.atencion else ""
    return f"{kind}--{company.rut}--{row.name}{atencion}.xml"


# What a set's envelope says, in the words of the certification page.
SET_STATES = {
    "to_issue": "Por emitir",
    "failed": "No se pudo emitir",
    "queued": "En cola para el SII",
    "sent": "Enviado, esperando la respuesta del SII",
    "accepted": "Aceptado por el SII",
    "objections": "Aceptado con reparos",
    "rejected": "Rechazado por el SII",
    "attention": "Requiere atención (vea el sobre)",
}


def set_state(row: CertificationSet) -> str:
    """A set's state: one of SET_STATES, from its envelope and its documents' verdicts."""
    envelope = row.envelope
    if envelope is None:
        return "failed" if row.cases.exclude(error="").exists() else "to_issue"
    return envelope_state(envelope)


def envelope_state(envelope: Envelope) -> str:
    """An envelope's state in SET_STATES words, from its documents' verdicts once processed."""
    if envelope.status in ("queued", "uploading", "uncertain"):
        return "queued"
    if envelope.status == "sent":
        return "sent"
    if envelope.status in ("needs_attention", "superseded"):
        return "attention"
    verdicts = set(Dte.objects.filter(envelope=envelope).values_list("status", flat=True))
    if envelope.status == "rejected" or "rejected" in verdicts:
        return "rejected"
    if "accepted_with_objections" in verdicts:
        return "objections"
    return "accepted" if verdicts == {"accepted"} else "sent"


# ---------------------------------------------------------------- the libros


# The set's purchases name no supplier: "use valid RUTs for the suppliers" (CERTIFICATION.md).
SET_SUPPLIER = ("77001234-1", "Proveedor del set de pruebas")
FOLIO_NOTIFICACION = {LibroKind.VENTA: 1, LibroKind.COMPRA: 2, LibroKind.GUIAS: 1}


def _cases_of(run: CertificationRun, *kinds: str) -> list[CertificationCase]:
    return list(
        CertificationCase.objects.filter(cset__run=run, cset__kind__in=kinds)
        .select_related("document__partner", "document__dte", "cset")
        .order_by("cset__position", "id")
    )


def _sales_rows(run: CertificationRun) -> list[DetalleLibro]:
    """The set básico's documents (or the set factura exenta's), as the libro de ventas."""
    cases = _cases_of(run, SetKind.BASICO.value) or _cases_of(run, SetKind.FACTURA_EXENTA.value)
    rows = []
    for case in cases:
        doc = case.document
        if doc is None or doc.folio is None:
            continue
        partner = doc.partner
        annulled = next((r for r in doc.references.all() if r.cod_ref == CodRef.ANULA), None)
        rows.append(
            DetalleLibro(
                tipo_doc=doc.tipo_dte,
                folio=doc.folio,
                fecha=doc.fecha_emision,
                rut=partner.rut if partner else doc.company.rut,
                razon_social=(partner.razon_social if partner else doc.company.razon_social)[:50],
                monto_exento=doc.monto_exento,
                monto_neto=doc.monto_neto,
                iva=doc.iva,
                tipo_doc_ref=int(annulled.tipo_doc_ref)
                if annulled and annulled.tipo_doc_ref.isdigit()
                else None,
                folio_doc_ref=int(annulled.folio_ref)
                if annulled and annulled.folio_ref.isdigit()
                else None,
            )
        )
    return rows


def _purchase_rows(test_set: TestSet, fecha: date) -> list[DetalleLibro]:
    rut, name = SET_SUPPLIER
    return [
        DetalleLibro(
            tipo_doc=row.tipo,
            folio=row.folio,
            fecha=fecha,
            rut=rut,
            razon_social=name,
            monto_exento=row.exento,
            monto_neto=row.afecto,
            iva_uso_comun=row.uso_comun,
            cod_iva_no_recuperable=4 if row.entrega_gratuita else None,  # entrega gratuita
            retencion_total=row.retencion_total,
        )
        for row in test_set.purchases
        if row.tipo is not None
    ]


def _invoice_guia(run: CertificationRun, guia: SalesDocument, actor) -> Dte:
    """The factura of a guía the set says was invoiced in the period: the one already issued
    for it, or a new one (Facturar guías), issued and sent like any other."""
    for reference in SalesDocument.objects.filter(
        company=run.company,
        tipo_dte__in=(TipoDte.FACTURA, TipoDte.FACTURA_EXENTA),
        references__tipo_doc_ref=str(TipoDte.GUIA_DESPACHO),
        references__folio_ref=str(guia.folio),
    ).select_related("dte"):
        dte = getattr(reference, "dte", None)
        if dte is not None:
            return dte
    assert guia.partner is not None
    draft = guias.invoice_guias(
        company=run.company, actor=actor, partner=guia.partner, guia_ids=[guia.pk]
    )
    return services.dte_issue(document=draft, actor=actor)


def _guia_rows(run: CertificationRun, states: Mapping[int, str], actor) -> list[DetalleGuia]:
    rows = []
    for case in _cases_of(run, SetKind.GUIA_DESPACHO.value):
        doc = case.document
        if doc is None or doc.folio is None:
            continue
        state = states.get(int(case.caso.rsplit("-", 1)[1]))
        factura = None
        if state == "facturada":
            invoice = _invoice_guia(run, doc, actor)
            factura = FacturaDeGuia(invoice.tipo_dte, invoice.folio, invoice.fecha_emision)
        receiver = doc.partner
        rows.append(
            DetalleGuia(
                folio=doc.folio,
                tipo_operacion=doc.ind_traslado or IndTraslado.VENTA,
                fecha=doc.fecha_emision,
                rut=receiver.rut if receiver else doc.company.rut,
                razon_social=(receiver.razon_social if receiver else doc.company.razon_social)[:50],
                monto_neto=doc.monto_neto,
                iva=doc.iva,
                anulado=AnuladoGuia.ANULADA if state == "anulada" else None,
                factura=factura,
            )
        )
    return rows


def certification_libros(*, run: CertificationRun, actor) -> list[CertificationLibro]:
    """The libros of an issued run again (after the SII rejected one, or after a correction):
    built, signed and sent like the task does after issuing."""
    run = CertificationRun.objects.select_related("company").get(pk=run.pk)
    if run.status != CertificationStatus.ISSUED:
        message = "Los libros se arman cuando el set de pruebas quedó emitido."
        raise DomainError(errors.NOT_ISSUABLE, message, {"status": message})
    return _libros(run, actor)


def _libros(run: CertificationRun, actor) -> list[CertificationLibro]:
    """The libros of a run, signed: ventas from the set básico, compras from the set's rows
    (with its factor de proporcionalidad), guías from the set's guías with the states the set
    gives them; each uploaded to the SII and followed (dte.libro_sending)."""
    company = run.company
    setfile = parse(bytes(run.set_file))
    now = timezone.now()
    today = timezone.localdate()
    periodo = f"{today.year:04d}-{today.month:02d}"
    certificate = selectors.certificate_for_signing(company, actor, now)
    signer = load_certificate(certificate.pk, certificate.fingerprint)
    resolucion = mapping.resolucion_from(company)

    def caratula(kind: LibroKind) -> CaratulaLibro:
        return CaratulaLibro(
            rut_emisor=company.rut,
            rut_envia=selectors.signer_rut(signer),
            periodo=periodo,
            resolucion=resolucion,
            tipo_operacion=None if kind is LibroKind.GUIAS else TipoOperacion(kind.value),
            folio_notificacion=FOLIO_NOTIFICACION[kind],
        )

    built: list[tuple[LibroKind, bytes]] = []
    try:
        sales = _sales_rows(run)
        if sales:
            xml = build_libro_compra_venta(
                caratula(LibroKind.VENTA), sales, key=signer, timestamp=now
            )
            built.append((LibroKind.VENTA, xml))
        for test_set in setfile.find(SetKind.LIBRO_COMPRAS):
            xml = build_libro_compra_venta(
                caratula(LibroKind.COMPRA),
                _purchase_rows(test_set, today),
                key=signer,
                timestamp=now,
                factor_proporcionalidad=test_set.factor,
            )
            built.append((LibroKind.COMPRA, xml))
        guia_sets = setfile.find(SetKind.LIBRO_GUIAS)
        states = guia_sets[0].guia_states if guia_sets else {}
        guias_rows = _guia_rows(run, states, actor)
        if guias_rows and guia_sets:
            xml = build_libro_guia(caratula(LibroKind.GUIAS), guias_rows, key=signer, timestamp=now)
            built.append((LibroKind.GUIAS, xml))
    except LibroError as exc:
        message = f"No se pudo armar un libro: {exc}"
        raise DomainError(errors.NOT_ISSUABLE, message, {exc.field: str(exc)}) from exc
    libros = []
    with transaction.atomic():
        for kind, xml in built:
            libro = CertificationLibro.objects.create(
                company=company,
                run=run,
                kind=kind,
                periodo=periodo,
                xml=xml,
                certificate=certificate,
            )
            libro_sending.libro_enqueue(libro, actor=actor)
            libros.append(libro)
    return libros


# ---------------------------------------------------------------- the simulación

SIMULATION_FACTURAS = 6
SIMULATION_NOTE = "Simulación de certificación ante el SII"
# Items for a company with no products yet (net prices in pesos), to edit before issuing.
EXAMPLE_ITEMS = (
    ("Servicio de asesoría mensual", Decimal(85000)),
    ("Licencia de software anual", Decimal(240000)),
    ("Mantención de equipos", Decimal(56000)),
    ("Capacitación por persona", Decimal(38500)),
)


def _simulation_customers(company: Company) -> list[Partner]:
    return list(
        Partner.objects.filter(company=company, is_customer=True)
        .exclude(rut__in=(SII_RECEIVER["rut"], FOREIGN_RECEIVER_RUT))
        .exclude(giro="")
        .exclude(direccion="")
        .exclude(comuna="")
        .order_by("id")[:20]
    )


@transaction.atomic
def simulation_propose(*, run: CertificationRun, actor) -> list[SalesDocument]:
    """Drafts of a realistic batch from the company's own customers and products (the set's
    receiver and example items when it has none yet): facturas of one to three lines (one with
    a global discount), a factura exenta when some product is exempt, and a guía de despacho;
    each editable like any draft before it is issued. Proposing again replaces the drafts not
    issued yet."""
    run = (
        CertificationRun.objects.select_for_update(of=("self",))
        .select_related("company")
        .get(pk=run.pk)
    )
    if run.status != CertificationStatus.ISSUED:
        message = "La simulación viene después del set de pruebas: emítalo primero."
        raise DomainError(errors.NOT_ISSUABLE, message, {"simulation": message})
    if run.simulation_status not in ("", CertificationStatus.READ):
        message = "La simulación ya se emitió o se está emitiendo."
        raise DomainError(errors.NOT_ISSUABLE, message, {"simulation": message})
    company = run.company
    # The company's own customers and products; a company that has none yet gets the set's
    # receiver and example items, to edit before issuing.
    customers = _simulation_customers(company) or [_national_receiver(company, actor)]
    products = list(Product.objects.filter(company=company, is_active=True).order_by("id")[:50])
    affected: list[Any] = [p for p in products if not p.is_exempt] or list(EXAMPLE_ITEMS)
    exempt: list[Any] = [p for p in products if p.is_exempt]
    for old in run.simulation.filter(state="draft"):
        erp_services.sales_document_delete(document=old, actor=actor)
    rng = random.Random(run.pk)  # the same proposal for the same run
    today = timezone.localdate()

    def lines(pool: list[Any], count: int) -> list[dict[str, Any]]:
        chosen = [pool[(start + k) % len(pool)] for k in range(min(count, len(pool)))]
        quantity = [Decimal(rng.randint(1, 12)) for _ in chosen]
        return [
            {"product": p.pk, "quantity": q}
            if isinstance(p, Product)
            else {"name": p[0], "unit_price": p[1], "quantity": q}
            for p, q in zip(chosen, quantity, strict=True)
        ]

    payloads = []
    for n in range(SIMULATION_FACTURAS):
        start = rng.randrange(len(affected))
        payload: dict[str, Any] = {
            "tipo_dte": TipoDte.FACTURA,
            "partner": customers[n % len(customers)].pk,
            "forma_pago": 1 if n % 2 == 0 else 2,
            "lines": lines(affected, 1 + n % 3),
        }
        if n == 2:
            payload |= {"global_discount_type": "%", "global_discount_value": Decimal(5)}
        payloads.append(payload)
    if exempt:
        start = 0
        payloads.append(
            {
                "tipo_dte": TipoDte.FACTURA_EXENTA,
                "partner": customers[0].pk,
                "forma_pago": 1,
                "lines": lines(exempt, 2),
            }
        )
    start = rng.randrange(len(affected))
    payloads.append(
        {
            "tipo_dte": TipoDte.GUIA_DESPACHO,
            "partner": customers[-1].pk,
            "ind_traslado": IndTraslado.VENTA,
            "tipo_despacho": 2,
            "lines": lines(affected, 2),
        }
    )
    drafts = [
        erp_services.sales_document_create(
            company=company,
            actor=actor,
            data={"fecha_emision": today, "notes": SIMULATION_NOTE, **payload},
        )
        for payload in payloads
    ]
    run.simulation.add(*drafts)
    run.simulation_status, run.simulation_error = CertificationStatus.READ, ""
    run.save(update_fields=["simulation_status", "simulation_error"])
    return drafts


@transaction.atomic
def simulation_start(*, run: CertificationRun, actor, queue: bool = True) -> CertificationRun:
    """Queue the issuing of the simulación's drafts (a task: dte.certification_simulation)."""
    run = CertificationRun.objects.select_for_update(of=("self",)).get(pk=run.pk)
    if run.simulation_status != CertificationStatus.READ or not run.simulation.exists():
        message = "Primero proponga la simulación."
        raise DomainError(errors.NOT_ISSUABLE, message, {"simulation": message})
    run.simulation_status = CertificationStatus.QUEUED
    run.save(update_fields=["simulation_status"])
    if queue:
        dispatch.after_commit("dte.certification_simulation", run.pk)
    return run


def simulation_issue(run_id: int) -> CertificationRun | None:
    """Issue the simulación's drafts and send them in one envelope."""
    with transaction.atomic():
        run = (
            CertificationRun.objects.select_for_update(of=("self",))
            .select_related("actor")
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.simulation_status != CertificationStatus.QUEUED:
            return run
        run.simulation_status = CertificationStatus.RUNNING
        run.save(update_fields=["simulation_status"])
    drafts = list(run.simulation.filter(state="draft").order_by("id"))
    outcomes, _ = services.dte_issue_many(documents=drafts, actor=run.actor)
    problems = [f"{o.document}: {o.error.one_line()}" for o in outcomes if o.error is not None]
    run.simulation_status = CertificationStatus.FAILED if problems else CertificationStatus.ISSUED
    run.simulation_error = "\n".join(problems)
    run.save(update_fields=["simulation_status", "simulation_error"])
    return run


def simulation_state(run: CertificationRun) -> str:
    """The simulación's state in SET_STATES words, from its envelope once issued."""
    if run.simulation_status in ("", CertificationStatus.READ):
        return "to_issue"
    if run.simulation_status in (CertificationStatus.QUEUED, CertificationStatus.RUNNING):
        return "queued"
    if run.simulation_status == CertificationStatus.FAILED:
        return "failed"
    envelopes = Envelope.objects.filter(dtes__sales_document__in=run.simulation.all()).distinct()
    states = {envelope_state(envelope) for envelope in envelopes}
    for worst in ("rejected", "attention", "queued", "sent", "objections"):
        if worst in states:
            return worst
    return "accepted" if states == {"accepted"} else "queued"
