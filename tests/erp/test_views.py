"""The staff web UI: pages render, forms save through the services, errors sit next to fields."""

from datetime import date
from decimal import Decimal as D

import pytest

from erp.models import DocumentState, Partner, SalesDocument
from tests.factories import PartnerFactory, ProductFactory, SalesDocumentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(client, clerk):
    client.force_login(clerk)
    return client


def management(prefix: str, total: int) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def document_post(partner, lines, **header) -> dict:
    data = {
        "tipo_dte": "33",
        "fecha_emision": "2026-11-20",
        "forma_pago": "1",
        "partner": str(partner.pk),
        "global_discount_type": "",
        "global_discount_value": "0",
        "global_surcharge_type": "",
        "global_surcharge_value": "0",
        **management("lines", len(lines)),
        **management("refs", 0),
        **header,
    }
    for i, line in enumerate(lines):
        data.update({f"lines-{i}-{k}": v for k, v in line.items()})
    return data


def test_login_required(client):
    response = client.get("/documentos/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_login_page_and_login(client, clerk):
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"username": clerk.username, "password": "clave-secreta-1"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_pages_render_in_spanish_with_chilean_formats(web, company):
    partner = PartnerFactory(company=company, rut="96790240-3")
    SalesDocumentFactory(company=company, partner=partner, monto_total=1234567)
    dashboard = web.get("/").content.decode()
    assert "Documentos recientes" in dashboard and "$ 1.234.567" in dashboard
    assert "02-11-2026" in dashboard  # dd-mm-aaaa
    partners = web.get("/clientes/?q=96.790.240-3").content.decode()
    assert "96.790.240-3" in partners


def test_partner_create_with_dotted_rut(web, company):
    response = web.post(
        "/clientes/nuevo/",
        {"rut": "96.790.240-3", "razon_social": "Los Andes", "is_customer": "on"},
    )
    assert response.status_code == 302
    assert Partner.objects.get(company=company).rut == "96790240-3"


def test_partner_errors_next_to_the_field(web, company):
    PartnerFactory(company=company, rut="96790240-3")
    response = web.post("/clientes/nuevo/", {"rut": "96.790.240-3", "razon_social": "X"})
    assert response.status_code == 400
    assert 'data-field="rut"' in response.content.decode()
    response = web.post("/clientes/nuevo/", {"rut": "12.345.678-9", "razon_social": "X"})
    assert "dígito verificador" in response.content.decode()


def test_document_create_with_two_lines(web, company):
    partner = PartnerFactory(company=company)
    product = ProductFactory(company=company, unit_price=D(45000))
    lines = [
        {"product": str(product.pk), "name": "Consultoría", "quantity": "2", "unit_price": "45000"},
        {"name": "Licencia", "quantity": "1", "unit_price": "120000", "discount_pct": "10"},
    ]
    response = web.post("/documentos/nuevo/", document_post(partner, lines))
    assert response.status_code == 302, response.content.decode()[:2000]
    doc = SalesDocument.objects.get()
    assert doc.monto_total == 235620 and doc.lines.count() == 2
    detail = web.get(response["Location"]).content.decode()
    assert "$ 235.620" in detail and "$ 37.620" in detail


def test_document_line_error_sits_on_its_row(web, company):
    partner = PartnerFactory(company=company)
    lines = [
        {"name": "Bien", "quantity": "1", "unit_price": "100"},
        {"name": "Mal", "quantity": "-3", "unit_price": "100"},
    ]
    response = web.post("/documentos/nuevo/", document_post(partner, lines))
    assert response.status_code == 400
    html = response.content.decode()
    assert "La cantidad debe ser mayor que cero." in html
    assert SalesDocument.objects.count() == 0


def test_document_edit_and_deleted_rows(web, company):
    partner = PartnerFactory(company=company)
    doc = SalesDocumentFactory(company=company, partner=partner)
    lines = [
        {"name": "Queda", "quantity": "3", "unit_price": "1000"},
        {"name": "Se va", "quantity": "1", "unit_price": "5", "DELETE": "on"},
    ]
    response = web.post(f"/documentos/{doc.pk}/editar/", document_post(partner, lines))
    assert response.status_code == 302
    doc.refresh_from_db()
    assert [ln.name for ln in doc.lines.all()] == ["Queda"] and doc.monto_total == 3570


def test_issued_document_cannot_be_edited_from_the_ui(web, company):
    doc = SalesDocumentFactory(company=company, state=DocumentState.ISSUED, folio=5)
    response = web.get(f"/documentos/{doc.pk}/editar/")
    assert response.status_code == 302
    partner = doc.partner
    response = web.post(
        f"/documentos/{doc.pk}/editar/",
        document_post(partner, [{"name": "X", "quantity": "1", "unit_price": "1"}]),
    )
    assert response.status_code == 302
    doc.refresh_from_db()
    assert doc.lines.get().name == "Servicio"
    assert web.post(f"/documentos/{doc.pk}/eliminar/").status_code == 302
    assert SalesDocument.objects.filter(pk=doc.pk).exists()


def test_live_totals_preview(web, company):
    partner = PartnerFactory(company=company)
    lines = [
        {"name": "A", "quantity": "2", "unit_price": "45000"},
        {"name": "B", "quantity": "", "unit_price": ""},  # still being typed
        {"name": "C", "quantity": "1", "unit_price": "120000", "discount_pct": "10"},
    ]
    data = document_post(partner, lines, global_discount_type="%", global_discount_value="10")
    body = web.post("/documentos/totales/", data).json()
    assert body["ok"] is True
    assert body["lines"] == ["$ 90.000", "", "$ 108.000"]
    assert body["totals"]["monto_neto"] == "$ 178.200"
    assert body["totals"]["monto_total"] == "$ 212.058"
    assert SalesDocument.objects.count() == 0


def test_document_filters(web, company):
    partner = PartnerFactory(company=company, razon_social="Filtrado S.A.")
    SalesDocumentFactory(company=company, partner=partner, fecha_emision=date(2026, 10, 5))
    SalesDocumentFactory(company=company, tipo_dte=34, fecha_emision=date(2026, 11, 5))
    html = web.get("/documentos/?tipo_dte=34").content.decode()
    assert "<td>Filtrado S.A.</td>" not in html
    html = web.get(f"/documentos/?partner={partner.pk}&date_from=2026-10-01&date_to=2026-10-31")
    assert "<td>Filtrado S.A.</td>" in html.content.decode()


def test_viewer_cannot_open_forms(client, viewer, company):
    client.force_login(viewer)
    assert client.get("/documentos/").status_code == 200
    assert client.get("/documentos/nuevo/").status_code == 403
    assert client.post("/clientes/nuevo/", {"rut": "96790240-3"}).status_code == 403
    assert not Partner.objects.exists()


def test_user_without_company(client, db):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    assert client.get("/").status_code == 403


def test_api_token_is_shown_once_and_rotates(web, clerk, company):
    assert "Aún no tiene un token" in web.get("/cuenta/token/").content.decode()
    first = web.post("/cuenta/token/")
    key = first.context["token"]
    assert key in first.content.decode()
    assert key not in web.get("/cuenta/token/").content.decode()
    second = web.post("/cuenta/token/").context["token"]
    assert second != key
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/companies/").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Token {second}")
    assert api.get("/api/v1/companies/").status_code == 200


def test_garbage_posts_never_500(web, company):
    partner = PartnerFactory(company=company)
    assert web.post("/documentos/nuevo/", {"tipo_dte": "zz"}).status_code == 400
    assert web.post("/documentos/nuevo/", {}).status_code == 400
    huge = [{"name": "X", "quantity": "999999999999", "unit_price": "999999999999"}]
    response = web.post("/documentos/nuevo/", document_post(partner, huge))
    assert response.status_code == 400
    assert "18 dígitos" in response.content.decode()
    assert web.post("/documentos/totales/", {}).status_code == 200
    assert web.post("/empresa/cambiar/", {"company": "x"}).status_code == 404
    assert web.get("/documentos/?tipo_dte=zz&date_from=ayer").status_code == 200
    assert SalesDocument.objects.count() == 0


def test_dashboard_counts_issued_sales_net_of_credit_notes(web, company):
    from django.utils import timezone

    today = timezone.localdate()
    issued = DocumentState.ISSUED
    SalesDocumentFactory(company=company, state=issued, folio=1, fecha_emision=today)
    SalesDocumentFactory(
        company=company, state=issued, folio=2, tipo_dte=61, fecha_emision=today, monto_total=190
    )
    SalesDocumentFactory(company=company, state=issued, folio=3, tipo_dte=52, fecha_emision=today)
    SalesDocumentFactory(company=company, fecha_emision=today, monto_total=5000)  # a draft
    html = web.get("/").content.decode()
    assert "$ 1.000" in html  # 1.190 − 190
    assert "$ 5.000" in html


def test_line_numbers_are_read_as_chileans_type_them_and_ambiguous_ones_refused(db):
    from decimal import Decimal

    from erp.forms import LineForm, PurchaseForm
    from tests.factories import CompanyFactory

    form = LineForm({"name": "Resma", "quantity": "2,5", "unit_price": "1.000,50"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["quantity"] == Decimal("2.5")
    assert form.cleaned_data["unit_price"] == Decimal("1000.50")
    assert 'inputmode="decimal"' in str(form["quantity"]) and 'type="text"' in str(form["quantity"])
    ambiguous = LineForm({"name": "Resma", "quantity": "1", "unit_price": "1,000"})
    assert not ambiguous.is_valid()
    assert "ambiguo" in ambiguous.errors["unit_price"][0]
    # Shown back in the same notation.
    shown = LineForm(initial={"quantity": Decimal("2.5"), "unit_price": Decimal("1234567")})
    assert 'value="2,5"' in str(shown["quantity"])
    assert 'value="1.234.567"' in str(shown["unit_price"])
    company = CompanyFactory()
    purchase = PurchaseForm(
        {"monto_neto": "1.000.000", "iva_recuperable": "$ 190.000"}, company=company
    )
    purchase.is_valid()
    assert purchase.cleaned_data["monto_neto"] == 1000000
    assert purchase.cleaned_data["iva_recuperable"] == 190000
    cents = PurchaseForm({"monto_neto": "1.000,5"}, company=company)
    cents.is_valid()
    assert "sin decimales" in cents.errors["monto_neto"][0]
