"""The whole receiving flow, end to end, offline: a supplier (manage.py sandbox_supplier_send)
mails a signed EnvioDTE into the company's exchange mailbox on a real Dovecot; the beat job
takes it in, verifies and answers it; the SII sandbox (live, over HTTP) confirms it and takes
the acceptance or the claim at its RCV within the 8 days; the purchase is booked."""

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from dte import receiving, tasks
from dte.core.schemas import SchemaKind, validate
from dte.models import ExchangeMailbox, ReceivedDte, ReceivedStatus
from dte.sandbox.rcv import document_age
from erp.errors import DomainError
from erp.models import PurchaseDocument
from tests.dte.receiving_material import xmlsec1_verifies_all

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.imap]


@pytest.fixture
def mailbox(issuer, imap_account):
    return receiving.mailbox_save(
        company=issuer,
        actor=None,
        data={
            "address": "dte@empresa-demo.cl",
            "host": imap_account.host,
            "port": imap_account.port,
            "security": "none",
            "username": imap_account.username,
            "folder": "INBOX",
            "is_active": True,
        },
        password=imap_account.password,
    )


def test_a_mailed_envelope_is_taken_in_confirmed_accepted_and_booked(
    sii, issuer, mailbox, imap_account, clerk, eager_tasks, capsys, tmp_path
):
    call_command("sandbox_supplier_send", "--to", issuer.rut, "--count", "2")
    assert "Enviado a casilla" in capsys.readouterr().out
    (uid,) = imap_account.unseen_uids()

    # The beat job reads the mailbox; the intake commits, then the message is marked read.
    assert tasks.mailbox_poll() == 1
    assert imap_account.seen_uids() == {uid} and not imap_account.unseen_uids()
    first, second = ReceivedDte.objects.order_by("folio")
    assert first.envelope.source == "mail"
    assert first.envelope.sender_email == "dte@proveedora-austral.cl"
    response = bytes(first.envelope.response_xml)
    assert validate(SchemaKind.RESPUESTA_DTE, response) == []
    assert xmlsec1_verifies_all(response, tmp_path)
    assert any(m.to == ["dte@proveedora-austral.cl"] for m in mail.outbox)
    mailbox.refresh_from_db()
    assert mailbox.last_polled_at and not mailbox.last_error

    # The SII has them (QueryEstDte DOK) and says since when: 8 days to claim.
    first.refresh_from_db()
    assert first.sii_confirmation == "DOK", list(first.events.values_list("message", flat=True))
    assert first.claim_deadline is not None
    assert receiving.days_left(first) in (7, 8)

    # Accepted at the SII's RCV, answered, booked.
    accepted = receiving.accept(received=first, actor=clerk)
    assert accepted.status == ReceivedStatus.ACCEPTED
    assert accepted.events.filter(kind="rcv", code="0").exists()
    purchase = PurchaseDocument.objects.get()
    assert (purchase.folio, purchase.monto_total) == (first.folio, first.monto_total)
    assert validate(SchemaKind.RESPUESTA_DTE, bytes(accepted.result_xml)) == []
    assert xmlsec1_verifies_all(bytes(accepted.result_xml), tmp_path)

    # The SII's history shows the acceptance; a claim after it is refused by the SII.
    second.refresh_from_db()
    client, _, token = receiving._sii_session(issuer, timezone.now())
    history = client.rcv_events(token, first.rut_emisor, first.tipo_dte, first.folio)
    assert [e.code for e in history.events] == ["ACD"]

    # The second one: past the 8 days at the SII, a claim is refused here with a clear message.
    moved = document_age(
        rut_emisor=second.rut_emisor, tipo_dte=second.tipo_dte, folio=second.folio, days=9
    )
    receiving.confirm_with_sii(second.pk)
    second.refresh_from_db()
    assert second.sii_received_at == moved.replace(microsecond=0)
    with pytest.raises(DomainError) as late:
        receiving.claim(received=second, actor=clerk, action="RCD", reason="Precio distinto")
    assert "plazo para reclamar venció" in late.value.message
    # …and the beat job records the tacit acceptance, booking it.
    assert receiving.sync_open()["accepted"] == 1
    second.refresh_from_db()
    assert second.status == ReceivedStatus.ACCEPTED and second.purchase is not None


def test_a_claim_within_the_deadline_is_recorded_at_the_sii(
    sii, issuer, mailbox, imap_account, clerk, eager_tasks
):
    call_command("sandbox_supplier_send", "--to", issuer.rut)
    tasks.mailbox_poll()
    row = ReceivedDte.objects.get()
    assert row.sii_confirmation == "DOK"
    claimed = receiving.claim(received=row, actor=clerk, action="RFT", reason="No llegó")
    assert claimed.status == ReceivedStatus.CLAIMED
    assert claimed.events.filter(kind="rcv", code="0").exists()
    assert not PurchaseDocument.objects.exists()
    # Accepting after the claim: the document is closed here already.
    with pytest.raises(DomainError):
        receiving.accept(received=claimed, actor=clerk)


def test_a_wrong_password_is_reported_on_the_mailbox_and_nothing_is_lost(
    sii, issuer, mailbox, imap_account, eager_tasks
):
    call_command("sandbox_supplier_send", "--to", issuer.rut)
    ExchangeMailbox.objects.filter(pk=mailbox.pk).update()
    receiving.mailbox_save(company=issuer, actor=None, data={}, password="otra-clave")
    result = receiving.poll_mailbox(mailbox.pk)
    assert result.error and "otra-clave" not in result.error
    mailbox.refresh_from_db()
    assert mailbox.last_error == result.error
    assert len(imap_account.unseen_uids()) == 1
    assert not ReceivedDte.objects.exists()


def test_the_sii_failing_at_acceptance_changes_nothing_and_a_retry_works(
    sii, issuer, mailbox, imap_account, clerk, eager_tasks
):
    call_command("sandbox_supplier_send", "--to", issuer.rut)
    tasks.mailbox_poll()
    row = ReceivedDte.objects.get()
    call_command("sandbox_fault", "ingresarAceptacionReclamoDoc", "http500", count=5)
    with pytest.raises(DomainError) as failed:
        receiving.accept(received=row, actor=clerk)
    assert "No se pudo registrar en el SII" in failed.value.message
    row.refresh_from_db()
    assert row.status == ReceivedStatus.RECEIVED and row.purchase is None
    call_command("sandbox_fault", "--clear")
    accepted = receiving.accept(received=row, actor=clerk)
    assert accepted.status == ReceivedStatus.ACCEPTED and accepted.purchase is not None


def test_the_f29_counts_a_booked_purchase_like_any_other(
    sii, issuer, mailbox, imap_account, clerk, eager_tasks
):
    from f29.selectors import purchase_aggregates

    call_command("sandbox_supplier_send", "--to", issuer.rut, "--count", "2")
    tasks.mailbox_poll()
    for row in ReceivedDte.objects.all():
        receiving.accept(received=row, actor=clerk)
    periodo = timezone.localdate().replace(day=1)
    (aggregate,) = purchase_aggregates(company=issuer, periodo=periodo)
    rows = ReceivedDte.objects.all()
    assert aggregate.tipo == 33 and aggregate.count == 2
    assert aggregate.iva_recuperable == sum(r.iva for r in rows)
    assert aggregate.total == sum(r.monto_total for r in rows)


def test_a_database_outage_during_the_intake_leaves_the_message_unread(
    sii, issuer, mailbox, imap_account, monkeypatch
):
    from django.db import OperationalError

    call_command("sandbox_supplier_send", "--to", issuer.rut)

    def outage(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(receiving, "receive", outage)
    with pytest.raises(OperationalError):
        receiving.poll_mailbox(mailbox.pk)
    assert len(imap_account.unseen_uids()) == 1
    monkeypatch.undo()
    assert receiving.poll_mailbox(mailbox.pk).documents == 1
    assert not imap_account.unseen_uids()


def test_a_message_that_cannot_be_taken_in_does_not_block_the_mailbox(
    sii, issuer, mailbox, imap_account, monkeypatch
):
    call_command("sandbox_supplier_send", "--to", issuer.rut)
    call_command("sandbox_supplier_send", "--to", issuer.rut)
    real = receiving.receive
    calls = []

    def first_one_breaks(**kwargs):
        calls.append(kwargs["message_id"])
        if len(calls) == 1:
            raise RuntimeError("a bug on odd input")
        return real(**kwargs)

    monkeypatch.setattr(receiving, "receive", first_one_breaks)
    result = receiving.poll_mailbox(mailbox.pk)
    assert result.documents == 1  # the second message still came in
    assert "no se pudo recibir" in result.error
    assert not imap_account.unseen_uids()  # the broken one is read, and named in the error
    mailbox.refresh_from_db()
    assert mailbox.last_error == result.error
