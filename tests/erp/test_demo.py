import pytest
from django.core.management import call_command

from erp.models import AuditEvent, Company, Partner, Product, SalesDocument

pytestmark = pytest.mark.django_db


def test_demo_is_idempotent_and_prints_the_login(capsys):
    call_command("demo")
    first = capsys.readouterr().out
    counts = [m.objects.count() for m in (Company, Partner, Product, SalesDocument, AuditEvent)]
    call_command("demo")
    assert [m.objects.count() for m in (Company, Partner, Product, SalesDocument, AuditEvent)] == (
        counts
    )
    assert "login: demo / " in first
    company = Company.objects.get(rut="76086428-5")
    assert counts[1] >= 4 and counts[2] >= 5 and counts[3] >= 4
    assert set(SalesDocument.objects.values_list("tipo_dte", flat=True)) >= {33, 34, 39, 61}
    assert all(d.monto_total > 0 for d in SalesDocument.objects.filter(company=company))


def test_demo_login_works(client):
    call_command("demo")
    assert client.login(username="demo", password="demo-factura")
    assert client.get("/documentos/").status_code == 200
