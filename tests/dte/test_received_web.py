"""The "Recibidos" pages: the inbox with its filters and deadlines, the upload of a supplier's
files, a document's page (checks, history, answers, printed PDF) and its decisions (accept,
accept with discrepancies, claim, receipt of goods, asking the SII), the bulk acceptance, and
the exchange mailbox settings. The SII's RCV is stubbed (receiving._rcv): the live-SII flow is
tests/dte/sii/test_receiving_flow.py."""

import io
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from dte import receiving, vault
from dte.models import (
    ExchangeMailbox,
    IntakeSource,
    ReceivedDte,
    ReceivedStatus,
    SiiConfirmation,
)
from dte.sandbox.supplier import Supplier, default_supplier
from dte.sii.errors import SiiRetryableError
from erp.models import PurchaseDocument
from tests.dte import receiving_material as material

pytestmark = pytest.mark.django_db


# --- Material shared with the API, tenancy and browser tests ----------------------------------


def make_supplier(sii_key) -> Supplier:
    """A make-believe supplier with its own certificate and CAFs (signed by the sandbox SII's
    key); folios go on across the session, each test has its own database."""
    return Supplier(default_supplier(), sii_key, timezone.now())


@pytest.fixture(scope="session")
def received_supplier(sii_key):
    return make_supplier(sii_key)


def supplier_envelope(supplier, company, *, count=1, tipo=33) -> bytes:
    """A signed EnvioDTE from the supplier to `company`, as it would arrive by mail."""
    return material.supplier_envelope(supplier, company, count=count, tipo=tipo)[0]


def receive_from(supplier, company, *, count=1, actor=None) -> list[ReceivedDte]:
    envelope = supplier_envelope(supplier, company, count=count)
    result = receiving.receive(
        company=company, uploads=[("envio.xml", envelope)], source=IntakeSource.UPLOAD, actor=actor
    )
    return [ReceivedDte.objects.get(pk=d.received_dte_id) for d in result.documents]


def confirm(row: ReceivedDte, *, days_left: int = 8) -> ReceivedDte:
    """What the SII's answer would record: DOK, received at the SII `8 - days_left` days ago."""
    received = timezone.now() - timedelta(days=receiving.CLAIM_DAYS - days_left)
    row.sii_confirmation = SiiConfirmation.DOK
    row.sii_received_at = received
    row.claim_deadline = received + timedelta(days=receiving.CLAIM_DAYS)
    row.save()
    return row


def stub_rcv(monkeypatch) -> list[tuple[int, str]]:
    """The SII's RCV takes every action (the live exchange is the SII tests' business); the
    actions asked for are listed as (document id, action)."""
    calls: list[tuple[int, str]] = []

    def record(company, row, action, now, actor):
        calls.append((row.pk, action))

    monkeypatch.setattr(receiving, "_rcv", record)
    return calls


@pytest.fixture
def rcv_calls(monkeypatch):
    return stub_rcv(monkeypatch)


def zipped(*files: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files:
            archive.writestr(name, data)
    return buffer.getvalue()


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- The inbox --------------------------------------------------------------------------------


def test_inbox_lists_documents_in_spanish_with_deadlines(client, clerk, issuer, received_supplier):
    first, second, third = receive_from(received_supplier, issuer, count=3)
    confirm(first, days_left=1)
    confirm(second, days_left=-1)
    client.force_login(clerk)
    page = client.get("/recibidos/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Proveedora Austral de Insumos SpA" in html and "77.123.456-9" in html
    assert f"$ {first.monto_total:,}".replace(",", ".") in html
    assert first.fecha_emision.strftime("%d-%m-%Y") in html
    assert "Factura electrónica" in html and "Recibido" in html
    assert "El SII lo tiene (DOK)" in html and "Sin consultar" in html  # third: not asked yet
    assert 'class="deadline warn">⚠ 1 día' in html  # within WARN_DAYS: a visible warning
    assert '<span class="deadline over">vencido</span>' in html
    assert html.count('name="ids"') == 3  # open documents can be selected
    confirm(third, days_left=0)
    assert (
        '<span class="deadline warn">⚠ vence hoy</span>'
        in client.get("/recibidos/").content.decode()
    )
    assert 'href="/recibidos/"' in html  # the navigation link
    assert "Aceptar seleccionados" in html and 'action="/recibidos/subir/"' in html


def test_inbox_filters(client, clerk, issuer, received_supplier):
    rows = receive_from(received_supplier, issuer, count=3)
    confirm(rows[0], days_left=2)
    confirm(rows[1], days_left=6)
    ReceivedDte.objects.filter(pk=rows[2].pk).update(
        status=ReceivedStatus.ACCEPTED, fecha_emision=rows[2].fecha_emision - timedelta(days=40)
    )
    client.force_login(clerk)

    def folios(query: str) -> set[int]:
        page = client.get(f"/recibidos/?{query}")
        assert page.status_code == 200
        return {row.folio for row in page.context["page"]}

    every = {r.folio for r in rows}
    assert folios("") == every
    assert folios("estado=accepted") == {rows[2].folio}
    assert folios("estado=received") == {rows[0].folio, rows[1].folio}
    assert folios("proveedor=austral") == every
    assert folios("proveedor=77.123.456-9") == every
    assert folios("proveedor=77123456") == every
    assert folios("proveedor=Otro+proveedor") == set()
    today = timezone.localdate()
    assert folios(f"desde={today:%d-%m-%Y}") == {rows[0].folio, rows[1].folio}
    old = rows[2].fecha_emision - timedelta(days=40)
    assert folios(f"hasta={old + timedelta(days=1):%d-%m-%Y}") == {rows[2].folio}
    assert folios("vence=2") == {rows[0].folio}
    assert folios("vence=7") == {rows[0].folio, rows[1].folio}
    # Something unreadable is no filter, never an error page.
    assert folios("desde=ayer&vence=mucho") == every


def test_inbox_paginates(client, clerk, issuer, received_supplier):
    (row,) = receive_from(received_supplier, issuer)
    for folio in range(1000, 1030):
        ReceivedDte.objects.create(
            company=issuer,
            envelope=row.envelope,
            tipo_dte=33,
            folio=folio,
            rut_emisor=row.rut_emisor,
            razon_social=row.razon_social,
            fecha_emision=row.fecha_emision,
            monto_total=1190,
            xml=row.xml,
            estado_recep_dte=0,
        )
    client.force_login(clerk)
    first = client.get("/recibidos/?estado=received")
    assert len(first.context["page"]) == 25 and "Página 1 de 2" in first.content.decode()
    assert "?estado=received&page=2" in first.content.decode()
    second = client.get("/recibidos/?estado=received&page=2")
    assert len(second.context["page"]) == 6


def test_viewer_sees_the_inbox_but_no_actions(client, viewer, issuer, received_supplier):
    receive_from(received_supplier, issuer)
    client.force_login(viewer)
    html = client.get("/recibidos/").content.decode()
    assert "Proveedora Austral" in html
    assert 'name="ids"' not in html and "/recibidos/subir/" not in html


# --- Upload -----------------------------------------------------------------------------------


def test_upload_xml_and_zip_shows_each_outcome(client, clerk, issuer, received_supplier):
    from django.core.files.uploadedfile import SimpleUploadedFile

    one = supplier_envelope(received_supplier, issuer, count=1)
    two = supplier_envelope(received_supplier, issuer, count=2)
    client.force_login(clerk)
    files = [
        SimpleUploadedFile("envio1.xml", one, "application/xml"),
        SimpleUploadedFile("lote.zip", zipped(("envio2.xml", two)), "application/zip"),
    ]
    response = client.post("/recibidos/subir/", {"files": files})
    assert response.status_code == 200
    html = response.content.decode()
    assert ReceivedDte.objects.filter(company=issuer).count() == 3
    assert html.count('data-status="received"') == 3
    assert "Envío recibido conforme" in html
    assert _messages(response) == ["Recepción: 3 recibidos."]
    row = ReceivedDte.objects.filter(company=issuer).first()
    assert row.envelope.source == IntakeSource.UPLOAD and row.events.first().actor == clerk
    assert f'href="/recibidos/{row.pk}/"' in html

    # The same file again: recognised, nothing stored twice.
    again = client.post(
        "/recibidos/subir/", {"files": SimpleUploadedFile("envio1.xml", one, "application/xml")}
    )
    assert again.status_code == 200
    assert 'data-status="duplicate"' in again.content.decode()
    assert "Ya recibido antes" in again.content.decode()
    assert ReceivedDte.objects.filter(company=issuer).count() == 3


def test_upload_refusals_are_shown_not_raised(client, clerk, issuer):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(clerk)
    empty = client.post("/recibidos/subir/", {})
    assert empty.status_code == 400
    assert "Este campo es requerido." in empty.content.decode()
    junk = client.post(
        "/recibidos/subir/",
        {
            "files": SimpleUploadedFile(
                "nada.zip", zipped(("leeme.txt", b"hola")), "application/zip"
            )
        },
    )
    assert junk.status_code == 200
    assert "No se encontraron documentos" in junk.content.decode()
    broken = client.post(
        "/recibidos/subir/",
        {"files": SimpleUploadedFile("roto.xml", b"<EnvioDTE><SetDTE>", "application/xml")},
    )
    assert broken.status_code == 200
    assert "Recepción con observaciones" in " ".join(_messages(broken))


def test_upload_needs_the_permission(client, viewer, issuer):
    client.force_login(viewer)
    assert client.get("/recibidos/subir/").status_code == 403
    assert client.post("/recibidos/subir/", {}).status_code == 403


# --- A document's page ------------------------------------------------------------------------


def test_detail_shows_facts_checks_history_and_files(client, clerk, issuer, received_supplier):
    (row,) = receive_from(received_supplier, issuer, actor=clerk)
    confirm(row, days_left=2)
    client.force_login(clerk)
    page = client.get(f"/recibidos/{row.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"Factura electrónica N° {row.folio}" in html
    assert "77.123.456-9" in html and f"$ {row.monto_total:,}".replace(",", ".") in html
    for label in ("Firma", "Timbre (TED)", "CAF", "Totales"):
        assert f'<td data-label="Verificación">{label}</td>' in html
    assert html.count("Correcta") == 4
    assert "La firma electrónica es válida: el documento no fue alterado." in html
    assert "Detalle técnico" in html  # the verifier's own words, folded away
    assert "Recepción" in html and "DTE recibido OK" in html  # the intake event, code 0
    assert '<td data-label="Código">0</td>' in html
    assert "quedan 2 días" in html and "deadline warn" in html
    assert (
        row.claim_deadline.astimezone(timezone.get_current_timezone()).strftime("%d-%m-%Y") in html
    )
    for kind in ("respuesta", "sobre"):
        assert f"/recibidos/{row.pk}/archivos/{kind}/" in html
    assert f"/recibidos/{row.pk}/archivos/resultado/" not in html  # not answered yet
    for button in (
        "accept-button",
        "Aceptar con reparos",
        "Reclamar",
        "Acusar recibo de mercaderías",
        "Consultar al SII",
    ):
        assert button in html
    assert f'href="/recibidos/{row.pk}/pdf/"' in html


def test_detail_for_a_viewer_has_no_buttons(client, viewer, issuer, received_supplier):
    (row,) = receive_from(received_supplier, issuer)
    client.force_login(viewer)
    html = client.get(f"/recibidos/{row.pk}/").content.decode()
    assert "Verificaciones" in html and "accept-form" not in html and "claim-form" not in html


def test_pdf_is_the_printed_document_with_its_stamp(client, viewer, issuer, received_supplier):
    (row,) = receive_from(received_supplier, issuer)
    client.force_login(viewer)
    response = client.get(f"/recibidos/{row.pk}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert f'filename="DTE--77123456-9--33--{row.folio}.pdf"' in response["Content-Disposition"]


@pytest.mark.poppler
def test_pdf_stamp_scans_as_the_documents_ted(client, viewer, issuer, received_supplier):
    from tests.pdfscan import scan, ted_of

    (row,) = receive_from(received_supplier, issuer)
    client.force_login(viewer)
    pdf = client.get(f"/recibidos/{row.pk}/pdf/").content
    assert scan(pdf, dpi=300)["pdf417"] == [ted_of(row)]


def test_downloads_xml_and_answers(client, viewer, issuer, received_supplier):
    (row,) = receive_from(received_supplier, issuer)
    client.force_login(viewer)
    xml = client.get(f"/recibidos/{row.pk}/xml/")
    assert xml.status_code == 200 and bytes(xml.content) == bytes(row.xml)
    answer = client.get(f"/recibidos/{row.pk}/archivos/respuesta/")
    assert answer.status_code == 200 and b"RecepcionEnvio" in answer.content
    assert f"RespuestaDTE--{issuer.rut}--{row.envelope_id}.xml" in answer["Content-Disposition"]
    original = client.get(f"/recibidos/{row.pk}/archivos/sobre/")
    assert original.content == bytes(row.envelope.xml)
    assert 'filename="envio.xml"' in original["Content-Disposition"]
    assert client.get(f"/recibidos/{row.pk}/archivos/resultado/").status_code == 404
    assert client.get(f"/recibidos/{row.pk}/archivos/otra-cosa/").status_code == 404


# --- Decisions --------------------------------------------------------------------------------


def test_accept(client, clerk, issuer, received_supplier, rcv_calls):
    (row,) = receive_from(received_supplier, issuer)
    confirm(row)
    client.force_login(clerk)
    response = client.post(f"/recibidos/{row.pk}/aceptar/", {"periodo": ""}, follow=True)
    assert response.status_code == 200
    assert "Documento aceptado." in _messages(response)
    row.refresh_from_db()
    assert row.status == ReceivedStatus.ACCEPTED and row.commercial_result == "0"
    assert rcv_calls == [(row.pk, "ACD")]
    purchase = PurchaseDocument.objects.get(pk=row.purchase_id)
    assert purchase.folio == row.folio and purchase.monto_total == row.monto_total
    html = response.content.decode()
    assert 'id="received-status">Aceptado<' in html
    assert f"/recibidos/{row.pk}/archivos/resultado/" in html and "purchase-link" in html
    assert "accept-button" not in html  # decided
    result = client.get(f"/recibidos/{row.pk}/archivos/resultado/")
    assert b"ResultadoDTE" in result.content


def test_accept_with_discrepancies_and_a_period(
    client, clerk, issuer, received_supplier, rcv_calls
):
    (row,) = receive_from(received_supplier, issuer)
    confirm(row)
    client.force_login(clerk)
    missing = client.post(
        f"/recibidos/{row.pk}/aceptar/", {"with_discrepancies": "1", "discrepancies": " "}
    )
    assert missing.status_code == 302
    assert "Indique los reparos" in " ".join(_messages(client.get(missing.url)))
    bad_period = client.post(f"/recibidos/{row.pk}/aceptar/", {"periodo": "13-2026"}, follow=True)
    assert "Revise los datos" in " ".join(_messages(bad_period))
    row.refresh_from_db()
    assert row.status == ReceivedStatus.RECEIVED and rcv_calls == []

    earlier = row.fecha_emision.replace(day=1) - timedelta(days=1)
    too_early = client.post(
        f"/recibidos/{row.pk}/aceptar/", {"periodo": f"{earlier:%m-%Y}"}, follow=True
    )
    assert "no puede ser anterior al mes del documento" in " ".join(_messages(too_early))
    assert rcv_calls == []  # refused before anything was recorded at the SII

    period = (row.fecha_emision.replace(day=1) + timedelta(days=32)).replace(day=1)
    response = client.post(
        f"/recibidos/{row.pk}/aceptar/",
        {
            "with_discrepancies": "1",
            "discrepancies": "Precio del tóner distinto al cotizado",
            "periodo": f"{period:%m-%Y}",
        },
        follow=True,
    )
    assert "Documento aceptado con reparos." in _messages(response)
    row.refresh_from_db()
    assert row.commercial_result == "1" and "tóner" in row.commercial_glosa
    assert row.tax_period == period
    assert "Aceptado con reparos" in response.content.decode()


def test_refusals_are_messages_never_errors(client, clerk, issuer, received_supplier, monkeypatch):
    (row,) = receive_from(received_supplier, issuer)
    client.force_login(clerk)
    # Not confirmed by the SII yet: the service refuses, the page says why.
    response = client.post(f"/recibidos/{row.pk}/aceptar/", {}, follow=True)
    assert response.status_code == 200
    assert "El SII aún no confirma" in " ".join(_messages(response))
    # The SII does not answer while recording: a message, nothing recorded, no 500.
    confirm(row)

    def down(*args, **kwargs):
        raise SiiRetryableError("tiempo de espera agotado")

    monkeypatch.setattr(receiving, "_sii_session", down)
    response = client.post(f"/recibidos/{row.pk}/aceptar/", {}, follow=True)
    assert "No se pudo consultar al SII" in " ".join(_messages(response))
    response = client.post(f"/recibidos/{row.pk}/consultar-sii/", {}, follow=True)
    assert response.status_code == 200
    assert "tiempo de espera agotado" in " ".join(_messages(response))
    row.refresh_from_db()
    assert row.status == ReceivedStatus.RECEIVED


def test_claim(client, clerk, issuer, received_supplier, rcv_calls):
    (row,) = receive_from(received_supplier, issuer)
    confirm(row, days_left=3)
    client.force_login(clerk)
    wrong = client.post(f"/recibidos/{row.pk}/reclamar/", {"action": "XYZ", "reason": "x"})
    assert wrong.status_code == 302 and rcv_calls == []
    response = client.post(
        f"/recibidos/{row.pk}/reclamar/",
        {"action": "RFP", "reason": "Faltaron 3 resmas"},
        follow=True,
    )
    assert "Reclamo registrado." in _messages(response)
    row.refresh_from_db()
    assert row.status == ReceivedStatus.CLAIMED and rcv_calls == [(row.pk, "RFP")]
    assert row.purchase_id is None
    # A late claim is refused by the service, shown as a message.
    (late,) = receive_from(received_supplier, issuer)
    confirm(late, days_left=-1)
    response = client.post(
        f"/recibidos/{late.pk}/reclamar/", {"action": "RCD", "reason": "tarde"}, follow=True
    )
    assert "venció" in " ".join(_messages(response))


def test_goods_receipt(client, clerk, issuer, received_supplier, rcv_calls):
    (row,) = receive_from(received_supplier, issuer)
    confirm(row)
    client.force_login(clerk)
    empty = client.post(f"/recibidos/{row.pk}/mercaderias/", {"recinto": ""}, follow=True)
    assert "Revise los datos" in " ".join(_messages(empty))
    response = client.post(
        f"/recibidos/{row.pk}/mercaderias/", {"recinto": "Bodega central"}, follow=True
    )
    assert "Recibo de mercaderías otorgado." in _messages(response)
    row.refresh_from_db()
    assert row.goods_received_at and rcv_calls == [(row.pk, "ERM")]
    receipt = client.get(f"/recibidos/{row.pk}/archivos/recibo/")
    assert receipt.status_code == 200 and b"EnvioRecibos" in receipt.content


def test_ask_the_sii(client, clerk, issuer, received_supplier, monkeypatch):
    (row,) = receive_from(received_supplier, issuer)
    asked = []

    def answer(received_id, **kwargs):
        asked.append(received_id)
        return "DOK"

    monkeypatch.setattr(receiving, "confirm_with_sii", answer)
    client.force_login(clerk)
    response = client.post(f"/recibidos/{row.pk}/consultar-sii/", follow=True)
    assert asked == [row.pk]
    assert "Respuesta del SII: El SII lo tiene (DOK)." in _messages(response)


def test_decisions_need_the_permission_and_post(client, viewer, issuer, received_supplier):
    (row,) = receive_from(received_supplier, issuer)
    confirm(row)
    client.force_login(viewer)
    for action in ("aceptar", "reclamar", "mercaderias", "consultar-sii"):
        assert client.post(f"/recibidos/{row.pk}/{action}/", {}).status_code == 403
    assert client.post("/recibidos/aceptar/", {"ids": [row.pk]}).status_code == 403
    row.refresh_from_db()
    assert row.status == ReceivedStatus.RECEIVED and not row.events.exclude(kind="intake")


def test_bulk_accept_reports_each_document(client, clerk, issuer, received_supplier, rcv_calls):
    ok1, ok2, unconfirmed = receive_from(received_supplier, issuer, count=3)
    confirm(ok1)
    confirm(ok2)
    client.force_login(clerk)
    response = client.post(
        "/recibidos/aceptar/",
        {"ids": [ok1.pk, ok2.pk, unconfirmed.pk, 999999], "query": "estado=received&page=3"},
    )
    assert response.status_code == 302 and response.url == "/recibidos/?estado=received"
    notes = _messages(client.get(response.url))
    assert "2 documentos aceptados." in notes
    assert any(f"N° {unconfirmed.folio}" in n and "El SII aún no confirma" in n for n in notes)
    assert "Documento #999999: no encontrado." in notes
    statuses = dict(ReceivedDte.objects.values_list("pk", "status"))
    assert statuses[ok1.pk] == statuses[ok2.pk] == ReceivedStatus.ACCEPTED
    assert statuses[unconfirmed.pk] == ReceivedStatus.RECEIVED
    nothing = client.post("/recibidos/aceptar/", {})
    assert "Seleccione al menos un documento." in _messages(client.get(nothing.url))


# --- The exchange mailbox ---------------------------------------------------------------------


def test_mailbox_settings_for_admins(client, admin_user, clerk, company):
    client.force_login(clerk)
    assert client.get("/recibidos/casilla/").status_code == 403
    client.force_login(admin_user)
    page = client.get("/recibidos/casilla/")
    assert page.status_code == 200 and "Casilla de intercambio" in page.content.decode()
    data = {
        "address": "dte@empresa-demo.cl",
        "host": "imap.empresa-demo.cl",
        "port": "993",
        "security": "ssl",
        "username": "dte@empresa-demo.cl",
        "folder": "INBOX",
        "is_active": "on",
    }
    missing = client.post("/recibidos/casilla/", {**data, "password": ""})
    assert missing.status_code == 400 and "Ingrese la contraseña" in missing.content.decode()
    saved = client.post("/recibidos/casilla/", {**data, "password": "secreta-1"})
    assert saved.status_code == 302
    mailbox = ExchangeMailbox.objects.get(company=company)
    assert vault.decrypt(bytes(mailbox.password_encrypted)) == b"secreta-1"
    # Blank keeps the password; the page never shows it.
    client.post("/recibidos/casilla/", {**data, "password": "", "folder": "DTE"})
    mailbox.refresh_from_db()
    assert mailbox.folder == "DTE" and vault.decrypt(bytes(mailbox.password_encrypted)) == (
        b"secreta-1"
    )
    ExchangeMailbox.objects.filter(pk=mailbox.pk).update(
        last_polled_at=timezone.now(), last_error="Autenticación rechazada por el servidor"
    )
    html = client.get("/recibidos/casilla/").content.decode()
    assert "secreta-1" not in html and "Autenticación rechazada por el servidor" in html
    assert "Última revisión" in html


# --- Django admin -----------------------------------------------------------------------------


def test_admin_shows_received_documents_read_only(client, admin_user, issuer, received_supplier):
    (row,) = receive_from(received_supplier, issuer)
    client.force_login(admin_user)
    listing = client.get("/admin/dte/receiveddte/")
    assert listing.status_code == 200 and "Proveedora Austral" in listing.content.decode()
    page = client.get(f"/admin/dte/receiveddte/{row.pk}/change/")
    assert page.status_code == 200 and "DTE recibido OK" in page.content.decode()
    assert client.get("/admin/dte/receiveddte/add/").status_code == 403
    assert client.get("/admin/dte/receivedenvelope/").status_code == 200
    assert client.get(f"/admin/dte/receivedenvelope/{row.envelope_id}/change/").status_code == 200


def test_admin_mailbox_password_is_encrypted(client, admin_user, company):
    client.force_login(admin_user)
    data = {
        "company": company.pk,
        "address": "dte@empresa-demo.cl",
        "host": "imap.empresa-demo.cl",
        "port": "993",
        "security": "ssl",
        "username": "dte",
        "folder": "INBOX",
        "is_active": "on",
    }
    missing = client.post("/admin/dte/exchangemailbox/add/", {**data, "password": ""})
    assert missing.status_code == 200 and not ExchangeMailbox.objects.exists()
    added = client.post("/admin/dte/exchangemailbox/add/", {**data, "password": "clave-imap"})
    assert added.status_code == 302
    mailbox = ExchangeMailbox.objects.get(company=company)
    assert vault.decrypt(bytes(mailbox.password_encrypted)) == b"clave-imap"
    change = client.get(f"/admin/dte/exchangemailbox/{mailbox.pk}/change/")
    assert "clave-imap" not in change.content.decode()
    data.pop("company")
    kept = client.post(
        f"/admin/dte/exchangemailbox/{mailbox.pk}/change/", {**data, "password": "", "port": "143"}
    )
    assert kept.status_code == 302
    mailbox.refresh_from_db()
    assert mailbox.port == 143
    assert vault.decrypt(bytes(mailbox.password_encrypted)) == b"clave-imap"


def test_a_large_upload_goes_to_a_batch_page_that_follows_the_task(
    client, clerk, issuer, received_supplier, eager_tasks, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = [
        (f"envio{n}.xml", supplier_envelope(received_supplier, issuer))
        for n in range(receiving.INLINE_FILES + 2)
    ]
    client.force_login(clerk)
    upload = SimpleUploadedFile("junio.zip", zipped(*files), "application/zip")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/recibidos/subir/", {"files": upload})
    assert response.status_code == 302
    assert response["Location"].startswith("/recibidos/cargas/")
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "22 documentos: 22 recibidos, 0 duplicados, 0 rechazados." in html
    assert html.count('data-status="received"') == 22
    assert ReceivedDte.objects.filter(company=issuer).count() == 22


def test_a_document_verified_with_the_namespace_added_says_so_in_spanish(
    client, clerk, issuer, received_supplier
):
    envelope = supplier_envelope(received_supplier, issuer)
    stripped = envelope.replace(b' xmlns="http://www.sii.cl/SiiDte"', b"")
    result = receiving.receive(
        company=issuer, uploads=[("sin-ns.xml", stripped)], source=IntakeSource.UPLOAD
    )
    (document,) = result.documents
    assert document.status == "received", document.reasons
    client.force_login(clerk)
    html = client.get(f"/recibidos/{document.received_dte_id}/").content.decode()
    assert "La firma se verificó con el espacio de nombres del SII añadido" in html
