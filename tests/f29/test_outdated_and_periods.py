"""An F29 says when the books moved on after it was computed, with a "Recalcular" that keeps the
period's inputs; a month no F29 exists for is refused where it is typed, and any stored period
opens; a trail names its sums in Spanish."""

import html
import re
from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from dte import services as dte_services
from dte.models import Dte
from erp import services as erp_services
from erp.errors import DomainError
from erp.models import Partner, PurchaseDocument
from f29 import services
from f29.models import F29Return
from tests.f29.test_web import import_registro
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

OCTOBER = date(2026, 10, 1)


def text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def october(company):
    import_registro(company)
    return company


def add_purchase(company, folio=999, neto=100000):
    supplier = Partner.objects.get(company=company, rut="76354771-K")
    return erp_services.purchase_document_create(
        company=company,
        actor=None,
        data={
            "tipo_doc": 33,
            "folio": folio,
            "partner": supplier.pk,
            "fecha": date(2026, 10, 30),
            "monto_neto": neto,
            "iva_recuperable": neto * 19 // 100,
        },
    )


# ---------------------------------------------------------------- out of date


def test_a_purchase_recorded_after_computing_makes_the_page_say_so(client, clerk, october):
    f29 = services.f29_compute(company=october, periodo=OCTOBER, actor=clerk, remanente=5000)
    client.force_login(clerk)
    assert "f29-outdated" not in text(client.get("/f29/2026-10/"))
    assert services.f29_outdated(f29=f29) == []

    before = f29.box(520)
    add_purchase(october)
    page = text(client.get("/f29/2026-10/"))
    assert 'id="f29-outdated"' in page and "Esta propuesta está desactualizada" in page
    notice = re.search(r'id="f29-outdated".*?</div>', page, re.S).group(0)
    assert "[520] " in notice and "[519] " in notice
    money = f"{before:,}".replace(",", ".")
    after = f"{before + 19000:,}".replace(",", ".")
    assert f"$ {money} → <strong>$ {after}</strong>" in notice
    assert 'id="outdated-recompute"' in notice

    # The notice's button recomputes with the period's own inputs (remanente kept).
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', notice))
    response = client.post("/f29/2026-10/calcular/", fields)
    assert response.status_code == 302
    f29.refresh_from_db()
    assert f29.box(520) == before + 19000 and f29.remanente_override == 5000
    assert "f29-outdated" not in text(client.get("/f29/2026-10/"))


def test_a_removed_purchase_and_a_reviewed_period(client, clerk, october):
    f29 = services.f29_compute(company=october, periodo=OCTOBER, actor=clerk)
    wine = PurchaseDocument.objects.get(company=october, folio=55021)
    erp_services.purchase_document_delete(document=wine, actor=None)
    assert {c.code for c in services.f29_outdated(f29=f29)} >= {519, 520}
    services.f29_review(f29=f29, actor=clerk)
    client.force_login(clerk)
    page = text(client.get("/f29/2026-10/"))
    assert "Esta propuesta está desactualizada" in page
    assert "reabra el período para recalcularlo" in page
    assert 'id="outdated-recompute"' not in page


def test_a_sale_accepted_after_computing_counts_too(client, clerk, issuer):
    f29 = services.f29_compute(company=issuer, periodo=OCTOBER, actor=None)
    customer = PartnerFactory(company=issuer, rut="96790240-3", razon_social="Andina Ltda.")
    draft = erp_services.sales_document_create(
        company=issuer,
        actor=None,
        data={
            "tipo_dte": 33,
            "fecha_emision": date(2026, 10, 7),
            "partner": customer.pk,
            "lines": [{"name": "Servicio", "quantity": Decimal(1), "unit_price": Decimal(100000)}],
        },
    )
    dte = dte_services.dte_issue(document=draft, actor=None)
    assert services.f29_outdated(f29=f29) == []  # issued, not yet accepted: not declared
    Dte.objects.filter(pk=dte.pk).update(status="accepted")
    changed = {c.code: (c.computed, c.now) for c in services.f29_outdated(f29=f29)}
    assert changed[502] == (0, 19000) and changed[503] == (0, 1)


# ---------------------------------------------------------------- periods


def test_impossible_periods_are_refused_under_the_field(client, clerk, company):
    client.force_login(clerk)
    for typed, fragment in (
        ("01-1990", "anterior a la facturación electrónica"),
        ("12-2002", "el primero posible es 01-2003"),
        ("01-2099", "aún no comienza"),
        ("13-2026", "mm-aaaa"),
    ):
        response = client.post("/f29/calcular/", {"periodo": typed, "ppm_rate": ""})
        assert response.status_code == 400, typed
        pattern = r'<span class="error" data-field="periodo">(.*?)</span>'
        errors = re.findall(pattern, text(response))
        assert errors and fragment in errors[0], (typed, errors)
    assert not F29Return.objects.exists()
    # The first and the current month are fine.
    assert client.post("/f29/calcular/", {"periodo": "01-2003"}).status_code == 302
    today = timezone.localdate()
    current = f"{today.month:02d}-{today.year}"
    assert client.post("/f29/calcular/", {"periodo": current}).status_code == 302


def test_the_service_and_the_api_refuse_them_too(api_for, clerk, company):
    with pytest.raises(DomainError) as caught:
        services.f29_compute(company=company, periodo=date(1990, 1, 1), actor=None)
    assert caught.value.fields == {"periodo": [caught.value.message]}
    response = api_for(clerk).post(
        f"/api/v1/companies/{company.rut}/f29/1990-01/compute/", {}, format="json"
    )
    assert response.status_code == 400
    assert "facturación electrónica" in response.json()["fields"]["periodo"][0]
    services.check_new_period(date(2026, 12, 1), today=date(2026, 12, 31))
    with pytest.raises(DomainError):
        services.check_new_period(date(2027, 1, 1), today=date(2026, 12, 31))


def test_an_odd_period_stored_earlier_opens(client, clerk, company, api_for):
    odd = F29Return.objects.create(company=company, periodo=date(1990, 1, 1))
    services.f29_compute(company=company, periodo=odd.periodo, actor=None)  # it exists: allowed
    client.force_login(clerk)
    response = client.get("/f29/1990-01/")
    assert response.status_code == 200 and "F29 · 01-1990" in text(response)
    assert client.get("/f29/1990-01/casilla/502/").status_code == 200
    assert 'href="/f29/1990-01/"' in text(client.get("/f29/"))
    api = api_for(clerk).get(f"/api/v1/companies/{company.rut}/f29/1990-01/")
    assert api.status_code == 200
    assert client.get("/f29/2026-13/").status_code == 404


# ---------------------------------------------------------------- trail in Spanish


def test_box_trail_names_its_sums_in_spanish(client, clerk, october, api_for):
    services.f29_compute(company=october, periodo=OCTOBER, actor=clerk)
    client.force_login(clerk)
    page = text(client.get("/f29/2026-10/casilla/520/"))
    assert "Suma del IVA recuperable:" in page
    assert "Suma del IVA de uso común (proporción acreditada):" in page
    assert "iva_recuperable" not in page and "iva_uso_comun" not in page
    count = text(client.get("/f29/2026-10/casilla/519/"))
    assert re.search(r"Cantidad de documentos: <strong>\d+</strong>", count)
    remanente = text(client.get("/f29/2026-10/casilla/504/"))
    assert "Remanente de crédito del mes anterior: <strong>$ 0</strong>" in remanente
    box = api_for(clerk).get(f"/api/v1/companies/{october.rut}/f29/2026-10/boxes/520/").json()
    assert [p["field_label"] for p in box["parts"]] == [
        "IVA recuperable",
        "IVA de uso común (proporción acreditada)",
    ]
