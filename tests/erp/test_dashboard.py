"""The dashboard ("how is the month going"): erp's figures (the month, twelve months of sales and
VAT as a chart), the panels ops builds from dte and f29 (SII states, folios, certificates,
received documents and their claim deadlines, the next F29 and its due date), and the page
that shows them, for the current company only."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from dte import dashboard as dte_panels
from erp import dashboard
from erp.models import DocumentState
from erp.periods import previous_period
from f29 import dashboard as f29_panels
from tests.factories import CompanyFactory, PartnerFactory, SalesDocumentFactory

pytestmark = pytest.mark.django_db

ISSUED = DocumentState.ISSUED
TODAY = date(2026, 12, 6)
NOW = datetime(2026, 12, 6, 13, 0, tzinfo=UTC)  # 10:00 in Santiago


def _sale(company, day: date, *, tipo=33, neto=1000, exento=0, iva=190, folio=None, **extra):
    SalesDocumentFactory(
        company=company,
        state=extra.pop("state", ISSUED),
        folio=folio,
        tipo_dte=tipo,
        fecha_emision=day,
        monto_neto=neto,
        monto_exento=exento,
        iva=iva,
        monto_total=neto + exento + iva,
        **extra,
    )


def test_twelve_months_of_sales_and_vat_net_of_credit_notes(company, other_company):
    _sale(company, date(2026, 12, 1), neto=100_000, iva=19_000, folio=1)
    _sale(company, date(2026, 12, 3), tipo=34, neto=0, exento=50_000, iva=0, folio=1)
    _sale(company, date(2026, 12, 4), tipo=61, neto=10_000, iva=1_900, folio=2)  # subtracts
    _sale(company, date(2026, 12, 5), tipo=52, neto=999_000, iva=0, folio=3)  # a guía: no sale
    _sale(company, date(2026, 12, 5), tipo=46, neto=777_000, iva=0, folio=4)  # a purchase
    _sale(company, date(2026, 12, 5), neto=555_000, iva=0, state=DocumentState.DRAFT)
    _sale(company, date(2026, 1, 31), neto=200_000, iva=38_000, folio=5)
    _sale(company, date(2025, 12, 31), neto=300_000, iva=57_000, folio=6)  # 13 months ago
    _sale(other_company, date(2026, 12, 2), neto=900_000, iva=171_000, folio=1)

    months = dashboard.monthly_sales(company=company, today=TODAY)

    assert [m.month for m in months] == [date(2026, n, 1) for n in range(1, 13)]
    assert (months[-1].net, months[-1].vat) == (100_000 + 50_000 - 10_000, 19_000 - 1_900)
    assert (months[0].net, months[0].vat, months[0].total) == (200_000, 38_000, 238_000)
    assert all(m.net == m.vat == 0 for m in months[1:-1])
    assert [months[0].label, months[-1].label] == ["ene 26", "dic 26"]
    assert months[-1].name == "diciembre de 2026"


def test_the_chart_scales_to_round_steps_and_stacks_vat_on_net():
    months = [dashboard.MonthFigures(month=date(2026, n, 1), net=0, vat=0) for n in range(1, 13)]
    months[-1] = dashboard.MonthFigures(month=date(2026, 12, 1), net=31_122_000, vat=5_913_180)
    months[0] = dashboard.MonthFigures(month=date(2026, 1, 1), net=-5_000, vat=-950)
    chart = dashboard.chart(months)

    assert [t.amount for t in chart.ticks] == [0, 10_000_000, 20_000_000, 30_000_000, 40_000_000]
    assert chart.ticks[-1].label == "$ 40.000.000" and chart.ticks[0].y == chart.baseline
    last = chart.bars[-1]
    assert last.net_y + last.net_height == chart.baseline  # from the baseline up
    assert last.vat_y + last.vat_height == last.net_y  # VAT on top of net
    assert abs(last.net_height + last.vat_height - 0.9259 * (chart.baseline - 14)) < 1.5
    assert (last.net_pct, last.vat_pct) == ("77.8", "14.8")
    assert chart.bars[0].net_height == chart.bars[0].vat_height == 0  # credit exceeded sales
    assert len({b.x for b in chart.bars}) == 12 and not chart.empty
    assert last.description == "diciembre de 2026: ventas netas $ 31.122.000, IVA $ 5.913.180"


def test_the_month_summary(company):
    _sale(company, date(2026, 12, 1), neto=100_000, iva=19_000, folio=1)
    _sale(company, date(2026, 12, 2), tipo=61, neto=10_000, iva=1_900, folio=2)
    _sale(company, date(2026, 11, 30), neto=70_000, iva=13_300, folio=3)
    _sale(company, date(2026, 10, 1), neto=5_000, iva=950, state=DocumentState.DRAFT)

    s = dashboard.month_summary(company=company, today=TODAY)

    assert (s.sales, s.net, s.vat) == (119_000 - 11_900, 90_000, 17_100)
    assert (s.issued, s.drafts, s.drafts_total) == (2, 1, 5_950)


# --- The panels ops builds from dte and f29 ----------------------------------------------------


@pytest.mark.parametrize(
    ("period", "due"),
    [
        (date(2026, 1, 1), date(2026, 2, 20)),  # a Friday
        (date(2026, 5, 1), date(2026, 6, 22)),  # the 20th is a Saturday: Monday
        (date(2026, 11, 1), date(2026, 12, 21)),  # a Sunday: Monday
        (date(2026, 12, 1), date(2027, 1, 20)),  # across the year
    ],
)
def test_the_f29_is_due_the_20th_of_the_next_month_or_the_next_weekday(period, due):
    assert f29_panels.f29_due_date(period) == due


def test_the_f29_panel_follows_the_period_being_declared(company, clerk):
    from f29.models import F29Return, F29State

    panel = f29_panels.f29_panel(company=company, today=TODAY, now=NOW)
    f29 = panel.context["f29"]
    assert (f29.period, f29.due, f29.days_left) == (date(2026, 11, 1), date(2026, 12, 21), 15)
    assert f29.state_label == "Sin calcular" and f29.url == "/f29/" and f29.weekday == "lunes"
    assert f29.days_text == "en 15 días" and not panel.attention

    # Late and not filed: still November's, overdue.
    late = f29_panels.f29_panel(company=company, today=date(2026, 12, 23), now=NOW)
    assert late.context["f29"].days_text == "atrasado 2 días" and late.attention

    row = F29Return.objects.create(company=company, periodo=date(2026, 11, 1), boxes={"91": 4242})
    row.computed_at = NOW
    row.save()
    f29 = f29_panels.f29_panel(company=company, today=date(2026, 12, 18), now=NOW).context["f29"]
    assert f29.url == "/f29/2026-11/" and f29.state_label == "Borrador" and f29.to_pay == 4242
    assert f29.level == "warn"  # three days left

    # Filed: once its deadline passes, December's F29 is the next one.
    row.state, row.filed_at = F29State.FILED, NOW
    row.save()
    after = f29_panels.f29_panel(company=company, today=date(2026, 12, 22), now=NOW).context["f29"]
    assert (after.period, after.due, after.state_label) == (
        date(2026, 12, 1),
        date(2027, 1, 20),
        "Sin calcular",
    )


def test_folios_and_certificates_panels(issuer):
    from dte.models import Caf, Certificate

    Caf.objects.filter(company=issuer, tipo_dte=33).update(next_folio=96)  # 5 left
    Caf.objects.filter(company=issuer, tipo_dte=39).update(next_folio=101)  # none left
    now = timezone.now()
    folios = dte_panels.folios_panel(company=issuer, today=timezone.localdate(), now=now)
    levels = {row.tipo: (row.left, row.level) for row in folios.context["rows"]}
    assert levels[33] == (5, "low") and levels[39] == (0, "out") and levels[34] == (100, "ok")
    assert folios.attention and folios.context["threshold"] == 50

    certificates = dte_panels.certificates_panel(
        company=issuer, today=timezone.localdate(), now=now
    )
    (cert,) = certificates.context["rows"]
    assert cert.level == "ok" and cert.days_left > 30 and not certificates.attention
    Certificate.objects.filter(company=issuer).update(not_after=now + timedelta(days=12, hours=1))
    (cert,) = dte_panels.certificates_panel(
        company=issuer, today=timezone.localdate(), now=now
    ).context["rows"]
    assert (cert.level, cert.days_text) in (("warn", "quedan 12 días"), ("warn", "quedan 13 días"))
    Certificate.objects.filter(company=issuer).update(not_after=now - timedelta(days=3))
    expired = dte_panels.certificates_panel(company=issuer, today=timezone.localdate(), now=now)
    assert expired.context["rows"][0].level == "over" and expired.attention


def test_received_documents_waiting_with_their_claim_deadline(issuer, sii_key, monkeypatch):
    from dte import receiving
    from tests.dte.test_received_web import confirm, make_supplier, receive_from

    monkeypatch.setattr(receiving, "confirm_with_sii", lambda received_id, **kw: "")
    first, second, third = receive_from(make_supplier(sii_key), issuer, count=3)
    confirm(first, days_left=1)
    confirm(second, days_left=6)
    third.status = "accepted"
    third.save()

    now = timezone.now()
    panel = dte_panels.received_panel(company=issuer, today=timezone.localdate(), now=now)
    rows = panel.context["rows"]
    assert [r.folio for r in rows] == [first.folio, second.folio]  # the closest deadline first
    assert rows[0].level == "warn" and rows[1].level == "ok" and panel.attention
    assert rows[0].deadline == timezone.localtime(first.claim_deadline).date()
    assert panel.context["total"] == 2


def test_sii_states_count_issued_documents_with_links_to_the_filtered_list(issuer, clerk):
    from dte.models import Dte
    from dte.services import dte_issue

    empty = dte_panels.sii_states_panel(company=issuer, today=TODAY, now=NOW)
    assert empty.context["rows"] == [] and not empty.attention
    for _ in range(3):
        doc = SalesDocumentFactory(company=issuer, fecha_emision=timezone.localdate())
        dte_issue(document=doc, actor=clerk)
    Dte.objects.filter(pk=Dte.objects.first().pk).update(status="rejected")

    panel = dte_panels.sii_states_panel(company=issuer, today=TODAY, now=NOW)
    rows = {r.status: r for r in panel.context["rows"]}
    assert (rows["queued"].count, rows["rejected"].count) == (2, 1)
    assert rows["rejected"].label == "Rechazado por el SII" and rows["rejected"].needs_action
    assert rows["queued"].url == "/documentos/?sii_state=queued" and panel.attention


# --- The page ------------------------------------------------------------------------------------


def test_the_dashboard_page_shows_every_panel_for_the_current_company(
    client, clerk, issuer, sii_key, monkeypatch
):
    from dte.services import dte_issue

    today = timezone.localdate()
    partner = PartnerFactory(company=issuer, razon_social="Cliente del Mes SpA")
    doc = SalesDocumentFactory(company=issuer, partner=partner, fecha_emision=today)
    dte_issue(document=doc, actor=clerk)
    other = CompanyFactory()
    SalesDocumentFactory(
        company=other, state=ISSUED, folio=9, fecha_emision=today, partner__razon_social="Ajena"
    )

    client.force_login(clerk)
    html = client.get("/").content.decode()

    assert 'id="month-sales">$ 1.190<' in html and 'id="month-vat">$ 190<' in html
    assert '<svg class="chart"' in html and "Ventas netas (afecto + exento)" in html
    assert 'href="/documentos/?sii_state=queued"' in html  # issued, waiting for its envelope
    assert "Factura electrónica" in html and "Folios disponibles" in html
    assert "Certificado digital" in html and "Vence el 31-12-2035" in html
    assert "Recibidos por aceptar o reclamar" in html
    period = previous_period(today.replace(day=1))
    assert f'id="f29-due">{f29_panels.f29_due_date(period):%d-%m-%Y}<' in html
    assert "Ajena" not in html  # another company's sales never show
    assert "Cliente del Mes SpA" in html  # the recent documents


def test_any_member_sees_the_dashboard(client, viewer, company):
    client.force_login(viewer)
    response = client.get("/")
    assert response.status_code == 200
    assert "Ventas e IVA de los últimos 12 meses" in response.content.decode()
