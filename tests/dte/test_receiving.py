"""Receiving suppliers' DTEs through the service (dte.receiving): intake, duplicates, refusals,
the RecepcionEnvio answer, the decisions and the purchase booked. The SII's side (QueryEstDte,
the RCV) runs against the live sandbox in tests/dte/sii/test_receiving_flow.py."""

import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from dte import receiving
from dte.core.schemas import SchemaKind, validate
from dte.core.verify import verify_xml
from dte.models import IntakeSource, ReceivedDte, ReceivedEnvelope, ReceivedStatus
from erp.errors import DomainError
from erp.models import Partner, PurchaseDocument, PurchaseSource, PurchaseState
from tests.dte.receiving_material import (
    supplier_envelope,
    xmlsec1_verifies_all,
)

pytestmark = pytest.mark.django_db


def _receive(company, data, name="envio.xml", **kw):
    kw.setdefault("source", IntakeSource.UPLOAD)
    return receiving.receive(company=company, uploads=[(name, data)], **kw)


def test_an_envelope_is_taken_in_answered_and_kept(
    issuer,
    supplier,
    tmp_path,
    eager_tasks,
    django_capture_on_commit_callbacks,
):
    data, docs = supplier_envelope(supplier, issuer, count=3)
    with django_capture_on_commit_callbacks(execute=True):
        result = _receive(issuer, data, sender_email="dte@proveedora-austral.cl")
    assert [d.status for d in result.documents] == ["received"] * 3
    assert not result.any_refused
    (outcome,) = result.envelopes
    assert outcome.estado == 0
    rows = ReceivedDte.objects.filter(company=issuer).order_by("folio")
    assert [r.folio for r in rows] == [d.folio for d in docs]
    assert rows[0].monto_total == docs[0].monto_total
    assert rows[0].facts["lines"][0]["nombre"] == "Resma papel carta 75 g"
    assert rows[0].events.first().code == "0"
    # The RecepcionEnvio: valid, signed, ISO-8859-1, one RecepcionDTE per document.
    response = outcome.response_xml
    assert response.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert validate(SchemaKind.RESPUESTA_DTE, response) == []
    assert response.count(b"<RecepcionDTE>") == 3
    assert b"<EstadoRecepEnv>0</EstadoRecepEnv>" in response
    assert xmlsec1_verifies_all(response, tmp_path)
    # …kept with the envelope and mailed to the supplier.
    envelope = ReceivedEnvelope.objects.get(pk=outcome.envelope_id)
    assert bytes(envelope.response_xml) == response
    (message,) = mail.outbox
    assert message.to == ["dte@proveedora-austral.cl"]
    assert message.attachments[0][0] == envelope.response_filename


def test_the_same_file_again_is_a_duplicate_and_stores_nothing(issuer, supplier):
    data, _ = supplier_envelope(supplier, issuer, count=2)
    _receive(issuer, data)
    before = (ReceivedEnvelope.objects.count(), ReceivedDte.objects.count())
    again = _receive(issuer, data, source=IntakeSource.MAIL)
    assert [d.status for d in again.documents] == ["duplicate", "duplicate"]
    assert again.envelopes[0].repeated
    assert (ReceivedEnvelope.objects.count(), ReceivedDte.objects.count()) == before


def test_a_document_in_a_new_envelope_is_recognised_as_repeated(issuer, supplier):
    data, docs = supplier_envelope(supplier, issuer, count=1)
    _receive(issuer, data)
    from dte.sandbox.supplier import envelope_for

    later = timezone.now() + timedelta(seconds=5)
    other = envelope_for(supplier, docs, rut_receptor=issuer.rut, now=later)
    assert other != data
    result = _receive(issuer, other)
    assert result.documents[0].status == "duplicate"
    assert b"<EstadoRecepDTE>4</EstadoRecepDTE>" in result.envelopes[0].response_xml
    assert ReceivedDte.objects.count() == 1


def _tamper_amount(data: bytes, doc) -> bytes:
    total = str(doc.monto_total).encode()
    return data.replace(b"<MntTotal>" + total, b"<MntTotal>" + total[:-1] + b"9", 1)


def _tamper_name(data: bytes, doc) -> bytes:
    return data.replace(b"<RznSoc>Proveedora", b"<RznSoc>Provedora", 1)


def _tamper_signature_byte(data: bytes, doc) -> bytes:
    at = data.index(b"<SignatureValue>") + len(b"<SignatureValue>") + 10
    flipped = b"B" if data[at : at + 1] == b"A" else b"A"
    return data[:at] + flipped + data[at + 1 :]


@pytest.mark.parametrize("tamper", [_tamper_amount, _tamper_name, _tamper_signature_byte])
def test_a_tampered_copy_is_refused_and_never_blocks_the_genuine_one(issuer, supplier, tamper):
    data, docs = supplier_envelope(supplier, issuer, count=1)
    tampered = tamper(data, docs[0])
    assert tampered != data
    result = _receive(issuer, tampered)
    (document,) = result.documents
    assert document.status == "refused"
    assert any("firma" in r for r in document.reasons)
    assert b"<EstadoRecepDTE>1</EstadoRecepDTE>" in result.envelopes[0].response_xml
    row = ReceivedDte.objects.get()
    assert row.status == ReceivedStatus.REFUSED
    with pytest.raises(DomainError):
        receiving.accept(received=row, actor=None)
    assert not PurchaseDocument.objects.exists()
    genuine = _receive(issuer, data)
    assert genuine.documents[0].status == "received"


def test_an_envelope_for_another_company_is_refused(issuer, other_company, supplier):
    data, _ = supplier_envelope(supplier, other_company, count=1)
    result = _receive(issuer, data)
    assert result.envelopes[0].estado == 3
    assert result.documents[0].status == "refused"
    assert result.any_refused


def test_a_zip_of_envelopes_is_taken_in_whole(issuer, supplier):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for n in range(3):
            data, _ = supplier_envelope(supplier, issuer, count=2)
            archive.writestr(f"envio-{n}.xml", data)
        archive.writestr("notas.txt", b"hola")
    result = _receive(issuer, buffer.getvalue(), name="compras.zip")
    assert len(result.documents) == 6
    assert {d.status for d in result.documents} == {"received"}
    assert result.problems == ["compras.zip/notas.txt: no es un archivo XML; se omitió."]


def test_accepting_needs_the_sii_confirmation(issuer, supplier):
    data, _ = supplier_envelope(supplier, issuer)
    _receive(issuer, data)
    row = ReceivedDte.objects.get()
    with pytest.raises(DomainError) as error:
        receiving.accept(received=row, actor=None)
    assert "SII aún no confirma" in error.value.message


def _confirmed(row, *, days_ago=0):
    received = timezone.now() - timedelta(days=days_ago)
    ReceivedDte.objects.filter(pk=row.pk).update(
        sii_confirmation="DOK",
        sii_received_at=received,
        claim_deadline=received + timedelta(days=receiving.CLAIM_DAYS),
    )
    row.refresh_from_db()
    return row


@pytest.fixture
def rcv_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(
        receiving, "_rcv", lambda company, row, action, now, actor: calls.append(action)
    )
    return calls


def test_accept_books_the_purchase_with_lines_and_the_new_supplier(
    issuer,
    supplier,
    rcv_calls,
    clerk,
    tmp_path,
):
    data, docs = supplier_envelope(supplier, issuer, count=1)
    _receive(issuer, data, sender_email="facturas@proveedora.cl")
    row = _confirmed(ReceivedDte.objects.get())
    accepted = receiving.accept(received=row, actor=clerk, discrepancies="Faltó una resma")
    assert rcv_calls == ["ACD"]
    assert accepted.status == ReceivedStatus.ACCEPTED
    assert accepted.commercial_result == "1"
    assert validate(SchemaKind.RESPUESTA_DTE, bytes(accepted.result_xml)) == []
    assert b"<EstadoDTE>1</EstadoDTE>" in bytes(accepted.result_xml)
    assert xmlsec1_verifies_all(bytes(accepted.result_xml), tmp_path)
    purchase = PurchaseDocument.objects.get()
    assert accepted.purchase_id == purchase.pk
    assert (purchase.tipo_doc, purchase.folio, purchase.source) == (33, docs[0].folio, "dte")
    assert purchase.estado == PurchaseState.REGISTRO
    assert purchase.monto_neto + purchase.iva_recuperable == purchase.monto_total
    assert purchase.periodo == timezone.localdate().replace(day=1)
    assert purchase.lines.count() == 2
    partner = Partner.objects.get(rut=supplier.emisor.rut)
    assert partner.is_supplier and partner.razon_social == supplier.emisor.razon_social
    assert partner.email_dte == "facturas@proveedora.cl"
    # Accepting twice is refused; nothing is booked twice.
    with pytest.raises(DomainError):
        receiving.accept(received=accepted, actor=clerk)
    assert PurchaseDocument.objects.count() == 1


def test_a_nota_de_credito_adjusts_its_factura(issuer, supplier, rcv_calls):
    from dte.core.domain import Referencia

    data, docs = supplier_envelope(supplier, issuer, count=1)
    _receive(issuer, data)
    receiving.accept(received=_confirmed(ReceivedDte.objects.get()), actor=None)
    factura = PurchaseDocument.objects.get()
    ref = Referencia("33", str(docs[0].folio), docs[0].fecha_emision, 3, "Devolución")
    nota_data, _ = supplier_envelope(supplier, issuer, tipo=61, referencias=[ref])
    _receive(issuer, nota_data)
    nota = _confirmed(ReceivedDte.objects.get(tipo_dte=61))
    receiving.accept(received=nota, actor=None)
    assert rcv_calls == ["ACD", "ACD"]  # _rcv itself skips types without RCV events
    booked = PurchaseDocument.objects.get(tipo_doc=61)
    assert booked.references.get().referenced == factura
    assert factura.adjusted_by.get().document == booked


def test_claim_within_the_deadline_and_not_after(issuer, supplier, rcv_calls):
    data, _ = supplier_envelope(supplier, issuer, count=2)
    _receive(issuer, data)
    first, second = ReceivedDte.objects.order_by("folio")
    first = _confirmed(first, days_ago=3)
    claimed = receiving.claim(received=first, actor=None, action="RFT", reason="No llegó nada")
    assert claimed.status == ReceivedStatus.CLAIMED
    assert b"<EstadoDTE>2</EstadoDTE>" in bytes(claimed.result_xml)
    assert rcv_calls == ["RFT"]
    second = _confirmed(second, days_ago=9)
    with pytest.raises(DomainError) as error:
        receiving.claim(received=second, actor=None, action="RCD", reason="Precio")
    assert "plazo para reclamar venció" in error.value.message
    with pytest.raises(DomainError):
        receiving.claim(received=second, actor=None, action="XXX", reason="?")
    assert not PurchaseDocument.objects.exists()


def test_goods_receipt_is_a_signed_envio_recibos(issuer, supplier, rcv_calls, tmp_path):
    data, _ = supplier_envelope(supplier, issuer)
    _receive(issuer, data)
    row = _confirmed(ReceivedDte.objects.get())
    with pytest.raises(DomainError):
        receiving.acknowledge_goods(received=row, actor=None, recinto=" ")
    done = receiving.acknowledge_goods(received=row, actor=None, recinto="Bodega Maipú")
    receipt = bytes(done.receipt_xml)
    assert validate(SchemaKind.ENVIO_RECIBOS, receipt) == []
    assert "Bodega Maipú".encode("iso-8859-1") in receipt
    assert xmlsec1_verifies_all(receipt, tmp_path)
    assert rcv_calls == ["ERM"]


def test_the_tacit_acceptance_after_eight_days_books_it(issuer, supplier, monkeypatch):
    data, _ = supplier_envelope(supplier, issuer)
    _receive(issuer, data)
    row = _confirmed(ReceivedDte.objects.get(), days_ago=9)

    class History:
        events = []

    class Client:
        def rcv_events(self, *args, **kwargs):
            return History()

    monkeypatch.setattr(receiving, "_sii_session", lambda company, now: (Client(), None, "t"))
    assert receiving.sync_with_sii(row.pk) == ReceivedStatus.ACCEPTED
    row.refresh_from_db()
    assert row.purchase is not None and row.purchase.source == PurchaseSource.DTE
    assert "tácitamente" in row.events.get(kind="rcv_sync").message


def test_the_command_prints_json_writes_the_answer_and_exits_1_on_refusal(
    issuer,
    supplier,
    tmp_path,
    capsys,
):
    data, docs = supplier_envelope(supplier, issuer, count=2)
    path = tmp_path / "envio.xml"
    path.write_bytes(data)
    out = tmp_path / "respuestas"
    call_command(
        "dte_receive", "--company", issuer.rut, str(path), "--json", "--respond-to", str(out)
    )
    payload = json.loads(capsys.readouterr().out)
    assert [d["status"] for d in payload["documents"]] == ["received", "received"]
    first = payload["documents"][0]
    assert set(first) >= {
        "rut_emisor",
        "tipo_dte",
        "folio",
        "fecha_emision",
        "monto_total",
        "status",
        "reasons",
        "purchase_id",
    }
    assert first["folio"] == docs[0].folio and first["purchase_id"] is None
    (answer,) = out.iterdir()
    envelope = ReceivedEnvelope.objects.get()
    assert answer.name == f"RespuestaDTE--{issuer.rut}--{envelope.pk}.xml"
    assert validate(SchemaKind.RESPUESTA_DTE, answer.read_bytes()) == []
    # The same file again: duplicates, nothing refused, exit 0; a tampered one: exit 1.
    call_command("dte_receive", "--company", issuer.rut, str(path))
    assert "duplicado" in capsys.readouterr().out
    bad = tmp_path / "malo.xml"
    bad.write_bytes(data.replace(b"Resma", b"Remsa", 1))
    with pytest.raises(SystemExit) as exit_:
        call_command("dte_receive", "--company", issuer.rut, str(bad))
    assert exit_.value.code == 1
    assert "rechazado" in capsys.readouterr().out


def test_the_command_refuses_bad_arguments_in_one_line(issuer, tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no existe"):
        call_command("dte_receive", "--company", issuer.rut, str(tmp_path / "nada.xml"))
    with pytest.raises(CommandError, match="no company"):
        call_command("dte_receive", "--company", "11111111-1", str(tmp_path))


def test_the_sii_sample_is_received_by_its_receiver(db, tmp_path):
    from pathlib import Path

    from tests.factories import CompanyFactory

    sample = (
        Path(__file__).resolve().parents[3]
        / "shared/sii/samples/dte/DTE--96670340-7--61--110616.xml"
    )
    hites = CompanyFactory(rut="81675600-6", razon_social="Comercial Hites")
    result = _receive(hites, sample.read_bytes(), name=sample.name)
    (document,) = result.documents
    assert document.status == "received", document.reasons
    assert (document.tipo_dte, document.folio, document.monto_total) == (61, 110616, 57347078)
    row = ReceivedDte.objects.get()
    assert verify_xml(bytes(row.xml)).ok


def _zip_of_envelopes(supplier, company, files: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for n in range(files):
            data, _ = supplier_envelope(supplier, company, count=1)
            archive.writestr(f"envio-{n}.xml", data)
    return buffer.getvalue()


def test_a_small_upload_is_taken_in_at_once(issuer, supplier):
    data, _ = supplier_envelope(supplier, issuer, count=2)
    result = receiving.intake_start(
        company=issuer, uploads=[("a.xml", data)], source=IntakeSource.UPLOAD
    )
    assert isinstance(result, receiving.IntakeResult)
    assert [d.status for d in result.documents] == ["received", "received"]


def test_a_large_upload_is_a_batch_taken_in_by_a_task_with_progress(
    issuer, supplier, eager_tasks, django_capture_on_commit_callbacks, clerk
):
    from dte.models import IntakeBatch

    data = _zip_of_envelopes(supplier, issuer, receiving.INLINE_FILES + 5)
    with django_capture_on_commit_callbacks(execute=True):
        batch = receiving.intake_start(
            company=issuer, uploads=[("junio.zip", data)], source=IntakeSource.API, actor=clerk
        )
    assert isinstance(batch, IntakeBatch)
    batch.refresh_from_db()
    assert batch.status == "done", batch.error
    assert (batch.files_total, batch.files_done, batch.percent) == (25, 25, 100)
    assert (batch.documents, batch.received, batch.duplicates, batch.refused) == (25, 25, 0, 0)
    assert len(batch.outcomes) == 25 and batch.outcomes[0]["status"] == "received"
    assert not batch.file  # the stored upload is gone once taken in
    assert ReceivedDte.objects.filter(envelope__source="api").count() == 25
    # Running it again (a redelivered task) changes nothing.
    assert receiving.intake_batch_run(batch.pk).status == "done"
    assert ReceivedDte.objects.count() == 25


def test_several_uploads_over_the_limit_become_one_batch(issuer, supplier):
    uploads = [
        (f"e{n}.xml", supplier_envelope(supplier, issuer)[0])
        for n in range(receiving.INLINE_FILES + 1)
    ]
    batch = receiving.intake_start(company=issuer, uploads=uploads, source=IntakeSource.UPLOAD)
    assert batch.files_total == receiving.INLINE_FILES + 1 and batch.status == "queued"
    done = receiving.intake_batch_run(batch.pk)
    assert (done.status, done.received) == ("done", receiving.INLINE_FILES + 1)
    with pytest.raises(DomainError):
        receiving.intake_start(company=issuer, uploads=[], source=IntakeSource.UPLOAD)


def test_staff_are_warned_two_days_before_the_claim_deadline(issuer, supplier):
    from dte import selectors

    data, _ = supplier_envelope(supplier, issuer, count=3)
    _receive(issuer, data)
    first, second, third = ReceivedDte.objects.order_by("folio")
    _confirmed(first, days_ago=7)  # one day left
    _confirmed(second, days_ago=2)  # six days left
    now = timezone.now()
    warnings = selectors.dte_warnings(company=issuer, now=now, today=now.date())
    (warning,) = [w for w in warnings if w.code == "claim_deadline"]
    assert warning.message.startswith("1 documento recibido vence su plazo de reclamo")
    assert receiving.days_left(first) == 1 and receiving.days_left(third) is None


def test_the_sandbox_supplier_writes_a_file_when_there_is_no_mailbox(issuer, tmp_path, capsys):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no tiene casilla"):
        call_command("sandbox_supplier_send", "--to", issuer.rut)
    out = tmp_path / "envio.xml"
    call_command("sandbox_supplier_send", "--to", issuer.rut, "--count", "2", "--out", str(out))
    assert "tipo 33 folio" in capsys.readouterr().out
    result = _receive(issuer, out.read_bytes())
    assert [d.status for d in result.documents] == ["received", "received"]
    # The next send continues the supplier's folios (the sandbox SII already has 1 and 2).
    call_command("sandbox_supplier_send", "--to", issuer.rut, "--out", str(out))
    assert _receive(issuer, out.read_bytes()).documents[0].folio == 3
    with pytest.raises(CommandError, match="--to"):
        call_command("sandbox_supplier_send", "--to", "1-2", "--out", str(out))


def test_a_purchase_already_in_the_book_is_linked_not_booked_twice(issuer, supplier, rcv_calls):
    from erp import services as erp_services

    data, _ = supplier_envelope(supplier, issuer)
    _receive(issuer, data)
    row = _confirmed(ReceivedDte.objects.get())
    partner = Partner.objects.create(company=issuer, rut=row.rut_emisor, razon_social="Prov")
    imported = erp_services.purchase_document_create(
        company=issuer,
        actor=None,
        source=PurchaseSource.RCV,
        data={
            "partner": partner,
            "tipo_doc": 33,
            "folio": row.folio,
            "fecha": row.fecha_emision,
            "monto_neto": row.monto_neto,
            "iva_recuperable": row.iva,
            "monto_total": row.monto_total,
        },
    )
    accepted = receiving.accept(received=row, actor=None)
    assert accepted.purchase == imported
    assert PurchaseDocument.objects.count() == 1
    assert "Ya estaba en el libro de compras" in accepted.events.get(kind="booked").message


def test_a_document_dated_after_its_reception_month_is_booked_in_its_own_month(
    issuer, supplier, rcv_calls
):
    data, _ = supplier_envelope(supplier, issuer)
    _receive(issuer, data)
    row = _confirmed(ReceivedDte.objects.get())
    next_month = (timezone.localdate().replace(day=1) + timedelta(days=32)).replace(day=1)
    ReceivedDte.objects.filter(pk=row.pk).update(fecha_emision=next_month)
    row.refresh_from_db()
    assert receiving.default_period(row) == next_month
    with pytest.raises(DomainError) as early:
        receiving.accept(received=row, actor=None, periodo=timezone.localdate())
    assert "periodo" in early.value.fields
    assert rcv_calls == []  # refused before anything reached the SII
    accepted = receiving.accept(received=row, actor=None)
    assert accepted.purchase.periodo == next_month


def test_a_document_with_a_malformed_rut_emisor_is_refused_without_a_crash(db):
    from pathlib import Path

    from tests.factories import CompanyFactory

    sample = (
        Path(__file__).resolve().parents[3]
        / "shared/sii/samples/dte/DTE--96670340-7--61--110616.xml"
    ).read_bytes()
    hites = CompanyFactory(rut="81675600-6", razon_social="Comercial Hites")
    broken = sample.replace(
        b"<RUTEmisor>96670340-7</RUTEmisor>", b"<RUTEmisor>96670340-77777</RUTEmisor>", 1
    )
    assert broken != sample
    result = _receive(hites, broken, name="roto.xml")
    (document,) = result.documents
    assert document.status == "refused"
    assert "RUT del emisor no es válido" in document.reasons[0]
    assert not ReceivedDte.objects.exists()
    assert ReceivedEnvelope.objects.get().estado_recep_env == 0


def test_the_sync_works_through_facturas_and_unconfirmed_documents_least_recent_first(
    issuer, supplier, monkeypatch
):
    data, _ = supplier_envelope(supplier, issuer, count=2)
    _receive(issuer, data)
    nota_data, _ = supplier_envelope(supplier, issuer, tipo=61)
    _receive(issuer, nota_data)
    first, second = ReceivedDte.objects.filter(tipo_dte=33).order_by("folio")
    nota = ReceivedDte.objects.get(tipo_dte=61)
    _confirmed(nota)  # a confirmed nota waits for staff: nothing more to ask the SII
    _confirmed(first)
    ReceivedDte.objects.filter(pk=first.pk).update(sii_checked_at=timezone.now())
    seen = []
    monkeypatch.setattr(receiving, "sync_with_sii", lambda pk, now=None: seen.append(pk) or "x")
    receiving.sync_open()
    assert seen == [second.pk, first.pk]


def test_the_tacit_acceptance_books_into_the_first_open_period(issuer, supplier, monkeypatch):
    from erp.models import ClosedPeriod

    data, _ = supplier_envelope(supplier, issuer)
    _receive(issuer, data)
    row = _confirmed(ReceivedDte.objects.get(), days_ago=9)
    this_month = timezone.localdate().replace(day=1)
    ClosedPeriod.objects.create(company=issuer, periodo=this_month)

    class Client:
        def rcv_events(self, *args, **kwargs):
            return type("History", (), {"events": []})()

    monkeypatch.setattr(receiving, "_sii_session", lambda company, now: (Client(), None, "t"))
    assert receiving.sync_with_sii(row.pk) == ReceivedStatus.ACCEPTED
    row.refresh_from_db()
    next_month = (this_month + timedelta(days=32)).replace(day=1)
    assert row.purchase.periodo == next_month


def test_a_factura_de_compra_received_is_not_booked_as_a_purchase(issuer, supplier, rcv_calls):
    data, _ = supplier_envelope(supplier, issuer, tipo=46)
    _receive(issuer, data)
    row = _confirmed(ReceivedDte.objects.get())
    accepted = receiving.accept(received=row, actor=None)
    assert accepted.status == ReceivedStatus.ACCEPTED and accepted.purchase is None
    assert not PurchaseDocument.objects.exists()


def test_an_exempt_factura_is_booked_as_exempt(issuer, supplier, rcv_calls):
    from decimal import Decimal

    from dte.core.domain import Linea

    lines = [Linea("Curso de capacitación", Decimal(2), Decimal(50000), exento=True)]
    data, docs = supplier_envelope(supplier, issuer, tipo=34, lines=lines)
    _receive(issuer, data)
    receiving.accept(received=_confirmed(ReceivedDte.objects.get()), actor=None)
    purchase = PurchaseDocument.objects.get()
    assert (purchase.monto_exento, purchase.monto_neto, purchase.iva_recuperable) == (
        docs[0].monto_total,
        0,
        0,
    )
