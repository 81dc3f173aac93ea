"""The dashboard: "how is the month going" for one company.

erp gives its own figures (the month's sales, VAT and drafts, twelve months of sales and VAT as a
chart, the latest documents). What other apps know (the SII's verdicts, folios, certificates,
received documents, the F29) comes as panels: erp may not import dte or f29 (the layers point
down), so the functions that build those panels are named in `settings.DASHBOARD_PANELS` and
looked up by name, as Django looks up context processors. Each is called as
`builder(company=..., today=..., now=...)` and returns a `Panel`, or None to show nothing.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils.module_loading import import_string

from erp.doctypes import SalesBox, TipoDte, codes
from erp.models import Company, DocumentState, SalesDocument
from erp.money import format_clp
from erp.periods import month_start, next_period, previous_period
from erp.tenancy import scoped

MONTHS = 12
RECENT = 8
# What the company sells: guías move goods and a factura de compra (46) is issued by the buyer
# for what it buys; notas de crédito subtract in the month they are issued.
# Exports count in pesos, at their rate (SalesDocument keeps their totals in pesos). What is
# a sale and what subtracts is the registry's F29 reading (erp.doctypes, DocType.sales_boxes).
_ISSUED = frozenset(int(t) for t in TipoDte)
_NOT_A_SALE = {SalesBox.FACTURAS_COMPRA}  # box 39: IVA the company retains as a buyer
NOT_SALES = tuple(sorted(codes(lambda d: d.code in _ISSUED and d.sales_boxes <= _NOT_A_SALE)))
SUBTRACTS = tuple(
    sorted(codes(lambda d: bool({SalesBox.NOTAS_CREDITO, SalesBox.EXPORT_RESTA} & d.sales_boxes)))
)
MONTH_ABBR = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic")
MONTH_NAMES = (
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
)


@dataclass(frozen=True)
class Panel:
    """One card of the dashboard: the template that draws it and what it shows. `attention`
    marks a panel that asks for action (a certificate about to expire, folios running out);
    a `wide` panel takes the whole row."""

    key: str
    title: str
    template: str
    context: Mapping[str, Any] = field(default_factory=dict)
    attention: bool = False
    wide: bool = False


PanelBuilder = Callable[..., Panel | None]


def days(n: int) -> str:
    """ "1 día", "3 días"."""
    return f"{n} día" if n == 1 else f"{n} días"


def month_name(month: date) -> str:
    """ "noviembre de 2026"."""
    return f"{MONTH_NAMES[month.month - 1]} de {month.year}"


@dataclass(frozen=True)
class MonthFigures:
    """One month of issued sales: net (neto + exento) and VAT (débito fiscal), with the notas de
    crédito of the month subtracted."""

    month: date
    net: int
    vat: int

    @property
    def total(self) -> int:
        return self.net + self.vat

    @property
    def label(self) -> str:
        """ "nov 26", under its bar."""
        return f"{MONTH_ABBR[self.month.month - 1]} {self.month:%y}"

    @property
    def name(self) -> str:
        return month_name(self.month)


@dataclass(frozen=True)
class Bar:
    """A month as drawn in the chart, in the SVG's own units: the net part from the baseline
    up, the VAT stacked on it. A month whose notas de crédito exceed its sales draws nothing."""

    figures: MonthFigures
    x: int
    width: int
    centre: int
    net_y: int
    net_height: int
    vat_y: int
    vat_height: int
    net_pct: str  # the same bar lying down (phones), in % of the axis, as SVG numbers ("41.5")
    vat_pct: str

    @property
    def description(self) -> str:
        f = self.figures
        return f"{f.name}: ventas netas {format_clp(f.net)}, IVA {format_clp(f.vat)}"


@dataclass(frozen=True)
class Tick:
    amount: int
    y: int

    @property
    def label(self) -> str:
        return format_clp(self.amount)


# The chart's frame, in SVG units (the SVG scales to its card; CSS keeps it legible on phones).
WIDTH, HEIGHT = 900, 260
TOP, BASELINE, LEFT, RIGHT = 14, 222, 118, 8


@dataclass(frozen=True)
class Chart:
    """Twelve months of sales and VAT as stacked bars: a server-drawn SVG, no script."""

    months: list[MonthFigures]
    bars: list[Bar]
    ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    baseline: int = BASELINE
    label_y: int = BASELINE + 20

    @property
    def empty(self) -> bool:
        return not any(m.net or m.vat for m in self.months)

    @property
    def first(self) -> MonthFigures:
        return self.months[0]

    @property
    def last(self) -> MonthFigures:
        return self.months[-1]


@dataclass(frozen=True)
class MonthSummary:
    month: date
    sales: int  # issued sales of the month, total with VAT, net of notas de crédito
    net: int
    vat: int
    issued: int  # documents of any type issued this month
    drafts: int
    drafts_total: int

    @property
    def name(self) -> str:
        return month_name(self.month)


@dataclass(frozen=True)
class Dashboard:
    summary: MonthSummary
    chart: Chart
    recent: list[SalesDocument]
    panels: list[Panel]


def _sales(company: Company) -> QuerySet[SalesDocument]:
    documents = scoped(SalesDocument.objects.all(), company)
    return documents.filter(state=DocumentState.ISSUED).exclude(tipo_dte__in=NOT_SALES)


def _signed(amount: int | None, tipo: int) -> int:
    return -(amount or 0) if tipo in SUBTRACTS else (amount or 0)


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def monthly_sales(*, company: Company, today: date, months: int = MONTHS) -> list[MonthFigures]:
    """Issued sales and their VAT for the `months` months up to `today`'s, oldest first; a month
    without sales is there with zeros. One query."""
    first = month_start(today)
    for _ in range(months - 1):
        first = previous_period(first)
    rows = (
        _sales(company)
        .filter(fecha_emision__gte=first, fecha_emision__lt=next_period(month_start(today)))
        .annotate(month=TruncMonth("fecha_emision"))
        .values("month", "tipo_dte")
        .order_by()
        .annotate(net=Sum("monto_neto"), exempt=Sum("monto_exento"), vat=Sum("iva"))
    )
    net: dict[date, int] = {}
    vat: dict[date, int] = {}
    for row in rows:
        month, tipo = _as_date(row["month"]), row["tipo_dte"]
        net[month] = net.get(month, 0) + _signed((row["net"] or 0) + (row["exempt"] or 0), tipo)
        vat[month] = vat.get(month, 0) + _signed(row["vat"], tipo)
    out = []
    month = first
    for _ in range(months):
        out.append(MonthFigures(month=month, net=net.get(month, 0), vat=vat.get(month, 0)))
        month = next_period(month)
    return out


def _nice_step(raw: float) -> int:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ pesos at least `raw`: round numbers on the axis."""
    magnitude = 1
    while True:
        for factor in (1, 2, 2.5, 5):
            step = factor * magnitude
            if step >= raw and step == int(step):
                return int(step)
        magnitude *= 10


def chart(months: list[MonthFigures], intervals: int = 4) -> Chart:
    """Lay the months out as bars under an axis of `intervals` round steps."""
    highest = max((max(m.net, 0) + max(m.vat, 0) for m in months), default=0)
    step = _nice_step(highest / intervals) if highest else 1
    top_amount = step * intervals
    plot = BASELINE - TOP

    def y(amount: int) -> int:
        return BASELINE - round(amount * plot / top_amount)

    slot = (WIDTH - RIGHT - LEFT) / len(months)
    width = round(slot * 0.6)
    bars = []
    for i, m in enumerate(months):
        net = max(m.net, 0)
        vat = max(m.vat, 0) if m.net >= 0 else 0
        x = round(LEFT + i * slot + (slot - width) / 2)
        net_top, vat_top = y(net), y(net + vat)
        bars.append(
            Bar(
                figures=m,
                x=x,
                width=width,
                centre=x + width // 2,
                net_y=net_top,
                net_height=BASELINE - net_top,
                vat_y=vat_top,
                vat_height=net_top - vat_top,
                net_pct=f"{100 * net / top_amount:.1f}",
                vat_pct=f"{100 * vat / top_amount:.1f}",
            )
        )
    ticks = [Tick(amount=step * k, y=y(step * k)) for k in range(intervals + 1)]
    return Chart(months=months, bars=bars, ticks=ticks)


def month_summary(*, company: Company, today: date) -> MonthSummary:
    """The month so far: its issued sales (total, net, VAT), documents issued, and the drafts
    waiting (of any date). One query."""
    documents = scoped(SalesDocument.objects.all(), company)
    this_month = Q(
        state=DocumentState.ISSUED,
        fecha_emision__gte=month_start(today),
        fecha_emision__lt=next_period(month_start(today)),
    )
    sale = this_month & ~Q(tipo_dte__in=(*NOT_SALES, *SUBTRACTS))
    credit = this_month & Q(tipo_dte__in=SUBTRACTS)
    drafts = Q(state=DocumentState.DRAFT)
    row = documents.aggregate(
        sales=Sum("monto_total", filter=sale),
        sales_net=Sum("monto_neto", filter=sale),
        sales_exempt=Sum("monto_exento", filter=sale),
        sales_vat=Sum("iva", filter=sale),
        credit=Sum("monto_total", filter=credit),
        credit_net=Sum("monto_neto", filter=credit),
        credit_exempt=Sum("monto_exento", filter=credit),
        credit_vat=Sum("iva", filter=credit),
        issued=Count("id", filter=this_month),
        drafts=Count("id", filter=drafts),
        drafts_total=Sum("monto_total", filter=drafts),
    )
    v = {key: value or 0 for key, value in row.items()}
    return MonthSummary(
        month=month_start(today),
        sales=v["sales"] - v["credit"],
        net=v["sales_net"] + v["sales_exempt"] - v["credit_net"] - v["credit_exempt"],
        vat=v["sales_vat"] - v["credit_vat"],
        issued=v["issued"],
        drafts=v["drafts"],
        drafts_total=v["drafts_total"],
    )


def panel_builders() -> list[PanelBuilder]:
    return [import_string(path) for path in getattr(settings, "DASHBOARD_PANELS", ())]


def panels(*, company: Company, today: date, now: datetime) -> list[Panel]:
    """The panels other apps add, in the order settings names them."""
    built = (builder(company=company, today=today, now=now) for builder in panel_builders())
    return [panel for panel in built if panel is not None]


def build(*, company: Company, today: date, now: datetime) -> Dashboard:
    """Everything the dashboard shows, for `company` only."""
    recent = scoped(SalesDocument.objects.select_related("partner"), company)[:RECENT]
    return Dashboard(
        summary=month_summary(company=company, today=today),
        chart=chart(monthly_sales(company=company, today=today)),
        recent=list(recent),
        panels=panels(company=company, today=today, now=now),
    )
