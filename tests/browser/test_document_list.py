"""The document list in headless Chromium, on a laptop (1366 px) and a phone (390 px): a clerk
finds a document by typing its folio, its customer's RUT (with or without dots) or part of the
name, then downloads the filtered list as CSV and as XLSX and opens the workbook."""

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests.browser.pages import login
from tests.factories import PartnerFactory, SalesDocumentFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def _documents(company):
    from erp.models import DocumentState

    andes = PartnerFactory(
        company=company, rut="96790240-3", razon_social="Distribuidora Los Andes S.A."
    )
    sur = PartnerFactory(company=company, rut="77001234-1", razon_social="Ferretería del Sur Ltda.")
    issued = DocumentState.ISSUED
    for folio, partner, total in ((101, andes, 1_234_567), (102, sur, 59_500), (103, sur, 11_900)):
        SalesDocumentFactory(
            company=company,
            partner=partner,
            state=issued,
            folio=folio,
            fecha_emision=date(2026, 11, folio - 90),
            monto_neto=round(total / 1.19),
            iva=total - round(total / 1.19),
            monto_total=total,
        )
    SalesDocumentFactory(company=company, partner=sur, monto_total=2_380)  # a draft


def _search(page, text: str) -> None:
    page.fill("input[name=q]", text)
    page.click("#search-button")
    page.wait_for_load_state("domcontentloaded")


def _folios(page) -> list[str]:
    return [t.strip() for t in page.locator("table.documents-table td.folio").all_inner_texts()]


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366", "390"])
def test_search_and_export_the_list(page, live_server, clerk, company, viewport):
    _documents(company)
    page.set_viewport_size(viewport)
    login(page, live_server, clerk)
    page.goto(f"{live_server.url}/documentos/")
    expect(page.locator("table.documents-table tbody tr")).to_have_count(4)
    expect(page.locator(".pager-range")).to_have_text("1–4 de 4")

    _search(page, "102")  # a folio
    assert _folios(page) == ["102"]
    _search(page, "96.790.240-3")  # a RUT as printed
    assert _folios(page) == ["101"]
    expect(page.locator("table.documents-table tbody tr").first).to_contain_text("$ 1.234.567")
    _search(page, "77001234-1")  # a RUT without dots
    assert sorted(_folios(page)) == ["102", "103", "—"]
    _search(page, "ferreter")  # part of the name
    assert sorted(_folios(page)) == ["102", "103", "—"]
    page.select_option("select[name=state]", "issued")
    page.click("#search-button")
    page.wait_for_load_state("domcontentloaded")
    assert sorted(_folios(page)) == ["102", "103"]

    # The export is the filtered list (search and state), sorted as shown.
    if viewport is LAPTOP:
        page.locator("th a[data-sort=total]").click()
    else:  # the phone shows rows as cards, without headers: the sort is a select
        page.select_option("#sort-by", "total")
    page.wait_for_url("**sort=total**")
    assert _folios(page) == ["103", "102"]
    with page.expect_download() as download:
        page.click("#export-csv")
    assert download.value.suggested_filename.endswith(".csv")
    text = Path(download.value.path()).read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert [r[2] for r in rows[1:]] == ["103", "102"]
    assert rows[1][5] == "Ferretería del Sur Ltda." and rows[1][-1] == "11900"

    with page.expect_download() as download:
        page.click("#export-xlsx")
    assert download.value.suggested_filename.endswith(".xlsx")
    # The saved download has no extension, which openpyxl would refuse: read its bytes.
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 3 and values[0][2] == "Folio"
    assert [v[2] for v in values[1:]] == [103, 102]
    assert [v[11] for v in values[1:]] == [11_900, 59_500]  # amounts as numbers
    assert values[2][3].date() == date(2026, 11, 12)
    assert sheet.cell(row=2, column=12).number_format == '"$ "#,##0'

    # "Seleccionar todo" marks the page's rows and wakes the bulk actions up.
    expect(page.locator("#bulk-print")).to_be_disabled()
    page.check("#select-all")
    expect(page.locator("#selected-count")).to_have_text("2 documentos seleccionados")
    expect(page.locator("#bulk-print")).to_be_enabled()
    expect(page.locator("#bulk-email")).to_be_enabled()
    page.locator("input[name=ids]").first.uncheck()
    expect(page.locator("#selected-count")).to_have_text("1 documento seleccionado")
