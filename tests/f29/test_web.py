"""The F29 pages and the purchase book in the browser (Django's test client): Spanish, es-CL
money and dates, each box opening its trail and documents, the review → file → reopen buttons,
the RCV upload with its report, the reconciliation with its CSV, and field errors in place."""

import csv
import html
import io
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase

from dte import services as dte_services
from dte.models import Dte
from erp import services as erp_services
from erp.models import ClosedPeriod, PurchaseDocument
from f29 import services
from f29.models import F29Return, RcvEntry, RcvImport
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

RCV = Path(__file__).resolve().parents[1] / "data" / "rcv"
OCTOBER = date(2026, 10, 1)


def login(client, user):
    client.force_login(user)
    return client


def text(response) -> str:
    return html.unescape(response.content.decode())


def flashes(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def field_errors(response, field: str) -> list[str]:
    return [
        html.unescape(m)
        for m in re.findall(
            rf'<span class="error" data-field="{field}">(.*?)</span>', response.content.decode()
        )
    ]


def import_registro(company):
    return services.rcv_import(
        company=company,
        actor=None,
        content=(RCV / "compras_registro_2026-10.csv").read_bytes(),
        filename="compras_registro_2026-10.csv",
        kind="compras",
    )


@pytest.fixture
def october(company):
    """October's purchase book from the SII's registro file (no sales: factor 1)."""
    import_registro(company)
    return company


# ---------------------------------------------------------------- the list and computing


def test_list_page_in_spanish_with_compute_form(client, clerk, company):
    response = login(client, clerk).get("/f29/")
    assert response.status_code == 200
    page = text(response)
    assert "Declaraciones F29" in page and "Calcular propuesta" in page
    assert "Aún no hay declaraciones" in page and 'placeholder="mm-aaaa"' in page
    assert 'href="/rcv/importar/"' in page


def test_compute_from_the_list_form(client, clerk, october):
    web = login(client, clerk)
    response = web.post("/f29/calcular/", {"periodo": "10-2026", "ppm_rate": ""})
    assert response.status_code == 302 and response["Location"] == "/f29/2026-10/"
    detail = web.get(response["Location"])
    assert "F29 de 10-2026 calculado." in flashes(detail)
    f29 = F29Return.objects.get(company=october)
    assert f29.periodo == OCTOBER and f29.state == "draft"
    listed = text(web.get("/f29/"))
    assert 'href="/f29/2026-10/"' in listed and ">10-2026</a>" in listed
    assert "Borrador" in listed
    # 537 − 538 = remanente (77): 538.466 + 1.520.000 − 19.000 + 3.800 + 475.000 = 2.518.266
    assert f29.box(77) == 2518266 and "$ 2.518.266" in listed


@pytest.mark.parametrize("rate", ["1,5", "1.5"])
def test_compute_from_the_list_with_a_decimal_rate(client, clerk, october, rate):
    web = login(client, clerk)
    response = web.post("/f29/calcular/", {"periodo": "10-2026", "ppm_rate": rate}, follow=True)
    assert response.redirect_chain[-1][0] == "/f29/2026-10/", flashes(response)
    assert F29Return.objects.get().ppm_rate == Decimal("1.5")


@pytest.mark.parametrize("rate", ["uno", "-1", "101"])
def test_compute_from_the_list_with_a_bad_rate_blames_the_rate(client, clerk, company, rate):
    web = login(client, clerk)
    response = web.post("/f29/calcular/", {"periodo": "10-2026", "ppm_rate": rate})
    assert response.status_code == 400  # the list page again, the error under the rate
    assert field_errors(response, "ppm_rate"), text(response)
    assert not field_errors(response, "periodo")
    assert not F29Return.objects.exists()


@pytest.mark.parametrize("period", ["2026/13", "13-2026", "octubre", ""])
def test_compute_with_a_bad_period_says_how_to_write_it(client, clerk, company, period):
    response = login(client, clerk).post("/f29/calcular/", {"periodo": period})
    assert response.status_code == 400
    assert any("mm-aaaa" in m for m in field_errors(response, "periodo")), text(response)
    assert not F29Return.objects.exists()


def test_viewer_sees_no_compute_form_and_cannot_post(client, viewer, company):
    web = login(client, viewer)
    assert "Calcular propuesta" not in text(web.get("/f29/"))
    assert web.post("/f29/calcular/", {"periodo": "10-2026"}).status_code == 403
    assert web.post("/f29/2026-10/calcular/", {}).status_code == 403
    assert not F29Return.objects.exists()


# ---------------------------------------------------------------- the detail and the trail


def test_detail_groups_boxes_by_section_and_links_each_to_its_trail(client, clerk, october):
    services.f29_compute(company=october, periodo=OCTOBER, actor=clerk, ppm_rate="1.5")
    response = login(client, clerk).get("/f29/2026-10/")
    assert response.status_code == 200
    page = text(response)
    assert "F29 · 10-2026" in page and "Borrador" in page
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    sections = [h for h in headings if h in {"Débitos", "Créditos", "Impuesto determinado", "PPM"}]
    assert sections == ["Débitos", "Créditos", "Impuesto determinado", "PPM"]
    for code in (502, 520, 525, 537, 538, 77, 91):
        assert f'href="/f29/2026-10/casilla/{code}/"' in page, code
    assert re.search(r'data-box="520">\$ 538\.466<', page)  # 481.466 + 57.000 (factor 1)
    assert re.search(r'data-box="525">\$ 1\.520\.000<', page)
    assert re.search(r'data-box="519">6<', page)  # a count, not money
    assert re.search(r'data-box="115">1,5 %<', page)
    assert "Recalcular" in page and "Marcar como revisado" not in page  # clerk: no filing


def test_recompute_from_the_detail_page(client, clerk, october):
    services.f29_compute(company=october, periodo=OCTOBER, actor=clerk)
    web = login(client, clerk)
    response = web.post(
        "/f29/2026-10/calcular/",
        {"ppm_rate": "1,5", "remanente": "12345", "uso_comun_factor": "0,5"},
        follow=True,
    )
    assert "F29 de 10-2026 calculado." in flashes(response)
    f29 = F29Return.objects.get()
    assert f29.box(504) == 12345 and f29.box(520) == 481466 + 28500
    bad = web.post("/f29/2026-10/calcular/", {"ppm_rate": "-1"}, follow=True)
    assert any("número" in m for m in flashes(bad))
    assert F29Return.objects.get().ppm_rate == Decimal("1.5")


def test_box_page_lists_its_documents(client, viewer, clerk, october):
    services.f29_compute(company=october, periodo=OCTOBER, actor=clerk)
    web = login(client, viewer)
    response = web.get("/f29/2026-10/casilla/525/")
    assert response.status_code == 200
    page = text(response)
    assert "[525] Crédito facturas activo fijo" in page
    assert '<p class="big" id="box-value">$ 1.520.000</p>' in page
    assert "MAQUINARIAS DEL PACIFICO SPA" in page and "14-10-2026" in page
    machine = PurchaseDocument.objects.get(company=october, folio=7731)
    assert f'href="/compras/{machine.pk}/">7731</a>' in page
    assert "activo fijo" in page and "$ 8.000.000" in page

    giro = text(web.get("/f29/2026-10/casilla/520/"))
    for folio in ("10452", "88123", "3311876", "55021"):
        assert f">{folio}</a>" in giro, folio
    assert ">7731</a>" not in giro  # the machine is in 525, not in 520
    assert "uso común $ 57.000" in giro

    derived = text(web.get("/f29/2026-10/casilla/537/"))
    assert "Cómo se calcula" in derived and 'href="/f29/2026-10/casilla/520/"' in derived
    assert web.get("/f29/2026-10/casilla/999/").status_code == 404
    assert web.get("/f29/2026-09/").status_code == 404
    assert web.get("/f29/2026-13/").status_code == 404


def test_box_page_lists_sales_documents(client, clerk, issuer):
    customer = PartnerFactory(company=issuer, rut="96790240-3", razon_social="Andina Ltda.")
    draft = erp_services.sales_document_create(
        company=issuer,
        actor=None,
        data={
            "tipo_dte": 33,
            "fecha_emision": date(2026, 10, 7),
            "partner": customer.pk,
            "lines": [{"name": "Servicio", "quantity": Decimal(1), "unit_price": Decimal(100000)}],
        },
    )
    dte = dte_services.dte_issue(document=draft, actor=None)
    Dte.objects.filter(pk=dte.pk).update(status="accepted")
    services.f29_compute(company=issuer, periodo=OCTOBER, actor=None)
    page = text(login(client, clerk).get("/f29/2026-10/casilla/502/"))
    assert '<p class="big" id="box-value">$ 19.000</p>' in page
    assert f'href="/documentos/{draft.pk}/">{dte.folio}</a>' in page
    assert "Andina Ltda." in page and "07-10-2026" in page and "$ 100.000" in page


# ---------------------------------------------------------------- review → file → reopen


def test_review_file_reopen_buttons(client, admin_user, october):
    services.f29_compute(company=october, periodo=OCTOBER, actor=admin_user)
    web = login(client, admin_user)
    page = text(web.get("/f29/2026-10/"))
    assert 'id="review-button"' in page and 'id="file-button"' not in page
    assert 'id="reopen-button"' not in page

    reviewed = web.post("/f29/2026-10/estado/revisar/", follow=True)
    assert "F29 marcado como revisado." in flashes(reviewed)
    page = text(reviewed)
    assert 'id="f29-state">Revisado<' in page and 'id="file-button"' in page
    assert 'id="reopen-button"' in page and 'id="recompute-button"' not in page

    filed = web.post("/f29/2026-10/estado/presentar/", {"folio_sii": "8812345"}, follow=True)
    assert "F29 presentado: el período queda cerrado." in flashes(filed)
    page = text(filed)
    assert 'id="f29-state">Presentado<' in page and "folio 8812345" in page
    assert ClosedPeriod.objects.filter(company=october, periodo=OCTOBER).exists()

    # The reason is required: without one, an error and nothing changes.
    for reason in ("", "   "):
        refused = web.post("/f29/2026-10/estado/reabrir/", {"reason": reason}, follow=True)
        assert refused.redirect_chain == [("/f29/2026-10/", 302)]
        assert any("Explique por qué" in m for m in flashes(refused))
        assert 'id="f29-state">Presentado<' in text(refused)
        assert F29Return.objects.get().state == "filed"
    assert ClosedPeriod.objects.filter(company=october).exists()

    reopened = web.post(
        "/f29/2026-10/estado/reabrir/", {"reason": "Llegó una factura tarde"}, follow=True
    )
    assert "Período reabierto." in flashes(reopened)
    page = text(reopened)
    assert 'id="f29-state">Borrador<' in page and 'id="review-button"' in page
    history = page.split('id="f29-events"')[1]
    assert "Reabierto" in history and "Llegó una factura tarde" in history
    assert admin_user.username in history
    assert not ClosedPeriod.objects.filter(company=october).exists()


def test_file_before_review_is_refused_with_a_message(client, admin_user, october):
    services.f29_compute(company=october, periodo=OCTOBER, actor=admin_user)
    response = login(client, admin_user).post("/f29/2026-10/estado/presentar/", follow=True)
    assert any("revíselo primero" in m for m in flashes(response))
    assert F29Return.objects.get().state == "draft"


def test_clerk_and_viewer_cannot_move_the_state(client, clerk, viewer, october):
    services.f29_compute(company=october, periodo=OCTOBER, actor=clerk)
    for user in (clerk, viewer):
        web = login(client, user)
        page = text(web.get("/f29/2026-10/"))
        assert 'id="review-button"' not in page
        assert web.post("/f29/2026-10/estado/revisar/").status_code == 403
    assert F29Return.objects.get().state == "draft"
    assert 'id="recompute-button"' not in page  # the viewer cannot recompute either


def test_unknown_transition_is_404(client, admin_user, october):
    services.f29_compute(company=october, periodo=OCTOBER, actor=admin_user)
    response = login(client, admin_user).post("/f29/2026-10/estado/borrar/")
    assert response.status_code == 404


# ---------------------------------------------------------------- RCV import


def _upload(web, name: str, kind: str = "compras", **extra):
    """Upload as the form does: the answer redirects to the import's page, and the import
    runs after the commit (here, in this thread); follow it to the page with the report."""
    upload = SimpleUploadedFile(name, (RCV / name).read_bytes(), content_type="text/csv")
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = web.post("/rcv/importar/", {"kind": kind, "estado": "", "file": upload, **extra})
    if response.status_code == 302:
        assert re.fullmatch(r"/rcv/importar/\d+/", response["Location"])
        return web.get(response["Location"])
    return response


def test_rcv_import_page_reports_rejected_rows(client, clerk, company):
    web = login(client, clerk)
    page = text(web.get("/rcv/importar/"))
    assert "Importar el Registro de Compras y Ventas" in page
    assert 'enctype="multipart/form-data"' in page and "Sin importaciones." in page

    response = _upload(web, "compras_registro_filas_malas.csv")
    assert response.status_code == 200
    page = text(response)
    report = page.split('id="import-report"')[1].split("</section>")[0]
    assert "compras_registro_filas_malas.csv (Compras, Registro)" in report
    assert "<strong>2</strong> nuevos" in report and "<strong>2</strong> rechazados" in report
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\d*)</td><td>(\d*)</td><td>(.*?)</td></tr>", report)
    assert [(line, folio) for line, _, folio, _ in rows] == [("3", "10461"), ("4", "1210")]
    assert "RUT" in rows[0][3] and "Fecha Docto" in rows[1][3]
    assert "Archivo recibido: se está importando." in flashes(response)
    assert '<progress max="100" value="100">' in page and "Terminado" in page
    assert "rcv_progress.js" not in page  # finished: nothing polls
    # The history shows it, with who imported it.
    history = text(web.get("/rcv/importar/")).split("Importaciones anteriores")[1]
    assert "compras_registro_filas_malas.csv" in history and clerk.username in history


def test_rcv_import_page_twice_is_all_unchanged(client, clerk, company):
    web = login(client, clerk)
    assert _upload(web, "compras_registro_2026-10.csv").status_code == 200
    page = text(_upload(web, "compras_registro_2026-10.csv"))
    report = page.split('id="import-report"')[1].split("</section>")[0]
    assert "<strong>0</strong> nuevos" in report and "<strong>11</strong> sin cambios" in report
    assert "Libro de compras: 0 creados, 0 actualizados; 0 proveedores nuevos." in report
    assert RcvImport.objects.count() == 2 and PurchaseDocument.objects.count() == 11


def test_rcv_import_page_refuses_a_malformed_file(client, clerk, company):
    response = _upload(login(client, clerk), "basura_binaria.csv")
    assert response.status_code == 400
    assert field_errors(response, "file") and 'id="import-report"' not in text(response)
    assert not RcvImport.objects.exists() and not RcvEntry.objects.exists()


def test_rcv_import_page_period_is_typed_mm_aaaa(client, clerk, company):
    web = login(client, clerk)
    response = _upload(web, "compras_pendiente_2026-10.csv", periodo="11-2026")
    assert response.status_code == 200, field_errors(response, "periodo")
    assert RcvImport.objects.get().periodo == date(2026, 11, 1)
    bad = _upload(web, "compras_pendiente_2026-10.csv", periodo="2026/11/05")
    assert bad.status_code == 400 and field_errors(bad, "periodo")


def test_viewer_sees_the_import_page_but_cannot_upload(client, viewer, company):
    web = login(client, viewer)
    page = text(web.get("/rcv/importar/"))
    assert 'id="import-button"' not in page
    assert _upload(web, "compras_registro_2026-10.csv").status_code == 403
    assert not RcvImport.objects.exists()


# ---------------------------------------------------------------- reconciliation


@pytest.fixture
def reconciled(october):
    wine = PurchaseDocument.objects.get(company=october, folio=55021)
    PurchaseDocument.objects.filter(pk=wine.pk).update(monto_neto=999999, source="manual")
    erp_services.purchase_document_create(
        company=october,
        actor=None,
        data={
            "tipo_doc": 33,
            "folio": 999,
            "partner": wine.partner.pk,
            "fecha": date(2026, 10, 30),
            "monto_neto": 1000,
            "iva_recuperable": 190,
        },
    )
    return october


def test_reconciliation_page_filters_by_category_and_links_the_csv(client, viewer, reconciled):
    web = login(client, viewer)
    response = web.get("/f29/2026-10/conciliacion/?kind=compras")
    assert response.status_code == 200
    page = text(response)
    assert "Conciliación de compras · 10-2026" in page
    summary = page.split('id="recon-summary"')[1].split("</table>")[0]
    assert re.search(r'data-category="matched">.*?Cuadra.*?<td class="num">10</td>', summary)
    assert re.search(r'data-category="only_books">.*?<td class="num">1</td>', summary)
    assert "$ 1.190" in summary
    detail = page.split('id="recon-detail"')[1].split("</table>")[0]
    assert detail.count("<tr data-category=") == 12

    filtered = web.get("/f29/2026-10/conciliacion/?kind=compras&category=amounts_differ")
    page = text(filtered)
    detail = page.split('id="recon-detail"')[1].split("</table>")[0]
    assert detail.count("<tr data-category=") == 1
    assert 'data-category="amounts_differ"' in detail and ">55021<" in detail
    assert "Montos distintos" in detail and "neto" in detail
    link = re.search(r'href="([^"]*)" id="csv-link"', page).group(1)
    assert "category=amounts_differ" in link and "format=csv" in link and "kind=compras" in link

    exported = web.get(f"/f29/2026-10/conciliacion/{link}")
    assert exported.status_code == 200
    assert exported["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode()), delimiter=";"))
    assert rows[0][0] == "categoria" and [r[2] for r in rows[1:]] == ["55021"]


def test_reconciliation_page_without_rcv_says_to_import(client, viewer, company):
    page = text(login(client, viewer).get("/f29/2026-10/conciliacion/?kind=ventas"))
    assert "No hay datos del RCV de ventas para 10-2026" in page
    assert "Sin documentos en esta categoría." in page
    assert login(client, viewer).get("/f29/2026-10/conciliacion/?kind=x").status_code == 404


# ---------------------------------------------------------------- the purchase book


def purchase_post(supplier, **overrides) -> dict:
    data = {
        "tipo_doc": "33",
        "folio": "1001",
        "partner": str(supplier.pk),
        "fecha": "05-10-2026",
        "periodo": "",
        "estado": "registro",
        "monto_exento": "",
        "monto_neto": "100000",
        "iva_recuperable": "19000",
        "iva_no_recuperable": "",
        "codigo_iva_no_rec": "",
        "iva_uso_comun": "",
        "otros_impuestos": "",
        "monto_total": "",
        "notes": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def supplier(company):
    return PartnerFactory(
        company=company, rut="76354771-K", razon_social="Distribuidora Los Andes SpA"
    )


def test_purchase_list_in_spanish_with_chilean_formats(client, clerk, october):
    page = text(login(client, clerk).get("/compras/?periodo=10-2026"))
    assert "Libro de compras" in page
    assert "MAQUINARIAS DEL PACIFICO SPA" in page and "78.044.590-4" in page
    assert "$ 9.520.000" in page and "14-10-2026" in page and "10-2026" in page
    assert page.count('href="/compras/') >= 11
    assert "Sin documentos de compra." in text(client.get("/compras/?periodo=11-2026"))


def test_purchase_create_with_dates_typed_dd_mm_aaaa(client, clerk, supplier):
    web = login(client, clerk)
    form = text(web.get("/compras/nuevo/"))
    assert 'placeholder="dd-mm-aaaa"' in form and 'name="periodo"' in form
    response = web.post("/compras/nuevo/", purchase_post(supplier))
    assert response.status_code == 302, field_errors(response, r"\w+")
    doc = PurchaseDocument.objects.get()
    assert (doc.fecha, doc.periodo, doc.monto_total) == (date(2026, 10, 5), OCTOBER, 119000)
    assert doc.rut_emisor == "76354771-K" and doc.source == "manual"
    late = purchase_post(supplier, folio="1002", fecha="28-09-2026", periodo="10-2026")
    assert web.post("/compras/nuevo/", late).status_code == 302
    assert PurchaseDocument.objects.get(folio=1002).periodo == OCTOBER


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"monto_total": "120000"}, "monto_total", "no cuadra"),
        ({"iva_no_recuperable": "5000"}, "codigo_iva_no_rec", "no es recuperable"),
        ({"fecha": "2026/10/05"}, "fecha", ""),
        ({"fecha": "31-09-2026"}, "fecha", ""),
        ({"periodo": "09-2026"}, "periodo", "anterior"),
        ({"folio": "0"}, "folio", ""),
        ({"tipo_doc": "34", "monto_exento": "5000"}, "monto_neto", "exento"),
        ({"partner": ""}, "partner", ""),
    ],
)
def test_purchase_errors_sit_next_to_their_field(
    client, clerk, supplier, overrides, field, fragment
):
    response = login(client, clerk).post("/compras/nuevo/", purchase_post(supplier, **overrides))
    assert response.status_code == 400
    errors = field_errors(response, field)
    assert errors and fragment in " ".join(errors), errors
    assert not PurchaseDocument.objects.exists()


def test_purchase_duplicate_is_an_error_on_the_folio(client, clerk, supplier):
    web = login(client, clerk)
    assert web.post("/compras/nuevo/", purchase_post(supplier)).status_code == 302
    again = web.post("/compras/nuevo/", purchase_post(supplier))
    assert again.status_code == 400
    assert any("Ya está registrado" in e for e in field_errors(again, "folio"))
    assert PurchaseDocument.objects.count() == 1


def test_purchase_edit_shows_chilean_dates_and_saves(client, clerk, supplier):
    web = login(client, clerk)
    web.post("/compras/nuevo/", purchase_post(supplier))
    doc = PurchaseDocument.objects.get()
    form = text(web.get(f"/compras/{doc.pk}/"))
    assert 'value="05-10-2026"' in form and 'value="10-2026"' in form
    response = web.post(
        f"/compras/{doc.pk}/",
        purchase_post(
            supplier,
            fecha="07-10-2026",
            periodo="10-2026",
            monto_neto="200000",
            iva_recuperable="38000",
            notes="corregida",
        ),
    )
    assert response.status_code == 302, field_errors(response, r"\w+")
    doc.refresh_from_db()
    assert (doc.fecha, doc.monto_total, doc.notes) == (date(2026, 10, 7), 238000, "corregida")
    wrong = web.post(
        f"/compras/{doc.pk}/", purchase_post(supplier, periodo="10-2026", monto_total="1")
    )
    assert wrong.status_code == 400 and field_errors(wrong, "monto_total")


def test_an_imported_purchase_can_be_annotated_on_the_page(client, clerk, company):
    content = (RCV / "compras_registro_2026-10.csv").read_bytes()
    lines = content.decode().split("\n")
    header = lines[0].split(";")
    row = next(i for i, line in enumerate(lines) if ";88123;" in line)
    cells = lines[row].split(";")
    cells[header.index("Impto. Sin Derecho a Credito")] = "5000"
    cells[header.index("Monto Total")] = "540500"
    lines[row] = ";".join(cells)
    services.rcv_import(
        company=company,
        actor=None,
        content="\n".join(lines).encode(),
        filename="registro.csv",
        kind="compras",
    )
    doc = PurchaseDocument.objects.get(company=company, folio=88123)
    # The tax the book has no column for is kept as other taxes, so the purchase adds up.
    assert (doc.monto_total, doc.otros_impuestos) == (540500, 5000)
    page = login(client, clerk).get(f"/compras/{doc.pk}/")
    assert b'name="otros_impuestos" value="5.000"' in page.content
    response = client.post(
        f"/compras/{doc.pk}/",
        purchase_post(
            doc.partner,
            folio="88123",
            fecha="02-10-2026",
            periodo="10-2026",
            monto_neto="450000",
            iva_recuperable="85500",
            otros_impuestos="5000",
            monto_total="540500",
            notes="revisar con el proveedor",
        ),
    )
    assert response.status_code == 302, field_errors(response, "monto_total")
    doc.refresh_from_db()
    assert doc.notes == "revisar con el proveedor" and doc.monto_total == 540500


def test_purchase_in_a_filed_period_is_refused_on_the_page(client, clerk, admin_user, supplier):
    web = login(client, clerk)
    web.post("/compras/nuevo/", purchase_post(supplier))
    doc = PurchaseDocument.objects.get()
    f29 = services.f29_compute(company=supplier.company, periodo=OCTOBER, actor=admin_user)
    services.f29_file(f29=services.f29_review(f29=f29, actor=admin_user), actor=admin_user)

    created = web.post("/compras/nuevo/", purchase_post(supplier, folio="1002"))
    assert created.status_code == 400
    assert any("10-2026 está cerrado" in e for e in field_errors(created, "periodo"))
    edited = web.post(f"/compras/{doc.pk}/", purchase_post(supplier, periodo="10-2026"))
    assert edited.status_code == 400 and field_errors(edited, "periodo")
    deleted = web.post(f"/compras/{doc.pk}/eliminar/", follow=True)
    assert deleted.redirect_chain[-1][0] == f"/compras/{doc.pk}/"
    assert any("cerrado" in m for m in flashes(deleted))
    assert PurchaseDocument.objects.count() == 1


def test_viewer_cannot_open_the_purchase_form(client, viewer, supplier):
    web = login(client, viewer)
    assert web.get("/compras/").status_code == 200
    assert web.get("/compras/nuevo/").status_code == 403
    assert web.post("/compras/nuevo/", purchase_post(supplier)).status_code == 403
