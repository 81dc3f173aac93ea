"""The dashboard's panels from dte: documents by the SII's verdict, folios left per type, the
certificates' expiry, and received documents waiting for a decision.

erp draws the dashboard (erp/dashboard.py) but may not import dte; settings.DASHBOARD_PANELS
names these builders. Each reads one company's data and returns an `erp.dashboard.Panel`.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from django.db.models import Count, F
from django.urls import reverse
from django.utils import timezone

from dte import selectors as dte_selectors
from dte.core.domain import DteStatus
from dte.models import STATUS_LABELS, IssuerSettings, ReceivedDte, ReceivedStatus
from erp.dashboard import Panel, days
from erp.doctypes import TipoDte
from erp.models import Company
from erp.tenancy import scoped

RECEIVED_SHOWN = 8
DEFAULT_FOLIO_THRESHOLD = 50  # dte.models.IssuerSettings.caf_low_threshold's default
# The SII's verdicts that need someone to act.
NEEDS_ACTION = (DteStatus.REJECTED, DteStatus.NEEDS_ATTENTION)


def _tipo_label(tipo: int) -> str:
    return TipoDte(tipo).label if tipo in TipoDte._value2member_map_ else f"Tipo {tipo}"


# --- Documents by the SII's state ------------------------------------------------------------


@dataclass(frozen=True)
class StateCount:
    status: str
    label: str
    count: int
    url: str
    needs_action: bool


def sii_states_panel(*, company: Company, today: date, now: datetime) -> Panel:
    """How many issued documents are in each of the SII's states, each a link to the document
    list filtered by it (`?sii_state=`)."""
    counts = dict(
        dte_selectors.dte_list(company=company)
        .order_by()
        .values("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    base = reverse("dte:document_list")
    rows = [
        StateCount(
            status=status.value,
            label=STATUS_LABELS[status],
            count=counts[status.value],
            url=f"{base}?{urlencode({'sii_state': status.value})}",
            needs_action=status in NEEDS_ACTION,
        )
        for status in DteStatus
        if counts.get(status.value)
    ]
    return Panel(
        key="sii-states",
        title="Documentos según el SII",
        template="dte/dashboard/sii_states.html",
        context={"rows": rows, "total": sum(r.count for r in rows)},
        attention=any(r.needs_action for r in rows),
    )


# --- Folios left per document type -----------------------------------------------------------


@dataclass(frozen=True)
class FolioCount:
    tipo: int
    label: str
    left: int
    level: str  # "ok", "low" (under the company's threshold) or "out"


def folios_panel(*, company: Company, today: date, now: datetime) -> Panel:
    """Usable folios left for each type the company has CAFs for (unexpired CAFs only)."""
    remaining = dte_selectors.folios_remaining(company=company, today=today)
    types = sorted(set(dte_selectors.caf_list(company=company).values_list("tipo_dte", flat=True)))
    settings_row = IssuerSettings.objects.filter(company=company).first()
    threshold = settings_row.caf_low_threshold if settings_row else DEFAULT_FOLIO_THRESHOLD
    rows = []
    for tipo in types:
        left = remaining.get(tipo, 0)
        level = "out" if left == 0 else "low" if left < threshold else "ok"
        rows.append(FolioCount(tipo=tipo, label=_tipo_label(tipo), left=left, level=level))
    return Panel(
        key="folios",
        title="Folios disponibles",
        template="dte/dashboard/folios.html",
        context={"rows": rows, "threshold": threshold},
        attention=not rows or any(r.level != "ok" for r in rows),
    )


# --- Certificate expiry ----------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateExpiry:
    holder: str
    holder_rut: str
    expires: date
    days_left: int
    level: str  # "ok", "warn" (under 30 days) or "over"

    @property
    def days_text(self) -> str:
        if self.days_left < 0:
            return f"venció hace {days(-self.days_left)}"
        if self.days_left == 0:
            return "vence hoy"
        return f"quedan {days(self.days_left)}"


def certificates_panel(*, company: Company, today: date, now: datetime) -> Panel:
    """Each active signing certificate's expiry, in days; a warning under
    dte.selectors.CERTIFICATE_WARNING_DAYS (30)."""
    warn = dte_selectors.CERTIFICATE_WARNING_DAYS
    rows = []
    for cert in dte_selectors.certificate_list(company=company).filter(is_active=True):
        days_left = (timezone.localtime(cert.not_after).date() - today).days
        if cert.not_after < now:
            level = "over"
        elif days_left < warn:
            level = "warn"
        else:
            level = "ok"
        rows.append(
            CertificateExpiry(
                holder=cert.holder_name,
                holder_rut=cert.holder_rut,
                expires=timezone.localtime(cert.not_after).date(),
                days_left=days_left,
                level=level,
            )
        )
    valid = [r for r in rows if r.level != "over"]
    return Panel(
        key="certificates",
        title="Certificado digital",
        template="dte/dashboard/certificates.html",
        context={"rows": rows, "warn_days": warn},
        attention=not valid or any(r.level == "warn" for r in valid),
    )


# --- Received documents waiting for a decision -----------------------------------------------


@dataclass(frozen=True)
class Awaiting:
    pk: int
    label: str
    folio: int
    supplier: str
    rut: str
    total: int
    deadline: date | None
    days_left: int | None
    level: str  # "ok", "warn" (the last two days), "over" (tacitly accepted) or "unknown"

    @property
    def days_text(self) -> str:
        if self.days_left is None:
            return "sin fecha de recepción del SII"
        if self.days_left < 0:
            return "plazo vencido"
        if self.days_left == 0:
            return "vence hoy"
        return days(self.days_left)


def received_panel(*, company: Company, today: date, now: datetime) -> Panel:
    """Suppliers' documents not yet accepted or claimed, the closest claim deadline first
    (Ley 19.983: 8 calendar days from the SII's reception; afterwards they count as
    accepted)."""
    waiting = scoped(ReceivedDte.objects.all(), company).filter(status=ReceivedStatus.RECEIVED)
    total = waiting.count()
    rows = []
    shown = waiting.order_by(F("claim_deadline").asc(nulls_last=True), "received_at")
    for row in shown[:RECEIVED_SHOWN]:
        deadline = timezone.localtime(row.claim_deadline).date() if row.claim_deadline else None
        days_left = (deadline - today).days if deadline else None
        if row.claim_deadline is None or days_left is None:
            level = "unknown"
        elif row.claim_deadline < now:
            level = "over"
        elif row.claim_deadline <= now + timedelta(days=dte_selectors.CLAIM_WARNING_DAYS):
            level = "warn"
        else:
            level = "ok"
        rows.append(
            Awaiting(
                pk=row.pk,
                label=_tipo_label(row.tipo_dte),
                folio=row.folio,
                supplier=row.razon_social,
                rut=row.rut_emisor,
                total=row.monto_total,
                deadline=deadline,
                days_left=days_left,
                level=level,
            )
        )
    return Panel(
        key="received",
        title="Recibidos por aceptar o reclamar",
        template="dte/dashboard/received.html",
        context={"rows": rows, "total": total, "more": total - len(rows)},
        attention=any(r.level == "warn" for r in rows),
        wide=True,
    )
