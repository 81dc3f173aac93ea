"""Issuing and uploads through the doors people use: REST API, web UI, admin, commands."""

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from dte.models import Caf, Certificate, Dte
from erp.models import DocumentState
from tests.dte.fixtures import CERT_PASSWORD
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/companies/76086428-5"
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
NC_SAMPLE = SHARED / "sii" / "samples" / "dte" / "DTE--96670340-7--61--110616.xml"


@pytest.fixture
def drafts(issuer):
    partner = PartnerFactory(company=issuer, rut="96790240-3")
    from erp import services as erp_services

    def make(tipo=33):
        return erp_services.sales_document_create(
            company=issuer,
            actor=None,
            data={
                "tipo_dte": tipo,
                "fecha_emision": date(2026, 11, 20),
                "partner": partner.pk,
                "lines": [
                    {"name": "Servicio", "quantity": Decimal(2), "unit_price": Decimal(1000)}
                ],
            },
        )

    return make


def test_api_issue_and_download(api, drafts):
    draft = drafts()
    response = api.post(f"{BASE}/sales-documents/{draft.pk}/issue/")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["folio"], body["status"], body["monto_total"]) == (1, "queued", 2380)
    again = api.post(f"{BASE}/sales-documents/{draft.pk}/issue/")
    assert again.status_code == 400 and again.json()["code"] == "document_not_draft"
    xml = api.get(f"{BASE}/dtes/{body['id']}/xml/")
    assert xml.status_code == 200 and xml["Content-Type"].startswith("application/xml")
    assert xml.content.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert 'filename="DTE--76086428-5--33--1.xml"' in xml["Content-Disposition"]
    envelope = api.get(f"{BASE}/envelopes/{body['envelope']}/xml/")
    assert envelope.status_code == 200 and b"<EnvioDTE" in envelope.content
    listing = api.get(f"{BASE}/dtes/?tipo_dte=33").json()
    assert listing["count"] == 1 and listing["results"][0]["events"][0]["status"] == "signed"
    patch = api.patch(f"{BASE}/sales-documents/{draft.pk}/", {"notes": "x"}, format="json")
    assert patch.json()["code"] == "document_not_draft"


def test_api_issue_errors_are_4xx(api, api_for, viewer, drafts, issuer):
    assert api.post(f"{BASE}/sales-documents/999999/issue/").status_code == 404
    viewer_client = api_for(viewer)
    assert viewer_client.post(f"{BASE}/sales-documents/{drafts().pk}/issue/").status_code == 403
    Caf.objects.filter(company=issuer, tipo_dte=33).update(next_folio=101)
    response = api.post(f"{BASE}/sales-documents/{drafts().pk}/issue/")
    assert response.status_code == 400 and response.json()["code"] == "no_folios"


def test_api_uploads_are_for_admins(
    api, api_for, admin_user, company, sandbox, cert_pfx, make_caf_file
):
    caf = SimpleUploadedFile("caf.xml", make_caf_file(33), content_type="text/xml")
    assert api.post(f"{BASE}/cafs/", {"file": caf}, format="multipart").status_code == 403
    admin = api_for(admin_user)
    caf = SimpleUploadedFile("caf.xml", make_caf_file(33), content_type="text/xml")
    response = admin.post(f"{BASE}/cafs/", {"file": caf}, format="multipart")
    assert response.status_code == 201, response.json()
    assert response.json()["remaining"] == 100 and "file" not in response.json()
    bad = SimpleUploadedFile("caf.xml", b"<nada/>", content_type="text/xml")
    response = admin.post(f"{BASE}/cafs/", {"file": bad}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()["fields"]
    pfx = SimpleUploadedFile("firma.p12", cert_pfx)
    wrong = admin.post(f"{BASE}/certificates/", {"file": pfx, "password": "x"}, format="multipart")
    assert wrong.status_code == 400 and "password" in wrong.json()["fields"]
    pfx = SimpleUploadedFile("firma.p12", cert_pfx)
    ok = admin.post(
        f"{BASE}/certificates/", {"file": pfx, "password": CERT_PASSWORD}, format="multipart"
    )
    assert ok.status_code == 201 and ok.json()["holder_rut"] == "12345678-5"
    assert "password" not in ok.json()
    assert admin.get(f"{BASE}/certificates/").json()["count"] == 1
    assert admin.get(f"{BASE}/dte-warnings/").status_code == 200


def test_dte_endpoints_are_scoped(api_for, outsider, drafts, issuer, api):
    draft = drafts()
    dte_id = api.post(f"{BASE}/sales-documents/{draft.pk}/issue/").json()["id"]
    client = api_for(outsider)
    for method, url in (
        ("post", f"{BASE}/sales-documents/{drafts().pk}/issue/"),
        ("get", f"{BASE}/dtes/"),
        ("get", f"{BASE}/dtes/{dte_id}/"),
        ("get", f"{BASE}/dtes/{dte_id}/xml/"),
        ("get", f"{BASE}/envelopes/1/xml/"),
        ("get", f"{BASE}/cafs/"),
        ("post", f"{BASE}/cafs/"),
        ("get", f"{BASE}/certificates/"),
        ("get", f"{BASE}/dte-warnings/"),
    ):
        assert getattr(client, method)(url).status_code == 404, url
    own = f"/api/v1/companies/{outsider.memberships.get().company.rut}"
    assert client.get(f"{own}/dtes/{dte_id}/xml/").status_code == 404


def test_ui_issue_button_and_download(client, clerk, drafts):
    draft = drafts()
    client.force_login(clerk)
    page = client.get(f"/documentos/{draft.pk}/").content.decode()
    assert 'id="issue-button"' in page
    response = client.post(f"/documentos/{draft.pk}/emitir/", follow=True)
    html = response.content.decode()
    assert "Documento emitido con folio 1" in html and "Descargar XML" in html
    draft.refresh_from_db()
    assert draft.state == DocumentState.ISSUED
    dte = Dte.objects.get()
    xml = client.get(f"/dte/{dte.pk}/xml/")
    assert xml.status_code == 200 and b"<DTE" in xml.content


def test_ui_issue_error_is_shown(client, clerk, drafts, issuer):
    draft = drafts()
    Certificate.objects.all().delete()
    client.force_login(clerk)
    html = client.post(f"/documentos/{draft.pk}/emitir/", follow=True).content.decode()
    assert "No se pudo emitir" in html and "certificado" in html


def test_ui_upload_page(client, admin_user, viewer, company, sandbox, make_caf_file, cert_pfx):
    client.force_login(viewer)
    assert client.get("/folios-y-certificados/").status_code == 200
    caf = SimpleUploadedFile("caf.xml", make_caf_file(33))
    assert client.post("/folios-y-certificados/", {"file": caf}).status_code == 403
    client.force_login(admin_user)
    caf = SimpleUploadedFile("caf.xml", make_caf_file(33))
    assert client.post("/folios-y-certificados/", {"file": caf}).status_code == 302
    bad = SimpleUploadedFile("firma.p12", cert_pfx)
    response = client.post("/folios-y-certificados/", {"file": bad, "password": "mala"})
    assert response.status_code == 400 and "contraseña" in response.content.decode().lower()
    page = client.get("/folios-y-certificados/").content.decode()
    assert "Quedan 100 folios" in page or "100" in page


def test_admin_caf_upload_goes_through_the_service(
    client, admin_user, company, sandbox, make_caf_file
):
    client.force_login(admin_user)
    caf = SimpleUploadedFile("caf.xml", make_caf_file(52))
    response = client.post("/admin/dte/caf/add/", {"company": company.pk, "upload": caf})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Caf.objects.get().tipo_dte == 52
    bad = SimpleUploadedFile("caf.xml", make_caf_file(52, 1, 10))
    response = client.post("/admin/dte/caf/add/", {"company": company.pk, "upload": bad})
    assert response.status_code == 200 and "superpone" in response.content.decode()


def test_issue_command_single_and_batch(issuer, demo_catalog, tmp_path, capsys):
    from tests.dte.test_issue import ISSUE_DATA

    # The example notas modify the example factura: it goes first.
    call_command("issue", company="76086428-5", file=str(ISSUE_DATA / "33.json"), out=str(tmp_path))
    call_command(
        "issue", company="76.086.428-5", file=str(ISSUE_DATA / "61.json"), out=str(tmp_path / "one")
    )
    out = capsys.readouterr().out
    assert "61 folio 1" in out
    assert (tmp_path / "one" / "DTE--76086428-5--61--1.xml").exists()
    assert len(list((tmp_path / "one").glob("EnvioDTE--*.xml"))) == 1

    batch = [json.loads((ISSUE_DATA / f"{t}.json").read_text()) for t in (56, 41, 52)]
    batch.append({"tipo_dte": 33, "fecha_emision": "2026-11-20", "lines": []})
    batch.append(
        {
            "tipo_dte": 33,
            "fecha_emision": "2026-11-20",
            "partner": "99.999.999-9",
            "lines": [{"name": "x", "quantity": "1", "unit_price": "1"}],
        }
    )
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(batch))
    with pytest.raises(SystemExit) as exit_info:
        call_command("issue", company="76086428-5", file=str(path), out=str(tmp_path / "b"))
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert "56 folio 1" in captured.out and "41 folio 1" in captured.out
    rejected = [ln for ln in captured.err.splitlines() if ln.startswith("rejected")]
    assert len(rejected) == 2 and "document 4" in rejected[0] and "document 5" in rejected[1]
    assert len(list((tmp_path / "b").glob("Envio*.xml"))) == 2  # EnvioDTE + EnvioBOLETA
    from erp.models import SalesDocument

    assert not SalesDocument.objects.filter(state=DocumentState.DRAFT).exists()


def test_issue_command_bad_arguments(issuer, tmp_path):
    from django.core.management.base import CommandError

    (tmp_path / "bad.json").write_text("{ no es json")
    with pytest.raises(CommandError, match="invalid JSON"):
        call_command(
            "issue", company="76086428-5", file=str(tmp_path / "bad.json"), out=str(tmp_path)
        )
    with pytest.raises(CommandError, match="--company"):
        call_command("issue", company="1-2", file=str(tmp_path / "bad.json"), out=str(tmp_path))


def test_verify_command(tmp_path, capsys, sandbox):
    call_command("verify", str(NC_SAMPLE))
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(
        NC_SAMPLE.read_bytes().replace(b"<MntTotal>57347078", b"<MntTotal>57347079")
    )
    with pytest.raises(SystemExit) as info:
        call_command("verify", str(NC_SAMPLE), str(tampered))
    assert info.value.code == 1
    reports = json.loads(capsys.readouterr().out)
    assert [r["ok"] for r in reports] == [True, False]
