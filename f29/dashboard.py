"""The dashboard's F29 panel: the next return to file, its due date and how it stands.

erp draws the dashboard (erp/dashboard.py) but may not import f29; settings.DASHBOARD_PANELS
names this builder.
"""

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.urls import reverse
from django.utils import timezone

from erp.dashboard import Panel, days, month_name
from erp.models import Company
from erp.periods import month_start, next_period, period_key, previous_period
from f29 import selectors as f29_selectors
from f29.models import F29Return, F29State

WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")


# --- The next F29 ----------------------------------------------------------------------------


def f29_due_date(period: date) -> date:
    """The last day to file and pay the F29 of `period` (a month's first day).

    DL 825 (Ley sobre Impuesto a las Ventas y Servicios) art. 64: the VAT of a month is declared
    and paid by the 12th of the following month, and by the 20th for taxpayers who issue
    electronic invoices (every company of this application does) and file online. Código
    Tributario art. 36: a deadline that falls on a Saturday, Sunday or public holiday moves to
    the next working day. ../shared/DOMAIN.md (§15) lists the F29's boxes but not its deadline.
    Public holidays are not known here: only weekends move the date.
    """
    due = next_period(period).replace(day=20)
    while due.weekday() >= calendar.SATURDAY:
        due += timedelta(days=1)
    return due


def _declaring(company: Company, today: date) -> tuple[date, F29Return | None]:
    """The period whose F29 comes next: last month's, until its deadline has passed with it
    filed; then this month's. Last month's, unfiled after its deadline, stays shown (late)."""
    period = previous_period(month_start(today))
    row = f29_selectors.f29_find(company=company, periodo=period)
    if today > f29_due_date(period) and row is not None and row.state == F29State.FILED:
        period = month_start(today)
        row = f29_selectors.f29_find(company=company, periodo=period)
    return period, row


@dataclass(frozen=True)
class F29Due:
    period: date
    due: date
    days_left: int
    state: str
    state_label: str
    to_pay: int | None
    filed_on: date | None
    url: str

    @property
    def period_name(self) -> str:
        return month_name(self.period)

    @property
    def weekday(self) -> str:
        return WEEKDAYS[self.due.weekday()]

    @property
    def level(self) -> str:
        if self.state == F29State.FILED:
            return "ok"
        if self.days_left < 0:
            return "over"
        return "warn" if self.days_left <= 5 else "ok"

    @property
    def days_text(self) -> str:
        if self.state == F29State.FILED:
            return "presentado"
        if self.days_left < 0:
            return f"atrasado {days(-self.days_left)}"
        if self.days_left == 0:
            return "vence hoy"
        return f"en {days(self.days_left)}"


def f29_panel(*, company: Company, today: date, now: datetime) -> Panel:
    """The next F29 to file: its period, its due date (f29_due_date), how its return stands
    (not computed, draft, reviewed, filed) and the total to pay (box 91) once computed."""
    period, row = _declaring(company, today)
    due = f29_due_date(period)
    key = period_key(period)
    if row is not None:
        url = reverse("f29:f29_detail", kwargs={"period": key})
        state, label = row.state, row.get_state_display()
        to_pay = row.box(91) if row.computed_at else None
        filed_on = timezone.localtime(row.filed_at).date() if row.filed_at else None
    else:
        url, state, label = reverse("f29:f29_list"), "", "Sin calcular"
        to_pay, filed_on = None, None
    info = F29Due(
        period=period,
        due=due,
        days_left=(due - today).days,
        state=state,
        state_label=label,
        to_pay=to_pay,
        filed_on=filed_on,
        url=url,
    )
    return Panel(
        key="f29",
        title="Próximo F29",
        template="f29/dashboard/f29.html",
        context={"f29": info},
        attention=info.level != "ok",
    )
