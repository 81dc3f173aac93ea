"""The certification page and its API (issue 17): a company's administrator uploads the set de
pruebas, sees what was read, starts the run (a task outside the request) and follows each set
to the SII's verdict; other roles only look."""

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from dte.models import CertificationRun, CertificationStatus, Dte
from tests.dte.sii.test_flow import run_outbox
from tests.dte.test_certification_exchange import sii_envelope, sii_sender  # noqa: F401

SAMPLE = Path("/work/shared/sii/samples/certification/SIISetDePruebas_ejemplo.txt")
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not SAMPLE.exists(), reason="the shared set de pruebas is not available"),
]


def upload(name="SIISetDePruebas.txt", data=None):
    return SimpleUploadedFile(name, data if data is not None else SAMPLE.read_bytes())


def test_an_administrator_goes_from_the_file_to_everything_sent(
    client, sii, issuer, admin_user, eager_tasks
):
    client.force_login(admin_user)
    page = client.get(reverse("dte:certification")).content.decode()
    assert "Descargue el set de pruebas desde el sitio del SII" in page
    assert 'id="set-upload"' in page

    response = client.post(
        reverse("dte:certification"), {"file": upload(), "rate_usd": "943,57"}, follow=True
    )
    assert response.status_code == 200
    page = response.content.decode()
    run = CertificationRun.objects.get()
    assert run.status == CertificationStatus.READ and run.cases_total == 20
    assert run.exchange_rates["DOLAR USA"] == "943.57"
    assert "Set de pruebas leído: 20 casos." in page
    assert "SET BASICO DOCUMENTOS DE EXPORTACION (2)" in page and "5120007" in page
    assert "OTROS PUERTOS DE PERU" in page  # an assumption the plan made, shown
    # what was read: items, discounts, references, guías, exports, the purchase book
    read = page.split('id="set-read"')[1].split("</details>")[0]
    for shown in (
        "Martillo AFECTO",
        "4.377",
        "descuento global 18 % a los ítemes afectos",
        "referencia: caso 5120001-2 — «DEVOLUCION DE MERCADERIAS»",
        "(IndTraslado 5)",
        "CLAUSULA DE VENTA DE EXPORTACION",
        "FACTURA CON IVA USO COMUN",
        "Factor de proporcionalidad del IVA de uso común: 0,55",
        "caso 3 anulada",
    ):
        assert shown in read, shown
    assert 'id="start-button"' in page

    response = client.post(reverse("dte:certification_start", args=[run.pk]), follow=True)
    assert response.status_code == 200
    from erp.background import wait_for_background

    assert wait_for_background(120)
    run.refresh_from_db()
    assert run.status == CertificationStatus.ISSUED, run.error
    assert Dte.objects.count() == 21  # the 20 cases and the factura of the invoiced guía
    run_outbox()
    page = client.get(reverse("dte:certification_run", args=[run.pk])).content.decode()
    sets = page.split('id="certification-sets"')[1].split("</table>")[0]
    assert sets.count('data-state="accepted"') == 5
    libros = page.split('id="certification-libros"')[1].split("</table>")[0]
    assert libros.count('data-state="accepted"') == 3
    assert "Todo enviado y aceptado por el SII" in page
    assert 'id="start-button"' not in page


def test_a_viewer_sees_but_cannot_upload_or_start(client, issuer, viewer):
    run = CertificationRun.objects.create(
        company=issuer, filename="set.txt", set_file=SAMPLE.read_bytes(), cases_total=1
    )
    client.force_login(viewer)
    page = client.get(reverse("dte:certification")).content.decode()
    assert "Solo un administrador" not in page  # a run exists: the page shows it
    assert 'id="set-upload"' not in page
    assert client.post(reverse("dte:certification"), {"file": upload()}).status_code == 403
    response = client.post(reverse("dte:certification_start", args=[run.pk]))
    assert response.status_code == 403
    assert CertificationRun.objects.get().status == CertificationStatus.READ


def test_a_file_that_is_not_a_set_is_refused_with_its_reason(client, issuer, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("dte:certification"), {"file": upload(data=b"hola")})
    assert response.status_code == 400
    assert "no se encontró ningún" in response.content.decode()
    assert not CertificationRun.objects.exists()


def test_the_api_reads_starts_and_follows_a_run(api_for, sii, issuer, admin_user, eager_tasks):
    api = api_for(admin_user)
    base = f"/api/v1/companies/{issuer.rut}/certification-runs/"
    created = api.post(
        base,
        {"set_file": upload(), "exchange_rates": '{"EURO": "1021.30"}'},
        format="multipart",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["status"], body["cases_total"], body["problems"]) == ("read", 20, [])
    assert [s["atencion"] for s in body["sets"]] == [
        "5120001",
        "5120004",
        "5120006",
        "5120007",
        "5120008",
    ]
    assert body["exchange_rates"]["EURO"] == "1021.30"

    started = api.post(f"{base}{body['id']}/start/")
    assert started.status_code == 202, started.json()
    from erp.background import wait_for_background

    assert wait_for_background(120)
    followed = api.get(f"{base}{body['id']}/").json()
    assert (followed["status"], followed["percent"], followed["finished"]) == ("issued", 100, True)
    assert all(s["envelope"] for s in followed["sets"])
    again = api.post(f"{base}{body['id']}/start/")
    assert again.status_code == 400

    _catalog(issuer)
    proposed = api.post(f"{base}{body['id']}/simulation/")
    assert proposed.status_code == 201, proposed.json()
    assert [d["tipo_dte"] for d in proposed.json()["simulation"]] == [33] * 6 + [34, 52]
    started = api.post(f"{base}{body['id']}/simulation/start/")
    assert started.status_code == 202
    assert wait_for_background(120)
    assert api.get(f"{base}{body['id']}/").json()["simulation_status"] == "issued"

    bad = api.post(base, {"set_file": upload(data=b"nada")}, format="multipart")
    assert bad.status_code == 400 and "set_file" in bad.json()["fields"]
    rates = api.post(base, {"set_file": upload(), "exchange_rates": "{no"}, format="multipart")
    assert rates.status_code == 400 and "exchange_rates" in rates.json()["fields"]


def _catalog(company):
    from tests.factories import PartnerFactory, ProductFactory

    PartnerFactory(
        company=company,
        rut="96790240-3",
        razon_social="Distribuidora Los Andes S.A.",
        giro="Venta al por mayor",
        direccion="Av. Apoquindo 4501",
        comuna="Las Condes",
        is_customer=True,
    )
    PartnerFactory(
        company=company,
        rut="77001234-1",
        razon_social="Comercial Pacífico SpA",
        giro="Comercio minorista",
        direccion="Blanco 1623",
        comuna="Valparaíso",
        is_customer=True,
    )
    for code, price, exempt in (
        ("SERV-1", 45000, False),
        ("LIC-1", 120000, False),
        ("CAP-1", 30000, True),
    ):
        ProductFactory(
            company=company, code=code, unit_price=price, is_exempt=exempt, is_active=True
        )


def test_the_simulacion_is_proposed_edited_issued_and_accepted(
    client, sii, issuer, admin_user, eager_tasks
):
    from erp import services as erp_services
    from erp.background import wait_for_background

    _catalog(issuer)
    client.force_login(admin_user)
    client.post(reverse("dte:certification"), {"file": upload()})
    run = CertificationRun.objects.get()
    url = reverse("dte:certification_run", args=[run.pk])
    # before the set is issued there is nothing to simulate
    client.post(reverse("dte:certification_simulation_propose", args=[run.pk]))
    assert not run.simulation.exists()
    client.post(reverse("dte:certification_start", args=[run.pk]))
    assert wait_for_background(120)

    client.post(reverse("dte:certification_simulation_propose", args=[run.pk]))
    drafts = list(run.simulation.order_by("id"))
    assert [d.tipo_dte for d in drafts] == [33, 33, 33, 33, 33, 33, 34, 52]
    assert drafts[2].global_discount_value == 5
    assert all(d.partner.rut in ("96790240-3", "77001234-1") for d in drafts)
    page = client.get(url).content.decode()
    assert 'id="simulation-documents"' in page and 'id="simulation-start"' in page
    # a proposed draft is edited like any other before it is issued
    erp_services.sales_document_update(
        document=drafts[0],
        actor=admin_user,
        data={"lines": [{"product": "SERV-1", "quantity": 3}]},
    )
    client.post(reverse("dte:certification_simulation_start", args=[run.pk]))
    assert wait_for_background(120)
    run.refresh_from_db()
    assert run.simulation_status == CertificationStatus.ISSUED, run.simulation_error
    issued = Dte.objects.filter(sales_document__in=drafts)
    assert issued.count() == 8 and len({d.envelope_id for d in issued}) == 1
    assert issued.get(sales_document=drafts[0]).monto_total == 3 * 45000 * 119 // 100
    run_outbox()
    page = client.get(url).content.decode()
    assert "Aceptado por el SII" in page.split('id="stage-simulacion"')[1].split("</li>")[0]


def test_a_company_without_customers_or_products_gets_example_items(client, issuer, admin_user):
    run = CertificationRun.objects.create(
        company=issuer,
        filename="set.txt",
        set_file=SAMPLE.read_bytes(),
        cases_total=1,
        status=CertificationStatus.ISSUED,
    )
    from dte import certification

    drafts = certification.simulation_propose(run=run, actor=admin_user)
    assert [d.tipo_dte for d in drafts] == [33] * 6 + [52]  # no exempt product: no 34
    assert {d.partner.rut for d in drafts} == {"60803000-K"}  # the set's receiver
    names = {line.name for d in drafts for line in d.lines.all()}
    assert names <= {name for name, _ in certification.EXAMPLE_ITEMS}
    assert all(d.monto_total > 0 for d in drafts)


def test_the_intercambio_from_the_page_the_api_and_the_command(
    client,
    api_for,
    issuer,
    admin_user,
    viewer,
    tmp_path,
    sii_sender,  # noqa: F811 (the fixture, imported above)
    monkeypatch,
):
    """The SII's test envelope taken in and answered three ways: the page offers the ZIP, the
    API answers the same files, the command writes them."""
    import zipfile

    from django.core.management import call_command

    monkeypatch.setattr("dte.receiving.confirm_with_sii", lambda *a, **k: "skipped")
    data, _ = sii_envelope(sii_sender, issuer, tipos=(33, 34))
    client.force_login(admin_user)
    page = client.get(reverse("dte:certification")).content.decode()
    assert 'id="exchange-upload"' in page

    response = client.post(
        reverse("dte:certification_exchange"),
        {"file": upload("ENVIO_INTERCAMBIO.xml", data), "recinto": "Bodega central"},
        follow=True,
    )
    page = response.content.decode()
    assert "Sobre de intercambio recibido y respondido." in page
    assert page.count("con recibo de mercaderías") == 2
    link = reverse(
        "dte:certification_exchange_zip", args=[response.context["exchange"].envelope.pk]
    )
    archive = zipfile.ZipFile(io.BytesIO(client.get(link).content))
    assert sorted(archive.namelist()) == sorted(
        [
            f"RespuestaDTE--{issuer.rut}--recepcion.xml",
            f"RespuestaDTE--{issuer.rut}--resultado.xml",
            f"EnvioRecibos--{issuer.rut}.xml",
        ]
    )
    assert b"Bodega central" in archive.read(f"EnvioRecibos--{issuer.rut}.xml")

    # the same file through the API is recognised as taken in before
    api = api_for(admin_user)
    base = f"/api/v1/companies/{issuer.rut}/certification-runs/exchange/"
    again = api.post(base, {"file": upload("ENVIO_INTERCAMBIO.xml", data)}, format="multipart")
    assert again.status_code == 200 and again.json()["repeated"] and again.json()["complete"]
    zipped = api.get(f"{base}{again.json()['envelope']}/answers/")
    assert zipped.status_code == 200 and zipped["Content-Type"] == "application/zip"
    assert (
        api_for(viewer).post(base, {"file": upload("x.xml", data)}, format="multipart").status_code
        == 403
    )

    call_command(
        "certification",
        "--company",
        issuer.rut,
        "--exchange",
        _write(tmp_path, data),
        "--out",
        str(tmp_path),
    )
    assert (tmp_path / f"EnvioRecibos--{issuer.rut}.xml").exists()


def _write(tmp_path, data: bytes) -> str:
    path = tmp_path / "ENVIO_INTERCAMBIO.xml"
    path.write_bytes(data)
    return str(path)


def test_the_command_issues_the_set_and_the_simulacion(sii, issuer, tmp_path, capsys):
    from django.core.management import call_command

    _catalog(issuer)
    call_command(
        "certification",
        "--company",
        issuer.rut,
        "--set",
        str(SAMPLE),
        "--out",
        str(tmp_path),
        "--simulation",
    )
    err = capsys.readouterr().err
    assert "Simulación: 8 documentos, Todo enviado" in err
    run = CertificationRun.objects.get()
    assert run.simulation.filter(state="issued").count() == 8
    run_outbox()
    assert set(Dte.objects.values_list("status", flat=True)) == {"accepted"}
