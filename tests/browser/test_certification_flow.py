"""The SII certification (issue 17) in headless Chromium, on a laptop and on a phone: a company
administrator opens Más → Certificación SII, is told to upload the set de pruebas, uploads the
SII's example file with the day's dollar rate, sees the five sets with their atención numbers and
the plan's assumptions, starts the run, and follows it until everything was sent; once the SII
sandbox (served by the live server) has answered, the five sets show accepted, the muestras
impresas can be downloaded and the libros (stage 2) are listed.

A screenshot of what was read and of what was sent at each width goes to $SCREENSHOT_DIR (CI
keeps them as artifacts), or to the test's temporary directory."""

import io
import os
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.pages import login

SAMPLE = Path("/work/shared/sii/samples/certification/SIISetDePruebas_ejemplo.txt")
ATENCIONES = ["5120001", "5120004", "5120006", "5120007", "5120008"]
# The run issues ~20 documents and signs the libros in a background thread: generous waits.
RUN_TIMEOUT = 120_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not SAMPLE.exists(), reason="the shared set de pruebas is not available"),
]


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def sii(live_server, settings):
    """The client pointed at the SII sandbox served by the live server, with fast timings (as
    tests/dte/sii/conftest.py's fixture of the same name, which tests/browser/ does not see)."""
    settings.SII_ENV = "sandbox"
    settings.SII_SANDBOX_URL = f"{live_server.url}/_sii"
    settings.SII_TIMEOUT = 5
    settings.SII_BACKOFF_BASE = 0.01
    settings.SII_BACKOFF_MAX = 0.05
    settings.SII_POLL_INTERVAL = 0
    settings.SII_UPLOAD_GRACE = 0
    settings.SII_SANDBOX_POLLS_BEFORE_DONE = 1
    from django.core.cache import cache

    cache.clear()
    return settings


@pytest.fixture
def background_threads(monkeypatch):
    """The run in a background thread of the live server's process, as on a laptop without a
    broker (the suite otherwise runs background work inline, in the thread that started it):
    the page then shows the progress and follows it by itself."""
    from erp import background

    monkeypatch.setattr(background, "INLINE", False)


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
def test_an_administrator_certifies_from_the_file_to_the_sets_accepted(
    page, live_server, sii, issuer, admin_user, eager_tasks, background_threads, shots, width
):
    from dte.models import CertificationCase, CertificationRun, CertificationStatus, Dte
    from tests.dte.sii.test_flow import run_outbox

    phone = width < 600
    page.set_viewport_size({"width": width, "height": 900})
    login(page, live_server, admin_user)

    # Más → Certificación SII (on the phone, behind the menu button).
    if phone:
        page.locator("#nav-toggle").click()
    page.locator(".nav-more summary").click()
    page.locator(".nav-more a", has_text="Certificación SII").click()
    page.wait_for_url(f"{live_server.url}/certificacion/")
    next_step = page.locator("#next-step")
    expect(next_step.locator("h2")).to_have_text("Qué hacer ahora")
    expect(next_step).to_contain_text("Descargue el set de pruebas desde el sitio del SII")
    expect(next_step).to_contain_text("súbalo aquí")
    expect(page.locator("#run-status")).to_have_text("Por hacer")
    upload = page.locator("#set-upload")
    expect(upload).to_be_visible()  # no run yet: the upload is open
    expect(page.locator("#certification-sets")).to_have_count(0)
    if phone:
        _fits(page)

    # The example set, with the day's dollar rate typed the Chilean way.
    upload.locator("input[name=file]").set_input_files(str(SAMPLE))
    upload.locator("input[name=rate_usd]").fill("943,57")
    upload.locator("button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/certificacion/*/")
    run = CertificationRun.objects.get()
    assert page.url == f"{live_server.url}/certificacion/{run.pk}/"
    assert run.status == CertificationStatus.READ and run.cases_total == 20
    assert run.exchange_rates["DOLAR USA"] == "943.57"
    expect(page.locator(".flash")).to_contain_text("Set de pruebas leído: 20 casos.")
    expect(page.locator("#run-status")).to_have_text("Set leído")
    expect(next_step).to_contain_text(
        "Revise lo que se leyó del set y pulse «Emitir y enviar todo»"
    )
    expect(page.locator("#stage-set")).to_contain_text("20 casos")
    expect(page.locator("#stage-set")).to_contain_text("DOLAR USA")

    sets = page.locator("#certification-sets")
    rows = sets.locator("tbody tr")
    expect(rows).to_have_count(5)
    expect(rows.locator('td[data-label="N° de atención"]')).to_have_text(ATENCIONES)
    expect(sets.locator("tbody tr[data-state]")).to_have_count(5)
    expect(sets).to_contain_text("SET BASICO DOCUMENTOS DE EXPORTACION (2)")
    expect(sets).to_contain_text("OTROS PUERTOS DE PERU")  # an assumption of the plan, shown
    expect(page.locator("#run-problems")).to_have_count(0)
    start = page.locator("#start-button")
    expect(start).to_be_visible()
    expect(start).to_have_text("Emitir y enviar todo")
    # Another set can still be uploaded, folded away.
    expect(page.locator("#stage-set details.upload summary")).to_have_text(
        "Subir otro set de pruebas"
    )
    expect(upload).to_be_hidden()
    if phone:
        _fits(page)
    page.screenshot(path=str(shots / f"certificacion-leido-{width}.png"), full_page=True)

    # Start: the task issues the 20 documents and envelopes each set; the page follows it.
    start.click()
    expect(page.locator(".flash")).to_contain_text("Emitiendo el set de pruebas")
    progress = page.locator("#import-progress")
    expect(progress).to_be_visible()
    expect(progress.locator("progress")).to_be_visible()
    expect(next_step).to_contain_text("esta página se actualiza sola")
    expect(page.locator("#start-button")).to_have_count(0)
    if phone:
        _fits(page)
    # static/f29/rcv_progress.js reads the API and reloads the page when the run ends.
    expect(page.locator("#run-status")).to_have_text("Todo enviado", timeout=RUN_TIMEOUT)
    expect(progress).to_have_count(0)
    from erp.background import wait_for_background

    assert wait_for_background(RUN_TIMEOUT / 1000)
    expect(page.locator("#start-button")).to_have_count(0)
    expect(page.locator("#run-error")).to_have_count(0)
    run.refresh_from_db()
    assert run.status == CertificationStatus.ISSUED, run.error
    # Each of the 20 cases issued; the libro de guías also issued the factura of the guía the
    # set says was invoiced in the period (caso 5120004-2), in an envelope of its own.
    cases = CertificationCase.objects.filter(cset__run=run)
    assert cases.count() == 20
    assert cases.filter(document__dte__isnull=False).count() == 20
    assert Dte.objects.filter(company=issuer).count() == 21
    assert run.sets.filter(envelope__isnull=False).count() == 5

    # The SII's answers (what the beat tick and the workers do), then the page again.
    run_outbox()
    page.reload()
    expect(page.locator("#run-status")).to_have_text("Todo enviado")
    expect(rows).to_have_count(5)
    expect(sets.locator('tbody tr[data-state="accepted"]')).to_have_count(5)
    expect(rows.locator('td[data-label="N° de atención"]')).to_have_text(ATENCIONES)
    expect(rows.locator('td[data-label="Sobre"]')).to_contain_text(["track id"] * 5)
    expect(next_step).to_contain_text("Todo enviado y aceptado por el SII")
    expect(page.locator("#start-button")).to_have_count(0)

    # Stage 2: the libros, signed and sent when the set was issued.
    libros = page.locator("#certification-libros")
    expect(libros).to_be_visible()
    # Newest first (the view's order): the three built after issuing, guías last built.
    expect(libros.locator('td[data-label="Libro"]')).to_have_text(
        ["Libro de ventas", "Libro de compras", "Libro de guías"]
    )
    expect(libros.locator('tbody tr[data-state="accepted"]')).to_have_count(3)
    expect(page.locator("#stage-libros > .row-between .badge")).to_have_text("Aceptados por el SII")

    # Stage 5: the muestras impresas, a ZIP of PDFs.
    samples = page.locator("#samples-link")
    expect(samples).to_be_visible()
    expect(page.locator("#stage-muestras > .row-between .badge")).to_have_text("Listas")
    response = page.context.request.get(f"{live_server.url}{samples.get_attribute('href')}")
    assert response.status == 200 and response.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.body())).namelist()
    assert names and all(name.endswith(".pdf") for name in names), names

    if phone:
        _fits(page)
    page.screenshot(path=str(shots / f"certificacion-enviado-{width}.png"), full_page=True)
