"""The fault matrix: what makes the real SII hard, against the sandbox over real HTTP, through
the client, the outbox and the tasks, for facturas (SOAP and DTEUpload) and boletas (REST).

Every case ends the same way: every folio accepted exactly once, or needing attention with a
readable reason; none rejected for something the SII never judged; no folio in two accepted
envelopes of the SII."""

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from dte import sending, services
from dte.keyring import load_certificate
from dte.models import Dte, Envelope
from dte.sandbox.models import ACCEPTED_STATUSES, ReceivedDocument, ReceivedEnvelope
from dte.sii import auth, config
from erp import services as erp_services
from tests.dte.sii.conftest import make_drafts
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db(transaction=True)

KINDS = {"factura": 33, "boleta": 39}
# The sandbox's operation names, by kind of document.
UPLOAD = {"factura": "upload", "boleta": "boleta_upload"}
STATUS = {"factura": "getEstUp", "boleta": "boleta_status"}
LOOKUP = {"factura": "getEstDte", "boleta": "boleta_estado"}


@pytest.fixture
def sii(sii):
    sii.SII_TIMEOUT = 2
    sii.SII_RECOVERY_WINDOW = 1.5  # the SII's processing bound, shortened for the test
    sii.SII_MAX_POLLS = 400
    sii.SII_SANDBOX_PROCESSING_SECONDS = 0
    sii.SII_SANDBOX_TIMEOUT_SLEEP = 3.0
    return sii


def issue_batch(company, clerk, tipo: int, n: int = 3) -> list[Dte]:
    """n documents in one envelope, as `manage.py issue` sends a batch."""
    drafts = make_drafts(company, clerk, tipo=tipo, n=n)
    outcomes, envelopes = services.dte_issue_many(documents=drafts, actor=clerk)
    assert len(envelopes) == 1 and all(o.dte for o in outcomes)
    return list(Dte.objects.filter(pk__in=[o.dte.pk for o in outcomes]).order_by("pk"))


def drive(dtes: list[Dte], *, timeout: float = 25.0) -> None:
    """The beat tick and the workers, in this process, in real time: whatever is due within
    the hour runs at once (backoff, Retry-After), while the SII's processing and the recovery
    window take the wall-clock time they take."""
    ids = [d.pk for d in dtes]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        to_send, to_poll = sending.outbox_claim(timezone.now() + timedelta(hours=1))
        for envelope_id in to_send:
            sending.envelope_send(envelope_id)
        for envelope_id in to_poll:
            sending.envelope_refresh(envelope_id)
        settled = Dte.objects.filter(pk__in=ids).exclude(status__in=("queued", "sent", "signed"))
        if settled.count() == len(ids):
            return
        time.sleep(0.1)
    states = list(Dte.objects.filter(pk__in=ids).values_list("folio", "status"))
    raise AssertionError(f"not settled in {timeout} s: {states}")


def readable(text: str) -> bool:
    return bool(text) and len(text) < 600 and "<" not in text and "Traceback" not in text


def check_outcome(dtes: list[Dte], expected: str) -> None:
    """The matrix's invariant, and the expected end state of every document."""
    for dte in dtes:
        dte.refresh_from_db()
        history = list(dte.events.values_list("status", "sii_code", "message"))
        assert dte.status == expected, history
        assert not dte.events.filter(status="rejected").exists(), history
        accepted_at_sii = ReceivedDocument.objects.filter(
            rut_emisor=dte.company.rut,
            tipo_dte=dte.tipo_dte,
            folio=dte.folio,
            status__in=ACCEPTED_STATUSES,
        ).count()
        if expected == "accepted":
            assert accepted_at_sii == 1, (dte.folio, accepted_at_sii)
        else:
            assert accepted_at_sii == 0
            reason = dte.events.last().message
            assert readable(reason), reason
            assert readable(dte.envelope.last_error), dte.envelope.last_error
    for envelope in Envelope.objects.filter(dtes__in=dtes).distinct():
        assert readable(envelope.last_error) or not envelope.last_error


def fault(operation: str, kind: str, count: int = 1, **options) -> None:
    call_command("sandbox_fault", operation, kind, count=count, **options)


@pytest.fixture(params=sorted(KINDS))
def kind(request):
    return request.param


def test_maintenance(sii, issuer, clerk, kind):
    fault(UPLOAD[kind], "html503", count=2)  # the SII's maintenance page, with Retry-After
    fault(STATUS[kind], "html503")
    dtes = issue_batch(issuer, clerk, KINDS[kind])
    drive(dtes)
    check_outcome(dtes, "accepted")
    envelope = dtes[0].envelope
    events = list(envelope.events.values_list("status", "message"))
    assert any("HTTP 503" in m and "30 s" in m for _, m in events), events  # Retry-After read


def test_http_500_on_upload_is_checked_before_another_upload(sii, issuer, clerk, kind):
    fault(UPLOAD[kind], "http500")
    dtes = issue_batch(issuer, clerk, KINDS[kind])
    drive(dtes)
    check_outcome(dtes, "accepted")
    flow = list(dtes[0].envelope.events.values_list("status", flat=True))
    # a 500 may hide a registered upload: asked (FAU) through the window, then uploaded again
    assert flow[:4] == ["queued", "uploading", "uncertain", "queued"], flow


def test_timeout(sii, issuer, clerk, kind):
    sii.SII_TIMEOUT = 1.0
    sii.SII_SANDBOX_TIMEOUT_SLEEP = 1.5
    fault(UPLOAD[kind], "timeout")
    dtes = issue_batch(issuer, clerk, KINDS[kind])
    drive(dtes)
    check_outcome(dtes, "accepted")
    assert ReceivedEnvelope.objects.count() in (1, 2)  # the late one, and at most a repeat


def test_answer_lost_after_the_sii_registered_the_upload(sii, issuer, clerk, kind):
    sii.SII_RECOVERY_WINDOW = 30  # long enough: the lookups must find it before any re-upload
    fault(UPLOAD[kind], "lost")  # registered, processed, then HTTP 502
    dtes = issue_batch(issuer, clerk, KINDS[kind])
    drive(dtes)
    check_outcome(dtes, "accepted")
    assert ReceivedEnvelope.objects.count() == 1  # never uploaded twice
    assert dtes[0].envelope.events.filter(message__startswith="Recuperado").exists()


def test_lookups_that_fail_are_retries_never_verdicts(sii, issuer, clerk, kind):
    sii.SII_RECOVERY_WINDOW = 30
    fault(UPLOAD[kind], "lost")
    fault(LOOKUP[kind], "http500", count=2)
    fault(LOOKUP[kind], "garbage")
    if kind == "boleta":
        fault("boleta_estado", "not_found")  # a 404 from the per-document URL: not a verdict
    dtes = issue_batch(issuer, clerk, KINDS[kind])
    drive(dtes)
    check_outcome(dtes, "accepted")
    assert ReceivedEnvelope.objects.count() == 1


def test_expired_token(sii, issuer, clerk, kind):
    fault(UPLOAD[kind], "bad_token")
    fault(STATUS[kind], "bad_token")
    dtes = issue_batch(issuer, clerk, KINDS[kind])
    drive(dtes)
    check_outcome(dtes, "accepted")


def test_slow_processing_and_slow_answers(sii, issuer, clerk, kind):
    sii.SII_SANDBOX_PROCESSING_SECONDS = 2.0
    sii.SII_SANDBOX_SLOW_SLEEP = 0.5
    fault(STATUS[kind], "slow", count=2)
    fault(STATUS[kind], "garbage")
    if kind == "boleta":
        fault("boleta_status", "not_found")  # the API does not know the track id yet
    dtes = issue_batch(issuer, clerk, KINDS[kind])
    drive(dtes)
    check_outcome(dtes, "accepted")
    envelope = dtes[0].envelope
    assert envelope.polls >= 2  # in progress while the SII processed it


def test_repeated_upload_is_followed_not_rejected(sii, issuer, clerk, kind):
    """The same envelope reached the SII before (another process, an operator): the upload
    answers STATUS 99 (boletas: the same receipt) and the original submission is followed."""
    dtes = issue_batch(issuer, clerk, KINDS[kind])
    envelope = dtes[0].envelope
    certificate = load_certificate(envelope.certificate_id, envelope.certificate.fingerprint)
    client = config.client("sandbox")
    boleta = kind == "boleta"
    token = auth.get_token(client, certificate, env="sandbox", boleta=boleta)
    upload = client.boleta_upload if boleta else client.upload
    first = upload(
        bytes(envelope.xml),
        rut_sender=certificate.rut,
        rut_company=issuer.rut,
        filename="first.xml",
        token=token,
    )
    drive(dtes)
    check_outcome(dtes, "accepted")
    envelope.refresh_from_db()
    assert envelope.track_id == first.track_id  # the original submission, followed
    assert ReceivedEnvelope.objects.count() == 1


@pytest.mark.parametrize("sent_by", ["same folios, new envelope"])
def test_a_folio_the_sii_already_accepted_is_not_rejected(sii, issuer, clerk, kind, sent_by):
    """A new envelope carries folios the SII accepted in an earlier one (a re-envelope after
    an envelope that had in fact gone through): the SII rejects them as repeated in the new
    envelope, and each is found accepted by itself."""
    dtes = issue_batch(issuer, clerk, KINDS[kind])
    drive(dtes)
    check_outcome(dtes, "accepted")
    time.sleep(1.1)  # another second: another carátula timestamp, another file
    envelope = Envelope.objects.get(pk=dtes[0].envelope_id)
    Envelope.objects.filter(pk=envelope.pk).update(status="needs_attention")
    Dte.objects.filter(pk__in=[d.pk for d in dtes]).update(status="needs_attention")
    (again,) = services.envelope_reenvelope(envelope=envelope, actor=clerk)
    drive(dtes)
    check_outcome(dtes, "accepted")
    again.refresh_from_db()
    assert again.status == "processed" and ReceivedEnvelope.objects.count() == 2


def test_envelope_rct_needs_attention_then_goes_again_with_the_same_folios(
    sii, issuer, clerk, admin_user, kind
):
    fault(UPLOAD[kind], "reject", code="RCT", glosa="Rechazado por Error en Caratula")
    dtes = issue_batch(issuer, clerk, KINDS[kind])
    drive(dtes)
    check_outcome(dtes, "needs_attention")
    old = Envelope.objects.get(pk=dtes[0].envelope_id)
    assert old.sii_estado == "RCT" and "car" in old.last_error.lower()
    time.sleep(1.1)
    services.envelope_reenvelope(envelope=old, actor=admin_user)
    drive(dtes)
    check_outcome(dtes, "accepted")
    assert {d.folio for d in dtes} == set(range(1, 4))  # no folio burned


def test_worker_killed_between_upload_and_saving_the_track_id(sii, issuer, clerk, kind):
    dtes = issue_batch(issuer, clerk, KINDS[kind])
    envelope = Envelope.objects.get(pk=dtes[0].envelope_id)
    claim = sending._claim_for_upload(envelope.pk, timezone.now())
    assert isinstance(claim, Envelope)
    certificate = load_certificate(envelope.certificate_id, envelope.certificate.fingerprint)
    client = config.client("sandbox")
    boleta = kind == "boleta"
    token = auth.get_token(client, certificate, env="sandbox", boleta=boleta)
    (client.boleta_upload if boleta else client.upload)(
        bytes(envelope.xml),
        rut_sender=certificate.rut,
        rut_company=issuer.rut,
        filename="killed.xml",
        token=token,
    )  # ... and the worker dies here: UPLOADING, no track id
    drive(dtes)
    check_outcome(dtes, "accepted")
    assert ReceivedEnvelope.objects.count() == 1


def test_broker_down_at_commit(sii, issuer, clerk, api_for, kind):
    """The issue answers 2xx; the documents wait in the outbox; the beat sends them."""
    from ops.celery import app
    from tests.celery_utils import use_broker

    previous_eager, previous = app.conf.task_always_eager, use_broker(app, "redis://127.0.0.1:9/0")
    app.conf.task_always_eager = False
    app.conf.broker_connection_timeout = 0.5
    app.conf.broker_connection_retry = False
    sii.CELERY_TASK_ALWAYS_EAGER = False
    sii.SII_AUTO_SEND = True
    try:
        partner = PartnerFactory(company=issuer)
        draft = erp_services.sales_document_create(
            company=issuer,
            actor=clerk,
            data={
                "tipo_dte": KINDS[kind],
                "fecha_emision": timezone.localdate(),
                "partner": partner.pk,
                "lines": [{"name": "Servicio", "quantity": "1", "unit_price": "1000"}],
            },
        )
        url = f"/api/v1/companies/{issuer.rut}/sales-documents/{draft.pk}/issue/"
        response = api_for(clerk).post(url)
    finally:
        app.conf.task_always_eager = previous_eager
        use_broker(app, previous)
    assert response.status_code == 201, response.content
    dte = Dte.objects.get(pk=response.json()["id"])
    assert dte.status == "queued" and dte.envelope.status == "queued"
    drive([dte])
    check_outcome([dte], "accepted")


def test_a_boleta_after_soap_calls_in_the_same_process(sii, issuer, clerk):
    """The sandbox refuses non-browser agents on the boleta API as the SII does; zeep, used
    for the factura's token and status, must not have renamed this process's agent."""
    facturas = issue_batch(issuer, clerk, 33, n=1)
    drive(facturas)  # getSeed, getToken, DTEUpload, getEstUp: zeep's transports are built
    check_outcome(facturas, "accepted")
    boletas = issue_batch(issuer, clerk, 39, n=2)
    drive(boletas)
    check_outcome(boletas, "accepted")
    for dte in boletas:
        assert not dte.events.filter(message__contains="rechazó el token").exists()
        assert not dte.events.filter(message__contains="HTTP 401").exists()
