"""The SII history on a document's page speaks Spanish and says what each row was: a state, a
step that left the state as it was, or the e-mail to the receiver (never the SII's verdict)."""

import importlib
import re
from datetime import date
from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import reverse

from dte import printing, sending, services
from dte.core.domain import DteStatus
from dte.models import DteEvent, DteEventKind
from erp import services as erp_services
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

RAW_STATES = {s.value for s in DteStatus}


def issue(company):
    partner = PartnerFactory(
        company=company,
        rut="96790240-3",
        razon_social="Distribuidora Los Andes S.A.",
        email_dte="dte@losandes.example",
    )
    draft = erp_services.sales_document_create(
        company=company,
        actor=None,
        data={
            "tipo_dte": 33,
            "fecha_emision": date(2026, 11, 20),
            "partner": partner.pk,
            "lines": [{"name": "Consultoría", "quantity": Decimal(1), "unit_price": Decimal(1000)}],
        },
    )
    return services.dte_issue(document=draft, actor=None)


def test_email_rows_say_email_and_to_whom_not_the_verdict(issuer):
    dte = issue(issuer)
    dte.status = DteStatus.ACCEPTED
    dte.save(update_fields=["status"])
    printing.dte_email(dte.pk)
    printing.email_not_sent(dte.pk, "El receptor no tiene correo de intercambio.")
    sent, failed = dte.events.order_by("-id")[1], dte.events.order_by("-id")[0]
    assert sent.kind == DteEventKind.EMAIL
    assert sent.status_label == "Enviado por correo"
    assert "dte@losandes.example" in sent.message
    assert failed.kind == DteEventKind.EMAIL_FAILED
    assert failed.status_label == "Correo no enviado"
    assert "Aceptado" not in sent.status_label + failed.status_label


def test_state_and_note_rows_read_the_state_in_spanish(issuer):
    dte = issue(issuer)
    sending.note(dte, "Intento 1 fallido, se reintentará: sin conexión.")
    labels = [(e.kind, e.status_label) for e in dte.events.all()]
    assert labels[0] == (DteEventKind.STATE, "Firmado")
    assert labels[-1] == (DteEventKind.NOTE, "En cola para el SII")  # issuing queued it
    assert all(label not in RAW_STATES for _, label in labels)


def test_document_page_history_has_no_raw_states(issuer, company, clerk, client):
    dte = issue(issuer)
    dte.status = DteStatus.ACCEPTED
    dte.save(update_fields=["status"])
    DteEvent.objects.create(dte=dte, status=DteStatus.ACCEPTED, message="EPR: aceptado")
    printing.dte_email(dte.pk)
    client.force_login(clerk)
    page = client.get(reverse("erp:document_detail", args=[dte.sales_document_id]))
    html = page.content.decode()
    table = re.search(r'<table class="table" id="dte-events">.*?</table>', html, re.S).group(0)
    cells = re.findall(r"<td>(.*?)</td>", table)
    states = cells[1::4]  # Fecha, Estado, Código SII, Mensaje
    assert states[0] == "Firmado"
    assert states[-2:] == ["Aceptado por el SII", "Enviado por correo"]
    assert not RAW_STATES & set(states)


def test_migration_gives_old_rows_their_kind(issuer):
    dte = issue(issuer)
    old = [
        DteEvent.objects.create(dte=dte, status=dte.status, message=m)
        for m in (
            "Enviado por correo a dte@losandes.example (XML y PDF).",
            "Correo no enviado: El receptor no tiene correo de intercambio.",
            "Intento 2 fallido, se reintentará: timeout.",
            "Firmado y numerado.",
        )
    ]
    migration = importlib.import_module("dte.migrations.0008_dte_event_kind")
    migration.kinds_of_past_events(apps, None)
    kinds = [DteEvent.objects.get(pk=e.pk).kind for e in old]
    assert kinds == ["email", "email_failed", "note", "state"]


def test_sii_reception_stamp_reads_as_staff_write_it():
    assert sending._received_at("2026-12-05 23:02:08") == "Recibido el 05-12-2026 23:02."
    assert sending._received_at("06/12/2026 01:59:42") == "Recibido el 06-12-2026 01:59."


def test_stored_reception_stamps_are_reworded(issuer):
    dte = issue(issuer)
    rows = [
        DteEvent.objects.create(dte=dte, status=dte.status, message=m)
        for m in (
            "Enviado al SII (track id 7). Recibido el 2026-12-05 23:02:08.",
            "Enviado al SII (track id 8). Recibido el 06/12/2026 01:59:42.",
            "Enviado al SII (track id 9). Recibido el 06-12-2026 01:59:42.",
            "Recibido el 06-12-2026 01:59.",
        )
    ]
    importlib.import_module("dte.migrations.0009_reception_stamp_es_cl").reword(apps, None)
    assert [DteEvent.objects.get(pk=r.pk).message for r in rows] == [
        "Enviado al SII (track id 7). Recibido el 05-12-2026 23:02.",
        "Enviado al SII (track id 8). Recibido el 06-12-2026 01:59.",
        "Enviado al SII (track id 9). Recibido el 06-12-2026 01:59.",
        "Recibido el 06-12-2026 01:59.",
    ]


def test_received_document_history_reads_dd_mm_aaaa_hh_mm(company, clerk, client, sii_key):
    from tests.dte.test_received_web import make_supplier, receive_from

    row = receive_from(make_supplier(sii_key), company)[0]
    client.force_login(clerk)
    html = client.get(reverse("dte:received_detail", args=[row.pk])).content.decode()
    table = re.search(r'<table class="table stack" id="received-events">.*?</table>', html, re.S)
    stamps = re.findall(r'<td data-label="Fecha">(.*?)</td>', table.group(0))
    assert stamps and all(re.fullmatch(r"\d{2}-\d{2}-\d{4} \d{2}:\d{2}", s) for s in stamps)
