"""Reads of dte's data, for one company."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import F, Q, QuerySet, Sum

from dte import errors
from dte.core.certificate import Certificate as CoreCertificate
from dte.models import (
    Caf,
    Certificate,
    Dte,
    Envelope,
    ExchangeMailbox,
    IssuerSettings,
    ReceivedDte,
    ReceivedStatus,
)
from erp.doctypes import TipoDte
from erp.errors import DomainError, NotFound
from erp.models import Company
from erp.tenancy import scoped

CERTIFICATE_WARNING_DAYS = 30
CLAIM_WARNING_DAYS = 2  # Ley 19.983: 8 days to claim; staff are warned on the last two


@dataclass(frozen=True)
class Warning:
    code: str
    message: str


def caf_list(*, company: Company) -> QuerySet[Caf]:
    return scoped(Caf.objects.all(), company)


def certificate_list(*, company: Company) -> QuerySet[Certificate]:
    return scoped(Certificate.objects.all(), company).prefetch_related("allowed_users")


def usable_certificates(*, company: Company, actor, now: datetime):
    qs = Certificate.objects.filter(
        company=company, is_active=True, not_before__lte=now, not_after__gte=now
    )
    if getattr(actor, "is_authenticated", False):
        qs = qs.filter(Q(allowed_users__isnull=True) | Q(allowed_users=actor))
    else:
        qs = qs.filter(allowed_users__isnull=True)
    return qs.distinct().order_by("-not_after")


def certificate_for_signing(company: Company, actor, now: datetime) -> Certificate:
    """The certificate that signs for `actor` now (the one valid longest), or a clear error."""
    row = usable_certificates(company=company, actor=actor, now=now).first()
    if row is not None:
        return row
    if Certificate.objects.filter(company=company, is_active=True, not_after__lt=now).exists():
        message = "El certificado digital de la empresa está vencido; cargue uno vigente."
        raise DomainError(errors.CERTIFICATE_EXPIRED, message)
    message = "No hay un certificado digital vigente que usted pueda usar para firmar."
    raise DomainError(errors.NO_CERTIFICATE, message)


def signer_rut(signer: CoreCertificate) -> str:
    """The RUT of a loaded certificate's holder (RutEnvia); uploads refuse one without it."""
    if not signer.rut:
        message = "El certificado digital no indica el RUT de su titular."
        raise DomainError(errors.CERTIFICATE_INVALID, message)
    return signer.rut


def dte_list(*, company: Company) -> QuerySet[Dte]:
    return scoped(Dte.objects.select_related("sales_document", "envelope"), company)


def dte_get(*, company: Company, pk) -> Dte:
    try:
        return dte_list(company=company).get(pk=int(pk))
    except (ValueError, TypeError, Dte.DoesNotExist) as exc:
        raise NotFound("DTE no encontrado.") from exc


def dte_by_token(token: str) -> Dte:
    """A document by its public verification token (the QR); 404 for anything else."""
    from django.http import Http404

    row = (
        Dte.objects.select_related("company", "envelope").filter(public_token=token).first()
        if token and len(token) >= 20
        else None
    )
    if row is None:
        raise Http404("Documento no encontrado.")
    return row


def envelope_get(*, company: Company, pk) -> Envelope:
    try:
        return scoped(Envelope.objects.all(), company).get(pk=int(pk))
    except (ValueError, TypeError, Envelope.DoesNotExist) as exc:
        raise NotFound("Sobre no encontrado.") from exc


def folios_remaining(*, company: Company, today: date) -> dict[int, int]:
    """Usable folios left per document type (unexpired CAFs only)."""
    rows = (
        caf_list(company=company)
        .filter(next_folio__lte=F("folio_hasta"))
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=today))
        .values("tipo_dte")
        .annotate(left=Sum(F("folio_hasta") - F("next_folio") + 1))
    )
    return {row["tipo_dte"]: row["left"] for row in rows}


def dte_warnings(*, company: Company, now: datetime, today: date) -> list[Warning]:
    """What an admin should act on soon: folios running out, certificates expiring."""
    settings_row = IssuerSettings.objects.filter(company=company).first()
    threshold = settings_row.caf_low_threshold if settings_row else 50
    warnings = []
    remaining = folios_remaining(company=company, today=today)
    used_types = set(caf_list(company=company).values_list("tipo_dte", flat=True))
    for tipo in sorted(used_types):
        left = remaining.get(tipo, 0)
        label = TipoDte(tipo).label if tipo in TipoDte._value2member_map_ else str(tipo)
        if left == 0:
            warnings.append(Warning("caf_exhausted", f"Sin folios vigentes para {label}."))
        elif left < threshold:
            warnings.append(
                Warning("caf_low", f"Quedan {left} folios de {label}; solicite un nuevo CAF.")
            )
    active = certificate_list(company=company).filter(is_active=True)
    valid = active.filter(not_before__lte=now, not_after__gte=now)
    if active.exists() and not valid.exists():
        warnings.append(Warning("certificate_expired", "El certificado digital está vencido."))
    limit = now + timedelta(days=CERTIFICATE_WARNING_DAYS)
    for cert in valid.filter(not_after__lte=limit):
        days = (cert.not_after - now).days
        warnings.append(
            Warning(
                "certificate_expiring",
                f"El certificado de {cert.holder_name} vence en {days} días "
                f"({cert.not_after:%d-%m-%Y}).",
            )
        )
    warnings.extend(receiving_warnings(company=company, now=now))
    return warnings


def receiving_warnings(*, company: Company, now: datetime) -> list[Warning]:
    """Received documents whose claim deadline ends within two days, and a mailbox that
    cannot be read."""
    warnings = []
    due = ReceivedDte.objects.filter(
        company=company,
        status=ReceivedStatus.RECEIVED,
        claim_deadline__gte=now,
        claim_deadline__lte=now + timedelta(days=CLAIM_WARNING_DAYS),
    ).count()
    if due:
        noun = "documento recibido vence" if due == 1 else "documentos recibidos vencen"
        warnings.append(
            Warning(
                "claim_deadline",
                f"{due} {noun} su plazo de reclamo en {CLAIM_WARNING_DAYS} días o menos: "
                "acéptelos o reclámelos en Recibidos.",
            )
        )
    mailbox = ExchangeMailbox.objects.filter(company=company, is_active=True).first()
    if mailbox is not None and mailbox.last_error:
        warnings.append(
            Warning(
                "mailbox_error", f"La casilla de intercambio no se pudo leer: {mailbox.last_error}"
            )
        )
    return warnings
