"""A liquidación factura (43) from the web form, in headless Chromium on a laptop and on a
phone: the liquidated-document column and the commissions appear for a 43 only, a nota de
crédito liquidated subtracts, a commission given as a rate is computed with its IVA in the live
totals, and the draft shows its commissions and is issued.

A screenshot of the form and of the issued document at each width goes to $SCREENSHOT_DIR (CI
keeps them as artifacts), or to the test's temporary directory."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.pages import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIQUIDACION = re.compile(r"\bis-liquidacion\b")


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _fits(page) -> None:
    """Nothing wider than the viewport: the page itself never scrolls sideways."""
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if widths[0] > widths[1]:
        culprits = page.evaluate(
            """() => Array.from(document.querySelectorAll("body *"))
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                .slice(0, 8)
                .map(e => e.tagName + "." + e.className + "#" + e.id + " "
                     + Math.round(e.getBoundingClientRect().right))"""
        )
        raise AssertionError(f"{page.url} is {widths[0]}px wide at {widths[1]}px: {culprits}")


@pytest.mark.parametrize("width", [1366, 390])
def test_liquidacion_factura_with_a_commission(page, live_server, clerk, issuer, shots, width):
    from dte.models import Dte
    from erp.models import SalesDocument
    from tests.factories import PartnerFactory

    mandante = PartnerFactory(
        company=issuer,
        rut="96790240-3",
        razon_social="Distribuidora Los Andes S.A.",
        giro="Venta al por mayor",
        direccion="Av. Apoquindo 4501",
        comuna="Las Condes",
        ciudad="Santiago",
    )
    page.set_viewport_size({"width": width, "height": 900})
    login(page, live_server, clerk)
    page.goto(f"{live_server.url}/documentos/nuevo/")

    # A factura (33): neither the liquidated-document column nor the commissions.
    liquidacion = page.locator("#liquidacion-fields")
    # On a phone the lines are cards without a header row: each cell carries its column's name.
    column = page.locator("#line-rows tr.line-row").first.locator("td.liq-col")
    header = page.locator("#lines thead th.liq-col")
    expect(page.locator("#document-form")).not_to_have_class(LIQUIDACION)
    expect(liquidacion).to_be_hidden()
    expect(column).to_be_hidden()
    expect(header).to_be_hidden()
    expect(page.locator("select[name=lines-0-tipo_doc_liq]")).to_be_hidden()
    expect(page.locator('#totals [data-total="comisiones"]')).to_be_hidden()

    # A liquidación factura (43): both appear.
    page.select_option("select[name=tipo_dte]", "43")
    expect(page.locator("#document-form")).to_have_class(LIQUIDACION)
    expect(liquidacion).to_be_visible()
    expect(column).to_be_visible()
    expect(column).to_have_attribute("data-label", "Doc. liquidado")
    if width > 600:
        expect(header).to_be_visible()
        expect(header).to_have_text("Doc. liquidado")
    expect(page.locator("select[name=lines-0-tipo_doc_liq]")).to_be_visible()
    expect(page.locator('#totals [data-total="comisiones"]')).to_be_visible()
    # No discounts on a 43 (LIQType has none), and its own words on the amounts.
    expect(page.locator("input[name=lines-0-discount_pct]")).to_be_hidden()
    expect(page.locator("input[name=global_discount_value]")).to_be_hidden()
    expect(page.locator("#price-basis")).to_contain_text("ventas liquidadas")

    page.select_option("select[name=partner]", str(mandante.pk))
    # The sales of the month with a factura, and a return with a nota de crédito: it subtracts.
    page.select_option("select[name=lines-0-tipo_doc_liq]", "33")
    page.fill("input[name=lines-0-name]", "Ventas con factura, noviembre")
    page.fill("input[name=lines-0-quantity]", "1")
    page.fill("input[name=lines-0-unit_price]", "1.500.000")
    page.click("#add-line")
    page.select_option("select[name=lines-1-tipo_doc_liq]", "61")
    page.fill("input[name=lines-1-name]", "Devolución")
    page.fill("input[name=lines-1-quantity]", "1")
    page.fill("input[name=lines-1-unit_price]", "40.000")
    # A commission of 5 % of the sales: 5 % of 1.460.000 = 73.000, with IVA 13.870.
    page.click("#add-commission")
    expect(page.locator("input[name=commissions-0-glosa]")).to_be_focused()
    expect(page.locator("select[name=commissions-0-tipo_movim]")).to_have_value("C")
    page.fill("input[name=commissions-0-glosa]", "Comisión 5 %")
    page.fill("input[name=commissions-0-tasa]", "5")

    expect(page.locator('#totals [data-total="comisiones"]')).to_have_text("−$ 86.870")
    expect(page.locator('#totals [data-total="monto_total"]')).to_have_text("$ 1.650.530")
    expect(page.locator("#line-rows .line-amount")).to_have_text(["$ 1.500.000", "-$ 40.000"])
    expect(page.locator("#totals-error")).to_be_hidden()
    _fits(page)
    if width > 600:  # a laptop's narrower window: the commissions box shrinks with the card
        for narrower in (1024, 800):
            page.set_viewport_size({"width": narrower, "height": 900})
            _fits(page)
        page.set_viewport_size({"width": width, "height": 900})
    page.screenshot(path=str(shots / f"liquidacion-formulario-{width}.png"), full_page=True)

    page.click("button.primary[type=submit]")
    page.wait_for_url(f"{live_server.url}/documentos/*/")
    document = SalesDocument.objects.get(tipo_dte=43)
    assert (document.monto_neto, document.iva) == (1_460_000, 277_400)
    assert (document.comision_neto, document.comision_iva) == (73_000, 13_870)
    assert document.monto_total == 1_650_530
    assert [line.tipo_doc_liq for line in document.lines.all()] == ["33", "61"]
    assert [line.amount for line in document.lines.all()] == [1_500_000, -40_000]

    commissions = page.locator("#commissions")
    expect(commissions).to_be_visible()
    expect(commissions).to_contain_text("Comisión 5 %")
    expect(commissions).to_contain_text("$ 73.000")
    expect(commissions).to_contain_text("$ 13.870")
    expect(page.locator("main")).to_contain_text("61 · Nota de crédito electrónica")
    expect(page.locator('[data-total="comision_neto"]')).to_have_text("−$ 73.000")
    expect(page.locator('[data-total="comision_iva"]')).to_have_text("−$ 13.870")
    expect(page.locator('[data-total="monto_total"]')).to_have_text("$ 1.650.530")
    if width < 600:
        _fits(page)

    page.click("#issue-button")
    page.wait_for_selector("text=Documento emitido con folio 1")
    dte = Dte.objects.get(tipo_dte=43)
    assert (dte.folio, dte.monto_total) == (1, 1_650_530)
    document.refresh_from_db()
    assert document.state == "issued"
    assert b"<TpoDocLiq>61</TpoDocLiq>" in bytes(dte.xml)
    assert b"<ValComNeto>73000</ValComNeto>" in bytes(dte.xml)
    if width < 600:
        _fits(page)
    page.screenshot(path=str(shots / f"liquidacion-emitida-{width}.png"), full_page=True)
