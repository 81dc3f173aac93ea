"""The F29 through the database: a hand-computed month from real issued DTEs, the SII's RCV
file of purchases and a remanente carried in; the lifecycle and its lock; RCV imports; the
reconciliation; the beat job. Runs on PostgreSQL in CI."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dte import services as dte_services
from dte.models import Dte
from erp import services as erp_services
from erp.errors import DomainError
from erp.models import ClosedPeriod, Partner, PurchaseDocument
from f29 import selectors, services
from f29.models import F29Return, RcvEntry, RcvImport
from f29.reconcile import Category
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

RCV = Path(__file__).resolve().parents[1] / "data" / "rcv"
OCTOBER = date(2026, 10, 1)


def _draft(company, tipo, day, lines, *, partner=None, references=None):
    return erp_services.sales_document_create(
        company=company,
        actor=None,
        data={
            "tipo_dte": tipo,
            "fecha_emision": date(2026, 10, day),
            "partner": partner.pk if partner else None,
            "lines": lines,
            "references": references or [],
        },
    )


def issue(company, tipo, day, lines, *, partner=None, references=None, accepted=True):
    draft = _draft(company, tipo, day, lines, partner=partner, references=references)
    dte = dte_services.dte_issue(document=draft, actor=None)
    if accepted:
        Dte.objects.filter(pk=dte.pk).update(status="accepted")
    return dte


def line(name, quantity, price, **extra):
    return {"name": name, "quantity": Decimal(quantity), "unit_price": Decimal(price), **extra}


@pytest.fixture
def october(issuer):
    """October 2026 of the demo company, every figure written down:

    Sales accepted by the SII
      33 N°1  2 × 45.000 + 1 × 120.000 −10 %   neto 198.000            IVA 37.620
      33 N°2  100.000 afecto + 50.000 exento   neto 100.000 exe 50.000 IVA 19.000
      39 N°1  2 × 11.900 (IVA incluido)        neto  20.000            IVA  3.800
      34 N°1  80.000 exento                                  exe 80.000
      61 N°1  50.000 (corrige montos de 33 N°1) neto 50.000            IVA  9.500
    plus 33 N°3 (99.000 net) still waiting for the SII's verdict: not in the F29.
    Purchases: the SII's RCV "registro" of October (tests/data/rcv/compras_registro_2026-10.csv).
    September was filed with a remanente (77) of 12.345.
    """
    customer = PartnerFactory(company=issuer, rut="96790240-3", razon_social="Andina Ltda.")
    f1 = issue(
        issuer,
        33,
        2,
        [line("Consultoría", 2, 45000), line("Licencia", 1, 120000, discount_pct=Decimal(10))],
        partner=customer,
    )
    issue(
        issuer,
        33,
        6,
        [line("Servicio", 1, 100000), line("Curso", 1, 50000, is_exempt=True)],
        partner=customer,
    )
    issue(issuer, 39, 9, [line("Café grano", 2, 11900)])
    issue(issuer, 34, 12, [line("Asesoría exenta", 1, 80000, is_exempt=True)], partner=customer)
    issue(
        issuer,
        61,
        15,
        [line("Rebaja", 1, 50000)],
        partner=customer,
        references=[
            {
                "tipo_doc_ref": "33",
                "folio_ref": str(f1.folio),
                "fecha_ref": date(2026, 10, 2),
                "cod_ref": 3,
                "razon_ref": "Rebaja de precio",
            }
        ],
    )
    issue(issuer, 33, 20, [line("Pendiente", 1, 99000)], partner=customer, accepted=False)
    services.rcv_import(
        company=issuer,
        actor=None,
        content=(RCV / "compras_registro_2026-10.csv").read_bytes(),
        filename="compras_registro_2026-10.csv",
        kind="compras",
    )
    F29Return.objects.create(
        company=issuer, periodo=date(2026, 9, 1), state="filed", boxes={"77": 12345}, trail={}
    )
    return issuer


def test_a_hand_computed_month_box_by_box(october):
    f29 = services.f29_compute(
        company=october, periodo=OCTOBER, actor=None, ppm_rate="1.5", uso_comun_factor="0.6"
    )
    expected = {
        # Débitos
        503: 2,
        502: 37620 + 19000,
        110: 1,
        111: 3800,
        509: 1,
        510: 9500,
        512: 0,
        513: 0,
        586: 1,
        142: 50000 + 80000,  # exempt inside the factura + the factura exenta
        585: 0,
        20: 0,
        538: 56620 + 3800 - 9500,  # 50.920
        # Créditos (RCV registro): facturas del giro 190.000 + 85.500 + 190.000 + 15.966 and
        # 57.000 of common-use VAT × 0,6; the restaurant's VAT is not recoverable (code 9).
        519: 6,
        520: 481466 + 34200,
        524: 1,
        525: 1520000,  # the machine bought as a fixed asset
        527: 1,
        528: 19000,
        531: 1,
        532: 3800,
        534: 1,
        535: 475000,  # the customs DIN
        536: 0,
        553: 0,
        504: 12345,  # September's 77
        537: 515666 + 1520000 - 19000 + 3800 + 475000 + 12345,  # 2.507.811
        89: 0,
        77: 2507811 - 50920,
        # PPM: net sales 198.000 + 150.000 + 80.000 + 20.000 − 50.000 = 398.000 at 1,5 %
        563: 398000,
        62: 5970,
        39: 0,
        595: 5970,
        91: 5970,
    }
    for code, value in expected.items():
        assert f29.box(code) == value, code
    assert Decimal(f29.boxes["115"]) == Decimal("1.5")
    assert f29.trail["_inputs"]["remanente_from_previous"] is True


def test_trail_lists_the_documents_of_a_box(october):
    f29 = services.f29_compute(company=october, periodo=OCTOBER, actor=None)
    part = next(p for p in f29.trail["502"]["parts"] if p["field"] == "iva")
    docs = selectors.box_documents(company=october, periodo=OCTOBER, part=part)
    assert part["count"] == 2 and sorted(d.folio for d in docs) == [1, 2]
    credit = next(p for p in f29.trail["525"]["parts"] if p["field"] == "iva_recuperable")
    machine = list(selectors.box_documents(company=october, periodo=OCTOBER, part=credit))
    assert [d.folio for d in machine] == [7731] and machine[0].is_fixed_asset
    assert f29.trail["538"]["formula"] and f29.trail["538"]["inputs"] == [502, 111, 513, 501, 510]


def test_the_aggregates_take_a_fixed_number_of_queries(october):
    services.f29_compute(company=october, periodo=OCTOBER, actor=None)  # creates the row
    with CaptureQueriesContext(connection) as queries:
        services.f29_compute(company=october, periodo=OCTOBER, actor=None)
    first = len(queries)
    issue(october, 33, 21, [line("Otra venta", 1, 10000)], partner=Partner.objects.first())
    with CaptureQueriesContext(connection) as queries:
        services.f29_compute(company=october, periodo=OCTOBER, actor=None)
    assert len(queries) == first <= 10


def test_the_default_common_use_factor_is_the_periods_taxed_share(october):
    f29 = services.f29_compute(company=october, periodo=OCTOBER, actor=None)
    # taxed 198.000 + 100.000 + 20.000 − 50.000 = 268.000; exempt 130.000
    factor = Decimal(f29.trail["_inputs"]["uso_comun_factor"])
    assert factor == Decimal("0.673367")
    assert f29.box(520) == 481466 + int((57000 * factor).quantize(Decimal(1), "ROUND_HALF_UP"))


def test_lifecycle_locks_and_reopens_the_period(october, admin_user):
    customer = Partner.objects.get(company=october, rut="96790240-3")
    f29 = services.f29_compute(company=october, periodo=OCTOBER, actor=admin_user)
    with pytest.raises(DomainError) as not_reviewed:
        services.f29_file(f29=f29, actor=admin_user)
    assert not_reviewed.value.code == "f29_wrong_state"
    f29 = services.f29_review(f29=f29, actor=admin_user)
    with pytest.raises(DomainError, match="reabrirlo"):
        services.f29_compute(company=october, periodo=OCTOBER, actor=admin_user)
    draft = _draft(october, 33, 28, [line("Antes del cierre", 1, 1000)], partner=customer)
    f29 = services.f29_file(f29=f29, actor=admin_user, folio_sii="8812345")
    assert ClosedPeriod.objects.filter(company=october, periodo=OCTOBER).exists()

    # Closed: nothing dated in October is created, changed, issued or deleted.
    for attempt in (
        lambda: _draft(october, 33, 30, [line("Tarde", 1, 1000)], partner=customer),
        lambda: erp_services.sales_document_update(
            document=draft, actor=admin_user, data={"notes": "cambio"}
        ),
        lambda: dte_services.dte_issue(document=draft, actor=admin_user),
        lambda: erp_services.sales_document_delete(document=draft, actor=admin_user),
        lambda: erp_services.purchase_document_update(
            document=PurchaseDocument.objects.filter(company=october).first(),
            actor=admin_user,
            data={"notes": "cambio"},
        ),
    ):
        with pytest.raises(DomainError) as closed:
            attempt()
        assert closed.value.code == "period_closed" and "10-2026" in closed.value.message
    # November is open, and moving a draft out of October is refused too.
    with pytest.raises(DomainError):
        erp_services.sales_document_update(
            document=draft, actor=admin_user, data={"fecha_emision": date(2026, 11, 2)}
        )
    november = erp_services.sales_document_create(
        company=october,
        actor=None,
        data={
            "tipo_dte": 33,
            "fecha_emision": date(2026, 11, 2),
            "partner": customer.pk,
            "lines": [line("Noviembre", 1, 1000)],
        },
    )
    assert november.pk

    with pytest.raises(DomainError) as no_reason:
        services.f29_reopen(f29=f29, actor=admin_user, reason=" ")
    assert "reason" in no_reason.value.fields
    f29 = services.f29_reopen(
        f29=f29, actor=admin_user, reason="Factura de proveedor recibida tarde"
    )
    assert f29.state == "draft" and not ClosedPeriod.objects.filter(company=october).exists()
    reopened = f29.events.get(action="reopened")
    assert reopened.actor == admin_user and "tarde" in reopened.reason
    dte_services.dte_issue(document=draft, actor=admin_user)  # open again
    assert [e.action for e in f29.events.order_by("at", "id")] == [
        "computed",
        "reviewed",
        "filed",
        "reopened",
    ]


def test_rcv_import_is_idempotent_and_fills_the_purchase_book(issuer):
    content = (RCV / "compras_registro_2026-10.csv").read_bytes()
    first = services.rcv_import(
        company=issuer, actor=None, content=content, filename="a.csv", kind="compras"
    )
    assert (first.created, first.updated, first.unchanged) == (11, 0, 0)
    assert first.rejected == 0 and first.purchases_created == 11 and first.partners_created == 9
    books = PurchaseDocument.objects.filter(company=issuer)
    assert books.count() == 11 and set(books.values_list("estado", flat=True)) == {"registro"}
    wine = books.get(folio=55021)
    assert (wine.iva_recuperable, wine.otros_impuestos, wine.monto_total) == (
        190000,
        228000,
        1418000,
    )
    supplier = Partner.objects.get(company=issuer, rut="76981123-0")
    assert supplier.razon_social == "SERVICIOS INFORMATICOS DEL SUR LIMITADA"
    assert supplier.is_supplier and not supplier.is_customer

    again = services.rcv_import(
        company=issuer, actor=None, content=content, filename="a.csv", kind="compras"
    )
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 11, 0)
    assert again.purchases_created == again.purchases_updated == again.partners_created == 0
    assert books.count() == 11


def test_rcv_import_updates_what_changed_and_spares_manual_entries(issuer):
    content = (RCV / "compras_registro_2026-10.csv").read_bytes()
    services.rcv_import(company=issuer, actor=None, content=content, filename="a", kind="compras")
    manual = PurchaseDocument.objects.get(company=issuer, folio=88123)
    PurchaseDocument.objects.filter(pk=manual.pk).update(source="manual", notes="a mano")
    claimed = content.replace(b"2;33;Del Giro;76981123-0", b"2;33;Del Giro;76981123-0").replace(
        b";535500;", b";535501;"
    )
    changed = services.rcv_import(
        company=issuer, actor=None, content=claimed, filename="b", kind="compras"
    )
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 10)
    assert RcvEntry.objects.get(company=issuer, folio=88123).monto_total == 535501
    manual.refresh_from_db()
    assert manual.monto_total == 535500 and manual.notes == "a mano"  # staff's entry stays


def test_malformed_rcv_file_is_refused_whole(issuer):
    with pytest.raises(DomainError) as refused:
        services.rcv_import(
            company=issuer,
            actor=None,
            content=(RCV / "basura_binaria.csv").read_bytes(),
            filename="x.csv",
            kind="compras",
        )
    assert refused.value.code == "rcv_invalid" and "file" in refused.value.fields
    assert not RcvImport.objects.exists() and not RcvEntry.objects.exists()
    assert not PurchaseDocument.objects.exists()


def test_rejected_rows_are_reported_and_the_rest_imported(issuer):
    batch = services.rcv_import(
        company=issuer,
        actor=None,
        content=(RCV / "compras_registro_filas_malas.csv").read_bytes(),
        filename="malas.csv",
        kind="compras",
    )
    assert batch.rejected == 2 and batch.created >= 1
    reasons = " ".join(r["reason"] for r in batch.rejected_rows)
    assert "RUT" in reasons and "Fecha Docto" in reasons


def test_rows_of_a_closed_period_are_rejected(issuer):
    ClosedPeriod.objects.create(company=issuer, periodo=OCTOBER)
    batch = services.rcv_import(
        company=issuer,
        actor=None,
        content=(RCV / "compras_registro_2026-10.csv").read_bytes(),
        filename="a.csv",
        kind="compras",
    )
    assert batch.created == 0 and batch.rejected == 11
    assert "cerrado" in batch.rejected_rows[0]["reason"]


def test_reconciliation_sorts_every_document_into_one_category(october):
    # Purchases: the books came from the same file; then staff change one amount by hand, add
    # one the SII does not have, and the SII's later file says one was claimed.
    wine = PurchaseDocument.objects.get(company=october, folio=55021)
    PurchaseDocument.objects.filter(pk=wine.pk).update(monto_neto=999999, source="manual")
    supplier = Partner.objects.get(company=october, rut="76354771-K")
    erp_services.purchase_document_create(
        company=october,
        actor=None,
        data={
            "tipo_doc": 33,
            "folio": 999,
            "partner": supplier.pk,
            "fecha": date(2026, 10, 30),
            "monto_neto": 1000,
            "iva_recuperable": 190,
        },
    )
    RcvEntry.objects.filter(company=october, folio=88123).update(estado="reclamado")
    compras = services.f29_reconcile(company=october, periodo=OCTOBER, kind="compras")
    by_folio = {line.doc.folio: line for line in compras.lines}
    assert by_folio[999].category == Category.ONLY_BOOKS
    assert by_folio[55021].category == Category.AMOUNTS_DIFFER
    assert by_folio[55021].differences == ("monto_neto",)
    assert by_folio[88123].category == Category.STATE_DIFFERS
    assert compras.summary[Category.MATCHED].count == 9
    assert sum(t.count for t in compras.summary.values()) == len(compras.lines) == 12

    # Sales: against the SII's ventas file (other folios): ours are only in the books, theirs
    # only in the RCV; boletas are not matched one by one.
    services.rcv_import(
        company=october,
        actor=None,
        content=(RCV / "ventas_2026-10.csv").read_bytes(),
        filename="v.csv",
        kind="ventas",
    )
    ventas = services.f29_reconcile(company=october, periodo=OCTOBER, kind="ventas")
    kinds = {(line.doc.tipo, line.doc.folio): line.category for line in ventas.lines}
    assert kinds[(33, 1)] == Category.ONLY_BOOKS and (39, 1) not in kinds
    assert kinds[(33, 1501)] == Category.ONLY_RCV
    pending = next(line for line in ventas.lines if line.key[:2] == (33, 3))
    assert pending.books.estado in ("signed", "queued", "sent")  # no verdict from the SII yet
    assert pending.category == Category.ONLY_BOOKS


def test_beat_drafts_last_month_for_every_company_but_leaves_filed_ones(october, other_company):
    outcome = services.f29_draft_previous_month(today=date(2026, 11, 2))
    assert outcome == {october.rut: "draft", other_company.rut: "draft"}
    assert selectors.f29_get(company=october, periodo=OCTOBER).box(502) == 56620
    f29 = selectors.f29_get(company=other_company, periodo=OCTOBER)
    services.f29_review(f29=f29, actor=None)
    again = services.f29_draft_previous_month(today=date(2026, 11, 3))
    assert again[other_company.rut] == "reviewed"


def test_the_beat_job_is_scheduled_on_the_first_days(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["f29-draft-previous-month"]
    assert entry["task"] == "f29.f29_draft_previous_month"
    assert entry["schedule"].day_of_month == set(range(1, 6))
