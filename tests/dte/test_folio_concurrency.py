"""Folio allocation under concurrency, on PostgreSQL: eight workers issue fifty documents each
from the same CAF and must get 400 distinct, consecutive folios with no gap."""

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection, connections

from dte import services
from dte.models import Caf, Dte
from erp import services as erp_services
from erp.models import DocumentState, SalesDocument
from tests.factories import PartnerFactory

WORKERS = 8
PER_WORKER = 50


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_workers_fifty_documents_each(company, sandbox, cert_pfx, make_caf_file, clerk):
    from tests.dte.fixtures import CERT_PASSWORD

    assert connection.vendor == "postgresql"
    services.certificate_upload(company=company, actor=None, data=cert_pfx, password=CERT_PASSWORD)
    services.caf_upload(company=company, actor=None, data=make_caf_file(33, 1, 1000))
    partner = PartnerFactory(company=company)
    drafts = [
        erp_services.sales_document_create(
            company=company,
            actor=clerk,
            data={
                "tipo_dte": 33,
                "fecha_emision": date(2026, 11, 20),
                "partner": partner.pk,
                "lines": [{"name": f"Ítem {n}", "quantity": Decimal(1), "unit_price": Decimal(n)}],
            },
        )
        for n in range(1, WORKERS * PER_WORKER + 1)
    ]
    batches = [drafts[i::WORKERS] for i in range(WORKERS)]
    failures: list[str] = []
    start = threading.Barrier(WORKERS)

    def worker(batch):
        try:
            start.wait(timeout=30)
            for document in batch:
                services.dte_issue(document=document, actor=clerk)
        except Exception as exc:  # any failure is the test's failure
            failures.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not failures, failures[:3]
    folios = sorted(
        Dte.objects.filter(company=company, tipo_dte=33).values_list("folio", flat=True)
    )
    assert folios == list(range(1, WORKERS * PER_WORKER + 1))
    assert Caf.objects.get(company=company, tipo_dte=33).next_folio == WORKERS * PER_WORKER + 1
    assert not SalesDocument.objects.filter(state=DocumentState.DRAFT).exists()
    issued = SalesDocument.objects.values_list("folio", flat=True)
    assert sorted(issued) == folios
