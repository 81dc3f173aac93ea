"""Printed documents and their delivery: the PDF (stored after issuing, regenerated on demand),
the public verification link of the QR, and the e-mail to the receiver."""

from django.conf import settings
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils import timezone

from dte import dispatch, mapping, selectors
from dte.core.envelope import EnvelopeItem, build_envelope
from dte.keyring import load_certificate
from dte.models import Dte, DteEvent, DteEventKind
from dte.pdf.data import read_dte
from dte.pdf.render import RenderOptions, render_pdf
from erp.doctypes import TipoDte
from erp.errors import DomainError

FORMATS = ("letter", "thermal")


def default_format(tipo: int) -> str:
    """Boletas come out of the point of sale's printer; everything else on letter paper."""
    return "thermal" if TipoDte(tipo).gross_prices else "letter"


def verify_url(dte: Dte) -> str:
    return settings.PUBLIC_BASE_URL + reverse("dte:public", args=[dte.public_token])


def render(dte: Dte, *, format: str | None = None, cedible: bool = False) -> bytes:
    format = format or default_format(dte.tipo_dte)
    if format not in FORMATS:
        raise DomainError(
            "invalid_input",
            "Formato desconocido: use letter o thermal.",
            {"format": "Use letter o thermal."},
        )
    company = dte.company
    logo = None
    if company.logo:
        try:
            with company.logo.open("rb") as handle:
                logo = handle.read()
        except OSError:
            logo = None
    options = RenderOptions(
        format=format,
        cedible=cedible,
        resolution_date=company.resolution_date,
        resolution_number=company.resolution_number,
        unidad_regional=company.sii_unidad_regional,
        logo=logo,
        verify_url=verify_url(dte),
        notes=dte.sales_document.notes if dte.sales_document else "",
    )
    return render_pdf(read_dte(bytes(dte.xml)), options)


def dte_pdf(dte: Dte, *, format: str | None = None, cedible: bool = False) -> bytes:
    """The PDF to hand out: the stored one when it is the default copy, else rendered now."""
    default = (format in (None, default_format(dte.tipo_dte))) and not cedible
    if default and dte.pdf:
        return bytes(dte.pdf)
    pdf = render(dte, format=format, cedible=cedible)
    if default:
        Dte.objects.filter(pk=dte.pk).update(pdf=pdf, pdf_at=timezone.now())
    return pdf


def dte_store_pdf(dte_id: int) -> None:
    """After issuing (a task): render the default copy and keep it."""
    dte = Dte.objects.select_related("company").get(pk=dte_id)
    pdf = render(dte)
    Dte.objects.filter(pk=dte.pk).update(pdf=pdf, pdf_at=timezone.now())


def after_issue(dte: Dte) -> None:
    """Keep PDF work off the issuing request: a worker renders it once the commit is done.
    Without a broker (a laptop run) it is rendered on first download instead."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        dispatch.after_commit("dte.dte_store_pdf", dte.pk)


def dte_email_queue(dte: Dte) -> str:
    """Staff or an integrator asks for the e-mail: check there is an address, then queue it."""
    partner = dte.sales_document.partner if dte.sales_document else None
    address = partner.email_dte if partner else ""
    if not address:
        raise DomainError(
            "invalid_input",
            "El receptor no tiene correo de intercambio: agréguelo en su ficha.",
            {"email_dte": "El receptor no tiene correo de intercambio."},
        )
    dispatch.after_commit("dte.dte_email", dte.pk)
    return address


class EmailSkipped(Exception):
    """Nothing to send: the receiver has no exchange address."""


def dte_email(dte_id: int) -> str:
    """E-mail the receiver: the DTE in an envelope addressed to the receiver's RUT (DOMAIN.md
    §10) and the PDF. SMTP errors propagate, so the task retries them."""
    dte = Dte.objects.select_related("company", "sales_document__partner").get(pk=dte_id)
    partner = dte.sales_document.partner if dte.sales_document else None
    address = partner.email_dte if partner else ""
    if not address:
        raise EmailSkipped("El receptor no tiene correo de intercambio.")
    company = dte.company
    certificate_row = selectors.certificate_for_signing(company, None, timezone.now())
    signer = load_certificate(certificate_row.pk, certificate_row.fingerprint)
    envelope = build_envelope(
        [EnvelopeItem(TipoDte(dte.tipo_dte), dte.signed_element())],
        rut_emisor=company.rut,
        rut_envia=selectors.signer_rut(signer),
        resolucion=mapping.resolucion_from(company),
        timestamp=timezone.now(),
        key=signer,
        rut_receptor=dte.rut_receptor,
    )
    name = f"{TipoDte(dte.tipo_dte).label} N° {dte.folio}"
    message = EmailMessage(
        subject=f"{name} de {company.razon_social}",
        body=(
            f"Estimado(a):\n\nAdjuntamos {name} emitida por {company.razon_social} "
            f"(RUT {company.rut}).\nPuede verificarla en {verify_url(dte)}\n"
        ),
        from_email=company.email or settings.DEFAULT_FROM_EMAIL,
        to=[address],
    )
    message.attach(
        f"EnvioDTE--{company.rut}--{dte.tipo_dte}--{dte.folio}.xml", envelope, "application/xml"
    )
    message.attach(dte.filename.replace(".xml", ".pdf"), dte_pdf(dte), "application/pdf")
    message.send(fail_silently=False)
    DteEvent.objects.create(
        dte=dte,
        status=dte.status,
        kind=DteEventKind.EMAIL,
        message=f"Enviado por correo a {address} (XML y PDF).",
    )
    return address


def email_not_sent(dte_id: int, reason: str) -> None:
    dte = Dte.objects.get(pk=dte_id)
    DteEvent.objects.create(
        dte=dte, status=dte.status, kind=DteEventKind.EMAIL_FAILED, message=reason
    )
