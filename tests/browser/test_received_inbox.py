"""The "Recibidos" inbox in headless Chromium, on a laptop (1366 px) and a phone (390 px): upload
a supplier's envelope, open the document, accept it. The SII is stubbed (its confirmation is
recorded beforehand, its RCV takes the acceptance): tests/dte/sii/ cover the live exchange.
Screenshots go to /tmp/received-*.png; no page scrolls sideways on the phone."""

import pytest

from tests.browser.pages import login
from tests.dte.test_received_web import confirm, make_supplier, stub_rcv, supplier_envelope

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def _fits(page) -> None:
    """Nothing wider than the viewport: the page never scrolls sideways."""
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} overflows by {overflow}px at {page.viewport_size}"


def _shot(page, name: str) -> None:
    page.screenshot(path=f"/tmp/received-{name}.png", full_page=True)


def test_upload_open_and_accept_on_laptop_and_phone(
    page, live_server, clerk, issuer, sii_key, monkeypatch
):
    from dte import receiving
    from dte.models import ReceivedDte

    rcv = stub_rcv(monkeypatch)
    # The background confirmation after intake stays offline: the test records the SII's DOK.
    monkeypatch.setattr(receiving, "confirm_with_sii", lambda received_id, **kw: "")
    envelope = supplier_envelope(make_supplier(sii_key), issuer, count=2)

    login(page, live_server, clerk)
    for name, viewport in (("inbox-empty-1366", LAPTOP), ("inbox-empty-390", PHONE)):
        page.set_viewport_size(viewport)
        page.goto(f"{live_server.url}/recibidos/")
        assert "No hay documentos recibidos." in page.inner_text(".received-table")
        _fits(page)
        _shot(page, name)

    # Upload on the laptop: each document's outcome at once.
    page.set_viewport_size(LAPTOP)
    page.click("#received-upload summary")
    page.set_input_files(
        "#received-upload input[name=files]",
        files=[{"name": "envio-proveedor.xml", "mimeType": "application/xml", "buffer": envelope}],
    )
    page.click("#received-upload #upload-button")
    page.wait_for_selector("#upload-result")
    assert page.locator('#upload-documents tr[data-status="received"]').count() == 2
    assert "Recepción: 2 recibidos." in page.inner_text(".flash")
    _fits(page)
    _shot(page, "upload-1366")

    first, second = ReceivedDte.objects.filter(company=issuer).order_by("folio")
    confirm(first, days_left=1)  # the SII has it; one day left: the inbox warns
    confirm(second)

    page.goto(f"{live_server.url}/recibidos/")
    row = page.locator(f'tr[data-id="{first.pk}"]')
    assert "⚠ 1 día" in row.inner_text() and "77.123.456-9" in row.inner_text()
    assert "El SII lo tiene (DOK)" in row.inner_text()
    _fits(page)
    _shot(page, "inbox-1366")

    # On the phone: the inbox as cards, then the document, then its acceptance.
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/recibidos/")
    _fits(page)
    _shot(page, "inbox-390")
    page.locator(f'tr[data-id="{first.pk}"] td[data-label="Folio"] a').click()
    page.wait_for_url(f"{live_server.url}/recibidos/{first.pk}/")
    assert f"N° {first.folio}" in page.inner_text("h1")
    assert page.inner_text("#received-status") == "Recibido"
    assert "Timbre (TED)" in page.inner_text("#received-checks")
    _fits(page)
    _shot(page, "detail-390")

    pdf = page.context.request.get(f"{live_server.url}/recibidos/{first.pk}/pdf/")
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")

    page.click("#accept-button")
    page.wait_for_selector("text=Documento aceptado.")
    assert page.inner_text("#received-status") == "Aceptado"
    assert "Aceptado" in page.inner_text("#received-status")
    assert rcv == [(first.pk, "ACD")]
    first.refresh_from_db()
    assert first.status == "accepted" and first.purchase_id
    _fits(page)
    _shot(page, "accepted-390")

    page.set_viewport_size(LAPTOP)
    page.reload()
    assert "Respuesta comercial (ResultadoDTE)" in page.inner_text("#received-files")
    _fits(page)
    _shot(page, "accepted-1366")


def test_a_large_upload_shows_its_batch_on_laptop_and_phone(
    page, live_server, clerk, issuer, sii_key, monkeypatch, eager_tasks
):
    import io
    import zipfile

    from dte import receiving

    monkeypatch.setattr(receiving, "confirm_with_sii", lambda received_id, **kw: "")
    supplier = make_supplier(sii_key)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(receiving.INLINE_FILES + 2):
            archive.writestr(f"envio-{n}.xml", supplier_envelope(supplier, issuer))

    login(page, live_server, clerk)
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/recibidos/")
    page.click("#received-upload summary")
    page.set_input_files(
        "#received-upload input[name=files]",
        files=[{"name": "junio.zip", "mimeType": "application/zip", "buffer": buffer.getvalue()}],
    )
    page.click("#received-upload #upload-button")
    page.wait_for_url(f"{live_server.url}/recibidos/cargas/*/")
    page.wait_for_selector("#batch-documents", timeout=60_000)
    assert "22 documentos: 22 recibidos" in page.inner_text("#batch-counts")
    assert page.locator('#batch-documents tr[data-status="received"]').count() == 22
    _fits(page)
    _shot(page, "batch-390")
    page.set_viewport_size(LAPTOP)
    page.reload()
    _fits(page)
    _shot(page, "batch-1366")
