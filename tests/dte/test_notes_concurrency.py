"""Notas de crédito of one factura issued at the same time, on PostgreSQL: the factura's row is
locked while a nota is checked, so together they never credit more than the factura holds."""

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection, connections

from dte import notes, services
from dte.models import Dte
from erp import services as erp_services
from erp.errors import DomainError
from erp.models import SalesDocument
from tests.factories import PartnerFactory

WORKERS = 6
TODAY = date(2026, 11, 20)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_six_notas_of_forty_percent_at_once_credit_at_most_the_factura(
    company, sandbox, cert_pfx, make_caf_file, clerk
):
    from tests.dte.fixtures import CERT_PASSWORD

    assert connection.vendor == "postgresql"
    services.certificate_upload(company=company, actor=None, data=cert_pfx, password=CERT_PASSWORD)
    for tipo in (33, 61):
        services.caf_upload(company=company, actor=None, data=make_caf_file(tipo))
    partner = PartnerFactory(company=company)
    line = {"name": "Servicio", "quantity": Decimal(1), "unit_price": Decimal(100_000)}
    factura = erp_services.sales_document_create(
        company=company,
        actor=clerk,
        data={"tipo_dte": 33, "fecha_emision": TODAY, "partner": partner.pk, "lines": [line]},
    )
    services.dte_issue(document=factura, actor=clerk)
    factura.refresh_from_db()
    drafts = [
        erp_services.sales_document_create(
            company=company,
            actor=clerk,
            data={
                "tipo_dte": 61,
                "fecha_emision": TODAY,
                "partner": partner.pk,
                "lines": [{**line, "unit_price": Decimal(40_000)}],
                "references": [
                    {
                        "tipo_doc_ref": "33",
                        "folio_ref": str(factura.folio),
                        "fecha_ref": TODAY,
                        "cod_ref": 3,
                        "razon_ref": "Rebaja",
                    }
                ],
            },
        )
        for _ in range(WORKERS)
    ]
    refused: list[str] = []
    unexpected: list[str] = []
    start = threading.Barrier(WORKERS)

    def worker(draft):
        try:
            start.wait(timeout=30)
            services.dte_issue(document=draft, actor=clerk)
        except DomainError as exc:
            refused.append(exc.code)
        except Exception as exc:  # anything else is the test's failure
            unexpected.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(d,)) for d in drafts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert not unexpected, unexpected[:3]
    issued = Dte.objects.filter(company=company, tipo_dte=61).count()
    assert issued == 2 and refused == ["not_issuable"] * (WORKERS - 2)
    summary = notes.notes_of(SalesDocument.objects.get(pk=factura.pk))
    assert summary.credited == 2 * 47_600 and summary.remaining == 119_000 - 95_200
    assert sorted(Dte.objects.filter(tipo_dte=61).values_list("folio", flat=True)) == [1, 2]
