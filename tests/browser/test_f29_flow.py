"""The month's VAT in a real browser: import the SII's purchase register, compute the F29 from
the list page, open a box's trail, reconcile, and file the period."""

from datetime import date
from pathlib import Path

import pytest

from tests.browser.pages import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RCV = Path(__file__).resolve().parents[1] / "data" / "rcv"


def test_import_compute_trail_reconcile_and_file(page, live_server, admin_user, company):
    from erp.models import ClosedPeriod
    from f29.models import F29Return

    login(page, live_server, admin_user)
    page.goto(f"{live_server.url}/rcv/importar/")
    page.select_option("select[name=kind]", "compras")
    page.set_input_files("input[name=file]", str(RCV / "compras_registro_2026-10.csv"))
    page.click("#import-button")
    report = page.inner_text("#import-report")
    assert "11 nuevos" in report and "0 rechazados" in report

    page.goto(f"{live_server.url}/f29/")
    page.fill("input[name=periodo]", "10-2026")
    page.fill("input[name=ppm_rate]", "1,5")
    page.click("#compute-button")
    page.wait_for_url(f"{live_server.url}/f29/2026-10/")
    assert page.inner_text('[data-box="525"]') == "$ 1.520.000"
    assert page.inner_text('[data-box="535"]') == "$ 475.000"

    page.click('tr[data-code="525"] td.code a')
    page.wait_for_url(f"{live_server.url}/f29/2026-10/casilla/525/")
    assert "MAQUINARIAS DEL PACIFICO SPA" in page.inner_text(".trail-part")

    page.goto(f"{live_server.url}/f29/2026-10/conciliacion/?kind=compras")
    assert page.inner_text('#recon-summary tr[data-category="matched"] td.num') == "11"

    page.goto(f"{live_server.url}/f29/2026-10/")
    page.click("#review-button")
    page.wait_for_selector("#file-button")
    page.fill("input[name=folio_sii]", "8812345")
    page.click("#file-button")
    page.wait_for_selector("#reopen-button")
    assert page.inner_text("#f29-state") == "Presentado"
    f29 = F29Return.objects.get(company=company, periodo=date(2026, 10, 1))
    assert f29.state == "filed" and f29.folio_sii == "8812345"
    assert ClosedPeriod.objects.filter(company=company, periodo=f29.periodo).exists()
