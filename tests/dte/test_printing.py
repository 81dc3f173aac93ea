"""The printed document, checked the way a person (or the SII) would: rasterise the PDF, scan
the PDF417 and the QR with a real barcode reader, read the text."""

import io
from datetime import date
from decimal import Decimal

import pytest
from celery.exceptions import Retry
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from pypdf import PdfReader

from dte import printing, services
from erp import services as erp_services
from tests.factories import PartnerFactory
from tests.pdfscan import scan, ted_of

pytestmark = [pytest.mark.django_db, pytest.mark.poppler]


def issue(company, *, tipo=33, lines=None, partner=None):
    partner = (
        partner
        if partner is not None
        else PartnerFactory(
            company=company,
            rut="96790240-3",
            razon_social="Distribuidora Los Andes S.A.",
            email_dte="dte@losandes.example",
        )
    )
    lines = lines or [
        {"name": "Consultoría", "quantity": Decimal(12), "unit_price": Decimal(45000)},
        {
            "name": "Licencia anual",
            "quantity": Decimal(1),
            "unit_price": Decimal(120000),
            "discount_pct": Decimal(10),
        },
    ]
    draft = erp_services.sales_document_create(
        company=company,
        actor=None,
        data={
            "tipo_dte": tipo,
            "fecha_emision": date(2026, 11, 20),
            "partner": partner.pk if partner else None,
            "lines": lines,
        },
    )
    return services.dte_issue(document=draft, actor=None)


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_factura_letter_stamp_qr_and_text(issuer):
    dte = issue(issuer)
    pdf = printing.render(dte)
    codes = scan(pdf)
    assert codes["pdf417"] == [ted_of(dte)]  # exactly the TED of the document's XML
    assert codes["qr"] == [printing.verify_url(dte)]
    text = text_of(pdf)
    for expected in (
        f"N° {dte.folio}",
        "76.086.428-5",
        "96.790.240-3",
        "$ 771.120",
        "FACTURA ELECTRÓNICA",
        "Timbre Electrónico SII",
        "Res. N° 80 de 2014",
        "Verifique documento: www.sii.cl",
        "20-11-2026",
        "S.I.I. - SANTIAGO CENTRO",
    ):
        assert expected in text, expected
    assert "CEDIBLE" not in text


def test_cedible_copy_has_the_receipt_block(issuer):
    dte = issue(issuer)
    text = text_of(printing.render(dte, cedible=True))
    assert "CEDIBLE" in text and "ACUSE DE RECIBO" in text and "Ley 19.983" in text


def test_boleta_thermal_by_default(issuer):
    dte = issue(issuer, tipo=39, partner=False)
    pdf = printing.dte_pdf(dte)
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    assert round(float(page.mediabox.width) / 72 * 25.4) == 80  # an 80 mm roll
    codes = scan(pdf, dpi=300)
    assert codes["pdf417"] == [ted_of(dte)]
    assert codes["qr"] == [printing.verify_url(dte)]
    assert "BOLETA ELECTRÓNICA" in text_of(pdf)
    letter = printing.render(dte, format="letter")  # any document on letter on request
    assert scan(letter)["pdf417"] == [ted_of(dte)]


def test_many_lines_paginate_and_the_stamp_stays_readable(issuer):
    lines = [
        {
            "name": f"Ítem número {n} con una descripción larga que debe ajustarse a la columna",
            "quantity": Decimal(n),
            "unit_price": Decimal(990),
        }
        for n in range(1, 61)
    ]
    dte = issue(issuer, lines=lines)
    pdf = printing.render(dte)
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    assert pages >= 2
    assert scan(pdf, page=pages)["pdf417"] == [ted_of(dte)]
    assert "Ítem número 60" in text_of(pdf)


def test_public_verification_page(issuer, client):
    dte = issue(issuer)
    url = printing.verify_url(dte).split("8000", 1)[-1]
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert f"N° {dte.folio}" in html and "$ 771.120" in html and 'id="sii-status"' in html
    assert client.get(url + "?descargar=pdf")["Content-Type"] == "application/pdf"
    assert client.get(url + "?descargar=xml").content == bytes(dte.xml)
    assert client.get("/v/no-existe-este-token-aunque-sea-largo/").status_code == 404
    assert client.get("/v/corto/").status_code == 404


def test_downloads_ui_api_and_command(issuer, clerk, client, api_for, tmp_path):
    dte = issue(issuer)
    client.force_login(clerk)
    ui = client.get(f"/dte/{dte.pk}/pdf/")
    assert ui.status_code == 200 and ui.content.startswith(b"%PDF")
    assert client.get(f"/dte/{dte.pk}/pdf/?format=rollo").status_code == 400
    api = api_for(clerk).get(f"/api/v1/companies/{issuer.rut}/dtes/{dte.pk}/pdf/?cedible=1")
    assert api.status_code == 200 and "CEDIBLE" in text_of(api.content)
    roll = api_for(clerk).get(f"/api/v1/companies/{issuer.rut}/dtes/{dte.pk}/pdf/?format=thermal")
    assert roll.status_code == 200
    assert PdfReader(io.BytesIO(roll.content)).pages[0].mediabox.width < 250  # 80 mm
    out = tmp_path / "f.pdf"
    call_command(
        "pdf", company="76.086.428-5", tipo=33, folio=dte.folio, out=str(out), format="thermal"
    )
    assert out.read_bytes().startswith(b"%PDF")
    with pytest.raises(CommandError, match="no document"):
        call_command("pdf", company="76086428-5", tipo=33, folio=999, out=str(out))


def test_stored_pdf_is_reused(issuer):
    dte = issue(issuer)
    first = printing.dte_pdf(dte)
    dte.refresh_from_db()
    assert dte.pdf_at is not None and bytes(dte.pdf) == first
    printing.dte_store_pdf(dte.pk)  # the task regenerates it
    dte.refresh_from_db()
    assert bytes(dte.pdf).startswith(b"%PDF")


def test_email_to_the_receiver(issuer):
    dte = issue(issuer)
    assert printing.dte_email(dte.pk) == "dte@losandes.example"
    sent = mail.outbox[-1]
    assert sent.to == ["dte@losandes.example"] and "Factura electrónica" in sent.subject
    assert [a[2] for a in sent.attachments] == ["application/xml", "application/pdf"]
    assert dte.events.filter(message__contains="Enviado por correo").exists()
    nobody = issue(issuer, partner=PartnerFactory(company=issuer, email_dte=""))
    with pytest.raises(printing.EmailSkipped):
        printing.dte_email(nobody.pk)
    assert not nobody.events.filter(message__icontains="correo").exists()


def test_email_attachment_is_an_envelope_for_the_receiver(issuer):
    from lxml import etree

    dte = issue(issuer)
    printing.dte_email(dte.pk)
    xml = mail.outbox[-1].attachments[0][1]
    root = etree.fromstring(xml.encode("iso-8859-1") if isinstance(xml, str) else xml)
    ns = {"s": "http://www.sii.cl/SiiDte"}
    assert root.findtext(".//s:Caratula/s:RutReceptor", namespaces=ns) == "96790240-3"
    assert root.findtext(".//s:Documento/s:Encabezado/s:IdDoc/s:Folio", namespaces=ns) == str(
        dte.folio
    )


def test_email_task_records_what_was_not_sent(issuer, monkeypatch):
    from dte import tasks

    nobody = issue(issuer, partner=PartnerFactory(company=issuer, email_dte=""))
    tasks.dte_email.apply(args=[nobody.pk])
    assert nobody.events.filter(message__contains="no tiene correo").exists()

    dte = issue(issuer)
    calls = []

    def smtp_down(dte_id):
        calls.append(dte_id)
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(printing, "dte_email", smtp_down)
    with pytest.raises(Retry):  # SMTP down: try again later
        tasks.dte_email.apply(args=[dte.pk])
    assert not dte.events.filter(message__contains="no enviado").exists()
    with pytest.raises(ConnectionRefusedError):  # the last try: give up and say so
        tasks.dte_email.apply(args=[dte.pk], retries=tasks.dte_email.max_retries)
    assert len(calls) == 2
    assert dte.events.filter(message__contains="error del servidor de correo").count() == 1


def test_email_button_queues_the_delivery(
    issuer, clerk, client, django_capture_on_commit_callbacks, eager_tasks
):
    dte = issue(issuer)
    client.force_login(clerk)
    page = client.get(reverse("erp:document_detail", args=[dte.sales_document_id]))
    assert b"Enviar por correo" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("dte:email", args=[dte.pk]), follow=True)
    assert "Envío por correo a dte@losandes.example en curso" in response.content.decode()
    assert mail.outbox[-1].to == ["dte@losandes.example"]


def test_email_api_queues_or_says_why_not(
    issuer, clerk, api_for, django_capture_on_commit_callbacks, eager_tasks
):
    dte = issue(issuer)
    url = f"/api/v1/companies/{issuer.rut}/dtes/{dte.pk}/email/"
    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(clerk).post(url)
    assert response.status_code == 202 and response.json() == {"to": "dte@losandes.example"}
    assert mail.outbox[-1].attachments[1][2] == "application/pdf"
    nobody = issue(issuer, partner=PartnerFactory(company=issuer, email_dte=""))
    refused = api_for(clerk).post(f"/api/v1/companies/{issuer.rut}/dtes/{nobody.pk}/email/")
    assert refused.status_code == 400 and "email_dte" in refused.json()["fields"]
