"""The layout in headless Chromium on a laptop (1366 px) and a phone (390 px): every main page
fits the screen (no sideways scroll of the page: wide tables scroll inside their box), the
navigation fits one row on the laptop and folds behind a menu button on the phone, the
searchable pickers find a customer or a product by part of its name, RUT or code, the error pages
are Spanish and the favicon answers.

A screenshot of each main page at both widths goes to $SCREENSHOT_DIR (CI keeps them as
artifacts; .ci/run sets it), or to the test's temporary directory."""

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.pages import login
from tests.factories import PartnerFactory, ProductFactory, SalesDocumentFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
WIDTHS = (("1366", LAPTOP), ("390", PHONE))
LONG_NAME = "Distribuidora de Insumos Industriales y Agrícolas del Pacífico Sur Limitada"


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _fits(page) -> None:
    """Nothing wider than the viewport: the page itself never scrolls sideways."""
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth, document.body.scrollWidth]"
    )
    if widths[0] > widths[1]:
        culprits = page.evaluate(
            """() => Array.from(document.querySelectorAll("body *"))
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                .slice(0, 8)
                .map(e => e.tagName + "." + e.className + "#" + e.id + " "
                     + Math.round(e.getBoundingClientRect().right))"""
        )
        raise AssertionError(f"{page.url} is {widths[0]}px wide at {widths[1]}px: {culprits}")


def _office(company, clerk, sii_key, monkeypatch):
    """A company with what an office has after a few weeks: customers with long names,
    products, drafts and issued documents, purchases, suppliers' documents waiting for a
    decision and an F29 computed."""
    from dte import receiving
    from dte.services import dte_issue
    from erp.models import PurchaseDocument
    from f29.services import f29_compute
    from tests.dte.test_received_web import confirm, receive_from
    from tests.dte.test_received_web import make_supplier as supplier

    today = timezone.localdate()
    customers = [
        PartnerFactory(company=company, rut="96790240-3", razon_social=LONG_NAME),
        PartnerFactory(company=company, rut="77001234-1", razon_social="Ferretería El Martillo"),
        PartnerFactory(company=company, rut="76543210-3", razon_social="Librería Nacional SpA"),
    ]
    products = [
        ProductFactory(company=company, code="SERV-001", name="Asesoría contable mensual"),
        ProductFactory(company=company, code="PAP-500", name="Resma de papel carta 500 hojas"),
        ProductFactory(company=company, code="TON-85A", name="Tóner HP 85A original"),
    ]
    issued = None
    for n, customer in enumerate(customers):
        net = 10_374_000 * (n + 1)
        doc = SalesDocumentFactory(
            company=company,
            partner=customer,
            fecha_emision=today,
            monto_neto=net,
            iva=net * 19 // 100,
            monto_total=net + net * 19 // 100,
        )
        doc.lines.update(unit_price=net, amount=net, name="Asesoría contable y tributaria anual")
        if n < 2:
            issued = dte_issue(document=doc, actor=clerk)
    monkeypatch.setattr(receiving, "confirm_with_sii", lambda received_id, **kw: "")
    for row in receive_from(supplier(sii_key), company, count=2):
        confirm(row, days_left=1 if row.folio % 2 else 6)
    PurchaseDocument.objects.create(
        company=company,
        tipo_doc=33,
        folio=98765,
        partner=customers[0],
        rut_emisor=customers[0].rut,
        fecha=today,
        periodo=today.replace(day=1),
        monto_neto=1_000_000,
        iva_recuperable=190_000,
        monto_total=1_190_000,
    )
    period = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    f29_compute(company=company, periodo=period, actor=clerk, ppm_rate=Decimal("0.25"))
    return {"customers": customers, "products": products, "dte": issued, "period": period}


def _main_pages(data) -> dict[str, str]:
    period = f"{data['period']:%Y-%m}"
    return {
        "inicio": "/",
        "clientes": "/clientes/",
        "productos": "/productos/",
        "documentos": "/documentos/",
        "nuevo-documento": "/documentos/nuevo/",
        "documento": f"/documentos/{data['dte'].sales_document_id}/",
        "compras": "/compras/",
        "recibidos": "/recibidos/",
        "f29": "/f29/",
        "f29-detalle": f"/f29/{period}/",
        "folios-y-certificados": "/folios-y-certificados/",
    }


def test_main_pages_fit_laptop_and_phone_with_a_usable_navigation(
    page, live_server, clerk, issuer, sii_key, monkeypatch, shots
):
    data = _office(issuer, clerk, sii_key, monkeypatch)
    login(page, live_server, clerk)
    for name, path in _main_pages(data).items():
        for width, viewport in WIDTHS:
            page.set_viewport_size(viewport)
            response = page.goto(f"{live_server.url}{path}")
            assert response is not None and response.status == 200, (path, response)
            _fits(page)
            nav = page.locator(".main-nav")
            toggle = page.locator("#nav-toggle")
            if viewport is LAPTOP:
                # One row: every visible entry of the bar on the bar's first line.
                expect(toggle).to_be_hidden()
                tops = nav.locator(":scope > a, :scope > details > summary").evaluate_all(
                    "els => els.map(e => Math.round(e.getBoundingClientRect().top))"
                )
                assert len(set(tops)) == 1, (path, tops)
                bar = page.locator(".topbar").bounding_box()
                assert bar is not None and bar["height"] < 70, (path, bar)
                company = page.locator(".company-name, #company-switch").first.bounding_box()
                assert company is not None and company["x"] + company["width"] <= 1366
            else:
                expect(nav).to_be_hidden()
                expect(toggle).to_have_attribute("aria-expanded", "false")
            page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)

    # On the phone the menu button opens the navigation (mouse or keyboard) and it works.
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/")
    toggle = page.locator("#nav-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".main-nav")).to_be_visible()
    _fits(page)
    page.screenshot(path=str(shots / "menu-abierto-390.png"), full_page=True)
    page.locator(".main-nav a", has_text="Productos").click()
    page.wait_for_url(f"{live_server.url}/productos/")
    expect(page.locator("#nav-toggle")).to_have_attribute("aria-expanded", "false")
    page.focus("#nav-toggle")
    page.keyboard.press("Enter")
    expect(page.locator(".main-nav")).to_be_visible()
    expect(page.locator('.main-nav a[aria-current="page"]')).to_have_text("Productos")
    page.keyboard.press("Escape")
    expect(page.locator(".main-nav")).to_be_hidden()
    # "Más" holds the less-used entries, on the phone too.
    toggle.click()
    page.locator(".nav-more summary").click()
    page.locator(".nav-more a", has_text="Folios y certificados").click()
    page.wait_for_url(f"{live_server.url}/folios-y-certificados/")

    # On the laptop "Más" drops down over the page, and closes with Escape.
    page.set_viewport_size(LAPTOP)
    page.goto(f"{live_server.url}/")
    page.locator(".nav-more summary").click()
    token = page.locator(".nav-more a", has_text="Token API")
    expect(token).to_be_visible()
    page.screenshot(path=str(shots / "menu-mas-1366.png"))
    page.keyboard.press("Escape")
    expect(token).to_be_hidden()
    page.locator(".nav-more summary").click()
    page.locator(".nav-more a", has_text="API").first.click()
    page.wait_for_url(f"{live_server.url}/api/docs/")
    page.goto(f"{live_server.url}/")


def test_searchable_pickers_find_customers_and_products(page, live_server, clerk, issuer, shots):
    from erp.models import SalesDocument

    customer = PartnerFactory(company=issuer, rut="96790240-3", razon_social=LONG_NAME)
    PartnerFactory(company=issuer, rut="77001234-1", razon_social="Ferretería El Martillo")
    ProductFactory(company=issuer, code="SERV-001", name="Asesoría contable", unit_price=45000)
    toner = ProductFactory(
        company=issuer, code="TON-85A", name="Tóner HP 85A", unit_price=Decimal(18990)
    )
    login(page, live_server, clerk)
    for width, viewport in WIDTHS:
        page.set_viewport_size(viewport)
        page.goto(f"{live_server.url}/documentos/nuevo/")
        box = page.locator('input[role="combobox"][data-picker-for="partner"]')
        # Part of the name, any accents and case: one match, picked with the mouse.
        box.fill("pacifico")
        listbox = page.locator(".picker-list:visible")
        expect(listbox.get_by_role("option")).to_have_count(1)
        page.screenshot(path=str(shots / f"picker-abierto-{width}.png"))
        listbox.get_by_role("option", name=LONG_NAME, exact=False).click()
        assert page.eval_on_selector("select[name=partner]", "s => s.value") == str(customer.pk)
        expect(box).to_have_value(f"{LONG_NAME} (96.790.240-3)")
        # By RUT as Chileans write it, with the keyboard.
        box.fill("77.001")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        assert page.eval_on_selector("select[name=partner]", "s => s.value") != str(customer.pk)
        expect(box).to_have_value("Ferretería El Martillo (77.001.234-1)")
        _fits(page)
        page.screenshot(path=str(shots / f"picker-{width}.png"), full_page=True)

    # A product by its code in a line added later: the line is filled from the product.
    page.set_viewport_size(LAPTOP)
    page.goto(f"{live_server.url}/documentos/nuevo/")
    page.locator('[data-picker-for="partner"]').fill("martillo")
    page.keyboard.press("Enter")
    page.click("#add-line")
    product_box = page.locator('[role="combobox"][data-picker-for="lines-1-product"]')
    expect(product_box).to_be_focused()
    product_box.fill("85a")
    page.keyboard.press("Enter")
    assert page.eval_on_selector("select[name=lines-1-product]", "s => s.value") == str(toner.pk)
    expect(page.locator("input[name=lines-1-name]")).to_have_value("Tóner HP 85A")
    page.fill("input[name=lines-1-quantity]", "2")
    page.locator("tr.line-row").first.locator(".remove-row").click()
    expect(page.locator('#totals [data-total="monto_total"]')).to_have_text("$ 45.196")
    page.click("button.primary[type=submit]")
    page.wait_for_url(f"{live_server.url}/documentos/*/")
    document = SalesDocument.objects.get(company=issuer)
    assert document.partner.razon_social == "Ferretería El Martillo"
    assert [line.name for line in document.lines.all()] == ["Tóner HP 85A"]


def test_error_pages_are_spanish_and_the_favicon_answers(page, live_server, viewer, shots):
    login(page, live_server, viewer)
    for width, viewport in WIDTHS:
        page.set_viewport_size(viewport)
        response = page.goto(f"{live_server.url}/no-existe/")
        assert response is not None and response.status == 404
        expect(page.locator("h1")).to_have_text("Página no encontrada")
        _fits(page)
        page.screenshot(path=str(shots / f"error-404-{width}.png"), full_page=True)
        # A viewer may not create documents: the Spanish 403, with the site around it.
        response = page.goto(f"{live_server.url}/documentos/nuevo/")
        assert response is not None and response.status == 403
        expect(page.locator("h1")).to_have_text("Acceso denegado")
        assert "Su rol no permite esta acción." in page.inner_text("main")
        _fits(page)
        page.screenshot(path=str(shots / f"error-403-{width}.png"), full_page=True)

    icon = page.locator('link[rel="icon"]').get_attribute("href")
    assert icon and icon.endswith("favicon.svg")
    answer = page.request.get(f"{live_server.url}/favicon.ico")
    assert answer.ok and answer.url.endswith(icon)
    assert answer.headers["content-type"].startswith("image/svg+xml")
    assert answer.body().startswith(b"<svg")
