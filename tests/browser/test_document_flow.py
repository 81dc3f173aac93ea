"""End to end in headless Chromium (Debian's): log in, create a partner, then a draft factura
with two lines, and see the live and the saved total on the page."""

import pytest
from playwright.sync_api import expect

from tests.browser.pages import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_partner_and_factura_with_two_lines(page, live_server, clerk, issuer):
    company = issuer
    from erp.models import Partner, SalesDocument

    login(page, live_server, clerk)

    page.goto(f"{live_server.url}/clientes/nuevo/")
    page.fill("input[name=rut]", "96.790.240-3")
    page.fill("input[name=razon_social]", "Distribuidora Los Andes S.A.")
    page.fill("input[name=giro]", "Mayorista")
    page.fill("input[name=direccion]", "Av. Apoquindo 4500")
    page.fill("input[name=comuna]", "Las Condes")
    page.click("button.primary[type=submit]")
    page.wait_for_url(f"{live_server.url}/clientes/")
    assert page.locator("td", has_text="96.790.240-3").count() == 1
    partner = Partner.objects.get(company=company)
    assert partner.rut == "96790240-3"

    page.goto(f"{live_server.url}/documentos/nuevo/")
    page.select_option("select[name=tipo_dte]", "33")
    page.select_option("select[name=partner]", str(partner.pk))
    page.fill("input[name=lines-0-name]", "Consultoría")
    page.fill("input[name=lines-0-quantity]", "2")
    page.fill("input[name=lines-0-unit_price]", "45000")
    page.click("#add-line")
    page.fill("input[name=lines-1-name]", "Licencia anual")
    page.fill("input[name=lines-1-quantity]", "1")
    page.fill("input[name=lines-1-unit_price]", "120000")
    page.fill("input[name=lines-1-discount_pct]", "10")
    total = page.locator('#totals [data-total="monto_total"]')
    # Live totals, computed by the server as the user types: 198.000 + 19 % IVA.
    expect(total).to_have_text("$ 235.620")
    assert page.locator('[data-total="iva"]').inner_text() == "$ 37.620"
    assert page.locator("tr.line-row .line-amount").nth(1).inner_text() == "$ 108.000"

    page.click("button.primary[type=submit]")
    page.wait_for_url(f"{live_server.url}/documentos/*/")
    assert total.inner_text() == "$ 235.620"
    document = SalesDocument.objects.get(company=company)
    assert document.monto_total == 235620 and document.lines.count() == 2
    assert "Factura electrónica" in page.inner_text("h1")

    # Issue it: folio 1 from the CAF, signed, with the XML ready to download.
    page.click("#issue-button")
    page.wait_for_selector("text=Documento emitido con folio 1")
    assert "N° 1" in page.inner_text("h1")
    with page.expect_download() as download:
        page.click("text=Descargar XML")
    assert download.value.suggested_filename == "DTE--76086428-5--33--1.xml"
    document.refresh_from_db()
    assert document.state == "issued" and document.folio == 1


@pytest.mark.poppler
def test_factura_and_boleta_pdfs_scan_and_their_qr_opens_the_document(
    page, live_server, clerk, issuer, settings
):
    """Issue a boleta and a factura in the UI, open each PDF from its page, scan the stamp and
    the QR as a phone would, and follow the QR to the public page."""
    from dte.models import Dte
    from tests.factories import PartnerFactory
    from tests.pdfscan import scan, ted_of

    settings.PUBLIC_BASE_URL = live_server.url
    partner = PartnerFactory(company=issuer, rut="96790240-3", razon_social="Los Andes S.A.")
    login(page, live_server, clerk)
    for tipo, name, price in ((39, "Café grano 1 kg", "11900"), (33, "Asesoría", "450000")):
        page.goto(f"{live_server.url}/documentos/nuevo/")
        page.select_option("select[name=tipo_dte]", str(tipo))
        if tipo == 33:
            page.select_option("select[name=partner]", str(partner.pk))
        page.fill("input[name=lines-0-name]", name)
        page.fill("input[name=lines-0-quantity]", "2")
        page.fill("input[name=lines-0-unit_price]", price)
        page.click("button.primary[type=submit]")
        page.wait_for_url(f"{live_server.url}/documentos/*/")
        page.click("#issue-button")
        page.wait_for_selector("text=Documento emitido con folio")
        dte = Dte.objects.get(company=issuer, tipo_dte=tipo)

        # "Ver PDF", fetched with the browser's session (headless Chromium has no PDF viewer).
        href = page.get_attribute("#pdf-link", "href")
        response = page.context.request.get(f"{live_server.url}{href}")
        assert response.status == 200 and response.headers["content-type"] == "application/pdf"
        codes = scan(response.body(), dpi=300)
        assert codes["pdf417"] == [ted_of(dte)]
        assert codes["qr"] == [f"{live_server.url}/v/{dte.public_token}/"]

        # The QR's page: no login needed (a fresh browser context), the document and its state.
        visitor = page.context.browser.new_context(locale="es-CL")
        public = visitor.new_page()
        public.goto(codes["qr"][0])
        assert f"N° {dte.folio}" in public.inner_text("h1")
        assert public.inner_text("#sii-status") == dte.get_status_display()
        pdf = public.request.get(f"{codes['qr'][0]}?descargar=pdf")
        assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
        visitor.close()


@pytest.mark.parametrize("width", [1366, 390])
def test_numbers_typed_the_chilean_way_give_the_right_line(page, live_server, clerk, issuer, width):
    """`2,5` × `1.000,50` is a line of $ 2.501 (2.501,25 rounded), and `1,000` is refused,
    on a laptop and on a phone."""
    from tests.factories import PartnerFactory

    page.set_viewport_size({"width": width, "height": 900})
    partner = PartnerFactory(company=issuer)
    login(page, live_server, clerk)
    page.goto(f"{live_server.url}/documentos/nuevo/")
    page.select_option("select[name=tipo_dte]", "33")
    page.select_option("select[name=partner]", str(partner.pk))
    page.fill("input[name=lines-0-name]", "Resma papel carta")
    page.fill("input[name=lines-0-quantity]", "2,5")
    page.fill("input[name=lines-0-unit_price]", "1.000,50")
    expect(page.locator("tr.line-row .line-amount").first).to_have_text("$ 2.501")
    page.fill("input[name=lines-0-unit_price]", "1,000")
    expect(page.locator("#totals-error")).to_contain_text("ambiguo")
    page.fill("input[name=lines-0-unit_price]", "1.000,50")
    page.click("button.primary[type=submit]")
    page.wait_for_url(f"{live_server.url}/documentos/*/")
    from erp.models import SalesDocument

    line = SalesDocument.objects.get(company=issuer).lines.get()
    assert (str(line.quantity.normalize()), str(line.unit_price.normalize())) == ("2.5", "1000.5")
