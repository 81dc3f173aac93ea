"""Issue → send → verdict over real HTTP against the local SII sandbox (served by the live
server), through the client, the outbox and the tasks. The sandbox checks what it gets with
the project's verifier and answers in the SII's formats."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from dte import sending, services
from dte.models import Dte, Envelope
from tests.dte.sii.conftest import make_drafts

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def in_process_tasks(sii, eager_tasks):
    sii.SII_AUTO_SEND = True


def issue(company, clerk, *, tipo=33, amount=1000, partner=None):
    (draft,) = make_drafts(company, clerk, tipo=tipo, amount=amount, partner=partner)
    return services.dte_issue(document=draft, actor=clerk)


def run_outbox(rounds: int = 20, *, ahead: float = 3600) -> None:
    """What the beat tick and the workers do, in this process, until nothing is left: each
    round runs whatever is due within `ahead` seconds (backoff and Retry-After included), so
    the test need not wait for them."""
    from dte import libro_sending

    for _ in range(rounds):
        due = timezone.now() + timedelta(seconds=ahead)
        to_send, to_poll = sending.outbox_claim(due)
        libros_to_send, libros_to_poll = libro_sending.libro_claim(due)
        if not (to_send or to_poll or libros_to_send or libros_to_poll):
            return
        for envelope_id in to_send:
            sending.envelope_send(envelope_id)
        for envelope_id in to_poll:
            sending.envelope_refresh(envelope_id)
        for libro_id in libros_to_send:  # the certification's libros travel the same way
            libro_sending.libro_send(libro_id)
        for libro_id in libros_to_poll:
            libro_sending.libro_refresh(libro_id)


def received(folio: int, tipo: int = 33) -> int:
    from dte.sandbox.models import ReceivedDocument

    return ReceivedDocument.objects.filter(tipo_dte=tipo, folio=folio).count()


def test_issue_send_accepted_automatically(sii, in_process_tasks, issuer, clerk):
    # on commit, the task uploads and follows the envelope, in the background: issuing
    # returned before any call to the SII
    from erp.background import wait_for_background

    dte = issue(issuer, clerk)
    assert wait_for_background(timeout=60)
    dte.refresh_from_db()
    assert dte.status == "accepted", list(dte.events.values_list("status", "message"))
    codes = list(dte.events.values_list("status", "sii_code"))
    assert codes[:3] == [("signed", ""), ("queued", ""), ("sent", "0")]
    assert ("accepted", "EPR") in codes
    # once accepted, the receiver got it by e-mail: XML in an envelope to its RUT, and the PDF
    from django.core import mail

    assert dte.events.filter(message__startswith="Enviado por correo").exists()
    sent = mail.outbox[-1]
    names = [a[0] for a in sent.attachments]
    assert names == [
        f"EnvioDTE--{issuer.rut}--33--{dte.folio}.xml",
        f"DTE--{issuer.rut}--33--{dte.folio}.pdf",
    ]
    envelope_xml = sent.attachments[0][1]
    assert f"<RutReceptor>{dte.rut_receptor}</RutReceptor>".encode() in envelope_xml
    assert dte.envelope.track_id and len(dte.envelope.track_id) == 10
    assert received(dte.folio) == 1


def test_boleta_goes_through_the_rest_api(sii, issuer, clerk):
    dte = issue(issuer, clerk, tipo=39)
    run_outbox()
    dte.refresh_from_db()
    assert dte.status == "accepted", list(dte.events.values_list("status", "message"))
    assert len(dte.envelope.track_id) == 15
    assert received(dte.folio, 39) == 1


def test_tampered_envelope_signature_needs_attention_never_a_rejection(sii, issuer, clerk):
    """RFR: the SII stopped at the envelope's signature and judged no document."""
    dte = issue(issuer, clerk)
    envelope = dte.envelope
    xml = bytes(envelope.xml).replace(b"<MntTotal>1190</MntTotal>", b"<MntTotal>1191</MntTotal>")
    assert xml != bytes(envelope.xml)
    Envelope.objects.filter(pk=envelope.pk).update(xml=xml)
    run_outbox()
    dte.refresh_from_db()
    envelope.refresh_from_db()
    assert envelope.sii_estado == "RFR"
    assert (envelope.status, dte.status) == ("needs_attention", "needs_attention")
    last = dte.events.last()
    assert last.sii_code == "RFR" and "no revisó los documentos" in last.message
    assert not dte.events.filter(status="rejected").exists()


def test_sii_down_then_back_every_document_accepted_exactly_once(sii, issuer, clerk):
    from django.core.management import call_command

    call_command("sandbox_fault", "upload", "html503", count=3)
    dtes = [issue(issuer, clerk, amount=1000 + n) for n in range(4)]
    run_outbox(rounds=30)
    for dte in dtes:
        dte.refresh_from_db()
        assert dte.status == "accepted", list(dte.events.values_list("status", "message"))
        assert received(dte.folio) == 1
    retried = [d for d in dtes if d.events.filter(message__contains="fallido").exists()]
    assert retried, "the 503 answers should have made someone retry"


def test_timeout_after_upload_is_not_uploaded_twice(sii, issuer, clerk):
    from django.core.management import call_command

    sii.SII_TIMEOUT = 0.5
    sii.SII_SANDBOX_TIMEOUT_SLEEP = 1.0
    call_command("sandbox_fault", "upload", "timeout", count=1)
    dte = issue(issuer, clerk)
    step = sending.envelope_send(dte.envelope_id)
    assert step.status == "uncertain", step
    envelope = Envelope.objects.get(pk=dte.envelope_id)
    assert envelope.status == "uncertain"  # maybe delivered: ask the SII before uploading again
    run_outbox(rounds=3)  # the SII has not registered it yet (FAU): wait, do not upload again
    assert Envelope.objects.get(pk=envelope.pk).status == "uncertain"
    time.sleep(1.2)  # ... it registers the upload after the client gave up
    run_outbox()
    dte.refresh_from_db()
    assert dte.status == "accepted", list(dte.events.values_list("status", "message"))
    assert received(dte.folio) == 1


def test_crash_between_upload_and_saving_the_track_id(sii, issuer, clerk):
    """A worker uploads, then dies before writing the track id: the envelope is found
    UPLOADING; the next run asks the SII, which has the document, and does not upload again."""
    from dte.keyring import load_certificate
    from dte.sii import auth, config

    dte = issue(issuer, clerk)
    envelope = Envelope.objects.get(pk=dte.envelope_id)
    claim = sending._claim_for_upload(envelope.pk, timezone.now())
    assert not isinstance(claim, sending.Step)
    certificate = load_certificate(envelope.certificate_id, envelope.certificate.fingerprint)
    client = config.client("sandbox")
    token = auth.get_token(client, certificate, env="sandbox", boleta=False)
    client.upload(
        bytes(envelope.xml),
        rut_sender=certificate.rut,
        rut_company=issuer.rut,
        filename="crash.xml",
        token=token,
    )  # ... and the worker crashes here
    Envelope.objects.filter(pk=envelope.pk).update(
        upload_started_at=timezone.now() - timedelta(minutes=10)
    )
    run_outbox()
    dte.refresh_from_db()
    assert dte.status == "accepted", list(dte.events.values_list("status", "message"))
    assert received(dte.folio) == 1
    assert dte.events.filter(message__contains="Recuperado").exists()


def test_invalid_token_is_renewed(sii, issuer, clerk):
    from django.core.management import call_command

    call_command("sandbox_fault", "upload", "bad_token", count=1)
    dte = issue(issuer, clerk)
    run_outbox()
    dte.refresh_from_db()
    assert dte.status == "accepted"


def test_rct_needs_attention_then_reenveloped_with_the_same_folio(sii, issuer, clerk, admin_user):
    from django.core.management import call_command

    call_command(
        "sandbox_fault", "upload", "reject", code="RCT", glosa="Rechazado por Error en Caratula"
    )
    dte = issue(issuer, clerk)
    run_outbox()
    dte.refresh_from_db()
    assert dte.status == "needs_attention"
    assert dte.events.last().sii_code == "RCT"
    assert "Caratula" in dte.events.last().message
    old = dte.envelope
    with pytest.raises(services.DomainError, match="reensóbrelo"):
        services.envelope_retry(envelope=old, actor=admin_user)  # the same bytes: RCT again
    # The fix (here: only time) changes the carátula; an identical envelope, signed in the same
    # second, would be the same file, which the SII answers with the first one's verdict.
    time.sleep(1.1)
    (new,) = services.envelope_reenvelope(envelope=old, actor=admin_user)
    run_outbox()
    dte.refresh_from_db()
    old.refresh_from_db()
    assert (dte.status, dte.envelope_id, old.status) == ("accepted", new.pk, "superseded")
    assert old.replaced_by_id == new.pk
    assert received(dte.folio) == 1  # the same folio, accepted once
    assert Dte.objects.filter(company=issuer, tipo_dte=33).count() == 1
    flow = list(old.events.values_list("status", flat=True))
    assert flow == ["queued", "uploading", "sent", "needs_attention", "superseded"]


def test_sii_never_back_needs_attention_then_admin_retry(sii, issuer, clerk, admin_user):
    from django.core.management import call_command

    sii.SII_MAX_ATTEMPTS = 2
    call_command("sandbox_fault", "upload", "html503", count=2)
    dte = issue(issuer, clerk)
    run_outbox()
    dte.refresh_from_db()
    assert dte.status == "needs_attention"
    assert "503" in dte.events.last().message or "disponible" in dte.events.last().message
    services.dte_retry(dte=dte, actor=admin_user)
    run_outbox()
    dte.refresh_from_db()
    assert dte.status == "accepted"
    assert received(dte.folio) == 1


def test_ui_shows_state_and_history(sii, in_process_tasks, issuer, clerk, client):
    from erp.background import wait_for_background

    dte = issue(issuer, clerk)
    assert wait_for_background(timeout=60)
    client.force_login(clerk)
    html = client.get(f"/documentos/{dte.sales_document_id}/").content.decode()
    assert "Aceptado por el SII" in html and "Historial ante el SII" in html
    assert "EPR" in html and dte.envelope.track_id in html


def test_api_shows_state_and_refresh(sii, eager_tasks, issuer, clerk, api_for, monkeypatch):
    from dte import dispatch
    from dte.sii import config

    dte = issue(issuer, clerk)
    api = api_for(clerk)
    base = f"/api/v1/companies/{issuer.rut}/dtes/{dte.pk}/"
    assert api.get(base).json()["status"] == "queued"
    sending.envelope_send(dte.envelope_id)
    # The request itself never talks to the SII: it leaves a task, run here afterwards.
    left, asked = [], []
    real_client = config.client
    with monkeypatch.context() as patch:
        patch.setattr(dispatch, "run_in_background", lambda fn, *a, **k: left.append((fn, a)))
        patch.setattr(config, "client", lambda env: asked.append(env) or real_client(env))
        refreshed = api.post(f"{base}refresh/")
        assert refreshed.status_code == 202 and refreshed.json()["status"] == "sent"
        assert asked == [] and len(left) == 1
        for fn, args in left:
            fn(*args)  # the task asks the SII
        assert asked == ["sandbox"]
    api.post(f"{base}refresh/")
    body = api.get(base).json()
    assert body["status"] == "accepted" and body["track_id"]
    assert {"status": "accepted", "sii_code": "EPR"}.items() <= next(
        e for e in body["events"] if e["sii_code"] == "EPR"
    ).items()
    assert Dte.objects.get(pk=dte.pk).status == "accepted"
