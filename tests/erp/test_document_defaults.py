"""What a draft fills in for the user (issue 15, point 7): the due date of a sale on credit, and
catalogue prices that are net on a factura and IVA-included on a boleta, said on the form."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from erp import services
from tests.factories import PartnerFactory, ProductFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 20)


def _create(company, **data):
    payload = {
        "tipo_dte": 33,
        "fecha_emision": TODAY,
        "lines": [{"name": "Servicio", "quantity": 1, "unit_price": 1000}],
        **data,
    }
    return services.sales_document_create(company=company, actor=None, data=payload)


def test_a_sale_on_credit_falls_due_in_30_days_unless_told(company):
    partner = PartnerFactory(company=company)
    credit = _create(company, partner=partner.pk, forma_pago=2)
    assert credit.fecha_vencimiento == date(2026, 12, 20)
    told = _create(company, partner=partner.pk, forma_pago=2, fecha_vencimiento=date(2027, 1, 5))
    assert told.fecha_vencimiento == date(2027, 1, 5)
    cash = _create(company, partner=partner.pk, forma_pago=1)
    assert cash.fecha_vencimiento is None


def test_catalogue_prices_are_net_on_a_factura_and_gross_on_a_boleta(company):
    partner = PartnerFactory(company=company)
    resma = ProductFactory(company=company, code="PAP-500", unit_price=Decimal("4290"))
    libro = ProductFactory(company=company, code="LIB-1", unit_price=Decimal(10000), is_exempt=True)
    lines = [{"product": "PAP-500", "quantity": 1}, {"product": "LIB-1", "quantity": 1}]

    factura = _create(company, partner=partner.pk, lines=lines)
    boleta = _create(company, tipo_dte=39, lines=lines)

    assert [ln.unit_price for ln in factura.lines.all()] == [resma.unit_price, libro.unit_price]
    assert [ln.unit_price for ln in boleta.lines.all()] == [Decimal(5105), Decimal(10000)]
    assert (factura.monto_neto, factura.iva) == (4290, 815)
    assert boleta.monto_total == 15105


def test_the_form_says_whether_prices_carry_iva(client, company, clerk):
    ProductFactory(company=company, code="PAP-500", unit_price=Decimal("4290"))
    client.force_login(clerk)
    page = client.get(reverse("erp:document_create")).content.decode()
    assert "Precios netos, sin IVA: el IVA se suma en el total.</p>" in page
    assert '"price": "4.290"' in page and '"gross": "5.105"' in page
    assert "A crédito y vacío: vence a 30 días." in page
    assert ">Sin descuento</option>" in page and "---------" not in page
    product_form = client.get(reverse("erp:product_create")).content.decode()
    assert (
        "Precio unitario neto" in product_form and "en boletas, con el IVA sumado" in product_form
    )
