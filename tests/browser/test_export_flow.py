"""A factura de exportación in US dollars issued from the web form, in headless Chromium."""

import pytest
from playwright.sync_api import expect

from tests.browser.pages import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_factura_de_exportacion_in_dollars(page, live_server, clerk, issuer):
    from dte.models import Dte
    from erp import services as erp_services
    from erp.models import SalesDocument

    buyer = erp_services.partner_create(
        company=issuer,
        actor=None,
        data={
            "rut": "55555555-5",
            "razon_social": "Pacific Fresh Imports LLC",
            "num_id": "US-EIN 12-3456789",
            "nacionalidad": "225",
            "direccion": "1200 Harbor Blvd",
            "ciudad": "Los Angeles",
        },
    )
    login(page, live_server, clerk)
    page.goto(f"{live_server.url}/documentos/nuevo/")
    assert page.locator("#export-fields").is_hidden()
    page.select_option("select[name=tipo_dte]", "110")
    assert page.locator("#export-fields").is_visible()
    assert "moneda de la operación" in page.inner_text("#price-basis")
    page.select_option("select[name=partner]", str(buyer.pk))
    page.select_option("select[name=forma_pago]", "")
    page.select_option("select[name=moneda]", "DOLAR USA")
    page.fill("input[name=tipo_cambio]", "943,57")
    page.select_option("select[name=forma_pago_exportacion]", "1")
    page.select_option("select[name=aduana-modalidad_venta]", "1")
    page.select_option("select[name=aduana-clausula_venta]", "5")
    page.fill("input[name=aduana-total_clausula]", "184,50")
    page.select_option("select[name=aduana-via_transporte]", "1")
    page.select_option("select[name=aduana-puerto_embarque]", "906")
    page.fill("input[name=aduana-total_bultos]", "1")
    page.select_option("select[name=aduana-pais_receptor]", "225")
    page.fill("input[name=lines-0-name]", "Uva de mesa Red Globe")
    page.fill("input[name=lines-0-quantity]", "10")
    page.fill("input[name=lines-0-unit]", "U")
    page.fill("input[name=lines-0-unit_price]", "18,45")
    expect(page.locator('#totals [data-total="monto_total"]')).to_have_text(
        "US$ 184,50 ($ 174.089)"
    )
    page.click("button.primary[type=submit]")
    page.wait_for_url(f"{live_server.url}/documentos/*/")
    document = SalesDocument.objects.get(tipo_dte=110)
    assert (document.moneda, str(document.monto_total_moneda)) == ("DOLAR USA", "184.5000")
    assert document.monto_total == 174_089
    assert page.inner_text('[data-total="monto_total_moneda"]') == "US$ 184,50"

    page.click("#issue-button")
    page.wait_for_selector("text=Documento emitido con folio 1")
    dte = Dte.objects.get(tipo_dte=110)
    assert b"<MntTotal>184.5</MntTotal>" in bytes(dte.xml)
    assert b"<TpoMoneda>DOLAR USA</TpoMoneda>" in bytes(dte.xml)
