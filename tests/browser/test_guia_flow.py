"""A guía de despacho in headless Chromium: the traslado block appears for a guía only, a
traslado interno goes to the company itself without prices, and it is issued."""

import pytest

from tests.browser.pages import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1366, 390])
def test_traslado_interno_without_prices(page, live_server, clerk, issuer, width):
    from erp.models import SalesDocument

    page.set_viewport_size({"width": width, "height": 900})
    login(page, live_server, clerk)
    page.goto(f"{live_server.url}/documentos/nuevo/")
    guia = page.locator("#guia-fields")
    assert guia.is_hidden()
    assert page.inner_text("#price-basis").startswith("Precios netos")
    page.select_option("select[name=tipo_dte]", "39")
    assert page.inner_text("#price-basis").startswith("Precios con IVA incluido")
    page.select_option("select[name=tipo_dte]", "52")
    assert guia.is_visible()

    page.select_option("select[name=ind_traslado]", "5")
    page.select_option("select[name=tipo_despacho]", "3")
    page.fill("input[name=patente]", "kj-tr-45")
    page.fill("input[name=dir_destino]", "Av. Vicuña Mackenna 3000")
    page.fill("input[name=comuna_destino]", "San Joaquín")
    page.fill("input[name=lines-0-name]", "Estantería metálica")
    page.fill("input[name=lines-0-quantity]", "3")
    page.click("button.primary[type=submit]")
    page.wait_for_url(f"{live_server.url}/documentos/*/")
    document = SalesDocument.objects.get(tipo_dte=52)
    assert (document.ind_traslado, document.partner, document.monto_total) == (5, None, 0)
    assert "La propia empresa" in page.inner_text("section.card.grid2")
    assert "5 · Traslado interno" in page.inner_text("#traslado")

    page.click("#issue-button")
    page.wait_for_selector("text=Documento emitido con folio 1")
    assert "Patente KJTR45" in page.inner_text("#traslado")
