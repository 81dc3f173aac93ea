import json
from decimal import Decimal as D

import pytest

from erp.models import AuditEvent, DocumentState, SalesDocument
from tests.factories import PartnerFactory, ProductFactory, SalesDocumentFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/companies/76086428-5"


def document_payload(partner, **overrides):
    return {
        "tipo_dte": 33,
        "fecha_emision": "2026-11-20",
        "partner": partner.pk,
        "forma_pago": 2,
        "fecha_vencimiento": "2026-12-20",
        "lines": [
            {"name": "Consultoría", "quantity": "2", "unit_price": "45000"},
            {"name": "Licencia", "quantity": "1", "unit_price": "120000", "discount_pct": "10"},
        ],
        **overrides,
    }


def test_companies_lists_only_memberships(api, company, other_company):
    response = api.get("/api/v1/companies/")
    assert response.status_code == 200
    assert [c["rut"] for c in response.json()["results"]] == ["76086428-5"]
    assert response.json()["results"][0]["role"] == "clerk"
    assert api.get("/api/v1/companies/76.086.428-5/").status_code == 200
    assert api.get("/api/v1/companies/77879240-0/").status_code == 404


def test_unauthenticated_is_refused(client, company):
    response = client.get(f"{BASE}/partners/")
    assert response.status_code in (401, 403)
    assert set(response.json()) == {"code", "message", "fields"}


def test_partner_crud_with_rut_normalized(api, company):
    created = api.post(
        f"{BASE}/partners/",
        {"rut": "96.790.240-3", "razon_social": "Los Andes S.A.", "giro": "Mayorista"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["rut"] == "96790240-3" and body["created_by"]
    pk = body["id"]
    patched = api.patch(f"{BASE}/partners/{pk}/", {"comuna": "Las Condes"}, format="json")
    assert patched.status_code == 200 and patched.json()["comuna"] == "Las Condes"
    assert api.get(f"{BASE}/partners/?search=andes").json()["count"] == 1
    assert api.delete(f"{BASE}/partners/{pk}/").status_code == 204
    assert AuditEvent.objects.filter(entity="partner").count() == 3


def test_invalid_rut_is_a_400_with_field(api, company):
    response = api.post(
        f"{BASE}/partners/", {"rut": "76.086.428-9", "razon_social": "X"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_input"
    assert "dígito verificador" in body["fields"]["rut"][0]


def test_duplicate_rut_is_a_400(api, company):
    PartnerFactory(company=company, rut="96790240-3")
    response = api.post(
        f"{BASE}/partners/", {"rut": "96790240-3", "razon_social": "X"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "duplicate_rut"
    assert "rut" in response.json()["fields"]


def test_malformed_json_is_a_400(api, company):
    response = api.generic(
        "POST", f"{BASE}/partners/", '{"rut": "96790240-3", ', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_document_create_with_lines_and_totals(api, company):
    partner = PartnerFactory(company=company)
    response = api.post(f"{BASE}/sales-documents/", document_payload(partner), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "draft" and body["folio"] is None
    assert [line["amount"] for line in body["lines"]] == [90000, 108000]
    assert (body["monto_neto"], body["iva"], body["monto_total"]) == (198000, 37620, 235620)


def test_document_product_line(api, company):
    partner = PartnerFactory(company=company)
    product = ProductFactory(company=company, unit_price=D("4290"), name="Resma")
    payload = document_payload(partner, lines=[{"product": product.pk, "quantity": "3"}])
    response = api.post(f"{BASE}/sales-documents/", payload, format="json")
    assert response.status_code == 201, response.json()
    line = response.json()["lines"][0]
    assert (line["name"], line["product"], line["amount"]) == ("Resma", product.pk, 12870)


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([{"name": "X", "quantity": "-1", "unit_price": "10"}], "lines.0.quantity"),
        ([{"name": "X", "quantity": "1", "unit_price": "-10"}], "lines.0.unit_price"),
        ([{"product": 987654, "quantity": "1"}], "lines.0.product"),
        ([{"name": "X", "quantity": "uno", "unit_price": "10"}], "lines.0.quantity"),
        ([], "lines"),
    ],
)
def test_document_bad_lines(api, company, lines, field):
    partner = PartnerFactory(company=company)
    response = api.post(
        f"{BASE}/sales-documents/", document_payload(partner, lines=lines), format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["fields"], response.json()
    assert SalesDocument.objects.count() == 0


def test_document_with_foreign_partner_is_a_400(api, company, other_company):
    foreign = PartnerFactory(company=other_company)
    response = api.post(f"{BASE}/sales-documents/", document_payload(foreign), format="json")
    assert response.status_code == 400
    assert "partner" in response.json()["fields"]


def test_draft_update_replaces_lines(api, company):
    partner = PartnerFactory(company=company)
    pk = api.post(f"{BASE}/sales-documents/", document_payload(partner), format="json").json()["id"]
    response = api.patch(
        f"{BASE}/sales-documents/{pk}/",
        {"lines": [{"name": "Uno", "quantity": "1", "unit_price": "1000"}]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["monto_total"] == 1190 and len(response.json()["lines"]) == 1


def test_issued_document_is_read_only(api, company):
    doc = SalesDocumentFactory(company=company, state=DocumentState.ISSUED, folio=77)
    url = f"{BASE}/sales-documents/{doc.pk}/"
    assert api.get(url).status_code == 200
    patch = api.patch(url, {"notes": "cambio"}, format="json")
    assert patch.status_code == 400 and patch.json()["code"] == "document_not_draft"
    line = api.patch(
        url, {"lines": [{"name": "X", "quantity": "1", "unit_price": "1"}]}, format="json"
    )
    assert line.status_code == 400 and line.json()["code"] == "document_not_draft"
    assert api.delete(url).status_code == 400
    doc.refresh_from_db()
    assert doc.lines.count() == 1 and doc.notes == ""


def test_filters_ordering_and_pagination(api, company):
    partner = PartnerFactory(company=company)
    for day in range(1, 26):
        SalesDocumentFactory(company=company, partner=partner, fecha_emision=f"2026-10-{day:02d}")
    SalesDocumentFactory(company=company, tipo_dte=61, fecha_emision="2026-11-03")
    page = api.get(f"{BASE}/sales-documents/").json()
    assert page["count"] == 26 and len(page["results"]) == 20 and page["next"]
    assert len(api.get(f"{BASE}/sales-documents/?page_size=500").json()["results"]) == 26
    assert api.get(f"{BASE}/sales-documents/?page_size=5").json()["results"].__len__() == 5
    assert api.get(f"{BASE}/sales-documents/?tipo_dte=61").json()["count"] == 1
    ranged = api.get(f"{BASE}/sales-documents/?fecha_desde=2026-10-10&fecha_hasta=2026-10-19")
    assert ranged.json()["count"] == 10
    assert api.get(f"{BASE}/sales-documents/?partner={partner.pk}").json()["count"] == 25
    ordered = api.get(f"{BASE}/sales-documents/?ordering=fecha_emision&page_size=1").json()
    assert ordered["results"][0]["fecha_emision"] == "2026-10-01"


def test_max_page_size_is_100(api, company):
    for n in range(105):
        PartnerFactory(company=company, rut=f"{20_000_000 + n}-{_dv(20_000_000 + n)}")
    assert len(api.get(f"{BASE}/partners/?page_size=1000").json()["results"]) == 100


def _dv(body):
    from erp.rut import check_digit

    return check_digit(body)


def test_viewer_reads_but_cannot_write(api_for, viewer, company):
    client = api_for(viewer)
    assert client.get(f"{BASE}/partners/").status_code == 200
    response = client.post(
        f"{BASE}/partners/", {"rut": "96790240-3", "razon_social": "X"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_openapi_schema_and_docs(api, client, company):
    schema = api.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert "/api/v1/companies/{company_rut}/sales-documents/{id}/" in paths
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"drf_spectacular_sidecar" in docs.content  # assets served locally, no CDN
