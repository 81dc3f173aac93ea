"""Every list and detail endpoint and main page makes a fixed number of queries, whatever the
number of rows behind it (issue 18): the count with a few documents equals the count with
several times more. A query per row (a missing select_related or prefetch) fails here."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dte import services
from erp import services as erp_services
from erp.models import PurchaseDocument
from tests.factories import PartnerFactory, ProductFactory

pytestmark = pytest.mark.django_db


def _documents(company, actor, n: int, start: int) -> list:
    """n issued facturas of two catalogue lines and a reference each, with their purchases."""
    products = [ProductFactory(company=company, code=f"P{start}-{k}") for k in range(2)]
    documents = []
    for k in range(n):
        partner = PartnerFactory(company=company)
        draft = erp_services.sales_document_create(
            company=company,
            actor=actor,
            data={
                "tipo_dte": 33,
                "fecha_emision": timezone.localdate(),
                "partner": partner.pk,
                "lines": [
                    {"product": products[0].pk, "quantity": Decimal(1 + k)},
                    {"product": products[1].pk, "quantity": Decimal(2)},
                ],
                "references": [
                    {
                        "tipo_doc_ref": "801",
                        "folio_ref": f"OC-{start + k}",
                        "fecha_ref": timezone.localdate(),
                        "razon_ref": "Orden de compra",
                    }
                ],
            },
        )
        services.dte_issue(document=draft, actor=actor)
        PurchaseDocument.objects.create(
            company=company,
            tipo_doc=33,
            folio=start + k,
            partner=partner,
            rut_emisor=partner.rut,
            fecha=timezone.localdate(),
            periodo=timezone.localdate().replace(day=1),
            monto_neto=1000,
            iva_recuperable=190,
            monto_total=1190,
        )
        documents.append(draft)
    return documents


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries)


def _urls(company, document) -> list[str]:
    base = f"/api/v1/companies/{company.rut}"
    dte = document.dte
    return [
        f"{base}/sales-documents/",
        f"{base}/sales-documents/{document.pk}/",
        f"{base}/partners/",
        f"{base}/products/",
        f"{base}/purchase-documents/",
        f"{base}/dtes/",
        f"{base}/dtes/{dte.pk}/",
        f"{base}/envelopes/{dte.envelope_id}/",
        f"{base}/cafs/",
        f"{base}/f29/",
    ]


PAGES = [
    "/",
    "/documentos/",
    "/clientes/",
    "/productos/",
    "/compras/",
    "/recibidos/",
    "/f29/",
    "/folios-y-certificados/",
    "/certificacion/",
]


def test_api_and_pages_make_the_same_queries_for_2_and_for_8_documents(issuer, clerk, api, client):
    few = _documents(issuer, clerk, 2, 100)
    client.force_login(clerk)
    urls = _urls(issuer, few[0])
    detail = f"/documentos/{few[0].pk}/"
    before = {url: _count(api, url) for url in urls}
    before |= {url: _count(client, url) for url in [*PAGES, detail]}

    _documents(issuer, clerk, 6, 200)
    after = {url: _count(api, url) for url in urls}
    after |= {url: _count(client, url) for url in [*PAGES, detail]}
    grew = {url: (before[url], after[url]) for url in before if after[url] != before[url]}
    assert grew == {}, grew
