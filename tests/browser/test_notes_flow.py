"""A nota de crédito from its factura, in headless Chromium on a laptop and on a phone: prepared
from the factura's page, adjusted to the returned quantity, refused while it exceeds the factura,
issued once it fits, and listed on the factura with what remains."""

from decimal import Decimal

import pytest

from tests.browser.pages import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1366, 390])
def test_nota_de_credito_from_its_factura(page, live_server, clerk, issuer, width):
    from django.utils import timezone

    from dte import services
    from erp import services as erp_services
    from erp.models import SalesDocument
    from tests.factories import PartnerFactory

    page.set_viewport_size({"width": width, "height": 900})
    customer = PartnerFactory(company=issuer, razon_social="Constructora Andes SpA")
    factura = erp_services.sales_document_create(
        company=issuer,
        actor=clerk,
        data={
            "tipo_dte": 33,
            "fecha_emision": timezone.localdate(),
            "partner": customer.pk,
            "global_discount_type": "%",
            "global_discount_value": Decimal(3),
            "lines": [{"name": "Licencia", "quantity": Decimal(4), "unit_price": Decimal(50000)}],
        },
    )
    services.dte_issue(document=factura, actor=clerk)
    factura.refresh_from_db()
    assert factura.monto_total == 230_860  # 200.000 − 3 % + IVA

    login(page, live_server, clerk)
    page.goto(f"{live_server.url}/documentos/{factura.pk}/")
    page.select_option("#note-form select[name=tipo_dte]", "61")
    page.select_option("#note-form select[name=cod_ref]", "3")
    page.fill("#note-form input[name=razon_ref]", "Devolución de licencias")
    page.click("#note-button")
    page.wait_for_url(f"{live_server.url}/documentos/*/editar/")
    nota = SalesDocument.objects.get(tipo_dte=61)

    # Ten licences returned of four: more than the factura.
    page.fill("input[name=lines-0-quantity]", "10")
    page.click("button.primary[type=submit]")
    page.wait_for_url(f"{live_server.url}/documentos/{nota.pk}/")
    assert "excede lo que queda" in page.inner_text("#issue-problems")
    page.click("#issue-button")
    page.wait_for_selector("text=No se pudo emitir: La nota de crédito ($ 577.150) excede")
    nota.refresh_from_db()
    assert nota.is_draft and nota.folio is None

    # One licence returned: it fits, carries the 3 % discount and is issued.
    page.goto(f"{live_server.url}/documentos/{nota.pk}/editar/")
    page.fill("input[name=lines-0-quantity]", "1")
    page.click("button.primary[type=submit]")
    page.wait_for_url(f"{live_server.url}/documentos/{nota.pk}/")
    assert page.locator("#issue-problems").count() == 0
    page.click("#issue-button")
    page.wait_for_selector("text=Documento emitido con folio 1")

    page.goto(f"{live_server.url}/documentos/{factura.pk}/")
    assert "Nota de crédito electrónica N° 1" in page.inner_text("#notes-table")
    assert page.inner_text("#notes-remaining") == "$ 173.145"  # 230.860 − 57.715
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth") or width > 600
